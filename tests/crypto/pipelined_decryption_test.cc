#include "eventstore/crypto/pipelined_decryption.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore::crypto::internal {
namespace {

using ::eventstore::test::StatusIs;

std::vector<RecordedEvent> Page(int first, int count) {
  std::vector<RecordedEvent> page(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    page[static_cast<size_t>(i)].version = first + i;
    page[static_cast<size_t>(i)].payload = "sealed";
  }
  return page;
}

TEST(PipelinedDecryptionConcurrentTest,
     EveryPageDecryptedInOrderOnASecondThread) {
  std::vector<std::thread::id> threads;
  PipelinedDecryption pipeline([&](std::vector<RecordedEvent>& page) {
    threads.push_back(std::this_thread::get_id());
    for (RecordedEvent& e : page) e.payload = "plain";
    return absl::OkStatus();
  });
  for (int p = 0; p < 20; ++p) pipeline.Add(Page(1 + p * 7, 7));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       pipeline.Finish(absl::OkStatus()));
  ASSERT_EQ(events.size(), 140u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].version, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(events[i].payload, "plain");
  }
  ASSERT_EQ(threads.size(), 20u);
  for (const std::thread::id& id : threads) {
    EXPECT_NE(id, std::this_thread::get_id());
  }
}

TEST(PipelinedDecryptionConcurrentTest, OnePageIsDecryptedOnTheCallersThread) {
  std::thread::id decrypted_on;
  PipelinedDecryption pipeline([&](std::vector<RecordedEvent>& page) {
    decrypted_on = std::this_thread::get_id();
    for (RecordedEvent& e : page) e.payload = "plain";
    return absl::OkStatus();
  });
  pipeline.Add(Page(1, 3));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       pipeline.Finish(absl::OkStatus()));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].payload, "plain");
  EXPECT_EQ(decrypted_on, std::this_thread::get_id());
}

TEST(PipelinedDecryptionConcurrentTest, NothingReadIsEmpty) {
  int calls = 0;
  PipelinedDecryption pipeline([&](std::vector<RecordedEvent>&) {
    ++calls;
    return absl::OkStatus();
  });
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       pipeline.Finish(absl::OkStatus()));
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(calls, 0);
}

TEST(PipelinedDecryptionConcurrentTest, TheFirstDecryptionErrorIsReturned) {
  int calls = 0;
  PipelinedDecryption pipeline([&](std::vector<RecordedEvent>& page) {
    ++calls;
    if (page.front().version == 11) {
      return absl::FailedPreconditionError("no key for page 2");
    }
    return absl::OkStatus();
  });
  for (int p = 0; p < 5; ++p) pipeline.Add(Page(1 + p * 10, 10));
  EXPECT_THAT(pipeline.Finish(absl::OkStatus()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // Pages after the error are not decrypted.
  EXPECT_EQ(calls, 2);
}

TEST(PipelinedDecryptionConcurrentTest, AReadErrorWinsAndTheThreadIsJoined) {
  PipelinedDecryption pipeline(
      [](std::vector<RecordedEvent>&) { return absl::OkStatus(); });
  pipeline.Add(Page(1, 4));
  pipeline.Add(Page(5, 4));
  EXPECT_THAT(pipeline.Finish(absl::UnavailableError("server went away")),
              StatusIs(absl::StatusCode::kUnavailable));
  PipelinedDecryption single(
      [](std::vector<RecordedEvent>&) { return absl::OkStatus(); });
  single.Add(Page(1, 4));
  EXPECT_THAT(single.Finish(absl::UnavailableError("server went away")),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(PipelinedDecryptionConcurrentTest, DestroyedWithoutFinishJoinsTheThread) {
  int calls = 0;
  {
    PipelinedDecryption pipeline([&](std::vector<RecordedEvent>&) {
      ++calls;
      return absl::OkStatus();
    });
    for (int p = 0; p < 3; ++p) pipeline.Add(Page(1 + p, 1));
  }
  EXPECT_EQ(calls, 3);
}

}  // namespace
}  // namespace eventstore::crypto::internal
