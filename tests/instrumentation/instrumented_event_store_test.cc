// InstrumentedEventStore (instrumented_event_store.h) on every backend: what
// it reports after known operations, and that results pass through
// unchanged.

#include "eventstore/instrumented_event_store.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/outbox_message.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::RecordedAppend;
using ::eventstore::test::RecordedRead;
using ::eventstore::test::RecordingInstrumentation;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  placed.add_items("book");
  return EventData::From(placed);
}

int64_t PayloadBytes(const std::vector<EventData>& events) {
  int64_t bytes = 0;
  for (const EventData& event : events) bytes += event.payload.size();
  return bytes;
}

class InstrumentedEventStoreTest
    : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> opened,
                         GetParam().open(nullptr));
    store_ = Instrument(std::move(opened), recorder_, "label-under-test");
    ASSERT_NE(store_, nullptr);
  }

  std::shared_ptr<RecordingInstrumentation> recorder_ =
      std::make_shared<RecordingInstrumentation>();
  std::unique_ptr<EventStore> store_;
};

TEST_P(InstrumentedEventStoreTest, AppendOfThreeEventsIsOneOkAppend) {
  const std::vector<EventData> events = {Placed("a"), Placed("bb"),
                                         Placed("ccc")};
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::NoStream(), events));

  std::vector<RecordedAppend> appends = recorder_->appends();
  ASSERT_EQ(appends.size(), 1u);
  EXPECT_EQ(appends[0].backend, "label-under-test");
  EXPECT_EQ(appends[0].outcome, AppendOutcome::kOk);
  EXPECT_EQ(appends[0].events, 3);
  EXPECT_EQ(appends[0].payload_bytes, PayloadBytes(events));
  EXPECT_GT(appends[0].payload_bytes, 0);
  EXPECT_GT(appends[0].latency, absl::ZeroDuration());
  EXPECT_TRUE(recorder_->reads().empty());
}

TEST_P(InstrumentedEventStoreTest, ConflictIsWrongExpectedVersion) {
  ASSERT_OK(
      store_->Append("order-1", ExpectedVersion::NoStream(), {Placed("a")}));
  const std::vector<EventData> late = {Placed("b"), Placed("c")};
  EXPECT_THAT(store_->Append("order-1", ExpectedVersion::NoStream(), late),
              StatusIs(absl::StatusCode::kAborted));

  std::vector<RecordedAppend> appends = recorder_->appends();
  ASSERT_EQ(appends.size(), 2u);
  EXPECT_EQ(appends[1].outcome, AppendOutcome::kWrongExpectedVersion);
  EXPECT_EQ(appends[1].events, 2);
  EXPECT_EQ(appends[1].payload_bytes, PayloadBytes(late));
}

TEST_P(InstrumentedEventStoreTest, RetryOfSameIdsIsIdempotentRetry) {
  const std::vector<EventData> events = {Placed("a"), Placed("b"), Placed("c")};
  ASSERT_OK_AND_ASSIGN(
      AppendResult first,
      store_->Append("order-1", ExpectedVersion::NoStream(), events));
  ASSERT_OK_AND_ASSIGN(
      AppendResult retry,
      store_->Append("order-1", ExpectedVersion::NoStream(), events));
  EXPECT_EQ(retry, first);
  EXPECT_FALSE(first.idempotent_retry);
  EXPECT_TRUE(retry.idempotent_retry);

  std::vector<RecordedAppend> appends = recorder_->appends();
  ASSERT_EQ(appends.size(), 2u);
  EXPECT_EQ(appends[0].outcome, AppendOutcome::kOk);
  EXPECT_EQ(appends[1].outcome, AppendOutcome::kIdempotentRetry);
  EXPECT_EQ(appends[1].events, 3);
}

TEST_P(InstrumentedEventStoreTest, ReusedIdInAnotherStreamIsDuplicate) {
  const EventData event = Placed("a");
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::NoStream(), {event}));
  EXPECT_THAT(store_->Append("order-2", ExpectedVersion::NoStream(), {event}),
              StatusIs(absl::StatusCode::kAlreadyExists));

  std::vector<RecordedAppend> appends = recorder_->appends();
  ASSERT_EQ(appends.size(), 2u);
  EXPECT_EQ(appends[1].outcome, AppendOutcome::kDuplicate);
}

