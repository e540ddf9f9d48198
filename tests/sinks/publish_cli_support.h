// What the tests of `eventstore outbox publish`
// (tools/outbox_publish_command.cc) share across brokers
// (tests/sinks/nats/nats_publish_cli_test.cc,
// tests/sinks/rabbitmq/rabbitmq_publish_cli_test.cc): a fixture whose store
// is one the test and the command's processes open together (a SQLite file
// or a PostgreSQL schema), outbox messages to enqueue, and reading the
// command's progress lines.
//
//   class MyPublishCliTest : public PublishCliTest {
//    protected:
//     MyPublishCliTest() : PublishCliTest(kPassword) {}
//     void Route(int i, OutboxMessage* message) const override {
//       message->destination = "orders";
//       message->key = absl::StrCat("order-", i % 7);
//     }
//   };
//
//   TEST_P(MyPublishCliTest, Once) {
//     ASSERT_OK(store_->outbox().Enqueue(Messages(10, "once")));
//     const CliResult r = RunCli({"outbox", "publish", url_, ...}, {}, kLong);
//     ExpectNoPassword(r.out, r.err);
//     EXPECT_EQ(Counter(LastProgressLine(r.err), "given up"), 0);
//   }
//   INSTANTIATE_TEST_SUITE_P(Stores, MyPublishCliTest,
//                            ::testing::ValuesIn(ProcessBackends()),
//                            BackendParamName);

#ifndef EVENTSTORE_TESTS_SINKS_PUBLISH_CLI_SUPPORT_H_
#define EVENTSTORE_TESTS_SINKS_PUBLISH_CLI_SUPPORT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/cli_process.h"

namespace eventstore::test {

// The last progress line on stderr ("... published N (R/s), ...").
std::string LastProgressLine(const std::string& err);

// The number after `name` in a progress line ("duplicates 3", "returned 0");
// -1 when absent.
int64_t Counter(const std::string& line, const std::string& name);

// The stores two processes can share: "sqlite_file" and, when the tests
// have a PostgreSQL server, "postgres".
std::vector<std::string> ProcessBackends();

// The test name suffix of a ProcessBackends() parameter: the backend.
std::string BackendParamName(const ::testing::TestParamInfo<std::string>& info);

// A test of the command on the store named by the parameter (one of
// ProcessBackends()): a SQLite file in a temp dir, or a schema of its own
// on the shared PostgreSQL server.
class PublishCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  // `password`: the broker login's, which the command must never print.
  explicit PublishCliTest(std::string password);

  // Opens the store (`url_`, `store_`); a subclass that overrides it calls
  // it first.
  void SetUp() override;

  // Where the `i`-th message of Messages() goes: its destination and key.
  virtual void Route(int i, OutboxMessage* message) const = 0;

  // `count` messages, routed by Route(), with payload "<tag>-<i>" followed
  // by `padding` dots, and metadata headers (correlation, causation, event
  // type, traceparent).
  std::vector<OutboxMessage> Messages(int count, const std::string& tag,
                                      size_t padding = 0) const;

  // Round `round` of a publisher that runs while messages arrive: 100
  // messages enqueued alone ("alone<round>"), then 10 with an append of an
  // event to stream "order-<round>" ("append<round>"). How many.
  absl::StatusOr<uint64_t> EnqueueAloneAndWithAnAppend(int round);

  // Every outbox entry, by id.
  std::map<int64_t, OutboxEntry> Outbox();

  OutboxStats Stats();

  // Pending entries that `worker` holds a claim on.
  int64_t ClaimedBy(const std::string& worker);

  // The broker's password is on neither stdout nor stderr.
  void ExpectNoPassword(const std::string& out, const std::string& err) const;

  // Sends SIGTERM to the running command and waits for it: it exits 0
  // within `within`, printing no password. What it printed; how long it
  // took in `took` when given.
  CliResult StopWithSigterm(CliProcess& cli, absl::Duration within,
                            absl::Duration* took = nullptr) const;

  std::unique_ptr<TempDir> dir_;
  std::string url_;
  std::unique_ptr<EventStore> store_;

 private:
  const std::string password_;
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SINKS_PUBLISH_CLI_SUPPORT_H_
