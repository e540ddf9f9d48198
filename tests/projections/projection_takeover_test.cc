// Two projection_worker processes run one projection against one database:
// only the lease holder handles events; when it is killed (SIGKILL, in the
// middle of its work), the other takes over within seconds, and every event
// is handled exactly once overall (the read model is written in the
// runner's transactions). On PostgreSQL (session advisory locks) and on a
// SQLite file (flock).

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
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
#include "eventstore/sql_transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/projections/test_projections.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

extern char** environ;

namespace eventstore {
namespace {

using ::eventstore::test::AppendOrders;
using ::eventstore::test::TempDir;
using ::eventstore::test::WaitUntil;

// A child process whose stdout and stderr go to a file. Killed (SIGKILL)
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
  ~ChildProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  void Signal(int signal) {
    if (pid_ > 0) kill(pid_, signal);
  }

  // Waits up to `timeout` for the process to exit: its wait status, or
  // nullopt when it is still running.
  std::optional<int> Wait(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno != EINTR)) {
        pid_ = -1;
        exit_status_ = status;
        break;
      }
      if (absl::Now() > deadline) return std::nullopt;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return exit_status_;
  }

  bool running() { return !Wait(absl::ZeroDuration()).has_value(); }

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
  int exit_status_ = 0;
};

constexpr char kTable[] = "handled";
constexpr int kLeaseRetryMs = 200;

class ProjectionTakeoverTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TempDir>> dir = TempDir::Create();
    ASSERT_OK(dir);
    dir_ = *std::move(dir);
    if (GetParam() == "postgres") {
#ifdef EVENTSTORE_TEST_POSTGRES
      absl::StatusOr<std::string> server = test::SharedPostgresUrl();
      ASSERT_OK(server);
      url_ = absl::StrCat(*server, absl::StrContains(*server, "?") ? "&" : "?",
                          "schema=", test::UniqueSchemaName());
#endif
    } else {
      url_ = absl::StrCat("sqlite://", dir_->File("events.db"));
    }
    absl::StatusOr<std::unique_ptr<EventStore>> store = OpenEventStore(url_);
    ASSERT_OK(store);
    store_ = *std::move(store);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store_->BeginTransaction());
    ASSERT_OK(tx->Execute(
        absl::StrCat("CREATE TABLE ", kTable,
                     " (event_id TEXT NOT NULL, worker TEXT NOT NULL)")));
    ASSERT_OK(tx->Commit());
  }

  std::unique_ptr<ChildProcess> StartWorker(const std::string& worker) {
    absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(
        {EVENTSTORE_PROJECTION_WORKER, absl::StrCat("--url=", url_),
         "--projection=handled-events", absl::StrCat("--table=", kTable),
         absl::StrCat("--worker=", worker), "--batch-size=10", "--delay-ms=5",
         absl::StrCat("--lease-retry-ms=", kLeaseRetryMs)},
        dir_->File(worker + ".log"));
    EXPECT_OK(child);
    return child.ok() ? *std::move(child) : nullptr;
  }

  // Rows per worker.
  std::map<std::string, int64_t> RowsByWorker() {
    std::map<std::string, int64_t> rows;
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store_->BeginTransaction();
    EXPECT_OK(tx);
    if (!tx.ok()) return rows;
    absl::StatusOr<SqlRows> result = (*tx)->Query(absl::StrCat(
        "SELECT worker, count(*) FROM ", kTable, " GROUP BY worker"));
    EXPECT_OK(result);
    if (!result.ok()) return rows;
    for (const SqlRow& row : *result) {
      rows[row[0].value_or("")] = std::stoll(row[1].value_or("0"));
    }
    return rows;
  }

  int64_t TotalRows() {
    int64_t total = 0;
    for (const auto& [worker, n] : RowsByWorker()) total += n;
    return total;
  }

  // Every handled event id, with repeats.
  std::multiset<std::string> HandledIds() {
    std::multiset<std::string> ids;
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store_->BeginTransaction();
    EXPECT_OK(tx);
    if (!tx.ok()) return ids;
    absl::StatusOr<SqlRows> result =
        (*tx)->Query(absl::StrCat("SELECT event_id FROM ", kTable));
    EXPECT_OK(result);
    if (!result.ok()) return ids;
    for (const SqlRow& row : *result) ids.insert(row[0].value_or(""));
    return ids;
  }

  std::unique_ptr<TempDir> dir_;
  std::string url_;
  std::unique_ptr<EventStore> store_;
};

