#include "projections/internal/backoff.h"

#include <algorithm>
#include <random>

namespace eventstore::internal {

absl::Duration BackoffDelay(absl::Duration initial, absl::Duration max,
                            int retry) {
  absl::Duration delay = initial;
  for (int i = 1; i < retry && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

absl::Duration JitteredBackoffDelay(absl::Duration initial, absl::Duration max,
                                    int retry, double unit) {
  const absl::Duration delay = BackoffDelay(initial, max, retry);
  const double clamped = std::clamp(unit, 0.0, 1.0);
  const absl::Duration half = delay / 2;
  // delay - half, not half again: an odd number of nanoseconds keeps its
  // last one, so unit 1 gives exactly `delay`.
  return std::min(delay, half + (delay - half) * clamped);
}

absl::Duration JitteredBackoffDelay(absl::Duration initial, absl::Duration max,
                                    int retry) {
  // Seeded from std::random_device rather than absl::BitGen: Debian's Abseil
  // seeds from a shared pool that ThreadSanitizer cannot see synchronised.
  thread_local std::mt19937_64 gen([] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }());
  return JitteredBackoffDelay(
      initial, max, retry,
      std::uniform_real_distribution<double>(0.0, 1.0)(gen));
}

}  // namespace eventstore::internal
