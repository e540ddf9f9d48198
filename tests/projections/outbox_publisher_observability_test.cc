// What OutboxPublisher reports to the instrumentation, log sink and tracer
// of its options, and OutboxStore::Backlog, on every backend of
// AllTestBackends(): sends by outcome, the backlog after polls, log
// messages and send spans.
//
// Tests whose names contain "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/log_sink.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/tracing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/outbox_publisher.h"
#include "tests/projections/observed_backend_test.h"
#include "tests/projections/test_projections.h"
#include "tests/support/forwarding_outbox_store.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/recording_log_sink.h"
#include "tests/support/recording_tracer.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::LogEntry;
using ::eventstore::test::RecordedOutboxBacklog;
using ::eventstore::test::RecordedOutboxSend;
using ::eventstore::test::RecordedSpan;
using ::eventstore::test::RecordingInstrumentation;
using ::eventstore::test::RecordingLogSink;
using ::eventstore::test::RecordingTracer;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::WaitUntil;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr absl::Duration kLong = absl::Seconds(30);

constexpr char kTrace[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";

// Fails the sends of the payloads in `failing`, delivers the others.
class Sink : public OutboxSink {
 public:
  absl::Status Send(const OutboxEntry& entry) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++sends_;
    if (failing_.count(entry.message.payload) != 0) {
      return absl::InternalError("broker down\n");
    }
    return absl::OkStatus();
  }
  void Fail(const std::string& payload) {
    std::lock_guard<std::mutex> lock(mu_);
    failing_[payload] = true;
  }
  int sends() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sends_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, bool> failing_;
  int sends_ = 0;
};

// An outbox whose claims fail on demand (a store error of the publisher).
class FailingOutbox final : public test::ForwardingOutboxStore {
 public:
  using ForwardingOutboxStore::ForwardingOutboxStore;
  void set_failing(bool failing) { failing_ = failing; }

  absl::StatusOr<std::vector<OutboxEntry>> Claim(
      std::string_view worker, int limit, absl::Duration lease) override {
    if (failing_) return absl::UnavailableError("injected claim failure");
    return ForwardingOutboxStore::Claim(worker, limit, lease);
  }
  absl::StatusOr<std::vector<OutboxEntry>> MarkPublishedAndClaim(
      absl::Span<const int64_t> published, std::string_view worker, int limit,
      absl::Duration lease) override {
    if (failing_) return absl::UnavailableError("injected claim failure");
    return ForwardingOutboxStore::MarkPublishedAndClaim(published, worker,
                                                        limit, lease);
  }

 private:
  std::atomic<bool> failing_{false};
};

class FailingOutboxStore final : public ForwardingEventStore {
 public:
  explicit FailingOutboxStore(std::unique_ptr<EventStore> store)
      : ForwardingEventStore(store.get()),
        store_(std::move(store)),
        outbox_(&store_->outbox()) {}
  OutboxStore& outbox() override { return outbox_; }
  FailingOutbox& failing() { return outbox_; }

 private:
  std::unique_ptr<EventStore> store_;
  FailingOutbox outbox_;
};

