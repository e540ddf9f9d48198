// RabbitMqOutboxSink against a real broker (a throwaway rabbitmq-server,
// tests/support/rabbitmq_server.h), with the OutboxPublisher on every store
// backend: properties and headers as consumers see them, unroutable and
// oversize messages, per-message statuses and order, a broker killed with
// -9 in the middle of a batch and restarted, unreachable brokers, several
// batches in flight (BeginBatch / EndBatch).
//
// The consumer side uses librabbitmq directly (AmqpClient,
// rabbitmq_test_helpers.h), and deduplicates by message_id as the sink's users
// are told to.

#include "projections/sinks/rabbitmq/rabbitmq_outbox_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/status_macros.h"
#include "eventstore/tracing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/outbox_publisher.h"
#include "tests/sinks/rabbitmq/rabbitmq_test_helpers.h"
#include "tests/support/rabbitmq_server.h"
#include "tests/support/server_reaper_check.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::AmqpClient;
using ::eventstore::test::AmqpProxy;
using ::eventstore::test::PauseBroker;
using ::eventstore::test::RabbitMqServer;
using ::eventstore::test::RabbitMqServerOptions;
using ::eventstore::test::Received;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::HasSubstr;
using ::testing::Not;

// The test broker's max_message_size, and a payload over it.
constexpr int64_t kMaxMessageSize = 16 * 1024;
constexpr size_t kOversize = 20000;

// --- the broker -------------------------------------------------------------

// The broker of this process, started on first use and killed at exit.
// Tests that kill it start it again before they end; SetUp starts it again
// should one have failed to.
absl::StatusOr<std::unique_ptr<RabbitMqServer>>* g_broker = nullptr;
std::once_flag g_broker_once;

absl::StatusOr<RabbitMqServer*> Broker() {
  std::call_once(g_broker_once, [] {
    RabbitMqServerOptions options;
    options.max_message_size = kMaxMessageSize;
    g_broker = new absl::StatusOr<std::unique_ptr<RabbitMqServer>>(
        RabbitMqServer::Start(options));
    std::atexit([] { *g_broker = absl::CancelledError("stopped at exit"); });
  });
  if (!g_broker->ok()) return g_broker->status();
  RabbitMqServer* server = g_broker->value().get();
  if (!server->running()) {
    absl::Status started = server->StartAgain();
    if (!started.ok()) return started;
  }
  return server;
}

// A name no other test uses, for exchanges and queues (the broker is
// shared by every test of the process).
std::string UniqueName(const std::string& what) {
  static int counter = 0;
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrCat("t", ++counter, ".", what);
  if (info != nullptr) {
    name = absl::StrCat(name, ".", info->name());
  }
  for (char& c : name) {
    if (c == '/') c = '.';
  }
  return name;
}

absl::Status DeclareQueue(RabbitMqServer& broker, const std::string& queue);

// A durable queue for a test that kills the broker. RabbitMQ 3.10 may lose
// a durable queue declared moments before a kill -9 (seen here: after the
// restart the queue and its confirmed messages were gone, as if never
// declared), whereas a queue of a real deployment was declared long
// before. So the queues of every such test are declared at once, on first
// use, and made to last by a clean restart of the broker.
absl::StatusOr<std::string> CrashSafeQueue(const std::string& test) {
  static const std::vector<std::string>* const kTests = [] {
    auto* tests = new std::vector<std::string>{"reconnect", "in-flight"};
    for (const TestBackend& backend : AllTestBackends()) {
      tests->push_back("killed." + backend.name);
    }
    return tests;
  }();
  static absl::Status* prepared = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    prepared = new absl::Status([]() -> absl::Status {
      absl::StatusOr<RabbitMqServer*> broker = Broker();
      if (!broker.ok()) return broker.status();
      for (const std::string& test : *kTests) {
        absl::Status declared = DeclareQueue(**broker, "crash-safe." + test);
        if (!declared.ok()) return declared;
      }
      absl::Status stopped = (*broker)->Stop();
      if (!stopped.ok()) return stopped;
      return (*broker)->StartAgain();
    }());
  });
  if (!prepared->ok()) return *prepared;
  if (std::find(kTests->begin(), kTests->end(), test) == kTests->end()) {
    return absl::InvalidArgumentError("no crash-safe queue for " + test);
  }
  return "crash-safe." + test;
}

// --- a consumer -------------------------------------------------------------

absl::Status DeclareQueue(RabbitMqServer& broker, const std::string& queue) {
  absl::StatusOr<std::unique_ptr<AmqpClient>> client =
      AmqpClient::Connect(broker.port());
  if (!client.ok()) return client.status();
  return (*client)->DeclareQueue(queue);
}

// The outbox entry id in `message_id` ("<prefix><id>"); -1 when it is not
// one.
int64_t IdOf(const std::string& message_id, const std::string& prefix) {
  int64_t id = -1;
  if (!absl::StartsWith(message_id, prefix) ||
      !absl::SimpleAtoi(message_id.substr(prefix.size()), &id)) {
    return -1;
  }
  return id;
}

// What a consumer that drops duplicates by message_id sees: the first copy
// of each message, in arrival order; `duplicates` counts the others.
std::vector<Received> Deduplicate(const std::vector<Received>& received,
                                  int64_t* duplicates) {
  std::set<std::string> seen;
  std::vector<Received> first;
  *duplicates = 0;
  for (const Received& r : received) {
    if (seen.insert(r.message_id).second) {
      first.push_back(r);
    } else {
      ++*duplicates;
    }
  }
  return first;
}

