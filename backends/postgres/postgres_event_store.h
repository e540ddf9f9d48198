// The PostgreSQL backend: the server store for production and scale-out.
//
//   absl::StatusOr<eventstore::PostgresOptions> options =
//       eventstore::PostgresOptions::FromUrl(
//           "postgresql://app@127.0.0.1:5432/shop?schema=events");
//   absl::StatusOr<std::unique_ptr<eventstore::EventStore>> store =
//       eventstore::PostgresEventStore::Open(*options);
//
// Connections come from a thread-safe pool. A connection that breaks is
// dropped and replaced; an operation that fails because the connection was
// lost is retried once on a fresh connection (appends are idempotent by event
// id, so a retry after an unknown commit outcome writes nothing twice), then
// fails with kUnavailable. The schema is created when opened, and an older
// schema is upgraded unless upgrade_schema is off, under an advisory lock, so
// several processes may open at once; a schema newer than this code is
// refused with kFailedPrecondition, untouched. With read_only, every
// connection's transactions are read-only and nothing is created or
// upgraded.
//
// The store's repositories (checkpoints, dead letters, outbox, snapshots)
// are tables in the same schema; BeginTransaction lends a pooled connection
// whose search_path starts with that schema, so read-model tables live
// beside the events; a lease is a session advisory lock on a connection of
// its own. WaitForEvents LISTENs on one dedicated connection and checks the
// head at least every 250 ms.
//
// Global order: every event records the id of the transaction that wrote
// it, and its Position is (transaction id, sequence). ReadAll returns only
// events of transactions older than every transaction still running, in
// Position order, so a reader never skips an event that commits later, while
// concurrent appends still commit in parallel (docs/postgres.md).

#ifndef EVENTSTORE_BACKENDS_POSTGRES_POSTGRES_EVENT_STORE_H_
#define EVENTSTORE_BACKENDS_POSTGRES_POSTGRES_EVENT_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/limits.h"
#include "eventstore/log_sink.h"
#include "eventstore/schema_upgrade.h"
#include "eventstore/type_registry.h"

namespace eventstore {

struct PostgresOptions {
  // A libpq connection string or URI without our own parameters, e.g.
  // "postgresql://app@127.0.0.1:5432/shop". Required.
  std::string conninfo;
  // The schema holding the store's tables; several stores can share one
  // database under different schemas. [a-z_][a-z0-9_]*, at most 63 bytes.
  // Default "eventstore".
  std::string schema = "eventstore";
  // Most connections open at once. Calls beyond it wait for a free
  // connection up to connect_timeout. 1 to kMaxPoolSize. Default 8.
  int pool_size = 8;
  static constexpr int kMaxPoolSize = 1000;
  // Longest wait to connect (and for a free pooled connection); libpq
  // counts whole seconds, at least 1. 0 to 2^31-1 ms. Default 10 s.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Server-side limit on one statement; zero for none. 0 to 2^31-1 ms (the
  // server's own bound). Default 30 s.
  absl::Duration statement_timeout = absl::Seconds(30);
  static constexpr int64_t kMaxTimeoutMs = 2147483647;
  // Whether each append also sends a NOTIFY, so that WaitForEvents in other
  // processes wakes up at once. Default false: NOTIFY takes a database-wide
  // lock from the commit's start to its end, so appends that notify commit
  // one at a time and lose group commit (docs/postgres.md);
  // waiters in other processes then see new events within 250 ms by
  // polling. Waiters in this process wake up at once either way.
  bool notify_on_append = false;
  // Whether Open creates the schema and its tables when the schema holds no
  // store yet. With false, such a schema is kNotFound and nothing is
  // created, for tools that look at a store without changing the database.
  // Default true.
  bool create_if_missing = true;
  // Every connection's transactions are read-only
  // (default_transaction_read_only=on): the schema is neither created nor
  // upgraded (a missing store is kNotFound, an older schema
  // kFailedPrecondition), and every write fails with kFailedPrecondition
  // ("opened read-only"). For tools that only look, and for read-only
  // roles or standbys. Default false.
  bool read_only = false;
  // Whether Open upgrades an older schema to this code's version. Default
  // true: the application that links this code needs its schema, and the
  // upgrade is one transaction under the advisory lock. Off, an older schema
  // is kFailedPrecondition (untouched) until PostgresEventStore::
  // UpgradeSchema or `eventstore upgrade URL` runs; the `eventstore` tool
  // opens with it off. A newer schema is refused either way.
  bool upgrade_schema = true;
  // Whether ReadStream and ReadAll compare each event's stored checksum
  // (a mismatch marks the event damaged, recorded_event.h). Default true.
  // Off, reads skip the CRC (about 20% of read throughput on W3,
  // docs/benchmarks.md) and trust the payload; events still carry
  // `checksum`, corrupt metadata is still marked damaged, and
  // `eventstore verify`, `export` and importers check checksums regardless.
  bool verify_checksums = true;
  StoreLimits limits;
  // When set, reads apply its upcasters (see type_registry.h).
  std::shared_ptr<const TypeRegistry> type_registry;
  // Where the connection pool reports (instrumentation.h; `backend` label
  // "postgres"): connections in use and idle when they change
  // (OnPoolConnections), each wait for a connection when all were lent out
  // (OnPoolWait), each lost connection replaced (OnReconnect). Default
  // null: nothing is measured (a null check). Programmatic only: no URL
  // parameter sets it. To measure appends and reads, wrap the store with
  // Instrument() (instrumented_event_store.h).
  std::shared_ptr<Instrumentation> instrumentation;
  // Where the pool logs, component "postgres_pool", at warning level: lost
  // connections, reconnects, failures to connect (the password masked).
  // Default null: nothing is logged. Programmatic only.
  std::shared_ptr<LogSink> log_sink;

  // Options from a URL "postgresql://user[:password]@host[:port]/db" with
  // optional query parameters: ours (schema, pool_size, connect_timeout_ms,
  // statement_timeout_ms, notify_on_append, read_only, upgrade_schema and
  // verify_checksums = true|false) and any libpq accepts (sslmode, ...), which
  // are passed through. kInvalidArgument naming the part that is wrong (a
  // number out of range names the range); a password never appears in a
  // message.
  static absl::StatusOr<PostgresOptions> FromUrl(std::string_view url);
};

class PostgresEventStore {
 public:
  // Opens the store: creates its schema (create_if_missing, not read_only)
  // and upgrades an older one (upgrade_schema, not read_only).
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(
      const PostgresOptions& options);

  // Upgrades the store in options.schema to this code's version, in one
  // transaction under the schema's advisory lock, and returns the versions
  // before and after (equal when it was current: nothing is written).
  // kNotFound when the schema holds no store; kFailedPrecondition,
  // untouched, for a schema newer than this code or tables not ours.
  // Ignores read_only, upgrade_schema and create_if_missing.
  static absl::StatusOr<SchemaUpgrade> UpgradeSchema(
      const PostgresOptions& options);

  // The schema version this code writes.
  static constexpr int kSchemaVersion = 8;
};

// `url` with any password replaced by "***", for messages and logs.
std::string MaskPostgresUrl(std::string_view url);

}  // namespace eventstore

#endif  // EVENTSTORE_BACKENDS_POSTGRES_POSTGRES_EVENT_STORE_H_
