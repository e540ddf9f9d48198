#include "tests/support/rabbitmq_server.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/status_macros.h"

extern char** environ;

namespace eventstore::test {
namespace {

namespace fs = std::filesystem;

constexpr char kScriptEnv[] = "EVENTSTORE_RABBITMQ_SERVER";
constexpr char kKeepEnv[] = "EVENTSTORE_TEST_KEEP_RABBITMQ_DIR";
constexpr char kDefaultScript[] = "/usr/lib/rabbitmq/bin/rabbitmq-server";
constexpr char kConsoleLog[] = "console.log";
constexpr absl::Duration kEpmdTimeout = absl::Seconds(30);
constexpr absl::Duration kStopGrace = absl::Seconds(60);
constexpr absl::Duration kReapTimeout = absl::Seconds(20);

// --- files ------------------------------------------------------------------

std::uintmax_t FileSize(const std::string& path) {
  std::error_code error;
  std::uintmax_t size = fs::file_size(path, error);
  return error ? 0 : size;
}

// The last `max_bytes` of the file at `path`, cut at a line start.
std::string FileTail(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(none)";
  const std::uintmax_t size = FileSize(path);
  if (size > max_bytes) in.seekg(static_cast<std::streamoff>(size - max_bytes));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (size > max_bytes) {
    const std::size_t newline = text.find('\n');
    if (newline != std::string::npos) text = text.substr(newline + 1);
    text = absl::StrCat("[...]\n", text);
  }
  return text;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing ", path));
  return absl::OkStatus();
}

std::string BaseTempDir() {
  const char* value = std::getenv("TMPDIR");
  if (value != nullptr && value[0] != '\0') return value;
  return "/tmp";
}

// --- locating the programs --------------------------------------------------

bool IsExecutable(const std::string& path) {
  return access(path.c_str(), X_OK) == 0;
}

absl::StatusOr<std::string> FindScript() {
  const char* env = std::getenv(kScriptEnv);
  if (env != nullptr && env[0] != '\0') {
    if (IsExecutable(env)) return std::string(env);
    return absl::NotFoundError(
        absl::StrCat(kScriptEnv, "=", env, " is not an executable file"));
  }
  if (IsExecutable(kDefaultScript)) return std::string(kDefaultScript);
  glob_t found;
  std::string newest;
  if (glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server", 0,
           nullptr, &found) == 0) {
    for (size_t i = 0; i < found.gl_pathc; ++i) {
      // Versions of one major sort well enough as text for a fallback.
      if (IsExecutable(found.gl_pathv[i])) newest = found.gl_pathv[i];
    }
  }
  globfree(&found);
  if (!newest.empty()) return newest;
  return absl::NotFoundError(absl::StrCat(
      "no rabbitmq-server start script in ", kDefaultScript,
      " or /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin; install the "
      "rabbitmq-server package or set ",
      kScriptEnv));
}

absl::StatusOr<std::string> FindEpmd() {
  std::vector<std::string> candidates;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      if (!dir.empty()) candidates.push_back(dir + "/epmd");
    }
  }
  candidates.push_back("/usr/bin/epmd");
  candidates.push_back("/usr/lib/erlang/bin/epmd");
  for (const std::string& candidate : candidates) {
    if (IsExecutable(candidate)) return candidate;
  }
  return absl::NotFoundError(
      "no epmd in $PATH, /usr/bin or /usr/lib/erlang/bin; install Erlang "
      "(Debian: erlang-base, which rabbitmq-server depends on)");
}

// --- ports ------------------------------------------------------------------

