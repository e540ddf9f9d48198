// M1: `eventstore migrate` throughput (docs/benchmarks.md), with the
// references it is held to, measured in the same run.
//
//   M1_Migrate/sqlite_to_postgres   100,000 events (1,000 streams of 100)
//   M1_Migrate/postgres_to_sqlite   from a SQLite file (synchronous=NORMAL) to
//                                   a new PostgreSQL schema, and back into a
//                                   new SQLite file; events/s as
//                                   items_per_second
//   M1_Ref/W4_ReadAll/<backend>     reading the same source log in pages of
//                                   1,000 (W4-like)
//   M1_Ref/W2_BatchAppend/<backend> appending 100,000 events in batches of
//                                   100 to new streams of a new store
//                                   (W2-like)
//
// Target: each M1 at least 0.5x the slower of its source's W4 and its
// target's W2; a table of the ratios is printed after the run.
// PostgreSQL: $EVENTSTORE_BENCH_PG_URL, else a throwaway durable server
// (tests/support/postgres_server.cc). Each run migrates into a new schema
// (or file); schemas are left behind on a server named by the variable.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_postgres.h"
#include "benchmark/benchmark.h"
#include "eventstore/event_importer.h"
#include "eventstore/open_event_store.h"
#include "tests/support/postgres_server.h"
#include "tools/migrator.h"

