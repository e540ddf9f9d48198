#include "eventstore/event_store.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace eventstore {

absl::StatusOr<bool> EventStore::WaitForEvents(Position after,
                                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<Position> head = HeadPosition();
    if (!head.ok()) return head.status();
    if (*head > after) return true;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    absl::SleepFor(std::min(left, absl::Milliseconds(50)));
  }
}

}  // namespace eventstore