TEST_P(InstrumentedEventStoreTest, EmptyBatchIsOther) {
  EXPECT_THAT(store_->Append("order-1", ExpectedVersion::Any(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));

  std::vector<RecordedAppend> appends = recorder_->appends();
  ASSERT_EQ(appends.size(), 1u);
  EXPECT_EQ(appends[0].outcome, AppendOutcome::kOther);
  EXPECT_EQ(appends[0].events, 0);
  EXPECT_EQ(appends[0].payload_bytes, 0);
}

TEST_P(InstrumentedEventStoreTest, ReadsReportEventsReturned) {
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::NoStream(),
                           {Placed("a"), Placed("b"), Placed("c")}));
  ASSERT_OK(
      store_->Append("order-2", ExpectedVersion::NoStream(), {Placed("d")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stream,
                       store_->ReadStream("order-1"));
  EXPECT_EQ(stream.size(), 3u);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> absent,
                       store_->ReadStream("order-9"));
  EXPECT_TRUE(absent.empty());
  ReadAllOptions options;
  options.max_count = 2;
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store_->ReadAll(options));
  EXPECT_EQ(page.events.size(), 2u);

  std::vector<RecordedRead> reads = recorder_->reads();
  ASSERT_EQ(reads.size(), 3u);
  EXPECT_EQ(reads[0].backend, "label-under-test");
  EXPECT_EQ(reads[0].kind, ReadKind::kReadStream);
  EXPECT_TRUE(reads[0].ok);
  EXPECT_EQ(reads[0].events, 3);
  EXPECT_GT(reads[0].latency, absl::ZeroDuration());
  EXPECT_EQ(reads[1].kind, ReadKind::kReadStream);
  EXPECT_TRUE(reads[1].ok);
  EXPECT_EQ(reads[1].events, 0);
  EXPECT_EQ(reads[2].kind, ReadKind::kReadAll);
  EXPECT_TRUE(reads[2].ok);
  EXPECT_EQ(reads[2].events, 2);
}

TEST_P(InstrumentedEventStoreTest, FailedReadIsNotOk) {
  ReadStreamOptions options;
  options.max_count = -1;
  EXPECT_THAT(store_->ReadStream("order-1", options),
              StatusIs(absl::StatusCode::kInvalidArgument));

  std::vector<RecordedRead> reads = recorder_->reads();
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_FALSE(reads[0].ok);
  EXPECT_EQ(reads[0].events, 0);
}

TEST_P(InstrumentedEventStoreTest, CommittedOutboxMessagesAreEnqueued) {
  const std::vector<EventData> events = {Placed("a")};
  const std::vector<OutboxMessage> messages = {{"orders", "k1", "m1", {}},
                                               {"orders", "k2", "m2", {}}};
  AppendRequest request{"order-1", ExpectedVersion::NoStream(), events,
                        messages};
  ASSERT_OK(store_->Append(request));
  // A retry enqueues nothing again, and is not counted again.
  ASSERT_OK(store_->Append(request));

  std::vector<test::RecordedEnqueue> enqueues = recorder_->enqueues();
  ASSERT_EQ(enqueues.size(), 1u);
  EXPECT_EQ(enqueues[0].backend, "label-under-test");
  EXPECT_EQ(enqueues[0].messages, 2);
}

TEST_P(InstrumentedEventStoreTest, OtherCallsPassThrough) {
  ASSERT_OK_AND_ASSIGN(
      AppendResult result,
      store_->Append("order-1", ExpectedVersion::NoStream(), {Placed("a")}));
  ASSERT_OK_AND_ASSIGN(int64_t version, store_->StreamVersion("order-1"));
  EXPECT_EQ(version, 1);
  ASSERT_OK_AND_ASSIGN(Position head, store_->HeadPosition());
  EXPECT_EQ(head, result.last_position);
  EXPECT_EQ(recorder_->appends().size(), 1u);
  EXPECT_TRUE(recorder_->reads().empty());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, InstrumentedEventStoreTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

TEST(InstrumentTest, WithoutInstrumentationReturnsTheStoreItself) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> opened,
                       AllTestBackends().front().open(nullptr));
  EventStore* const raw = opened.get();
  std::unique_ptr<EventStore> store =
      Instrument(std::move(opened), nullptr, "sqlite");
  EXPECT_EQ(store.get(), raw);
}

TEST(InstrumentTest, WithoutStoreReturnsNull) {
  EXPECT_EQ(Instrument(nullptr, std::make_shared<RecordingInstrumentation>(),
                       "sqlite"),
            nullptr);
}

}  // namespace
}  // namespace eventstore
