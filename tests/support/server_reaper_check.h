// ExpectKilledOwnerLeavesNothing: the check that a server harness leaves
// no server and no folder behind when the process that started it is
// killed, so that no destructor runs (ServerReaper). It runs
// server_reaper_probe (its path in EVENTSTORE_SERVER_REAPER_PROBE), waits
// for the server to be up, kills the probe with SIGKILL and waits for the
// server's main process and its folder to go. (Not for its port to
// close: another test's server may take the port at once.)
//
//   TEST(PostgresServerLifecycleTest, KilledOwnerLeavesNoServerBehind) {
//     ExpectKilledOwnerLeavesNothing("postgres", absl::Seconds(120));
//   }

#ifndef EVENTSTORE_TESTS_SUPPORT_SERVER_REAPER_CHECK_H_
#define EVENTSTORE_TESTS_SUPPORT_SERVER_REAPER_CHECK_H_

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace eventstore::test {

// Whether `pid` is gone: no such process, or one that has exited and
// waits to be reaped (a zombie: its parent died, and the reaper of
// orphans has not got to it yet).
inline bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() &&
         line[paren + 2] == 'Z';
}

// `kind`: an argument of server_reaper_probe (sleep, postgres, nats,
// rabbitmq). `start_timeout`: how long the server may take to start.
inline void ExpectKilledOwnerLeavesNothing(std::string_view kind,
                                           absl::Duration start_timeout) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> temp, TempDir::Create());
  const std::string report_path = temp->File("report");
  const std::string log_path = temp->File("probe.log");
  ASSERT_OK_AND_ASSIGN(const pid_t probe,
                       SpawnProcess({EVENTSTORE_SERVER_REAPER_PROBE,
                                     std::string(kind), report_path},
                                    log_path));
  int wait_status = 0;
  bool exited = false;
  ASSERT_TRUE(WaitUntil(
      [&] {
        exited = exited || ProcessExited(probe, &wait_status);
        return exited || std::filesystem::exists(report_path);
      },
      start_timeout))
      << "the probe did not start a " << kind << " server within "
      << start_timeout << ":\n"
      << FileTail(log_path, 4096);
  ASSERT_FALSE(exited) << "the probe " << DescribeExit(wait_status) << ":\n"
                       << FileTail(log_path, 4096);

  std::ifstream report(report_path);
  std::string dir, port_text, pid_text;
  std::getline(report, dir);
  std::getline(report, port_text);
  std::getline(report, pid_text);
  int port = 0, pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(port_text, &port)) << port_text;
  ASSERT_TRUE(absl::SimpleAtoi(pid_text, &pid)) << pid_text;
  ASSERT_FALSE(dir.empty());
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  if (port > 0) {
    EXPECT_TRUE(CanConnectToLoopback(port)) << port;
  }
  ASSERT_GT(pid, 0) << "the probe named no process";
  ASSERT_FALSE(ProcessGone(pid)) << pid;

  ASSERT_EQ(kill(probe, SIGKILL), 0);
  ASSERT_TRUE(WaitUntil([&] { return ProcessExited(probe, &wait_status); },
                        absl::Seconds(30)));
  EXPECT_TRUE(WaitUntil(
      [&] { return ProcessGone(pid) && !std::filesystem::exists(dir); },
      absl::Seconds(60)))
      << "left behind:" << (ProcessGone(pid) ? "" : " the server's process")
      << (std::filesystem::exists(dir) ? absl::StrCat(" ", dir) : "");
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_SERVER_REAPER_CHECK_H_
