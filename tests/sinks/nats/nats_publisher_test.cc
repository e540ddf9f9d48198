// OutboxPublisher with a NatsOutboxSink on every store backend of
// AllTestBackends(), against a real `nats-server -js`: what a JetStream
// consumer receives (subject, payload, Nats-Msg-Id, headers), exactly once
// in effect (JetStream's duplicate window drops a resend), a message over
// the server's max_payload parked as failed while the others go on, and a
// broker killed with SIGKILL in the middle of a large batch and restarted:
// nothing lost, resends dropped, counted.

#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
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
#include "eventstore/tracing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/outbox_publisher.h"
#include "projections/sinks/nats/nats_outbox_sink.h"
#include "tests/sinks/nats/nats_test_helpers.h"
#include "tests/support/nats_server.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::EntryId;
using ::eventstore::test::FreshSinkOptions;
using ::eventstore::test::kNatsDefaultMaxPayload;
using ::eventstore::test::Message;
using ::eventstore::test::NatsServer;
using ::eventstore::test::SharedNatsServer;
using ::eventstore::test::StoredMessage;
using ::eventstore::test::StreamReader;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::WaitUntil;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr absl::Duration kLong = absl::Seconds(60);

class NatsPublisherTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    absl::StatusOr<NatsServer*> server = SharedNatsServer();
    ASSERT_OK(server);
    server_ = *server;
    absl::StatusOr<std::unique_ptr<EventStore>> opened =
        GetParam().open(nullptr);
    ASSERT_OK(opened);
    store_ = *std::move(opened);
  }

  static OutboxPublisherOptions FastPublisherOptions() {
    OutboxPublisherOptions options;
    options.batch_size = 50;
    options.initial_backoff = absl::Milliseconds(10);
    options.max_backoff = absl::Milliseconds(200);
    options.poll_interval = absl::Milliseconds(50);
    return options;
  }

  OutboxStats Stats() {
    absl::StatusOr<OutboxStats> stats = store_->outbox().Stats();
    EXPECT_OK(stats);
    return stats.ok() ? *stats : OutboxStats();
  }

  // Runs the publisher until nothing is pending (each RunOnce stops at a
  // batch with a failed send; the next one retries it).
  void PublishAll(OutboxPublisher& publisher) {
    const absl::Time deadline = absl::Now() + kLong;
    while (Stats().pending > 0) {
      ASSERT_LT(absl::Now(), deadline) << "the outbox did not drain";
      ASSERT_OK(publisher.RunOnce());
    }
  }

  std::vector<OutboxEntry> Entries(std::optional<OutboxStatus> status) {
    OutboxListOptions options;
    options.status = status;
    options.limit = 100000;
    absl::StatusOr<std::vector<OutboxEntry>> entries =
        store_->outbox().List(options);
    EXPECT_OK(entries);
    return entries.ok() ? *std::move(entries) : std::vector<OutboxEntry>();
  }

  NatsServer* server_ = nullptr;
  std::unique_ptr<EventStore> store_;
};

