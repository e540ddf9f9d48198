// `eventstore outbox publish --to amqp://...` (tools/outbox_publish_command.cc)
// run as a process (EVENTSTORE_CLI, tests/tools/cli_process.h) against a real
// rabbitmq-server (tests/support/rabbitmq_server.h) on which the command logs
// in as a user of its own, on a SQLite file and on a PostgreSQL schema (the
// stores two processes can share): --once, a long-running publisher stopped
// by SIGTERM, a broker unreachable at start, a publisher killed with -9 in
// the middle of a batch and another one finishing it, and options that are
// not for amqp://.
//
// The consumer side is a plain librabbitmq client (AmqpClient,
// rabbitmq_test_helpers.h) that takes what the queues hold and drops
// duplicates by message_id, as the sink's users are told to. Every test
// checks that the broker's password never reaches stdout or stderr. The
// store, messages and progress lines are as for nats://
// (publish_cli_support.h).

#include <signal.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/tracing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/sinks/publish_cli_support.h"
#include "tests/sinks/rabbitmq/rabbitmq_test_helpers.h"
#include "tests/support/rabbitmq_server.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"
#include "tests/tools/cli_process.h"

namespace eventstore {
namespace {

using ::eventstore::test::AmqpClient;
using ::eventstore::test::BackendParamName;
using ::eventstore::test::CliProcess;
using ::eventstore::test::CliResult;
using ::eventstore::test::Counter;
using ::eventstore::test::LastProgressLine;
using ::eventstore::test::ProcessBackends;
using ::eventstore::test::PublishCliTest;
using ::eventstore::test::RabbitMqServer;
using ::eventstore::test::RabbitMqServerOptions;
using ::eventstore::test::Received;
using ::eventstore::test::RunCli;
using ::eventstore::test::TempDir;
using ::eventstore::test::WaitUntil;
using ::testing::HasSubstr;
using ::testing::Not;

// The command's login; the password must never be printed. (The consumer
// logs in as guest, which RabbitMQ lets in from loopback only.)
constexpr char kUser[] = "publisher";
constexpr char kPassword[] = "r4bbit-s3cret-pw";
// Generous: the broker takes seconds to restart on a machine shared with
// other builds and tests.
constexpr absl::Duration kLong = absl::Seconds(180);

// --- the broker -------------------------------------------------------------

// The users, loaded at every boot (load_definitions): guest for the
// consumer and the harness's readiness check, and the command's own.
std::string Definitions() {
  const std::string all = R"("configure": ".*", "write": ".*", "read": ".*")";
  return absl::StrCat(
      R"({"users": [{"name": "guest", "password": "guest", )",
      R"("tags": "administrator"}, {"name": ")", kUser, R"(", "password": ")",
      kPassword, R"(", "tags": ""}], "vhosts": [{"name": "/"}], )",
      R"("permissions": [{"user": "guest", "vhost": "/", )", all, "}, ",
      R"({"user": ")", kUser, R"(", "vhost": "/", )", all, "}]}\n");
}

// The process's broker, started on first use and killed at exit; started
// again should a test have left it stopped.
absl::StatusOr<RabbitMqServer*> Broker() {
  static absl::StatusOr<std::unique_ptr<RabbitMqServer>>* broker = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    broker = new absl::StatusOr<std::unique_ptr<RabbitMqServer>>(
        [&]() -> absl::StatusOr<std::unique_ptr<RabbitMqServer>> {
          // Read at every boot: it lives as long as the process.
          static absl::StatusOr<std::unique_ptr<TempDir>> dir =
              TempDir::Create();
          if (!dir.ok()) return dir.status();
          const std::string path = (*dir)->File("definitions.json");
          std::ofstream(path) << Definitions();
          RabbitMqServerOptions options;
          options.extra_config = {"load_definitions = " + path};
          return RabbitMqServer::Start(options);
        }());
    std::atexit([] { *broker = absl::CancelledError("stopped at exit"); });
  });
  if (!broker->ok()) return broker->status();
  RabbitMqServer* server = broker->value().get();
  if (!server->running()) {
    absl::Status started = server->StartAgain();
    if (!started.ok()) return started;
  }
  return server;
}

