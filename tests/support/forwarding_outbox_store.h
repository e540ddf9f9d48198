// ForwardingOutboxStore: an OutboxStore that forwards every call to another
// one, for tests that inject a failure into one call and leave the rest as
// they are (as ForwardingEventStore does for stores).
//
//   class ClaimFails final : public test::ForwardingOutboxStore {
//    public:
//     using ForwardingOutboxStore::ForwardingOutboxStore;
//     absl::StatusOr<std::vector<OutboxEntry>> Claim(
//         std::string_view, int, absl::Duration) override {
//       return absl::UnavailableError("injected");
//     }
//   };

#ifndef EVENTSTORE_TESTS_SUPPORT_FORWARDING_OUTBOX_STORE_H_
#define EVENTSTORE_TESTS_SUPPORT_FORWARDING_OUTBOX_STORE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/outbox_store.h"

namespace eventstore::test {

class ForwardingOutboxStore : public OutboxStore {
 public:
  // `real` is not owned and must outlive this object.
  explicit ForwardingOutboxStore(OutboxStore* real) : real_(real) {}

  absl::Status Enqueue(absl::Span<const OutboxMessage> messages) override {
    return real_->Enqueue(messages);
  }
  absl::StatusOr<std::vector<OutboxEntry>> Pending(int limit) override {
    return real_->Pending(limit);
  }
  absl::StatusOr<std::vector<OutboxEntry>> Claim(
      std::string_view worker, int limit, absl::Duration lease) override {
    return real_->Claim(worker, limit, lease);
  }
  absl::Status MarkPublished(int64_t id) override {
    return real_->MarkPublished(id);
  }
  absl::Status MarkAllPublished(absl::Span<const int64_t> ids) override {
    return real_->MarkAllPublished(ids);
  }
  absl::StatusOr<std::vector<OutboxEntry>> MarkPublishedAndClaim(
      absl::Span<const int64_t> published, std::string_view worker, int limit,
      absl::Duration lease) override {
    return real_->MarkPublishedAndClaim(published, worker, limit, lease);
  }
  absl::Status MarkFailed(int64_t id, std::string_view error,
                          int32_t max_attempts) override {
    return real_->MarkFailed(id, error, max_attempts);
  }
  absl::Status Release(absl::Span<const int64_t> ids,
                       std::string_view error) override {
    return real_->Release(ids, error);
  }
  absl::StatusOr<int64_t> DeletePublishedOlderThan(
      absl::Duration age) override {
    return real_->DeletePublishedOlderThan(age);
  }
  absl::StatusOr<OutboxStats> Stats() override { return real_->Stats(); }
  absl::StatusOr<OutboxBacklog> Backlog() override { return real_->Backlog(); }
  absl::StatusOr<std::vector<OutboxEntry>> List(
      const OutboxListOptions& options) override {
    return real_->List(options);
  }
  absl::Status Retry(int64_t id) override { return real_->Retry(id); }

 private:
  OutboxStore* const real_;
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_FORWARDING_OUTBOX_STORE_H_