// A port on 127.0.0.1 nothing listens on (it was free a moment ago).
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address));
  getsockname(fd, reinterpret_cast<struct sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

OutboxMessage Message(const std::string& destination, const std::string& key,
                      const std::string& payload) {
  OutboxMessage message;
  message.destination = destination;
  message.key = key;
  message.payload = payload;
  return message;
}

// --- tests without a store --------------------------------------------------

TEST(RabbitMqRouteTest, DestinationNamesExchangeAndRoutingKey) {
  OutboxMessage m = Message("billing", "order-1", "x");
  ASSERT_OK_AND_ASSIGN(RabbitMqRoute route, RabbitMqRouteOf(m));
  EXPECT_EQ(route.exchange, "billing");
  EXPECT_EQ(route.routing_key, "order-1");

  m.destination = "billing/invoices.eu";
  ASSERT_OK_AND_ASSIGN(route, RabbitMqRouteOf(m));
  EXPECT_EQ(route.exchange, "billing");
  EXPECT_EQ(route.routing_key, "invoices.eu");

  m.destination = "billing/a/b";
  ASSERT_OK_AND_ASSIGN(route, RabbitMqRouteOf(m));
  EXPECT_EQ(route.exchange, "billing");
  EXPECT_EQ(route.routing_key, "a/b");

  m.destination = "/invoices";
  ASSERT_OK_AND_ASSIGN(route, RabbitMqRouteOf(m));
  EXPECT_EQ(route.exchange, "");
  EXPECT_EQ(route.routing_key, "invoices");

  m.destination = "billing/";
  ASSERT_OK_AND_ASSIGN(route, RabbitMqRouteOf(m));
  EXPECT_EQ(route.exchange, "billing");
  EXPECT_EQ(route.routing_key, "order-1");

  m.destination = "/";
  ASSERT_OK_AND_ASSIGN(route, RabbitMqRouteOf(m));
  EXPECT_EQ(route.exchange, "");
  EXPECT_EQ(route.routing_key, "order-1");

  m.destination = "billing";
  m.key = std::string(256, 'k');
  EXPECT_THAT(RabbitMqRouteOf(m).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("routing key of 256 bytes")));
}

TEST(RabbitMqRouteTest, MaskAmqpUrlHidesThePassword) {
  EXPECT_EQ(MaskAmqpUrl("amqp://app:s3cret@host:5672/shop"),
            "amqp://app:***@host:5672/shop");
  EXPECT_EQ(MaskAmqpUrl("amqp://app:p%40ss@host/%2F"),
            "amqp://app:***@host/%2F");
  EXPECT_EQ(MaskAmqpUrl("amqp://host:5672/shop"), "amqp://host:5672/shop");
  EXPECT_EQ(MaskAmqpUrl("amqp://app@host"), "amqp://app@host");
}

TEST(RabbitMqConnectTest, UnreachableBrokerIsUnavailableWithThePasswordMasked) {
  const int port = UnusedPort();
  RabbitMqOutboxSinkOptions options;
  options.url = absl::StrCat("amqp://app:s3cret-pw@127.0.0.1:", port, "/shop");
  options.connect_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<RabbitMqOutboxSink>> sink =
      RabbitMqOutboxSink::Connect(options);
  EXPECT_THAT(sink.status(),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(absl::StrCat("amqp://app:***@127.0.0.1:", port,
                                              "/shop"))));
  EXPECT_THAT(sink.status().message(), Not(HasSubstr("s3cret-pw")));
}

TEST(RabbitMqConnectTest, MalformedUrlsAndOptionsAreInvalidArguments) {
  RabbitMqOutboxSinkOptions options;
  options.url = "http://app:s3cret-pw@host/";
  absl::Status status = RabbitMqOutboxSink::Connect(options).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kInvalidArgument,
                               HasSubstr("not an AMQP URL")));
  EXPECT_THAT(status.message(), Not(HasSubstr("s3cret-pw")));

  options.url = "amqps://app:s3cret-pw@host/";
  EXPECT_THAT(RabbitMqOutboxSink::Connect(options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("TLS")));

  options.url = "amqp://127.0.0.1:1";
  options.message_id_prefix = std::string(201, 'p');
  EXPECT_THAT(
      RabbitMqOutboxSink::Connect(options).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("message_id")));
}

TEST(RabbitMqConnectTest, RefusedLoginIsPermissionDeniedWithThePasswordMasked) {
  ASSERT_OK_AND_ASSIGN(RabbitMqServer * broker, Broker());
  RabbitMqOutboxSinkOptions options;
  options.url =
      absl::StrCat("amqp://guest:wrong-pw@127.0.0.1:", broker->port(), "/");
  absl::Status status = RabbitMqOutboxSink::Connect(options).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kPermissionDenied,
                               HasSubstr("amqp://guest:***@127.0.0.1")));
  EXPECT_THAT(status.message(), Not(HasSubstr("wrong-pw")));
}

// Entries made by hand, as a publisher would claim them.
std::vector<OutboxEntry> Entries(const std::vector<OutboxMessage>& messages,
                                 int64_t first_id) {
  std::vector<OutboxEntry> entries;
  for (size_t i = 0; i < messages.size(); ++i) {
    OutboxEntry entry;
    entry.id = first_id + static_cast<int64_t>(i);
    entry.message = messages[i];
    entry.created_at = absl::Now();
    entries.push_back(std::move(entry));
  }
  return entries;
}