// The command's --to: "amqp://publisher:PASSWORD@127.0.0.1:PORT/%2F".
std::string BrokerUrl(const RabbitMqServer& server) {
  return absl::StrCat("amqp://", kUser, ":", kPassword,
                      "@127.0.0.1:", server.port(), "/%2F");
}

// How the command names the broker: the password masked.
std::string MaskedUrl(const RabbitMqServer& server) {
  return absl::StrCat("amqp://", kUser, ":***@127.0.0.1:", server.port());
}

// --- the tests ---------------------------------------------------------------

// The store is a database that the test and the command's processes open
// together: a SQLite file or a PostgreSQL schema.
class RabbitMqPublishCliTest : public PublishCliTest {
 protected:
  RabbitMqPublishCliTest() : PublishCliTest(kPassword) {}

  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(broker_, Broker());
    ASSERT_NO_FATAL_FAILURE(PublishCliTest::SetUp());
    // Names no other test of the process uses (the broker is shared): a
    // queue taking "/queue" messages, and an exchange bound to it.
    static int counter = 0;
    const std::string name = absl::StrCat("cli", ++counter);
    queue_ = name + ".q";
    exchange_ = name + ".ex";
    id_prefix_ = name + "/";
    ASSERT_OK_AND_ASSIGN(consumer_, AmqpClient::Connect(broker_->port()));
    ASSERT_OK(consumer_->DeclareQueue(queue_));
    ASSERT_OK(consumer_->DeclareExchange(exchange_));
    for (const char* key : {"order-a", "order-b"}) {
      ASSERT_OK(consumer_->Bind(queue_, exchange_, key));
    }
  }

  // `eventstore outbox publish URL --to amqp://... --message-id-prefix P`,
  // then `more`.
  std::vector<std::string> PublishArgs(const std::vector<std::string>& more) {
    std::vector<std::string> args = {
        "outbox",  "publish",           url_,
        "--to",    BrokerUrl(*broker_), "--message-id-prefix",
        id_prefix_};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  // Messages() go to the queue directly ("/queue") and through the
  // exchange (routing key = the message's key).
  void Route(int i, OutboxMessage* message) const override {
    message->destination = i % 3 == 0 ? "/" + queue_ : exchange_;
    message->key = i % 2 == 0 ? "order-a" : "order-b";
  }

  // Messages ready in the queue; 0 when it cannot be asked.
  uint32_t Depth() {
    absl::StatusOr<uint32_t> depth = consumer_->Depth(queue_);
    return depth.ok() ? *depth : 0;
  }

  // Takes what the queue holds and checks it is every enqueued message,
  // after dropping duplicates by message_id: the right body, properties
  // and headers; with `in_order`, the first copies in enqueue order per
  // routing key (one publisher: order across publishers is not kept).
  // Returns the duplicates dropped.
  int64_t ExpectQueueHoldsTheOutbox(bool in_order = true) {
    absl::StatusOr<std::vector<Received>> received = consumer_->Drain(queue_);
    EXPECT_OK(received.status());
    if (!received.ok()) return -1;
    const std::map<int64_t, OutboxEntry> outbox = Outbox();
    std::set<int64_t> seen;
    int64_t duplicates = 0;
    std::map<std::string, int64_t> last_per_key;
    for (const Received& r : *received) {
      int64_t id = -1;
      EXPECT_TRUE(absl::StartsWith(r.message_id, id_prefix_) &&
                  absl::SimpleAtoi(r.message_id.substr(id_prefix_.size()), &id))
          << r.message_id;
      auto it = outbox.find(id);
      if (it == outbox.end()) {
        ADD_FAILURE() << "unknown message_id " << r.message_id;
        continue;
      }
      if (!seen.insert(id).second) {
        ++duplicates;
        continue;
      }
      const OutboxMessage& sent = it->second.message;
      EXPECT_EQ(r.body, sent.payload);
      EXPECT_EQ(r.headers, sent.headers);
      EXPECT_EQ(r.correlation_id, sent.headers.at(kCorrelationIdHeader));
      EXPECT_EQ(r.type, sent.headers.at(kEventTypeHeader));
      EXPECT_EQ(r.delivery_mode, 2) << "not persistent";
      EXPECT_EQ(r.exchange, sent.destination == exchange_ ? exchange_ : "");
      EXPECT_EQ(r.routing_key,
                sent.destination == exchange_ ? sent.key : queue_);
      if (in_order) {
        EXPECT_GT(id, last_per_key[r.routing_key]) << "out of order";
      }
      last_per_key[r.routing_key] = id;
    }
    EXPECT_EQ(seen.size(), outbox.size()) << "a message was lost";
    return duplicates;
  }

  RabbitMqServer* broker_ = nullptr;
  std::unique_ptr<AmqpClient> consumer_;
  std::string queue_;
  std::string exchange_;
  std::string id_prefix_;
};

