// OutboxPublisher on every backend of AllTestBackends(): publishing what
// appends and Enqueue put in the outbox, two publishers at once, retries,
// giving up, the background thread, and a sink that keeps batches in
// flight (PipelinedSink: two, or max_batches_in_flight).
//
// Tests whose names contain "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include "projections/outbox_publisher.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/projections/test_projections.h"
#include "tests/support/forwarding_outbox_store.h"
#include "tests/support/recording_log_sink.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::WaitUntil;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr absl::Duration kPrompt = absl::Seconds(2);
constexpr absl::Duration kLong = absl::Seconds(30);

OutboxMessage Message(const std::string& destination,
                      const std::string& payload) {
  OutboxMessage message;
  message.destination = destination;
  message.key = payload;
  message.payload = payload;
  message.headers["source"] = "test";
  return message;
}

// Records every send; fails those its rule says.
class RecordingSink : public OutboxSink {
 public:
  // `call` counts this entry's sends, from 1.
  using Rule = std::function<absl::Status(const OutboxEntry&, int call)>;

  absl::Status Send(const OutboxEntry& entry) override {
    std::lock_guard<std::mutex> lock(mu_);
    const int call = ++calls_[entry.id];
    absl::Status verdict = rule_ ? rule_(entry, call) : absl::OkStatus();
    if (verdict.ok()) delivered_.push_back(entry.message.payload);
    return verdict;
  }

  void FailWith(Rule rule) {
    std::lock_guard<std::mutex> lock(mu_);
    rule_ = std::move(rule);
  }
  // Payloads delivered, in order.
  std::vector<std::string> delivered() const {
    std::lock_guard<std::mutex> lock(mu_);
    return delivered_;
  }
  std::size_t delivered_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return delivered_.size();
  }
  // Sends per entry id.
  std::map<int64_t, int> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  int total_calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    int total = 0;
    for (const auto& [id, n] : calls_) total += n;
    return total;
  }

 private:
  mutable std::mutex mu_;
  std::map<int64_t, int> calls_;
  std::vector<std::string> delivered_;
  Rule rule_;
};

class OutboxPublisherTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventStore>> opened =
        GetParam().open(nullptr);
    ASSERT_OK(opened);
    store_ = *std::move(opened);
  }

  EventStore& store() { return *store_; }

  static OutboxPublisherOptions FastOptions() {
    OutboxPublisherOptions options;
    options.batch_size = 10;
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(10);
    options.poll_interval = absl::Milliseconds(50);
    // The PipelinedSink tests are written for two batches in flight,
    // whatever the default; those for more set it.
    options.max_batches_in_flight = 2;
    return options;
  }
  static OutboxPublisherOptions FastOptions(int batch_size) {
    OutboxPublisherOptions options = FastOptions();
    options.batch_size = batch_size;
    return options;
  }

  std::unique_ptr<OutboxPublisher> MakePublisher(
      OutboxSink& sink, OutboxPublisherOptions options = FastOptions()) {
    absl::StatusOr<std::unique_ptr<OutboxPublisher>> publisher =
        OutboxPublisher::Create(store(), sink, std::move(options));
    EXPECT_OK(publisher);
    return publisher.ok() ? *std::move(publisher) : nullptr;
  }

  // Enqueues `n` messages "<tag>-<i>" to `destination`.
  void Enqueue(int n, const std::string& tag,
               const std::string& destination = "topic") {
    std::vector<OutboxMessage> messages;
    for (int i = 0; i < n; ++i) {
      messages.push_back(Message(destination, absl::StrCat(tag, "-", i)));
    }
    ASSERT_OK(store().outbox().Enqueue(messages));
  }

  // Appends one event with one outbox message.
  absl::Status AppendWithMessage(const std::string& payload) {
    test::v1::OrderPlaced placed;
    placed.set_order_id(payload);
    std::vector<EventData> events = {EventData::From(placed)};
    std::vector<OutboxMessage> messages = {Message("topic", payload)};
    AppendRequest request;
    request.stream = "order-1";
    request.events = events;
    request.outbox = messages;
    return store().Append(request).status();
  }

  OutboxStats Stats() {
    absl::StatusOr<OutboxStats> stats = store().outbox().Stats();
    EXPECT_OK(stats);
    return stats.ok() ? *stats : OutboxStats();
  }

  // Every message, in id (enqueue) order, whatever its status.
  std::vector<OutboxEntry> ListAll() {
    OutboxListOptions options;
    options.limit = 1000;
    absl::StatusOr<std::vector<OutboxEntry>> entries =
        store().outbox().List(options);
    EXPECT_OK(entries);
    return entries.ok() ? *std::move(entries) : std::vector<OutboxEntry>();
  }

  // Runs the failed-send round with `in_flight` batches in flight
  // (defined with PipelinedSink, below).
  void ExpectFailedSendEndsTheRoundAfterTheBatchesInFlight(int in_flight,
                                                           int messages);
  // Publishes `messages` in batches of `batch_size` to a PipelinedSink
  // with max_batches_in_flight `in_flight` (defined with PipelinedSink).
  void ExpectEveryBatchInOrder(int in_flight, int messages, int batch_size);

  // A store error (MarkPublishedAndClaim failing after `good_settles`
  // settles) with good_settles + 1 batches in flight, max_batches_in_flight
  // `in_flight`: defined with the tests that use it.
  void ExpectStoreErrorEndsTheBatchesInFlight(int in_flight, int good_settles,
                                              int messages);

  std::unique_ptr<EventStore> store_;
};

TEST_P(OutboxPublisherTest, PublishesAppendedAndEnqueuedMessages) {
  ASSERT_OK(AppendWithMessage("appended"));
  Enqueue(2, "enqueued");
  RecordingSink sink;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink);

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 3);
  EXPECT_EQ(result.failed_sends, 0);
  EXPECT_THAT(sink.delivered(),
              ElementsAre("appended", "enqueued-0", "enqueued-1"));
  EXPECT_EQ(Stats().published, 3);
  EXPECT_EQ(Stats().pending, 0);

  ASSERT_OK_AND_ASSIGN(result, publisher->RunOnce());
  EXPECT_EQ(result.published, 0);
  EXPECT_EQ(sink.total_calls(), 3);
}

TEST_P(OutboxPublisherTest, RunOnceTakesEveryBatch) {
  Enqueue(35, "m");
  RecordingSink sink;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink);
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 35);
  EXPECT_EQ(sink.delivered_count(), 35u);
  EXPECT_EQ(publisher->stats().published, 35);
}

// Holds every send until Open(): a batch in flight, for as long as a test
// needs.
class GatedSink : public OutboxSink {
 public:
  absl::Status Send(const OutboxEntry&) override {
    ++entered_;
    std::unique_lock<std::mutex> lock(mu_);
    opened_.wait(lock, [&] { return open_; });
    return absl::OkStatus();
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    opened_.notify_all();
  }
  int entered() const { return entered_.load(); }

 private:
  std::atomic<int> entered_{0};
  std::mutex mu_;
  std::condition_variable opened_;
  bool open_ = false;
};

