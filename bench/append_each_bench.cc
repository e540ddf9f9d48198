// append_each_bench: F0, AppendEach against Append (docs/benchmarks.md,
// docs/architecture.md), measured in the same run, paired by round.
//
//   F0_AppendEach/<backend>
//       1,000 single-event appends, each to a new stream with NoStream(),
//       made through AppendEach in calls of 100 appends
//   F0_AppendEach/<backend>_append
//       the baseline: the same 1,000 appends, one Append call each
//
// Backends: "sqlite", a SQLite file with the default SqliteOptions (WAL,
// synchronous=FULL); with PostgreSQL built in, "postgres", a throwaway
// durable server ($EVENTSTORE_BENCH_PG_URL instead when set: a new schema
// "f0_<time>" is created and left behind). One store per backend serves
// every run; each run appends to streams of its own. Events are W1's
// (BenchEvent), built outside the timing. Each side runs in 5 rounds, back
// to back with the other (the order alternating), labelled "round i/n";
// RatioReporter prints the median of the rounds' ratios AppendEach /
// Append, with their range. No target: the table shows the speed-up of
// batching (the replay of a failover journal relies on it: failover_bench's
// F1).
//
//   append_each_bench
//   append_each_bench --benchmark_filter=/sqlite   # SQLite only
//   append_each_bench --benchmark_format=json      # JSON on stdout

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "bench/bench_display.h"
#include "bench/paired_rounds.h"
#include "bench/ratio_reporter.h"
#include "bench/workloads.h"
#include "eventstore/event_store.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_BENCH_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#include "bench/bench_postgres.h"
#include "tests/support/postgres_server.h"
#endif

namespace eventstore::bench {
namespace {

constexpr int64_t kAppends = 1000;
constexpr int kBatch = 100;
constexpr int kRounds = 5;

constexpr Workload kF0 = {
    "F0_AppendEach",      0, 1, kRounds, kRounds, false, "", "_append",
    "AppendEach / Append"};

[[noreturn]] void Die(const absl::Status& status, std::string_view what) {
  std::cerr << "append_each_bench: " << what << ": " << status << std::endl;
  std::exit(1);
}

struct Env {
  std::unique_ptr<test::TempDir> dir;
#ifdef EVENTSTORE_BENCH_POSTGRES
  std::unique_ptr<test::PostgresServer> server;
#endif
  // The store of each backend, by name.
  std::map<std::string, std::unique_ptr<EventStore>> stores;
  // Runs so far, naming streams apart.
  int runs = 0;
};

Env* env = nullptr;

// Opens the store of every backend built in; their names, in order.
std::vector<std::string> Setup() {
  env = new Env;
  absl::StatusOr<std::unique_ptr<test::TempDir>> dir = test::TempDir::Create();
  if (!dir.ok()) Die(dir.status(), "temporary directory");
  env->dir = *std::move(dir);
  SqliteOptions sqlite;
  sqlite.path = env->dir->File("f0.db");
  absl::StatusOr<std::unique_ptr<EventStore>> store =
      SqliteEventStore::Open(sqlite);
  if (!store.ok()) Die(store.status(), "opening SQLite");
  env->stores["sqlite"] = *std::move(store);
  std::vector<std::string> names = {"sqlite"};
#ifdef EVENTSTORE_BENCH_POSTGRES
  absl::StatusOr<PostgresOptions> pg = BenchPostgresOptions("f0", &env->server);
  if (!pg.ok()) Die(pg.status(), "starting PostgreSQL");
  store = PostgresEventStore::Open(*pg);
  if (!store.ok()) Die(store.status(), "opening PostgreSQL");
  env->stores["postgres"] = *std::move(store);
  names.push_back("postgres");
#endif
  return names;
}

void Teardown() {
  env->stores.clear();
#ifdef EVENTSTORE_BENCH_POSTGRES
  env->server.reset();
#endif
  env->dir.reset();
  delete env;
  env = nullptr;
}

// One run: kAppends single-event appends to new streams, in AppendEach
// calls of `batch` appends, or one Append each when `batch` is 0.
void Appends(benchmark::State& state, EventStore& store, int batch) {
  for (auto _ : state) {
    state.PauseTiming();
    const int run = ++env->runs;
    std::vector<EventData> events;
    std::vector<std::string> streams;
    for (int64_t i = 0; i < kAppends; ++i) {
      events.push_back(BenchEvent(i));
      streams.push_back(absl::StrCat("f0-", run, "-", i));
    }
    std::vector<AppendRequest> requests;
    for (int64_t i = 0; i < kAppends; ++i) {
      requests.push_back({streams[i],
                          ExpectedVersion::NoStream(),
                          absl::MakeConstSpan(&events[i], 1),
                          {}});
    }
    state.ResumeTiming();
    if (batch == 0) {
      for (const AppendRequest& request : requests) {
        absl::StatusOr<AppendResult> r = store.Append(request);
        if (!r.ok()) Die(r.status(), "Append");
      }
      continue;
    }
    for (int64_t first = 0; first < kAppends; first += batch) {
      const auto some = absl::MakeConstSpan(requests).subspan(
          first, std::min<int64_t>(batch, kAppends - first));
      absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> r =
          store.AppendEach(some);
      if (!r.ok()) Die(r.status(), "AppendEach");
      for (const absl::StatusOr<AppendResult>& one : *r) {
        if (!one.ok()) Die(one.status(), "AppendEach");
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * kAppends);
}

// Round by round, per backend, AppendEach and Append back to back:
// AppendEach first in odd rounds, Append first in even ones.
void Register(const std::vector<std::string>& backends) {
  for (const std::string& backend : backends) {
    EventStore* store = env->stores[backend].get();
    RegisterPairedRounds(
        kF0, backend,
        [store](benchmark::State& state) { Appends(state, *store, kBatch); },
        [store](benchmark::State& state) { Appends(state, *store, 0); });
  }
}

int Main(int argc, char** argv) {
  BenchDisplay display = MakeBenchDisplay(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("appends", std::to_string(kAppends));
  benchmark::AddCustomContext("batch", std::to_string(kBatch));
  benchmark::AddCustomContext("payload_bytes",
                              std::to_string(TypicalPayloadBytes()));
  const std::vector<std::string> names = Setup();
  std::vector<Backend> backends;
  for (const std::string& name : names) backends.emplace_back().name = name;
  const Workload workloads[] = {kF0};
  RatioReporter reporter(std::move(display.reporter), workloads, backends,
                         display.table_out);
  reporter.set_title(
      "Ratio AppendEach (calls of 100 appends) / Append (one call each), "
      "single-event\nappends to new streams: events/s are each side's "
      "median over rounds; the ratio\nis the median of the rounds' ratios "
      "(each round runs the two sides back to\nback), with their range.");
  Register(names);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  Teardown();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) { return eventstore::bench::Main(argc, argv); }
