// scale_bench: issue 13's scale benchmark (docs/benchmarks.md, "Scale: S1/S2
// (issue 13)"), on SQLite and PostgreSQL, one backend after the other.
//
// S1 fills a store to N events (default 10,000,000) with the probe's shape
// (bench/scale_store.h: 100-event batches round robin over 100,000 streams,
// ~100-byte payloads; "audit-" 1% of the events, "order-" 89%; three event
// types; 100 tenants), opened with the default URL ("sqlite:///<tmp>/
// scale.db", PostgreSQL's URL with only ?schema=), and reports the fill
// rate per successive million events (time in Append calls only) and the
// bytes per event. It fills a store of 40,000 events of the same shape too.
//
// S2 then measures, on the filled store against the 40k one, paired by
// round (RegisterPairedRounds; rounds alternate which store goes first):
//
//   S2_W1_SingleAppend     300 appends of one event to random streams, each
//                          with its exact expected version
//   S2_W3_ReadStream       ReadStream of 200 random streams (100 events
//                          each)
//   S2_W4_ReadAll          40 ReadAll pages of 1,000 from a random batch
//                          boundary (the 40k store: its whole log)
//   S2_CategoryStart       ReadAll with stream_prefix "audit-" from the
//   S2_CategoryMiddle      start / from the middle of the log, up to 3
//                          pages of 1,000 (the 40k store holds 400 audit
//                          events: one page)
//   S2_TypeFilter          ReadAll of event type OrderShipped (1%), up to
//                          3 pages from the start
//   S2_TenantFilter        ReadAll of tenant "tenant-0" (1%), likewise
//   S2_StreamVersion       1,000 StreamVersion calls on random streams
//                          (lookups/s)
//   S2_RawStreamVersion    the same lookups by the database's own client
//                          (raw sqlite3 with the store's cache and map, raw
//                          libpq): the baseline of S2_StreamVersion
//   S2_LogPaging           the global log from the start in pages of 1,000:
//                          all of it on SQLite, the first 1,000,000 events
//                          on PostgreSQL (--scale_log_events changes both)
//   S2_Fill                20 batch appends of 100 events continuing the
//                          fill (the 40k store: to new streams, as its fill)
//
// Reads run before appends. The ratio table gives events/s at N over
// events/s at 40k, target 0.8 (issue 13).
//
//   scale_bench                              # 10M events, both backends
//   scale_bench --scale_events=200000        # a smoke run, about 20 s
//   scale_bench --scale_backends=postgres --scale_events=1000000
//
// Flags (anywhere among Google Benchmark's own; --scale_events may also be
// given as $EVENTSTORE_BENCH_SCALE_EVENTS):
//   --scale_events=N         events in the big store (default 10,000,000)
//   --scale_small_events=N   events in the small store (default 40,000)
//   --scale_backends=LIST    sqlite,postgres (default both)
//   --scale_rounds=R         rounds per S2 workload (default 5; S2_LogPaging
//                            and S2_W1 at most 3)
//   --scale_log_events=N     S2_LogPaging's events, 0 for the whole log
//   --scale_sqlite_query=Q   appended to the SQLite URL ("synchronous=normal")
//   --scale_pg_query=Q       appended to the PostgreSQL URL
//   --scale_pg_settings=LIST start the throwaway server with these
//                            settings, "name=value,..." (e.g. jit=off)
//   --scale_pg_auto_explain=PATH
//                            start the throwaway server with auto_explain
//                            and, once the stores are filled, have it log
//                            the plan of every statement (ANALYZE, BUFFERS,
//                            timing off; slows every statement: use with
//                            --benchmark_filter); copy its log to PATH at
//                            the end
//
// The databases live in a new temporary directory (SQLite) or new schemas
// (PostgreSQL: $EVENTSTORE_BENCH_PG_URL, else a throwaway durable server),
// removed when the backend's last benchmark has run. 10M events take about
// 3 GB on SQLite and 4 GB on PostgreSQL.

#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/bench_display.h"
#include "bench/paired_rounds.h"
#include "bench/ratio_reporter.h"
#include "bench/scale_store.h"
#include "bench/workloads.h"
#include "eventstore/open_event_store.h"
#include "eventstore/status_macros.h"
#include "eventstore/store_inspector.h"
#include "tests/support/temp_dir.h"

