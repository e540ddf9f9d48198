// RabbitMqServer: a throwaway RabbitMQ broker for tests and benchmarks.
//
// Start() runs rabbitmq-server in a fresh temporary directory, as a node of
// its own ("eventstore_test_<port>@localhost") that listens only on
// 127.0.0.1, on free ports: AMQP, Erlang distribution and its own epmd
// (ERL_EPMD_PORT), so that no system broker, epmd (4369) or Erlang cookie
// is shared or touched. The destructor kills it and removes the directory.
//
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<RabbitMqServer> server,
//                        RabbitMqServer::Start({}));
//   // server->url(): "amqp://guest:guest@127.0.0.1:PORT"
//   ASSERT_OK(server->Kill());        // kill -9: the broker crashes
//   ASSERT_OK(server->StartAgain());  // same data, same ports
//
// A broker takes seconds to start, so tests share one per process
// (SharedRabbitMqServer(), or a static of their own with other options). A
// server that cannot start is an error, never a reason to skip: the status
// carries the tail of the broker's output and log.
//
// How it runs (Debian's rabbitmq-server 3.10; others alike):
// - the broker's own start script, not /usr/sbin/rabbitmq-server (Debian's
//   wrapper, which su's to the "rabbitmq" user and uses /var/lib/rabbitmq):
//   $EVENTSTORE_RABBITMQ_SERVER when set, else
//   /usr/lib/rabbitmq/bin/rabbitmq-server, else the newest
//   /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server. It runs
//   as the current user, root included (Erlang does not mind);
// - environment: HOME (the Erlang cookie), RABBITMQ_NODENAME,
//   RABBITMQ_NODE_IP_ADDRESS / RABBITMQ_NODE_PORT, RABBITMQ_DIST_PORT,
//   ERL_EPMD_PORT / ERL_EPMD_ADDRESS, RABBITMQ_MNESIA_BASE,
//   RABBITMQ_LOG_BASE / RABBITMQ_LOGS, RABBITMQ_CONFIG_FILE (written here:
//   the listener, max_message_size, a low disk_free_limit),
//   RABBITMQ_ADVANCED_CONFIG_FILE, RABBITMQ_ENABLED_PLUGINS_FILE (none),
//   RABBITMQ_CONF_ENV_FILE (empty: /etc/rabbitmq is never read),
//   RABBITMQ_PID_FILE, all inside the directory; every other RABBITMQ_* or
//   ERL_* variable of ours is left out;
// - RABBITMQ_ALLOW_INPUT makes the script exec the Erlang VM (stdin is
//   /dev/null and "-noinput" is passed), so the process we start is the VM
//   itself, which Kill() can SIGKILL and reap;
// - epmd is started by us first ("epmd -port P -address 127.0.0.1", in the
//   foreground), so the VM uses it rather than daemonising one we could
//   not find again;
// - ready means an AMQP login succeeds (polled, with a deadline).
//
// Every wait has a time limit; nothing here throws.

#ifndef EVENTSTORE_TESTS_SUPPORT_RABBITMQ_SERVER_H_
#define EVENTSTORE_TESTS_SUPPORT_RABBITMQ_SERVER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/server_process.h"

namespace eventstore::test {

struct RabbitMqServerOptions {
  // The broker's max_message_size in bytes: a larger message closes the
  // publisher's channel with 406 PRECONDITION_FAILED. Default 0: RabbitMQ's
  // own default (128 MiB).
  int64_t max_message_size = 0;

  // More rabbitmq.conf lines ("key = value"), written after ours.
  std::vector<std::string> extra_config;

  // How long Start() and StartAgain() wait for the broker to take logins.
  // Default 180 s: it boots in 5 to 20 s, slower on a loaded machine.
  absl::Duration start_timeout = absl::Seconds(180);
};

// One RabbitMQ node with its own directory and ports.
//
// Thread safety: url(), port(), dir() and LogTail() may be called from any
// thread at any time; the other members must not race with each other.
class RabbitMqServer {
 public:
  // Creates a temporary directory (under $TMPDIR, else /tmp), writes the
  // configuration and starts epmd and the broker. On failure everything is
  // stopped and removed and the status holds the tail of the broker's
  // output.
  static absl::StatusOr<std::unique_ptr<RabbitMqServer>> Start(
      const RabbitMqServerOptions& options);

  RabbitMqServer(const RabbitMqServer&) = delete;
  RabbitMqServer& operator=(const RabbitMqServer&) = delete;

  // Kills the broker and its epmd (SIGKILL: the data is thrown away) and
  // removes the directory, unless $EVENTSTORE_TEST_KEEP_RABBITMQ_DIR is set
  // (to read the broker's log after a failure). Does nothing in a forked
  // child of the process that started the server.
  ~RabbitMqServer();

  // "amqp://guest:guest@127.0.0.1:PORT" (the default vhost "/"; "guest" may
  // log in from loopback only, which is all that listens).
  std::string url() const;
  // The AMQP port, fixed for the server's life (StartAgain() keeps it).
  int port() const { return amqp_port_; }
  const std::string& dir() const { return dir_; }
  // Whether the broker was last started, not killed or stopped.
  bool running() const { return running_; }

  // kill -9 of the Erlang VM and of its epmd, as in a crash (durable queues
  // keep their persistent messages); waits until both are gone. OK when
  // already stopped.
  absl::Status Kill();
  // Stops the broker cleanly (SIGTERM, then SIGKILL after a minute) and its
  // epmd. OK when already stopped.
  absl::Status Stop();
  // Starts epmd and the broker again on the same ports, node name and data
  // directory; fails if another process took a port meanwhile.
  // FailedPrecondition when running.
  absl::Status StartAgain();

  // The last `max_bytes` of the broker's console output and of its log
  // file, for failure messages.
  std::string LogTail(std::size_t max_bytes = 4096) const;

 private:
  RabbitMqServer(std::string script, std::string epmd, std::string dir,
                 RabbitMqServerOptions options);

  absl::Status WriteFiles();
  // Starts epmd, then the broker, and waits until a login succeeds.
  absl::Status Launch();
  // Sends `signal` to the broker and epmd, then SIGKILL after `grace`, and
  // reaps them.
  void Terminate(int signal, absl::Duration grace);
  std::vector<std::string> Environment() const;
  absl::Status ErrorWithLog(absl::StatusCode code,
                            const std::string& what) const;

  const std::string script_;
  const std::string epmd_;
  const std::string dir_;
  const RabbitMqServerOptions options_;
  const pid_t owner_pid_;
  std::string node_name_;
  int amqp_port_ = 0;
  int dist_port_ = 0;
  int epmd_port_ = 0;
  pid_t broker_pid_ = 0;
  pid_t epmd_pid_ = 0;
  bool running_ = false;
  // Kills the broker and epmd (their pids in PidFile()) and removes dir_
  // should this process end without the destructor.
  std::unique_ptr<ServerReaper> reaper_;
  std::string PidFile() const { return dir_ + "/server.pids"; }
};

// The process's shared server (RabbitMqServerOptions() defaults), started
// on first use (thread-safe) and killed at exit; else the start error,
// every time. Tests that kill or restart a broker, or need other options,
// start their own.
absl::StatusOr<RabbitMqServer*> SharedRabbitMqServer();

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_RABBITMQ_SERVER_H_
