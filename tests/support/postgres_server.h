// PostgresServer: a throwaway PostgreSQL server for tests and benchmarks.
//
// Start() runs initdb in a fresh temporary directory and starts a server
// that listens only on 127.0.0.1, on a free port, with trust
// authentication for the superuser "postgres". The destructor stops it and
// removes the directory. Nothing outside the directory is touched: no
// system cluster, no ~/.pgpass, no shared port.
//
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
//                        PostgresServer::Start({}));
//   PGconn* conn = PQconnectdb(server->url().c_str());
//   ...
//   ASSERT_OK(server->Stop());        // simulate an outage
//   ASSERT_OK(server->StartAgain());  // same data, same port
//
// Most tests only need a database to talk to, and share one server per
// process:
//
//   ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
//
// Setting EVENTSTORE_TEST_PG_URL (say, to a CI service container) makes
// SharedPostgresUrl() return that URL and start nothing. A server that
// cannot start is an error, never a reason to skip: the status carries the
// tail of the server's log.
//
// The server binaries (initdb, pg_ctl, postgres) are taken from
// $EVENTSTORE_PG_BINDIR when set, else from the newest
// /usr/lib/postgresql/<version>/bin (Debian, Ubuntu), else from $PATH.
// PostgreSQL refuses to run as root: when the process is root, the server
// runs as the system user "postgres" (Debian's package creates it), which
// must be able to reach $TMPDIR (or /tmp).
//
// Every wait has a time limit; nothing here throws.

#ifndef EVENTSTORE_TESTS_SUPPORT_POSTGRES_SERVER_H_
#define EVENTSTORE_TESTS_SUPPORT_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/support/server_process.h"

namespace eventstore::test {

struct PostgresServerOptions {
  // Default false: fsync, synchronous_commit and full_page_writes are off,
  // which makes tests several times faster and loses data only on an OS
  // crash. True keeps PostgreSQL's defaults, for benchmarks whose numbers
  // must mean something.
  bool durable = false;

  // Default 200: room for several pools and concurrent tests. Each slot
  // costs some shared memory; PostgreSQL's own default is 100.
  int max_connections = 200;

  // Default none. More settings, each "name=value" as for `postgres -c`
  // (say "log_statement=all"); they are applied after, and so override,
  // the ones above. An unknown name makes Start() fail.
  std::vector<std::string> extra_settings;
};

// One PostgreSQL server with its own data directory.
//
// Thread safety: url(), DatabaseUrl(), port(), dir(), data_dir(),
// log_path() and LogTail() may be called from any thread at any time; the
// other members must not race with each other (nor with running()).
class PostgresServer {
 public:
  // Creates a temporary directory (under $TMPDIR, else /tmp), runs initdb
  // in it and starts the server. On failure everything is cleaned up and
  // the status includes the tail of initdb's or the server's output.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(
      const PostgresServerOptions& options);

  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // Stops the server (immediate mode, killing it if that fails) and removes
  // the directory. Bounded in time; errors are ignored. Does nothing in a
  // forked child of the process that started the server.
  ~PostgresServer();

  // "postgresql://postgres@127.0.0.1:PORT/postgres".
  std::string url() const;
  // The URL of database `database` on this server (which may not exist).
  std::string DatabaseUrl(std::string_view database) const;
  // The TCP port, fixed for the server's life (StartAgain() keeps it).
  int port() const { return port_; }
  // The temporary directory: the data directory, the log and the Unix
  // socket live in it; it is gone after the destructor.
  const std::string& dir() const { return dir_; }
  // The data directory, inside dir().
  const std::string& data_dir() const { return data_dir_; }
  // The server's log file, inside dir().
  const std::string& log_path() const { return log_path_; }
  // Whether the server was last started, not stopped.
  bool running() const { return running_; }

  // Stops the server the way an administrator would (pg_ctl stop -m fast):
  // sessions are disconnected, open transactions roll back. OK when it is
  // already stopped.
  absl::Status Stop();
  // Starts the stopped server again on the same data directory and port;
  // fails if another process took the port meanwhile. FailedPrecondition
  // when it is running.
  absl::Status StartAgain();
  // Stop() then StartAgain().
  absl::Status Restart();

  // Creates database `name` (which must match [a-z_][a-z0-9_]*) and returns
  // its URL.
  absl::StatusOr<std::string> CreateDatabase(std::string_view name);

  // The last `max_bytes` of the server's log, for failure messages.
  std::string LogTail(std::size_t max_bytes = 4096) const;

 private:
  PostgresServer(std::string bindir, std::string dir, uid_t run_uid,
                 gid_t run_gid, bool switch_user);

  absl::Status InitDb();
  absl::Status WriteSettings(const PostgresServerOptions& options);
  // Starts the server with the settings written; `*port_in_use` tells
  // whether it failed because the port is taken.
  absl::Status StartServer(bool* port_in_use);
  absl::Status StopServer(const char* mode, int timeout_seconds);
  absl::Status RunTool(const std::vector<std::string>& argv,
                       int timeout_seconds, std::string* output);
  // A status with `code` and `what`, followed by the tail of `tool_output`
  // and of the server's log.
  absl::Status ErrorWithLog(absl::StatusCode code, std::string_view what,
                            std::string_view tool_output) const;

  const std::string bindir_;
  const std::string dir_;
  const std::string data_dir_;
  const std::string log_path_;
  // The user the server runs as; `switch_user_` when that is not us.
  const uid_t run_uid_;
  const gid_t run_gid_;
  const bool switch_user_;
  // The process that started the server, the only one that may stop it.
  const pid_t owner_pid_;
  int port_ = 0;
  bool running_ = false;
  // Stops the server and removes dir_ should this process end without
  // the destructor (postgres's own postmaster.pid names the server).
  std::unique_ptr<ServerReaper> reaper_;
};

// The process's shared server, started on first use (thread-safe) and
// stopped at exit. FailedPrecondition when EVENTSTORE_TEST_PG_URL is set
// (there is no server to control), else the start error, every time.
// Tests that stop or restart a server must start their own instead.
absl::StatusOr<PostgresServer*> SharedPostgresServer();

// $EVENTSTORE_TEST_PG_URL when set, else the URL of SharedPostgresServer()
// (starting it). Fail the test, do not skip it, when this is not OK.
absl::StatusOr<std::string> SharedPostgresUrl();

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_POSTGRES_SERVER_H_
