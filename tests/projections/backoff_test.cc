#include "projections/internal/backoff.h"

#include <set>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace eventstore::internal {
namespace {

TEST(BackoffTest, DoublesFromInitialUpToMax) {
  const absl::Duration initial = absl::Milliseconds(100);
  const absl::Duration max = absl::Milliseconds(350);
  EXPECT_EQ(BackoffDelay(initial, max, 1), absl::Milliseconds(100));
  EXPECT_EQ(BackoffDelay(initial, max, 2), absl::Milliseconds(200));
  EXPECT_EQ(BackoffDelay(initial, max, 3), absl::Milliseconds(350));
  EXPECT_EQ(BackoffDelay(initial, max, 1000), absl::Milliseconds(350));
}

TEST(BackoffTest, JitterSpansHalfToAllOfTheDelay) {
  const absl::Duration initial = absl::Milliseconds(100);
  const absl::Duration max = absl::Milliseconds(350);
  EXPECT_EQ(JitteredBackoffDelay(initial, max, 1, 0.0), absl::Milliseconds(50));
  EXPECT_EQ(JitteredBackoffDelay(initial, max, 1, 0.5), absl::Milliseconds(75));
  EXPECT_EQ(JitteredBackoffDelay(initial, max, 1, 1.0),
            absl::Milliseconds(100));
  EXPECT_EQ(JitteredBackoffDelay(initial, max, 2, 0.0),
            absl::Milliseconds(100));
  EXPECT_EQ(JitteredBackoffDelay(initial, max, 9, 1.0),
            absl::Milliseconds(350));
  // Draws out of range are clamped: max still bounds the wait.
  EXPECT_EQ(JitteredBackoffDelay(initial, max, 9, 7.0),
            absl::Milliseconds(350));
  EXPECT_EQ(JitteredBackoffDelay(initial, max, 9, -1.0),
            absl::Milliseconds(175));
  // An odd number of nanoseconds: a draw of 1 is the whole delay.
  EXPECT_EQ(
      JitteredBackoffDelay(absl::Nanoseconds(3), absl::Nanoseconds(3), 1, 1.0),
      absl::Nanoseconds(3));
  EXPECT_EQ(
      JitteredBackoffDelay(absl::ZeroDuration(), absl::ZeroDuration(), 5, 0.5),
      absl::ZeroDuration());
}

TEST(BackoffTest, RandomJitterVariesWithinBounds) {
  const absl::Duration initial = absl::Milliseconds(100);
  const absl::Duration max = absl::Seconds(10);
  for (int retry = 1; retry <= 10; ++retry) {
    const absl::Duration full = BackoffDelay(initial, max, retry);
    std::set<int64_t> seen;
    for (int i = 0; i < 200; ++i) {
      const absl::Duration wait = JitteredBackoffDelay(initial, max, retry);
      ASSERT_GE(wait, full / 2) << "retry " << retry;
      ASSERT_LE(wait, full) << "retry " << retry;
      seen.insert(absl::ToInt64Nanoseconds(wait));
    }
    // Workers that fail together must not wait alike: 200 draws over at
    // least 50 ms of nanoseconds all but never repeat.
    EXPECT_GT(seen.size(), 150u) << "retry " << retry;
  }
}

}  // namespace
}  // namespace eventstore::internal
