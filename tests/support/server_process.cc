#include "tests/support/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace eventstore::test {
namespace {

// Writes `message` and errno to stderr and exits: for a forked child,
// where only async-signal-safe calls are allowed.
[[noreturn]] void ChildFail(const char* message) {
  int error = errno;
  char digits[16];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + error % 10);
    error /= 10;
  } while (error > 0 && n < 15);
  const char kPrefix[] = "server_process.cc: in the child process, ";
  ssize_t ignored = write(2, kPrefix, sizeof(kPrefix) - 1);
  ignored = write(2, message, std::strlen(message));
  ignored = write(2, " failed, errno ", 15);
  while (n > 0) ignored = write(2, &digits[--n], 1);
  ignored = write(2, "\n", 1);
  (void)ignored;
  _exit(127);
}

absl::Status ErrnoError(std::string_view what, int error) {
  return absl::InternalError(
      absl::StrCat(std::string(what), ": ", std::strerror(error)));
}

// A socket bound to 127.0.0.1:0, and the port it got; -1 on failure.
int BindLoopbackSocket(int* port, int* error) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno;
    return -1;
  }
  struct sockaddr_in address;
  std::memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)) !=
          0 ||
      getsockname(fd, reinterpret_cast<struct sockaddr*>(&address), &length) !=
          0) {
    *error = errno;
    close(fd);
    return -1;
  }
  *port = ntohs(address.sin_port);
  return fd;
}

}  // namespace

std::string BaseTempDir() {
  const char* value = std::getenv("TMPDIR");
  if (value != nullptr && value[0] != '\0') return value;
  return "/tmp";
}

absl::StatusOr<std::string> MakeServerDir(std::string_view prefix) {
  std::string pattern =
      absl::StrCat(BaseTempDir(), "/", std::string(prefix), "XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return ErrnoError(absl::StrCat("mkdtemp(", pattern, ")"), errno);
  }
  return std::string(buffer.data());
}

std::uintmax_t FileSize(const std::string& path) {
  std::error_code error;
  std::uintmax_t size = std::filesystem::file_size(path, error);
  return error ? 0 : size;
}

std::string ReadFileFrom(const std::string& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in) return "";
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

std::string FileTail(const std::string& path, std::size_t max_bytes) {
  const std::uintmax_t size = FileSize(path);
  const std::uintmax_t from = size > max_bytes ? size - max_bytes : 0;
  std::string tail = ReadFileFrom(path, from);
  if (from > 0) {
    const std::size_t newline = tail.find('\n');
    if (newline != std::string::npos) tail.erase(0, newline + 1);
    tail.insert(0, "[...]\n");
  }
  return tail;
}

absl::StatusOr<int> PickFreeLoopbackPort() {
  absl::StatusOr<std::vector<int>> ports = PickFreeLoopbackPorts(1);
  if (!ports.ok()) return ports.status();
  return ports->front();
}

absl::StatusOr<std::vector<int>> PickFreeLoopbackPorts(int count) {
  std::vector<int> fds;
  std::vector<int> ports;
  int error = 0;
  for (int i = 0; i < count; ++i) {
    int port = 0;
    const int fd = BindLoopbackSocket(&port, &error);
    if (fd < 0) break;
    fds.push_back(fd);
    ports.push_back(port);
  }
  for (const int fd : fds) close(fd);
  if (static_cast<int>(ports.size()) < count) {
    return ErrnoError("binding a socket to 127.0.0.1:0", error);
  }
  return ports;
}

bool CanConnectToLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  struct sockaddr_in address;
  std::memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  const bool connected =
      connect(fd, reinterpret_cast<struct sockaddr*>(&address),
              sizeof(address)) == 0;
  close(fd);
  return connected;
}