TEST(RabbitMqSendBatchTest, ReturnsAStatusPerMessageAndKeepsOrderPerKey) {
  ASSERT_OK_AND_ASSIGN(RabbitMqServer * broker, Broker());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpClient> client,
                       AmqpClient::Connect(broker->port()));
  const std::string exchange = UniqueName("ex");
  const std::string queue_a = UniqueName("a");
  const std::string queue_b = UniqueName("b");
  ASSERT_OK(client->DeclareExchange(exchange));
  ASSERT_OK(client->DeclareQueue(queue_a));
  ASSERT_OK(client->DeclareQueue(queue_b));
  ASSERT_OK(client->Bind(queue_a, exchange, "a"));
  ASSERT_OK(client->Bind(queue_b, exchange, "b"));

  // Keys a and b in turn; among them an unroutable message, one to a
  // missing exchange and one over the broker's limit (each closing the
  // channel), and one whose routing key AMQP cannot carry.
  constexpr int kCount = 300;
  std::vector<OutboxMessage> messages;
  std::map<int, absl::StatusCode> expected;
  for (int i = 0; i < kCount; ++i) {
    OutboxMessage m =
        Message(exchange, i % 2 == 0 ? "a" : "b", absl::StrCat("m", i));
    expected[i] = absl::StatusCode::kOk;
    if (i % 50 == 7) {
      m.key = "nobody";
      expected[i] = absl::StatusCode::kFailedPrecondition;
    } else if (i == 150) {
      m.destination = UniqueName("missing");
      expected[i] = absl::StatusCode::kNotFound;
    } else if (i == 200) {
      m.payload = std::string(kOversize, 'x');
      expected[i] = absl::StatusCode::kInvalidArgument;
    } else if (i == 250) {
      m.destination = absl::StrCat(exchange, "/", std::string(300, 'k'));
      expected[i] = absl::StatusCode::kInvalidArgument;
    }
    messages.push_back(std::move(m));
  }
  const std::vector<OutboxEntry> entries = Entries(messages, 1000);

  RabbitMqOutboxSinkOptions options;
  options.url = broker->url();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       RabbitMqOutboxSink::Connect(options));
  const std::vector<absl::Status> statuses = sink->SendBatch(entries);
  ASSERT_EQ(statuses.size(), entries.size());
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(statuses[i].code(), expected[i])
        << "message " << i << ": " << statuses[i];
  }
  EXPECT_THAT(statuses[7], StatusIs(absl::StatusCode::kFailedPrecondition,
                                    HasSubstr("NO_ROUTE")));
  EXPECT_THAT(statuses[150],
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("404 NOT_FOUND - no exchange")));
  EXPECT_THAT(statuses[200],
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("message size ", kOversize,
                                              " is larger than configured "
                                              "max size ",
                                              kMaxMessageSize))));
  // The missing exchange is found before publishing; the oversize message
  // closes the channel once, and its reply teaches the sink the broker's
  // limit, which tells it apart from the others sent again.
  EXPECT_EQ(sink->stats().channels_closed, 1);
  EXPECT_EQ(sink->stats().returned, 6);

  // Each queue has every message sent OK with its key, first copies in
  // enqueue order (copies of a message whose confirm a channel close lost
  // may follow).
  for (const auto& [queue, key] :
       {std::pair<std::string, std::string>{queue_a, "a"}, {queue_b, "b"}}) {
    ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client->Drain(queue));
    int64_t duplicates = 0;
    std::vector<Received> first = Deduplicate(received, &duplicates);
    std::vector<int64_t> ids;
    for (const Received& r : first) ids.push_back(IdOf(r.message_id, ""));
    std::vector<int64_t> want;
    for (int i = 0; i < kCount; ++i) {
      if (expected[i] == absl::StatusCode::kOk && messages[i].key == key) {
        want.push_back(1000 + i);
      }
    }
    EXPECT_EQ(ids, want) << "queue " << queue;
    std::cout << "[          ] queue " << queue << ": " << first.size()
              << " messages, " << duplicates << " duplicates\n";
  }

  // Send is a batch of one.
  OutboxEntry single = entries[0];
  single.id = 5000;
  EXPECT_OK(sink->Send(single));
  single.message.key = "nobody";
  EXPECT_THAT(sink->Send(single),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  // The broker's limit is known now: another message over it is refused
  // without closing the channel.
  OutboxEntry big = entries[200];
  big.id = 5001;
  EXPECT_THAT(sink->Send(big),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("configured max size ",
                                              kMaxMessageSize))));
  EXPECT_EQ(sink->stats().channels_closed, 1);
}

TEST(RabbitMqSendBatchTest, ReconnectsAfterTheBrokerRestarts) {
  ASSERT_OK_AND_ASSIGN(const std::string queue, CrashSafeQueue("reconnect"));
  ASSERT_OK_AND_ASSIGN(RabbitMqServer * broker, Broker());
  RabbitMqOutboxSinkOptions options;
  options.url = broker->url();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       RabbitMqOutboxSink::Connect(options));
  std::vector<OutboxEntry> entries = Entries(
      {Message("/" + queue, "", "before"), Message("/" + queue, "", "during"),
       Message("/" + queue, "", "after")},
      1);
  ASSERT_OK(sink->Send(entries[0]));

  ASSERT_OK(broker->Kill());
  EXPECT_THAT(sink->Send(entries[1]),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr(absl::StrCat("127.0.0.1:", broker->port()))));
  // Still down: a new connection is refused.
  EXPECT_THAT(sink->Send(entries[1]), StatusIs(absl::StatusCode::kUnavailable,
                                               HasSubstr("unreachable")));
  ASSERT_OK(broker->StartAgain());
  EXPECT_OK(sink->Send(entries[2]));
  EXPECT_EQ(sink->stats().connections, 2);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpClient> client,
                       AmqpClient::Connect(broker->port()));
  ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client->Drain(queue));
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].body, "before");
  EXPECT_EQ(received[1].body, "after");
}

// --- several batches in flight (BeginBatch / EndBatch) ----------------------

// The codes of `statuses`, for failure messages.
std::string Codes(const std::vector<absl::Status>& statuses) {
  std::string codes;
  for (const absl::Status& status : statuses) {
    absl::StrAppend(&codes, codes.empty() ? "" : " ",
                    absl::StatusCodeToString(status.code()));
  }
  return codes;
}

// The outbox ids of `received` (message_id without a prefix), in order.
std::vector<int64_t> Ids(const std::vector<Received>& received) {
  std::vector<int64_t> ids;
  for (const Received& r : received) ids.push_back(IdOf(r.message_id, ""));
  return ids;
}

TEST(RabbitMqBatchesInFlightTest, PipelinesBatches) {
  ASSERT_OK_AND_ASSIGN(RabbitMqServer * broker, Broker());
  RabbitMqOutboxSinkOptions options;
  options.url = broker->url();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       RabbitMqOutboxSink::Connect(options));
  const OutboxSink& as_sink = *sink;
  EXPECT_TRUE(as_sink.PipelinesBatches());
}

