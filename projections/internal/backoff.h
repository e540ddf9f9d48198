// The waits between retries of the projection runner and the outbox
// publisher: exponential, capped, with "equal jitter", so that workers that
// failed together (say, when the database restarted) do not all retry at
// the same instant.
//
//   absl::Duration wait = JitteredBackoffDelay(initial, max, retry);
//
// Private to the projections library (not installed).

#ifndef EVENTSTORE_PROJECTIONS_INTERNAL_BACKOFF_H_
#define EVENTSTORE_PROJECTIONS_INTERNAL_BACKOFF_H_

#include "absl/time/time.h"

namespace eventstore::internal {

// The wait before retry number `retry` (1 for the first retry) without
// jitter: `initial`, doubling per retry, at most `max`.
absl::Duration BackoffDelay(absl::Duration initial, absl::Duration max,
                            int retry);

// A wait between half of BackoffDelay(initial, max, retry) and all of it:
// d/2 + unit * d/2 for d = BackoffDelay(...). `unit` is a draw in [0, 1]
// (values outside are clamped). Never more than `max`; never less than half
// the exponential delay, so a failing worker still backs off.
absl::Duration JitteredBackoffDelay(absl::Duration initial, absl::Duration max,
                                    int retry, double unit);

// The same with `unit` drawn uniformly from a per-thread generator seeded
// from std::random_device (so workers in different threads and processes
// draw differently). Thread-safe.
absl::Duration JitteredBackoffDelay(absl::Duration initial, absl::Duration max,
                                    int retry);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_PROJECTIONS_INTERNAL_BACKOFF_H_
