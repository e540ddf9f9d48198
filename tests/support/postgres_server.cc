#include "tests/support/postgres_server.h"

#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/status_macros.h"
#include "libpq-fe.h"
#include "tests/support/server_process.h"

namespace eventstore::test {
namespace {

namespace fs = std::filesystem;

// Debian's Abseil has its own absl::string_view, which StrCat takes and
// std::string_view does not convert to.
absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

constexpr char kBindirEnv[] = "EVENTSTORE_PG_BINDIR";
constexpr char kUrlEnv[] = "EVENTSTORE_TEST_PG_URL";
constexpr char kSettingsFile[] = "eventstore_test.conf";
// Seconds pg_ctl may wait for the server to start or stop; our own limit
// on the pg_ctl process is this plus a margin.
constexpr int kStartTimeoutSeconds = 60;
constexpr int kStopTimeoutSeconds = 60;
constexpr int kImmediateStopTimeoutSeconds = 30;
constexpr int kInitDbTimeoutSeconds = 180;
constexpr int kToolMarginSeconds = 30;
// Attempts at finding a port nobody takes between our probe and the bind.
constexpr int kPortAttempts = 5;

// --- files ------------------------------------------------------------------

// The last `max_bytes` of `text`, cut at a line start.
std::string Tail(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  text = text.substr(text.size() - max_bytes);
  std::size_t newline = text.find('\n');
  if (newline != std::string_view::npos) text = text.substr(newline + 1);
  return absl::StrCat("[...]\n", ToAbsl(text));
}

// --- locating the server binaries -------------------------------------------

bool HasServerTools(const std::string& dir) {
  for (const char* tool : {"initdb", "pg_ctl", "postgres"}) {
    if (access(absl::StrCat(dir, "/", tool).c_str(), X_OK) != 0) return false;
  }
  return true;
}

// "15" -> {15}, "9.6" -> {9, 6}; empty when not a version.
std::vector<int> ParseVersion(absl::string_view name) {
  std::vector<int> parts;
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    int value = 0;
    if (!absl::SimpleAtoi(part, &value)) return {};
    parts.push_back(value);
  }
  return parts;
}

absl::StatusOr<std::string> FindBindir() {
  const char* env = std::getenv(kBindirEnv);
  if (env != nullptr && env[0] != '\0') {
    if (HasServerTools(env)) return std::string(env);
    return absl::NotFoundError(
        absl::StrCat(kBindirEnv, "=", env,
                     " does not hold executable initdb, pg_ctl and postgres"));
  }
  std::vector<std::pair<std::vector<int>, std::string>> versions;
  std::error_code error;
  for (fs::directory_iterator it("/usr/lib/postgresql", error), end;
       !error && it != end; it.increment(error)) {
    std::vector<int> version = ParseVersion(it->path().filename().string());
    std::string bindir = (it->path() / "bin").string();
    if (!version.empty() && HasServerTools(bindir)) {
      versions.emplace_back(std::move(version), std::move(bindir));
    }
  }
  if (!versions.empty()) {
    return std::max_element(versions.begin(), versions.end())->second;
  }
  const char* path = std::getenv("PATH");
  if (path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      if (HasServerTools(std::string(dir))) return std::string(dir);
    }
  }
  return absl::NotFoundError(absl::StrCat(
      "no PostgreSQL server binaries (initdb, pg_ctl, postgres) in "
      "/usr/lib/postgresql/*/bin or $PATH; install the server package (on "
      "Debian: postgresql-15) or set ",
      kBindirEnv));
}

// --- processes --------------------------------------------------------------

struct RunAs {
  bool switch_user;
  uid_t uid;
  gid_t gid;
};

