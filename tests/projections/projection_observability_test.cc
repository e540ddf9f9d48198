// What ProjectionRunner reports to the instrumentation, log sink and tracer
// of its options, on every backend of AllTestBackends(): handler calls,
// retries, dead letters, checkpoints with their lag, the lease, log
// messages and spans; plain, transactional and replayed; through RunOnce,
// Rebuild, ReplayParked and the background thread.
//
// Tests whose names contain "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/lease.h"
#include "eventstore/log_sink.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/tracing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/projection_runner.h"
#include "tests/projections/faulty_store.h"
#include "tests/projections/observed_backend_test.h"
#include "tests/projections/test_projections.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/recording_log_sink.h"
#include "tests/support/recording_tracer.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::AppendOrders;
using ::eventstore::test::FaultyStore;
using ::eventstore::test::kPlaced;
using ::eventstore::test::LogEntry;
using ::eventstore::test::RecordedProjectionCheckpoint;
using ::eventstore::test::RecordedProjectionEvent;
using ::eventstore::test::RecordedSpan;
using ::eventstore::test::RecordingInstrumentation;
using ::eventstore::test::RecordingLogSink;
using ::eventstore::test::RecordingProjection;
using ::eventstore::test::RecordingTracer;
using ::eventstore::test::RowProjection;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr absl::Duration kLong = absl::Seconds(30);
constexpr char kTable[] = "observed_rows";

