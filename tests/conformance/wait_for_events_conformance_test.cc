// EventStore::WaitForEvents, run on every backend of AllTestBackends(): it
// times out on an idle store, returns at once when there already are events
// after the position, and wakes up promptly when another thread appends.
//
// Tests whose names start with "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;

// A wait that should end at once or on an append may take this long on a
// loaded machine; a missed wake-up waits for the whole kLongTimeout.
constexpr absl::Duration kPrompt = absl::Seconds(2);
constexpr absl::Duration kLongTimeout = absl::Seconds(10);

std::vector<EventData> OneEvent(int64_t n) {
  test::v1::Tick tick;
  tick.set_sequence(n);
  return {EventData::From(tick)};
}

class WaitForEventsConformanceTest : public test::StoreTest {
 protected:
  // Whether ReadAll finds an event after `after`.
  bool HasEventsAfter(Position after) {
    ReadAllOptions options;
    options.from_position = after;
    options.max_count = 1;
    absl::StatusOr<ReadAllPage> page = store().ReadAll(options);
    EXPECT_OK(page);
    return page.ok() && !page->events.empty();
  }
};

TEST_P(WaitForEventsConformanceTest, IdleStoreTimesOut) {
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(
      bool woke,
      store().WaitForEvents(Position::Start(), absl::Milliseconds(200)));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_FALSE(woke);
  EXPECT_GE(elapsed, absl::Milliseconds(150));
  EXPECT_LT(elapsed, absl::Seconds(5));
}

TEST_P(WaitForEventsConformanceTest, CaughtUpReaderTimesOut) {
  ASSERT_OK(store().Append("s", ExpectedVersion::Any(), OneEvent(1)));
  ASSERT_OK(store().Append("s", ExpectedVersion::Any(), OneEvent(2)));
  ASSERT_OK_AND_ASSIGN(Position head, store().HeadPosition());
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(bool woke,
                       store().WaitForEvents(head, absl::Milliseconds(200)));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_FALSE(woke);
  EXPECT_GE(elapsed, absl::Milliseconds(150));
  EXPECT_LT(elapsed, absl::Seconds(5));
}

TEST_P(WaitForEventsConformanceTest, ZeroTimeoutDoesNotWait) {
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(bool woke, store().WaitForEvents(Position::Start(),
                                                        absl::ZeroDuration()));
  EXPECT_FALSE(woke);
  EXPECT_LT(absl::Now() - start, kPrompt);
  ASSERT_OK(store().Append("s", ExpectedVersion::Any(), OneEvent(1)));
  ASSERT_OK_AND_ASSIGN(
      woke, store().WaitForEvents(Position::Start(), absl::ZeroDuration()));
  EXPECT_TRUE(woke);
}

TEST_P(WaitForEventsConformanceTest, ExistingEventsReturnAtOnce) {
  ASSERT_OK_AND_ASSIGN(
      AppendResult first,
      store().Append("s", ExpectedVersion::Any(), OneEvent(1)));
  ASSERT_OK(store().Append("s", ExpectedVersion::Any(), OneEvent(2)));
  for (Position after : {Position::Start(), first.last_position}) {
    SCOPED_TRACE(absl::StrCat("after ", after.ToString()));
    const absl::Time start = absl::Now();
    ASSERT_OK_AND_ASSIGN(bool woke, store().WaitForEvents(after, kLongTimeout));
    EXPECT_TRUE(woke);
    EXPECT_LT(absl::Now() - start, kPrompt);
  }
}

TEST_P(WaitForEventsConformanceTest, AppendFromAnotherThreadWakesTheWaiter) {
  ASSERT_OK(store().Append("s", ExpectedVersion::Any(), OneEvent(1)));
  ASSERT_OK_AND_ASSIGN(Position head, store().HeadPosition());
  absl::Status appended = absl::UnknownError("not run");
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(100));
    appended =
        store().Append("other", ExpectedVersion::Any(), OneEvent(2)).status();
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<bool> woke = store().WaitForEvents(head, kLongTimeout);
  const absl::Duration elapsed = absl::Now() - start;
  writer.join();
  ASSERT_OK(appended);
  ASSERT_OK(woke);
  EXPECT_TRUE(*woke);
  EXPECT_LT(elapsed, kPrompt);
  // It woke for the event, not before it.
  EXPECT_TRUE(HasEventsAfter(head));
}

// Appends right as the wait starts (and a little after), so that a backend
// that checks the log and then starts listening would miss the wake-up and
// wait for the whole timeout.
TEST_P(WaitForEventsConformanceTest, NoLostWakeUpRightAfterTheWaitStarts) {
  for (int delay_ms : {0, 0, 1, 2, 5, 10}) {
    SCOPED_TRACE(absl::StrCat("append after ", delay_ms, " ms"));
    ASSERT_OK_AND_ASSIGN(Position head, store().HeadPosition());
    absl::Status appended = absl::UnknownError("not run");
    std::thread writer([&] {
      if (delay_ms > 0) absl::SleepFor(absl::Milliseconds(delay_ms));
      appended = store()
                     .Append("s", ExpectedVersion::Any(), OneEvent(delay_ms))
                     .status();
    });
    const absl::Time start = absl::Now();
    absl::StatusOr<bool> woke = store().WaitForEvents(head, kLongTimeout);
    const absl::Duration elapsed = absl::Now() - start;
    writer.join();
    ASSERT_OK(appended);
    ASSERT_OK(woke);
    EXPECT_TRUE(*woke);
    EXPECT_LT(elapsed, kPrompt);
    EXPECT_TRUE(HasEventsAfter(head));
  }
}

// Three threads wait from the same position; one append wakes them all.
TEST_P(WaitForEventsConformanceTest, ConcurrentWaitersAllWake) {
  constexpr int kWaiters = 3;
  ASSERT_OK_AND_ASSIGN(Position head, store().HeadPosition());
  std::vector<absl::StatusOr<bool>> woke(kWaiters,
                                         absl::UnknownError("not run"));
  std::vector<absl::Duration> elapsed(kWaiters);
  std::atomic<int> waiting{0};
  std::vector<std::thread> waiters;
  for (int w = 0; w < kWaiters; ++w) {
    waiters.emplace_back([&, w] {
      waiting.fetch_add(1);
      const absl::Time start = absl::Now();
      woke[w] = store().WaitForEvents(head, kLongTimeout);
      elapsed[w] = absl::Now() - start;
    });
  }
  while (waiting.load() < kWaiters) std::this_thread::yield();
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_OK(store().Append("s", ExpectedVersion::Any(), OneEvent(1)));
  for (std::thread& t : waiters) t.join();
  for (int w = 0; w < kWaiters; ++w) {
    SCOPED_TRACE(absl::StrCat("waiter ", w));
    ASSERT_OK(woke[w]);
    EXPECT_TRUE(*woke[w]);
    EXPECT_LT(elapsed[w], absl::Milliseconds(100) + kPrompt);
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, WaitForEventsConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
