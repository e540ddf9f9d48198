#include "tests/support/rabbitmq_server.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <glob.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/types.h>
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
#include "tests/support/server_process.h"

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

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing ", path));
  return absl::OkStatus();
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

// Signals `pid`'s process group (and `pid`) with `signal`, then SIGKILL
// once `grace` has passed, and reaps it. Bounded in time.
void EndProcess(pid_t pid, int signal, absl::Duration grace) {
  if (pid <= 0) return;
  int wait_status = 0;
  if (ProcessExited(pid, &wait_status)) return;
  kill(-pid, signal);
  kill(pid, signal);
  absl::Time deadline = absl::Now() + grace;
  bool killed = signal == SIGKILL;
  while (true) {
    if (ProcessExited(pid, &wait_status)) return;
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
  ES_ASSIGN_OR_RETURN(std::string dir, MakeServerDir("eventstore_rmq_"));
  // From here on the destructor cleans up.
  std::unique_ptr<RabbitMqServer> server(
      new RabbitMqServer(script, epmd, std::move(dir), options));
  const char* keep = std::getenv(kKeepEnv);
  ES_ASSIGN_OR_RETURN(
      server->reaper_,
      ServerReaper::Start(server->dir_, {server->PidFile()},
                          /*remove_dir=*/keep == nullptr || keep[0] == 0));
  ES_ASSIGN_OR_RETURN(std::vector<int> ports, PickFreeLoopbackPorts(3));
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
  // In a session of its own, so that Terminate() can signal the programs
  // the start script runs.
  SpawnOptions spawn;
  spawn.cwd = dir_;
  spawn.env = Environment();
  spawn.new_session = true;
  const absl::Time deadline = absl::Now() + options_.start_timeout;

  ES_ASSIGN_OR_RETURN(epmd_pid_,
                      SpawnProcess({epmd_, "-port", absl::StrCat(epmd_port_),
                                    "-address", "127.0.0.1"},
                                   output, spawn));
  ES_RETURN_IF_ERROR(WritePidFile(PidFile(), {epmd_pid_}));
  const absl::Time epmd_deadline = absl::Now() + kEpmdTimeout;
  while (!CanConnectToLoopback(epmd_port_)) {
    int wait_status = 0;
    if (ProcessExited(epmd_pid_, &wait_status)) {
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

  absl::StatusOr<pid_t> broker = SpawnProcess({script_}, output, spawn);
  if (!broker.ok()) {
    Terminate(SIGKILL, absl::ZeroDuration());
    return broker.status();
  }
  broker_pid_ = *broker;
  running_ = true;
  ES_RETURN_IF_ERROR(WritePidFile(PidFile(), {broker_pid_, epmd_pid_}));
  while (!CanLogIn(amqp_port_)) {
    int wait_status = 0;
    if (ProcessExited(broker_pid_, &wait_status)) {
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
  WritePidFile(PidFile(), {}).IgnoreError();
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
