// PgLease: a Lease of a PostgreSQL store (eventstore/lease.h has the
// contract): a session advisory lock held on a connection of its own.
//
// Internal to the PostgreSQL backend. The lock's key is
// hashtextextended('eventstore lease <schema>:<name>', 0), so names are
// per store schema. The connection is not from the pool: it lives exactly
// as long as the lease. When the holding process dies, or its connection
// breaks, the server ends the session and frees the lock, and another
// process can take it over. Valid() proves the session alive with a cheap
// query, at most every 500 ms, waiting for an answer no longer than
// connect_timeout; destroying the lease unlocks and closes.
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_LEASE_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_LEASE_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/lease.h"

namespace eventstore::postgres {

class PgLease final : public Lease {
 public:
  // The lease `name` of `db`'s schema when no session holds it, else
  // nullptr. kInvalidArgument for an empty name; kUnavailable when the
  // server cannot be reached.
  static absl::StatusOr<std::unique_ptr<Lease>> TryAcquire(
      const PgDatabase& db, std::string_view name);

  PgLease(const PgLease&) = delete;
  PgLease& operator=(const PgLease&) = delete;
  // Unlocks and closes the connection (waiting at most connect_timeout).
  ~PgLease() override;

  bool Valid() override;

  // The text whose hashtextextended(text, 0) is the advisory lock key of
  // the lease `name` in the store schema `schema` (see above), for
  // whoever looks for the lock (PgStoreInspector::FindLeaseHolder).
  static std::string KeyText(std::string_view schema, std::string_view name);

 private:
  PgLease(std::unique_ptr<PgConnection> conn, std::string key,
          absl::Duration timeout)
      : conn_(std::move(conn)),
        key_(std::move(key)),
        timeout_(timeout),
        last_check_(absl::Now()) {}

  internal::Mutex mu_;
  std::unique_ptr<PgConnection> conn_ ABSL_GUARDED_BY(mu_);
  // The text hashed into the lock's key.
  const std::string key_;
  const absl::Duration timeout_;
  bool valid_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time last_check_ ABSL_GUARDED_BY(mu_);
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_LEASE_H_