// `count` distinct ports on 127.0.0.1 that were free a moment ago: each is
// held until all are picked, so none is picked twice.
absl::StatusOr<std::vector<int>> PickFreePorts(int count) {
  std::vector<int> fds;
  std::vector<int> ports;
  absl::Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
      break;
    }
    fds.push_back(fd);
    struct sockaddr_in address;
    std::memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (bind(fd, reinterpret_cast<struct sockaddr*>(&address),
             sizeof(address)) != 0 ||
        getsockname(fd, reinterpret_cast<struct sockaddr*>(&address),
                    &length) != 0) {
      status = absl::InternalError(
          absl::StrCat("binding a socket to 127.0.0.1:0: ", strerror(errno)));
      break;
    }
    ports.push_back(ntohs(address.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}

bool CanConnect(int port) {
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

// Whether an AMQP login as guest works: the broker is ready.
bool CanLogIn(int port) {
  amqp_connection_state_t conn = amqp_new_connection();
  if (conn == nullptr) return false;
  bool ok = false;
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  struct timeval timeout = {2, 0};
  if (socket != nullptr &&
      amqp_socket_open_noblock(socket, "127.0.0.1", port, &timeout) ==
          AMQP_STATUS_OK) {
    amqp_set_handshake_timeout(conn, &timeout);
    amqp_set_rpc_timeout(conn, &timeout);
    amqp_rpc_reply_t reply = amqp_login(
        conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      amqp_channel_open(conn, 1);
      ok = amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL;
      amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
  }
  amqp_destroy_connection(conn);
  return ok;
}

// --- processes --------------------------------------------------------------

// Writes `message` and errno to stderr and exits: for a forked child, where
// only async-signal-safe calls are allowed.
[[noreturn]] void ChildFail(const char* message) {
  int error = errno;
  char digits[16];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + error % 10);
    error /= 10;
  } while (error > 0 && n < 15);
  const char kPrefix[] = "rabbitmq_server.cc: in the child process, ";
  ssize_t ignored = write(2, kPrefix, sizeof(kPrefix) - 1);
  ignored = write(2, message, std::strlen(message));
  ignored = write(2, " failed, errno ", 15);
  while (n > 0) ignored = write(2, &digits[--n], 1);
  ignored = write(2, "\n", 1);
  (void)ignored;
  _exit(127);
}

// Starts `argv` (argv[0] an absolute path) with environment `env` in `cwd`,
// in a session of its own, stdin from /dev/null, stdout and stderr appended
// to `output_path`. Does not wait.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env,
                            const std::string& cwd,
                            const std::string& output_path) {
  // Everything the child needs is prepared before fork(): after it, in a
  // process that may have other threads, the child may only make
  // async-signal-safe calls.
  std::vector<char*> args;
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& var : env) {
    envp.push_back(const_cast<char*>(var.c_str()));
  }
  envp.push_back(nullptr);
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    return absl::InternalError(
        absl::StrCat("open(/dev/null): ", strerror(errno)));
  }
  int out = open(output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                 0644);
  if (out < 0) {
    int error = errno;
    close(in);
    return absl::InternalError(
        absl::StrCat("open(", output_path, "): ", strerror(error)));
  }
  int max_fd = 1024;
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
      limit.rlim_cur != RLIM_INFINITY) {
    max_fd = static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 65536));
  }

  pid_t pid = fork();
  if (pid == 0) {
    // Its own session: ctest's or a terminal's signals are not its, and
    // Kill() can signal the whole group.
    if (setsid() < 0) ChildFail("setsid");
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) {
      ChildFail("dup2");
    }
    // No descriptor of ours (sockets, ctest's pipes) may live on in it.
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
    {
      for (int fd = 3; fd < max_fd; ++fd) close(fd);
    }
    if (chdir(cwd.c_str()) != 0) ChildFail("chdir");
    execve(args[0], args.data(), envp.data());
    ChildFail("execve");
  }
  int fork_error = errno;
  close(in);
  close(out);
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", strerror(fork_error)));
  }
  return pid;
}