// Two W3C trace contexts, as a command's span would have put them in
// event metadata.
constexpr char kTraceA[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kTraceIdA[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kTraceB[] =
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
constexpr char kTraceIdB[] = "0af7651916cd43dd8448eb211c80319c";

// A lease whose holder the test can declare lost (as when the lease's
// database connection breaks).
class BreakableLease final : public Lease {
 public:
  BreakableLease(std::unique_ptr<Lease> lease, std::atomic<bool>* broken)
      : lease_(std::move(lease)), broken_(broken) {}
  bool Valid() override { return !*broken_ && lease_->Valid(); }

 private:
  std::unique_ptr<Lease> lease_;
  std::atomic<bool>* const broken_;
};

// FaultyStore whose leases break on demand: break_leases() makes the
// leases held invalid; new ones are valid again.
class LeaseBreakingStore final : public ForwardingEventStore {
 public:
  explicit LeaseBreakingStore(std::unique_ptr<EventStore> store)
      : ForwardingEventStore(store.get()), store_(std::move(store)) {}

  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireLease(
      std::string_view name) override {
    if (broken_) {
      // The holder noticed (its lease was released): new leases are valid.
      broken_ = false;
    }
    absl::StatusOr<std::unique_ptr<Lease>> lease =
        ForwardingEventStore::TryAcquireLease(name);
    if (!lease.ok() || *lease == nullptr) return lease;
    return std::unique_ptr<Lease>(
        new BreakableLease(*std::move(lease), &broken_));
  }
  void break_leases() { broken_ = true; }

 private:
  std::unique_ptr<EventStore> store_;
  std::atomic<bool> broken_{false};
};

class ProjectionObservabilityTest : public test::ObservedBackendTest {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventStore>> opened =
        GetParam().open(nullptr);
    ASSERT_OK(opened);
    auto leases = std::make_unique<LeaseBreakingStore>(*std::move(opened));
    leases_ = leases.get();
    store_ = std::make_unique<FaultyStore>(std::move(leases));
    ASSERT_OK(RowProjection::CreateTable(store(), kTable));
  }

  EventStore& store() { return *store_; }

  // Fast options with everything attached; retry waits recorded, not
  // slept.
  ProjectionRunnerOptions Observed() {
    ProjectionRunnerOptions options;
    options.batch_size = 10;
    options.idle_wait = absl::Milliseconds(100);
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(5);
    options.lease_retry_interval = absl::Milliseconds(20);
    options.retrying_check_interval = absl::Milliseconds(20);
    options.retry_sleep = [](absl::Duration) {};
    options.instrumentation = metrics_;
    options.log_sink = log_;
    options.tracer = tracer_;
    return options;
  }

  template <typename P>
  std::unique_ptr<ProjectionRunner> MakeRunner(
      P& projection, ProjectionRunnerOptions options) {
    absl::StatusOr<std::unique_ptr<ProjectionRunner>> runner =
        ProjectionRunner::Create(store(), projection, std::move(options));
    EXPECT_OK(runner);
    return runner.ok() ? *std::move(runner) : nullptr;
  }

  // The events of the log, in order.
  std::vector<RecordedEvent> Log() {
    ReadAllOptions read;
    read.max_count = 10000;
    absl::StatusOr<ReadAllPage> page = store().ReadAll(read);
    EXPECT_OK(page);
    return page.ok() ? page->events : std::vector<RecordedEvent>();
  }

  // Appends one OrderPlaced event to `stream` carrying `traceparent` (none
  // when empty); returns its id.
  Uuid AppendTraced(const std::string& stream, const std::string& traceparent) {
    test::v1::OrderPlaced placed;
    placed.set_order_id(stream);
    EventData data = EventData::From(placed);
    if (!traceparent.empty()) {
      data.metadata.set_traceparent(traceparent);
      data.metadata.set_tracestate("vendor=1");
    }
    EXPECT_OK(store().Append(stream, ExpectedVersion::Any(), {data}).status());
    return data.id;
  }

  int64_t Calls(bool ok) {
    int64_t n = 0;
    for (const RecordedProjectionEvent& e : metrics_->projection_events()) {
      if (e.ok == ok) ++n;
    }
    return n;
  }

  LeaseBreakingStore* leases_ = nullptr;
  std::unique_ptr<FaultyStore> store_;
};

// The lag reported with each checkpoint is the number of events after it:
// the estimate from positions while pages are full, exact on the last page.
TEST_P(ProjectionObservabilityTest, CatchUpReportsEachCallAndCheckpointLag) {
  ASSERT_OK(AppendOrders(store(), "order-1", 25).status());
  const std::vector<RecordedEvent> log = Log();
  ASSERT_THAT(log, SizeIs(25));
  RecordingProjection projection("counted");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 25);
  const std::vector<RecordedProjectionEvent> calls =
      metrics_->projection_events();
  ASSERT_THAT(calls, SizeIs(25));
  for (const RecordedProjectionEvent& call : calls) {
    EXPECT_EQ(call.projection, "counted");
    EXPECT_TRUE(call.ok);
    EXPECT_GE(call.latency, absl::ZeroDuration());
  }
  const std::vector<RecordedProjectionCheckpoint> checkpoints =
      metrics_->projection_checkpoints();
  ASSERT_THAT(checkpoints, SizeIs(3));
  EXPECT_EQ(checkpoints[0].projection, "counted");
  EXPECT_EQ(checkpoints[0].checkpoint, log[9].position);
  EXPECT_EQ(checkpoints[0].lag_events, 15);  // before catch-up: > 0
  EXPECT_EQ(checkpoints[1].checkpoint, log[19].position);
  EXPECT_EQ(checkpoints[1].lag_events, 5);
  EXPECT_EQ(checkpoints[2].checkpoint, log[24].position);
  EXPECT_EQ(checkpoints[2].lag_events, 0);  // caught up
  EXPECT_THAT(metrics_->projection_retries(), IsEmpty());
  EXPECT_THAT(metrics_->projection_dead_letters(), IsEmpty());
  // RunOnce holds the lease for the call.
  ASSERT_THAT(metrics_->projection_leases(), SizeIs(2));
  EXPECT_TRUE(metrics_->projection_leases()[0].held);
  EXPECT_FALSE(metrics_->projection_leases()[1].held);
  // Nothing went wrong: no warning, no error.
  EXPECT_THAT(Logs(LogLevel::kWarning), IsEmpty());
  EXPECT_THAT(Logs(LogLevel::kError), IsEmpty());

  // Caught up, a new call reads nothing and reports nothing new.
  ASSERT_OK(runner->RunOnce().status());
  EXPECT_THAT(metrics_->projection_checkpoints(), SizeIs(3));
  EXPECT_THAT(metrics_->projection_events(), SizeIs(25));
}

