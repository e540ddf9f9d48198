// The PostgreSQL side of the benchmarks: the server they run on, fresh
// stores of ours, and the raw libpq baseline that writes and reads the same
// rows with plain libpq calls and nothing else.
//
//   TargetFactory ours = PostgresStoreFactory();
//   TargetFactory raw = PostgresRawFactory();
//   ...  // benchmarks run
//   StopBenchPostgres();
//
// The server: $EVENTSTORE_BENCH_PG_URL when set, else a throwaway server
// started on first use (tests/support/postgres_server.h, durable: fsync and
// synchronous_commit on, as PostgreSQL ships). Every target gets a schema of
// its own on it, created empty and dropped with the target; ours are named
// "bench_<pid>_<n>", the baseline's "bench_raw_<pid>_<n>".
//
// The raw baseline (one connection, statements prepared once, binary
// parameters and results):
//   - a one-event append is one guarded statement, the version check and
//     the insert in one round trip: INSERT ... SELECT ... WHERE the previous
//     version exists (the unique (stream, version) index does the rest);
//   - a batch is one statement or one pipeline, by PostgresRawBatchMethod()
//     (COPY, a multi-row VALUES insert, an insert from unnest()ed arrays, or
//     one INSERT per event in pipeline mode under one Sync);
//   - reads run the store's own SELECT statements and touch every column of
//     every row without building objects or decoding metadata.

#ifndef EVENTSTORE_BENCH_POSTGRES_RAW_H_
#define EVENTSTORE_BENCH_POSTGRES_RAW_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/target.h"

namespace eventstore::bench {

// The URL of the benchmark server: $EVENTSTORE_BENCH_PG_URL, else that of a
// throwaway durable server started by the first call (thread-safe). The
// first call also checks that the raw baseline's tables are the store's
// (CheckPostgresRawSchemaMatchesStore); every later call returns the same
// result.
absl::StatusOr<std::string> BenchPostgresUrl();

// Stops the server BenchPostgresUrl() started, if any. Call once every
// target is gone (after CloseReadFixtures()).
void StopBenchPostgres();

// How the raw baseline writes a batch of more than one event.
enum class PostgresRawBatchMethod {
  // COPY ... FROM STDIN (FORMAT binary): one statement, its own
  // transaction; two round trips.
  kCopy,
  // INSERT ... VALUES (...), (...), ...: one prepared statement per batch
  // size; one round trip.
  kValues,
  // INSERT ... SELECT FROM unnest($arrays): one statement for every batch
  // size (the store's form, without its version arithmetic); one round trip.
  kUnnest,
  // One prepared INSERT per event in pipeline mode, one Sync: one implicit
  // transaction, one round trip.
  kPipeline,
};

// $EVENTSTORE_BENCH_PG_RAW_BATCH ("copy", "values", "unnest", "pipeline")
// when set, else the fastest measured on W2 (docs/benchmarks.md).
// kInvalidArgument for another value.
absl::StatusOr<PostgresRawBatchMethod> RawBatchMethodFromEnv();
const char* RawBatchMethodName(PostgresRawBatchMethod method);

// Fresh raw baselines, each in a new schema on BenchPostgresUrl(); the
// first writes batches by RawBatchMethodFromEnv(), the second by `method`
// (pg_batch_bench compares the four forms in one run).
TargetFactory PostgresRawFactory();
TargetFactory PostgresRawFactory(PostgresRawBatchMethod method);

// Fresh stores of ours: PostgresEventStore in a new schema on
// BenchPostgresUrl(), with the default options; as targets, and as stores
// for the workloads that use more of the library.
TargetFactory PostgresStoreFactory();
StoreFactory PostgresStoreOpener();

// For W5: `writers` targets over one fresh schema, one per writer thread.
// Ours share one PostgresEventStore whose pool has `writers` connections;
// the raw baselines have one connection each.
WritersFactory PostgresStoreWritersFactory();
WritersFactory PostgresRawWritersFactory();

// Creates a schema each way and compares the columns, constraints and
// indexes of their events and event_types tables. kFailedPrecondition, with
// both descriptions, when they differ (the copy in postgres_raw.cc is out
// of date).
absl::Status CheckPostgresRawSchemaMatchesStore(const std::string& url);

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_POSTGRES_RAW_H_
