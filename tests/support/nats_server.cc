#include "tests/support/nats_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <nats/nats.h>
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
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "eventstore/status_macros.h"

namespace eventstore::test {
namespace {

namespace fs = std::filesystem;

constexpr char kBinaryEnv[] = "EVENTSTORE_NATS_SERVER";
// Attempts at finding a port nobody takes between our probe and the bind.
constexpr int kPortAttempts = 5;
// How long a killed or stopped server may take to be reaped.
constexpr absl::Duration kReapTimeout = absl::Seconds(10);
constexpr absl::Duration kPollInterval = absl::Milliseconds(20);

std::string BaseTempDir() {
  const char* value = std::getenv("TMPDIR");
  if (value != nullptr && value[0] != '\0') return value;
  return "/tmp";
}

std::string ReadFileFrom(const std::string& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in) return "";
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

std::uintmax_t FileSize(const std::string& path) {
  std::error_code error;
  std::uintmax_t size = fs::file_size(path, error);
  return error ? 0 : size;
}

absl::StatusOr<std::string> FindBinary() {
  const char* env = std::getenv(kBinaryEnv);
  if (env != nullptr && env[0] != '\0') {
    if (access(env, X_OK) == 0) return std::string(env);
    return absl::NotFoundError(
        absl::StrCat(kBinaryEnv, "=", env, " is not an executable file"));
  }
  const char* path = std::getenv("PATH");
  if (path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      std::string candidate = absl::StrCat(dir, "/nats-server");
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  if (access("/usr/bin/nats-server", X_OK) == 0) return "/usr/bin/nats-server";
  return absl::NotFoundError(absl::StrCat(
      "no nats-server in $PATH or /usr/bin; install it (on Debian: the "
      "nats-server package, scripts/install-deps) or set ",
      kBinaryEnv));
}

bool IsPlainWord(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
           c == '_';
  });
}

// Writes `message` and errno to stderr and exits: for the forked child,
// where only async-signal-safe calls are allowed.
[[noreturn]] void ChildFail(const char* message) {
  const char kPrefix[] = "nats_server.cc: in the child process, ";
  ssize_t ignored = write(2, kPrefix, sizeof(kPrefix) - 1);
  ignored = write(2, message, std::strlen(message));
  ignored = write(2, " failed\n", 8);
  (void)ignored;
  _exit(127);
}

// Starts `argv` (argv[0] an absolute path, no shell) with stdin from
// /dev/null and stdout and stderr appended to `log_path`; the child is
// killed when this thread's process dies (PR_SET_PDEATHSIG), so that a
// crashed test leaves no server behind.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    return absl::InternalError(
        absl::StrCat("open(/dev/null): ", std::strerror(errno)));
  }
  int out =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) {
    int error = errno;
    close(in);
    return absl::InternalError(
        absl::StrCat("open(", log_path, "): ", std::strerror(error)));
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
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail("prctl");
    if (getppid() != parent) _exit(127);  // the parent died already
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) {
      ChildFail("dup2");
    }
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
    {
      for (int fd = 3; fd < max_fd; ++fd) close(fd);
    }
    execv(args[0], args.data());
    ChildFail("execv");
  }
  int fork_error = errno;
  close(in);
  close(out);
  if (pid < 0) {
    return absl::InternalError(
        absl::StrCat("fork: ", std::strerror(fork_error)));
  }
  return pid;
}

}  // namespace

absl::StatusOr<int> PickFreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  struct sockaddr_in address;
  std::memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)) !=
          0 ||
      getsockname(fd, reinterpret_cast<struct sockaddr*>(&address), &length) !=
          0) {
    int error = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("binding a socket to 127.0.0.1:0: ",
                                            std::strerror(error)));
  }
  close(fd);
  return static_cast<int>(ntohs(address.sin_port));
}

NatsServer::NatsServer(std::string binary, std::string dir,
                       NatsServerOptions options)
    : binary_(std::move(binary)),
      dir_(std::move(dir)),
      store_dir_(dir_ + "/jetstream"),
      config_path_(dir_ + "/nats-server.conf"),
      log_path_(dir_ + "/nats-server.log"),
      options_(std::move(options)),
      owner_pid_(getpid()) {}

absl::StatusOr<std::unique_ptr<NatsServer>> NatsServer::Start(
    const NatsServerOptions& options) {
  if (options.user.empty() != options.password.empty()) {
    return absl::InvalidArgumentError("set both user and password, or neither");
  }
  if (!options.user.empty() &&
      (!IsPlainWord(options.user) || !IsPlainWord(options.password))) {
    return absl::InvalidArgumentError(
        "user and password: letters, digits, '-' and '_' only");
  }
  if (options.max_payload < 0) {
    return absl::InvalidArgumentError("max_payload: is negative");
  }
  ES_ASSIGN_OR_RETURN(std::string binary, FindBinary());
  std::string pattern = absl::StrCat(BaseTempDir(), "/eventstore_nats_XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp(", pattern, "): ", std::strerror(errno)));
  }
  // From here on the destructor removes the directory.
  std::unique_ptr<NatsServer> server(
      new NatsServer(std::move(binary), buffer.data(), options));
  absl::Status status;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    ES_ASSIGN_OR_RETURN(server->port_, PickFreeLoopbackPort());
    ES_RETURN_IF_ERROR(server->WriteConfig());
    bool port_in_use = false;
    status = server->Launch(&port_in_use);
    if (status.ok()) return server;
    if (!port_in_use) break;
  }
  return status;
}

NatsServer::~NatsServer() {
  // A forked child (a death test) must not kill its parent's server.
  if (getpid() != owner_pid_) return;
  Kill().IgnoreError();
  std::error_code error;
  fs::remove_all(dir_, error);
}