// Runs `argv` (argv[0] an absolute path, no shell) in `cwd` as `run_as`,
// stdin from /dev/null, stdout and stderr appended to `output_path`, and
// waits at most `timeout`, killing it after that. Returns its exit code
// (128 + N when killed by signal N).
absl::StatusOr<int> RunProcess(const std::vector<std::string>& argv,
                               const std::string& cwd,
                               const std::string& output_path,
                               const RunAs& run_as, absl::Duration timeout) {
  SpawnOptions spawn;
  spawn.cwd = cwd;
  if (run_as.switch_user) {
    spawn.uid = run_as.uid;
    spawn.gid = run_as.gid;
  }
  ES_ASSIGN_OR_RETURN(const pid_t pid, SpawnProcess(argv, output_path, spawn));

  const absl::Time deadline = absl::Now() + timeout;
  bool killed = false;
  while (true) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      if (killed) {
        return absl::DeadlineExceededError(
            absl::StrCat(argv[0], " did not finish within ",
                         absl::FormatDuration(timeout), " and was killed"));
      }
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return 255;
    }
    if (done < 0 && errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("waitpid(", argv[0], "): ", std::strerror(errno)));
    }
    const absl::Time now = absl::Now();
    if (!killed && now > deadline) {
      kill(pid, SIGKILL);
      killed = true;
    } else if (killed && now > deadline + absl::Seconds(10)) {
      // Not even SIGKILL ends it (stuck in the kernel): give up on it.
      return absl::DeadlineExceededError(absl::StrCat(
          argv[0], " did not finish within ", absl::FormatDuration(timeout),
          " and could not be killed"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

std::string ConfString(std::string_view value) {
  std::string quoted = "'";
  for (char c : value) {
    switch (c) {
      case '\'':
        quoted += "''";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\r':
        quoted += "\\r";
        break;
      default:
        quoted += c;
    }
  }
  quoted += "'";
  return quoted;
}

// A setting name as postgres -c takes it: letters, digits, '_' and, for
// extensions' settings, '.'.
bool IsSettingName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
}

bool IsDatabaseName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!(name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z'))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

absl::Status ValidateOptions(const PostgresServerOptions& options) {
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_connections must be positive, not ", options.max_connections));
  }
  for (const std::string& setting : options.extra_settings) {
    std::size_t equals = setting.find('=');
    if (equals == std::string::npos ||
        !IsSettingName(std::string_view(setting).substr(0, equals))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "extra setting \"", setting, "\" is not of the form name=value"));
    }
  }
  return absl::OkStatus();
}

// Reads the postmaster's pid from `data_dir`/postmaster.pid; 0 when there
// is none or it is not a running postgres process.
pid_t RunningPostmaster(const std::string& data_dir) {
  std::ifstream in(data_dir + "/postmaster.pid");
  std::string line;
  int pid = 0;
  if (!std::getline(in, line) || !absl::SimpleAtoi(line, &pid) || pid <= 0) {
    return 0;
  }
  // Guard against a stale file whose pid was reused.
  std::ifstream comm(absl::StrCat("/proc/", pid, "/comm"));
  std::string name;
  if (!std::getline(comm, name) || name.rfind("postgres", 0) != 0) return 0;
  return static_cast<pid_t>(pid);
}

// --- libpq ------------------------------------------------------------------

struct PGconnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PGresultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};

}  // namespace

// --- PostgresServer ---------------------------------------------------------

PostgresServer::PostgresServer(std::string bindir, std::string dir,
                               uid_t run_uid, gid_t run_gid, bool switch_user)
    : bindir_(std::move(bindir)),
      dir_(std::move(dir)),
      data_dir_(dir_ + "/data"),
      log_path_(dir_ + "/server.log"),
      run_uid_(run_uid),
      run_gid_(run_gid),
      switch_user_(switch_user),
      owner_pid_(getpid()) {}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(
    const PostgresServerOptions& options) {
  ES_RETURN_IF_ERROR(ValidateOptions(options));
  ES_ASSIGN_OR_RETURN(std::string bindir, FindBindir());

  uid_t uid = geteuid();
  gid_t gid = getegid();
  const bool switch_user = uid == 0;
  if (switch_user) {
    struct passwd entry;
    struct passwd* user = nullptr;
    std::vector<char> strings(16384);
    if (getpwnam_r("postgres", &entry, strings.data(), strings.size(), &user) !=
            0 ||
        user == nullptr) {
      return absl::FailedPreconditionError(
          "this process runs as root, which PostgreSQL refuses, and there is "
          "no system user \"postgres\" to run the server as instead (Debian's "
          "postgresql package creates one); add that user or run the tests "
          "as a non-root user");
    }
    uid = user->pw_uid;
    gid = user->pw_gid;
  }

  ES_ASSIGN_OR_RETURN(std::string dir, MakeServerDir("eventstore_pg_"));
  // From here on the destructor removes the directory.
  std::unique_ptr<PostgresServer> server(
      new PostgresServer(bindir, std::move(dir), uid, gid, switch_user));
  if (switch_user && chown(server->dir_.c_str(), uid, gid) != 0) {
    return absl::InternalError(absl::StrCat(
        "chown(", server->dir_, ", postgres): ", std::strerror(errno)));
  }
  ES_ASSIGN_OR_RETURN(server->reaper_,
                      ServerReaper::Start(server->dir_, {server->data_dir_ +
                                                         "/postmaster.pid"}));

  ES_RETURN_IF_ERROR(server->InitDb());
  absl::Status status;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    ES_ASSIGN_OR_RETURN(server->port_, PickFreeLoopbackPort());
    ES_RETURN_IF_ERROR(server->WriteSettings(options));
    bool port_in_use = false;
    status = server->StartServer(&port_in_use);
    if (status.ok()) return server;
    if (!port_in_use) break;
  }
  return status;
}

