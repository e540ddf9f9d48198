// eventstore_bench: the workloads of docs/benchmarks.md on our SQLite store
// and on raw sqlite3 calls writing and reading the same rows, at
// synchronous=NORMAL ("sqlite") and synchronous=FULL ("sqlite_full"), both
// in WAL mode; on our PostgreSQL store and on raw libpq calls ("postgres",
// built with EVENTSTORE_WITH_POSTGRES), with W5's concurrent writers there;
// P1 (projection catch-up beside ReadAll) and P2 (aggregate load with and
// without a snapshot) on "sqlite" and "postgres"; then a table of ratios.
//
//   eventstore_bench                               # everything
//   eventstore_bench --benchmark_filter=W3_        # one workload
//   eventstore_bench --benchmark_filter=-_full     # skip synchronous=FULL
//   eventstore_bench --benchmark_filter=/postgres  # PostgreSQL only
//
// PostgreSQL: the server named by $EVENTSTORE_BENCH_PG_URL, else a
// throwaway durable one started on first use (bench/postgres_raw.h).
//
// The whole run takes from two minutes to ten, depending mostly on how
// long the disk takes to fsync: W1 at synchronous=FULL and on PostgreSQL
// is 10,000 commits a side, each waiting for the disk.
//
// Google Benchmark's own flags apply; --benchmark_format=json writes JSON to
// stdout and the ratio table to stderr.

#include <benchmark/benchmark.h>

#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "bench/app_workloads.h"
#include "bench/bench_display.h"
#include "bench/ratio_reporter.h"
#include "bench/sqlite_raw.h"
#include "bench/target.h"
#include "bench/workloads.h"
#if EVENTSTORE_BENCH_POSTGRES
#include "bench/postgres_raw.h"
#endif

namespace eventstore::bench {
namespace {

std::vector<Backend> Backends() {
  using Sync = SqliteOptions::Synchronous;
  std::vector<Backend> backends(2);
  backends[0].name = "sqlite";
  backends[0].store = SqliteStoreFactory(Sync::kNormal);
  backends[0].raw = SqliteRawFactory(Sync::kNormal);
  backends[0].store_into =
      StoreTargetFactory(SqliteStoreOpener(Sync::kNormal), ReadApi::kInto);
  backends[0].open_store = SqliteStoreOpener(Sync::kNormal);
  backends[1].name = "sqlite_full";
  backends[1].store = SqliteStoreFactory(Sync::kFull);
  backends[1].raw = SqliteRawFactory(Sync::kFull);
  backends[1].store_into =
      StoreTargetFactory(SqliteStoreOpener(Sync::kFull), ReadApi::kInto);
  backends[1].commits_wait_for_disk = true;
#if EVENTSTORE_BENCH_POSTGRES
  Backend postgres;
  postgres.name = "postgres";
  postgres.store = PostgresStoreFactory();
  postgres.raw = PostgresRawFactory();
  postgres.store_into =
      StoreTargetFactory(PostgresStoreOpener(), ReadApi::kInto);
  postgres.open_store = PostgresStoreOpener();
  postgres.commits_wait_for_disk = true;
  postgres.target_ratios = {{"W1_SingleAppend", 0.9},
                            {"W2_BatchAppend", 0.8},
                            {"W3_ReadStream", 0.6},
                            {"W4_ReadAll", 0.6}};
  postgres.store_writers = PostgresStoreWritersFactory();
  postgres.raw_writers = PostgresRawWritersFactory();
  backends.push_back(std::move(postgres));
#endif
  return backends;
}

int Main(int argc, char** argv) {
  BenchDisplay display = MakeBenchDisplay(argc, argv);
  const std::vector<Backend> backends = Backends();
  std::vector<Workload> workloads(Workloads().begin(), Workloads().end());
  workloads.insert(workloads.end(), AppWorkloads().begin(),
                   AppWorkloads().end());
  RatioReporter reporter(std::move(display.reporter), workloads, backends,
                         display.table_out);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  const absl::Status schema = CheckRawSchemaMatchesStore();
  if (!schema.ok()) {
    std::cerr << "eventstore_bench: " << schema << "\n";
    return 1;
  }
  benchmark::AddCustomContext("payload_bytes",
                              std::to_string(TypicalPayloadBytes()));
  benchmark::AddCustomContext("metadata_bytes",
                              std::to_string(TypicalMetadataBytes()));
#if EVENTSTORE_BENCH_POSTGRES
  const absl::StatusOr<PostgresRawBatchMethod> method = RawBatchMethodFromEnv();
  if (!method.ok()) {
    std::cerr << "eventstore_bench: " << method.status() << "\n";
    return 1;
  }
  benchmark::AddCustomContext("postgres_raw_batch",
                              RawBatchMethodName(*method));
#endif

  RegisterWorkloads(backends);
  RegisterAppWorkloads(backends);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  CloseReadFixtures();
  CloseAppFixtures();
#if EVENTSTORE_BENCH_POSTGRES
  StopBenchPostgres();
#endif
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) { return eventstore::bench::Main(argc, argv); }
