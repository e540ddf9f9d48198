// A trace followed end to end, on every backend of AllTestBackends() and
// on a FailoverEventStore (tracing.h): a command's trace context
// (CommandContext::trace) saved through an AggregateRepository reaches the
// events' metadata, the append's span, the projection handler and its
// span, the outbox message's headers and the publisher's send span, all in
// the caller's trace.

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "eventstore/aggregate_repository.h"
#include "eventstore/command_context.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumented_event_store.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/tracing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/outbox_publisher.h"
#include "projections/projection.h"
#include "projections/projection_runner.h"
#include "tests/aggregates/bank_account.h"
#include "tests/instrumentation/traced_backend_test.h"
#include "tests/support/recording_tracer.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackendsAndFailover;
using ::eventstore::test::BankAccount;
using ::eventstore::test::RecordedSpan;
using ::eventstore::test::RecordingTracer;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::SizeIs;

// The caller's span: what an HTTP request's `traceparent` header carried.
constexpr char kCallerTraceparent[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kCallerTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kCallerTracestate[] = "rojo=00f067aa0ba902b7";

// Remembers the trace context each handled event carried.
class TraceRecordingProjection final : public Projection {
 public:
  std::string name() const override { return "trace-recorder"; }
  absl::Status Handle(const RecordedEvent& event) override {
    internal::MutexLock lock(&mutex_);
    seen_.push_back(event.metadata.traceparent());
    return absl::OkStatus();
  }
  std::vector<std::string> seen() const {
    internal::MutexLock lock(&mutex_);
    return seen_;
  }

 private:
  mutable internal::Mutex mutex_;
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mutex_);
};

// Keeps the headers of each message sent, as a broker would receive them.
class HeaderRecordingSink final : public OutboxSink {
 public:
  absl::Status Send(const OutboxEntry& entry) override {
    internal::MutexLock lock(&mutex_);
    sent_.push_back(entry.message.headers);
    return absl::OkStatus();
  }
  std::vector<std::map<std::string, std::string>> sent() const {
    internal::MutexLock lock(&mutex_);
    return sent_;
  }

 private:
  mutable internal::Mutex mutex_;
  std::vector<std::map<std::string, std::string>> sent_ ABSL_GUARDED_BY(mutex_);
};

class TracePropagationTest : public test::TracedBackendTest {};