namespace eventstore::bench {
namespace {

constexpr int kStreams = 1000;
constexpr int kPerStream = 100;
constexpr int64_t kEvents = int64_t{kStreams} * kPerStream;

struct Env {
  std::unique_ptr<test::PostgresServer> server;
  std::string pg_url;
  std::string dir;
  std::string sqlite_source;
  std::string pg_source;
  int counter = 0;
  // Rates per benchmark name, one per repetition.
  std::map<std::string, std::vector<double>> rates;
};

Env* env = nullptr;

void Die(const absl::Status& status, const char* what) {
  std::cerr << "migrate_bench: " << what << ": " << status << std::endl;
  std::exit(1);
}

std::unique_ptr<EventStore> MustOpen(const std::string& url) {
  absl::StatusOr<std::unique_ptr<EventStore>> store = OpenEventStore(url);
  if (!store.ok()) Die(store.status(), "open");
  return *std::move(store);
}

std::string NewSqliteUrl() {
  return absl::StrCat("sqlite://", env->dir, "/m1-", ++env->counter,
                      ".db?synchronous=normal");
}

std::string NewPgUrl() {
  const char sep = env->pg_url.find('?') == std::string::npos ? '?' : '&';
  return absl::StrCat(env->pg_url, std::string(1, sep), "schema=m1_",
                      absl::ToUnixMillis(absl::Now()), "_", ++env->counter);
}

std::vector<EventData> Batch(int stream, int from, int n) {
  std::vector<EventData> batch;
  for (int i = from; i < from + n; ++i) {
    EventData e;
    e.id = Uuid::Generate();
    e.type = "eventstore.bench.v1.OrderPlaced";
    e.payload =
        absl::StrFormat("order-%d/%d:%s", stream, i, std::string(80, 'x'));
    e.metadata.set_correlation_id(absl::StrCat("c-", stream, "-", i));
    batch.push_back(std::move(e));
  }
  return batch;
}

// W2-like: kEvents in batches of 100 to new streams; events/s.
double AppendAll(EventStore& store) {
  const absl::Time start = absl::Now();
  for (int s = 0; s < kStreams; ++s) {
    std::vector<EventData> batch = Batch(s, 0, kPerStream);
    absl::StatusOr<AppendResult> r = store.Append(
        absl::StrCat("cart-", s), ExpectedVersion::NoStream(), batch);
    if (!r.ok()) Die(r.status(), "append");
  }
  return static_cast<double>(kEvents) /
         absl::ToDoubleSeconds(absl::Now() - start);
}

void Setup() {
  env = new Env;
  char dir[] = "/tmp/migrate_bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) Die(absl::InternalError("mkdtemp"), "tmp");
  env->dir = dir;
  absl::StatusOr<std::string> pg_url = StartBenchPostgres(&env->server);
  if (!pg_url.ok()) Die(pg_url.status(), "starting PostgreSQL");
  env->pg_url = *std::move(pg_url);
  // The SQLite source: 1,000 streams interleaved in the log.
  env->sqlite_source = NewSqliteUrl();
  {
    std::unique_ptr<EventStore> source = MustOpen(env->sqlite_source);
    for (int round = 0; round < kPerStream; round += 25) {
      for (int s = 0; s < kStreams; ++s) {
        std::vector<EventData> batch = Batch(s, round, 25);
        absl::StatusOr<AppendResult> r = source->Append(
            absl::StrCat("order-", s), ExpectedVersion::Any(), batch);
        if (!r.ok()) Die(r.status(), "filling the source");
      }
    }
  }
  // The PostgreSQL source: a copy of it.
  env->pg_source = NewPgUrl();
  {
    std::unique_ptr<EventStore> from = MustOpen(env->sqlite_source);
    std::unique_ptr<EventStore> to = MustOpen(env->pg_source);
    tools::StoreSource source(*from, "sqlite source");
    tools::MigrateOptions options;
    options.quiet = true;
    std::ostringstream sink;
    absl::StatusOr<tools::MigrationReport> r =
        tools::Migrator(options, sink).Run(source, *to, "postgres source");
    if (!r.ok()) Die(r.status(), "filling the PostgreSQL source");
  }
}

void Record(benchmark::State& state, const std::string& name, double rate) {
  env->rates[name].push_back(rate);
  state.counters["events_per_second"] = rate;
}

void Migrate(benchmark::State& state, bool sqlite_to_postgres,
             const std::string& name) {
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<EventStore> from =
        MustOpen(sqlite_to_postgres ? env->sqlite_source : env->pg_source);
    std::unique_ptr<EventStore> to =
        MustOpen(sqlite_to_postgres ? NewPgUrl() : NewSqliteUrl());
    tools::StoreSource source(*from, "source");
    tools::MigrateOptions options;
    options.quiet = true;
    std::ostringstream sink;
    state.ResumeTiming();
    const absl::Time start = absl::Now();
    absl::StatusOr<tools::MigrationReport> r =
        tools::Migrator(options, sink).Run(source, *to, "target");
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (!r.ok()) Die(r.status(), "migrate");
    if (r->events_copied != kEvents) {
      Die(absl::InternalError(absl::StrCat(r->events_copied, " copied")),
          "migrate");
    }
    Record(state, name, static_cast<double>(kEvents) / seconds);
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
}

void BM_M1_SqliteToPostgres(benchmark::State& state) {
  Migrate(state, true, "M1_Migrate/sqlite_to_postgres");
}
void BM_M1_PostgresToSqlite(benchmark::State& state) {
  Migrate(state, false, "M1_Migrate/postgres_to_sqlite");
}

void ReadAllOf(benchmark::State& state, bool sqlite, const std::string& name) {
  std::unique_ptr<EventStore> store =
      MustOpen(sqlite ? env->sqlite_source : env->pg_source);
  for (auto _ : state) {
    const absl::Time start = absl::Now();
    ReadAllOptions options;
    int64_t events = 0;
    while (true) {
      absl::StatusOr<ReadAllPage> page = store->ReadAll(options);
      if (!page.ok()) Die(page.status(), "read");
      events += static_cast<int64_t>(page->events.size());
      if (page->events.empty()) break;
      options.from_position = page->next_position;
    }
    if (events != kEvents) Die(absl::InternalError("short read"), "read");
    Record(state, name,
           static_cast<double>(kEvents) /
               absl::ToDoubleSeconds(absl::Now() - start));
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
}

void BM_W4_Sqlite(benchmark::State& state) {
  ReadAllOf(state, true, "M1_Ref/W4_ReadAll/sqlite");
}
void BM_W4_Postgres(benchmark::State& state) {
  ReadAllOf(state, false, "M1_Ref/W4_ReadAll/postgres");
}

void AppendTo(benchmark::State& state, bool sqlite, const std::string& name) {
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<EventStore> store =
        MustOpen(sqlite ? NewSqliteUrl() : NewPgUrl());
    state.ResumeTiming();
    Record(state, name, AppendAll(*store));
  }
  state.SetItemsProcessed(state.iterations() * kEvents);
}

void BM_W2_Sqlite(benchmark::State& state) {
  AppendTo(state, true, "M1_Ref/W2_BatchAppend/sqlite");
}
void BM_W2_Postgres(benchmark::State& state) {
  AppendTo(state, false, "M1_Ref/W2_BatchAppend/postgres");
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void PrintRatios() {
  auto rate = [](const std::string& name) { return Median(env->rates[name]); };
  std::printf("\nM1 against its references (medians, events/s):\n");
  std::printf("%-32s %12s %12s %12s %7s %s\n", "benchmark", "M1", "source W4",
              "target W2", "ratio", "(target 0.50)");
  struct Row {
    const char* m1;
    const char* w4;
    const char* w2;
  };
  const Row rows[] = {
      {"M1_Migrate/sqlite_to_postgres", "M1_Ref/W4_ReadAll/sqlite",
       "M1_Ref/W2_BatchAppend/postgres"},
      {"M1_Migrate/postgres_to_sqlite", "M1_Ref/W4_ReadAll/postgres",
       "M1_Ref/W2_BatchAppend/sqlite"},
  };
  for (const Row& row : rows) {
    const double m1 = rate(row.m1);
    const double w4 = rate(row.w4);
    const double w2 = rate(row.w2);
    const double slower = std::min(w4, w2);
    const double ratio = slower > 0 ? m1 / slower : 0;
    std::printf("%-32s %12.0f %12.0f %12.0f %7.3f %s\n", row.m1, m1, w4, w2,
                ratio, ratio >= 0.5 ? "met" : "MISSED");
  }
}

BENCHMARK(BM_W4_Sqlite)
    ->Name("M1_Ref/W4_ReadAll/sqlite")
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W4_Postgres)
    ->Name("M1_Ref/W4_ReadAll/postgres")
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W2_Sqlite)
    ->Name("M1_Ref/W2_BatchAppend/sqlite")
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_W2_Postgres)
    ->Name("M1_Ref/W2_BatchAppend/postgres")
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_M1_SqliteToPostgres)
    ->Name("M1_Migrate/sqlite_to_postgres")
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_M1_PostgresToSqlite)
    ->Name("M1_Migrate/postgres_to_sqlite")
    ->Iterations(1)
    ->Repetitions(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  eventstore::bench::Setup();
  benchmark::RunSpecifiedBenchmarks();
  eventstore::bench::PrintRatios();
  benchmark::Shutdown();
  std::string rm = "rm -rf '" + eventstore::bench::env->dir + "'";
  return std::system(rm.c_str()) == 0 ? 0 : 0;
}
