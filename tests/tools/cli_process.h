// Runs the real `eventstore` binary for the CLI tests: arguments, an
// environment without the caller's EVENTSTORE_URL (plus what the test
// sets), stdout and stderr captured in files of a temporary directory.
//
//   CliResult r = RunCli({"info", url});
//   EXPECT_EQ(r.exit_code, 0) << r.err;
//
//   ASSERT_OK_AND_ASSIGN(auto tail, CliProcess::Start({"tail", url, "-f"}));
//   ASSERT_TRUE(tail->WaitForErrors("following from", absl::Seconds(30)));
//   ...;  // append
//   tail->WaitForOutput("order-9", absl::Seconds(10));
//   ASSERT_OK_AND_ASSIGN(CliResult r, tail->Stop(SIGINT));

#ifndef EVENTSTORE_TESTS_TOOLS_CLI_PROCESS_H_
#define EVENTSTORE_TESTS_TOOLS_CLI_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/temp_dir.h"

namespace eventstore::test {

struct CliResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

// A running `eventstore` process.
class CliProcess {
 public:
  // Starts the binary with `args`; `env` is added to the environment
  // (EVENTSTORE_URL is removed from it unless `env` sets it).
  static absl::StatusOr<std::unique_ptr<CliProcess>> Start(
      const std::vector<std::string>& args,
      const std::map<std::string, std::string>& env = {});
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;
  // Kills the process if it still runs.
  ~CliProcess();

  // What it wrote to stdout so far.
  std::string Output() const;
  // What it wrote to stderr so far.
  std::string Errors() const;
  // True once stdout contains `text`, false after `timeout`.
  bool WaitForOutput(const std::string& text, absl::Duration timeout) const;
  // True once stderr contains `text`, false after `timeout` or when the
  // process exited first (e.g. `tail --follow` saying "following from").
  bool WaitForErrors(const std::string& text, absl::Duration timeout) const;
  // Sends `signal` (0: none) and waits for the exit, at most `timeout`
  // (then kills it and fails).
  absl::StatusOr<CliResult> Stop(int signal,
                                 absl::Duration timeout = absl::Seconds(30));

 private:
  CliProcess(pid_t pid, std::unique_ptr<TempDir> dir)
      : pid_(pid), dir_(std::move(dir)) {}
  pid_t pid_;
  std::unique_ptr<TempDir> dir_;
};

// Runs the binary to its end (at most `timeout`, then kills it).
CliResult RunCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env = {},
                 absl::Duration timeout = absl::Seconds(60));

// Runs a shell command line (for pipes); its exit code, -1 when the shell
// did not exit normally.
int RunShell(const std::string& command);

// The bytes of the file at `path`; empty when it cannot be read.
std::string ReadWholeFile(const std::string& path);

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_TOOLS_CLI_PROCESS_H_
