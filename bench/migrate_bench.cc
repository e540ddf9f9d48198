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
//
// M1S, migration at scale (issue 13, item 5), instead of the above when
// --m1_scale_events=N is given:
//
//   migrate_bench --m1_scale_events=10000000 [--m1_scale_reverse]
//
// fills a SQLite source (synchronous=NORMAL, in a new directory under
// $TMPDIR) with N events of scale_bench's shape (bench/scale_store.h:
// 100-event batches round robin over 100,000 streams, ~100-byte payloads),
// then, in this order: migrates the whole store into a new PostgreSQL
// schema with the Migrator (`eventstore migrate`, batches of 1,000),
// reporting the rate per million events copied as it goes; reads the
// source's whole log (ReadAll, pages of 1,000: the source's read rate); and
// writes --m1_scale_ref_events (default 500,000) of its events to new
// schemas in batches of 1,000 with Append (new streams, NoStream()) and
// with ImportEvents, timing only those calls (the target's batch-write
// rates). With --m1_scale_reverse it then migrates the PostgreSQL copy into
// a new SQLite file the same way.
// Prints a table of rates and ratios; removes the files, stops the server.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_postgres.h"
#include "bench/scale_store.h"
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

// --- M1S: migration at scale --------------------------------------------

struct ScaleFlags {
  int64_t events = 0;  // 0: M1S is off
  int64_t ref_events = 500000;
  bool reverse = false;
};

ScaleFlags& TheScaleFlags() {
  static auto* flags = new ScaleFlags;
  return *flags;
}

// Takes the --m1_scale_* flags out of argv.
void ParseScaleFlags(int& argc, char** argv) {
  ScaleFlags& flags = TheScaleFlags();
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    bool ok = true;
    if (absl::StartsWith(arg, "--m1_scale_events=")) {
      ok = absl::SimpleAtoi(arg.substr(18), &flags.events) && flags.events > 0;
    } else if (absl::StartsWith(arg, "--m1_scale_ref_events=")) {
      ok = absl::SimpleAtoi(arg.substr(22), &flags.ref_events) &&
           flags.ref_events > 0;
    } else if (arg == "--m1_scale_reverse") {
      flags.reverse = true;
    } else {
      argv[out++] = argv[i];
      continue;
    }
    if (!ok) Die(absl::InvalidArgumentError(arg), "bad flag");
  }
  argc = out;
}

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A source that notes when the events it has handed out pass each
// million (the Migrator reads one batch ahead of its imports).
class TimedSource final : public tools::MigrationSource {
 public:
  explicit TimedSource(tools::MigrationSource& inner) : inner_(inner) {}

  // Seconds from Start() to each successive million events handed out.
  const std::vector<double>& marks() const { return marks_; }
  void Start() { start_ = Clock::now(); }

  const std::string& description() const override {
    return inner_.description();
  }
  absl::StatusOr<std::string> StoreId() override { return inner_.StoreId(); }
  absl::StatusOr<std::optional<int64_t>> EventsAfter(Position after) override {
    return inner_.EventsAfter(after);
  }
  absl::StatusOr<std::vector<RecordedEvent>> NextEvents(Position after,
                                                        int max) override {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        inner_.NextEvents(after, max);
    if (events.ok()) {
      handed_out_ += static_cast<int64_t>(events->size());
      while (handed_out_ >=
             (static_cast<int64_t>(marks_.size()) + 1) * 1000000) {
        marks_.push_back(Since(start_));
        const double previous =
            marks_.size() > 1 ? marks_[marks_.size() - 2] : 0;
        std::cerr << "M1S migrate: " << marks_.size() << "M events at "
                  << marks_.back() << " s, "
                  << static_cast<int64_t>(1000000 / (marks_.back() - previous))
                  << " events/s in this million" << std::endl;
      }
    }
    return events;
  }
  absl::Status StreamRows(
      const std::function<absl::Status(absl::Span<const StreamRowRecord>)>&
          page) override {
    return inner_.StreamRows(page);
  }
  absl::Status SubjectKeys(
      bool with_keys,
      const std::function<absl::Status(const std::vector<SubjectKeyRecord>&)>&
          page,
      int64_t& live_left_out) override {
    return inner_.SubjectKeys(with_keys, page, live_left_out);
  }
  absl::StatusOr<std::vector<RecordedType>> Types() override {
    return inner_.Types();
  }
  absl::StatusOr<std::vector<Checkpoint>> Checkpoints() override {
    return inner_.Checkpoints();
  }
  absl::Status DeadLetters(
      const std::function<absl::Status(absl::Span<const DeadLetter>)>& page)
      override {
    return inner_.DeadLetters(page);
  }
  absl::Status Outbox(
      const std::function<absl::Status(absl::Span<const OutboxEntry>)>& page)
      override {
    return inner_.Outbox(page);
  }
  absl::Status Snapshots(
      const std::function<absl::Status(absl::Span<const Snapshot>)>& page)
      override {
    return inner_.Snapshots(page);
  }