TEST_P(ProjectionObservabilityTest, LagBeforeTheFirstCheckpointOfARebuild) {
  ASSERT_OK(AppendOrders(store(), "order-1", 12).status());
  RowProjection projection("rebuilt", kTable);
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->Rebuild());
  EXPECT_EQ(result.handled, 12);
  const std::vector<RecordedProjectionCheckpoint> checkpoints =
      metrics_->projection_checkpoints();
  // RunOnce: 10 (lag 2), 12 (lag 0); Rebuild: the same again.
  ASSERT_THAT(checkpoints, SizeIs(4));
  EXPECT_EQ(checkpoints[2].lag_events, 2);
  EXPECT_EQ(checkpoints[3].lag_events, 0);
  EXPECT_EQ(Calls(true), 24);
}

TEST_P(ProjectionObservabilityTest, PlainRetriesAreCountedAndLogged) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-7", 5));
  RecordingProjection projection("flaky");
  projection.FailWith([&](const RecordedEvent& event, int call) {
    return event.id == ids[1] && call <= 2 ? absl::InternalError("flaky\n")
                                           : absl::OkStatus();
  });
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 5);
  EXPECT_THAT(metrics_->projection_retries(), ElementsAre("flaky", "flaky"));
  EXPECT_EQ(Calls(true), 5);
  EXPECT_EQ(Calls(false), 2);
  EXPECT_THAT(metrics_->projection_dead_letters(), IsEmpty());
  const std::vector<LogEntry> warnings = Logs(LogLevel::kWarning);
  ASSERT_THAT(warnings, SizeIs(2));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(warnings[i].component, "projection_runner");
    EXPECT_THAT(warnings[i].message, HasSubstr("projection 'flaky'"));
    EXPECT_THAT(warnings[i].message, HasSubstr(ids[1].ToString()));
    EXPECT_THAT(warnings[i].message, HasSubstr("stream 'order-7'"));
    EXPECT_THAT(warnings[i].message,
                HasSubstr(absl::StrCat("attempt ", i + 1, " of 5")));
    EXPECT_THAT(warnings[i].message, HasSubstr("INTERNAL: flaky"));
    // One line, without a trailing newline (the error had one).
    EXPECT_EQ(warnings[i].message.find('\n'), std::string::npos);
    EXPECT_NE(warnings[i].message.back(), ' ');
  }
  EXPECT_THAT(Logs(LogLevel::kError), IsEmpty());
}

// The failure in the batch is the first attempt; the batch rolls back and
// its events are handled again one by one (each call reported).
TEST_P(ProjectionObservabilityTest, TransactionalRetriesAreCountedAndLogged) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 5));
  RowProjection projection("tx-flaky", kTable);
  projection.FailWith([&](const RecordedEvent& event, int call) {
    return event.id == ids[1] && call <= 2 ? absl::InternalError("flaky")
                                           : absl::OkStatus();
  });
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 5);
  EXPECT_THAT(metrics_->projection_retries(), SizeIs(2));
  // Batch: ids[0] ok, ids[1] fails. One by one: ids[0] ok, ids[1] fails,
  // then succeeds, ids[2..4] ok.
  EXPECT_EQ(Calls(true), 6);
  EXPECT_EQ(Calls(false), 2);
  const std::vector<LogEntry> warnings = Logs(LogLevel::kWarning);
  ASSERT_THAT(warnings, SizeIs(2));
  EXPECT_THAT(warnings[0].message, HasSubstr("attempt 1 of 5"));
  EXPECT_THAT(warnings[1].message, HasSubstr("attempt 2 of 5"));
  // A checkpoint per event after the failure, the last caught up.
  const std::vector<RecordedProjectionCheckpoint> checkpoints =
      metrics_->projection_checkpoints();
  ASSERT_THAT(checkpoints, SizeIs(5));
  EXPECT_EQ(checkpoints[0].lag_events, 4);
  EXPECT_EQ(checkpoints[4].lag_events, 0);
}

