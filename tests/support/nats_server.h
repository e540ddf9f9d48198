// NatsServer: a throwaway NATS server with JetStream for tests.
//
// Start() runs `nats-server -js` listening only on 127.0.0.1, on a free
// port, with its JetStream store (-sd) and its log in a fresh temporary
// directory, and returns once a client can connect and JetStream answers.
// The destructor kills it and removes the directory. Nothing outside the
// directory is touched: no system service, no shared port. The server is
// also killed when the thread that started it ends (PR_SET_PDEATHSIG), so
// that a crashed test leaves none behind: start it from the test's thread.
//
//   NatsServerOptions options;
//   options.max_payload = 64 * 1024;
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<NatsServer> server,
//                        NatsServer::Start(options));
//   sink_options.url = server->url();
//   ...
//   ASSERT_OK(server->Kill());        // kill -9: an outage, a crash
//   ASSERT_OK(server->StartAgain());  // same port, same JetStream store
//
// Tests that do not stop the server share one per process:
//
//   ASSERT_OK_AND_ASSIGN(NatsServer * server, SharedNatsServer());
//
// The binary is $EVENTSTORE_NATS_SERVER when set, else nats-server from
// $PATH, else /usr/bin/nats-server (Debian's nats-server package). A server
// that cannot start is an error, never a reason to skip: the status carries
// the tail of the server's log. Every wait has a deadline; nothing sleeps a
// fixed time to let the server get ready.

#ifndef EVENTSTORE_TESTS_SUPPORT_NATS_SERVER_H_
#define EVENTSTORE_TESTS_SUPPORT_NATS_SERVER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/server_process.h"

namespace eventstore::test {

struct NatsServerOptions {
  // The largest message (payload and headers) the server accepts, in
  // bytes. Default 0: the server's own (1 MB).
  int64_t max_payload = 0;
  // When both are set, clients must log in with them (nats://user:pw@...).
  // Letters, digits, '-' and '_' only. Default: no authentication.
  std::string user;
  std::string password;
  // Default true: JetStream on (-js). False starts a core NATS server, on
  // which JetStream does not answer.
  bool jetstream = true;
  // How long Start() and StartAgain() wait for the server to be ready.
  // Default 30 s.
  absl::Duration ready_timeout = absl::Seconds(30);
};

// Thread safety: url(), port(), dir(), log_path() and LogTail() may be
// called from any thread; the others must not race with each other.
class NatsServer {
 public:
  // Creates a temporary directory (under $TMPDIR, else /tmp) and starts the
  // server in it. On failure everything is cleaned up and the status
  // includes the tail of the server's log.
  static absl::StatusOr<std::unique_ptr<NatsServer>> Start(
      const NatsServerOptions& options = NatsServerOptions());

  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // Kills the server (SIGKILL) and removes the directory. Does nothing in a
  // forked child of the process that started it.
  ~NatsServer();

  // "nats://127.0.0.1:PORT", without credentials.
  std::string url() const;
  // "nats://USER:PASSWORD@127.0.0.1:PORT" (options.user and .password).
  std::string url_with_credentials() const;
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& log_path() const { return log_path_; }
  bool running() const { return pid_ > 0; }

  // kill -9: the server dies at once, as in a crash; what JetStream wrote
  // to its store before stays there. OK when it is not running.
  absl::Status Kill();
  // SIGTERM, the way an administrator stops it; SIGKILL after `timeout`.
  absl::Status Stop(absl::Duration timeout = absl::Seconds(30));
  // Starts the stopped server again on the same port and store.
  // FailedPrecondition when it is running.
  absl::Status StartAgain();

  // The last `max_bytes` of the server's log, for failure messages.
  std::string LogTail(std::size_t max_bytes = 4096) const;

 private:
  NatsServer(std::string binary, std::string dir, NatsServerOptions options);

  absl::Status WriteConfig() const;
  // Starts the process and waits until it is ready; `*port_in_use` tells
  // whether it failed because another process holds the port.
  absl::Status Launch(bool* port_in_use);
  absl::Status WaitReady(absl::Time deadline);
  // Reaps the process if it has exited; true when it has.
  bool Exited();

  const std::string binary_;
  const std::string dir_;
  const std::string store_dir_;
  const std::string config_path_;
  const std::string log_path_;
  const NatsServerOptions options_;
  const pid_t owner_pid_;
  int port_ = 0;
  pid_t pid_ = 0;
  // Kills the server (its pid in PidFile()) and removes dir_ should this
  // process end without the destructor.
  std::unique_ptr<ServerReaper> reaper_;
  std::string PidFile() const { return dir_ + "/server.pids"; }
};

// The process's shared server (default options), started on first use
// (thread-safe) and killed at exit; the start error, every time, when it
// did not start. Tests that kill or restart a server start their own.
absl::StatusOr<NatsServer*> SharedNatsServer();

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_NATS_SERVER_H_