// Batches begun before the oldest is ended: each EndBatch returns the
// statuses of the oldest batch not ended (told apart by their sizes), and
// the queues get every message once, in enqueue order across the batches.
// The second and fourth batches go to an exchange of their own, which the
// sink checks (an RPC on a channel of its own) while confirms of the
// batches before are coming in.
TEST(RabbitMqBatchesInFlightTest, EndBatchReturnsTheOldestBatchInOrder) {
  ASSERT_OK_AND_ASSIGN(RabbitMqServer * broker, Broker());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpClient> client,
                       AmqpClient::Connect(broker->port()));
  const std::vector<std::string> exchanges = {UniqueName("ex"),
                                              UniqueName("ex2")};
  const std::string queue_a = UniqueName("a");
  const std::string queue_b = UniqueName("b");
  ASSERT_OK(client->DeclareQueue(queue_a));
  ASSERT_OK(client->DeclareQueue(queue_b));
  for (const std::string& exchange : exchanges) {
    ASSERT_OK(client->DeclareExchange(exchange));
    ASSERT_OK(client->Bind(queue_a, exchange, "a"));
    ASSERT_OK(client->Bind(queue_b, exchange, "b"));
  }

  // Four batches of different sizes, ids following on, keys a and b in
  // turn.
  const std::vector<int> sizes = {40, 70, 1, 25};
  std::vector<std::vector<OutboxEntry>> batches;
  int64_t next_id = 1;
  for (size_t b = 0; b < sizes.size(); ++b) {
    std::vector<OutboxMessage> messages;
    for (int i = 0; i < sizes[b]; ++i) {
      const int64_t id = next_id + i;
      messages.push_back(Message(exchanges[b % 2], id % 2 == 0 ? "a" : "b",
                                 absl::StrCat("m", id)));
    }
    batches.push_back(Entries(messages, next_id));
    next_id += sizes[b];
  }

  RabbitMqOutboxSinkOptions options;
  options.url = broker->url();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       RabbitMqOutboxSink::Connect(options));
  // Three in flight, then one ended and one more begun, then the rest
  // ended.
  sink->BeginBatch(batches[0]);
  sink->BeginBatch(batches[1]);
  sink->BeginBatch(batches[2]);
  std::vector<std::vector<absl::Status>> ended;
  ended.push_back(sink->EndBatch());
  sink->BeginBatch(batches[3]);
  for (int i = 0; i < 3; ++i) ended.push_back(sink->EndBatch());
  for (size_t b = 0; b < batches.size(); ++b) {
    ASSERT_EQ(ended[b].size(), batches[b].size()) << "EndBatch " << b;
    for (size_t i = 0; i < ended[b].size(); ++i) {
      EXPECT_OK(ended[b][i]) << "batch " << b << ", message " << i;
    }
  }
  EXPECT_EQ(sink->stats().confirmed, next_id - 1);
  EXPECT_EQ(sink->stats().failed, 0);
  EXPECT_EQ(sink->stats().channels_closed, 0);
  EXPECT_EQ(sink->stats().connections, 1);

  // Every message once, in enqueue order per routing key.
  for (const auto& [queue, parity] :
       {std::pair<std::string, int>{queue_a, 0}, {queue_b, 1}}) {
    ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client->Drain(queue));
    std::vector<int64_t> want;
    for (int64_t id = 1; id < next_id; ++id) {
      if (id % 2 == parity) want.push_back(id);
    }
    EXPECT_EQ(Ids(received), want) << "queue " << queue;
  }
}

// A sink connected to `broker` with `first`, then `second`, begun and
// neither ended (both must outlive the sink's use of them).
absl::StatusOr<std::unique_ptr<RabbitMqOutboxSink>>
ConnectWithTwoBatchesInFlight(const RabbitMqServer& broker,
                              absl::Span<const OutboxEntry> first,
                              absl::Span<const OutboxEntry> second) {
  RabbitMqOutboxSinkOptions options;
  options.url = broker.url();
  ES_ASSIGN_OR_RETURN(std::unique_ptr<RabbitMqOutboxSink> sink,
                      RabbitMqOutboxSink::Connect(options));
  sink->BeginBatch(first);
  sink->BeginBatch(second);
  return sink;
}

// A message over the broker's max_message_size in the first of two batches
// in flight: the broker closes the channel, losing the confirms of both
// batches. The first EndBatch sends what was unconfirmed in both again and
// settles both: only the culprit fails; the second EndBatch returns at once
// with every message confirmed.
TEST(RabbitMqBatchesInFlightTest, RefusedMessageInTheFirstBatchFailsAlone) {
  ASSERT_OK_AND_ASSIGN(RabbitMqServer * broker, Broker());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpClient> client,
                       AmqpClient::Connect(broker->port()));
  const std::string queue = UniqueName("q");
  ASSERT_OK(client->DeclareQueue(queue));
  std::vector<OutboxMessage> first;
  for (int i = 0; i < 6; ++i) {
    first.push_back(Message("/" + queue, "", absl::StrCat("first-", i)));
  }
  constexpr int kCulprit = 3;
  first[kCulprit].payload = std::string(kOversize, 'x');
  std::vector<OutboxMessage> second;
  for (int i = 0; i < 5; ++i) {
    second.push_back(Message("/" + queue, "", absl::StrCat("second-", i)));
  }
  const std::vector<OutboxEntry> batch1 = Entries(first, 1);
  const std::vector<OutboxEntry> batch2 = Entries(second, 7);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       ConnectWithTwoBatchesInFlight(*broker, batch1, batch2));
  const std::vector<absl::Status> statuses1 = sink->EndBatch();
  ASSERT_EQ(statuses1.size(), batch1.size()) << Codes(statuses1);
  for (int i = 0; i < 6; ++i) {
    if (i == kCulprit) {
      EXPECT_THAT(statuses1[i],
                  StatusIs(absl::StatusCode::kInvalidArgument,
                           HasSubstr(absl::StrCat("message size ", kOversize,
                                                  " is larger than configured "
                                                  "max size ",
                                                  kMaxMessageSize))));
    } else {
      EXPECT_OK(statuses1[i]) << "message " << i;
    }
  }
  // The second batch was settled by then: sent again and confirmed.
  EXPECT_EQ(sink->stats().channels_closed, 1);
  EXPECT_EQ(sink->stats().confirmed, 10);
  EXPECT_EQ(sink->stats().failed, 1);
  const std::vector<absl::Status> statuses2 = sink->EndBatch();
  ASSERT_EQ(statuses2.size(), batch2.size()) << Codes(statuses2);
  for (size_t i = 0; i < statuses2.size(); ++i) {
    EXPECT_OK(statuses2[i]) << "message " << i;
  }
  EXPECT_EQ(sink->stats().confirmed, 10);
  EXPECT_EQ(sink->stats().connections, 1);

  // Every other message, first copies in enqueue order (copies of those
  // whose confirm the close lost may follow).
  ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client->Drain(queue));
  int64_t duplicates = 0;
  const std::vector<Received> distinct = Deduplicate(received, &duplicates);
  EXPECT_EQ(Ids(distinct),
            (std::vector<int64_t>{1, 2, 3, 5, 6, 7, 8, 9, 10, 11}));
  std::cout << "[          ] " << distinct.size() << " messages, " << duplicates
            << " duplicates\n";
}