#ifdef EVENTSTORE_BENCH_POSTGRES
#include <libpq-fe.h>

#include "bench/bench_postgres.h"
#include "tests/support/postgres_server.h"
#endif

namespace eventstore::bench {
namespace {

[[noreturn]] void Die(const absl::Status& status, std::string_view what) {
  std::cerr << "scale_bench: " << what << ": " << status << std::endl;
  std::exit(1);
}

struct Flags {
  int64_t events = 10000000;
  int64_t small_events = 40000;
  std::vector<std::string> backends = {"sqlite", "postgres"};
  int rounds = 5;
  // -1: the default (SQLite the whole log, PostgreSQL 1,000,000).
  int64_t log_events = -1;
  std::string sqlite_query;
  std::string pg_query;
  std::string pg_auto_explain;
  std::vector<std::string> pg_settings;
};

Flags& TheFlags() {
  static auto* flags = new Flags;
  return *flags;
}

// Takes the --scale_* flags out of argv.
void ParseFlags(int& argc, char** argv) {
  Flags& f = TheFlags();
  if (const char* env = std::getenv("EVENTSTORE_BENCH_SCALE_EVENTS");
      env != nullptr && *env != '\0' && !absl::SimpleAtoi(env, &f.events)) {
    Die(absl::InvalidArgumentError(env), "EVENTSTORE_BENCH_SCALE_EVENTS");
  }
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--scale_")) {
      argv[kept++] = argv[i];
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    bool ok = true;
    if (name == "--scale_events") {
      ok = absl::SimpleAtoi(value, &f.events) && f.events >= 100;
    } else if (name == "--scale_small_events") {
      ok = absl::SimpleAtoi(value, &f.small_events) && f.small_events >= 100;
    } else if (name == "--scale_backends") {
      f.backends = absl::StrSplit(value, ',', absl::SkipEmpty());
      for (const std::string& b : f.backends) {
        ok = ok && (b == "sqlite" || b == "postgres");
      }
    } else if (name == "--scale_rounds") {
      ok = absl::SimpleAtoi(value, &f.rounds) && f.rounds >= 1;
    } else if (name == "--scale_log_events") {
      ok = absl::SimpleAtoi(value, &f.log_events) && f.log_events >= 0;
    } else if (name == "--scale_sqlite_query") {
      f.sqlite_query = value;
    } else if (name == "--scale_pg_query") {
      f.pg_query = value;
    } else if (name == "--scale_pg_settings") {
      f.pg_settings = absl::StrSplit(value, ',', absl::SkipEmpty());
      for (const std::string& setting : f.pg_settings) {
        ok = ok && absl::StrContains(setting, "=");
      }
    } else if (name == "--scale_pg_auto_explain") {
      f.pg_auto_explain = value;
      ok = !value.empty();
    } else {
      ok = false;
    }
    if (!ok) Die(absl::InvalidArgumentError(arg), "bad flag");
  }
  argc = kept;
}

// 40000 as "40k", 10000000 as "10M".
std::string Short(int64_t n) {
  if (n == 0) return "0";
  if (n % 1000000 == 0) return absl::StrCat(n / 1000000, "M");
  if (n % 1000 == 0) return absl::StrCat(n / 1000, "k");
  return absl::StrCat(n);
}

// --- The databases -----------------------------------------------------------

std::string WithQuery(std::string url, const std::string& query) {
  if (query.empty()) return url;
  return absl::StrCat(url, absl::StrContains(url, "?") ? "&" : "?", query);
}

class SqliteScaleDatabase final : public ScaleDatabase {
 public:
  static absl::StatusOr<std::unique_ptr<ScaleDatabase>> Open() {
    ES_ASSIGN_OR_RETURN(std::unique_ptr<test::TempDir> dir,
                        test::TempDir::Create());
    const std::string path = dir->File("scale.db");
    ES_ASSIGN_OR_RETURN(
        std::unique_ptr<EventStore> store,
        OpenEventStore(WithQuery(absl::StrCat("sqlite://", path),
                                 TheFlags().sqlite_query)));
    return std::unique_ptr<ScaleDatabase>(
        new SqliteScaleDatabase(std::move(dir), path, std::move(store)));
  }

  EventStore& store() override { return *store_; }

