// The raw SQLite baseline: the rows our SQLite store writes and reads, done
// with plain sqlite3 C API calls and nothing else, on the same settings.
//
//   TargetFactory raw = SqliteRawFactory(SqliteOptions::Synchronous::kNormal);
//   absl::StatusOr<std::unique_ptr<Target>> target = raw();
//
// Each target is a new file in a new temporary directory, in WAL mode with
// the given synchronous setting and the same event-log tables and indexes
// as backends/sqlite/sqlite_schema.cc. Appends are one BEGIN IMMEDIATE ...
// COMMIT per batch around a prepared INSERT of the store's columns; they
// check no expected version (the versions come from the batch). Reads step
// the store's SELECT statements and touch every column without building
// objects or decoding metadata.

#ifndef EVENTSTORE_BENCH_SQLITE_RAW_H_
#define EVENTSTORE_BENCH_SQLITE_RAW_H_

#include "absl/status/status.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "bench/target.h"

namespace eventstore::bench {

// Fresh raw baselines on `synchronous` (and WAL).
TargetFactory SqliteRawFactory(SqliteOptions::Synchronous synchronous);

// Fresh stores of ours: SqliteEventStore on a new file, WAL, `synchronous`;
// as targets, and as stores for the workloads that use more of the library.
TargetFactory SqliteStoreFactory(SqliteOptions::Synchronous synchronous);
StoreFactory SqliteStoreOpener(SqliteOptions::Synchronous synchronous);

// Checks that the raw baseline's event-log tables (events, event_types) are
// the store's: creates a database each way and compares the tables' columns
// and indexes. A kFailedPrecondition shows both (the copy in sqlite_raw.cc
// is out of date).
absl::Status CheckRawSchemaMatchesStore();

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_SQLITE_RAW_H_