TEST_P(ProjectionObservabilityTest, PoisonEventIsOneDeadLetterAndAnErrorLog) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-3", 4));
  RecordingProjection plain("poison");
  RowProjection transactional("tx-poison", kTable);
  const auto rule = [&](const RecordedEvent& event, int) {
    return event.id == ids[2] ? absl::InternalError("cannot apply")
                              : absl::OkStatus();
  };
  plain.FailWith(rule);
  transactional.FailWith(rule);
  ProjectionRunnerOptions options = Observed();
  options.max_attempts = 3;
  std::unique_ptr<ProjectionRunner> plain_runner = MakeRunner(plain, options);
  std::unique_ptr<ProjectionRunner> tx_runner =
      MakeRunner(transactional, options);

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult plain_result,
                       plain_runner->RunOnce());
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult tx_result, tx_runner->RunOnce());
  EXPECT_EQ(plain_result.parked, 1);
  EXPECT_EQ(tx_result.parked, 1);
  EXPECT_THAT(metrics_->projection_dead_letters(),
              ElementsAre("poison", "tx-poison"));
  EXPECT_THAT(metrics_->projection_retries(), SizeIs(4));  // 2 each
  const std::vector<LogEntry> errors = Logs(LogLevel::kError);
  ASSERT_THAT(errors, SizeIs(2));
  for (const LogEntry& error : errors) {
    EXPECT_EQ(error.component, "projection_runner");
    EXPECT_THAT(error.message, HasSubstr(ids[2].ToString()));
    EXPECT_THAT(error.message, HasSubstr("stream 'order-3' version 3"));
    EXPECT_THAT(error.message, HasSubstr("dead-lettered after 3 attempts"));
    EXPECT_THAT(error.message, HasSubstr("cannot apply"));
  }
  EXPECT_THAT(errors[0].message, HasSubstr("projection 'poison'"));
  EXPECT_THAT(errors[1].message, HasSubstr("projection 'tx-poison'"));
  EXPECT_THAT(Logs(LogLevel::kWarning), SizeIs(4));
  // Both passed the poison event and caught up.
  EXPECT_EQ(metrics_->projection_checkpoints().back().lag_events, 0);
}

TEST_P(ProjectionObservabilityTest, ReplayParkedReportsTheCallAndTheOutcome) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 3));
  std::atomic<int> failures_left{2};  // the run, then the first replay
  RowProjection projection("replayed", kTable);
  projection.FailWith([&](const RecordedEvent& event, int) {
    if (event.id != ids[0] || failures_left <= 0) return absl::OkStatus();
    --failures_left;
    return absl::InternalError("bug");
  });
  ProjectionRunnerOptions options = Observed();
  options.max_attempts = 1;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_THAT(metrics_->projection_dead_letters(), SizeIs(1));
  const int64_t calls_before = Calls(true) + Calls(false);

  EXPECT_THAT(runner->ReplayParked(ids[0]),
              test::StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(metrics_->projection_dead_letters(), SizeIs(2));
  EXPECT_TRUE(log_->WaitFor(LogLevel::kError, "projection_runner",
                            "dead-lettered again when replayed",
                            absl::ZeroDuration()));
  ASSERT_OK(runner->ReplayParked(ids[0]));
  EXPECT_EQ(Calls(true) + Calls(false), calls_before + 2);
  EXPECT_THAT(metrics_->projection_dead_letters(), SizeIs(2));
  EXPECT_TRUE(log_->WaitFor(
      LogLevel::kInfo, "projection_runner",
      absl::StrCat(ids[0].ToString(), " (stream 'order-1' version 1, "),
      absl::ZeroDuration()));
  EXPECT_TRUE(log_->WaitFor(LogLevel::kInfo, "projection_runner",
                            "replayed and resolved", absl::ZeroDuration()));
  // The replays' handle spans.
  std::vector<RecordedSpan> spans =
      tracer_->ended("eventstore.projection.handle");
  ASSERT_GE(spans.size(), 2u);
  EXPECT_FALSE(spans[spans.size() - 2].error.ok());
  EXPECT_TRUE(spans.back().error.ok());
}