TEST_P(ProjectionTakeoverTest, StandbyTakesOverWhenTheActiveProcessIsKilled) {
  std::map<std::string, std::unique_ptr<ChildProcess>> workers;
  workers["w1"] = StartWorker("w1");
  workers["w2"] = StartWorker("w2");
  ASSERT_NE(workers["w1"], nullptr);
  ASSERT_NE(workers["w2"], nullptr);
  const auto outputs = [&] {
    return absl::StrCat("--- w1:\n", workers["w1"]->Output(), "--- w2:\n",
                        workers["w2"]->Output());
  };
  ASSERT_TRUE(WaitUntil(
      [&] {
        return absl::StrContains(workers["w1"]->Output(), "ready") &&
               absl::StrContains(workers["w2"]->Output(), "ready");
      },
      absl::Seconds(20)))
      << outputs();
  ASSERT_TRUE(
      WaitUntil([&] { return absl::StrContains(outputs(), "lease acquired"); },
                absl::Seconds(10)))
      << outputs();

  std::vector<Uuid> ids;
  for (int i = 0; i < 15; ++i) {
    ASSERT_OK_AND_ASSIGN(std::vector<Uuid> more,
                         AppendOrders(*store_, absl::StrCat("order-", i), 10));
    ids.insert(ids.end(), more.begin(), more.end());
  }
  // Kill the active worker while it is working through the events.
  ASSERT_TRUE(WaitUntil([&] { return TotalRows() >= 40; }, absl::Seconds(20)))
      << outputs();
  std::map<std::string, int64_t> rows = RowsByWorker();
  ASSERT_EQ(rows.size(), 1u) << "two workers were active at once\n"
                             << outputs();
  const std::string active = rows.begin()->first;
  const std::string standby = active == "w1" ? "w2" : "w1";
  EXPECT_FALSE(absl::StrContains(workers[standby]->Output(), "lease acquired"))
      << outputs();
  EXPECT_TRUE(workers[standby]->running()) << outputs();
  workers[active]->Signal(SIGKILL);
  ASSERT_TRUE(workers[active]->Wait(absl::Seconds(5)).has_value());
  const absl::Time killed_at = absl::Now();

  for (int i = 15; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(std::vector<Uuid> more,
                         AppendOrders(*store_, absl::StrCat("order-", i), 10));
    ids.insert(ids.end(), more.begin(), more.end());
  }
  ASSERT_TRUE(WaitUntil(
      [&] {
        return absl::StrContains(workers[standby]->Output(), "lease acquired");
      },
      absl::Seconds(5)))
      << "no takeover within 5 s\n"
      << outputs();
  const absl::Duration takeover = absl::Now() - killed_at;
  EXPECT_LT(takeover, absl::Seconds(5));
  ASSERT_TRUE(WaitUntil([&] { return TotalRows() >= 200; }, absl::Seconds(20)))
      << TotalRows() << " rows\n"
      << outputs();

  // Exactly once overall: the killed worker's last transaction rolled back,
  // and the standby went on from the committed checkpoint.
  absl::SleepFor(absl::Milliseconds(300));  // nothing more may arrive
  std::multiset<std::string> handled = HandledIds();
  EXPECT_EQ(handled.size(), 200u);
  for (const Uuid& id : ids) {
    EXPECT_EQ(handled.count(id.ToString()), 1u) << id;
  }
  rows = RowsByWorker();
  EXPECT_GT(rows[standby], 0);
  EXPECT_GE(rows[active], 40);

  // The survivor stops cleanly on SIGTERM.
  workers[standby]->Signal(SIGTERM);
  std::optional<int> status = workers[standby]->Wait(absl::Seconds(5));
  ASSERT_TRUE(status.has_value()) << "worker did not stop\n" << outputs();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << outputs();
  std::cout << "takeover after " << takeover << "\n" << outputs();
}

std::vector<std::string> TakeoverBackends() {
  return {
      "sqlite_file",
#ifdef EVENTSTORE_TEST_POSTGRES
      "postgres",
#endif
  };
}

INSTANTIATE_TEST_SUITE_P(Processes, ProjectionTakeoverTest,
                         ::testing::ValuesIn(TakeoverBackends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace eventstore
