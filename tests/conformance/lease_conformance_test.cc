// The Lease contract (lease.h, EventStore::TryAcquireLease), run on every
// backend of AllTestBackends(): one holder per name at a time, released when
// the lease is destroyed.
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
#include "eventstore/event_store.h"
#include "eventstore/lease.h"
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

class LeaseConformanceTest : public test::StoreTest {};

TEST_P(LeaseConformanceTest, AcquireGivesAValidLease) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       store().TryAcquireLease("projection:totals"));
  ASSERT_NE(lease, nullptr);
  EXPECT_TRUE(lease->Valid());
  // Still valid a little later, with the store in use meanwhile.
  ASSERT_OK(store().HeadPosition());
  EXPECT_TRUE(lease->Valid());
}

TEST_P(LeaseConformanceTest, SecondAcquireWhileHeldIsNull) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> first,
                       store().TryAcquireLease("projection:totals"));
  ASSERT_NE(first, nullptr);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> second,
                       store().TryAcquireLease("projection:totals"));
  EXPECT_EQ(second, nullptr);
  // And again: a failed attempt does not disturb the holder.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> third,
                       store().TryAcquireLease("projection:totals"));
  EXPECT_EQ(third, nullptr);
  EXPECT_TRUE(first->Valid());
}

TEST_P(LeaseConformanceTest, SecondAcquireFromAnotherThreadIsNull) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> first,
                       store().TryAcquireLease("projection:totals"));
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<Lease>> second = absl::UnknownError("not run");
  std::thread other(
      [&] { second = store().TryAcquireLease("projection:totals"); });
  other.join();
  ASSERT_OK(second);
  EXPECT_EQ(*second, nullptr);
  EXPECT_TRUE(first->Valid());
}

TEST_P(LeaseConformanceTest, DifferentNamesAreIndependent) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> a,
                       store().TryAcquireLease("projection:a"));
  ASSERT_NE(a, nullptr);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> b,
                       store().TryAcquireLease("projection:b"));
  ASSERT_NE(b, nullptr);
  // Names that differ only in case or by a prefix are different names too.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> c,
                       store().TryAcquireLease("projection:A"));
  EXPECT_NE(c, nullptr);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> d,
                       store().TryAcquireLease("projection:ab"));
  EXPECT_NE(d, nullptr);
  EXPECT_TRUE(a->Valid());
  EXPECT_TRUE(b->Valid());
}

TEST_P(LeaseConformanceTest, DestroyingReleases) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       store().TryAcquireLease("projection:totals"));
  ASSERT_NE(lease, nullptr);
  lease.reset();
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> again,
                         store().TryAcquireLease("projection:totals"));
    ASSERT_NE(again, nullptr);
    EXPECT_TRUE(again->Valid());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> blocked,
                         store().TryAcquireLease("projection:totals"));
    EXPECT_EQ(blocked, nullptr);
  }
}

// Eight threads try for one name at once: exactly one gets it.
TEST_P(LeaseConformanceTest, ConcurrentAcquireHasOneWinner) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string name = absl::StrCat("contended-", round);
    std::vector<std::unique_ptr<Lease>> won(kThreads);
    std::vector<std::string> errors(kThreads);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        absl::StatusOr<std::unique_ptr<Lease>> lease =
            store().TryAcquireLease(name);
        if (lease.ok()) {
          won[t] = *std::move(lease);
        } else {
          errors[t] = lease.status().ToString();
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    int winners = 0;
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_EQ(errors[t], "") << "thread " << t;
      if (won[t] != nullptr) {
        ++winners;
        EXPECT_TRUE(won[t]->Valid());
      }
    }
    EXPECT_EQ(winners, 1);
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, LeaseConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
