// ForwardingEventStore: an EventStore that forwards every call to another
// one (the EnvWrapper of leveldb), the base of decorators (metrics, fault
// injection in tests, FailoverEventStore) that override only what they
// change.
//
//   class CountingStore final : public ForwardingEventStore {
//    public:
//     explicit CountingStore(EventStore* target)
//         : ForwardingEventStore(target) {}
//     absl::StatusOr<AppendResult> Append(const AppendRequest& r) override {
//       ++appends_;
//       return ForwardingEventStore::Append(r);
//     }
//     ...
//   };

#ifndef EVENTSTORE_FORWARDING_EVENT_STORE_H_
#define EVENTSTORE_FORWARDING_EVENT_STORE_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/lease.h"
#include "eventstore/sql_transaction.h"

namespace eventstore {

class ForwardingEventStore : public EventStore {
 public:
  // `target` is not owned and must outlive this object.
  explicit ForwardingEventStore(EventStore* target) : target_(target) {}

  // The store calls go to.
  EventStore* target() const { return target_; }

  using EventStore::Append;
  using EventStore::ReadStream;

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    return target_->Append(request);
  }

  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override {
    return target_->ReadStream(stream, options);
  }
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override {
    return target_->ReadAll(options);
  }
  absl::StatusOr<int64_t> StreamVersion(std::string_view stream) override {
    return target_->StreamVersion(stream);
  }
  absl::StatusOr<Position> HeadPosition() override {
    return target_->HeadPosition();
  }
  absl::StatusOr<bool> EventExists(const Uuid& id) override {
    return target_->EventExists(id);
  }
  absl::StatusOr<bool> WaitForEvents(Position after,
                                     absl::Duration timeout) override {
    return target_->WaitForEvents(after, timeout);
  }
  absl::StatusOr<DeleteResult> DeleteStream(std::string_view stream,
                                            ExpectedVersion expected,
                                            DeleteMode mode) override {
    return target_->DeleteStream(stream, expected, mode);
  }
  absl::Status SetStreamMetadata(std::string_view stream,
                                 const StreamMetadata& metadata) override {
    return target_->SetStreamMetadata(stream, metadata);
  }
  absl::StatusOr<StreamInfo> GetStreamInfo(std::string_view stream) override {
    return target_->GetStreamInfo(stream);
  }
  absl::StatusOr<ScavengeResult> Scavenge(
      const ScavengeOptions& options) override {
    return target_->Scavenge(options);
  }
  CheckpointStore& checkpoints() override { return target_->checkpoints(); }
  DeadLetterStore& dead_letters() override { return target_->dead_letters(); }
  OutboxStore& outbox() override { return target_->outbox(); }
  SnapshotStore& snapshots() override { return target_->snapshots(); }
  SubjectKeyStore& subject_keys() override { return target_->subject_keys(); }
  EventImporter& importer() override { return target_->importer(); }
  StoreInspector& inspector() override { return target_->inspector(); }
  StoreLimits limits() const override { return target_->limits(); }
  absl::StatusOr<std::unique_ptr<SqlTransaction>> BeginTransaction() override {
    return target_->BeginTransaction();
  }
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireLease(
      std::string_view name) override {
    return target_->TryAcquireLease(name);
  }

 private:
  EventStore* const target_;
};

}  // namespace eventstore

#endif  // EVENTSTORE_FORWARDING_EVENT_STORE_H_
