// replica_bench: R1, a StoreReplica catching up from PostgreSQL into a local
// SQLite replica (docs/benchmarks.md, docs/failover.md), against a plain
// ReadAll of the same log measured in the same run.
//
//   R1_ReplicaCatchUp/postgres_to_sqlite
//       StoreReplica::SyncOnce() copying the whole log, 20,000 events (200
//       streams of 100, appended 20 at a time round robin, so streams
//       interleave in the log), into a new SQLite replica file (default
//       SqliteOptions: WAL, synchronous=FULL; default ReplicaOptions:
//       batches of 5,000)
//   R1_ReplicaCatchUp/postgres_to_sqlite_readall
//       the baseline: our PostgreSQL store's ReadAll of the same log from
//       the start, in pages of 1,000 (W4-like)
//
// Both sides use one PostgresEventStore, opened once. Each runs in 7
// rounds, back to back (the order alternating), labelled "round i/n"; each
// round's benchmark runs its side 2 times (iterations). Events/s are
// reported as items_per_second, and RatioReporter prints the median of the
// rounds' ratios catch-up / ReadAll with their range. Target (issue 11): at
// least 0.5. Opening, creating and removing the replica file are outside
// the timed region; the replica's first read of the primary's identity and
// its own progress are inside it, as in a real catch-up.
//
//   replica_bench
//   replica_bench --benchmark_format=json   # JSON on stdout, table on stderr
//
// PostgreSQL: $EVENTSTORE_BENCH_PG_URL (a new schema "r1_<time>" is created
// and left behind), else a throwaway durable server
// (tests/support/postgres_server.cc).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backends/postgres/postgres_event_store.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "bench/bench_display.h"
#include "bench/bench_postgres.h"
#include "bench/paired_rounds.h"
#include "bench/ratio_reporter.h"
#include "bench/workloads.h"
#include "eventstore/store_replica.h"
#include "tests/support/postgres_server.h"
#include "tests/support/temp_dir.h"

namespace eventstore::bench {
namespace {

constexpr int kStreams = 200;
constexpr int kPerAppend = 20;
constexpr int64_t kEvents = 20000;
constexpr int kPageEvents = 1000;
constexpr int kRounds = 7;
constexpr int kIterations = 2;

constexpr char kWorkloadName[] = "R1_ReplicaCatchUp";
constexpr char kBackendName[] = "postgres_to_sqlite";

// R1 in RatioReporter's terms: ours is the catch-up, the baseline our own
// ReadAll ("<workload>/<backend>_readall").
constexpr Workload kR1 = {kWorkloadName, 0.5, kIterations, kRounds,     kRounds,
                          false,         "",  "_readall",  "vs ReadAll"};

struct Env {
  std::unique_ptr<test::PostgresServer> server;
  std::unique_ptr<EventStore> primary;
  std::unique_ptr<test::TempDir> dir;
  int replicas = 0;
};

Env* env = nullptr;

[[noreturn]] void Die(const absl::Status& status, std::string_view what) {
  std::cerr << "replica_bench: " << what << ": " << status << std::endl;
  std::exit(1);
}

// Reads the primary's whole log in pages of kPageEvents; the events read.
int64_t ReadEverything(EventStore& store) {
  ReadAllOptions options;
  options.max_count = kPageEvents;
  int64_t events = 0;
  while (true) {
    absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
    if (!page.ok()) Die(page.status(), "ReadAll");
    events += static_cast<int64_t>(page->events.size());
    if (page->end_of_log) return events;
    options.from_position = page->next_position;
  }
}

void Setup() {
  env = new Env;
  absl::StatusOr<std::unique_ptr<test::TempDir>> dir = test::TempDir::Create();
  if (!dir.ok()) Die(dir.status(), "temporary directory");
  env->dir = *std::move(dir);
  absl::StatusOr<PostgresOptions> pg = BenchPostgresOptions("r1", &env->server);
  if (!pg.ok()) Die(pg.status(), "starting PostgreSQL");
  absl::StatusOr<std::unique_ptr<EventStore>> primary =
      PostgresEventStore::Open(*pg);
  if (!primary.ok()) Die(primary.status(), "opening PostgreSQL");
  env->primary = *std::move(primary);
  for (int64_t n = 0; n < kEvents; n += kPerAppend) {
    std::vector<EventData> batch;
    for (int64_t i = n; i < n + kPerAppend; ++i) batch.push_back(BenchEvent(i));
    absl::StatusOr<AppendResult> r = env->primary->Append(
        absl::StrCat("order-", (n / kPerAppend) % kStreams),
        ExpectedVersion::Any(), batch);
    if (!r.ok()) Die(r.status(), "filling the primary");
  }
  // Warms the pool's connections and the server's cache for both sides.
  if (ReadEverything(*env->primary) != kEvents) {
    Die(absl::InternalError("short read"), "filling the primary");
  }
}

void Teardown() {
  env->primary.reset();
  env->server.reset();
  env->dir.reset();
  delete env;
  env = nullptr;
}

void RemoveDatabase(const std::string& path) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path + suffix, ignored);
  }
}

// R1: each iteration copies the whole log into a new replica file.
void CatchUp(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    SqliteOptions options;
    options.path =
        env->dir->File(absl::StrCat("replica-", ++env->replicas, ".db"));
    absl::StatusOr<std::unique_ptr<EventStore>> local =
        SqliteEventStore::Open(options);
    if (!local.ok()) Die(local.status(), "opening the replica");
    absl::StatusOr<std::unique_ptr<StoreReplica>> replica =
        StoreReplica::Create(*env->primary, **local, ReplicaOptions{});
    if (!replica.ok()) Die(replica.status(), "creating the replica");
    state.ResumeTiming();
    absl::StatusOr<ReplicaSyncResult> r = (*replica)->SyncOnce();
    state.PauseTiming();
    if (!r.ok()) Die(r.status(), "SyncOnce");
    if (r->events_copied != kEvents || !r->caught_up) {
      Die(absl::InternalError(absl::StrCat(r->events_copied, " copied")),
          "SyncOnce");
    }
    replica->reset();
    local->reset();
    RemoveDatabase(options.path);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
}

// The baseline: the same log read with ReadAll, W4-like.
void ReadAll(benchmark::State& state) {
  for (auto _ : state) {
    if (ReadEverything(*env->primary) != kEvents) {
      Die(absl::InternalError("short read"), "ReadAll");
    }
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
}

int Main(int argc, char** argv) {
  BenchDisplay display = MakeBenchDisplay(argc, argv);
  Backend backend;
  backend.name = kBackendName;
  const Workload workloads[] = {kR1};
  const Backend backends[] = {backend};
  RatioReporter reporter(std::move(display.reporter), workloads, backends,
                         display.table_out);
  reporter.set_title(
      "Ratio replica catch-up / ReadAll of the same log (PostgreSQL):\n"
      "events/s are each side's median over rounds; the ratio is the median\n"
      "of the rounds' ratios (each round runs the two sides back to back), "
      "with their range.");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("events", std::to_string(kEvents));
  benchmark::AddCustomContext("payload_bytes",
                              std::to_string(TypicalPayloadBytes()));
  Setup();
  // Catch-up first in odd rounds, ReadAll first in even ones.
  RegisterPairedRounds(kR1, kBackendName, CatchUp, ReadAll);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  Teardown();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) { return eventstore::bench::Main(argc, argv); }
