// `eventstore outbox publish --to nats://...` (tools/outbox_publish_command.cc)
// run as a process (EVENTSTORE_CLI, tests/tools/cli_process.h) against a real
// `nats-server -js` that requires a login, on a SQLite file and on a
// PostgreSQL schema (the stores two processes can share): --once, a
// long-running publisher stopped by SIGTERM, a broker unreachable at start,
// a publisher killed with -9 in the middle of a batch and another one
// finishing it, and broker URLs that are not one.
//
// The consumer side reads the JetStream stream the command creates
// (--stream) through its own connection (nats_test_helpers.h). Every test
// checks that the broker's password never reaches stdout or stderr. The
// store, messages and progress lines are as for amqp://
// (publish_cli_support.h).

#include <signal.h>

#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/sinks/nats/nats_test_helpers.h"
#include "tests/sinks/publish_cli_support.h"
#include "tests/support/nats_server.h"
#include "tests/support/server_process.h"
#include "tests/support/status_matchers.h"
#include "tests/tools/cli_process.h"

namespace eventstore {
namespace {

using ::eventstore::test::BackendParamName;
using ::eventstore::test::CliProcess;
using ::eventstore::test::CliResult;
using ::eventstore::test::Counter;
using ::eventstore::test::EntryId;
using ::eventstore::test::LastProgressLine;
using ::eventstore::test::NatsServer;
using ::eventstore::test::NatsServerOptions;
using ::eventstore::test::ProcessBackends;
using ::eventstore::test::PublishCliTest;
using ::eventstore::test::RunCli;
using ::eventstore::test::StoredMessage;
using ::eventstore::test::StreamReader;
using ::eventstore::test::WaitUntil;
using ::testing::HasSubstr;
using ::testing::Not;

// The broker's login; the password must never be printed.
constexpr char kUser[] = "publisher";
constexpr char kPassword[] = "n4ts-s3cret-pw";
// Generous: the machine is shared with other builds and tests.
constexpr absl::Duration kLong = absl::Seconds(120);

NatsServerOptions LoginOptions() {
  NatsServerOptions options;
  options.user = kUser;
  options.password = kPassword;
  return options;
}

// The process's broker (with a login), started on first use; tests that
// stop it start their own.
absl::StatusOr<NatsServer*> Broker() {
  static absl::StatusOr<std::unique_ptr<NatsServer>>* broker = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    broker = new absl::StatusOr<std::unique_ptr<NatsServer>>(
        NatsServer::Start(LoginOptions()));
  });
  if (!broker->ok()) return broker->status();
  return broker->value().get();
}

// "nats://publisher:***@127.0.0.1:PORT": how the command names the broker.
// The test login's URL of a broker on `port`, and as the command prints it.
std::string LoginUrl(int port) {
  return absl::StrCat("nats://", kUser, ":", kPassword, "@127.0.0.1:", port);
}
std::string MaskedLoginUrl(int port) {
  return absl::StrCat("nats://", kUser, ":***@127.0.0.1:", port);
}
std::string MaskedUrl(const NatsServer& server) {
  return MaskedLoginUrl(server.port());
}