  ~SqliteScaleDatabase() override {
    if (raw_ != nullptr) {
      sqlite3_finalize(raw_version_);
      sqlite3_close(raw_);
    }
  }

  absl::StatusOr<int64_t> RawStreamVersion(const std::string& stream) override {
    if (raw_ == nullptr) {
      if (sqlite3_open_v2(path_.c_str(), &raw_, SQLITE_OPEN_READONLY,
                          nullptr) != SQLITE_OK) {
        return absl::InternalError(sqlite3_errmsg(raw_));
      }
      // The store's defaults (docs/sqlite.md): 16 MiB of cache, 256 MiB
      // of map.
      if (sqlite3_exec(raw_,
                       "PRAGMA cache_size = -16384; "
                       "PRAGMA mmap_size = 268435456;",
                       nullptr, nullptr, nullptr) != SQLITE_OK ||
          sqlite3_prepare_v2(raw_,
                             "SELECT max(version) FROM events WHERE stream = ?",
                             -1, &raw_version_, nullptr) != SQLITE_OK) {
        return absl::InternalError(sqlite3_errmsg(raw_));
      }
    }
    sqlite3_reset(raw_version_);
    sqlite3_bind_text(raw_version_, 1, stream.data(),
                      static_cast<int>(stream.size()), SQLITE_STATIC);
    if (sqlite3_step(raw_version_) != SQLITE_ROW) {
      return absl::InternalError(sqlite3_errmsg(raw_));
    }
    return sqlite3_column_int64(raw_version_, 0);
  }

  absl::StatusOr<int64_t> Bytes() override {
    int64_t bytes = 0;
    for (const char* suffix : {"", "-wal"}) {
      std::error_code error;
      const uintmax_t size = std::filesystem::file_size(path_ + suffix, error);
      if (!error) bytes += static_cast<int64_t>(size);
    }
    return bytes;
  }

 private:
  SqliteScaleDatabase(std::unique_ptr<test::TempDir> dir, std::string path,
                      std::unique_ptr<EventStore> store)
      : dir_(std::move(dir)),
        path_(std::move(path)),
        store_(std::move(store)) {}

  // Declared first: removed after the store is closed.
  std::unique_ptr<test::TempDir> dir_;
  std::string path_;
  std::unique_ptr<EventStore> store_;
  sqlite3* raw_ = nullptr;
  sqlite3_stmt* raw_version_ = nullptr;
};

#ifdef EVENTSTORE_BENCH_POSTGRES

// The server: $EVENTSTORE_BENCH_PG_URL, else a throwaway durable one
// (StartBenchPostgres); our own throwaway one, with auto_explain and the
// settings, when --scale_pg_auto_explain or --scale_pg_settings is given.
std::unique_ptr<test::PostgresServer>& PgServer() {
  static auto* server = new std::unique_ptr<test::PostgresServer>;
  return *server;
}

const std::string& PgUrl() {
  static const auto* url = [] {
    absl::StatusOr<std::string> started;
    const Flags& flags = TheFlags();
    if (flags.pg_auto_explain.empty() && flags.pg_settings.empty()) {
      started = StartBenchPostgres(&PgServer());
    } else {
      test::PostgresServerOptions options;
      options.durable = true;
      if (!flags.pg_auto_explain.empty()) {
        options.extra_settings = {
            "shared_preload_libraries=auto_explain",
            "auto_explain.log_min_duration=-1",
            "auto_explain.log_analyze=on",
            "auto_explain.log_buffers=on",
            "auto_explain.log_timing=off",
        };
      }
      for (const std::string& setting : flags.pg_settings) {
        options.extra_settings.push_back(setting);
      }
      absl::StatusOr<std::unique_ptr<test::PostgresServer>> server =
          test::PostgresServer::Start(options);
      if (server.ok()) {
        PgServer() = *std::move(server);
        started = PgServer()->url();
      } else {
        started = server.status();
      }
    }
    if (!started.ok()) Die(started.status(), "starting PostgreSQL");
    return new std::string(*started);
  }();
  return *url;
}

// Runs `sql` (no parameters) and returns the first column of its first row.
absl::StatusOr<std::string> PgQuery(const std::string& sql) {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(PgUrl().c_str()),
                                                  PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(PQerrorMessage(conn.get()));
  }
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  std::unique_ptr<PGresult, void (*)(PGresult*)> result(
      PQexec(conn.get(), sql.c_str()), PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    return absl::InternalError(
        absl::StrCat(sql, ": ", PQerrorMessage(conn.get())));
  }
  if (status == PGRES_COMMAND_OK || PQntuples(result.get()) == 0) return "";
  return std::string(PQgetvalue(result.get(), 0, 0));
}