// A message no queue is bound for in the second batch, while the first is
// in flight: it alone fails, as returned.
TEST(RabbitMqBatchesInFlightTest, UnroutableMessageInTheSecondBatchFailsAlone) {
  ASSERT_OK_AND_ASSIGN(RabbitMqServer * broker, Broker());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpClient> client,
                       AmqpClient::Connect(broker->port()));
  const std::string exchange = UniqueName("ex");
  const std::string queue = UniqueName("q");
  ASSERT_OK(client->DeclareExchange(exchange));
  ASSERT_OK(client->DeclareQueue(queue));
  ASSERT_OK(client->Bind(queue, exchange, "bound"));
  std::vector<OutboxMessage> first, second;
  for (int i = 0; i < 8; ++i) {
    first.push_back(Message(exchange, "bound", absl::StrCat("first-", i)));
    second.push_back(Message(exchange, "bound", absl::StrCat("second-", i)));
  }
  constexpr int kUnroutable = 2;
  second[kUnroutable].key = "nobody";
  const std::vector<OutboxEntry> batch1 = Entries(first, 1);
  const std::vector<OutboxEntry> batch2 = Entries(second, 9);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       ConnectWithTwoBatchesInFlight(*broker, batch1, batch2));
  const std::vector<absl::Status> statuses1 = sink->EndBatch();
  ASSERT_EQ(statuses1.size(), batch1.size()) << Codes(statuses1);
  for (size_t i = 0; i < statuses1.size(); ++i) {
    EXPECT_OK(statuses1[i]) << "message " << i;
  }
  const std::vector<absl::Status> statuses2 = sink->EndBatch();
  ASSERT_EQ(statuses2.size(), batch2.size()) << Codes(statuses2);
  for (size_t i = 0; i < statuses2.size(); ++i) {
    if (i == kUnroutable) {
      EXPECT_THAT(statuses2[i], StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("NO_ROUTE")));
    } else {
      EXPECT_OK(statuses2[i]) << "message " << i;
    }
  }
  EXPECT_EQ(sink->stats().returned, 1);
  EXPECT_EQ(sink->stats().confirmed, 15);
  EXPECT_EQ(sink->stats().channels_closed, 0);

  ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client->Drain(queue));
  std::vector<int64_t> want;
  for (int64_t id = 1; id <= 16; ++id) {
    if (id != 9 + kUnroutable) want.push_back(id);
  }
  EXPECT_EQ(Ids(received), want);
}

// The broker killed with two batches in flight that it never read (it is
// stopped first, so that none is confirmed): the first EndBatch fails
// both; a batch begun before both are ended is not sent, not even once the
// broker is back; once every batch begun is ended, the next one connects
// again by itself and is delivered.
TEST(RabbitMqBatchesInFlightTest, BrokerKilledWithBatchesInFlightFailsThem) {
  ASSERT_OK_AND_ASSIGN(const std::string queue, CrashSafeQueue("in-flight"));
  ASSERT_OK_AND_ASSIGN(RabbitMqServer * broker, Broker());
  RabbitMqOutboxSinkOptions options;
  options.url = broker->url();
  options.confirm_timeout = absl::Seconds(3);
  options.connect_timeout = absl::Seconds(2);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       RabbitMqOutboxSink::Connect(options));
  const auto batch = [&](const std::string& name, int count, int64_t first) {
    std::vector<OutboxMessage> messages;
    for (int i = 0; i < count; ++i) {
      messages.push_back(Message("/" + queue, "", absl::StrCat(name, i)));
    }
    return Entries(messages, first);
  };
  const std::vector<OutboxEntry> before = batch("before-", 2, 1);
  const std::vector<OutboxEntry> batch1 = batch("first-", 3, 11);
  const std::vector<OutboxEntry> batch2 = batch("second-", 4, 21);
  const std::vector<OutboxEntry> held1 = batch("held-", 2, 31);
  const std::vector<OutboxEntry> held2 = batch("held-after-restart-", 2, 41);
  const std::vector<OutboxEntry> after = batch("after-", 3, 51);

  for (const absl::Status& status : sink->SendBatch(before)) {
    ASSERT_OK(status);
  }
  ASSERT_OK(PauseBroker(broker->dir()).status());
  sink->BeginBatch(batch1);
  sink->BeginBatch(batch2);
  ASSERT_OK(broker->Kill());

  const std::vector<absl::Status> statuses1 = sink->EndBatch();
  ASSERT_EQ(statuses1.size(), batch1.size()) << Codes(statuses1);
  for (const absl::Status& status : statuses1) {
    EXPECT_THAT(
        status,
        StatusIs(absl::StatusCode::kUnavailable,
                 HasSubstr(absl::StrCat("127.0.0.1:", broker->port()))));
    EXPECT_THAT(status.message(), Not(HasSubstr("not sent")));
  }
  // The second batch failed with the first.
  EXPECT_EQ(sink->stats().failed, 7);

  // Begun before the second batch is ended: not sent.
  sink->BeginBatch(held1);
  const std::vector<absl::Status> statuses2 = sink->EndBatch();
  ASSERT_EQ(statuses2.size(), batch2.size()) << Codes(statuses2);
  for (const absl::Status& status : statuses2) {
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(status.message(), Not(HasSubstr("not sent")));
  }
  // Not even once the broker is back, while held1 is not ended.
  ASSERT_OK(broker->StartAgain());
  sink->BeginBatch(held2);
  for (const auto* held : {&held1, &held2}) {
    const std::vector<absl::Status> statuses = sink->EndBatch();
    ASSERT_EQ(statuses.size(), held->size()) << Codes(statuses);
    for (const absl::Status& status : statuses) {
      EXPECT_THAT(status,
                  StatusIs(absl::StatusCode::kUnavailable,
                           HasSubstr("not sent, the connection was lost with "
                                     "an earlier batch in flight")));
    }
  }
  EXPECT_EQ(sink->stats().connections, 1);
  EXPECT_EQ(sink->stats().failed, 11);

  // Every batch begun is ended: the next one connects again.
  const std::vector<absl::Status> statuses = sink->SendBatch(after);
  ASSERT_EQ(statuses.size(), after.size()) << Codes(statuses);
  for (const absl::Status& status : statuses) EXPECT_OK(status);
  EXPECT_EQ(sink->stats().connections, 2);

  // Only what was confirmed arrived: the broker never read the batches in
  // flight.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpClient> client,
                       AmqpClient::Connect(broker->port()));
  ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client->Drain(queue));
  EXPECT_EQ(Ids(received), (std::vector<int64_t>{1, 2, 51, 52, 53}));
}