PostgresServer::~PostgresServer() {
  // A forked child (a death test, a test of fork()) that exits normally
  // must not stop its parent's server.
  if (getpid() != owner_pid_) return;
  std::error_code error;
  if (fs::exists(data_dir_ + "/postmaster.pid", error)) {
    StopServer("immediate", kImmediateStopTimeoutSeconds).IgnoreError();
    if (pid_t pid = RunningPostmaster(data_dir_); pid > 0) {
      kill(pid, SIGKILL);
      const absl::Time deadline = absl::Now() + absl::Seconds(10);
      while (kill(pid, 0) == 0 && absl::Now() < deadline) {
        absl::SleepFor(absl::Milliseconds(20));
      }
    }
  }
  fs::remove_all(dir_, error);
}

std::string PostgresServer::url() const { return DatabaseUrl("postgres"); }

std::string PostgresServer::DatabaseUrl(std::string_view database) const {
  return absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/",
                      ToAbsl(database));
}

absl::Status PostgresServer::Stop() {
  if (!running_) return absl::OkStatus();
  return StopServer("fast", kStopTimeoutSeconds);
}

absl::Status PostgresServer::StartAgain() {
  if (running_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the PostgreSQL server on port ", port_, " is already running"));
  }
  bool port_in_use = false;
  return StartServer(&port_in_use);
}

absl::Status PostgresServer::Restart() {
  ES_RETURN_IF_ERROR(Stop());
  return StartAgain();
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase(
    std::string_view name) {
  if (!IsDatabaseName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("database name \"", ToAbsl(name),
                     "\" does not match [a-z_][a-z0-9_]{0,62}"));
  }
  std::unique_ptr<PGconn, PGconnDeleter> conn(
      PQconnectdb(absl::StrCat(url(), "?connect_timeout=10").c_str()));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat(
        "connecting to ", url(), ": ",
        conn == nullptr ? "out of memory" : PQerrorMessage(conn.get())));
  }
  // An identifier cannot be a parameter; `name` was validated above.
  std::unique_ptr<PGresult, PGresultDeleter> result(
      PQexec(conn.get(),
             absl::StrCat("CREATE DATABASE \"", ToAbsl(name), "\"").c_str()));
  if (result == nullptr || PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
    return absl::InternalError(absl::StrCat("CREATE DATABASE ", ToAbsl(name),
                                            ": ", PQerrorMessage(conn.get())));
  }
  return DatabaseUrl(name);
}

std::string PostgresServer::LogTail(std::size_t max_bytes) const {
  std::uintmax_t size = FileSize(log_path_);
  std::uintmax_t from = size > max_bytes * 2 ? size - max_bytes * 2 : 0;
  return Tail(ReadFileFrom(log_path_, from), max_bytes);
}