TEST_P(OutboxPublisherTest, ConcurrentStopEndsRunOnceAfterTheBatchInFlight) {
  Enqueue(30, "m");  // three batches of 10
  GatedSink sink;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink);
  absl::StatusOr<OutboxPublishResult> result;
  std::thread job([&] { result = publisher->RunOnce(); });
  ASSERT_TRUE(WaitUntil([&] { return sink.entered() >= 1; }, kLong));
  publisher->Stop();  // the job's first batch is in flight
  sink.Open();
  job.join();
  ASSERT_OK(result);
  EXPECT_EQ(result->published, 10);
  ASSERT_OK_AND_ASSIGN(OutboxBacklog backlog, store().outbox().Backlog());
  EXPECT_EQ(backlog.pending, 20);
  // Stop() is for the call in progress: the next RunOnce publishes the rest.
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult rest, publisher->RunOnce());
  EXPECT_EQ(rest.published, 20);
}

// While the sink holds a batch, the publisher claims the next one (and
// would mark the one before): the store's work overlaps the receiver's.
TEST_P(OutboxPublisherTest, ConcurrentClaimOfTheNextBatchWhileOneIsInFlight) {
  Enqueue(30, "m");
  GatedSink sink;
  OutboxPublisherOptions options = FastOptions();
  options.worker_name = "pipelined";
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  absl::StatusOr<OutboxPublishResult> result;
  std::thread job([&] { result = publisher->RunOnce(); });
  ASSERT_TRUE(WaitUntil([&] { return sink.entered() >= 1; }, kLong));
  const auto claimed = [&] {
    absl::StatusOr<std::vector<OutboxEntry>> pending =
        store().outbox().Pending(100);
    int n = 0;
    if (pending.ok()) {
      for (const OutboxEntry& e : *pending) n += e.claimed_by == "pipelined";
    }
    return n;
  };
  // The first batch, and the second, claimed while the first is held.
  EXPECT_TRUE(WaitUntil([&] { return claimed() == 20; }, kLong)) << claimed();
  EXPECT_EQ(sink.entered(), 1);
  sink.Open();
  job.join();
  ASSERT_OK(result);
  EXPECT_EQ(result->published, 30);
  EXPECT_EQ(Stats().published, 30);
  EXPECT_EQ(Stats().pending, 0);
}

// A failed send ends the round before the batch claimed meanwhile is sent,
// which is given back at once (not left to its lease) with no error.
TEST_P(OutboxPublisherTest, AFailedSendEndsTheRoundAndGivesTheNextBatchBack) {
  Enqueue(30, "m");
  RecordingSink sink;
  sink.FailWith([](const OutboxEntry& entry, int call) {
    return entry.message.payload == "m-3" && call == 1
               ? absl::InternalError("refused once")
               : absl::OkStatus();
  });
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink);
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult first, publisher->RunOnce());
  EXPECT_EQ(first.published, 9);
  EXPECT_EQ(first.failed_sends, 1);
  EXPECT_EQ(sink.total_calls(), 10);  // the first batch only
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store().outbox().Pending(100));
  ASSERT_EQ(pending.size(), 21u);
  for (const OutboxEntry& e : pending) {
    EXPECT_EQ(e.claimed_by, "") << e.message.payload;
    EXPECT_EQ(e.last_error.empty(), e.message.payload != "m-3")
        << e.message.payload;
  }
  // The retry goes first: the rest follows it in enqueue order.
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult second, publisher->RunOnce());
  EXPECT_EQ(second.published, 21);
  const std::vector<std::string> delivered = sink.delivered();
  ASSERT_EQ(delivered.size(), 30u);
  EXPECT_EQ(delivered[9], "m-3");
  EXPECT_EQ(delivered[10], "m-10");
  EXPECT_EQ(delivered[29], "m-29");
}

TEST_P(OutboxPublisherTest, ConcurrentPublishersPublishEachMessageOnce) {
  Enqueue(200, "early");
  RecordingSink sink;
  OutboxPublisherOptions options = FastOptions();
  options.worker_name = "publisher-a";
  std::unique_ptr<OutboxPublisher> a = MakePublisher(sink, options);
  options.worker_name = "publisher-b";
  std::unique_ptr<OutboxPublisher> b = MakePublisher(sink, options);
  ASSERT_OK(a->Start());
  ASSERT_OK(b->Start());
  // More arrive while they publish: enqueued, and with appends.
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) {
      EXPECT_OK(AppendWithMessage(absl::StrCat("appended-", i)));
    }
  });
  Enqueue(50, "late");
  writer.join();

  ASSERT_TRUE(WaitUntil([&] { return Stats().published == 300; }, kLong))
      << Stats().published << " published";
  a->Stop();
  b->Stop();
  EXPECT_EQ(sink.delivered_count(), 300u);
  for (const auto& [id, calls] : sink.calls()) {
    EXPECT_EQ(calls, 1) << "entry " << id;
  }
  EXPECT_EQ(a->stats().published + b->stats().published, 300);
  EXPECT_EQ(Stats().pending, 0);
}

// Answers whole batches, as the broker sinks do; records each batch.
class BatchSink : public OutboxSink {
 public:
  absl::Status Send(const OutboxEntry&) override {
    return absl::InternalError("the publisher should call SendBatch");
  }
  std::vector<absl::Status> SendBatch(
      absl::Span<const OutboxEntry> entries) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string>& batch = batches_.emplace_back();
    std::vector<absl::Status> results;
    for (const OutboxEntry& entry : entries) {
      batch.push_back(entry.message.payload);
      results.push_back(entry.message.payload.size() > 10
                            ? absl::InvalidArgumentError("over 10 bytes")
                            : absl::OkStatus());
    }
    return results;
  }
  std::vector<std::vector<std::string>> batches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<std::string>> batches_;
};

TEST_P(OutboxPublisherTest, HandsTheSinkWholeBatchesInEnqueueOrder) {
  Enqueue(25, "m");
  BatchSink sink;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink);
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 25);
  const std::vector<std::vector<std::string>> batches = sink.batches();
  ASSERT_EQ(batches.size(), 3u);  // batch_size 10
  EXPECT_EQ(batches[0].size(), 10u);
  EXPECT_EQ(batches[1].size(), 10u);
  EXPECT_THAT(batches[2], ElementsAre("m-20", "m-21", "m-22", "m-23", "m-24"));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(batches[1][i], absl::StrCat("m-1", i));
  EXPECT_EQ(Stats().published, 25);
  EXPECT_EQ(Stats().pending, 0);
}

TEST_P(OutboxPublisherTest, GivesUpAtOnceWhatTheReceiverWillNeverTake) {
  Enqueue(3, "m");
  Enqueue(1, "much-too-long");
  Enqueue(12, "n");
  BatchSink sink;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink);
  // One call goes on past the message given up: no retry is pending.
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 15);
  EXPECT_EQ(result.failed_sends, 1);
  EXPECT_EQ(result.given_up, 1);
  EXPECT_EQ(Stats().failed, 1);
  EXPECT_EQ(Stats().pending, 0);
  OutboxListOptions failed;
  failed.status = OutboxStatus::kFailed;
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> parked,
                       store().outbox().List(failed));
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0].message.payload, "much-too-long-0");
  EXPECT_EQ(parked[0].attempts, 1);
  EXPECT_THAT(parked[0].last_error, ::testing::HasSubstr("over 10 bytes"));
}