// The connection lost while the messages taken back from a closed channel
// are being sent again (here: cut by a proxy at the first confirm on the
// new channel): every message of both batches is settled, the ones not
// confirmed as kUnavailable, the culprit as kInvalidArgument, none
// confirmed that did not arrive; the next batch connects again.
TEST(RabbitMqBatchesInFlightTest, ConnectionLostWhileSendingAgainAfterAClose) {
  ASSERT_OK_AND_ASSIGN(RabbitMqServer * broker, Broker());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpClient> client,
                       AmqpClient::Connect(broker->port()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpProxy> proxy,
                       AmqpProxy::Start(broker->port()));
  const std::string queue = UniqueName("q");
  ASSERT_OK(client->DeclareQueue(queue));
  std::vector<OutboxMessage> first, second;
  for (int i = 0; i < 5; ++i) {
    first.push_back(Message("/" + queue, "", absl::StrCat("first-", i)));
    second.push_back(Message("/" + queue, "", absl::StrCat("second-", i)));
  }
  constexpr int kCulprit = 2;
  first[kCulprit].payload = std::string(kOversize, 'x');
  const std::vector<OutboxEntry> batch1 = Entries(first, 1);
  const std::vector<OutboxEntry> batch2 = Entries(second, 6);
  const std::vector<OutboxEntry> after =
      Entries({Message("/" + queue, "", "after")}, 11);

  RabbitMqOutboxSinkOptions options;
  options.url = absl::StrCat("amqp://guest:guest@127.0.0.1:", proxy->port());
  options.confirm_timeout = absl::Seconds(3);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       RabbitMqOutboxSink::Connect(options));
  proxy->CutAtTheFirstAckAfterAChannelClose();
  sink->BeginBatch(batch1);
  sink->BeginBatch(batch2);
  std::vector<absl::Status> statuses = sink->EndBatch();
  EXPECT_TRUE(proxy->cut());
  ASSERT_EQ(statuses.size(), batch1.size()) << Codes(statuses);
  const std::vector<absl::Status> statuses2 = sink->EndBatch();
  ASSERT_EQ(statuses2.size(), batch2.size()) << Codes(statuses2);
  EXPECT_THAT(statuses[kCulprit],
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("max size ", kMaxMessageSize))));
  statuses.insert(statuses.end(), statuses2.begin(), statuses2.end());
  std::set<int64_t> confirmed;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (i == kCulprit) continue;
    if (statuses[i].ok()) {
      confirmed.insert(static_cast<int64_t>(i) + 1);
    } else {
      EXPECT_THAT(statuses[i], StatusIs(absl::StatusCode::kUnavailable))
          << "message " << i;
    }
  }
  // The messages sent again were not confirmed.
  for (size_t i = kCulprit; i < statuses.size(); ++i) {
    EXPECT_FALSE(statuses[i].ok()) << "message " << i;
  }

  EXPECT_OK(sink->Send(after[0]));
  EXPECT_EQ(sink->stats().connections, 2);

  ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client->Drain(queue));
  int64_t duplicates = 0;
  std::set<int64_t> arrived;
  for (const Received& r : Deduplicate(received, &duplicates)) {
    arrived.insert(IdOf(r.message_id, ""));
  }
  EXPECT_FALSE(arrived.count(1 + kCulprit));
  EXPECT_TRUE(arrived.count(11));
  for (const int64_t id : confirmed) {
    EXPECT_TRUE(arrived.count(id)) << "confirmed, not arrived: " << id;
  }
}

// --- with the publisher, on every store backend -----------------------------

class RabbitMqPublishTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(broker_, Broker());
    ASSERT_OK_AND_ASSIGN(store_, GetParam().open(nullptr));
    ASSERT_OK_AND_ASSIGN(client_, AmqpClient::Connect(broker_->port()));
  }

  absl::StatusOr<std::unique_ptr<RabbitMqOutboxSink>> Sink(
      const std::string& prefix = "") {
    RabbitMqOutboxSinkOptions options;
    options.url = broker_->url();
    options.message_id_prefix = prefix;
    options.content_type = "application/x-protobuf";
    return RabbitMqOutboxSink::Connect(options);
  }

  // Every outbox entry, by id.
  std::map<int64_t, OutboxEntry> Outbox() {
    std::map<int64_t, OutboxEntry> all;
    OutboxListOptions list;
    list.limit = 100000;
    absl::StatusOr<std::vector<OutboxEntry>> entries =
        store_->outbox().List(list);
    EXPECT_OK(entries.status());
    if (!entries.ok()) return all;
    for (OutboxEntry& e : *entries) all[e.id] = std::move(e);
    return all;
  }

  // Runs `publisher` until nothing is pending; false after `timeout`.
  bool PublishAll(OutboxPublisher& publisher, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      absl::StatusOr<OutboxPublishResult> result = publisher.RunOnce();
      EXPECT_OK(result.status());
      absl::StatusOr<OutboxStats> stats = store_->outbox().Stats();
      EXPECT_OK(stats.status());
      if (!result.ok() || !stats.ok()) return false;
      if (stats->pending == 0) return true;
    }
    return false;
  }

  RabbitMqServer* broker_ = nullptr;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<AmqpClient> client_;
};