class OutboxObservabilityTest : public test::ObservedBackendTest {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventStore>> opened =
        GetParam().open(nullptr);
    ASSERT_OK(opened);
    store_ = std::make_unique<FailingOutboxStore>(*std::move(opened));
  }

  EventStore& store() { return *store_; }

  OutboxPublisherOptions Observed() {
    OutboxPublisherOptions options;
    options.worker_name = "observed";
    options.batch_size = 10;
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(10);
    options.poll_interval = absl::Milliseconds(50);
    options.instrumentation = metrics_;
    options.log_sink = log_;
    options.tracer = tracer_;
    return options;
  }

  std::unique_ptr<OutboxPublisher> MakePublisher(
      OutboxSink& sink, OutboxPublisherOptions options) {
    absl::StatusOr<std::unique_ptr<OutboxPublisher>> publisher =
        OutboxPublisher::Create(store(), sink, std::move(options));
    EXPECT_OK(publisher);
    return publisher.ok() ? *std::move(publisher) : nullptr;
  }

  // Enqueues messages with these payloads to "topic", with `headers`.
  void Enqueue(const std::vector<std::string>& payloads,
               const std::map<std::string, std::string>& headers = {}) {
    std::vector<OutboxMessage> messages;
    for (const std::string& payload : payloads) {
      OutboxMessage message;
      message.destination = "topic";
      message.payload = payload;
      message.headers = headers;
      messages.push_back(std::move(message));
    }
    ASSERT_OK(store().outbox().Enqueue(messages));
  }

  // Makes every pending message an hour older, behind the store's back.
  void AgePendingByAnHour() {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(tx->Execute(
        tx->dialect() == "postgres"
            ? "UPDATE outbox SET created_at = created_at - interval '1 hour'"
            : "UPDATE outbox SET created_at = created_at - 3600000000"));
    ASSERT_OK(tx->Commit());
  }

  int Sends(OutboxSendOutcome outcome) {
    int n = 0;
    for (const RecordedOutboxSend& send : metrics_->outbox_sends()) {
      if (send.outcome == outcome) ++n;
    }
    return n;
  }

  std::unique_ptr<FailingOutboxStore> store_;
};

TEST_P(OutboxObservabilityTest, BacklogCountsPendingMessagesOnly) {
  ASSERT_OK_AND_ASSIGN(OutboxBacklog empty, store().outbox().Backlog());
  EXPECT_EQ(empty.pending, 0);
  EXPECT_EQ(empty.oldest_pending_age, absl::ZeroDuration());

  Enqueue({"published", "failed", "pending-1", "pending-2"});
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> entries,
                       store().outbox().Pending(10));
  ASSERT_THAT(entries, SizeIs(4));
  ASSERT_OK(store().outbox().MarkPublished(entries[0].id));
  ASSERT_OK(store().outbox().MarkFailed(entries[1].id, "gone", 1));
  AgePendingByAnHour();

  ASSERT_OK_AND_ASSIGN(OutboxBacklog backlog, store().outbox().Backlog());
  EXPECT_EQ(backlog.pending, 2);
  EXPECT_GE(backlog.oldest_pending_age, absl::Hours(1));
  EXPECT_LT(backlog.oldest_pending_age, absl::Hours(2));
  // The same as Stats() says, from the default implementation too.
  ASSERT_OK_AND_ASSIGN(OutboxStats stats, store().outbox().Stats());
  EXPECT_EQ(stats.pending, backlog.pending);
  ASSERT_OK_AND_ASSIGN(OutboxBacklog derived,
                       store().outbox().OutboxStore::Backlog());
  EXPECT_EQ(derived.pending, 2);
  EXPECT_GE(derived.oldest_pending_age, absl::Hours(1));
}

TEST_P(OutboxObservabilityTest, PublishedSendsAndTheBacklogAfterPolls) {
  Enqueue({"a", "b", "c"});
  AgePendingByAnHour();
  Sink sink;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, Observed());

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 3);
  const std::vector<RecordedOutboxSend> sends = metrics_->outbox_sends();
  ASSERT_THAT(sends, SizeIs(3));
  for (const RecordedOutboxSend& send : sends) {
    EXPECT_EQ(send.outcome, OutboxSendOutcome::kPublished);
    EXPECT_GE(send.latency, absl::ZeroDuration());
  }
  // After the first claim (the three pending, an hour old), and after the
  // claim that found the outbox drained.
  const std::vector<RecordedOutboxBacklog> backlogs =
      metrics_->outbox_backlogs();
  ASSERT_THAT(backlogs, SizeIs(2));
  EXPECT_EQ(backlogs[0].pending, 3);
  EXPECT_THAT(backlogs[0].oldest_pending_age, Ge(absl::Hours(1)));
  EXPECT_EQ(backlogs[1].pending, 0);
  EXPECT_EQ(backlogs[1].oldest_pending_age, absl::ZeroDuration());
  EXPECT_THAT(log_->entries(), IsEmpty());
}