// Whether `pid`, a child of ours, has exited (and is reaped now).
bool Exited(pid_t pid, int* wait_status) {
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

// Signals `pid`'s process group (and `pid`) with `signal`, then SIGKILL
// once `grace` has passed, and reaps it. Bounded in time.
void EndProcess(pid_t pid, int signal, absl::Duration grace) {
  if (pid <= 0) return;
  int wait_status = 0;
  if (Exited(pid, &wait_status)) return;
  kill(-pid, signal);
  kill(pid, signal);
  absl::Time deadline = absl::Now() + grace;
  bool killed = signal == SIGKILL;
  while (true) {
    if (Exited(pid, &wait_status)) return;
    const absl::Time now = absl::Now();
    if (!killed && now > deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      killed = true;
      deadline = now + kReapTimeout;
    } else if (killed && now > deadline) {
      return;  // Stuck in the kernel: give up on it.
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace

// --- RabbitMqServer ---------------------------------------------------------

RabbitMqServer::RabbitMqServer(std::string script, std::string epmd,
                               std::string dir, RabbitMqServerOptions options)
    : script_(std::move(script)),
      epmd_(std::move(epmd)),
      dir_(std::move(dir)),
      options_(std::move(options)),
      owner_pid_(getpid()) {}

absl::StatusOr<std::unique_ptr<RabbitMqServer>> RabbitMqServer::Start(
    const RabbitMqServerOptions& options) {
  if (options.max_message_size < 0) {
    return absl::InvalidArgumentError("max_message_size: negative");
  }
  ES_ASSIGN_OR_RETURN(std::string script, FindScript());
  ES_ASSIGN_OR_RETURN(std::string epmd, FindEpmd());
  std::string pattern = absl::StrCat(BaseTempDir(), "/eventstore_rmq_XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp(", pattern, "): ", strerror(errno)));
  }
  // From here on the destructor cleans up.
  std::unique_ptr<RabbitMqServer> server(
      new RabbitMqServer(script, epmd, buffer.data(), options));
  ES_ASSIGN_OR_RETURN(std::vector<int> ports, PickFreePorts(3));
  server->amqp_port_ = ports[0];
  server->dist_port_ = ports[1];
  server->epmd_port_ = ports[2];
  server->node_name_ =
      absl::StrCat("eventstore_test_", server->amqp_port_, "@localhost");
  ES_RETURN_IF_ERROR(server->WriteFiles());
  ES_RETURN_IF_ERROR(server->Launch());
  return server;
}

RabbitMqServer::~RabbitMqServer() {
  // A forked child (a death test) that exits normally must not kill its
  // parent's broker.
  if (getpid() != owner_pid_) return;
  Terminate(SIGKILL, absl::ZeroDuration());
  if (const char* keep = std::getenv(kKeepEnv); keep != nullptr && keep[0]) {
    std::fprintf(stderr, "rabbitmq_server.cc: %s is set: kept %s\n", kKeepEnv,
                 dir_.c_str());
    return;
  }
  std::error_code error;
  fs::remove_all(dir_, error);
}

std::string RabbitMqServer::url() const {
  return absl::StrCat("amqp://guest:guest@127.0.0.1:", amqp_port_);
}

absl::Status RabbitMqServer::Kill() {
  Terminate(SIGKILL, absl::ZeroDuration());
  return absl::OkStatus();
}

absl::Status RabbitMqServer::Stop() {
  Terminate(SIGTERM, kStopGrace);
  return absl::OkStatus();
}

absl::Status RabbitMqServer::StartAgain() {
  if (running_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the RabbitMQ broker on port ", amqp_port_, " is already running"));
  }
  return Launch();
}

std::string RabbitMqServer::LogTail(std::size_t max_bytes) const {
  return absl::StrCat(
      "--- ", dir_, "/", kConsoleLog, " ---\n",
      FileTail(absl::StrCat(dir_, "/", kConsoleLog), max_bytes), "\n--- ", dir_,
      "/log/rabbit.log ---\n",
      FileTail(absl::StrCat(dir_, "/log/rabbit.log"), max_bytes));
}

absl::Status RabbitMqServer::WriteFiles() {
  for (const char* sub : {"home", "mnesia", "log"}) {
    std::error_code error;
    fs::create_directories(absl::StrCat(dir_, "/", sub), error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("creating ", dir_, "/", sub, ": ", error.message()));
    }
  }
  std::ostringstream conf;
  conf << "# Written by eventstore's tests/support/rabbitmq_server.cc.\n"
       << "listeners.tcp.1 = 127.0.0.1:" << amqp_port_
       << "\n"
       // A test machine's disk may be fuller than RabbitMQ's 50 MB default
       // allows, which would block every publisher.
       << "disk_free_limit.absolute = 1MB\n";
  if (options_.max_message_size > 0) {
    conf << "max_message_size = " << options_.max_message_size << "\n";
  }
  for (const std::string& line : options_.extra_config) conf << line << "\n";
  ES_RETURN_IF_ERROR(WriteFile(dir_ + "/rabbitmq.conf", conf.str()));
  ES_RETURN_IF_ERROR(WriteFile(dir_ + "/enabled_plugins", "[].\n"));
  ES_RETURN_IF_ERROR(WriteFile(dir_ + "/rabbitmq-env.conf", ""));
  return absl::OkStatus();
}

std::vector<std::string> RabbitMqServer::Environment() const {
  std::vector<std::string> env;
  for (char** var = environ; *var != nullptr; ++var) {
    const absl::string_view entry(*var);
    // Nothing of a system broker's or an Erlang setup's may leak in.
    if (absl::StartsWith(entry, "RABBITMQ_") ||
        absl::StartsWith(entry, "ERL_") || absl::StartsWith(entry, "HOME=") ||
        absl::StartsWith(entry, "NOTIFY_SOCKET=")) {
      continue;
    }
    env.emplace_back(entry);
  }
  const std::string d = dir_;
  for (std::string var : {
           absl::StrCat("HOME=", d, "/home"),
           absl::StrCat("RABBITMQ_NODENAME=", node_name_),
           std::string("RABBITMQ_NODE_IP_ADDRESS=127.0.0.1"),
           absl::StrCat("RABBITMQ_NODE_PORT=", amqp_port_),
           absl::StrCat("RABBITMQ_DIST_PORT=", dist_port_),
           absl::StrCat("ERL_EPMD_PORT=", epmd_port_),
           std::string("ERL_EPMD_ADDRESS=127.0.0.1"),
           absl::StrCat("RABBITMQ_MNESIA_BASE=", d, "/mnesia"),
           absl::StrCat("RABBITMQ_LOG_BASE=", d, "/log"),
           absl::StrCat("RABBITMQ_LOGS=", d, "/log/rabbit.log"),
           absl::StrCat("RABBITMQ_CONFIG_FILE=", d, "/rabbitmq.conf"),
           absl::StrCat("RABBITMQ_ADVANCED_CONFIG_FILE=", d,
                        "/advanced.config"),
           absl::StrCat("RABBITMQ_ENABLED_PLUGINS_FILE=", d,
                        "/enabled_plugins"),
           absl::StrCat("RABBITMQ_CONF_ENV_FILE=", d, "/rabbitmq-env.conf"),
           absl::StrCat("RABBITMQ_PID_FILE=", d, "/rabbit.pid"),
           // The script then execs the VM (see the header).
           std::string("RABBITMQ_ALLOW_INPUT=1"),
           std::string("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-noinput -kernel "
                       "inet_dist_use_interface {127,0,0,1}"),
       }) {
    env.push_back(std::move(var));
  }
  return env;
}

absl::Status RabbitMqServer::Launch() {
  const std::string output = absl::StrCat(dir_, "/", kConsoleLog);
  const std::vector<std::string> env = Environment();
  const absl::Time deadline = absl::Now() + options_.start_timeout;

  ES_ASSIGN_OR_RETURN(
      epmd_pid_,
      Spawn({epmd_, "-port", absl::StrCat(epmd_port_), "-address", "127.0.0.1"},
            env, dir_, output));
  const absl::Time epmd_deadline = absl::Now() + kEpmdTimeout;
  while (!CanConnect(epmd_port_)) {
    int wait_status = 0;
    if (Exited(epmd_pid_, &wait_status)) {
      epmd_pid_ = 0;
      return ErrorWithLog(absl::StatusCode::kInternal,
                          absl::StrCat("epmd on port ", epmd_port_, " ",
                                       DescribeExit(wait_status)));
    }
    if (absl::Now() > epmd_deadline) {
      Terminate(SIGKILL, absl::ZeroDuration());
      return ErrorWithLog(
          absl::StatusCode::kDeadlineExceeded,
          absl::StrCat("epmd did not listen on port ", epmd_port_, " within ",
                       absl::FormatDuration(kEpmdTimeout)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }

  absl::StatusOr<pid_t> broker = Spawn({script_}, env, dir_, output);
  if (!broker.ok()) {
    Terminate(SIGKILL, absl::ZeroDuration());
    return broker.status();
  }
  broker_pid_ = *broker;
  running_ = true;
  while (!CanLogIn(amqp_port_)) {
    int wait_status = 0;
    if (Exited(broker_pid_, &wait_status)) {
      broker_pid_ = 0;
      Terminate(SIGKILL, absl::ZeroDuration());
      return ErrorWithLog(
          absl::StatusCode::kInternal,
          absl::StrCat(script_, " (node ", node_name_, ", port ", amqp_port_,
                       ") ", DescribeExit(wait_status),
                       " before it was ready"));
    }
    if (absl::Now() > deadline) {
      Terminate(SIGKILL, absl::ZeroDuration());
      return ErrorWithLog(
          absl::StatusCode::kDeadlineExceeded,
          absl::StrCat("RabbitMQ (node ", node_name_, ", port ", amqp_port_,
                       ") took no login within ",
                       absl::FormatDuration(options_.start_timeout)));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::OkStatus();
}

void RabbitMqServer::Terminate(int signal, absl::Duration grace) {
  EndProcess(broker_pid_, signal, grace);
  broker_pid_ = 0;
  EndProcess(epmd_pid_, signal == SIGKILL ? SIGKILL : SIGTERM,
             absl::Seconds(5));
  epmd_pid_ = 0;
  running_ = false;
}

absl::Status RabbitMqServer::ErrorWithLog(absl::StatusCode code,
                                          const std::string& what) const {
  return absl::Status(code, absl::StrCat(what, "\n", LogTail(4096)));
}

// --- the shared server ------------------------------------------------------

namespace {

absl::StatusOr<std::unique_ptr<RabbitMqServer>>* g_shared = nullptr;
std::once_flag g_once;

void StopSharedServer() {
  *g_shared =
      absl::CancelledError("the shared RabbitMQ broker was stopped at exit");
}

}  // namespace

absl::StatusOr<RabbitMqServer*> SharedRabbitMqServer() {
  std::call_once(g_once, [] {
    g_shared = new absl::StatusOr<std::unique_ptr<RabbitMqServer>>(
        RabbitMqServer::Start(RabbitMqServerOptions()));
    if (g_shared->ok()) {
      std::atexit(StopSharedServer);
    } else {
      *g_shared = absl::Status(
          g_shared->status().code(),
          absl::StrCat("the shared RabbitMQ broker for tests did not start: ",
                       g_shared->status().message()));
    }
  });
  if (!g_shared->ok()) return g_shared->status();
  return g_shared->value().get();
}

}  // namespace eventstore::test
