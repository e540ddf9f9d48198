// NatsOutboxSink alone against a real `nats-server -js` that the test
// starts itself (tests/support/nats_server.h): per-message statuses of a
// batch, in order, and the order JetStream stores them in; destinations and
// headers NATS cannot carry; sends during a broker outage and after its
// restart; an unreachable broker, wrong credentials and a server without
// JetStream, with the URL's password never shown.
//
// The whole binary (this file, nats_publisher_test.cc and
// nats_publisher_process_test.cc) is one ctest test, so that one shared
// server serves it; the tests that kill or restart a broker start their
// own.

#include "projections/sinks/nats/nats_outbox_sink.h"

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/sinks/nats/nats_test_helpers.h"
#include "tests/support/nats_server.h"
#include "tests/support/server_process.h"
#include "tests/support/server_reaper_check.h"
#include "tests/support/status_matchers.h"

namespace eventstore {
namespace {

using ::eventstore::test::Entry;
using ::eventstore::test::EntryId;
using ::eventstore::test::FreshSinkOptions;
using ::eventstore::test::kNatsDefaultMaxPayload;
using ::eventstore::test::Message;
using ::eventstore::test::NatsServer;
using ::eventstore::test::NatsServerOptions;
using ::eventstore::test::PickFreeLoopbackPort;
using ::eventstore::test::SharedNatsServer;
using ::eventstore::test::StatusIs;
using ::eventstore::test::StoredMessage;
using ::eventstore::test::StreamReader;
using ::eventstore::test::WaitUntil;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class NatsOutboxSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<NatsServer*> server = SharedNatsServer();
    ASSERT_OK(server);
    server_ = *server;
  }

  NatsServer* server_ = nullptr;
};

TEST_F(NatsOutboxSinkTest, SendBatchReturnsStatusesInOrderAndKeepsOrder) {
  NatsOutboxSinkOptions options = FreshSinkOptions(server_->url());
  // "refunds" is outside the stream: no stream captures its subject.
  options.stream.subjects = {options.subject_prefix + "orders",
                             options.subject_prefix + "billing"};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsOutboxSink> sink,
                       NatsOutboxSink::Connect(options));

  std::vector<OutboxEntry> batch;
  int64_t id = 100;
  auto add = [&](OutboxMessage message) {
    batch.push_back(Entry(++id, std::move(message)));
  };
  add(Message("orders", "o-1"));                                         // 0
  add(Message("bad destination", "x"));                                  // 1
  add(Message("billing", "b-1"));                                        // 2
  add(Message("", "x"));                                                 // 3
  add(Message("orders.*", "x"));                                         // 4
  add(Message("orders..eu", "x"));                                       // 5
  add(Message("orders", std::string(kNatsDefaultMaxPayload + 1, 'x')));  // 6
  add(Message("refunds", "r-1"));                                        // 7
  OutboxMessage bad_header = Message("orders", "x");
  bad_header.headers["bad name"] = "v";
  add(bad_header);  // 8
  OutboxMessage reserved = Message("orders", "x");
  reserved.headers["Nats-Expected-Stream"] = "OTHER";
  add(reserved);  // 9
  OutboxMessage injected = Message("orders", "x");
  injected.headers["tenant"] = "a\r\nNats-Msg-Id: 1";
  add(injected);  // 10
  for (int i = 2; i <= 40; ++i) {
    add(Message(i % 2 == 0 ? "orders" : "billing", absl::StrCat("v-", i)));
  }
  batch.push_back(batch[0]);  // the same entry again: sent once

  std::vector<absl::Status> results = sink->SendBatch(batch);
  ASSERT_EQ(results.size(), batch.size());
  EXPECT_OK(results[0]);
  EXPECT_THAT(results[1], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("'bad destination'")));
  EXPECT_OK(results[2]);
  EXPECT_THAT(results[3],
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(results[4], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("'orders.*'")));
  EXPECT_THAT(results[5], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("'orders..eu'")));
  EXPECT_THAT(results[6], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("max_payload")));
  EXPECT_THAT(results[7], StatusIs(absl::StatusCode::kFailedPrecondition,
                                   HasSubstr("refunds")));
  EXPECT_THAT(results[8], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("'bad name'")));
  EXPECT_THAT(results[9], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("Nats-Expected-Stream")));
  EXPECT_THAT(results[10], StatusIs(absl::StatusCode::kInvalidArgument,
                                    HasSubstr("'tenant'")));
  for (size_t i = 11; i < results.size(); ++i) EXPECT_OK(results[i]) << i;

  // The valid messages, stored once each, in batch order.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(server_->url()));
  ASSERT_OK_AND_ASSIGN(std::vector<StoredMessage> stored,
                       reader->ReadAll(options.stream.name));
  std::vector<int64_t> expected_ids = {batch[0].id, batch[2].id};
  for (size_t i = 11; i + 1 < batch.size(); ++i) {
    expected_ids.push_back(batch[i].id);
  }
  std::vector<int64_t> stored_ids;
  for (const StoredMessage& message : stored) {
    stored_ids.push_back(EntryId(message, options.msg_id_prefix));
  }
  EXPECT_EQ(stored_ids, expected_ids);
  EXPECT_EQ(sink->stats().acknowledged,
            static_cast<int64_t>(expected_ids.size()));
}