TEST_P(TracePropagationTest, CommandTraceReachesHandlerAndOutboxHeaders) {
  // 1. A command saved with the caller's trace context.
  AggregateRepository<BankAccount> accounts(*store_);
  BankAccount account("acc-1");
  ASSERT_OK(account.Open("Ada"));
  ASSERT_OK(account.Deposit(100));
  OutboxMessage notice;
  notice.destination = "notifications";
  notice.key = "acc-1";
  notice.payload = "welcome";
  account.EnqueueMessage(std::move(notice));
  CommandContext context;
  context.correlation_id = "request-7";
  context.trace = TraceContext{kCallerTraceparent, kCallerTracestate};
  ASSERT_OK(accounts.Save(account, context));

  // 2. Every event's metadata carries it.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store_->ReadStream(accounts.StreamName("acc-1")));
  ASSERT_THAT(events, SizeIs(2));
  for (const RecordedEvent& event : events) {
    EXPECT_EQ(event.metadata.traceparent(), kCallerTraceparent);
    EXPECT_EQ(event.metadata.tracestate(), kCallerTracestate);
    EXPECT_EQ(event.metadata.correlation_id(), "request-7");
  }
  // The append's span continues the caller's trace.
  std::vector<RecordedSpan> appends = tracer_->ended("eventstore.append");
  ASSERT_THAT(appends, SizeIs(1));
  EXPECT_EQ(appends[0].parent.traceparent, kCallerTraceparent);
  EXPECT_EQ(appends[0].trace_id(), kCallerTraceId);

  // 3. The projection handler sees it, and its span is the event's child.
  TraceRecordingProjection projection;
  ProjectionRunnerOptions runner_options;
  runner_options.use_lease = false;
  runner_options.tracer = tracer_;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*store_, projection, runner_options));
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult run, runner->RunOnce());
  EXPECT_EQ(run.handled, 2);
  EXPECT_THAT(projection.seen(),
              ElementsAre(kCallerTraceparent, kCallerTraceparent));
  std::vector<RecordedSpan> handles =
      tracer_->ended("eventstore.projection.handle");
  ASSERT_THAT(handles, SizeIs(2));
  for (const RecordedSpan& span : handles) {
    EXPECT_EQ(span.kind, SpanKind::kConsumer);
    EXPECT_EQ(span.parent.traceparent, kCallerTraceparent);
    EXPECT_EQ(span.parent.tracestate, kCallerTracestate);
    EXPECT_EQ(span.trace_id(), kCallerTraceId);
  }

  // 4. The outbox message appended with the events carries it in its
  // headers, to the sink (the broker), and the send's span continues it.
  HeaderRecordingSink sink;
  OutboxPublisherOptions publisher_options;
  publisher_options.tracer = tracer_;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<OutboxPublisher> publisher,
      OutboxPublisher::Create(*store_, sink, publisher_options));
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult published, publisher->RunOnce());
  EXPECT_EQ(published.published, 1);
  ASSERT_THAT(sink.sent(), SizeIs(1));
  EXPECT_EQ(sink.sent()[0].at(kTraceparentHeader), kCallerTraceparent);
  EXPECT_EQ(sink.sent()[0].at(kTracestateHeader), kCallerTracestate);
  std::vector<RecordedSpan> sends = tracer_->ended("eventstore.outbox.send");
  ASSERT_THAT(sends, SizeIs(1));
  EXPECT_EQ(sends[0].kind, SpanKind::kProducer);
  EXPECT_EQ(sends[0].parent.traceparent, kCallerTraceparent);
  EXPECT_EQ(sends[0].trace_id(), kCallerTraceId);

  // Every span ended exactly once.
  for (const RecordedSpan& span : tracer_->ended()) {
    EXPECT_EQ(span.end_calls, 1) << span.name;
  }
  EXPECT_EQ(tracer_->started(), static_cast<int64_t>(tracer_->ended().size()));
}

TEST_P(TracePropagationTest, WithoutCallerTraceNothingIsInvented) {
  AggregateRepository<BankAccount> accounts(*store_);
  BankAccount account("acc-2");
  ASSERT_OK(account.Open("Bob"));
  OutboxMessage notice;
  notice.destination = "notifications";
  notice.payload = "welcome";
  account.EnqueueMessage(std::move(notice));
  ASSERT_OK(accounts.Save(account, CommandContext{}));

  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store_->ReadStream(accounts.StreamName("acc-2")));
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].metadata.traceparent(), "");
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store_->outbox().Pending(10));
  ASSERT_THAT(pending, SizeIs(1));
  EXPECT_EQ(pending[0].message.headers.count(kTraceparentHeader), 0u);
  std::vector<RecordedSpan> appends = tracer_->ended("eventstore.append");
  ASSERT_THAT(appends, SizeIs(1));
  EXPECT_TRUE(appends[0].parent.empty());
}

TEST_P(TracePropagationTest, InvalidCallerTraceNeverFailsTheCommand) {
  AggregateRepository<BankAccount> accounts(*store_);
  BankAccount account("acc-3");
  ASSERT_OK(account.Open("Cy"));
  CommandContext context;
  context.trace = TraceContext{"00-garbage", "rojo=1"};
  ASSERT_OK(accounts.Save(account, context));

  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store_->ReadStream(accounts.StreamName("acc-3")));
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].metadata.traceparent(), "");
  EXPECT_EQ(events[0].metadata.tracestate(), "");
  EXPECT_TRUE(tracer_->ended("eventstore.append").at(0).parent.empty());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, TracePropagationTest,
                         ::testing::ValuesIn(AllTestBackendsAndFailover()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
