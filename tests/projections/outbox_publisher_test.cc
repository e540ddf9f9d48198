// OutboxPublisher on every backend of AllTestBackends(): publishing what
// appends and Enqueue put in the outbox, two publishers at once, retries,
// giving up, and the background thread.
//
// Tests whose names contain "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include "projections/outbox_publisher.h"

#include <atomic>
#include <condition_variable>
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
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/projections/test_projections.h"
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