TEST_P(OutboxPublisherTest, RetriesFailedSendsUntilTheyGoThrough) {
  Enqueue(3, "flaky");
  RecordingSink sink;
  sink.FailWith([](const OutboxEntry&, int call) {
    return call <= 2 ? absl::InternalError("broker refused") : absl::OkStatus();
  });
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink);

  for (int round = 1; round <= 2; ++round) {
    ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
    EXPECT_EQ(result.published, 0) << "round " << round;
    EXPECT_EQ(result.failed_sends, 3) << "round " << round;
    EXPECT_EQ(result.given_up, 0) << "round " << round;
  }
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store().outbox().Pending(10));
  ASSERT_EQ(pending.size(), 3u);
  for (const OutboxEntry& entry : pending) {
    EXPECT_EQ(entry.attempts, 2);
    EXPECT_THAT(entry.last_error, ::testing::HasSubstr("broker refused"));
  }

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 3);
  EXPECT_THAT(sink.delivered(), ElementsAre("flaky-0", "flaky-1", "flaky-2"));
  EXPECT_EQ(Stats().published, 3);
  EXPECT_EQ(Stats().failed, 0);
}

TEST_P(OutboxPublisherTest, AnUnreachableReceiverUsesUpNoAttempts) {
  Enqueue(3, "m");
  RecordingSink sink;
  sink.FailWith([](const OutboxEntry&, int call) {
    return call <= 5 ? absl::UnavailableError("broker down") : absl::OkStatus();
  });
  OutboxPublisherOptions options = FastOptions();
  options.max_attempts = 2;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);

  // Five rounds of an outage, more than max_attempts: nothing given up.
  for (int round = 1; round <= 5; ++round) {
    ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
    EXPECT_EQ(result.failed_sends, 3) << "round " << round;
    EXPECT_EQ(result.given_up, 0) << "round " << round;
    // Given back at once: claimable again without waiting for the lease.
    ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                         store().outbox().Pending(10));
    ASSERT_EQ(pending.size(), 3u);
    for (const OutboxEntry& entry : pending) {
      EXPECT_EQ(entry.attempts, 0);
      EXPECT_EQ(entry.claimed_by, "");
      EXPECT_THAT(entry.last_error, ::testing::HasSubstr("broker down"));
    }
  }
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 3);
  EXPECT_EQ(Stats().failed, 0);
  EXPECT_EQ(Stats().published, 3);
}

TEST_P(OutboxPublisherTest, GivesUpAfterMaxAttempts) {
  Enqueue(1, "bad", "nowhere");
  Enqueue(2, "good");
  RecordingSink sink;
  sink.FailWith([](const OutboxEntry& entry, int) {
    return entry.message.destination == "nowhere"
               ? absl::NotFoundError("no such destination")
               : absl::OkStatus();
  });
  OutboxPublisherOptions options = FastOptions();
  options.max_attempts = 3;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);

  OutboxPublishResult total;
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
    total.published += result.published;
    total.failed_sends += result.failed_sends;
    total.given_up += result.given_up;
  }
  EXPECT_EQ(total.published, 2);
  EXPECT_EQ(total.failed_sends, 3);
  EXPECT_EQ(total.given_up, 1);
  EXPECT_EQ(Stats().failed, 1);
  EXPECT_EQ(Stats().pending, 0);

  // Given up: never sent again.
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.failed_sends, 0);
  EXPECT_EQ(sink.total_calls(), 5);
  EXPECT_THAT(sink.delivered(), UnorderedElementsAre("good-0", "good-1"));
}