TEST_P(OutboxObservabilityTest, FailedAndGivenUpSendsAreCountedAndLogged) {
  Enqueue({"good", "bad"});
  Sink sink;
  sink.Fail("bad");
  OutboxPublisherOptions options = Observed();
  options.max_attempts = 2;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store().outbox().Pending(10));
  ASSERT_THAT(pending, SizeIs(2));
  const int64_t bad_id = pending[1].id;

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult first, publisher->RunOnce());
  EXPECT_EQ(first.published, 1);
  EXPECT_EQ(first.failed_sends, 1);
  EXPECT_EQ(Sends(OutboxSendOutcome::kPublished), 1);
  EXPECT_EQ(Sends(OutboxSendOutcome::kFailed), 1);
  EXPECT_EQ(Sends(OutboxSendOutcome::kGaveUp), 0);
  // The round ended with a failed send: the failed message still waits.
  EXPECT_EQ(metrics_->outbox_backlogs().back().pending, 1);
  EXPECT_GT(metrics_->outbox_backlogs().back().oldest_pending_age,
            absl::ZeroDuration());
  const std::vector<LogEntry> warnings = Logs(LogLevel::kWarning);
  ASSERT_THAT(warnings, SizeIs(1));
  EXPECT_EQ(warnings[0].component, "outbox_publisher");
  EXPECT_EQ(warnings[0].message,
            absl::StrCat("outbox message ", bad_id,
                         ": send failed (attempt 1 of 2), retried later: "
                         "INTERNAL: broker down"));

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult second, publisher->RunOnce());
  EXPECT_EQ(second.given_up, 1);
  EXPECT_EQ(Sends(OutboxSendOutcome::kGaveUp), 1);
  EXPECT_EQ(Sends(OutboxSendOutcome::kFailed), 1);
  EXPECT_THAT(metrics_->outbox_sends(), SizeIs(3));
  const std::vector<LogEntry> errors = Logs(LogLevel::kError);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].message, absl::StrCat("outbox message ", bad_id,
                                            " given up after 2 failed sends: "
                                            "INTERNAL: broker down"));
  // Given up: no longer pending.
  EXPECT_EQ(metrics_->outbox_backlogs().back().pending, 0);
}

// The backlog query runs when a round ends and at most every
// poll_interval within one: not after every claim.
TEST_P(OutboxObservabilityTest, BacklogIsNotReadAfterEveryClaim) {
  Enqueue({"1", "2", "3", "4", "5", "6"});
  Sink sink;
  OutboxPublisherOptions options = Observed();
  options.batch_size = 1;
  options.poll_interval = absl::Hours(1);
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 6);
  const std::vector<RecordedOutboxBacklog> backlogs =
      metrics_->outbox_backlogs();
  ASSERT_THAT(backlogs, SizeIs(2));  // 7 claims
  EXPECT_EQ(backlogs[0].pending, 6);
  EXPECT_EQ(backlogs[1].pending, 0);
}

TEST_P(OutboxObservabilityTest, SendSpansContinueTheMessagesTrace) {
  Enqueue({"traced"}, {{"traceparent", kTrace}, {"tracestate", "vendor=1"}});
  Enqueue({"untraced"});
  Enqueue({"failing"}, {{"traceparent", kTrace}});
  Sink sink;
  sink.Fail("failing");
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, Observed());
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store().outbox().Pending(10));
  ASSERT_THAT(pending, SizeIs(3));
  ASSERT_OK(publisher->RunOnce().status());

  const std::vector<RecordedSpan> spans =
      tracer_->ended("eventstore.outbox.send");
  ASSERT_THAT(spans, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(spans[i].kind, SpanKind::kProducer);
    EXPECT_EQ(spans[i].end_calls, 1);
    EXPECT_EQ(spans[i].string_attributes.at("messaging.destination.name"),
              "topic");
    EXPECT_EQ(spans[i].int_attributes.at("eventstore.outbox.id"),
              pending[i].id);
  }
  EXPECT_EQ(spans[0].parent.traceparent, kTrace);
  EXPECT_EQ(spans[0].parent.tracestate, "vendor=1");
  EXPECT_EQ(spans[0].trace_id(), kTraceId);
  EXPECT_TRUE(spans[0].error.ok());
  EXPECT_TRUE(spans[1].parent.empty());
  EXPECT_TRUE(spans[1].error.ok());
  EXPECT_EQ(spans[2].trace_id(), kTraceId);
  EXPECT_EQ(spans[2].error.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(tracer_->started(), 3);
}