 private:
  tools::MigrationSource& inner_;
  Clock::time_point start_ = Clock::now();
  int64_t handed_out_ = 0;
  std::vector<double> marks_;
};

// Fills `url` with `events` of the scale shape; events/s.
double FillScaleSource(const std::string& url, int64_t events) {
  std::unique_ptr<EventStore> store = MustOpen(url);
  std::vector<int64_t> versions(kScaleStreams, 0);
  const int64_t batches = events / kScaleBatchEvents;
  double seconds = 0;
  for (int64_t b = 0; b < batches; ++b) {
    const std::vector<EventData> batch = ScaleBatchEvents(b);
    int64_t& version = versions[static_cast<size_t>(b % kScaleStreams)];
    const Clock::time_point start = Clock::now();
    absl::StatusOr<AppendResult> r =
        store->Append(ScaleStreamName(b % kScaleStreams),
                      version == 0 ? ExpectedVersion::NoStream()
                                   : ExpectedVersion::Exactly(version),
                      batch);
    seconds += Since(start);
    if (!r.ok()) Die(r.status(), "filling the source");
    version = r->next_expected_version;
    if ((b + 1) % 10000 == 0) {
      std::cerr << "M1S fill: " << (b + 1) * kScaleBatchEvents << " events, "
                << static_cast<int64_t>((b + 1) * kScaleBatchEvents / seconds)
                << " events/s" << std::endl;
    }
  }
  return static_cast<double>(batches * kScaleBatchEvents) / seconds;
}

// The source's whole log in pages of 1,000; events/s.
double ReadWholeLog(EventStore& store, int64_t expected) {
  const Clock::time_point start = Clock::now();
  ReadAllOptions options;
  options.max_count = 1000;
  int64_t events = 0;
  while (true) {
    absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
    if (!page.ok()) Die(page.status(), "read");
    if (page->events.empty()) break;
    events += static_cast<int64_t>(page->events.size());
    options.from_position = page->next_position;
  }
  if (events != expected) {
    Die(absl::InternalError(absl::StrCat(events, " read")), "read");
  }
  return static_cast<double>(events) / Since(start);
}

// The first `events` of `source`'s log written to `target` in batches of
// 1,000, by Append (each batch to a new stream, NoStream()) or by
// ImportEvents; only those calls are timed. Events/s.
double WriteReference(EventStore& source, EventStore& target, int64_t events,
                      bool import) {
  ReadAllOptions options;
  options.max_count = 1000;
  double seconds = 0;
  int64_t written = 0;
  int64_t batch = 0;
  while (written < events) {
    absl::StatusOr<ReadAllPage> page = source.ReadAll(options);
    if (!page.ok()) Die(page.status(), "read");
    if (page->events.empty()) break;
    options.from_position = page->next_position;
    std::vector<EventData> data;
    if (!import) {
      for (const RecordedEvent& e : page->events) {
        EventData d;
        d.id = e.id;
        d.type = e.type;
        d.payload = e.payload;
        d.metadata = e.metadata;
        data.push_back(std::move(d));
      }
    }
    const Clock::time_point start = Clock::now();
    absl::Status status = import
                              ? target.importer().ImportEvents(
                                    "m1s-ref", "m1s reference", page->events)
                              : target
                                    .Append(absl::StrCat("ref-", batch++),
                                            ExpectedVersion::NoStream(), data)
                                    .status();
    seconds += Since(start);
    if (!status.ok()) Die(status, import ? "import" : "append");
    written += static_cast<int64_t>(page->events.size());
  }
  return static_cast<double>(written) / seconds;
}

struct ScaleResult {
  std::string name;
  double read = 0;
  std::vector<double> append;  // before and after the migration
  std::vector<double> import;
  double migrate = 0;
  double seconds = 0;
  std::vector<double> marks;
};

