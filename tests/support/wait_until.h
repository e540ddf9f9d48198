// WaitUntil: tests synchronise on conditions, with a deadline, never on a
// fixed sleep.
//
//   ASSERT_TRUE(WaitUntil([&] { return sink.delivered() == 10; },
//                         absl::Seconds(30)));

#ifndef EVENTSTORE_TESTS_SUPPORT_WAIT_UNTIL_H_
#define EVENTSTORE_TESTS_SUPPORT_WAIT_UNTIL_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace eventstore::test {

// Polls `done` every few milliseconds until it is true or `timeout` passes;
// whether it became true.
inline bool WaitUntil(const std::function<bool()>& done,
                      absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_WAIT_UNTIL_H_
