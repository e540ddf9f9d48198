// PgPool: a thread-safe pool of PostgreSQL connections.
//
//   ES_ASSIGN_OR_RETURN(PgPool::Lease conn, pool.Acquire());
//   ES_ASSIGN_OR_RETURN(PgResult r, conn->Execute(stmt, params));
//
// A lease returns its connection when destroyed, unless the connection broke
// (then it is closed, and so are the idle ones, which a server restart
// breaks all at once). Connections are opened on demand up to `size`. An
// idle connection that the server closed meanwhile is noticed before it is
// lent (PgConnection::LooksAlive) and replaced, so that a call which must
// not be repeated is not sent on a connection that is already dead.
//
// Reporting (PgPoolReporting, both parts optional): the pool reports to an
// Instrumentation the connections lent out and idle whenever either count
// changes (OnPoolConnections, under the pool's lock, so the last value
// reported is the current one), each wait for a connection when all were
// lent out (OnPoolWait, with the time waited, also when the wait timed out)
// and each new connection that takes the place of one closed because it
// was lost (OnReconnect; the idle ones closed with a lost one count as lost
// too). It logs to a LogSink, component "postgres_pool", at warning level:
// lost connections, reconnects and failures to connect (messages carry the
// connection string with its password masked, as PgConnection::Connect
// gives it).

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_POOL_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_POOL_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_connection.h"
#include "eventstore/instrumentation.h"
#include "eventstore/log_sink.h"

namespace eventstore::postgres {

// Where a PgPool reports; null parts report nothing (one null check).
struct PgPoolReporting {
  std::shared_ptr<Instrumentation> instrumentation;
  std::shared_ptr<LogSink> log_sink;
  // The `backend` argument of the pool's Instrumentation calls.
  std::string backend_label = "postgres";
};

class PgPool {
 public:
  // `read_only`: see PgConnection::Connect.
  PgPool(std::string conninfo, int size, absl::Duration connect_timeout,
         absl::Duration statement_timeout, bool read_only = false,
         PgPoolReporting reporting = {});
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  class Lease {
   public:
    Lease(PgPool* pool, std::unique_ptr<PgConnection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    PgConnection* operator->() const { return conn_.get(); }
    PgConnection& operator*() const { return *conn_; }

   private:
    PgPool* pool_;
    std::unique_ptr<PgConnection> conn_;
  };

  // An idle connection that looks alive, or a new one while fewer than
  // `size` are open; otherwise waits up to connect_timeout for one to be
  // returned.
  absl::StatusOr<Lease> Acquire();

 private:
  void Release(std::unique_ptr<PgConnection> conn);
  // Reports the connections lent out and idle when they changed since the
  // last report. REQUIRES: mu_ is held.
  void ReportConnections() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes every idle connection with `lost` (found dead): moves them to
  // `closing`, to be destroyed outside the lock. REQUIRES: mu_ is held.
  void DropLost(std::unique_ptr<PgConnection> lost,
                std::vector<std::unique_ptr<PgConnection>>& closing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Log(std::string_view message) const;

  const std::string conninfo_;
  const int size_;
  const absl::Duration connect_timeout_;
  const absl::Duration statement_timeout_;
  const bool read_only_;
  const PgPoolReporting reporting_;
  // reporting_'s, or null.
  Instrumentation* const metrics_;
  LogSink* const log_;

  std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<PgConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + lent + being connected
  int lent_ ABSL_GUARDED_BY(mu_) = 0;
  // Connections closed because they were lost, not replaced yet.
  int lost_ ABSL_GUARDED_BY(mu_) = 0;
  // What ReportConnections last reported (-1: nothing yet).
  int64_t reported_in_use_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t reported_idle_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_POOL_H_