class PostgresScaleDatabase final : public ScaleDatabase {
 public:
  static absl::StatusOr<std::unique_ptr<ScaleDatabase>> Open(
      const std::string& label) {
    const std::string schema = absl::StrCat("scale_", label, "_", getpid());
    ES_ASSIGN_OR_RETURN(
        std::unique_ptr<EventStore> store,
        OpenEventStore(WithQuery(WithQuery(PgUrl(), "schema=" + schema),
                                 TheFlags().pg_query)));
    return std::unique_ptr<ScaleDatabase>(
        new PostgresScaleDatabase(schema, std::move(store)));
  }

  ~PostgresScaleDatabase() override {
    raw_.reset();
    store_.reset();
    absl::StatusOr<std::string> dropped =
        PgQuery(absl::StrCat("DROP SCHEMA ", schema_, " CASCADE"));
    if (!dropped.ok()) std::cerr << "scale_bench: " << dropped.status() << "\n";
  }

  EventStore& store() override { return *store_; }

  absl::StatusOr<int64_t> RawStreamVersion(const std::string& stream) override {
    if (raw_ == nullptr) {
      raw_.reset(PQconnectdb(PgUrl().c_str()));
      std::unique_ptr<PGresult, void (*)(PGresult*)> prepared(
          PQstatus(raw_.get()) == CONNECTION_OK
              ? PQprepare(raw_.get(), "raw_version",
                          absl::StrCat("SELECT max(version) FROM ", schema_,
                                       ".events WHERE stream = $1::text")
                              .c_str(),
                          1, nullptr)
              : nullptr,
          PQclear);
      if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
        const std::string error = PQerrorMessage(raw_.get());
        raw_.reset();
        return absl::InternalError(error);
      }
    }
    const char* values[] = {stream.c_str()};
    std::unique_ptr<PGresult, void (*)(PGresult*)> result(
        PQexecPrepared(raw_.get(), "raw_version", 1, values, nullptr, nullptr,
                       0),
        PQclear);
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK ||
        PQntuples(result.get()) != 1) {
      return absl::InternalError(PQerrorMessage(raw_.get()));
    }
    int64_t version = 0;
    if (!absl::SimpleAtoi(PQgetvalue(result.get(), 0, 0), &version)) {
      return absl::InternalError("raw version: not a number");
    }
    return version;
  }

  absl::StatusOr<int64_t> Bytes() override {
    ES_ASSIGN_OR_RETURN(
        std::string text,
        PgQuery(absl::StrCat(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM "
            "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
            "c.relkind = 'r' AND n.nspname = '",
            schema_, "'")));
    int64_t bytes = 0;
    if (!absl::SimpleAtoi(text, &bytes)) {
      return absl::InternalError(absl::StrCat("relation size: ", text));
    }
    return bytes;
  }

 private:
  PostgresScaleDatabase(std::string schema, std::unique_ptr<EventStore> store)
      : schema_(std::move(schema)), store_(std::move(store)) {}

  std::string schema_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<PGconn, void (*)(PGconn*)> raw_{nullptr, PQfinish};
};

#endif  // EVENTSTORE_BENCH_POSTGRES

// --- The fixtures: a big and a small store per backend ----------------------

// What StoreInspector::Info took on a filled store, with the default
// options (estimates from a million events on) and counting exactly.
struct InfoTiming {
  double seconds = 0;
  StoreInfo info;
  double exact_seconds = 0;
  StoreInfo exact;
};

struct FillRecord {
  std::string backend;
  std::string store;
  FillReport report;
  InfoTiming info;
};