TEST_P(NatsPublisherTest, EachMessageArrivesOnceWithPayloadIdAndHeaders) {
  constexpr int kMessages = 60;
  const std::string traceparent =
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  for (int i = 0; i < kMessages; ++i) {
    test::v1::Tick tick;
    tick.set_writer(i);
    v1::EventMetadata metadata;
    metadata.set_correlation_id(absl::StrCat("corr-", i));
    metadata.set_causation_id(absl::StrCat("cause-", i));
    std::vector<EventData> events = {EventData::From(tick, metadata)};
    OutboxMessage message = Message(i % 2 == 0 ? "orders" : "billing.eu",
                                    absl::StrCat("payload-", i));
    message.headers[kTraceparentHeader] = traceparent;
    message.headers["tenant"] = "acme";
    std::vector<OutboxMessage> messages = {message};
    AppendRequest request;
    const std::string stream = absl::StrCat("order-", i);
    request.stream = stream;
    request.events = events;
    request.outbox = messages;
    ASSERT_OK(store_->Append(request));
  }

  NatsOutboxSinkOptions options = FreshSinkOptions(server_->url());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsOutboxSink> sink,
                       NatsOutboxSink::Connect(options));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<OutboxPublisher> publisher,
      OutboxPublisher::Create(*store_, *sink, FastPublisherOptions()));
  PublishAll(*publisher);
  EXPECT_EQ(Stats().published, kMessages);
  EXPECT_EQ(Stats().failed, 0);

  std::map<int64_t, OutboxEntry> by_id;
  for (OutboxEntry& entry : Entries(OutboxStatus::kPublished)) {
    by_id[entry.id] = std::move(entry);
  }
  ASSERT_EQ(by_id.size(), static_cast<size_t>(kMessages));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(server_->url()));
  ASSERT_OK_AND_ASSIGN(std::vector<StoredMessage> stored,
                       reader->ReadAll(options.stream.name));
  ASSERT_EQ(stored.size(), static_cast<size_t>(kMessages));
  std::set<int64_t> seen;
  std::map<std::string, int64_t> last_id_per_subject;
  for (const StoredMessage& message : stored) {
    const int64_t id = EntryId(message, options.msg_id_prefix);
    ASSERT_TRUE(by_id.count(id))
        << "unknown Nats-Msg-Id in " << message.subject;
    EXPECT_TRUE(seen.insert(id).second) << "entry " << id << " stored twice";
    const OutboxMessage& sent = by_id[id].message;
    const int i = std::stoi(sent.payload.substr(sent.payload.find('-') + 1));
    EXPECT_EQ(message.subject, options.subject_prefix + sent.destination);
    EXPECT_EQ(message.data, sent.payload);
    EXPECT_EQ(message.headers.at("Nats-Msg-Id"),
              absl::StrCat(options.msg_id_prefix, id));
    // The append's headers from the event, and the message's own.
    EXPECT_EQ(message.headers.at(kCorrelationIdHeader),
              absl::StrCat("corr-", i));
    EXPECT_EQ(message.headers.at(kCausationIdHeader),
              absl::StrCat("cause-", i));
    EXPECT_EQ(message.headers.at(kEventTypeHeader), "eventstore.test.v1.Tick");
    EXPECT_EQ(message.headers.at(kTraceparentHeader), traceparent);
    EXPECT_EQ(message.headers.at("tenant"), "acme");
    EXPECT_EQ(message.headers.at(kNatsOutboxKeyHeader), sent.key);
    // Enqueue order per subject.
    int64_t& last = last_id_per_subject[message.subject];
    EXPECT_GT(id, last) << message.subject;
    last = id;
  }
  EXPECT_EQ(sink->stats().acknowledged, kMessages);
  EXPECT_EQ(sink->stats().duplicates, 0);
}

TEST_P(NatsPublisherTest, ResendOfPublishedMessageIsDroppedByDuplicateWindow) {
  constexpr int kMessages = 10;
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < kMessages; ++i) {
    messages.push_back(Message("orders", absl::StrCat("m-", i)));
  }
  ASSERT_OK(store_->outbox().Enqueue(messages));
  NatsOutboxSinkOptions options = FreshSinkOptions(server_->url());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsOutboxSink> sink,
                       NatsOutboxSink::Connect(options));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<OutboxPublisher> publisher,
      OutboxPublisher::Create(*store_, *sink, FastPublisherOptions()));
  PublishAll(*publisher);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(server_->url()));
  ASSERT_OK_AND_ASSIGN(uint64_t count, reader->Count(options.stream.name));
  EXPECT_EQ(count, static_cast<uint64_t>(kMessages));

  // What a publisher that crashed after sending, before marking the batch
  // published, sends again: the same entries, one by one and as a batch.
  std::vector<OutboxEntry> entries = Entries(OutboxStatus::kPublished);
  ASSERT_EQ(entries.size(), static_cast<size_t>(kMessages));
  EXPECT_OK(sink->Send(entries[3]));
  std::vector<absl::Status> results = sink->SendBatch(entries);
  ASSERT_EQ(results.size(), entries.size());
  for (const absl::Status& result : results) EXPECT_OK(result);

  ASSERT_OK_AND_ASSIGN(count, reader->Count(options.stream.name));
  EXPECT_EQ(count, static_cast<uint64_t>(kMessages));
  EXPECT_EQ(sink->stats().duplicates, kMessages + 1);
  EXPECT_EQ(sink->stats().acknowledged, 2 * kMessages + 1);
}

