// server_reaper_probe KIND REPORT_PATH: starts a server the way the tests
// do, writes where it lives to REPORT_PATH, then waits to be killed. The
// tests of ServerReaper (server_reaper_check.h) kill it with SIGKILL, so
// that no destructor runs, and check that the server is gone.
//
// KIND: sleep (/bin/sleep in a folder of its own, watched by a
// ServerReaper, as the harnesses do), postgres, nats or rabbitmq (those
// built). The report, written whole (a rename): the server's folder, its
// port (0 for sleep) and the pid of its main process (the first one of the
// pid file its reaper reads), one per line.

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "eventstore/status_macros.h"
#include "tests/support/server_process.h"
#ifdef EVENTSTORE_PROBE_POSTGRES
#include "tests/support/postgres_server.h"
#endif
#ifdef EVENTSTORE_PROBE_NATS
#include "tests/support/nats_server.h"
#endif
#ifdef EVENTSTORE_PROBE_RABBITMQ
#include "tests/support/rabbitmq_server.h"
#endif

namespace eventstore::test {
namespace {

struct Report {
  std::string dir;
  int port = 0;
  pid_t pid = 0;
};

// The first number of the first line of `path`; 0 when there is none.
pid_t FirstPid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// What the probe holds until it is killed.
struct Held {
  std::unique_ptr<ServerReaper> reaper;
#ifdef EVENTSTORE_PROBE_POSTGRES
  std::unique_ptr<PostgresServer> postgres;
#endif
#ifdef EVENTSTORE_PROBE_NATS
  std::unique_ptr<NatsServer> nats;
#endif
#ifdef EVENTSTORE_PROBE_RABBITMQ
  std::unique_ptr<RabbitMqServer> rabbitmq;
#endif
};

absl::StatusOr<Report> StartSleep(Held& held) {
  Report report;
  ES_ASSIGN_OR_RETURN(report.dir, MakeServerDir("eventstore_reaper_probe_"));
  const std::string pid_file = report.dir + "/server.pids";
  ES_ASSIGN_OR_RETURN(held.reaper, ServerReaper::Start(report.dir, {pid_file}));
  SpawnOptions spawn;
  spawn.new_session = true;
  ES_ASSIGN_OR_RETURN(
      report.pid,
      SpawnProcess({"/bin/sleep", "1000"}, report.dir + "/sleep.log", spawn));
  ES_RETURN_IF_ERROR(WritePidFile(pid_file, {report.pid}));
  return report;
}

absl::StatusOr<Report> Start(std::string_view kind, Held& held) {
  if (kind == "sleep") return StartSleep(held);
#ifdef EVENTSTORE_PROBE_POSTGRES
  if (kind == "postgres") {
    ES_ASSIGN_OR_RETURN(held.postgres,
                        PostgresServer::Start(PostgresServerOptions()));
    return Report{held.postgres->dir(), held.postgres->port(),
                  FirstPid(held.postgres->data_dir() + "/postmaster.pid")};
  }
#endif
#ifdef EVENTSTORE_PROBE_NATS
  if (kind == "nats") {
    ES_ASSIGN_OR_RETURN(held.nats, NatsServer::Start(NatsServerOptions()));
    return Report{held.nats->dir(), held.nats->port(),
                  FirstPid(held.nats->dir() + "/server.pids")};
  }
#endif
#ifdef EVENTSTORE_PROBE_RABBITMQ
  if (kind == "rabbitmq") {
    ES_ASSIGN_OR_RETURN(held.rabbitmq,
                        RabbitMqServer::Start(RabbitMqServerOptions()));
    return Report{held.rabbitmq->dir(), held.rabbitmq->port(),
                  FirstPid(held.rabbitmq->dir() + "/server.pids")};
  }
#endif
  return absl::InvalidArgumentError(
      absl::StrCat("unknown or not built: \"", std::string(kind), "\""));
}

int Main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: server_reaper_probe KIND REPORT_PATH\n");
    return 2;
  }
  Held held;
  absl::StatusOr<Report> report = Start(argv[1], held);
  if (!report.ok()) {
    std::fprintf(stderr, "server_reaper_probe: %s\n",
                 report.status().ToString().c_str());
    return 1;
  }
  const std::string path = argv[2];
  {
    std::ofstream out(path + ".new");
    out << report->dir << "\n" << report->port << "\n" << report->pid << "\n";
    if (!out.good()) return 1;
  }
  if (std::rename((path + ".new").c_str(), path.c_str()) != 0) return 1;
  while (true) pause();
}

}  // namespace
}  // namespace eventstore::test

int main(int argc, char** argv) { return eventstore::test::Main(argc, argv); }
