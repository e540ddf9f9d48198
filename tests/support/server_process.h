// What the test harnesses of external servers (postgres_server.h,
// nats_server.h, rabbitmq_server.h) share: a temp folder per server, free
// loopback ports, starting a server process with its output in a log
// file, watching it end, and reading the end of its log for a failure
// message.
//
//   ES_ASSIGN_OR_RETURN(std::string dir, MakeServerDir("eventstore_x_"));
//   ES_ASSIGN_OR_RETURN(int port, PickFreeLoopbackPort());
//   SpawnOptions spawn;
//   spawn.die_with_parent = true;
//   ES_ASSIGN_OR_RETURN(pid_t pid,
//                       SpawnProcess({binary, "--port", ...}, dir + "/log",
//                                    spawn));
//   ... on failure: FileTail(dir + "/log", 4096)

#ifndef EVENTSTORE_TESTS_SUPPORT_SERVER_PROCESS_H_
#define EVENTSTORE_TESTS_SUPPORT_SERVER_PROCESS_H_

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace eventstore::test {

// $TMPDIR, or /tmp.
std::string BaseTempDir();

// Creates a new folder BaseTempDir()/<prefix>XXXXXX (mkdtemp) and returns
// its path; the caller removes it.
absl::StatusOr<std::string> MakeServerDir(std::string_view prefix);

// The size of the file at `path`; 0 when it cannot be read.
std::uintmax_t FileSize(const std::string& path);

// The contents of `path` from byte `offset` on; empty when unreadable.
std::string ReadFileFrom(const std::string& path, std::uintmax_t offset);

// The last `max_bytes` of the file at `path`, cut at a line start and
// marked "[...]" when cut; empty when unreadable.
std::string FileTail(const std::string& path, std::size_t max_bytes);

// A port on 127.0.0.1 that was free a moment ago (nothing listens on it).
absl::StatusOr<int> PickFreeLoopbackPort();

// `count` distinct such ports: each is held until all are picked, so that
// none is picked twice.
absl::StatusOr<std::vector<int>> PickFreeLoopbackPorts(int count);

// Whether a TCP connection to 127.0.0.1:`port` is accepted.
bool CanConnectToLoopback(int port);

struct SpawnOptions {
  // The child's working folder; empty: ours.
  std::string cwd;
  // The child's whole environment ("NAME=value"); nullopt: ours.
  std::optional<std::vector<std::string>> env;
  // In a session of its own: a terminal's or ctest's signals are not its,
  // and kill(-pid) reaches the programs it starts.
  bool new_session = false;
  // Killed (SIGKILL) when the thread that spawned it ends with its
  // process, so that a crashed test leaves no server behind.
  bool die_with_parent = false;
  // Run as this user and group (needs root); nullopt: as we are.
  std::optional<uid_t> uid;
  gid_t gid = 0;
  // The child's stdin, when not -1; else /dev/null. The caller keeps its
  // descriptor and closes it.
  int stdin_fd = -1;
};

// Starts `argv` (argv[0] an absolute path, no shell) with stdin from
// /dev/null (or options.stdin_fd) and stdout and stderr appended to
// `output_path`. Does not wait. None of our descriptors (sockets, ctest's
// pipes) lives on in it.
absl::StatusOr<pid_t> SpawnProcess(const std::vector<std::string>& argv,
                                   const std::string& output_path,
                                   const SpawnOptions& options = {});

// Whether `pid`, a child of ours, has exited (it is reaped now, and
// `wait_status` holds how it ended when we reaped it).
bool ProcessExited(pid_t pid, int* wait_status);

// "exited with status N", "was killed by signal N".
std::string DescribeExit(int wait_status);

// Cleans up after a server harness whose process ends without running the
// harness's destructor: killed (SIGKILL, ctest's timeout), crashed, or
// ended with exit() (a benchmark's fatal error). A watchdog, /bin/sh in a
// session of its own, learns that this process ended when the write end
// of a pipe that only this process holds is closed. It then sends SIGKILL
// to each pid on the first line of each of `pid_files` (space-separated)
// and to its process group, waits a few seconds for them to go, and
// removes `dir` (when `remove_dir`).
//
// Destroying the reaper, in the process that started it, disarms it: the
// harness has cleaned up itself, and the watchdog ends without doing
// anything. In a forked child (a death test) the destructor does nothing.
//
//   ES_ASSIGN_OR_RETURN(reaper_, ServerReaper::Start(dir, {dir + "/pids"}));
//   ... after each start: WritePidFile(dir + "/pids", {pid});
class ServerReaper {
 public:
  static absl::StatusOr<std::unique_ptr<ServerReaper>> Start(
      const std::string& dir, const std::vector<std::string>& pid_files,
      bool remove_dir = true);
  ~ServerReaper();
  ServerReaper(const ServerReaper&) = delete;
  ServerReaper& operator=(const ServerReaper&) = delete;

  pid_t watchdog_pid() const { return watchdog_; }

 private:
  ServerReaper(pid_t watchdog, int pipe_fd)
      : watchdog_(watchdog), pipe_fd_(pipe_fd), owner_pid_(getpid()) {}

  const pid_t watchdog_;
  const int pipe_fd_;
  const pid_t owner_pid_;
};

// Replaces the file at `path` with `pids` on one line, space-separated
// (for ServerReaper), or removes it when `pids` is empty.
absl::Status WritePidFile(const std::string& path,
                          const std::vector<pid_t>& pids);

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_SERVER_PROCESS_H_