TEST_P(RabbitMqPublishTest, DeliversEveryMessageWithItsPropertiesAndHeaders) {
  const std::string exchange = UniqueName("ex");
  const std::string queue = UniqueName("q");
  const std::string direct = UniqueName("direct");
  ASSERT_OK(client_->DeclareExchange(exchange));
  ASSERT_OK(client_->DeclareQueue(queue));
  ASSERT_OK(client_->DeclareQueue(direct));
  for (const char* key : {"order-1", "order-2", "explicit"}) {
    ASSERT_OK(client_->Bind(queue, exchange, key));
  }

  // Messages by destination form: "exchange" (key = message key),
  // "exchange/routing-key", "/queue".
  constexpr int kCount = 40;
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < kCount; ++i) {
    OutboxMessage m;
    if (i % 8 == 3) {
      m = Message(exchange + "/explicit", "not-this", absl::StrCat("p", i));
    } else if (i % 8 == 5) {
      m = Message("/" + direct, "any", absl::StrCat("p", i));
    } else {
      m = Message(exchange, i % 2 == 0 ? "order-1" : "order-2",
                  absl::StrCat("p", i));
    }
    m.headers[kCorrelationIdHeader] = absl::StrCat("corr-", i);
    m.headers[kCausationIdHeader] = absl::StrCat("cause-", i);
    m.headers[kEventTypeHeader] = "eventstore.test.v1.ItemAdded";
    m.headers[kTraceparentHeader] =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    m.headers[kTracestateHeader] = "congo=t61rcWkgMzE";
    m.headers["tenant"] = absl::StrCat("tenant-", i % 3);
    messages.push_back(std::move(m));
  }
  ASSERT_OK(store_->outbox().Enqueue(messages));
  const std::map<int64_t, OutboxEntry> enqueued = Outbox();
  ASSERT_EQ(enqueued.size(), static_cast<size_t>(kCount));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       Sink("orders-db/"));
  OutboxPublisherOptions publisher_options;
  publisher_options.batch_size = 16;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<OutboxPublisher> publisher,
      OutboxPublisher::Create(*store_, *sink, publisher_options));
  ASSERT_TRUE(PublishAll(*publisher, absl::Seconds(60)));
  EXPECT_EQ(publisher->stats().published, kCount);
  EXPECT_EQ(publisher->stats().failed_sends, 0);
  EXPECT_EQ(sink->stats().confirmed, kCount);
  for (const auto& [id, entry] : Outbox()) {
    EXPECT_EQ(entry.status, OutboxStatus::kPublished) << id;
  }

  ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client_->Drain(queue));
  ASSERT_OK_AND_ASSIGN(std::vector<Received> via_default,
                       client_->Drain(direct));
  EXPECT_EQ(received.size(), static_cast<size_t>(kCount - kCount / 8));
  EXPECT_EQ(via_default.size(), static_cast<size_t>(kCount / 8));
  received.insert(received.end(), via_default.begin(), via_default.end());

  std::set<int64_t> seen;
  std::map<std::string, int64_t> last_id_per_key;
  for (const Received& r : received) {
    const int64_t id = IdOf(r.message_id, "orders-db/");
    ASSERT_TRUE(enqueued.count(id)) << "unknown message_id " << r.message_id;
    EXPECT_TRUE(seen.insert(id).second) << "twice: " << r.message_id;
    const OutboxMessage& sent = enqueued.at(id).message;
    EXPECT_EQ(r.body, sent.payload);
    EXPECT_EQ(r.delivery_mode, 2) << "not persistent";
    EXPECT_EQ(r.correlation_id, sent.headers.at(kCorrelationIdHeader));
    EXPECT_EQ(r.type, "eventstore.test.v1.ItemAdded");
    EXPECT_EQ(r.content_type, "application/x-protobuf");
    EXPECT_GT(r.timestamp, 0u);
    EXPECT_EQ(r.headers, sent.headers);
    ASSERT_OK_AND_ASSIGN(RabbitMqRoute route, RabbitMqRouteOf(sent));
    EXPECT_EQ(r.exchange, route.exchange);
    EXPECT_EQ(r.routing_key, route.routing_key);
    // Enqueue order per routing key.
    EXPECT_GT(id, last_id_per_key[r.routing_key]) << r.routing_key;
    last_id_per_key[r.routing_key] = id;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kCount));
}

TEST_P(RabbitMqPublishTest, UnroutableMessageIsAFailedSendAndStaysPending) {
  const std::string exchange = UniqueName("ex");
  const std::string queue = UniqueName("q");
  ASSERT_OK(client_->DeclareExchange(exchange));
  ASSERT_OK(client_->DeclareQueue(queue));
  ASSERT_OK(client_->Bind(queue, exchange, "bound"));
  ASSERT_OK(store_->outbox().Enqueue({Message(exchange, "bound", "first"),
                                      Message(exchange, "nobody", "lost"),
                                      Message(exchange, "bound", "third")}));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink, Sink());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<OutboxPublisher> publisher,
                       OutboxPublisher::Create(*store_, *sink));
  ASSERT_OK_AND_ASSIGN(OutboxPublishResult result, publisher->RunOnce());
  EXPECT_EQ(result.published, 2);
  EXPECT_EQ(result.failed_sends, 1);
  EXPECT_EQ(result.given_up, 0);
  EXPECT_EQ(sink->stats().returned, 1);

  for (const auto& [id, entry] : Outbox()) {
    if (entry.message.payload == "lost") {
      EXPECT_EQ(entry.status, OutboxStatus::kPending);
      EXPECT_EQ(entry.attempts, 1);
      EXPECT_THAT(entry.last_error, HasSubstr("NO_ROUTE"));
      EXPECT_THAT(entry.last_error, HasSubstr("unroutable"));
    } else {
      EXPECT_EQ(entry.status, OutboxStatus::kPublished) << entry.last_error;
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client_->Drain(queue));
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].body, "first");
  EXPECT_EQ(received[1].body, "third");
}