std::string NatsServer::url() const {
  return absl::StrCat("nats://127.0.0.1:", port_);
}

std::string NatsServer::url_with_credentials() const {
  if (options_.user.empty()) return url();
  return absl::StrCat("nats://", options_.user, ":", options_.password,
                      "@127.0.0.1:", port_);
}

absl::Status NatsServer::WriteConfig() const {
  std::ostringstream text;
  text << "# Written by eventstore's tests/support/nats_server.cc.\n"
       << "listen: \"127.0.0.1:" << port_ << "\"\n"
       << "server_name: \"eventstore_test_" << port_ << "\"\n";
  if (options_.max_payload > 0) {
    text << "max_payload: " << options_.max_payload << "\n";
  }
  if (!options_.user.empty()) {
    text << "authorization {\n"
         << "  user: \"" << options_.user << "\"\n"
         << "  password: \"" << options_.password << "\"\n"
         << "}\n";
  }
  std::ofstream out(config_path_, std::ios::trunc);
  out << text.str();
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing ", config_path_));
  return absl::OkStatus();
}

bool NatsServer::Exited() {
  if (pid_ <= 0) return true;
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_ || (done < 0 && errno == ECHILD)) {
    pid_ = 0;
    return true;
  }
  return false;
}

absl::Status NatsServer::Launch(bool* port_in_use) {
  *port_in_use = false;
  const std::uintmax_t log_start = FileSize(log_path_);
  std::vector<std::string> argv = {binary_, "-c", config_path_};
  if (options_.jetstream) {
    argv.insert(argv.end(), {"-js", "-sd", store_dir_});
  }
  ES_ASSIGN_OR_RETURN(pid_, Spawn(argv, log_path_));
  absl::Status status = WaitReady(absl::Now() + options_.ready_timeout);
  if (status.ok()) return status;
  Kill().IgnoreError();
  const std::string log = ReadFileFrom(log_path_, log_start);
  *port_in_use = absl::StrContains(log, "address already in use");
  return absl::Status(
      status.code(), absl::StrCat(status.message(), "\n--- tail of ", log_path_,
                                  " ---\n", LogTail(4096)));
}

absl::Status NatsServer::WaitReady(absl::Time deadline) {
  const std::string address = url_with_credentials();
  std::string last_error = "not tried yet";
  while (true) {
    if (Exited()) {
      return absl::InternalError(
          absl::StrCat(binary_, " exited before it was ready on port ", port_));
    }
    // Ready when a client connects and JetStream (when on) answers.
    natsOptions* options = nullptr;
    natsConnection* connection = nullptr;
    natsStatus s = natsOptions_Create(&options);
    if (s == NATS_OK) s = natsOptions_SetURL(options, address.c_str());
    if (s == NATS_OK) s = natsOptions_SetTimeout(options, 1000);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(options, false);
    if (s == NATS_OK) s = natsConnection_Connect(&connection, options);
    jsCtx* js = nullptr;
    jsAccountInfo* info = nullptr;
    if (s == NATS_OK && options_.jetstream) {
      s = natsConnection_JetStream(&js, connection, nullptr);
      if (s == NATS_OK) s = js_GetAccountInfo(&info, js, nullptr, nullptr);
    }
    if (s != NATS_OK) last_error = natsStatus_GetText(s);
    jsAccountInfo_Destroy(info);
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
    natsOptions_Destroy(options);
    if (s == NATS_OK) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(binary_, " was not ready on port ", port_, " within ",
                       absl::FormatDuration(options_.ready_timeout),
                       " (last attempt: ", last_error, ")"));
    }
    absl::SleepFor(kPollInterval);
  }
}

absl::Status NatsServer::Kill() {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGKILL);
  const absl::Time deadline = absl::Now() + kReapTimeout;
  while (!Exited()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "nats-server (pid ", pid_, ") did not die of SIGKILL within ",
          absl::FormatDuration(kReapTimeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::OkStatus();
}

absl::Status NatsServer::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + timeout;
  while (!Exited()) {
    if (absl::Now() > deadline) return Kill();
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::OkStatus();
}

absl::Status NatsServer::StartAgain() {
  if (pid_ > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the NATS server on port ", port_, " is already running"));
  }
  bool port_in_use = false;
  return Launch(&port_in_use);
}

std::string NatsServer::LogTail(std::size_t max_bytes) const {
  const std::uintmax_t size = FileSize(log_path_);
  const std::uintmax_t from = size > max_bytes ? size - max_bytes : 0;
  std::string tail = ReadFileFrom(log_path_, from);
  if (from > 0) {
    const size_t newline = tail.find('\n');
    if (newline != std::string::npos) tail.erase(0, newline + 1);
    tail.insert(0, "[...]\n");
  }
  return tail;
}

namespace {

absl::StatusOr<std::unique_ptr<NatsServer>>* g_shared = nullptr;
std::once_flag g_once;

void StopSharedServer() {
  *g_shared = absl::CancelledError(
      "the shared NATS server was stopped at process exit");
}

}  // namespace

absl::StatusOr<NatsServer*> SharedNatsServer() {
  std::call_once(g_once, [] {
    g_shared = new absl::StatusOr<std::unique_ptr<NatsServer>>(
        NatsServer::Start(NatsServerOptions()));
    if (g_shared->ok()) {
      std::atexit(StopSharedServer);
    } else {
      *g_shared = absl::Status(
          g_shared->status().code(),
          absl::StrCat("the shared NATS server for tests did not start: ",
                       g_shared->status().message()));
    }
  });
  if (!g_shared->ok()) return g_shared->status();
  return g_shared->value().get();
}

}  // namespace eventstore::test
