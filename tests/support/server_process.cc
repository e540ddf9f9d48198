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
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoError("open(/dev/null)", errno);
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

}  // namespace eventstore::test
