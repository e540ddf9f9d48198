// A publisher process (nats_publisher_worker) killed with SIGKILL in the
// middle of a batch, and another publisher taking its batch over once the
// lease expires: JetStream drops what the killed one had stored (counted),
// and the consumer sees every enqueued message once. On a SQLite file and
// on PostgreSQL, the databases two processes can share.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/outbox_publisher.h"
#include "projections/sinks/nats/nats_outbox_sink.h"
#include "tests/sinks/nats/nats_test_helpers.h"
#include "tests/support/nats_server.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

extern char** environ;

namespace eventstore {
namespace {

using ::eventstore::test::EntryId;
using ::eventstore::test::FreshSinkOptions;
using ::eventstore::test::Message;
using ::eventstore::test::NatsServer;
using ::eventstore::test::SharedNatsServer;
using ::eventstore::test::StoredMessage;
using ::eventstore::test::StreamReader;
using ::eventstore::test::TempDir;
using ::eventstore::test::WaitUntil;

constexpr absl::Duration kLong = absl::Seconds(60);

// A child process whose stdout and stderr go to a file; killed (SIGKILL)
// and reaped by the destructor if still running.
class ChildProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv, const std::string& log_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& arg : argv) {
      args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);
    pid_t pid = 0;
    const int error =
        posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
      return absl::InternalError(
          absl::StrCat("posix_spawn ", argv[0], ": ", std::strerror(error)));
    }
    return std::unique_ptr<ChildProcess>(new ChildProcess(pid, log_path));
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { Kill(); }

  // kill -9, and waits for it to die.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  // Everything the process wrote so far.
  std::string Output() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  ChildProcess(pid_t pid, std::string log_path)
      : pid_(pid), log_path_(std::move(log_path)) {}

  pid_t pid_;
  const std::string log_path_;
};

// The store is a database that two processes open: a SQLite file or a
// PostgreSQL schema.
class NatsPublisherKilledTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<NatsServer*> server = SharedNatsServer();
    ASSERT_OK(server);
    server_ = *server;
    absl::StatusOr<std::unique_ptr<TempDir>> dir = TempDir::Create();
    ASSERT_OK(dir);
    dir_ = *std::move(dir);
    if (GetParam() == "postgres") {
#ifdef EVENTSTORE_TEST_POSTGRES
      absl::StatusOr<std::string> postgres = test::SharedPostgresUrl();
      ASSERT_OK(postgres);
      url_ =
          absl::StrCat(*postgres, absl::StrContains(*postgres, "?") ? "&" : "?",
                       "schema=", test::UniqueSchemaName());
#endif
    } else {
      url_ = absl::StrCat("sqlite://", dir_->File("events.db"));
    }
    absl::StatusOr<std::unique_ptr<EventStore>> store = OpenEventStore(url_);
    ASSERT_OK(store);
    store_ = *std::move(store);
  }

  OutboxStats Stats() {
    absl::StatusOr<OutboxStats> stats = store_->outbox().Stats();
    EXPECT_OK(stats);
    return stats.ok() ? *stats : OutboxStats();
  }

  NatsServer* server_ = nullptr;
  std::unique_ptr<TempDir> dir_;
  std::string url_;
  std::unique_ptr<EventStore> store_;
};

