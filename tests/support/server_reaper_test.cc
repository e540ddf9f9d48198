// Tests of ServerReaper (server_process.h): what the test servers'
// harnesses leave behind when their process is killed, and when it is not.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "tests/support/server_reaper_check.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace eventstore::test {
namespace {

// The probe starts /bin/sleep in a session of its own and names it in a
// pid file, as the harnesses do with their servers; killed, it leaves
// neither the process nor the folder.
TEST(ServerReaperTest, KilledOwnerLeavesNoProcessBehind) {
  ExpectKilledOwnerLeavesNothing("sleep", absl::Seconds(30));
}

// A reaper destroyed by the process that started it (the harness cleaned
// up itself) kills nothing and removes nothing, even with its pid file
// still there.
TEST(ServerReaperTest, DestroyedReaperLeavesEverythingAsItWas) {
  ASSERT_OK_AND_ASSIGN(const std::string dir,
                       MakeServerDir("eventstore_reaper_test_"));
  SpawnOptions spawn;
  spawn.new_session = true;
  ASSERT_OK_AND_ASSIGN(const pid_t sleeper, SpawnProcess({"/bin/sleep", "1000"},
                                                         "/dev/null", spawn));
  const std::string pid_file = dir + "/server.pids";
  ASSERT_OK(WritePidFile(pid_file, {sleeper}));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<ServerReaper> reaper,
                         ServerReaper::Start(dir, {pid_file}));
    EXPECT_FALSE(ProcessGone(reaper->watchdog_pid()));
  }  // Waits for the watchdog to end.

  int wait_status = 0;
  EXPECT_FALSE(ProcessExited(sleeper, &wait_status));
  EXPECT_TRUE(std::filesystem::exists(pid_file));
  kill(sleeper, SIGKILL);
  waitpid(sleeper, &wait_status, 0);
  std::filesystem::remove_all(dir);
}

TEST(ServerReaperTest, WritePidFileWritesOneLineOrRemovesTheFile) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> temp, TempDir::Create());
  const std::string path = temp->File("server.pids");
  ASSERT_OK(WritePidFile(path, {12, 345}));
  EXPECT_EQ(ReadFileBytes(path), "12 345\n");
  ASSERT_OK(WritePidFile(path, {7}));
  EXPECT_EQ(ReadFileBytes(path), "7\n");
  ASSERT_OK(WritePidFile(path, {}));
  EXPECT_FALSE(std::filesystem::exists(path));
  // Already gone: fine.
  EXPECT_OK(WritePidFile(path, {}));
}

}  // namespace
}  // namespace eventstore::test