TEST_P(ProjectionObservabilityTest, HandleSpansContinueTheEventsTrace) {
  const Uuid a = AppendTraced("order-a", kTraceA);
  const Uuid b = AppendTraced("order-b", kTraceB);
  const Uuid untraced = AppendTraced("order-c", "");
  RecordingProjection projection("traced");
  projection.FailWith([&](const RecordedEvent& event, int call) {
    return event.id == b && call == 1 ? absl::InternalError("once")
                                      : absl::OkStatus();
  });
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());
  ASSERT_OK(runner->RunOnce().status());
  const std::vector<RecordedEvent> log = Log();
  ASSERT_THAT(log, SizeIs(3));

  const std::vector<RecordedSpan> batches =
      tracer_->ended("eventstore.projection.batch");
  ASSERT_THAT(batches, SizeIs(1));
  EXPECT_EQ(batches[0].kind, SpanKind::kInternal);
  EXPECT_EQ(batches[0].string_attributes.at("eventstore.projection"), "traced");
  EXPECT_EQ(batches[0].int_attributes.at("eventstore.events"), 3);
  EXPECT_TRUE(batches[0].error.ok());

  // a; b failing, then b again; the untraced event.
  const std::vector<RecordedSpan> handles =
      tracer_->ended("eventstore.projection.handle");
  ASSERT_THAT(handles, SizeIs(4));
  for (const RecordedSpan& span : handles) {
    EXPECT_EQ(span.kind, SpanKind::kConsumer);
    EXPECT_EQ(span.end_calls, 1);
    EXPECT_EQ(span.string_attributes.at("eventstore.projection"), "traced");
    EXPECT_EQ(span.string_attributes.at("eventstore.event_type"), kPlaced);
  }
  EXPECT_EQ(handles[0].parent.traceparent, kTraceA);
  EXPECT_EQ(handles[0].parent.tracestate, "vendor=1");
  EXPECT_EQ(handles[0].trace_id(), kTraceIdA);
  EXPECT_EQ(handles[0].string_attributes.at("eventstore.stream"), "order-a");
  EXPECT_EQ(handles[0].string_attributes.at("eventstore.position"),
            log[0].position.ToString());
  EXPECT_TRUE(handles[0].error.ok());
  EXPECT_EQ(handles[1].trace_id(), kTraceIdB);
  EXPECT_EQ(handles[1].error.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(handles[2].trace_id(), kTraceIdB);
  EXPECT_TRUE(handles[2].error.ok());
  EXPECT_EQ(handles[2].string_attributes.at("eventstore.position"),
            log[1].position.ToString());
  EXPECT_TRUE(handles[3].parent.empty());
  EXPECT_EQ(handles[3].string_attributes.at("eventstore.stream"), "order-c");
  EXPECT_EQ(tracer_->started(), 5);  // every span ended
  EXPECT_EQ(projection.calls(a) + projection.calls(untraced), 2);
}

TEST_P(ProjectionObservabilityTest, TransactionalHandleSpansToo) {
  AppendTraced("order-a", kTraceA);
  RowProjection projection("tx-traced", kTable);
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());
  ASSERT_OK(runner->RunOnce().status());
  const std::vector<RecordedSpan> handles =
      tracer_->ended("eventstore.projection.handle");
  ASSERT_THAT(handles, SizeIs(1));
  EXPECT_EQ(handles[0].trace_id(), kTraceIdA);
  EXPECT_THAT(tracer_->ended("eventstore.projection.batch"), SizeIs(1));
}