InfoTiming TimeInfo(EventStore& store, const std::string& label) {
  InfoTiming timing;
  InfoOptions exact;
  exact.exact_count_limit = std::numeric_limits<int64_t>::max();
  const absl::Time start = absl::Now();
  absl::StatusOr<StoreInfo> info = store.inspector().Info();
  const absl::Time middle = absl::Now();
  absl::StatusOr<StoreInfo> counted = store.inspector().Info(exact);
  const absl::Time end = absl::Now();
  if (!info.ok()) Die(info.status(), absl::StrCat(label, ": info"));
  if (!counted.ok()) Die(counted.status(), absl::StrCat(label, ": info"));
  timing.seconds = absl::ToDoubleSeconds(middle - start);
  timing.info = *std::move(info);
  timing.exact_seconds = absl::ToDoubleSeconds(end - middle);
  timing.exact = *std::move(counted);
  return timing;
}

std::vector<FillRecord>& FillRecords() {
  static auto* records = new std::vector<FillRecord>;
  return *records;
}

struct Fixture {
  std::string backend;
  std::unique_ptr<ScaleStore> big;
  std::unique_ptr<ScaleStore> small;
  // Benchmarks registered on the backend and not run yet: the stores go
  // when it reaches 0.
  int remaining = 0;
};

std::map<std::string, Fixture>& Fixtures() {
  static auto* fixtures = new std::map<std::string, Fixture>;
  return *fixtures;
}

absl::StatusOr<std::unique_ptr<ScaleDatabase>> OpenDatabase(
    const std::string& backend, const std::string& label) {
  if (backend == "sqlite") return SqliteScaleDatabase::Open();
#ifdef EVENTSTORE_BENCH_POSTGRES
  return PostgresScaleDatabase::Open(label);
#else
  (void)label;
  return absl::UnimplementedError("built without PostgreSQL");
#endif
}

std::unique_ptr<ScaleStore> FillStore(const std::string& backend,
                                      const std::string& label,
                                      int64_t events) {
  absl::StatusOr<std::unique_ptr<ScaleDatabase>> db =
      OpenDatabase(backend, label);
  if (!db.ok()) Die(db.status(), absl::StrCat(backend, ": opening"));
  const int64_t chunk = std::min<int64_t>(
      1000000, std::max<int64_t>(kScaleBatchEvents, events / 10));
  absl::StatusOr<std::unique_ptr<ScaleStore>> store =
      ScaleStore::Fill(*std::move(db), events, chunk,
                       absl::StrCat(backend, " ", Short(events)), &std::cerr);
  if (!store.ok()) Die(store.status(), absl::StrCat(backend, ": filling"));
  FillRecords().push_back(
      {backend, Short(events), (*store)->fill(),
       TimeInfo((*store)->store(), absl::StrCat(backend, " ", Short(events)))});
  return *std::move(store);
}

// With --scale_pg_auto_explain, once the stores are filled: every
// statement's plan to the server log from now on.
void StartExplaining(const std::string& backend) {
#ifdef EVENTSTORE_BENCH_POSTGRES
  if (backend != "postgres" || TheFlags().pg_auto_explain.empty()) return;
  for (const char* sql : {"ALTER SYSTEM SET auto_explain.log_min_duration = 0",
                          "SELECT pg_reload_conf()"}) {
    absl::StatusOr<std::string> done = PgQuery(sql);
    if (!done.ok()) Die(done.status(), "auto_explain");
  }
#else
  (void)backend;
#endif
}

// `backend`'s fixture, its stores filled on first use (the small one first).
Fixture& FixtureFor(const std::string& backend) {
  Fixture& f = Fixtures()[backend];
  if (f.big == nullptr) {
    f.small = FillStore(backend, "small", TheFlags().small_events);
    f.big = FillStore(backend, "big", TheFlags().events);
    StartExplaining(backend);
  }
  return f;
}

// After each benchmark of `backend`: closes and removes its stores after
// the last.
void Finished(const std::string& backend) {
  Fixture& f = Fixtures()[backend];
  if (--f.remaining == 0) {
    f.big.reset();
    f.small.reset();
  }
}

// --- S2 workloads ------------------------------------------------------------

constexpr int64_t kW1Appends = 300;
constexpr int64_t kW3Reads = 200;
constexpr int64_t kW4Pages = 40;
constexpr int64_t kPageEvents = 1000;
constexpr int64_t kFilteredPages = 3;
constexpr int64_t kLookups = 1000;
constexpr int64_t kFillBatches = 20;

std::mt19937_64& Random() {
  static auto* random = new std::mt19937_64(13);
  return *random;
}

