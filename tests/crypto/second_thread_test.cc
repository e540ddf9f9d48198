#include "eventstore/crypto/second_thread.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace eventstore::crypto::internal {
namespace {

TEST(SecondThreadConcurrentTest, RunsBothHalvesOnTwoThreads) {
  SecondThread second;
  std::thread::id here;
  std::thread::id there;
  second.RunBoth([&] { here = std::this_thread::get_id(); },
                 [&] { there = std::this_thread::get_id(); });
  EXPECT_EQ(here, std::this_thread::get_id());
  EXPECT_NE(there, std::this_thread::get_id());
  EXPECT_NE(there, std::thread::id());
}

TEST(SecondThreadConcurrentTest, ManyCallersEachJobRunsOnceBeforeReturn) {
  SecondThread second;
  constexpr int kCallers = 4;
  constexpr int kRounds = 500;
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        int a = 0;
        int b = 0;
        second.RunBoth([&] { ++a; }, [&] { ++b; });
        // Both ran, once, before RunBoth returned.
        if (a != 1 || b != 1) ++wrong;
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(SecondThreadConcurrentTest, DestroyedUnusedOrUsed) {
  { SecondThread unused; }
  int runs = 0;
  {
    SecondThread used;
    used.RunBoth([&] { ++runs; }, [&] { ++runs; });
  }
  EXPECT_EQ(runs, 2);
}

}  // namespace
}  // namespace eventstore::crypto::internal
