// The PostgreSQL server a benchmark runs on: the one named by
// $EVENTSTORE_BENCH_PG_URL when set, else a throwaway durable server
// (tests/support/postgres_server.h; fsync and synchronous_commit on, as
// PostgreSQL ships) that lives as long as the caller keeps it.
//
//   std::unique_ptr<test::PostgresServer> server;  // outlives the stores
//   absl::StatusOr<PostgresOptions> pg = BenchPostgresOptions("f1", &server);
//   if (!pg.ok()) Die(pg.status(), "starting PostgreSQL");
//   ... PostgresEventStore::Open(*pg) ...
//   server.reset();  // after the stores are gone: stops the server
//
// (eventstore_bench and instrumentation_bench share one server per process
// through bench/postgres_raw.h's BenchPostgresUrl(), which starts it here.)

#ifndef EVENTSTORE_BENCH_BENCH_POSTGRES_H_
#define EVENTSTORE_BENCH_BENCH_POSTGRES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"

namespace eventstore::bench {

// The URL of the benchmark server: $EVENTSTORE_BENCH_PG_URL, leaving
// *server untouched; else that of a throwaway durable server started now
// and stored in *server (the caller keeps it alive while the URL is used).
// An error when the server cannot start (with the tail of its log).
absl::StatusOr<std::string> StartBenchPostgres(
    std::unique_ptr<test::PostgresServer>* server);

// Options for a store on the benchmark server (StartBenchPostgres):
// conninfo is its URL. On a server named by $EVENTSTORE_BENCH_PG_URL the
// schema is a new one, "<schema_prefix>_<Unix time in ms>", which the store
// creates and the benchmark leaves behind; on a throwaway server it is the
// default.
absl::StatusOr<PostgresOptions> BenchPostgresOptions(
    const std::string& schema_prefix,
    std::unique_ptr<test::PostgresServer>* server);

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_BENCH_POSTGRES_H_