int64_t RandomBelow(int64_t n) {
  return std::uniform_int_distribution<int64_t>(0, n - 1)(Random());
}

void Fail(benchmark::State& state, const absl::Status& status) {
  state.SkipWithError(status.ToString().c_str());
}

// Reads pages of `options` from its from_position until `max_pages` pages
// or `max_events` events or the end; returns the events read.
absl::StatusOr<int64_t> ReadPages(EventStore& store, ReadAllOptions options,
                                  int64_t max_pages, int64_t max_events) {
  int64_t events = 0;
  for (int64_t p = 0; p < max_pages && events < max_events; ++p) {
    ES_ASSIGN_OR_RETURN(ReadAllPage page, store.ReadAll(options));
    events += static_cast<int64_t>(page.events.size());
    options.from_position = page.next_position;
    if (page.end_of_log) break;
  }
  return events;
}

using WorkloadFn = std::function<absl::StatusOr<int64_t>(ScaleStore&)>;

// Runs `fn` once per iteration (timed), items = what it returns.
void RunTimed(benchmark::State& state, ScaleStore& store,
              const WorkloadFn& fn) {
  int64_t items = 0;
  for (auto _ : state) {
    absl::StatusOr<int64_t> n = fn(store);
    if (!n.ok()) {
      Fail(state, n.status());
      return;
    }
    if (*n == 0) {
      Fail(state, absl::InternalError("read nothing"));
      return;
    }
    items += *n;
  }
  state.SetItemsProcessed(items);
}

ReadAllOptions Filtered(ReadAllFilter filter) {
  ReadAllOptions options;
  options.max_count = kPageEvents;
  options.filter = std::move(filter);
  return options;
}

absl::StatusOr<int64_t> SingleAppends(ScaleStore& s,
                                      const std::vector<EventData>& events) {
  for (const EventData& event : events) {
    ES_RETURN_IF_ERROR(s.AppendToStream(RandomBelow(s.streams()), {event}));
  }
  return static_cast<int64_t>(events.size());
}

int64_t LogEvents(const std::string& backend) {
  const int64_t flag = TheFlags().log_events;
  if (flag == 0) return kUnlimited;
  if (flag > 0) return flag;
  return backend == "postgres" ? 1000000 : kUnlimited;
}