TEST_P(NatsPublisherTest,
       MessageOverMaxPayloadIsParkedAsFailedOthersPublished) {
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < 5; ++i) {
    messages.push_back(Message("orders", absl::StrCat("m-", i)));
  }
  messages[2].payload = std::string(kNatsDefaultMaxPayload + 1000, 'x');
  ASSERT_OK(store_->outbox().Enqueue(messages));
  NatsOutboxSinkOptions options = FreshSinkOptions(server_->url());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsOutboxSink> sink,
                       NatsOutboxSink::Connect(options));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<OutboxPublisher> publisher,
      OutboxPublisher::Create(*store_, *sink, FastPublisherOptions()));
  PublishAll(*publisher);

  EXPECT_EQ(Stats().published, 4);
  EXPECT_EQ(Stats().failed, 1);
  std::vector<OutboxEntry> failed = Entries(OutboxStatus::kFailed);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].message.payload.size(),
            static_cast<size_t>(kNatsDefaultMaxPayload + 1000));
  EXPECT_THAT(failed[0].last_error,
              AllOf(HasSubstr("max_payload"),
                    HasSubstr(absl::StrCat(kNatsDefaultMaxPayload))));
  // JetStream will never take it: given up at the first attempt, not
  // retried max_attempts times.
  EXPECT_EQ(failed[0].attempts, 1);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(server_->url()));
  ASSERT_OK_AND_ASSIGN(std::vector<StoredMessage> stored,
                       reader->ReadAll(options.stream.name));
  std::vector<std::string> payloads;
  for (const StoredMessage& message : stored) payloads.push_back(message.data);
  EXPECT_THAT(payloads, ::testing::ElementsAre("m-0", "m-1", "m-3", "m-4"));
}

// kill -9 of the broker while the publisher sends a large batch, then a
// restart: the publisher retries what failed, JetStream drops what it had
// stored already, and the consumer sees every message once.
TEST_P(NatsPublisherTest, BrokerKilledMidBatchAndRestartedLosesNothing) {
  constexpr int kMessages = 6000;
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < kMessages; ++i) {
    messages.push_back(Message(i % 3 == 0 ? "orders" : "billing",
                               absl::StrCat("m-", i, std::string(200, '.'))));
  }
  ASSERT_OK(store_->outbox().Enqueue(messages));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsServer> broker, NatsServer::Start());
  NatsOutboxSinkOptions options = FreshSinkOptions(broker->url());
  options.ack_timeout = absl::Seconds(2);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsOutboxSink> sink,
                       NatsOutboxSink::Connect(options));
  OutboxPublisherOptions publisher_options = FastPublisherOptions();
  publisher_options.batch_size = 1000;
  // Failed sends while the broker is down count as attempts: the test is
  // about losing nothing, not about when the publisher gives up.
  publisher_options.max_attempts = 1000;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<OutboxPublisher> publisher,
      OutboxPublisher::Create(*store_, *sink, publisher_options));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(broker->url()));

  ASSERT_OK(publisher->Start());
  // Kill as soon as the first messages are stored: the batch is in flight.
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<uint64_t> count = reader->Count(options.stream.name);
        return count.ok() && *count > 0;
      },
      kLong));
  ASSERT_OK(broker->Kill());
  const int64_t stored_before_kill = sink->stats().acknowledged;
  ASSERT_LT(stored_before_kill, kMessages)
      << "publishing finished before the kill; enqueue more messages";
  // Sends fail while the broker is down...
  ASSERT_TRUE(
      WaitUntil([&] { return publisher->stats().failed_sends > 0; }, kLong));
  ASSERT_OK(broker->StartAgain());
  // ...and the publisher carries on after the restart.
  ASSERT_TRUE(WaitUntil(
      [&] {
        OutboxStats stats = Stats();
        return stats.pending == 0;
      },
      absl::Seconds(120)))
      << "pending: " << Stats().pending;
  publisher->Stop();
  EXPECT_EQ(Stats().published, kMessages);
  EXPECT_EQ(Stats().failed, 0);

  ASSERT_OK_AND_ASSIGN(std::vector<StoredMessage> stored,
                       reader->ReadAll(options.stream.name));
  std::set<int64_t> distinct;
  for (const StoredMessage& message : stored) {
    distinct.insert(EntryId(message, options.msg_id_prefix));
  }
  std::set<int64_t> enqueued;
  for (const OutboxEntry& entry : Entries(std::nullopt)) {
    enqueued.insert(entry.id);
  }
  EXPECT_EQ(distinct.size(), static_cast<size_t>(kMessages));
  EXPECT_EQ(stored.size(), static_cast<size_t>(kMessages))
      << "JetStream stored a resend twice";
  EXPECT_EQ(distinct, enqueued) << "a message was lost";
  const NatsOutboxSinkStats stats = sink->stats();
  EXPECT_GE(stats.reconnects, 1);
  RecordProperty("failed_sends",
                 std::to_string(publisher->stats().failed_sends));
  RecordProperty("duplicates_dropped", std::to_string(stats.duplicates));
  std::cerr << "[ broker killed ] " << GetParam().name << ": "
            << stored_before_kill << " acknowledged before the kill, "
            << publisher->stats().failed_sends << " failed sends, "
            << stats.duplicates << " resends dropped by JetStream, "
            << stored.size() << " stored, " << distinct.size()
            << " distinct of " << kMessages << " enqueued\n";
}

INSTANTIATE_TEST_SUITE_P(AllBackends, NatsPublisherTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
