// MemoryOutboxStore: an outbox held in memory, for O1 (outbox_bench) to
// measure what the publisher and a broker sink cost without any database
// work: the bound a store's outbox can approach, not a store to use. No
// durability; one mutex guards everything.
//
// StoreWithMemoryOutbox: an EventStore whose outbox() is a MemoryOutboxStore
// and whose other calls go to `target` (the publisher needs an EventStore).

#ifndef EVENTSTORE_BENCH_MEMORY_OUTBOX_STORE_H_
#define EVENTSTORE_BENCH_MEMORY_OUTBOX_STORE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/outbox_store.h"

namespace eventstore::bench {

class MemoryOutboxStore final : public OutboxStore {
 public:
  absl::Status Enqueue(absl::Span<const OutboxMessage> messages) override;
  absl::StatusOr<std::vector<OutboxEntry>> Pending(int limit) override;
  absl::StatusOr<std::vector<OutboxEntry>> Claim(std::string_view worker,
                                                 int limit,
                                                 absl::Duration lease) override;
  absl::Status MarkPublished(int64_t id) override;
  absl::Status MarkAllPublished(absl::Span<const int64_t> ids) override;
  absl::StatusOr<std::vector<OutboxEntry>> MarkPublishedAndClaim(
      absl::Span<const int64_t> published, std::string_view worker, int limit,
      absl::Duration lease) override;
  absl::Status MarkFailed(int64_t id, std::string_view error,
                          int32_t max_attempts) override;
  absl::Status Release(absl::Span<const int64_t> ids,
                       std::string_view error) override;
  absl::StatusOr<int64_t> DeletePublishedOlderThan(absl::Duration age) override;
  absl::StatusOr<OutboxStats> Stats() override;

 private:
  OutboxEntry* Find(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status MarkAllLocked(absl::Span<const int64_t> ids, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<OutboxEntry> ClaimLocked(std::string_view worker, int limit,
                                       absl::Time now, absl::Duration lease)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  internal::Mutex mu_;
  // Ids are 1, 2, ...: the entry with id i is entries_[i - 1].
  std::vector<OutboxEntry> entries_ ABSL_GUARDED_BY(mu_);
  // No entry before this index is pending.
  size_t first_pending_ ABSL_GUARDED_BY(mu_) = 0;
};

class StoreWithMemoryOutbox final : public ForwardingEventStore {
 public:
  // `target` is not owned and must outlive this object.
  explicit StoreWithMemoryOutbox(EventStore* target)
      : ForwardingEventStore(target) {}
  OutboxStore& outbox() override { return outbox_; }

 private:
  MemoryOutboxStore outbox_;
};

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_MEMORY_OUTBOX_STORE_H_