void RegisterBackend(const std::string& backend,
                     std::vector<Workload>& workloads) {
  const std::string suffix = absl::StrCat("_", Short(TheFlags().small_events));
  static const std::string* versus = new std::string(absl::StrCat(
      Short(TheFlags().events), " / ", Short(TheFlags().small_events)));
  static const std::string* baseline_suffix = new std::string(suffix);
  const int64_t log_events = LogEvents(backend);

  struct Entry {
    const char* name;
    // Runs per round (benchmark iterations).
    int iterations;
    int max_rounds;
    WorkloadFn fn;
    // Appends: built before timing by `prepare`.
    bool appends = false;
  };
  std::vector<Entry> entries = {
      {"S2_W3_ReadStream", 5, 1000,
       [](ScaleStore& s) -> absl::StatusOr<int64_t> {
         int64_t events = 0;
         for (int64_t r = 0; r < kW3Reads; ++r) {
           ES_ASSIGN_OR_RETURN(
               std::vector<RecordedEvent> read,
               s.store().ReadStream(ScaleStreamName(RandomBelow(s.streams()))));
           events += static_cast<int64_t>(read.size());
         }
         return events;
       }},
      {"S2_W4_ReadAll", 3, 1000,
       [](ScaleStore& s) {
         const int64_t window = kW4Pages * kPageEvents / kScaleBatchEvents;
         const int64_t b =
             RandomBelow(std::max<int64_t>(1, s.filled_batches() - window + 1));
         ReadAllOptions options;
         options.max_count = kPageEvents;
         options.from_position = s.BeforeBatch(b);
         return ReadPages(s.store(), options, kW4Pages, kUnlimited);
       }},
      {"S2_CategoryStart", 3, 1000,
       [](ScaleStore& s) {
         return ReadPages(s.store(), Filtered({kScaleRarePrefix, {}, ""}),
                          kFilteredPages, kUnlimited);
       }},
      {"S2_CategoryMiddle", 3, 1000,
       [](ScaleStore& s) {
         ReadAllOptions options = Filtered({kScaleRarePrefix, {}, ""});
         options.from_position = s.BeforeBatch(s.filled_batches() / 2);
         return ReadPages(s.store(), options, kFilteredPages, kUnlimited);
       }},
      {"S2_TypeFilter", 3, 1000,
       [](ScaleStore& s) {
         return ReadPages(s.store(), Filtered({"", {kScaleRareType}, ""}),
                          kFilteredPages, kUnlimited);
       }},
      {"S2_TenantFilter", 3, 1000,
       [](ScaleStore& s) {
         return ReadPages(s.store(), Filtered({"", {}, kScaleRareTenant}),
                          kFilteredPages, kUnlimited);
       }},
      {"S2_StreamVersion", 5, 1000,
       [](ScaleStore& s) -> absl::StatusOr<int64_t> {
         for (int64_t r = 0; r < kLookups; ++r) {
           ES_ASSIGN_OR_RETURN(int64_t version,
                               s.store().StreamVersion(
                                   ScaleStreamName(RandomBelow(s.streams()))));
           if (version <= 0) return absl::InternalError("no such stream");
         }
         return kLookups;
       }},
      {"S2_RawStreamVersion", 5, 1000,
       [](ScaleStore& s) -> absl::StatusOr<int64_t> {
         for (int64_t r = 0; r < kLookups; ++r) {
           ES_ASSIGN_OR_RETURN(int64_t version,
                               s.database().RawStreamVersion(
                                   ScaleStreamName(RandomBelow(s.streams()))));
           if (version <= 0) return absl::InternalError("no such stream");
         }
         return kLookups;
       }},
      {"S2_LogPaging", 1, 3,
       [log_events](ScaleStore& s) {
         ReadAllOptions options;
         options.max_count = kPageEvents;
         return ReadPages(s.store(), options, kUnlimited, log_events);
       }},
      {"S2_W1_SingleAppend", 1, 3, nullptr, true},
      {"S2_Fill", 1, 1000, nullptr, true},
  };

  Fixture& fixture = Fixtures()[backend];
  fixture.backend = backend;
  for (const Entry& e : entries) {
    Workload w = {e.name,
                  0.8,
                  1,
                  std::min(TheFlags().rounds, e.max_rounds),
                  0,
                  false,
                  "",
                  baseline_suffix->c_str(),
                  versus->c_str()};
    if (workloads.size() < entries.size()) workloads.push_back(w);
    fixture.remaining += 2 * w.rounds;
    const bool w1 = std::string_view(e.name) == "S2_W1_SingleAppend";
    auto side = [backend, e, w1](bool big) {
      return [backend, e, w1, big](benchmark::State& state) {
        Fixture& f = FixtureFor(backend);
        ScaleStore& s = big ? *f.big : *f.small;
        if (!e.appends) {
          RunTimed(state, s, e.fn);
        } else if (w1) {
          int64_t n = 0;
          for (auto _ : state) {
            state.PauseTiming();
            std::vector<EventData> events =
                ScaleBatchEvents(RandomBelow(kScaleStreams));
            events.resize(std::min<size_t>(events.size(), kW1Appends));
            while (static_cast<int64_t>(events.size()) < kW1Appends) {
              std::vector<EventData> more =
                  ScaleBatchEvents(RandomBelow(kScaleStreams));
              for (EventData& event : more) {
                if (static_cast<int64_t>(events.size()) < kW1Appends) {
                  events.push_back(std::move(event));
                }
              }
            }
            state.ResumeTiming();
            absl::StatusOr<int64_t> done = SingleAppends(s, events);
            if (!done.ok()) {
              Fail(state, done.status());
              break;
            }
            n += *done;
          }
          state.SetItemsProcessed(n);
        } else {
          int64_t n = 0;
          for (auto _ : state) {
            state.PauseTiming();
            std::vector<ScaleStore::Batch> batches;
            for (int64_t i = 0; i < kFillBatches; ++i) {
              batches.push_back(s.NextBatch());
            }
            state.ResumeTiming();
            absl::Status status;
            for (const ScaleStore::Batch& batch : batches) {
              status = s.AppendBatch(batch);
              if (!status.ok()) break;
              n += static_cast<int64_t>(batch.events.size());
            }
            if (!status.ok()) {
              Fail(state, status);
              break;
            }
          }
          state.SetItemsProcessed(n);
        }
        Finished(backend);
      };
    };
    RegisterPairedRounds(w, backend, side(true), side(false));
  }
}