// --once publishes every pending message, prints one progress line, exits 0.
TEST_P(RabbitMqPublishCliTest, OncePublishesEveryPendingMessage) {
  constexpr int kCount = 250;
  ASSERT_OK(store_->outbox().Enqueue(Messages(kCount, "once")));

  const CliResult r = RunCli(
      PublishArgs({"--once", "--batch-size", "64", "--worker", "once-cli"}), {},
      kLong);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ExpectNoPassword(r.out, r.err);
  const std::string progress = LastProgressLine(r.err);
  EXPECT_THAT(progress, HasSubstr(absl::StrCat("published ", kCount, " ")))
      << r.err;
  EXPECT_THAT(progress, HasSubstr("failed sends 0, given up 0, pending 0"));
  EXPECT_EQ(Counter(progress, "returned"), 0) << progress;

  EXPECT_EQ(Stats().pending, 0);
  EXPECT_EQ(Stats().published, kCount);
  EXPECT_EQ(ExpectQueueHoldsTheOutbox(), 0);

  // Again: nothing is pending, nothing is sent.
  const CliResult again = RunCli(PublishArgs({"--once"}), {}, kLong);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(LastProgressLine(again.err), HasSubstr("published 0 "));
  EXPECT_EQ(Depth(), 0u);
}

// The long-running form publishes what arrives while it runs (enqueued
// alone or by an append), prints progress, and stops on SIGTERM with a
// final progress line and exit code 0.
TEST_P(RabbitMqPublishCliTest, RunsUntilSigtermPublishingWhatArrives) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<CliProcess> cli,
                       CliProcess::Start(PublishArgs({"--stats-every", "1"})));
  ASSERT_TRUE(cli->WaitForErrors(
      absl::StrCat("publishing to ", MaskedUrl(*broker_), "/%2F as "), kLong))
      << cli->Errors();

  uint32_t expected = 0;
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(const uint64_t enqueued,
                         EnqueueAloneAndWithAnAppend(round));
    expected += static_cast<uint32_t>(enqueued);
    ASSERT_TRUE(WaitUntil([&] { return Depth() >= expected; }, kLong))
        << "round " << round << ": " << Depth() << " of " << expected
        << " in the queue; stderr:\n"
        << cli->Errors();
  }
  ASSERT_TRUE(WaitUntil([&] { return Stats().pending == 0; }, kLong));
  // At least one periodic line came before the signal.
  EXPECT_TRUE(cli->WaitForErrors(": published ", kLong)) << cli->Errors();

  absl::Duration stop_took;
  const CliResult r = StopWithSigterm(*cli, absl::Seconds(10), &stop_took);
  // The last line on stderr is the final progress line.
  std::vector<std::string> lines =
      absl::StrSplit(r.err, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(),
              HasSubstr(absl::StrCat(": published ", expected, " (")));
  EXPECT_THAT(lines.back(), HasSubstr("pending 0, returned 0, reconnects 0"));
  EXPECT_EQ(Stats().published, static_cast<int64_t>(expected));
  EXPECT_EQ(ExpectQueueHoldsTheOutbox(), 0);
  std::cout << "[          ] " << GetParam() << ": " << expected
            << " messages, SIGTERM to exit " << stop_took << "\n";
}