// The store is a database that the test and the command's processes open
// together: a SQLite file or a PostgreSQL schema.
class NatsPublishCliTest : public PublishCliTest {
 protected:
  NatsPublishCliTest() : PublishCliTest(kPassword) {}

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(PublishCliTest::SetUp());
    // Names no other test of the process uses (the broker is shared).
    static int counter = 0;
    const std::string name = absl::StrCat("cli", ++counter);
    subject_prefix_ = name + ".";
    stream_ = absl::StrCat("CLI_", counter);
    id_prefix_ = name + "/";
  }

  // `eventstore outbox publish URL --to BROKER ...` with this test's
  // subject prefix, stream and message id prefix, then `more`.
  std::vector<std::string> PublishArgs(const std::string& broker,
                                       const std::vector<std::string>& more) {
    std::vector<std::string> args = {"outbox",
                                     "publish",
                                     url_,
                                     "--to",
                                     broker,
                                     "--subject-prefix",
                                     subject_prefix_,
                                     "--stream",
                                     stream_,
                                     "--message-id-prefix",
                                     id_prefix_};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  // Messages() go to "orders" and "billing.eu".
  void Route(int i, OutboxMessage* message) const override {
    message->destination = i % 3 == 0 ? "orders" : "billing.eu";
    message->key = absl::StrCat("order-", i % 7);
  }

  // Messages in this test's stream; 0 while it does not exist.
  uint64_t StreamCount(StreamReader& reader) {
    absl::StatusOr<uint64_t> count = reader.Count(stream_);
    return count.ok() ? *count : 0;
  }

  // What the consumer reads is every enqueued message once: the right
  // subject, data, Nats-Msg-Id and headers; with `in_order`, in enqueue
  // order per subject (one publisher: order across publishers is not kept).
  void ExpectStreamHoldsTheOutbox(StreamReader& reader, bool in_order = true) {
    ASSERT_OK_AND_ASSIGN(std::vector<StoredMessage> stored,
                         reader.ReadAll(stream_));
    const std::map<int64_t, OutboxEntry> outbox = Outbox();
    EXPECT_EQ(stored.size(), outbox.size());
    std::set<int64_t> seen;
    std::map<std::string, int64_t> last_per_subject;
    for (const StoredMessage& message : stored) {
      const int64_t id = EntryId(message, id_prefix_);
      auto it = outbox.find(id);
      ASSERT_NE(it, outbox.end())
          << "unknown Nats-Msg-Id, subject " << message.subject;
      EXPECT_TRUE(seen.insert(id).second) << "stored twice: " << id;
      const OutboxMessage& sent = it->second.message;
      EXPECT_EQ(message.subject, subject_prefix_ + sent.destination);
      EXPECT_EQ(message.data, sent.payload);
      std::map<std::string, std::string> want = sent.headers;
      want["Outbox-Key"] = sent.key;
      for (const auto& [name, value] : want) {
        auto header = message.headers.find(name);
        ASSERT_NE(header, message.headers.end()) << name;
        EXPECT_EQ(header->second, value) << name;
      }
      if (in_order) {
        EXPECT_GT(id, last_per_subject[message.subject]) << "out of order";
      }
      last_per_subject[message.subject] = id;
    }
    EXPECT_EQ(seen.size(), outbox.size()) << "a message was lost";
  }

  std::string subject_prefix_;
  std::string stream_;
  std::string id_prefix_;
};

// --once publishes every pending message, prints one progress line, exits 0.
TEST_P(NatsPublishCliTest, OncePublishesEveryPendingMessage) {
  ASSERT_OK_AND_ASSIGN(NatsServer * broker, Broker());
  constexpr int kCount = 250;
  ASSERT_OK(store_->outbox().Enqueue(Messages(kCount, "once")));

  const CliResult r = RunCli(
      PublishArgs(broker->url_with_credentials(),
                  {"--once", "--batch-size", "64", "--worker", "once-cli"}),
      {}, kLong);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ExpectNoPassword(r.out, r.err);
  const std::string progress = LastProgressLine(r.err);
  EXPECT_THAT(progress, HasSubstr(absl::StrCat("published ", kCount, " ")))
      << r.err;
  EXPECT_THAT(progress, HasSubstr("failed sends 0, given up 0, pending 0"));
  EXPECT_EQ(Counter(progress, "duplicates"), 0) << progress;

  EXPECT_EQ(Stats().pending, 0);
  EXPECT_EQ(Stats().published, kCount);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(broker->url_with_credentials()));
  ExpectStreamHoldsTheOutbox(*reader);

  // Again: nothing is pending, nothing is sent.
  const CliResult again = RunCli(
      PublishArgs(broker->url_with_credentials(), {"--once"}), {}, kLong);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(LastProgressLine(again.err), HasSubstr("published 0 "));
  EXPECT_EQ(StreamCount(*reader), static_cast<uint64_t>(kCount));
}