TEST_P(OutboxPublisherTest, BackgroundPublisherFollowsAndStopsPromptly) {
  RecordingSink sink;
  OutboxPublisherOptions options = FastOptions();
  options.poll_interval = absl::Seconds(10);  // appends wake it up
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_OK(publisher->Start());
  EXPECT_THAT(publisher->Start(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(publisher->RunOnce(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(publisher->stats().running);

  // No wait for the publisher to go idle first: an append at any moment,
  // even before its first look, must be published promptly.
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(AppendWithMessage(absl::StrCat("m", i)));
    ASSERT_TRUE(WaitUntil(
        [&] { return sink.delivered_count() == static_cast<size_t>(i + 1); },
        kPrompt))
        << "message " << i << " not published within " << kPrompt;
  }

  absl::Duration took;
  std::thread stopper([&] {
    const absl::Time start = absl::Now();
    publisher->Stop();
    took = absl::Now() - start;
  });
  stopper.join();
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_FALSE(publisher->stats().running);
  ASSERT_OK(publisher->RunOnce().status());  // usable again once stopped
}

TEST_P(OutboxPublisherTest, BackgroundPublisherBacksOffWhileSendsFail) {
  Enqueue(1, "m");
  RecordingSink sink;
  sink.FailWith(
      [](const OutboxEntry&, int) { return absl::UnavailableError("down"); });
  OutboxPublisherOptions options = FastOptions();
  options.max_attempts = 1000;
  options.initial_backoff = absl::Milliseconds(100);
  options.max_backoff = absl::Seconds(10);
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_OK(publisher->Start());
  absl::SleepFor(absl::Milliseconds(1000));
  publisher->Stop();
  // Sends at about 0, 0.1, 0.3, 0.7 s: without the backoff, hundreds.
  EXPECT_GE(sink.total_calls(), 2);
  EXPECT_LE(sink.total_calls(), 6);
}

// A sink that PipelinesBatches(), as the NATS sink does: BeginBatch hands a
// batch over, EndBatch answers for the oldest batch begun and not ended.
// Records every batch begun, and in violations() every breach of the
// publisher's side of the contract (OutboxSink::BeginBatch / EndBatch in
// outbox_publisher.h): an EndBatch with nothing begun, more than
// `max_in_flight` batches begun and not ended (the publisher's
// max_batches_in_flight: two unless told), Send or SendBatch while a batch
// is begun, two calls at once, a batch's entries changed or gone before
// EndBatch. SendBatch (which a publisher with max_batches_in_flight 1
// calls) answers as EndBatch would, and records each batch sent.
// Thread-safe: the publisher calls it from its send thread.
class PipelinedSink : public OutboxSink {
 public:
  // The answer to one send of `entry`; `call` counts its sends, from 1.
  using Rule = std::function<absl::Status(const OutboxEntry&, int call)>;

  explicit PipelinedSink(int max_in_flight = 2)
      : max_in_flight_(max_in_flight) {}

  absl::Status Send(const OutboxEntry&) override {
    internal::MutexLock lock(&mu_);
    ++sends_;
    if (!in_flight_.empty()) violations_.push_back("Send while begun");
    return absl::InternalError("the publisher should call SendBatch");
  }

  std::vector<absl::Status> SendBatch(
      absl::Span<const OutboxEntry> entries) override {
    internal::MutexLock lock(&mu_);
    Enter("SendBatch");
    ++sends_;
    if (!in_flight_.empty()) violations_.push_back("SendBatch while begun");
    std::vector<int64_t>& ids = sent_.emplace_back();
    std::vector<absl::Status> answers;
    for (const OutboxEntry& entry : entries) {
      ids.push_back(entry.id);
      const int call = ++calls_[entry.id];
      answers.push_back(rule_ ? rule_(entry, call) : absl::OkStatus());
      if (answers.back().ok()) acknowledged_.push_back(entry.id);
    }
    in_call_ = false;
    return answers;
  }

  bool PipelinesBatches() const override { return true; }

  void BeginBatch(absl::Span<const OutboxEntry> entries) override {
    internal::MutexLock lock(&mu_);
    Enter("BeginBatch");
    Batch batch;
    batch.entries = entries;
    for (const OutboxEntry& entry : entries) {
      batch.ids.push_back(entry.id);
      batch.payloads.push_back(entry.message.payload);
      const int call = ++calls_[entry.id];
      batch.answers.push_back(rule_ ? rule_(entry, call) : absl::OkStatus());
    }
    begun_.push_back(batch.ids);
    begun_payloads_.push_back(batch.payloads);
    in_flight_.push_back(std::move(batch));
    const int outstanding = static_cast<int>(in_flight_.size());
    max_outstanding_ = std::max(max_outstanding_, outstanding);
    if (outstanding > max_in_flight_) {
      violations_.push_back(absl::StrCat(
          outstanding, " batches begun and not ended, over ", max_in_flight_));
    }
    in_call_ = false;
  }

  std::vector<absl::Status> EndBatch() override {
    {
      internal::MutexLock lock(&mu_);
      Enter("EndBatch");
    }
    WaitWhileHeld();
    internal::MutexLock lock(&mu_);
    in_call_ = false;
    if (in_flight_.empty()) {
      violations_.push_back("EndBatch with no batch begun");
      return {};
    }
    Batch batch = std::move(in_flight_.front());
    in_flight_.pop_front();
    ++ended_;
    // The publisher keeps the entries alive and unchanged until EndBatch
    // returns: a sink may still read them (to retry a publish, say). Read
    // through the span BeginBatch got: entries moved or freed show here
    // (or under AddressSanitizer).
    bool unchanged = batch.entries.size() == batch.ids.size();
    for (size_t i = 0; unchanged && i < batch.ids.size(); ++i) {
      unchanged = batch.entries[i].id == batch.ids[i] &&
                  batch.entries[i].message.payload == batch.payloads[i];
    }
    if (!unchanged) {
      violations_.push_back(absl::StrCat(
          "the entries of the batch begun with id ",
          batch.ids.empty() ? 0 : batch.ids[0], " changed before EndBatch"));
    }
    std::vector<absl::Status> answers = std::move(batch.answers);
    if (answer_limit_.has_value() && answers.size() > *answer_limit_) {
      answers.resize(*answer_limit_);
    }
    for (size_t i = 0; i < answers.size(); ++i) {
      if (answers[i].ok()) acknowledged_.push_back(batch.ids[i]);
    }
    return answers;
  }

  void FailWith(Rule rule) {
    internal::MutexLock lock(&mu_);
    rule_ = std::move(rule);
  }
  // EndBatch answers for the first `n` entries of its batch only (a sink's
  // bug); nullopt: for all of them.
  void AnswerOnly(std::optional<size_t> n) {
    internal::MutexLock lock(&mu_);
    answer_limit_ = n;
  }
  // EndBatch waits from now on until Release().
  void Hold() {
    internal::MutexLock lock(&mu_);
    hold_ = true;
  }
  void Release() {
    {
      internal::MutexLock lock(&mu_);
      hold_ = false;
    }
    released_.notify_all();
  }
  // EndBatch calls waiting for Release().
  int held() const {
    internal::MutexLock lock(&mu_);
    return held_;
  }

  // The ids, and the payloads, of each batch begun, in the order begun.
  std::vector<std::vector<int64_t>> begun() const {
    internal::MutexLock lock(&mu_);
    return begun_;
  }
  std::vector<std::vector<std::string>> begun_payloads() const {
    internal::MutexLock lock(&mu_);
    return begun_payloads_;
  }
  // The ids of each batch sent with SendBatch, in the order sent.
  std::vector<std::vector<int64_t>> sent() const {
    internal::MutexLock lock(&mu_);
    return sent_;
  }
  // The ids EndBatch (or SendBatch) answered OK for, in the order answered.
  std::vector<int64_t> acknowledged() const {
    internal::MutexLock lock(&mu_);
    return acknowledged_;
  }
  // How many times each id was begun (or sent with SendBatch).
  std::map<int64_t, int> calls() const {
    internal::MutexLock lock(&mu_);
    return calls_;
  }
  int ended() const {
    internal::MutexLock lock(&mu_);
    return ended_;
  }
  // Batches begun and not ended: now, and the most there ever were.
  int outstanding() const {
    internal::MutexLock lock(&mu_);
    return static_cast<int>(in_flight_.size());
  }
  int max_outstanding() const {
    internal::MutexLock lock(&mu_);
    return max_outstanding_;
  }
  // Send and SendBatch calls (none expected).
  int sends() const {
    internal::MutexLock lock(&mu_);
    return sends_;
  }
  std::vector<std::string> violations() const {
    internal::MutexLock lock(&mu_);
    return violations_;
  }

 private:
  struct Batch {
    // As handed to BeginBatch, and copies to check them against.
    absl::Span<const OutboxEntry> entries;
    std::vector<int64_t> ids;
    std::vector<std::string> payloads;
    std::vector<absl::Status> answers;
  };

  // The sink is called by one thread at a time.
  void Enter(const char* method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (in_call_) {
      violations_.push_back(
          absl::StrCat(method, " while another call is in progress"));
    }
    in_call_ = true;
  }

  void WaitWhileHeld() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<internal::Mutex> lock(mu_);
    if (!hold_) return;
    ++held_;
    released_.wait(lock, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return !hold_;  // evaluated holding mu_
    });
    --held_;
  }

  const int max_in_flight_;
  mutable internal::Mutex mu_;
  std::condition_variable_any released_;
  Rule rule_ ABSL_GUARDED_BY(mu_);
  std::optional<size_t> answer_limit_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
  bool in_call_ ABSL_GUARDED_BY(mu_) = false;
  // Begun and not ended, oldest first.
  std::deque<Batch> in_flight_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<int64_t>> begun_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<std::string>> begun_payloads_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<int64_t>> sent_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> acknowledged_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, int> calls_ ABSL_GUARDED_BY(mu_);
  int ended_ ABSL_GUARDED_BY(mu_) = 0;
  int max_outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  int sends_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
};

std::vector<int64_t> Concatenated(
    const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const std::vector<int64_t>& batch : batches) {
    all.insert(all.end(), batch.begin(), batch.end());
  }
  return all;
}

std::vector<int64_t> Ids(const std::vector<OutboxEntry>& entries) {
  std::vector<int64_t> ids;
  for (const OutboxEntry& entry : entries) ids.push_back(entry.id);
  return ids;
}

// Payloads "m-<from>" to "m-<to>".
std::vector<std::string> Payloads(int from, int to) {
  std::vector<std::string> payloads;
  for (int i = from; i <= to; ++i) payloads.push_back(absl::StrCat("m-", i));
  return payloads;
}

