#include "tests/support/nats_server.h"

#include <nats/nats.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
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
#include "tests/support/server_process.h"

namespace eventstore::test {
namespace {

namespace fs = std::filesystem;

constexpr char kBinaryEnv[] = "EVENTSTORE_NATS_SERVER";
// Attempts at finding a port nobody takes between our probe and the bind.
constexpr int kPortAttempts = 5;
// How long a killed or stopped server may take to be reaped.
constexpr absl::Duration kReapTimeout = absl::Seconds(10);
constexpr absl::Duration kPollInterval = absl::Milliseconds(20);

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

}  // namespace

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
  ES_ASSIGN_OR_RETURN(std::string dir, MakeServerDir("eventstore_nats_"));
  // From here on the destructor removes the directory.
  std::unique_ptr<NatsServer> server(
      new NatsServer(std::move(binary), std::move(dir), options));
  ES_ASSIGN_OR_RETURN(server->reaper_,
                      ServerReaper::Start(server->dir_, {server->PidFile()}));
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
  if (!ProcessExited(pid_, &status)) return false;
  pid_ = 0;
  WritePidFile(PidFile(), {}).IgnoreError();
  return true;
}

absl::Status NatsServer::Launch(bool* port_in_use) {
  *port_in_use = false;
  const std::uintmax_t log_start = FileSize(log_path_);
  std::vector<std::string> argv = {binary_, "-c", config_path_};
  if (options_.jetstream) {
    argv.insert(argv.end(), {"-js", "-sd", store_dir_});
  }
  SpawnOptions spawn;
  spawn.die_with_parent = true;
  ES_ASSIGN_OR_RETURN(pid_, SpawnProcess(argv, log_path_, spawn));
  ES_RETURN_IF_ERROR(WritePidFile(PidFile(), {pid_}));
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
  return FileTail(log_path_, max_bytes);
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