ScaleResult MigrateAtScale(const std::string& name, const std::string& from,
                           const std::function<std::string()>& new_target,
                           int64_t events, const std::string& kept_target) {
  const ScaleFlags& flags = TheScaleFlags();
  ScaleResult result;
  result.name = name;
  std::unique_ptr<EventStore> source = MustOpen(from);
  auto references = [&] {
    for (bool import : {false, true}) {
      std::unique_ptr<EventStore> target = MustOpen(new_target());
      const double rate =
          WriteReference(*source, *target, flags.ref_events, import);
      (import ? result.import : result.append).push_back(rate);
      std::cerr << name << ": target " << (import ? "import" : "append")
                << " of 1,000-event batches " << static_cast<int64_t>(rate)
                << " events/s" << std::endl;
    }
  };
  {
    std::unique_ptr<EventStore> target = MustOpen(kept_target);
    tools::StoreSource store_source(*source, "source");
    TimedSource timed(store_source);
    tools::MigrateOptions options;
    options.quiet = true;
    std::ostringstream sink;
    timed.Start();
    const Clock::time_point start = Clock::now();
    absl::StatusOr<tools::MigrationReport> r =
        tools::Migrator(options, sink).Run(timed, *target, "target");
    result.seconds = Since(start);
    if (!r.ok()) Die(r.status(), "migrate");
    if (r->events_copied != events) {
      Die(absl::InternalError(absl::StrCat(r->events_copied, " copied")),
          "migrate");
    }
    result.migrate = static_cast<double>(events) / result.seconds;
    result.marks = timed.marks();
    std::cerr << name << ": migrated " << events << " events in "
              << result.seconds << " s" << std::endl;
  }
  result.read = ReadWholeLog(*source, events);
  std::cerr << name << ": source read " << static_cast<int64_t>(result.read)
            << " events/s" << std::endl;
  references();
  return result;
}

void PrintScale(const ScaleResult& r, int64_t events) {
  auto median = [](std::vector<double> v) { return Median(std::move(v)); };
  const double append = median(r.append);
  const double import = median(r.import);
  std::printf("\nM1S %s: %lld events in %.1f s, %.0f events/s\n",
              r.name.c_str(), static_cast<long long>(events), r.seconds,
              r.migrate);
  std::printf(
      "  source ReadAll (pages of 1,000):      %10.0f events/s  "
      "migrate / read   %.3f\n",
      r.read, r.migrate / r.read);
  std::printf(
      "  target Append, 1,000-event batches:   %10.0f events/s  "
      "migrate / append %.3f\n",
      append, r.migrate / append);
  std::printf(
      "  target ImportEvents, 1,000 a batch:   %10.0f events/s  "
      "migrate / import %.3f\n",
      import, r.migrate / import);
  std::printf("  per million copied (events/s):");
  double previous = 0;
  for (size_t i = 0; i < r.marks.size(); ++i) {
    std::printf("%s %.0f", i == 0 ? "" : ",",
                1000000.0 / (r.marks[i] - previous));
    previous = r.marks[i];
  }
  std::printf("\n");
  std::fflush(stdout);
}

void RunScale() {
  const ScaleFlags& flags = TheScaleFlags();
  const int64_t events = flags.events / kScaleBatchEvents * kScaleBatchEvents;
  env = new Env;
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/migrate_bench-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    Die(absl::InternalError("mkdtemp"), "tmp");
  }
  env->dir = pattern;
  absl::StatusOr<std::string> pg_url = StartBenchPostgres(&env->server);
  if (!pg_url.ok()) Die(pg_url.status(), "starting PostgreSQL");
  env->pg_url = *std::move(pg_url);
  env->sqlite_source = NewSqliteUrl();
  const Clock::time_point start = Clock::now();
  const double fill = FillScaleSource(env->sqlite_source, events);
  std::printf(
      "M1S fill of the SQLite source: %lld events, %.0f events/s in "
      "Append, %.0f s\n",
      static_cast<long long>(events), fill, Since(start));
  std::fflush(stdout);
  env->pg_source = NewPgUrl();
  const ScaleResult forward =
      MigrateAtScale("sqlite_to_postgres", env->sqlite_source, NewPgUrl, events,
                     env->pg_source);
  PrintScale(forward, events);
  if (flags.reverse) {
    const ScaleResult back =
        MigrateAtScale("postgres_to_sqlite", env->pg_source, NewSqliteUrl,
                       events, NewSqliteUrl());
    PrintScale(back, events);
  }
  env->server.reset();
  std::string rm = "rm -rf '" + env->dir + "'";
  if (std::system(rm.c_str()) != 0)
    std::cerr << "could not remove " << env->dir;
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
  eventstore::bench::ParseScaleFlags(argc, argv);
  if (eventstore::bench::TheScaleFlags().events > 0) {
    eventstore::bench::RunScale();
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  eventstore::bench::Setup();
  benchmark::RunSpecifiedBenchmarks();
  eventstore::bench::PrintRatios();
  benchmark::Shutdown();
  std::string rm = "rm -rf '" + eventstore::bench::env->dir + "'";
  return std::system(rm.c_str()) == 0 ? 0 : 0;
}