// Every message is begun once, in enqueue order (within and across
// batches, and by payload), and acknowledged once, oldest batch first; a
// batch is ended only once `in_flight` are begun: `in_flight` reached,
// never more. Everything ends published; a second round finds nothing.
void OutboxPublisherTest::ExpectEveryBatchInOrder(int in_flight, int messages,
                                                  int batch_size) {
  Enqueue(messages, "m");
  const std::vector<int64_t> enqueued = Ids(ListAll());
  ASSERT_EQ(enqueued.size(), static_cast<size_t>(messages));
  PipelinedSink sink(in_flight);
  OutboxPublisherOptions options = FastOptions(batch_size);
  options.max_batches_in_flight = in_flight;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_NE(publisher, nullptr);

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, messages);
  EXPECT_EQ(result.failed_sends, 0);
  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_EQ(sink.sends(), 0);
  const size_t batches = (messages + batch_size - 1) / batch_size;
  const std::vector<std::vector<int64_t>> begun = sink.begun();
  ASSERT_EQ(begun.size(), batches);
  for (size_t i = 0; i < begun.size(); ++i) {
    const int first = static_cast<int>(i) * batch_size;
    const int last = std::min(first + batch_size, messages) - 1;
    EXPECT_EQ(begun[i].size(), static_cast<size_t>(last - first + 1))
        << "batch " << i;
    EXPECT_EQ(sink.begun_payloads()[i], Payloads(first, last)) << "batch " << i;
  }
  // Each message once, in enqueue (id) order, within and across batches.
  EXPECT_EQ(Concatenated(begun), enqueued);
  EXPECT_EQ(sink.max_outstanding(), in_flight);
  EXPECT_EQ(sink.ended(), static_cast<int>(batches));
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_EQ(sink.acknowledged(), enqueued);
  const std::map<int64_t, int> calls = sink.calls();
  EXPECT_EQ(calls.size(), static_cast<size_t>(messages));
  for (const auto& [id, n] : calls) EXPECT_EQ(n, 1) << "entry " << id;
  EXPECT_EQ(publisher->stats().published, messages);
  EXPECT_EQ(Stats().published, messages);
  EXPECT_EQ(Stats().pending, 0);

  ASSERT_OK_AND_ASSIGN(result, publisher->RunOnce());
  EXPECT_EQ(result.published, 0);
  EXPECT_EQ(sink.begun().size(), batches);
}

// Two in flight, never three: batches of 5, 5, 5 and 2.
TEST_P(OutboxPublisherTest, PipelinedSinkGetsEveryBatchInOrderWithTwoInFlight) {
  ExpectEveryBatchInOrder(/*in_flight=*/2, /*messages=*/17, /*batch_size=*/5);
}

// `messages` messages, in batches of 3, sent with `in_flight` batches in
// flight; m-4, in the second batch, is refused once. The round begins the
// batch with m-4 and the in_flight - 1 batches behind it, and no more; they
// are ended and settled, the batch claimed meanwhile is given back unsent,
// and the failure is logged for m-4. The next round sends the retry first,
// then the rest in enqueue order.
void OutboxPublisherTest::ExpectFailedSendEndsTheRoundAfterTheBatchesInFlight(
    int in_flight, int messages) {
  constexpr int kBatch = 3;
  // m-4 in the second batch, a batch claimed behind those begun, and the
  // retry's batch ending with the last message alone.
  ASSERT_EQ(messages % kBatch, 0);
  ASSERT_GE(messages, kBatch * (in_flight + 2));
  const int first_batches = in_flight + 1;     // m-0 to m-<sent - 1> begun
  const int sent = kBatch * first_batches;     // m-<sent> on is left
  const int left_count = messages - sent + 1;  // m-4 too
  const int second_batches = (left_count + kBatch - 1) / kBatch;

  Enqueue(messages, "m");
  PipelinedSink sink(/*max_in_flight=*/in_flight);
  sink.FailWith([](const OutboxEntry& entry, int call) {
    return entry.message.payload == "m-4" && call == 1
               ? absl::InternalError("refused once")
               : absl::OkStatus();
  });
  OutboxPublisherOptions options = FastOptions(kBatch);
  options.max_batches_in_flight = in_flight;
  auto log = std::make_shared<test::RecordingLogSink>();
  options.log_sink = log;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_NE(publisher, nullptr);

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult first, publisher->RunOnce());
  EXPECT_EQ(first.published, sent - 1);
  EXPECT_EQ(first.failed_sends, 1);
  EXPECT_EQ(first.given_up, 0);
  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_EQ(sink.sends(), 0);
  // The batch with m-4, and the in_flight - 1 begun behind it; not the next
  // one.
  std::vector<std::vector<std::string>> begun_first;
  for (int b = 0; b < first_batches; ++b) {
    begun_first.push_back(Payloads(kBatch * b, kBatch * b + kBatch - 1));
  }
  EXPECT_EQ(sink.begun_payloads(), begun_first);
  EXPECT_EQ(sink.ended(), first_batches);
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_EQ(sink.max_outstanding(), in_flight);

  std::vector<int64_t> left;  // pending: m-4, then m-<sent> on
  const std::vector<OutboxEntry> entries = ListAll();
  ASSERT_EQ(entries.size(), static_cast<size_t>(messages));
  for (size_t i = 0; i < entries.size(); ++i) {  // entries[i] is m-i
    const OutboxEntry& e = entries[i];
    const std::string& payload = e.message.payload;
    if (i < static_cast<size_t>(sent) && i != 4) {
      EXPECT_EQ(e.status, OutboxStatus::kPublished) << payload;
      continue;
    }
    left.push_back(e.id);
    EXPECT_EQ(e.status, OutboxStatus::kPending) << payload;
    // Not claimed: m-4 was marked failed, m-<sent> to m-<sent + 2> given
    // back unsent.
    EXPECT_EQ(e.claimed_by, "") << payload;
    EXPECT_EQ(e.lease_until, absl::InfinitePast()) << payload;
    if (payload == "m-4") {
      EXPECT_EQ(e.attempts, 1);
      EXPECT_THAT(e.last_error, HasSubstr("refused once"));
    } else {
      EXPECT_EQ(e.attempts, 0) << payload;
      EXPECT_EQ(e.last_error, "") << payload;
    }
  }
  ASSERT_EQ(left.size(), static_cast<size_t>(left_count));
  const std::vector<test::LogEntry> logged = log->entries();
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_EQ(logged[0].level, LogLevel::kWarning);
  EXPECT_THAT(logged[0].message,
              HasSubstr(absl::StrCat("outbox message ", left[0], ": ")));
  // Claimable at once, not after a lease.
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> claimed,
                       store().outbox().Claim("another", 100, kLong));
  EXPECT_EQ(Ids(claimed), left);
  ASSERT_OK(store().outbox().Release(left, ""));

  // The retry goes first, then the rest in enqueue order.
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult second, publisher->RunOnce());
  EXPECT_EQ(second.published, left_count);
  EXPECT_EQ(second.failed_sends, 0);
  const std::vector<std::vector<std::string>> begun = sink.begun_payloads();
  ASSERT_EQ(begun.size(), static_cast<size_t>(first_batches + second_batches));
  EXPECT_THAT(begun[first_batches], ElementsAre("m-4", absl::StrCat("m-", sent),
                                                absl::StrCat("m-", sent + 1)));
  EXPECT_THAT(begun.back(), ElementsAre(absl::StrCat("m-", messages - 1)));
  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_EQ(sink.ended(), first_batches + second_batches);
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_EQ(sink.max_outstanding(), in_flight);
  for (const auto& [id, calls] : sink.calls()) {
    EXPECT_EQ(calls, id == left[0] ? 2 : 1) << "entry " << id;
  }
  // Each message acknowledged once.
  std::vector<int64_t> acknowledged = sink.acknowledged();
  std::sort(acknowledged.begin(), acknowledged.end());
  EXPECT_EQ(acknowledged, Ids(ListAll()));
  EXPECT_EQ(Stats().published, messages);
  EXPECT_EQ(Stats().pending, 0);
}

