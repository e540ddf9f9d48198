// InstrumentedEventStore::AppendEach on every backend: the call reaches the
// target's AppendEach (the backend's batch, not Append per request), and
// each append of the batch is reported as Append would report it.

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/instrumented_event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/test/v1/events.pb.h"
#include "gtest/gtest.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/recording_tracer.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::RecordedAppend;
using ::eventstore::test::RecordingInstrumentation;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  EventData event = EventData::From(placed);
  event.id = Uuid::Generate();
  return event;
}

// Counts the calls that reach the store it wraps.
class CountingStore final : public ForwardingEventStore {
 public:
  explicit CountingStore(std::unique_ptr<EventStore> target)
      : ForwardingEventStore(target.get()), owned_(std::move(target)) {}

  using EventStore::Append;
  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    appends++;
    return ForwardingEventStore::Append(request);
  }
  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests) override {
    batches++;
    return target()->AppendEach(requests);
  }

  std::atomic<int> appends{0};
  std::atomic<int> batches{0};

 private:
  std::unique_ptr<EventStore> owned_;
};

class InstrumentedAppendEachTest
    : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> opened,
                         GetParam().open(nullptr));
    auto counting = std::make_unique<CountingStore>(std::move(opened));
    counting_ = counting.get();
    store_ = Instrument(std::move(counting), recorder_, "label-under-test");
    ASSERT_NE(store_, nullptr);
  }

  std::shared_ptr<RecordingInstrumentation> recorder_ =
      std::make_shared<RecordingInstrumentation>();
  CountingStore* counting_ = nullptr;
  std::unique_ptr<EventStore> store_;
};

TEST_P(InstrumentedAppendEachTest, ReportsEachAppendOfOneBatch) {
  const std::vector<EventData> earlier = {Placed("earlier")};
  ASSERT_OK(store_->Append("each-retried", ExpectedVersion::Any(), earlier));
  const std::vector<EventData> ok = {Placed("a"), Placed("bb")};
  const std::vector<EventData> conflict = {Placed("c")};
  OutboxMessage message;
  message.destination = "topic";
  message.payload = "p";
  const std::vector<OutboxMessage> outbox = {message};
  const std::vector<AppendRequest> requests = {
      {"each-ok", ExpectedVersion::NoStream(), ok, outbox},
      {"each-conflict", ExpectedVersion::Exactly(7), conflict},
      {"each-retried", ExpectedVersion::Any(), earlier}};
  const int appends_before = counting_->appends.load();
  ASSERT_OK_AND_ASSIGN(auto results, store_->AppendEach(requests));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(counting_->batches.load(), 1);
  EXPECT_EQ(counting_->appends.load(), appends_before);

  const std::vector<RecordedAppend> appends = recorder_->appends();
  ASSERT_EQ(appends.size(), 4u);  // the earlier Append, then the batch
  EXPECT_EQ(appends[1].outcome, AppendOutcome::kOk);
  EXPECT_EQ(appends[1].events, 2);
  EXPECT_EQ(appends[1].backend, "label-under-test");
  EXPECT_EQ(appends[2].outcome, AppendOutcome::kWrongExpectedVersion);
  EXPECT_EQ(appends[3].outcome, AppendOutcome::kIdempotentRetry);
  EXPECT_EQ(appends[1].latency, appends[3].latency);
  EXPECT_GT(appends[1].latency, absl::ZeroDuration());
  ASSERT_EQ(recorder_->enqueues().size(), 1u);
  EXPECT_EQ(recorder_->enqueues()[0].messages, 1);
}

TEST_P(InstrumentedAppendEachTest, BatchIsOneSpan) {
  auto tracer = std::make_shared<test::RecordingTracer>();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> opened,
                       GetParam().open(nullptr));
  InstrumentOptions options;
  options.tracer = tracer;
  options.backend_label = "traced";
  std::unique_ptr<EventStore> traced =
      Instrument(std::move(opened), std::move(options));
  const std::vector<EventData> a = {Placed("a"), Placed("b")};
  const std::vector<EventData> b = {Placed("c")};
  const std::vector<AppendRequest> requests = {
      {"span-a", ExpectedVersion::NoStream(), a},
      {"span-b", ExpectedVersion::NoStream(), b}};
  ASSERT_OK(traced->AppendEach(requests));
  const std::vector<test::RecordedSpan> spans = tracer->ended();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].name, "eventstore.append_each");
  EXPECT_EQ(spans[0].string_attributes.at("eventstore.backend"), "traced");
  EXPECT_EQ(spans[0].int_attributes.at("eventstore.appends"), 2);
  EXPECT_EQ(spans[0].int_attributes.at("eventstore.events"), 3);
}

TEST_P(InstrumentedAppendEachTest, EmptyBatchReportsNothing) {
  EXPECT_THAT(store_->AppendEach({}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(recorder_->appends().empty());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, InstrumentedAppendEachTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