// A broker that does not answer at start: a line per attempt naming its
// URL with the password masked, waits doubling; once the broker is up the
// command connects and publishes.
TEST_P(RabbitMqPublishCliTest,
       RetriesAnUnreachableBrokerWithThePasswordMasked) {
  // Stopped cleanly: the queue declared in SetUp stays.
  consumer_.reset();
  ASSERT_OK(broker_->Stop());
  constexpr int kCount = 40;
  ASSERT_OK(store_->outbox().Enqueue(Messages(kCount, "late")));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<CliProcess> cli,
                       CliProcess::Start(PublishArgs({"--stats-every", "1"})));
  ASSERT_TRUE(cli->WaitForErrors("trying again in 1s", kLong)) << cli->Errors();
  ASSERT_TRUE(cli->WaitForErrors("trying again in 2s", kLong)) << cli->Errors();
  const std::string retrying = cli->Errors();
  EXPECT_THAT(retrying, HasSubstr(MaskedUrl(*broker_))) << retrying;
  EXPECT_THAT(retrying, Not(HasSubstr(kPassword)));
  EXPECT_THAT(retrying, Not(HasSubstr("publishing to")));
  EXPECT_EQ(Stats().published, 0);

  const absl::Time restart = absl::Now();
  ASSERT_OK(broker_->StartAgain()) << broker_->LogTail();
  const absl::Duration restart_took = absl::Now() - restart;
  ASSERT_OK_AND_ASSIGN(consumer_, AmqpClient::Connect(broker_->port()));
  ASSERT_TRUE(WaitUntil(
      [&] { return Depth() == static_cast<uint32_t>(kCount); }, kLong))
      << Depth() << " in the queue; stderr:\n"
      << cli->Errors();
  ASSERT_TRUE(WaitUntil([&] { return Stats().pending == 0; }, kLong));
  const absl::Duration caught_up = absl::Now() - restart - restart_took;
  const CliResult r = StopWithSigterm(*cli, kLong);
  EXPECT_THAT(r.err,
              HasSubstr(absl::StrCat("publishing to ", MaskedUrl(*broker_))));
  EXPECT_THAT(LastProgressLine(r.err),
              HasSubstr(absl::StrCat("published ", kCount, " ")));
  EXPECT_EQ(ExpectQueueHoldsTheOutbox(), 0);
  std::cout << "[          ] " << GetParam() << ": broker restart took "
            << restart_took << ", the command published " << caught_up
            << " later\n";
}

