// ClassifyAppend and the label names of instrumentation.h, and the log
// sink of log_sink.h.

#include "eventstore/instrumentation.h"

#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/errors.h"
#include "eventstore/event_store.h"
#include "eventstore/expected_version.h"
#include "eventstore/log_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/recording_log_sink.h"

namespace eventstore {
namespace {

using ::testing::ElementsAre;

absl::StatusOr<AppendResult> Ok(bool idempotent_retry = false,
                                bool journaled = false) {
  AppendResult result;
  result.next_expected_version = 3;
  result.idempotent_retry = idempotent_retry;
  result.journaled = journaled;
  return result;
}

TEST(ClassifyAppendTest, CommittedIsOk) {
  EXPECT_EQ(ClassifyAppend(Ok()), AppendOutcome::kOk);
}

TEST(ClassifyAppendTest, JournaledIsOk) {
  EXPECT_EQ(ClassifyAppend(Ok(false, true)), AppendOutcome::kOk);
}

TEST(ClassifyAppendTest, ExactRetryIsIdempotentRetry) {
  EXPECT_EQ(ClassifyAppend(Ok(true)), AppendOutcome::kIdempotentRetry);
}

TEST(ClassifyAppendTest, WrongExpectedVersion) {
  EXPECT_EQ(ClassifyAppend(
                WrongExpectedVersionError("s", ExpectedVersion::Exactly(1), 2)),
            AppendOutcome::kWrongExpectedVersion);
}

TEST(ClassifyAppendTest, AbortedWithoutVersionPayloadIsOther) {
  EXPECT_EQ(ClassifyAppend(absl::AbortedError("transaction aborted")),
            AppendOutcome::kOther);
}

TEST(ClassifyAppendTest, AlreadyExistsIsDuplicate) {
  EXPECT_EQ(ClassifyAppend(absl::AlreadyExistsError("events[0].id")),
            AppendOutcome::kDuplicate);
}

TEST(ClassifyAppendTest, UnavailableIsUnavailable) {
  EXPECT_EQ(ClassifyAppend(absl::UnavailableError("connection lost")),
            AppendOutcome::kUnavailable);
}

TEST(ClassifyAppendTest, AnyOtherErrorIsOther) {
  EXPECT_EQ(ClassifyAppend(absl::InvalidArgumentError("stream")),
            AppendOutcome::kOther);
  EXPECT_EQ(ClassifyAppend(absl::FailedPreconditionError("schema")),
            AppendOutcome::kOther);
  EXPECT_EQ(ClassifyAppend(absl::InternalError("bug")), AppendOutcome::kOther);
}

TEST(InstrumentationNamesTest, AppendOutcomeNames) {
  std::vector<std::string> names;
  for (AppendOutcome outcome : kAllAppendOutcomes) {
    names.emplace_back(AppendOutcomeName(outcome));
  }
  EXPECT_THAT(names, ElementsAre("ok", "wrong_expected_version", "duplicate",
                                 "idempotent_retry", "unavailable", "other"));
}

TEST(InstrumentationNamesTest, ReadKindAndOutboxOutcomeNames) {
  EXPECT_EQ(ReadKindName(ReadKind::kReadStream), "read_stream");
  EXPECT_EQ(ReadKindName(ReadKind::kReadAll), "read_all");
  EXPECT_EQ(OutboxSendOutcomeName(OutboxSendOutcome::kPublished), "published");
  EXPECT_EQ(OutboxSendOutcomeName(OutboxSendOutcome::kFailed), "failed");
  EXPECT_EQ(OutboxSendOutcomeName(OutboxSendOutcome::kGaveUp), "gave_up");
}

TEST(LogSinkTest, LevelNames) {
  EXPECT_EQ(LogLevelName(LogLevel::kDebug), "debug");
  EXPECT_EQ(LogLevelName(LogLevel::kInfo), "info");
  EXPECT_EQ(LogLevelName(LogLevel::kWarning), "warning");
  EXPECT_EQ(LogLevelName(LogLevel::kError), "error");
}

TEST(LogSinkTest, NullLogSinkIsOneSinkForTheProgram) {
  LogSink& sink = NullLogSink();
  sink.Log(LogLevel::kError, "failover", "dropped");
  EXPECT_EQ(&sink, &NullLogSink());
}

TEST(LogSinkTest, RecordingSinkKeepsEntriesInOrder) {
  test::RecordingLogSink sink;
  sink.Log(LogLevel::kInfo, "projection_runner", "lease gained: orders");
  sink.Log(LogLevel::kError, "failover", "replay parked");
  std::vector<test::LogEntry> entries = sink.entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].level, LogLevel::kInfo);
  EXPECT_EQ(entries[0].component, "projection_runner");
  EXPECT_EQ(entries[0].message, "lease gained: orders");
  EXPECT_EQ(entries[1].level, LogLevel::kError);
  EXPECT_EQ(entries[1].component, "failover");
}

TEST(LogSinkTest, RecordingSinkWaitsForAnEntryFromAnotherThread) {
  test::RecordingLogSink sink;
  std::thread logger([&sink] {
    sink.Log(LogLevel::kWarning, "postgres_pool", "reconnected after error");
  });
  EXPECT_TRUE(sink.WaitFor(LogLevel::kWarning, "postgres_pool", "reconnected",
                           absl::Seconds(30)));
  logger.join();
  // Nothing matches: the wait ends at its deadline.
  EXPECT_FALSE(sink.WaitFor(LogLevel::kError, "postgres_pool", "reconnected",
                            absl::Milliseconds(1)));
}

}  // namespace
}  // namespace eventstore
