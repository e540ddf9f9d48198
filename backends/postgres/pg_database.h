// PgDatabase: what the PostgreSQL store and its repositories share: the
// options, the schema name, the connection pool, and the statements built
// with the schema.
//
// Internal to the PostgreSQL backend.
//
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<PgDatabase> db,
//                       PgDatabase::Open(options));
//   const PgStatement get = db->Statement("es_cp_get", kGetCheckpointSql);
//   ES_ASSIGN_OR_RETURN(PgResult r, db->WithConnection([&](PgConnection& c) {
//     return c.Execute(get, params);
//   }));
//
// Statement texts are constants in which "$S" stands for the schema; it is
// validated ([a-z_][a-z0-9_]*) and quoted once, when the database opens.
// Each statement is prepared once per connection under its name, which must
// be unique across the backend ("es_" and a prefix per repository).
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_DATABASE_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_DATABASE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_pool.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/event_store.h"

namespace eventstore::postgres {

class PgDatabase {
 public:
  // Whether a call may run a second time after its connection was lost.
  enum class Retry {
    // Reads, appends (idempotent by event id), and writes whose repetition
    // leaves the same state: run once more on a fresh connection.
    kOnceIfLost,
    // Writes that must not happen twice (a counter incremented, a message
    // enqueued): a lost connection is kUnavailable, saying that the call
    // may or may not have taken effect.
    kNever,
  };

  // Validates `options` (kInvalidArgument naming an option out of range),
  // then creates or migrates the schema as the options allow; read-only,
  // every pooled and dedicated connection is read-only.
  static absl::StatusOr<std::unique_ptr<PgDatabase>> Open(
      const PostgresOptions& options);

  // PostgresEventStore::UpgradeSchema.
  static absl::StatusOr<SchemaUpgrade> UpgradeSchema(
      const PostgresOptions& options);

  PgDatabase(const PgDatabase&) = delete;
  PgDatabase& operator=(const PgDatabase&) = delete;

  const PostgresOptions& options() const { return options_; }
  // The schema's name, and the same quoted for SQL ("\"name\"").
  const std::string& schema() const { return options_.schema; }
  const std::string& quoted_schema() const { return quoted_schema_; }

  // A statement named `name` (a string literal) whose text is `sql` with
  // every "$S" replaced by the quoted schema.
  PgStatement Statement(const char* name, std::string_view sql) const;

  // Runs `f(PgConnection&)` on a pooled connection and returns what it
  // returns (a Status or StatusOr). When it fails because the connection
  // was lost, runs it once more on a fresh connection if `retry` allows.
  template <typename F>
  auto WithConnection(F&& f, Retry retry = Retry::kOnceIfLost)
      -> decltype(f(std::declval<PgConnection&>()));

  // A pooled connection for a caller that keeps it a while (a
  // SqlTransaction); it returns to the pool when the lease is destroyed.
  absl::StatusOr<PgPool::Lease> Acquire() { return pool_->Acquire(); }

  // A new connection outside the pool (a lease's, the LISTEN connection),
  // with the store's timeouts.
  absl::StatusOr<std::unique_ptr<PgConnection>> ConnectDedicated() const;

 private:
  PgDatabase(PostgresOptions options, std::unique_ptr<PgPool> pool);

  // `status` with a sentence on whether a call that lost its connection
  // may be repeated.
  static absl::Status Explained(const absl::Status& status, Retry retry);

  const PostgresOptions options_;
  const std::string quoted_schema_;
  const std::unique_ptr<PgPool> pool_;
};

// Appends the parameters of ReadAll's filter: the stream prefix (text or
// NULL), the event types (text[] or NULL) and the tenant (text or NULL), in
// this order. Statements test them as
//   ($k::text IS NULL OR starts_with(stream, $k::text))
//   AND ($k+1::text[] IS NULL OR type = ANY($k+1::text[]))
//   AND ($k+2::text IS NULL OR tenant_id = $k+2::text)
void AddFilterParams(const ReadAllFilter& filter, PgParams& params);

namespace pg_database_internal {
inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace pg_database_internal

// `d` in microseconds, clamped to +-100 years, for statements that take a
// duration as `$k::bigint * interval '1 microsecond'`.
int64_t IntervalMicros(absl::Duration d);

template <typename F>
auto PgDatabase::WithConnection(F&& f, Retry retry)
    -> decltype(f(std::declval<PgConnection&>())) {
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<PgPool::Lease> conn = pool_->Acquire();
    if (!conn.ok()) return conn.status();
    auto result = f(**conn);
    if (result.ok() || !(*conn)->broken()) return result;
    if (retry == Retry::kNever || attempt == 1) {
      return Explained(pg_database_internal::StatusOf(result), retry);
    }
  }
}

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_DATABASE_H_