// End to end: the trace of the command that appended an event reaches the
// send of the outbox message enqueued with it.
TEST_P(OutboxObservabilityTest, AppendedMessageCarriesTheEventsTrace) {
  test::v1::OrderPlaced placed;
  placed.set_order_id("order-1");
  std::vector<EventData> events = {EventData::From(placed)};
  events[0].metadata.set_traceparent(kTrace);
  OutboxMessage message;
  message.destination = "billing";
  message.payload = "invoice";
  std::vector<OutboxMessage> messages = {message};
  AppendRequest request;
  request.stream = "order-1";
  request.events = events;
  request.outbox = messages;
  ASSERT_OK(store().Append(request).status());
  Sink sink;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, Observed());
  ASSERT_OK(publisher->RunOnce().status());
  const std::vector<RecordedSpan> spans =
      tracer_->ended("eventstore.outbox.send");
  ASSERT_THAT(spans, SizeIs(1));
  EXPECT_EQ(spans[0].trace_id(), kTraceId);
  EXPECT_EQ(spans[0].string_attributes.at("messaging.destination.name"),
            "billing");
}

TEST_P(OutboxObservabilityTest, NothingAttachedStillPublishes) {
  Enqueue({"a", "b"}, {{"traceparent", kTrace}});
  Sink sink;
  OutboxPublisherOptions options = Observed();
  options.instrumentation = nullptr;
  options.log_sink = nullptr;
  options.tracer = nullptr;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 2);
  EXPECT_THAT(metrics_->outbox_sends(), IsEmpty());
  EXPECT_THAT(metrics_->outbox_backlogs(), IsEmpty());
  EXPECT_THAT(log_->entries(), IsEmpty());
  EXPECT_EQ(tracer_->started(), 0);
}

TEST_P(OutboxObservabilityTest, BackgroundStoreErrorsAreLoggedWithBackoff) {
  Enqueue({"a"});
  store_->failing().set_failing(true);
  Sink sink;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, Observed());
  ASSERT_OK(publisher->Start());
  ASSERT_TRUE(log_->WaitFor(LogLevel::kWarning, "outbox_publisher",
                            "outbox publisher 'observed': UNAVAILABLE: "
                            "injected claim failure; trying again in",
                            kLong));
  store_->failing().set_failing(false);
  ASSERT_TRUE(
      WaitUntil([&] { return publisher->stats().published == 1; }, kLong));
  publisher->Stop();
  EXPECT_EQ(Sends(OutboxSendOutcome::kPublished), 1);
}

// The background thread reports while the test reads what was recorded.
TEST_P(OutboxObservabilityTest, ConcurrentBackgroundPublishingReports) {
  Sink sink;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, Observed());
  ASSERT_OK(publisher->Start());
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      (void)metrics_->outbox_backlogs();
      (void)tracer_->ended();
    }
  });
  for (int i = 0; i < 5; ++i) Enqueue({absl::StrCat("m", i)});
  EXPECT_TRUE(WaitUntil(
      [&] {
        const std::vector<RecordedOutboxBacklog> backlogs =
            metrics_->outbox_backlogs();
        return publisher->stats().published == 5 && !backlogs.empty() &&
               backlogs.back().pending == 0;
      },
      kLong));
  publisher->Stop();
  done = true;
  reader.join();
  EXPECT_EQ(Sends(OutboxSendOutcome::kPublished), 5);
  EXPECT_THAT(tracer_->ended("eventstore.outbox.send"), SizeIs(5));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, OutboxObservabilityTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
