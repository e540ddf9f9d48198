#include "tests/tools/cli_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace eventstore::test {
namespace {

// The exit code of a waitpid status.
int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CliProcess>> CliProcess::Start(
    const std::vector<std::string>& args,
    const std::map<std::string, std::string>& env) {
  absl::StatusOr<std::unique_ptr<TempDir>> dir = TempDir::Create();
  if (!dir.ok()) return dir.status();
  const std::string out = (*dir)->File("stdout");
  const std::string err = (*dir)->File("stderr");

  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    if (name == "EVENTSTORE_URL" || env.count(name) > 0) continue;
    env_strings.push_back(entry);
  }
  for (const auto& [name, value] : env) {
    env_strings.push_back(absl::StrCat(name, "=", value));
  }
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  std::vector<std::string> argv_strings = {EVENTSTORE_CLI};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                   O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int error =
      posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    return absl::InternalError(
        absl::StrCat("posix_spawn ", argv[0], ": ", std::strerror(error)));
  }
  return std::unique_ptr<CliProcess>(new CliProcess(pid, *std::move(dir)));
}

CliProcess::~CliProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
}

std::string CliProcess::Output() const {
  return ReadWholeFile(dir_->File("stdout"));
}

std::string CliProcess::Errors() const {
  return ReadWholeFile(dir_->File("stderr"));
}

bool CliProcess::WaitForErrors(const std::string& text,
                               absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (absl::StrContains(Errors(), text)) return true;
    // Exited without saying it: no use waiting longer.
    if (pid_ > 0) {
      siginfo_t info = {};
      if (::waitid(P_PID, static_cast<id_t>(pid_), &info,
                   WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid_) {
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::StrContains(Errors(), text);
}

bool CliProcess::WaitForOutput(const std::string& text,
                               absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (absl::StrContains(Output(), text)) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::StrContains(Output(), text);
}

absl::StatusOr<CliResult> CliProcess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("already stopped");
  if (signal != 0) ::kill(pid_, signal);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (done < 0 && errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    if (absl::Now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
      return absl::DeadlineExceededError(absl::StrCat(
          "eventstore did not exit within ", absl::FormatDuration(timeout),
          "; stderr: ", ReadWholeFile(dir_->File("stderr"))));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  pid_ = -1;
  CliResult result;
  result.exit_code = ExitCode(status);
  result.out = ReadWholeFile(dir_->File("stdout"));
  result.err = ReadWholeFile(dir_->File("stderr"));
  return result;
}

CliResult RunCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env,
                 absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<CliProcess>> process =
      CliProcess::Start(args, env);
  if (!process.ok()) {
    CliResult failed;
    failed.err = std::string(process.status().message());
    return failed;
  }
  absl::StatusOr<CliResult> result = (*process)->Stop(0, timeout);
  if (!result.ok()) {
    CliResult failed;
    failed.err = std::string(result.status().message());
    return failed;
  }
  return *result;
}

int RunShell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace eventstore::test