// A failed send is known only once the batch after it is begun: that batch
// goes out and is settled (at most one batch more than without
// pipelining), no batch after it is begun, and the batch claimed meanwhile
// is given back at once.
TEST_P(OutboxPublisherTest,
       PipelinedSinkFailedSendEndsTheRoundAfterTheBatchInFlight) {
  ExpectFailedSendEndsTheRoundAfterTheBatchesInFlight(
      /*in_flight=*/2, /*messages=*/15);  // five batches of 3
}

// kUnavailable from EndBatch: released with no attempt counted, as with a
// sink that does not pipeline (AnUnreachableReceiverUsesUpNoAttempts);
// with max_attempts 1, one attempt counted would give the message up.
TEST_P(OutboxPublisherTest, PipelinedSinkUnreachableReleasesWithoutAttempt) {
  Enqueue(15, "m");  // five batches of 3
  PipelinedSink sink;
  sink.FailWith([](const OutboxEntry& entry, int call) {
    return entry.message.payload == "m-4" && call <= 2
               ? absl::UnavailableError("broker down")
               : absl::OkStatus();
  });
  OutboxPublisherOptions options = FastOptions(3);
  options.max_attempts = 1;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);

  const auto expect_m4_released = [&](int round) {
    bool found = false;
    for (const OutboxEntry& e : ListAll()) {
      if (e.status == OutboxStatus::kPending) {
        EXPECT_EQ(e.claimed_by, "") << e.message.payload << " round " << round;
      }
      if (e.message.payload != "m-4") continue;
      found = true;
      EXPECT_EQ(e.status, OutboxStatus::kPending) << "round " << round;
      EXPECT_EQ(e.attempts, 0) << "round " << round;
      EXPECT_THAT(e.last_error, HasSubstr("broker down")) << "round " << round;
    }
    EXPECT_TRUE(found);
  };

  // m-4 in the second batch: the third batch goes out behind it.
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 8);
  EXPECT_EQ(result.failed_sends, 1);
  EXPECT_EQ(result.given_up, 0);
  EXPECT_EQ(sink.begun().size(), 3u);
  expect_m4_released(1);

  // m-4 first: [m-4, m-9, m-10], then [m-11, m-12, m-13]; m-14 given back.
  ASSERT_OK_AND_ASSIGN(result, publisher->RunOnce());
  EXPECT_EQ(result.published, 5);
  EXPECT_EQ(result.failed_sends, 1);
  EXPECT_EQ(result.given_up, 0);
  EXPECT_EQ(sink.begun().size(), 5u);
  expect_m4_released(2);
  EXPECT_EQ(Stats().failed, 0);

  ASSERT_OK_AND_ASSIGN(result, publisher->RunOnce());
  EXPECT_EQ(result.published, 2);
  EXPECT_EQ(result.failed_sends, 0);
  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_EQ(sink.sends(), 0);
  EXPECT_EQ(Stats().published, 15);
  EXPECT_EQ(Stats().failed, 0);
  EXPECT_EQ(Stats().pending, 0);
}

// An EndBatch that answers for fewer entries than its batch has (a sink's
// bug): the messages it did not answer for are failed sends, retried.
TEST_P(OutboxPublisherTest, PipelinedSinkMissingStatusesAreFailedSends) {
  Enqueue(10, "m");  // batches of 3
  PipelinedSink sink;
  std::unique_ptr<OutboxPublisher> publisher =
      MakePublisher(sink, FastOptions(3));

  // No answers at all: the first batch fails, the second is in flight
  // behind it and fails too, the third is given back.
  sink.AnswerOnly(0);
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 0);
  EXPECT_EQ(result.failed_sends, 6);
  EXPECT_EQ(result.given_up, 0);
  EXPECT_EQ(sink.begun().size(), 2u);
  std::vector<OutboxEntry> entries = ListAll();
  ASSERT_EQ(entries.size(), 10u);
  for (size_t i = 0; i < entries.size(); ++i) {
    const OutboxEntry& e = entries[i];
    EXPECT_EQ(e.status, OutboxStatus::kPending) << e.message.payload;
    EXPECT_EQ(e.claimed_by, "") << e.message.payload;
    EXPECT_EQ(e.attempts, i < 6 ? 1 : 0) << e.message.payload;
    if (i < 6) {
      EXPECT_THAT(e.last_error, HasSubstr("no status")) << e.message.payload;
    }
  }

  // Two answers of three: m-2 and m-5 fail again.
  sink.AnswerOnly(2);
  ASSERT_OK_AND_ASSIGN(result, publisher->RunOnce());
  EXPECT_EQ(result.published, 4);
  EXPECT_EQ(result.failed_sends, 2);
  EXPECT_EQ(sink.begun().size(), 4u);
  for (const OutboxEntry& e : ListAll()) {
    if (e.message.payload == "m-2" || e.message.payload == "m-5") {
      EXPECT_EQ(e.status, OutboxStatus::kPending) << e.message.payload;
      EXPECT_EQ(e.attempts, 2) << e.message.payload;
    }
  }

  sink.AnswerOnly(std::nullopt);
  ASSERT_OK_AND_ASSIGN(result, publisher->RunOnce());
  EXPECT_EQ(result.published, 6);
  EXPECT_EQ(result.failed_sends, 0);
  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_EQ(sink.ended(), static_cast<int>(sink.begun().size()));
  EXPECT_EQ(Stats().published, 10);
  EXPECT_EQ(Stats().pending, 0);
}

// An outbox whose MarkPublishedAndClaim fails after `n` calls that
// succeed (a store error while a batch is in flight); every other call
// goes to the real one.
class MarkAndClaimFailsAfter final : public test::ForwardingOutboxStore {
 public:
  MarkAndClaimFailsAfter(OutboxStore* real, int n)
      : ForwardingOutboxStore(real), left_(n) {}

  absl::StatusOr<std::vector<OutboxEntry>> MarkPublishedAndClaim(
      absl::Span<const int64_t> published, std::string_view worker, int limit,
      absl::Duration lease) override {
    if (left_.fetch_sub(1) <= 0) {
      return absl::UnavailableError("injected MarkPublishedAndClaim failure");
    }
    return ForwardingOutboxStore::MarkPublishedAndClaim(published, worker,
                                                        limit, lease);
  }

 private:
  std::atomic<int> left_;
};

// `target` with the outbox `outbox`; neither is owned.
class WithOutbox final : public ForwardingEventStore {
 public:
  WithOutbox(EventStore* target, OutboxStore* outbox)
      : ForwardingEventStore(target), outbox_(outbox) {}
  OutboxStore& outbox() override { return *outbox_; }

 private:
  OutboxStore* const outbox_;
};

