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

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_POOL_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_POOL_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_connection.h"

namespace eventstore::postgres {

class PgPool {
 public:
  // `read_only`: see PgConnection::Connect.
  PgPool(std::string conninfo, int size, absl::Duration connect_timeout,
         absl::Duration statement_timeout, bool read_only = false);
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

  const std::string conninfo_;
  const int size_;
  const absl::Duration connect_timeout_;
  const absl::Duration statement_timeout_;
  const bool read_only_;

  std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<PgConnection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + lent
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_POOL_H_