absl::Status PostgresServer::InitDb() {
  std::string output;
  absl::Status status =
      RunTool({bindir_ + "/initdb", "-D", data_dir_, "-A", "trust", "-U",
               "postgres", "-E", "UTF8", "--no-locale", "--no-sync"},
              kInitDbTimeoutSeconds, &output);
  if (!status.ok()) {
    if (switch_user_) {
      status = absl::Status(
          status.code(),
          absl::StrCat(status.message(),
                       "\n(initdb ran as user \"postgres\" because this "
                       "process is root: that user must be able to reach ",
                       dir_, ")"));
    }
    return status;
  }
  // Our settings live in a file of their own, rewritten for each port.
  std::ofstream conf(data_dir_ + "/postgresql.conf", std::ios::app);
  conf << "\ninclude '" << kSettingsFile << "'\n";
  conf.close();
  if (!conf) {
    return absl::InternalError(
        absl::StrCat("appending to ", data_dir_, "/postgresql.conf"));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::WriteSettings(
    const PostgresServerOptions& options) {
  std::ostringstream text;
  text << "# Written by eventstore's tests/support/postgres_server.cc.\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "port = " << port_ << "\n";
  // A Unix socket path must fit in sockaddr_un.sun_path (108 bytes); with a
  // long $TMPDIR, make do with TCP only.
  const std::string socket = absl::StrCat(dir_, "/.s.PGSQL.", port_);
  const bool socket_fits = socket.size() < sizeof(sockaddr_un::sun_path);
  text << "unix_socket_directories = " << ConfString(socket_fits ? dir_ : "")
       << "\n"
       << "max_connections = " << options.max_connections << "\n";
  if (!options.durable) {
    text << "fsync = off\n"
         << "synchronous_commit = off\n"
         << "full_page_writes = off\n";
  }
  for (const std::string& setting : options.extra_settings) {
    std::size_t equals = setting.find('=');
    text << setting.substr(0, equals) << " = "
         << ConfString(std::string_view(setting).substr(equals + 1)) << "\n";
  }

  const std::string path = absl::StrCat(data_dir_, "/", kSettingsFile);
  std::ofstream out(path, std::ios::trunc);
  out << text.str();
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing ", path));
  if (switch_user_ && chown(path.c_str(), run_uid_, run_gid_) != 0) {
    return absl::InternalError(
        absl::StrCat("chown(", path, ", postgres): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::StartServer(bool* port_in_use) {
  *port_in_use = false;
  const std::uintmax_t log_start = FileSize(log_path_);
  std::string output;
  absl::Status status = RunTool(
      {bindir_ + "/pg_ctl", "start", "-w", "-t",
       absl::StrCat(kStartTimeoutSeconds), "-D", data_dir_, "-l", log_path_},
      kStartTimeoutSeconds + kToolMarginSeconds, &output);
  if (status.ok()) {
    running_ = true;
    return status;
  }
  *port_in_use =
      ReadFileFrom(log_path_, log_start).find("Address already in use") !=
      std::string::npos;
  // pg_ctl gives up after its timeout but leaves a slow server running.
  if (RunningPostmaster(data_dir_) > 0) {
    StopServer("immediate", kImmediateStopTimeoutSeconds).IgnoreError();
  }
  return status;
}

absl::Status PostgresServer::StopServer(const char* mode, int timeout_seconds) {
  std::string output;
  ES_RETURN_IF_ERROR(
      RunTool({bindir_ + "/pg_ctl", "stop", "-w", "-t",
               absl::StrCat(timeout_seconds), "-D", data_dir_, "-m", mode},
              timeout_seconds + kToolMarginSeconds, &output));
  running_ = false;
  return absl::OkStatus();
}

absl::Status PostgresServer::RunTool(const std::vector<std::string>& argv,
                                     int timeout_seconds, std::string* output) {
  // Every tool's output is kept, in order, in one file.
  const std::string output_path = dir_ + "/tools.log";
  const std::uintmax_t start = FileSize(output_path);
  absl::StatusOr<int> exit_code =
      RunProcess(argv, dir_, output_path, {switch_user_, run_uid_, run_gid_},
                 absl::Seconds(timeout_seconds));
  *output = ReadFileFrom(output_path, start);
  std::string command = argv[0];
  for (std::size_t i = 1; i < argv.size(); ++i) {
    absl::StrAppend(&command, " ", argv[i]);
  }
  if (!exit_code.ok()) {
    return ErrorWithLog(
        exit_code.status().code(),
        absl::StrCat(command, ": ", exit_code.status().message()), *output);
  }
  if (*exit_code != 0) {
    return ErrorWithLog(
        absl::StatusCode::kInternal,
        absl::StrCat(command, " exited with status ", *exit_code), *output);
  }
  return absl::OkStatus();
}

absl::Status PostgresServer::ErrorWithLog(absl::StatusCode code,
                                          std::string_view what,
                                          std::string_view tool_output) const {
  return absl::Status(
      code, absl::StrCat(ToAbsl(what), "\n--- its output ---\n",
                         Tail(tool_output, 4096), "\n--- tail of ", log_path_,
                         " ---\n", LogTail(4096)));
}

// --- the shared server ------------------------------------------------------

namespace {

// The shared server, or why it did not start. Set once, under g_once; reset
// at exit, which stops the server.
absl::StatusOr<std::unique_ptr<PostgresServer>>* g_shared = nullptr;
std::once_flag g_once;

void StopSharedServer() {
  *g_shared = absl::CancelledError(
      "the shared PostgreSQL server was stopped "
      "at process exit");
}

}  // namespace

absl::StatusOr<PostgresServer*> SharedPostgresServer() {
  const char* url = std::getenv(kUrlEnv);
  if (url != nullptr && url[0] != '\0') {
    return absl::FailedPreconditionError(
        absl::StrCat(kUrlEnv, " is set: tests use the server at ", url,
                     ", and there is no server of our own to control"));
  }
  std::call_once(g_once, [] {
    g_shared = new absl::StatusOr<std::unique_ptr<PostgresServer>>(
        PostgresServer::Start(PostgresServerOptions()));
    if (g_shared->ok()) {
      std::atexit(StopSharedServer);
    } else {
      *g_shared = absl::Status(
          g_shared->status().code(),
          absl::StrCat("the shared PostgreSQL server for tests did not start "
                       "(set ",
                       kUrlEnv, " to use an existing server): ",
                       g_shared->status().message()));
    }
  });
  if (!g_shared->ok()) return g_shared->status();
  return g_shared->value().get();
}

absl::StatusOr<std::string> SharedPostgresUrl() {
  const char* url = std::getenv(kUrlEnv);
  if (url != nullptr && url[0] != '\0') return std::string(url);
  ES_ASSIGN_OR_RETURN(PostgresServer * server, SharedPostgresServer());
  return server->url();
}

}  // namespace eventstore::test