// Enqueues `messages` in batches of 3 and publishes them with at most
// `in_flight` batches in flight, through an outbox whose
// MarkPublishedAndClaim fails after `good_settles` successes: RunOnce
// returns the error, the good_settles + 1 batches begun are all ended
// (nothing left in flight, no contract broken), and every message stays
// pending, the batches begun still claimed (left to their leases).
void OutboxPublisherTest::ExpectStoreErrorEndsTheBatchesInFlight(
    int in_flight, int good_settles, int messages) {
  Enqueue(messages, "m");
  MarkAndClaimFailsAfter outbox(&store().outbox(), good_settles);
  WithOutbox faulty(&store(), &outbox);
  PipelinedSink sink(in_flight);
  OutboxPublisherOptions options = FastOptions(3);
  options.worker_name = "faulty";
  options.max_batches_in_flight = in_flight;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<OutboxPublisher> publisher,
                       OutboxPublisher::Create(faulty, sink, options));

  EXPECT_THAT(publisher->RunOnce(),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("injected MarkPublishedAndClaim")));
  const int begun = good_settles + 1;
  std::vector<std::vector<std::string>> expected;
  for (int b = 0; b < begun; ++b) {
    expected.push_back({absl::StrCat("m-", 3 * b),
                        absl::StrCat("m-", 3 * b + 1),
                        absl::StrCat("m-", 3 * b + 2)});
  }
  EXPECT_EQ(sink.begun_payloads(), expected);
  EXPECT_EQ(sink.max_outstanding(), begun);
  EXPECT_EQ(sink.ended(), begun);
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_THAT(sink.violations(), IsEmpty());
  const std::vector<OutboxEntry> entries = ListAll();
  ASSERT_EQ(entries.size(), static_cast<size_t>(messages));
  for (size_t i = 0; i < entries.size(); ++i) {  // entries[i] is m-i
    EXPECT_EQ(entries[i].status, OutboxStatus::kPending) << i;
    EXPECT_EQ(entries[i].claimed_by,
              i < static_cast<size_t>(3 * begun) ? "faulty" : "")
        << i;
  }
}

// A store error while a batch is in flight ends the round, and the batch
// begun is ended all the same: the sink is left with nothing in flight.
// The batches sent and not marked are left to their leases. The first
// settle (claiming the second batch) succeeds; the second, while the
// second batch is in flight, fails.
TEST_P(OutboxPublisherTest, PipelinedSinkStoreErrorEndsTheBatchInFlight) {
  ExpectStoreErrorEndsTheBatchesInFlight(/*in_flight=*/2, /*good_settles=*/1,
                                         /*messages=*/15);
}

// Stop() from another thread while the background thread waits in EndBatch:
// every batch begun is ended, and nothing stays claimed. Whether the stop
// comes before or after the sink is released is up to the scheduler (Stop()
// returns only after the background thread ends): what is checked holds
// either way.
TEST_P(OutboxPublisherTest,
       ConcurrentStopWithAPipelinedSinkEndsEveryBatchBegun) {
  Enqueue(20, "m");  // seven batches of 3
  PipelinedSink sink;
  sink.Hold();
  std::unique_ptr<OutboxPublisher> publisher =
      MakePublisher(sink, FastOptions(3));
  ASSERT_OK(publisher->Start());
  ASSERT_TRUE(WaitUntil([&] { return sink.held() >= 1; }, kLong));
  // Ending the first batch, with the second begun behind it.
  EXPECT_EQ(sink.begun().size(), 2u);
  EXPECT_EQ(sink.outstanding(), 2);

  std::atomic<bool> stopping{false};
  std::thread stopper([&] {
    stopping = true;
    publisher->Stop();
  });
  ASSERT_TRUE(WaitUntil([&] { return stopping.load(); }, kLong));
  sink.Release();
  stopper.join();
  EXPECT_FALSE(publisher->stats().running);

  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_EQ(sink.sends(), 0);
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_EQ(sink.ended(), static_cast<int>(sink.begun().size()));
  EXPECT_EQ(sink.max_outstanding(), 2);
  for (const auto& [id, calls] : sink.calls()) {
    EXPECT_EQ(calls, 1) << "entry " << id << " begun twice";
  }
  // What the sink acknowledged is published; the rest is pending and free.
  EXPECT_EQ(sink.acknowledged(), Concatenated(sink.begun()));
  int64_t published = 0;
  for (const OutboxEntry& e : ListAll()) {
    if (e.status == OutboxStatus::kPublished) {
      ++published;
      continue;
    }
    EXPECT_EQ(e.status, OutboxStatus::kPending) << e.message.payload;
    EXPECT_EQ(e.claimed_by, "") << e.message.payload;
    EXPECT_EQ(e.lease_until, absl::InfinitePast()) << e.message.payload;
    EXPECT_EQ(e.attempts, 0) << e.message.payload;
  }
  EXPECT_EQ(published, static_cast<int64_t>(sink.acknowledged().size()));
  EXPECT_EQ(publisher->stats().published, published);

  // Stopped, the publisher is usable again: the rest goes out once each.
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult rest, publisher->RunOnce());
  EXPECT_EQ(rest.published, 20 - published);
  EXPECT_EQ(Stats().published, 20);
  EXPECT_EQ(Stats().pending, 0);
  EXPECT_EQ(Concatenated(sink.begun()), Ids(ListAll()));
  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_EQ(sink.outstanding(), 0);
}

// Stop() during RunOnce, while the first batch is being ended: the two
// batches begun are ended and settled, the one claimed meanwhile is given
// back, and no batch more is begun.
TEST_P(OutboxPublisherTest,
       ConcurrentStopEndsRunOnceAfterThePipelinedBatchesInFlight) {
  Enqueue(20, "m");  // seven batches of 3
  PipelinedSink sink;
  sink.Hold();
  std::unique_ptr<OutboxPublisher> publisher =
      MakePublisher(sink, FastOptions(3));
  absl::StatusOr<OutboxPublishResult> result;
  std::thread job([&] { result = publisher->RunOnce(); });
  ASSERT_TRUE(WaitUntil([&] { return sink.held() >= 1; }, kLong));
  EXPECT_EQ(sink.begun().size(), 2u);
  publisher->Stop();  // returns at once: RunOnce ends after its batches
  sink.Release();
  job.join();
  ASSERT_OK(result);
  EXPECT_EQ(result->published, 6);
  EXPECT_EQ(result->failed_sends, 0);
  EXPECT_THAT(sink.begun_payloads(),
              ElementsAre(ElementsAre("m-0", "m-1", "m-2"),
                          ElementsAre("m-3", "m-4", "m-5")));
  EXPECT_EQ(sink.ended(), 2);
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_THAT(sink.violations(), IsEmpty());
  std::vector<OutboxEntry> entries = ListAll();
  ASSERT_EQ(entries.size(), 20u);
  for (size_t i = 6; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].status, OutboxStatus::kPending);
    EXPECT_EQ(entries[i].claimed_by, "") << entries[i].message.payload;
  }

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult rest, publisher->RunOnce());
  EXPECT_EQ(rest.published, 14);
  EXPECT_EQ(Stats().published, 20);
  EXPECT_THAT(sink.violations(), IsEmpty());
}

// With max_batches_in_flight 4: four in flight, never five, and four
// reached (not just two); ten batches of 3, then one of 1.
TEST_P(OutboxPublisherTest, PipelinedSinkKeepsMaxBatchesInFlight) {
  ExpectEveryBatchInOrder(/*in_flight=*/4, /*messages=*/31, /*batch_size=*/3);
}