// The long-running form publishes what arrives while it runs (enqueued
// alone or by an append), prints progress, and stops on SIGTERM with a
// final progress line and exit code 0.
TEST_P(NatsPublishCliTest, RunsUntilSigtermPublishingWhatArrives) {
  ASSERT_OK_AND_ASSIGN(NatsServer * broker, Broker());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<CliProcess> cli,
      CliProcess::Start(PublishArgs(broker->url_with_credentials(),
                                    {"--stats-every", "1", "--batch-size", "7",
                                     "--batches-in-flight", "3"})));
  ASSERT_TRUE(cli->WaitForErrors(
      absl::StrCat("publishing to ", MaskedUrl(*broker), " as "), kLong))
      << cli->Errors();
  ASSERT_TRUE(cli->WaitForErrors("(batches of 7, up to 3 in flight)", kLong))
      << cli->Errors();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(broker->url_with_credentials()));

  uint64_t expected = 0;
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK_AND_ASSIGN(const uint64_t enqueued,
                         EnqueueAloneAndWithAnAppend(round));
    expected += enqueued;
    ASSERT_TRUE(
        WaitUntil([&] { return StreamCount(*reader) >= expected; }, kLong))
        << "round " << round << ": " << StreamCount(*reader) << " of "
        << expected << " stored; stderr:\n"
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
  EXPECT_THAT(lines.back(), HasSubstr("pending 0, duplicates 0"));
  EXPECT_EQ(Stats().published, static_cast<int64_t>(expected));
  ExpectStreamHoldsTheOutbox(*reader);
  std::cout << "[          ] " << GetParam() << ": " << expected
            << " messages, SIGTERM to exit " << stop_took << "\n";
}

// A broker that does not answer at start: a line per attempt naming its
// URL with the password masked, waits doubling; once the broker is up the
// command connects and publishes.
TEST_P(NatsPublishCliTest, RetriesAnUnreachableBrokerWithThePasswordMasked) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsServer> broker,
                       NatsServer::Start(LoginOptions()));
  ASSERT_OK(broker->Stop());
  constexpr int kCount = 40;
  ASSERT_OK(store_->outbox().Enqueue(Messages(kCount, "late")));

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<CliProcess> cli,
      CliProcess::Start(
          PublishArgs(broker->url_with_credentials(), {"--stats-every", "1"})));
  ASSERT_TRUE(cli->WaitForErrors("trying again in 1s", kLong)) << cli->Errors();
  ASSERT_TRUE(cli->WaitForErrors("trying again in 2s", kLong)) << cli->Errors();
  const std::string retrying = cli->Errors();
  EXPECT_THAT(retrying, HasSubstr(MaskedUrl(*broker))) << retrying;
  EXPECT_THAT(retrying, Not(HasSubstr(kPassword)));
  EXPECT_THAT(retrying, Not(HasSubstr("publishing to")));
  EXPECT_EQ(Stats().published, 0);

  ASSERT_OK(broker->StartAgain());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(broker->url_with_credentials()));
  ASSERT_TRUE(WaitUntil(
      [&] { return StreamCount(*reader) == static_cast<uint64_t>(kCount); },
      kLong))
      << cli->Errors();
  ASSERT_TRUE(WaitUntil([&] { return Stats().pending == 0; }, kLong));
  const CliResult r = StopWithSigterm(*cli, kLong);
  EXPECT_THAT(r.err,
              HasSubstr(absl::StrCat("publishing to ", MaskedUrl(*broker))));
  EXPECT_THAT(LastProgressLine(r.err),
              HasSubstr(absl::StrCat("published ", kCount, " ")));
  ExpectStreamHoldsTheOutbox(*reader);
}