TEST_P(ProjectionObservabilityTest, NothingAttachedStillWorks) {
  ASSERT_OK(AppendOrders(store(), "order-1", 12).status());
  AppendTraced("order-a", kTraceA);
  RecordingProjection plain("bare");
  RowProjection transactional("tx-bare", kTable);
  ProjectionRunnerOptions options = Observed();
  options.instrumentation = nullptr;
  options.log_sink = nullptr;
  options.tracer = nullptr;
  std::unique_ptr<ProjectionRunner> plain_runner = MakeRunner(plain, options);
  std::unique_ptr<ProjectionRunner> tx_runner =
      MakeRunner(transactional, options);
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, plain_runner->RunOnce());
  EXPECT_EQ(result.handled, 13);
  ASSERT_OK_AND_ASSIGN(result, tx_runner->RunOnce());
  EXPECT_EQ(result.handled, 13);
  EXPECT_THAT(metrics_->projection_events(), IsEmpty());
  EXPECT_THAT(log_->entries(), IsEmpty());
  EXPECT_EQ(tracer_->started(), 0);
}

// Each of the three alone.
TEST_P(ProjectionObservabilityTest, EachHookWorksAlone) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 3));
  for (int hook = 0; hook < 3; ++hook) {
    RecordingProjection projection(absl::StrCat("alone-", hook));
    projection.FailWith([&](const RecordedEvent& event, int call) {
      return event.id == ids[1] && call == 1 ? absl::InternalError("once")
                                             : absl::OkStatus();
    });
    auto metrics = std::make_shared<RecordingInstrumentation>();
    auto log = std::make_shared<RecordingLogSink>();
    auto tracer = std::make_shared<RecordingTracer>();
    ProjectionRunnerOptions options = Observed();
    options.instrumentation = hook == 0 ? metrics : nullptr;
    options.log_sink = hook == 1 ? log : nullptr;
    options.tracer = hook == 2 ? tracer : nullptr;
    std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);
    ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
    EXPECT_EQ(result.handled, 3);
    EXPECT_THAT(metrics->projection_events(), SizeIs(hook == 0 ? 4 : 0));
    EXPECT_THAT(log->entries(), SizeIs(hook == 1 ? 3 : 0));  // lease x2
    EXPECT_EQ(tracer->started(), hook == 2 ? 5 : 0);
  }
}

TEST_P(ProjectionObservabilityTest, BackgroundLeaseGainedAndReleasedOnStop) {
  ASSERT_OK(AppendOrders(store(), "order-1", 15).status());
  RecordingProjection projection("follower");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(WaitUntil(
      [&] {
        const ProjectionRunnerStats stats = runner->stats();
        return stats.idle && stats.handled == 15;
      },
      kLong));
  ASSERT_THAT(metrics_->projection_leases(), SizeIs(1));
  EXPECT_TRUE(metrics_->projection_leases()[0].held);
  EXPECT_EQ(metrics_->projection_checkpoints().back().lag_events, 0);
  runner->Stop();

  ASSERT_THAT(metrics_->projection_leases(), SizeIs(2));
  EXPECT_FALSE(metrics_->projection_leases()[1].held);
  const std::vector<LogEntry> infos = Logs(LogLevel::kInfo);
  ASSERT_THAT(infos, SizeIs(2));
  EXPECT_EQ(infos[0].message,
            "projection 'follower': lease 'projection:follower' gained");
  EXPECT_EQ(infos[1].message,
            "projection 'follower': lease 'projection:follower' released");
  EXPECT_THAT(metrics_->projection_events(), SizeIs(15));
}

TEST_P(ProjectionObservabilityTest, BackgroundLeaseLostIsReported) {
  RecordingProjection projection("lost");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(
      log_->WaitFor(LogLevel::kInfo, "projection_runner", "gained", kLong));
  leases_->break_leases();
  ASSERT_TRUE(log_->WaitFor(LogLevel::kInfo, "projection_runner",
                            "lease 'projection:lost' lost", kLong));
  // It takes the lease again.
  ASSERT_TRUE(WaitUntil(
      [&] { return metrics_->projection_leases().size() >= 3; }, kLong));
  runner->Stop();
  std::vector<bool> held;
  for (const auto& lease : metrics_->projection_leases()) {
    held.push_back(lease.held);
  }
  EXPECT_THAT(held, ElementsAre(true, false, true, false));
}