// Fewer batches than max_batches_in_flight: all of them are begun before
// the first is ended, and every one is ended and settled when the outbox
// runs dry.
TEST_P(OutboxPublisherTest, PipelinedSinkEndsEveryBatchWhenFewerThanTheMax) {
  Enqueue(10, "m");  // batches of 3, 3, 3, 1
  const std::vector<int64_t> enqueued = Ids(ListAll());
  PipelinedSink sink(/*max_in_flight=*/64);
  OutboxPublisherOptions options = FastOptions(3);
  options.max_batches_in_flight = 64;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_NE(publisher, nullptr);

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 10);
  EXPECT_EQ(result.failed_sends, 0);
  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_EQ(sink.sends(), 0);
  EXPECT_EQ(sink.begun().size(), 4u);
  EXPECT_EQ(Concatenated(sink.begun()), enqueued);
  EXPECT_EQ(sink.max_outstanding(), 4);
  EXPECT_EQ(sink.ended(), 4);
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_EQ(sink.acknowledged(), enqueued);
  EXPECT_EQ(Stats().published, 10);
  EXPECT_EQ(Stats().pending, 0);
}

// max_batches_in_flight 1: no pipelining, even with a sink that
// PipelinesBatches(): each batch goes out with SendBatch, in enqueue
// order, and BeginBatch / EndBatch are never called.
TEST_P(OutboxPublisherTest, PipelinedSinkWithOneBatchInFlightGetsSendBatch) {
  Enqueue(10, "m");  // batches of 3, 3, 3, 1
  const std::vector<int64_t> enqueued = Ids(ListAll());
  ASSERT_EQ(enqueued.size(), 10u);
  PipelinedSink sink(/*max_in_flight=*/1);
  OutboxPublisherOptions options = FastOptions(3);
  options.max_batches_in_flight = 1;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_NE(publisher, nullptr);

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 10);
  EXPECT_EQ(result.failed_sends, 0);
  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_THAT(sink.begun(), IsEmpty());
  EXPECT_EQ(sink.ended(), 0);
  EXPECT_EQ(sink.max_outstanding(), 0);
  EXPECT_EQ(sink.sends(), 4);
  const std::vector<std::vector<int64_t>> sent = sink.sent();
  ASSERT_EQ(sent.size(), 4u);
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(sent[i].size(), i < 3 ? 3u : 1u) << "batch " << i;
  }
  EXPECT_EQ(Concatenated(sent), enqueued);
  EXPECT_EQ(sink.acknowledged(), enqueued);
  for (const auto& [id, n] : sink.calls()) EXPECT_EQ(n, 1) << "entry " << id;
  EXPECT_EQ(Stats().published, 10);
  EXPECT_EQ(Stats().pending, 0);
}

// A failed send with four batches in flight is known once the batch three
// after it is begun: the batches in flight behind it are ended and settled
// (at most three batches more than without pipelining), no batch after
// them is begun, and the batch claimed meanwhile is given back at once.
// Each answer goes with its own batch: the failure is logged for m-4.
TEST_P(OutboxPublisherTest,
       PipelinedSinkFailedSendEndsTheRoundAfterTheMaxBatchesInFlight) {
  ExpectFailedSendEndsTheRoundAfterTheBatchesInFlight(
      /*in_flight=*/4, /*messages=*/30);  // ten batches of 3
}

// A store error with three batches in flight ends all three: the sink is
// left with nothing in flight, and the batches are left to their leases.
// The first two settles (claiming the second and third batches) succeed;
// the third, while three batches are in flight, fails.
TEST_P(OutboxPublisherTest,
       PipelinedSinkStoreErrorEndsEveryBatchOfTheMaxInFlight) {
  ExpectStoreErrorEndsTheBatchesInFlight(/*in_flight=*/4, /*good_settles=*/2,
                                         /*messages=*/30);
}

// Stop() during RunOnce with max_batches_in_flight 4, while the first
// batch is being ended with three begun behind it: the four are ended and
// settled, the one claimed meanwhile is given back, and no batch more is
// begun.
TEST_P(OutboxPublisherTest,
       ConcurrentStopEndsRunOnceAfterTheMaxPipelinedBatchesInFlight) {
  Enqueue(30, "m");  // ten batches of 3
  PipelinedSink sink(/*max_in_flight=*/4);
  sink.Hold();
  OutboxPublisherOptions options = FastOptions(3);
  options.max_batches_in_flight = 4;
  std::unique_ptr<OutboxPublisher> publisher = MakePublisher(sink, options);
  ASSERT_NE(publisher, nullptr);
  absl::StatusOr<OutboxPublishResult> result;
  std::thread job([&] { result = publisher->RunOnce(); });
  ASSERT_TRUE(WaitUntil([&] { return sink.held() >= 1; }, kLong));
  // The first EndBatch comes once the fourth batch is begun.
  EXPECT_EQ(sink.begun().size(), 4u);
  EXPECT_EQ(sink.outstanding(), 4);
  publisher->Stop();  // returns at once: RunOnce ends after its batches
  sink.Release();
  job.join();
  ASSERT_OK(result);
  EXPECT_EQ(result->published, 12);
  EXPECT_EQ(result->failed_sends, 0);
  EXPECT_EQ(sink.begun().size(), 4u);
  EXPECT_EQ(sink.ended(), 4);
  EXPECT_EQ(sink.outstanding(), 0);
  EXPECT_EQ(sink.max_outstanding(), 4);
  EXPECT_THAT(sink.violations(), IsEmpty());
  std::vector<OutboxEntry> entries = ListAll();
  ASSERT_EQ(entries.size(), 30u);
  for (size_t i = 0; i < entries.size(); ++i) {  // entries[i] is m-i
    EXPECT_EQ(entries[i].status,
              i < 12 ? OutboxStatus::kPublished : OutboxStatus::kPending)
        << i;
    EXPECT_EQ(entries[i].claimed_by, "") << entries[i].message.payload;
  }

  ASSERT_OK_AND_ASSIGN(OutboxPublishResult rest, publisher->RunOnce());
  EXPECT_EQ(rest.published, 18);
  EXPECT_EQ(Stats().published, 30);
  EXPECT_EQ(Concatenated(sink.begun()), Ids(ListAll()));
  EXPECT_THAT(sink.violations(), IsEmpty());
  EXPECT_EQ(sink.outstanding(), 0);
}

// max_batches_in_flight outside [1, 64] is kInvalidArgument naming it;
// both ends of the range are accepted.
TEST_P(OutboxPublisherTest, MaxBatchesInFlightMustBeFrom1To64) {
  PipelinedSink sink;
  OutboxPublisherOptions options = FastOptions();
  for (const int bad : {0, 65, -1}) {
    options.max_batches_in_flight = bad;
    EXPECT_THAT(OutboxPublisher::Create(store(), sink, options).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("max_batches_in_flight")))
        << bad;
  }
  for (const int good : {1, 64}) {
    options.max_batches_in_flight = good;
    EXPECT_OK(OutboxPublisher::Create(store(), sink, options).status()) << good;
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, OutboxPublisherTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

TEST(OutboxPublisherOptionsTest, BadOptionsAreInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       AllTestBackends().front().open(nullptr));
  RecordingSink sink;
  OutboxPublisherOptions options;
  options.batch_size = 0;
  EXPECT_THAT(OutboxPublisher::Create(*store, sink, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("batch_size")));
  options = OutboxPublisherOptions();
  options.lease = absl::ZeroDuration();
  EXPECT_THAT(OutboxPublisher::Create(*store, sink, options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("lease")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<OutboxPublisher> a,
                       OutboxPublisher::Create(*store, sink));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<OutboxPublisher> b,
                       OutboxPublisher::Create(*store, sink));
  EXPECT_NE(a->worker_name(), b->worker_name());
}

}  // namespace
}  // namespace eventstore