TEST_P(RabbitMqPublishTest, MessageOverTheBrokersLimitIsParkedAsFailed) {
  const std::string queue = UniqueName("q");
  ASSERT_OK(client_->DeclareQueue(queue));
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < 6; ++i) {
    messages.push_back(Message("/" + queue, "", absl::StrCat("small-", i)));
  }
  messages[3].payload = std::string(kOversize, 'x');
  ASSERT_OK(store_->outbox().Enqueue(messages));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink, Sink());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<OutboxPublisher> publisher,
                       OutboxPublisher::Create(*store_, *sink));
  ASSERT_TRUE(PublishAll(*publisher, absl::Seconds(60)));
  EXPECT_EQ(publisher->stats().given_up, 1);
  EXPECT_EQ(publisher->stats().published, 5);

  for (const auto& [id, entry] : Outbox()) {
    if (entry.message.payload.size() == kOversize) {
      EXPECT_EQ(entry.status, OutboxStatus::kFailed);
      EXPECT_THAT(entry.last_error,
                  HasSubstr(absl::StrCat("message size ", kOversize,
                                         " is larger than configured max "
                                         "size ",
                                         kMaxMessageSize)));
    } else {
      EXPECT_EQ(entry.status, OutboxStatus::kPublished) << entry.last_error;
    }
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client_->Drain(queue));
  int64_t duplicates = 0;
  std::vector<Received> first = Deduplicate(received, &duplicates);
  ASSERT_EQ(first.size(), 5u);
  for (const Received& r : first) EXPECT_THAT(r.body, HasSubstr("small-"));
}

// kill -9 of the broker while the publisher is sending batches, then a
// restart: every message arrives (durable queue, persistent messages,
// nothing marked published that the broker did not confirm), duplicates
// are dropped by message_id at the consumer, and counted.
TEST_P(RabbitMqPublishTest, BrokerKilledMidBatchLosesNothing) {
  ASSERT_OK_AND_ASSIGN(const std::string queue,
                       CrashSafeQueue("killed." + GetParam().name));
  ASSERT_OK_AND_ASSIGN(broker_, Broker());
  client_.reset();  // it would die with the broker

  constexpr int kCount = 4000;
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < kCount; ++i) {
    OutboxMessage m = Message("/" + queue, "", std::string(200, 'a' + i % 26));
    m.headers[kCorrelationIdHeader] = absl::StrCat("c", i);
    messages.push_back(std::move(m));
  }
  ASSERT_OK(store_->outbox().Enqueue(messages));

  RabbitMqOutboxSinkOptions sink_options;
  sink_options.url = broker_->url();
  sink_options.confirm_timeout = absl::Seconds(3);
  sink_options.connect_timeout = absl::Seconds(2);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqOutboxSink> sink,
                       RabbitMqOutboxSink::Connect(sink_options));
  OutboxPublisherOptions options;
  options.batch_size = 250;
  options.initial_backoff = absl::Milliseconds(50);
  options.max_backoff = absl::Milliseconds(500);
  options.poll_interval = absl::Milliseconds(50);
  // An outage costs every claimed message an attempt per retry.
  options.max_attempts = 1000;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<OutboxPublisher> publisher,
                       OutboxPublisher::Create(*store_, *sink, options));
  ASSERT_OK(publisher->Start());

  // Kill it once a few batches went through, while the next are in flight.
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (publisher->stats().published < kCount / 8 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_OK(broker_->Kill());
  const int64_t published_before_kill = publisher->stats().published;
  ASSERT_GE(published_before_kill, kCount / 8);
  ASSERT_LT(published_before_kill, kCount)
      << "everything was published before the kill: raise kCount";
  // The publisher notices.
  while (publisher->stats().failed_sends == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GT(publisher->stats().failed_sends, 0);
  const absl::Time restart = absl::Now();
  ASSERT_OK(broker_->StartAgain());
  const absl::Duration restart_took = absl::Now() - restart;

  // It carries on by itself.
  bool done = false;
  const absl::Time done_deadline = absl::Now() + absl::Seconds(120);
  while (!done && absl::Now() < done_deadline) {
    absl::StatusOr<OutboxStats> stats = store_->outbox().Stats();
    ASSERT_OK(stats.status());
    done = stats->pending == 0;
    if (!done) absl::SleepFor(absl::Milliseconds(20));
  }
  publisher->Stop();
  if (!done) {
    absl::StatusOr<OutboxStats> stats = store_->outbox().Stats();
    const RabbitMqOutboxSinkStats sent = sink->stats();
    FAIL() << "still pending after the restart: "
           << (stats.ok() ? stats->pending : -1)
           << " pending; publisher: " << publisher->stats().published
           << " published, " << publisher->stats().failed_sends
           << " failed sends, last error " << publisher->stats().last_error
           << "; sink: " << sent.connections << " connections, "
           << sent.confirmed << " confirmed, " << sent.failed
           << " failed; the restart took " << restart_took;
  }
  const absl::Duration catch_up = absl::Now() - restart - restart_took;
  EXPECT_EQ(publisher->stats().given_up, 0);
  EXPECT_GE(sink->stats().connections, 2);

  ASSERT_OK_AND_ASSIGN(client_, AmqpClient::Connect(broker_->port()));
  ASSERT_OK_AND_ASSIGN(std::vector<Received> received, client_->Drain(queue));
  int64_t duplicates = 0;
  std::vector<Received> first = Deduplicate(received, &duplicates);
  const std::map<int64_t, OutboxEntry> outbox = Outbox();
  int64_t lost = 0;
  std::set<int64_t> ids;
  for (const Received& r : first) ids.insert(IdOf(r.message_id, ""));
  for (const auto& [id, entry] : outbox) {
    if (!ids.count(id)) ++lost;
  }
  std::cout << "[          ] " << GetParam().name << ": enqueued " << kCount
            << ", published before the kill " << published_before_kill
            << ", received " << received.size() << ", distinct " << first.size()
            << ", duplicates " << duplicates << ", lost " << lost
            << ", failed sends " << publisher->stats().failed_sends
            << "; restart " << restart_took << ", then done in " << catch_up
            << "\n";
  RecordProperty("duplicates", static_cast<int>(duplicates));
  EXPECT_EQ(first.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(received.size(), first.size() + static_cast<size_t>(duplicates));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, RabbitMqPublishTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

// A process killed with its server up (a crash, ctest's timeout) leaves
// neither the broker and epmd nor the server's folder behind: the harness's
// reaper kills what its pid file names.
TEST(RabbitMqServerHarnessTest, KilledOwnerLeavesNoServerBehind) {
  test::ExpectKilledOwnerLeavesNothing("rabbitmq", absl::Seconds(180));
}

}  // namespace
}  // namespace eventstore