// S1's table: the rate of each chunk of the fills, and the bytes per event.
void PrintFills(std::ostream& out) {
  out << "\nS1: fill rate (100-event batch appends, time in Append only) and "
         "size\n\n| backend | store | events | events/s | bytes/event |\n"
         "| --- | --- | --- | ---: | ---: |\n";
  for (const FillRecord& r : FillRecords()) {
    for (const FillReport::Chunk& c : r.report.chunks) {
      out << absl::StrFormat("| %s | %s | %s-%s | %.0f | |\n", r.backend,
                             r.store, Short(c.first_event),
                             Short(c.first_event + c.events),
                             c.events / c.seconds);
    }
    out << absl::StrFormat(
        "| %s | %s | all %s | %.0f | %.0f |\n", r.backend, r.store,
        Short(r.report.events), r.report.events / r.report.seconds,
        static_cast<double>(r.report.bytes) / r.report.events);
  }
  out << "\nStoreInspector::Info (`eventstore info`) on the filled stores, "
         "right after the fill: default options, and counting exactly\n\n"
         "| backend | store | Info (ms) | estimated | events | streams | "
         "exact Info (ms) | events | streams |\n"
         "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n";
  for (const FillRecord& r : FillRecords()) {
    const InfoTiming& t = r.info;
    out << absl::StrFormat(
        "| %s | %s | %.0f | %s | %d | %d | %.0f | %d | %d |\n", r.backend,
        r.store, t.seconds * 1000, t.info.counts_estimated ? "yes" : "no",
        t.info.events, t.info.streams, t.exact_seconds * 1000, t.exact.events,
        t.exact.streams);
  }
  out << std::flush;
}

int64_t AveragePayloadBytes() {
  int64_t bytes = 0;
  const std::vector<EventData> events = ScaleBatchEvents(12345);
  for (const EventData& e : events) {
    bytes += static_cast<int64_t>(e.payload.size());
  }
  return bytes / static_cast<int64_t>(events.size());
}

int Main(int argc, char** argv) {
  ParseFlags(argc, argv);
  BenchDisplay display = MakeBenchDisplay(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const Flags& flags = TheFlags();
  benchmark::AddCustomContext("scale_events", std::to_string(flags.events));
  benchmark::AddCustomContext("small_events",
                              std::to_string(flags.small_events));
  benchmark::AddCustomContext("payload_bytes",
                              std::to_string(AveragePayloadBytes()));
  if (!flags.sqlite_query.empty()) {
    benchmark::AddCustomContext("sqlite_query", flags.sqlite_query);
  }
  if (!flags.pg_query.empty()) {
    benchmark::AddCustomContext("pg_query", flags.pg_query);
  }

  std::vector<Workload> workloads;
  std::vector<Backend> backends;
  for (const std::string& name : flags.backends) {
#ifndef EVENTSTORE_BENCH_POSTGRES
    if (name == "postgres") {
      std::cerr << "scale_bench: built without PostgreSQL; skipping it\n";
      continue;
    }
#endif
    Backend backend;
    backend.name = name;
    backends.push_back(backend);
    RegisterBackend(name, workloads);
  }
  RatioReporter reporter(std::move(display.reporter), workloads, backends,
                         display.table_out);
  reporter.set_title(absl::StrCat(
      "S2: events/s (S2_StreamVersion: lookups/s) on the store of ",
      Short(flags.events), " events / on the store of ",
      Short(flags.small_events),
      ", same shape; median of the rounds' ratios\nwith their range; target "
      "0.8 (issue 13)."));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  PrintFills(*display.table_out);

  Fixtures().clear();
#ifdef EVENTSTORE_BENCH_POSTGRES
  if (!flags.pg_auto_explain.empty() && PgServer() != nullptr) {
    std::error_code error;
    std::filesystem::copy_file(
        PgServer()->log_path(), flags.pg_auto_explain,
        std::filesystem::copy_options::overwrite_existing, error);
    if (error) std::cerr << "scale_bench: copying the log: " << error.message();
  }
  PgServer().reset();
#endif
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) { return eventstore::bench::Main(argc, argv); }