// SIGTERM while the broker is being retried: exit code 0 at once, without
// waiting for the next attempt; nothing published.
TEST_P(NatsPublishCliTest, SigtermWhileRetryingStopsAtOnce) {
  ASSERT_OK_AND_ASSIGN(const int port, test::PickFreeLoopbackPort());
  const std::string nowhere = LoginUrl(port);
  ASSERT_OK(store_->outbox().Enqueue(Messages(3, "never")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<CliProcess> cli,
                       CliProcess::Start(PublishArgs(nowhere, {})));
  // The third wait is 4 s long: the signal comes in the middle of one.
  ASSERT_TRUE(cli->WaitForErrors("trying again in 4s", kLong)) << cli->Errors();
  const CliResult r = StopWithSigterm(*cli, absl::Seconds(3));
  EXPECT_THAT(r.err, HasSubstr(MaskedLoginUrl(port)));
  EXPECT_THAT(r.err, Not(HasSubstr("publishing to")));
  EXPECT_EQ(Stats().pending, 3);
}

// --once is a job: an unreachable broker is exit code 1 at once (the
// scheduler runs it again), never a retry loop; nothing is published.
TEST_P(NatsPublishCliTest, OnceWithAnUnreachableBrokerFailsAtOnce) {
  ASSERT_OK_AND_ASSIGN(const int port, test::PickFreeLoopbackPort());
  const std::string nowhere = LoginUrl(port);
  ASSERT_OK(store_->outbox().Enqueue(Messages(3, "never")));
  const CliResult r = RunCli(PublishArgs(nowhere, {"--once"}), {}, kLong);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ExpectNoPassword(r.out, r.err);
  EXPECT_THAT(r.err, HasSubstr(MaskedLoginUrl(port)));
  EXPECT_THAT(r.err, Not(HasSubstr("trying again")));
  EXPECT_EQ(Stats().pending, 3);
}

// SIGTERM during --once ends it after the batch in flight, not after the
// whole backlog: exit code 0, the rest still pending.
TEST_P(NatsPublishCliTest, SigtermDuringOnceStopsAfterTheBatchInFlight) {
  ASSERT_OK_AND_ASSIGN(NatsServer * broker, Broker());
  // One message a batch: draining takes two commits a message, far longer
  // than the test waits for the stop.
  constexpr int kCount = 100000;
  ASSERT_OK(store_->outbox().Enqueue(Messages(kCount, "job")));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<CliProcess> cli,
      CliProcess::Start(PublishArgs(broker->url_with_credentials(),
                                    {"--once", "--batch-size", "1"})));
  ASSERT_TRUE(WaitUntil([&] { return Stats().published > 0; }, kLong))
      << cli->Errors();
  const CliResult r = StopWithSigterm(*cli, absl::Seconds(10));
  const OutboxStats stats = Stats();
  EXPECT_GT(stats.pending, 0);
  EXPECT_EQ(stats.pending + stats.published, kCount);
  EXPECT_THAT(LastProgressLine(r.err),
              HasSubstr(absl::StrCat("published ", stats.published, " ")));
}