// kill -9 of a publisher process while its batch is in flight, then another
// publisher: it claims the batch once the lease expires and sends it again;
// JetStream drops what the killed one had stored, and the consumer sees
// every message once.
TEST_P(NatsPublisherKilledTest, AnotherPublisherFinishesTheKilledOnesBatch) {
  constexpr int kMessages = 6000;
  constexpr absl::Duration kLease = absl::Seconds(2);
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < kMessages; ++i) {
    messages.push_back(Message(i % 3 == 0 ? "orders" : "billing",
                               absl::StrCat("m-", i, std::string(200, '.'))));
  }
  ASSERT_OK(store_->outbox().Enqueue(messages));
  // This sink creates the stream; the worker's uses it.
  NatsOutboxSinkOptions options = FreshSinkOptions(server_->url());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsOutboxSink> sink,
                       NatsOutboxSink::Connect(options));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
                       StreamReader::Connect(server_->url()));

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ChildProcess> worker,
      ChildProcess::Spawn(
          {EVENTSTORE_NATS_PUBLISHER_WORKER, absl::StrCat("--url=", url_),
           absl::StrCat("--nats=", server_->url()),
           absl::StrCat("--subject-prefix=", options.subject_prefix),
           absl::StrCat("--msg-id-prefix=", options.msg_id_prefix),
           "--batch-size=1000",
           absl::StrCat("--lease-ms=", absl::ToInt64Milliseconds(kLease))},
          dir_->File("worker.log")));
  // Kill it as soon as the first messages are stored: its batch is in
  // flight, claimed, not marked published.
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<uint64_t> count = reader->Count(options.stream.name);
        return count.ok() && *count > 0;
      },
      kLong))
      << worker->Output();
  worker->Kill();
  ASSERT_OK_AND_ASSIGN(const uint64_t stored_at_kill,
                       reader->Count(options.stream.name));
  const OutboxStats at_kill = Stats();
  ASSERT_GT(at_kill.pending, 0) << "the worker finished before it was killed";
  OutboxListOptions list;
  list.status = OutboxStatus::kPending;
  list.limit = kMessages;
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store_->outbox().List(list));
  int64_t claimed = 0;
  for (const OutboxEntry& entry : pending) {
    if (entry.claimed_by == "killed-worker") ++claimed;
  }
  EXPECT_GT(claimed, 0) << "the worker was not in the middle of a batch";

  // Another publisher: it takes the killed one's batch after the lease.
  OutboxPublisherOptions publisher_options;
  publisher_options.batch_size = 1000;
  publisher_options.lease = kLease;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<OutboxPublisher> publisher,
      OutboxPublisher::Create(*store_, *sink, publisher_options));
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<OutboxPublishResult> result = publisher->RunOnce();
        EXPECT_OK(result);
        return Stats().pending == 0;
      },
      kLong));
  EXPECT_EQ(Stats().published, kMessages);
  EXPECT_EQ(Stats().failed, 0);

  ASSERT_OK_AND_ASSIGN(std::vector<StoredMessage> stored,
                       reader->ReadAll(options.stream.name));
  std::set<int64_t> distinct;
  for (const StoredMessage& message : stored) {
    distinct.insert(EntryId(message, options.msg_id_prefix));
  }
  std::set<int64_t> enqueued;
  list.status = std::nullopt;
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> all,
                       store_->outbox().List(list));
  for (const OutboxEntry& entry : all) enqueued.insert(entry.id);
  EXPECT_EQ(stored.size(), static_cast<size_t>(kMessages))
      << "JetStream stored a resend twice";
  EXPECT_EQ(distinct, enqueued) << "a message was lost";
  // What the killed worker had stored but not marked published was sent
  // again and dropped by JetStream.
  const int64_t stored_unmarked =
      static_cast<int64_t>(stored_at_kill) - at_kill.published;
  EXPECT_GE(sink->stats().duplicates, stored_unmarked);
  EXPECT_GT(sink->stats().duplicates, 0);
  std::cerr << "[ publisher killed ] " << GetParam() << ": " << stored_at_kill
            << " stored and " << at_kill.published
            << " marked published at the kill, " << claimed
            << " claimed by the killed worker, " << sink->stats().duplicates
            << " resends dropped by JetStream, " << stored.size() << " stored, "
            << distinct.size() << " distinct of " << kMessages << " enqueued\n";
}

std::vector<std::string> ProcessBackends() {
  return {
      "sqlite_file",
#ifdef EVENTSTORE_TEST_POSTGRES
      "postgres",
#endif
  };
}

INSTANTIATE_TEST_SUITE_P(Processes, NatsPublisherKilledTest,
                         ::testing::ValuesIn(ProcessBackends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace eventstore