// kill -9 of the command while its batch is in flight, then another
// command: it takes the batch over once the lease ends and sends it again;
// the consumer sees every enqueued message, the killed command's
// deliveries twice, and drops those by message_id (counted).
TEST_P(RabbitMqPublishCliTest, KilledMidBatchAnotherCommandLosesNothing) {
  constexpr int kCount = 5000;
  ASSERT_OK(store_->outbox().Enqueue(Messages(kCount, "k", 200)));

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<CliProcess> killed,
      CliProcess::Start(PublishArgs(
          {"--batch-size", "1000", "--lease", "3", "--worker", "killed-cli"})));
  // Killed as soon as the first messages are in the queue: its batch is
  // claimed, partly delivered, not marked published.
  ASSERT_TRUE(WaitUntil([&] { return Depth() > 0; }, kLong))
      << killed->Errors();
  ASSERT_OK_AND_ASSIGN(CliResult k, killed->Stop(SIGKILL, kLong));
  EXPECT_EQ(k.exit_code, 128 + SIGKILL);
  ExpectNoPassword(k.out, k.err);
  const uint32_t depth_at_kill = Depth();
  const OutboxStats at_kill = Stats();
  ASSERT_GT(at_kill.pending, 0) << "it finished before it was killed";
  const int64_t claimed = ClaimedBy("killed-cli");
  EXPECT_GT(claimed, 0) << "it was not in the middle of a batch";

  const absl::Time started = absl::Now();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<CliProcess> second,
                       CliProcess::Start(PublishArgs(
                           {"--batch-size", "1000", "--lease", "3", "--worker",
                            "second-cli", "--stats-every", "1"})));
  ASSERT_TRUE(WaitUntil([&] { return Stats().pending == 0; }, kLong))
      << Stats().pending << " pending; stderr:\n"
      << second->Errors();
  const absl::Duration took = absl::Now() - started;
  ASSERT_OK_AND_ASSIGN(CliResult r, second->Stop(SIGTERM, kLong));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ExpectNoPassword(r.out, r.err);
  const std::string progress = LastProgressLine(r.err);
  const int64_t published_by_second = Counter(progress, "published");
  EXPECT_EQ(published_by_second, kCount - at_kill.published) << progress;
  EXPECT_EQ(Counter(progress, "given up"), 0) << progress;
  EXPECT_EQ(Stats().published, kCount);
  EXPECT_EQ(Stats().failed, 0);

  const int64_t duplicates = ExpectQueueHoldsTheOutbox(/*in_order=*/false);
  // What the killed command had delivered but not marked published was
  // sent again by the second: at least what the queue held at the kill
  // beyond the messages marked published.
  EXPECT_GE(duplicates,
            static_cast<int64_t>(depth_at_kill) - at_kill.published);
  EXPECT_GT(duplicates, 0);
  std::cout << "[          ] " << GetParam() << ": " << depth_at_kill
            << " in the queue and " << at_kill.published
            << " marked published at the kill, " << claimed
            << " claimed by the killed command; the second published "
            << published_by_second << " in " << took << "; the consumer got "
            << kCount << " distinct of " << kCount << " enqueued and dropped "
            << duplicates << " duplicates by message_id\n";
}

// Options that are not for amqp://, and a URL of no broker: exit code 2,
// the password masked, nothing published.
TEST_P(RabbitMqPublishCliTest, NatsOptionsAndOtherSchemesAreUsageErrors) {
  ASSERT_OK(store_->outbox().Enqueue(Messages(3, "bad")));
  for (const std::vector<std::string>& more :
       std::vector<std::vector<std::string>>{{"--stream", "OUTBOX"},
                                             {"--subject-prefix", "outbox."}}) {
    const CliResult r = RunCli(PublishArgs(more), {}, kLong);
    EXPECT_EQ(r.exit_code, 2) << more[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("are for NATS, not amqp://")) << more[0];
    ExpectNoPassword(r.out, r.err);
  }

  std::vector<std::string> args = PublishArgs({"--once"});
  args[4] = absl::StrCat("http://", kUser, ":", kPassword,
                         "@127.0.0.1:", broker_->port(), "/");
  const CliResult r = RunCli(args, {}, kLong);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is not a broker URL"));
  EXPECT_THAT(r.err, HasSubstr("nats://HOST:PORT"));
  EXPECT_THAT(r.err, HasSubstr("amqp://HOST:PORT/VHOST"));
  ExpectNoPassword(r.out, r.err);

  EXPECT_EQ(Stats().pending, 3);
  EXPECT_EQ(Depth(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Stores, RabbitMqPublishCliTest,
                         ::testing::ValuesIn(ProcessBackends()),
                         BackendParamName);

}  // namespace
}  // namespace eventstore