absl::StatusOr<pid_t> SpawnProcess(const std::vector<std::string>& argv,
                                   const std::string& output_path,
                                   const SpawnOptions& options) {
  // Everything the child needs is prepared before fork(): after it, in a
  // process that may have other threads, the child may only make
  // async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  std::vector<char*> envp;
  if (options.env.has_value()) {
    for (const std::string& var : *options.env) {
      envp.push_back(const_cast<char*>(var.c_str()));
    }
    envp.push_back(nullptr);
  }
  int in = options.stdin_fd >= 0 ? fcntl(options.stdin_fd, F_DUPFD_CLOEXEC, 3)
                                 : open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    return ErrnoError(
        options.stdin_fd >= 0 ? "fcntl(F_DUPFD_CLOEXEC)" : "open(/dev/null)",
        errno);
  }
  int out = open(output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                 0644);
  if (out < 0) {
    int error = errno;
    close(in);
    return ErrnoError(absl::StrCat("open(", output_path, ")"), error);
  }
  int max_fd = 1024;
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur != RLIM_INFINITY) {
    max_fd = static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 65536));
  }
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid == 0) {
    if (options.die_with_parent) {
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail("prctl");
      if (getppid() != parent) _exit(127);  // the parent died already
    }
    if (options.new_session && setsid() < 0) ChildFail("setsid");
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) {
      ChildFail("dup2");
    }
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
    {
      for (int fd = 3; fd < max_fd; ++fd) close(fd);
    }
    if (options.uid.has_value()) {
      if (setgroups(1, &options.gid) != 0) ChildFail("setgroups");
      if (setgid(options.gid) != 0) ChildFail("setgid");
      if (setuid(*options.uid) != 0) ChildFail("setuid");
    }
    if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) {
      ChildFail("chdir");
    }
    if (options.env.has_value()) {
      execve(args[0], args.data(), envp.data());
    } else {
      execv(args[0], args.data());
    }
    ChildFail("exec");
  }
  int fork_error = errno;
  close(in);
  close(out);
  if (pid < 0) return ErrnoError("fork", fork_error);
  return pid;
}

bool ProcessExited(pid_t pid, int* wait_status) {
  while (true) {
    const pid_t done = waitpid(pid, wait_status, WNOHANG);
    if (done == pid) return true;
    if (done < 0 && errno == EINTR) continue;
    // ECHILD: reaped already.
    return done < 0;
  }
}

std::string DescribeExit(int wait_status) {
  if (WIFEXITED(wait_status)) {
    return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  }
  if (WIFSIGNALED(wait_status)) {
    return absl::StrCat("was killed by signal ", WTERMSIG(wait_status));
  }
  return "ended";
}

namespace {

// The watchdog: $1 the folder, $2 1 to remove it, then the pid files. Any
// byte before the end of its stdin means disarmed.
constexpr char kReaperScript[] = R"sh(
if [ -n "$(cat)" ]; then exit 0; fi
dir=$1; remove=$2; shift 2
for f in "$@"; do
  [ -f "$f" ] || continue
  for p in $(head -n 1 "$f"); do
    case $p in ''|*[!0-9]*) continue;; esac
    kill -KILL -- "-$p" 2>/dev/null
    kill -KILL "$p" 2>/dev/null
    n=0
    while kill -0 "$p" 2>/dev/null && [ $n -lt 100 ]; do
      sleep 0.1
      n=$((n + 1))
    done
  done
done
if [ "$remove" = 1 ]; then rm -rf -- "$dir"; fi
)sh";

}  // namespace

absl::StatusOr<std::unique_ptr<ServerReaper>> ServerReaper::Start(
    const std::string& dir, const std::vector<std::string>& pid_files,
    bool remove_dir) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2", errno);
  std::vector<std::string> argv = {"/bin/sh",     "-c",
                                   kReaperScript, "server-reaper",
                                   dir,           remove_dir ? "1" : "0"};
  argv.insert(argv.end(), pid_files.begin(), pid_files.end());
  SpawnOptions spawn;
  // Out of reach of the signals sent to our process group (a terminal's
  // Ctrl-C, a test runner ending us): it must outlive us.
  spawn.new_session = true;
  spawn.stdin_fd = fds[0];
  absl::StatusOr<pid_t> watchdog = SpawnProcess(argv, "/dev/null", spawn);
  close(fds[0]);
  if (!watchdog.ok()) {
    close(fds[1]);
    return watchdog.status();
  }
  return std::unique_ptr<ServerReaper>(new ServerReaper(*watchdog, fds[1]));
}

ServerReaper::~ServerReaper() {
  if (getpid() != owner_pid_) return;
  const char disarm = 'x';
  ssize_t ignored = write(pipe_fd_, &disarm, 1);
  (void)ignored;
  close(pipe_fd_);
  int wait_status = 0;
  while (waitpid(watchdog_, &wait_status, 0) < 0 && errno == EINTR) {
  }
}

absl::Status WritePidFile(const std::string& path,
                          const std::vector<pid_t>& pids) {
  if (pids.empty()) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError(absl::StrCat("unlink(", path, ")"), errno);
    }
    return absl::OkStatus();
  }
  const std::string temp = path + ".new";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << absl::StrJoin(pids, " ") << "\n";
    if (!out.good()) {
      return absl::InternalError(absl::StrCat("writing ", temp));
    }
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    return ErrnoError(absl::StrCat("rename(", temp, ")"), errno);
  }
  return absl::OkStatus();
}

}  // namespace eventstore::test