TEST_F(NatsOutboxSinkTest, SendRejectsAnInvalidDestinationNamingIt) {
  NatsOutboxSinkOptions options = FreshSinkOptions(server_->url());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsOutboxSink> sink,
                       NatsOutboxSink::Connect(options));
  EXPECT_THAT(
      sink->Send(Entry(1, Message("two words", "x"))),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'two words'")));
  EXPECT_THAT(
      sink->Send(Entry(2, Message("orders.>", "x"))),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wildcard")));
  EXPECT_OK(sink->Send(Entry(3, Message("orders", "x"))));
}

TEST_F(NatsOutboxSinkTest, SendsDuringAnOutageAreUnavailableThenResume) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsServer> broker, NatsServer::Start());
  NatsOutboxSinkOptions options = FreshSinkOptions(broker->url());
  options.ack_timeout = absl::Seconds(1);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsOutboxSink> sink,
                       NatsOutboxSink::Connect(options));
  ASSERT_OK(sink->Send(Entry(1, Message("orders", "before"))));

  ASSERT_OK(broker->Kill());
  EXPECT_THAT(
      sink->Send(Entry(2, Message("orders", "during"))),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr(broker->url())));
  std::vector<absl::Status> results = sink->SendBatch(
      {Entry(3, Message("orders", "a")), Entry(4, Message("billing", "b"))});
  ASSERT_EQ(results.size(), 2u);
  for (const absl::Status& result : results) {
    EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnavailable));
  }

  ASSERT_OK(broker->StartAgain());
  // The connection comes back by itself.
  ASSERT_TRUE(WaitUntil(
      [&] { return sink->Send(Entry(2, Message("orders", "during"))).ok(); },
      absl::Seconds(30)));
  results = sink->SendBatch(
      {Entry(3, Message("orders", "a")), Entry(4, Message("billing", "b"))});
  for (const absl::Status& result : results) EXPECT_OK(result);
  EXPECT_GE(sink->stats().reconnects, 1);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(broker->url()));
  ASSERT_OK_AND_ASSIGN(std::vector<StoredMessage> stored,
                       reader->ReadAll(options.stream.name));
  std::set<int64_t> ids;
  for (const StoredMessage& message : stored) {
    ids.insert(EntryId(message, options.msg_id_prefix));
  }
  // Anything stored twice would show as more messages than ids.
  EXPECT_EQ(stored.size(), ids.size());
  EXPECT_EQ(ids, (std::set<int64_t>{1, 2, 3, 4}));
}

TEST_F(NatsOutboxSinkTest, UnreachableBrokerIsUnavailableWithPasswordMasked) {
  ASSERT_OK_AND_ASSIGN(int port, PickFreeLoopbackPort());
  const std::string password = "s3cret-Passw0rd";
  NatsOutboxSinkOptions options;
  options.url = absl::StrCat("nats://outbox:", password, "@127.0.0.1:", port);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<NatsOutboxSink>> sink =
      NatsOutboxSink::Connect(options);
  EXPECT_THAT(sink, StatusIs(absl::StatusCode::kUnavailable,
                             AllOf(HasSubstr(absl::StrCat(
                                       "nats://outbox:***@127.0.0.1:", port)),
                                   Not(HasSubstr(password)))));
  // One attempt, not a retry loop.
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));

  // A token in place of user:password.
  options.url = absl::StrCat("nats://", password, "@127.0.0.1:", port);
  EXPECT_THAT(
      NatsOutboxSink::Connect(options),
      StatusIs(absl::StatusCode::kUnavailable,
               AllOf(HasSubstr(absl::StrCat("nats://***@127.0.0.1:", port)),
                     Not(HasSubstr(password)))));
}

