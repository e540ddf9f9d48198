// DeadLetterStore: events a projection could not handle, parked so that the
// projection can move on, and replayed once the handler is fixed.
//
//   store->dead_letters().Add("order-totals", event, status.ToString());
//   ES_ASSIGN_OR_RETURN(auto parked, store->dead_letters().List(
//       "order-totals", DeadLetterStatus::kParked, 100));

#ifndef EVENTSTORE_DEAD_LETTER_STORE_H_
#define EVENTSTORE_DEAD_LETTER_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/recorded_event.h"

namespace eventstore {

enum class DeadLetterStatus { kParked, kRetrying, kResolved };

struct DeadLetter {
  std::string projection;
  Uuid event_id;
  std::string stream;
  int64_t version = 0;
  Position position;
  std::string event_type;
  DeadLetterStatus status = DeadLetterStatus::kParked;
  // The latest failure's text.
  std::string error;
  // How many times the event was parked (1 for the first failure).
  int32_t failure_count = 0;
  absl::Time first_failed_at;
  absl::Time last_failed_at;
  // Who resolved it and when (empty / InfinitePast until resolved).
  std::string resolved_by;
  absl::Time resolved_at = absl::InfinitePast();
};

// Parked (not resolved) entries of one projection.
struct DeadLetterCount {
  std::string projection;
  int64_t parked = 0;
  int64_t retrying = 0;
};

// Where a dead letter stands in the listing order of DeadLetterStore::
// ListPage: first failure, then position, then projection (byte order).
struct DeadLetterKey {
  absl::Time first_failed_at;
  Position position;
  std::string projection;

  static DeadLetterKey Of(const DeadLetter& letter) {
    return {letter.first_failed_at, letter.position, letter.projection};
  }
};

// Which dead letters DeadLetterStore::ListPage returns, for tools (the JSON
// API of `eventstore serve`).
struct DeadLetterListOptions {
  // Only this projection's; empty (the default): every projection's.
  std::string projection;
  // Only entries in one of these statuses; empty (the default): any.
  std::vector<DeadLetterStatus> statuses;
  // Exclusive: only entries after this one in the listing order (for
  // paging: the key of the last entry of the page before). Default: from
  // the first.
  std::optional<DeadLetterKey> after;
  // Most entries returned. Default 100.
  int limit = 100;
};

class DeadLetterStore {
 public:
  virtual ~DeadLetterStore() = default;

  // Parks `event` for `projection`. A second Add of the same event and
  // projection keeps the first failure time, counts one more failure,
  // replaces the error text and sets the status back to kParked.
  virtual absl::Status Add(std::string_view projection,
                           const RecordedEvent& event,
                           std::string_view error) = 0;
  virtual absl::StatusOr<std::optional<DeadLetter>> Get(
      std::string_view projection, const Uuid& event_id) = 0;
  // Entries of `projection` (all projections when empty) with `status`
  // (any when nullopt), oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<DeadLetter>> List(
      std::string_view projection, std::optional<DeadLetterStatus> status,
      int limit) = 0;
  // kNotFound when there is no such entry.
  virtual absl::Status MarkRetrying(std::string_view projection,
                                    const Uuid& event_id) = 0;
  virtual absl::Status MarkResolved(std::string_view projection,
                                    const Uuid& event_id,
                                    std::string_view resolved_by) = 0;
  // Unresolved entries per projection, sorted by projection name.
  virtual absl::StatusOr<std::vector<DeadLetterCount>> Counts() = 0;
  // Deletes entries resolved more than `age` ago; returns how many.
  virtual absl::StatusOr<int64_t> DeleteResolvedOlderThan(
      absl::Duration age) = 0;
  // Entries that pass `options`, in the listing order (oldest first, as
  // List), one page at a time: an entry whose status changes between two
  // pages is neither skipped nor listed twice. kInvalidArgument for a
  // negative limit. This default answers kUnimplemented; the backends
  // override it.
  virtual absl::StatusOr<std::vector<DeadLetter>> ListPage(
      const DeadLetterListOptions& options);
};

inline absl::StatusOr<std::vector<DeadLetter>> DeadLetterStore::ListPage(
    const DeadLetterListOptions&) {
  return absl::UnimplementedError("this dead-letter store cannot list pages");
}

}  // namespace eventstore

#endif  // EVENTSTORE_DEAD_LETTER_STORE_H_