TEST_P(ProjectionObservabilityTest, BackgroundStoreErrorsAreLoggedWithBackoff) {
  ASSERT_OK(AppendOrders(store(), "order-1", 3).status());
  RecordingProjection projection("struggling");
  store_->fail_checkpoint_saves_after(0);
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(log_->WaitFor(LogLevel::kWarning, "projection_runner",
                            "injected checkpoint save failure; trying again in",
                            kLong));
  store_->heal();
  ASSERT_TRUE(WaitUntil(
      [&] {
        const ProjectionRunnerStats stats = runner->stats();
        return stats.idle && stats.checkpoints == 1;
      },
      kLong));
  runner->Stop();
  for (const LogEntry& entry : Logs(LogLevel::kWarning)) {
    EXPECT_THAT(entry.message, HasSubstr("projection 'struggling': "));
  }
  EXPECT_EQ(metrics_->projection_checkpoints().back().lag_events, 0);
}

TEST_P(ProjectionObservabilityTest, UnavailableHandlerIsAWarningNotAnError) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 2));
  RecordingProjection projection("downstream");
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == ids[1] ? absl::UnavailableError("downstream is down")
                              : absl::OkStatus();
  });
  ProjectionRunnerOptions options = Observed();
  options.max_attempts = 2;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);
  EXPECT_THAT(runner->RunOnce(),
              test::StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(metrics_->projection_dead_letters(), IsEmpty());
  EXPECT_THAT(Logs(LogLevel::kError), IsEmpty());
  EXPECT_TRUE(log_->WaitFor(LogLevel::kWarning, "projection_runner",
                            "tries again later", absl::ZeroDuration()));
  // The checkpoint stops before it: one event behind, at least.
  ASSERT_THAT(metrics_->projection_checkpoints(), SizeIs(1));
  EXPECT_EQ(metrics_->projection_checkpoints()[0].lag_events, 1);
}

TEST_P(ProjectionObservabilityTest, BackgroundReplayOfMarkedEntriesIsReported) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 2));
  std::atomic<bool> broken{true};
  RecordingProjection projection("marked");
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == ids[0] && broken ? absl::InternalError("bug")
                                        : absl::OkStatus();
  });
  ProjectionRunnerOptions options = Observed();
  options.max_attempts = 1;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(log_->WaitFor(LogLevel::kError, "projection_runner",
                            "dead-lettered after 1 attempt:", kLong));
  broken = false;
  ASSERT_OK(store().dead_letters().MarkRetrying("marked", ids[0]));
  ASSERT_TRUE(log_->WaitFor(LogLevel::kInfo, "projection_runner",
                            "replayed and resolved", kLong));
  runner->Stop();
  EXPECT_THAT(metrics_->projection_dead_letters(), SizeIs(1));
  EXPECT_EQ(Calls(false), 1);
  EXPECT_EQ(Calls(true), 2);
}

// Many events followed while the test reads what was recorded.
TEST_P(ProjectionObservabilityTest, ConcurrentFollowingReportsEveryCall) {
  RecordingProjection projection("concurrent");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, Observed());
  ASSERT_OK(runner->Start());
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      (void)metrics_->projection_checkpoints();
      (void)tracer_->ended();
    }
  });
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(AppendOrders(store(), absl::StrCat("order-", i), 7).status());
  }
  EXPECT_TRUE(WaitUntil(
      [&] {
        const ProjectionRunnerStats stats = runner->stats();
        return stats.idle && stats.handled == 70;
      },
      kLong));
  runner->Stop();
  done = true;
  reader.join();
  EXPECT_THAT(metrics_->projection_events(), SizeIs(70));
  EXPECT_EQ(metrics_->projection_checkpoints().back().lag_events, 0);
  EXPECT_THAT(tracer_->ended("eventstore.projection.handle"), SizeIs(70));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ProjectionObservabilityTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