// kill -9 of the command while its batch is in flight, then another
// command: it takes the batch over once the lease ends and sends it again;
// JetStream drops what the killed one had stored (the second command's
// "duplicates"), and the consumer sees every enqueued message once.
TEST_P(NatsPublishCliTest, KilledMidBatchAnotherCommandLosesNothing) {
  ASSERT_OK_AND_ASSIGN(NatsServer * broker, Broker());
  constexpr int kCount = 5000;
  ASSERT_OK(store_->outbox().Enqueue(Messages(kCount, "k", 200)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(broker->url_with_credentials()));

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<CliProcess> killed,
      CliProcess::Start(PublishArgs(
          broker->url_with_credentials(),
          {"--batch-size", "1000", "--lease", "3", "--worker", "killed-cli"})));
  // Killed as soon as the first messages are stored: its batch is claimed,
  // partly stored, not marked published.
  ASSERT_TRUE(WaitUntil([&] { return StreamCount(*reader) > 0; }, kLong))
      << killed->Errors();
  ASSERT_OK_AND_ASSIGN(CliResult k, killed->Stop(SIGKILL, kLong));
  EXPECT_EQ(k.exit_code, 128 + SIGKILL);
  ExpectNoPassword(k.out, k.err);
  const uint64_t stored_at_kill = StreamCount(*reader);
  const OutboxStats at_kill = Stats();
  ASSERT_GT(at_kill.pending, 0) << "it finished before it was killed";
  const int64_t claimed = ClaimedBy("killed-cli");
  EXPECT_GT(claimed, 0) << "it was not in the middle of a batch";

  const absl::Time started = absl::Now();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<CliProcess> second,
                       CliProcess::Start(PublishArgs(
                           broker->url_with_credentials(),
                           {"--batch-size", "1000", "--lease", "3", "--worker",
                            "second-cli", "--stats-every", "1"})));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return Stats().pending == 0 &&
               StreamCount(*reader) == static_cast<uint64_t>(kCount);
      },
      kLong))
      << Stats().pending << " pending, " << StreamCount(*reader)
      << " stored; stderr:\n"
      << second->Errors();
  const absl::Duration took = absl::Now() - started;
  ASSERT_OK_AND_ASSIGN(CliResult r, second->Stop(SIGTERM, kLong));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ExpectNoPassword(r.out, r.err);
  const std::string progress = LastProgressLine(r.err);
  const int64_t published_by_second = Counter(progress, "published");
  const int64_t duplicates = Counter(progress, "duplicates");
  EXPECT_EQ(published_by_second, kCount - at_kill.published) << progress;
  EXPECT_EQ(Counter(progress, "given up"), 0) << progress;

  EXPECT_EQ(Stats().published, kCount);
  EXPECT_EQ(Stats().failed, 0);
  ExpectStreamHoldsTheOutbox(*reader, /*in_order=*/false);
  // What the killed command had stored but not marked published was sent
  // again by the second and dropped by JetStream: at least what the stream
  // held at the kill beyond the messages marked published.
  EXPECT_GE(duplicates,
            static_cast<int64_t>(stored_at_kill) - at_kill.published)
      << progress;
  EXPECT_GT(duplicates, 0) << progress;
  std::cout << "[          ] " << GetParam() << ": " << stored_at_kill
            << " stored and " << at_kill.published
            << " marked published at the kill, " << claimed
            << " claimed by the killed command; the second published "
            << published_by_second << ", " << duplicates
            << " of them dropped by JetStream as duplicates, in " << took
            << "; stream holds " << StreamCount(*reader) << " of " << kCount
            << " enqueued\n";
}

// --to that names no broker this command serves: exit code 2, a message
// naming the schemes it takes, the password masked, nothing published.
TEST_P(NatsPublishCliTest, BrokerUrlOfAnotherSchemeIsAUsageError) {
  ASSERT_OK(store_->outbox().Enqueue(Messages(3, "bad")));
  const std::string http =
      absl::StrCat("http://", kUser, ":", kPassword, "@127.0.0.1:4222/");
  const CliResult r = RunCli(PublishArgs(http, {"--once"}), {}, kLong);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is not a broker URL"));
  EXPECT_THAT(r.err, HasSubstr("nats://HOST:PORT"));
  EXPECT_THAT(r.err, HasSubstr("amqp://HOST:PORT/VHOST"));
  ExpectNoPassword(r.out, r.err);
  EXPECT_EQ(Stats().pending, 3);
}

// --batches-in-flight outside 1 to 64: exit code 2 naming the option,
// nothing published.
TEST_P(NatsPublishCliTest, BatchesInFlightOutOfRangeIsAUsageError) {
  ASSERT_OK_AND_ASSIGN(NatsServer * broker, Broker());
  ASSERT_OK(store_->outbox().Enqueue(Messages(3, "bad")));
  for (const char* count : {"0", "65", "two"}) {
    const CliResult r =
        RunCli(PublishArgs(broker->url_with_credentials(),
                           {"--once", "--batches-in-flight", count}),
               {}, kLong);
    EXPECT_EQ(r.exit_code, 2) << count << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("--batches-in-flight")) << count;
    ExpectNoPassword(r.out, r.err);
  }
  EXPECT_EQ(Stats().pending, 3);
}

INSTANTIATE_TEST_SUITE_P(Stores, NatsPublishCliTest,
                         ::testing::ValuesIn(ProcessBackends()),
                         BackendParamName);

}  // namespace
}  // namespace eventstore