TEST_F(NatsOutboxSinkTest, CredentialsInTheUrlLogInAndAWrongOneIsMasked) {
  NatsServerOptions server_options;
  server_options.user = "outbox";
  server_options.password = "right-Passw0rd";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsServer> broker,
                       NatsServer::Start(server_options));
  NatsOutboxSinkOptions options =
      FreshSinkOptions(broker->url_with_credentials());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsOutboxSink> sink,
                       NatsOutboxSink::Connect(options));
  EXPECT_OK(sink->Send(Entry(1, Message("orders", "x"))));
  EXPECT_THAT(sink->masked_url(),
              AllOf(HasSubstr("nats://outbox:***@127.0.0.1:"),
                    Not(HasSubstr("right-Passw0rd"))));

  options.url =
      absl::StrCat("nats://outbox:wrong-Passw0rd@127.0.0.1:", broker->port());
  absl::StatusOr<std::unique_ptr<NatsOutboxSink>> refused =
      NatsOutboxSink::Connect(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              AllOf(HasSubstr("nats://outbox:***@127.0.0.1:"),
                    Not(HasSubstr("wrong-Passw0rd"))));
}

TEST_F(NatsOutboxSinkTest, ServerWithoutJetStreamIsFailedPrecondition) {
  NatsServerOptions server_options;
  server_options.jetstream = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsServer> broker,
                       NatsServer::Start(server_options));
  EXPECT_THAT(NatsOutboxSink::Connect(FreshSinkOptions(broker->url())),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("JetStream is not enabled"),
                             HasSubstr(broker->url()))));
}

TEST_F(NatsOutboxSinkTest, ConnectRejectsBadOptionsNamingThem) {
  NatsOutboxSinkOptions options = FreshSinkOptions(server_->url());
  options.subject_prefix = "two words.";
  EXPECT_THAT(NatsOutboxSink::Connect(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("subject_prefix")));
  options = FreshSinkOptions(server_->url());
  options.subject_prefix = "outbox";  // no '.': no default stream subjects
  EXPECT_THAT(NatsOutboxSink::Connect(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("stream.subjects")));
  options = FreshSinkOptions(server_->url());
  options.stream.name = "has.dot";
  EXPECT_THAT(
      NatsOutboxSink::Connect(options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream.name")));
  options = FreshSinkOptions("");
  EXPECT_THAT(NatsOutboxSink::Connect(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("url")));
}

TEST(MaskNatsUrlTest, MasksPasswordsAndTokens) {
  EXPECT_EQ(MaskNatsUrl("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
  EXPECT_EQ(MaskNatsUrl("nats://app:pw@host:4222"), "nats://app:***@host:4222");
  EXPECT_EQ(MaskNatsUrl("nats://t0ken@host:4222"), "nats://***@host:4222");
  EXPECT_EQ(MaskNatsUrl("nats://app:p@ss@host"), "nats://app:***@host");
  EXPECT_EQ(MaskNatsUrl("app:pw@host:4222"), "app:***@host:4222");
  EXPECT_EQ(MaskNatsUrl("nats://a:1@h1:4222,nats://b:2@h2:4222"),
            "nats://a:***@h1:4222,nats://b:***@h2:4222");
  EXPECT_EQ(MaskNatsUrl("tls://app:pw@host:4222/x@y"),
            "tls://app:***@host:4222/x@y");
}

// A process killed with its server up (a crash, ctest's timeout) leaves
// neither nats-server nor the server's folder behind: the harness's reaper
// kills what its pid file names.
TEST(NatsServerHarnessTest, KilledOwnerLeavesNoServerBehind) {
  test::ExpectKilledOwnerLeavesNothing("nats", absl::Seconds(60));
}

}  // namespace
}  // namespace eventstore
