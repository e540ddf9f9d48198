// lifecycle_bench: what issue 12's data lifecycle costs (docs/benchmarks.md,
// docs/lifecycle.md), each side beside a baseline measured in the same run,
// paired by round, on SQLite (a file, WAL, synchronous=NORMAL) and on
// PostgreSQL.
//
//   E1_EncryptedSingleAppend/<backend>     W1 through an EncryptedEventStore,
//                                          every event naming a data subject
//                                          (its stream: one subject per
//                                          order-* stream)
//   E1_EncryptedSingleAppend/<backend>_plain
//                                          W1 on the plain store
//   E2_EncryptedBatchAppend/...            W2 likewise (one subject per cart)
//   E3_EncryptedReadStream/...             W3 likewise (the ledger stream's
//                                          one subject): the same ReadStream
//                                          call, the encrypted side
//                                          decrypting every event
//   L1_ReadAllRetention/<backend>          W4's log read with ReadAll in
//                                          pages of 1,000 from a store where
//                                          every stream has retention
//                                          metadata (a streams row), one of
//                                          which hides an event
//   L1_ReadAllRetention/<backend>_plain    the same log, no streams row
//   S1_Scavenge1k/<backend>                Scavenge (batch_size 1,000) of a
//                                          store of kScavengeStreams streams
//                                          of 1,000 events, each with
//                                          max_count = 100 (90% hidden);
//                                          events removed per second
//   S1_Scavenge1k/<backend>_raw            the baseline: the same rows
//                                          deleted by hand, 1,000 per
//                                          transaction (SQLite: DELETE ...
//                                          WHERE position IN (...); PostgreSQL:
//                                          DELETE ... USING unnest() of the
//                                          rows' primary keys), the keys read
//                                          before timing starts
//   S2_Scavenge10k/...                     as S1 with batches of 10,000
//
// Rounds alternate which side goes first; RatioReporter prints the median of
// the rounds' ratios with their range. Target (issue 12): E1..E3 at least
// 0.8 on both backends; L1, S1 and S2 are reported without one.
//
//   lifecycle_bench                            # everything, 1M-event stores
//   lifecycle_bench --benchmark_filter=E       # E1..E3 only
//   EVENTSTORE_BENCH_SCAVENGE_EVENTS=100000 lifecycle_bench   # a quick run
//
// PostgreSQL: $EVENTSTORE_BENCH_PG_URL, else a throwaway durable server
// (bench/postgres_raw.h). Every store is a schema of its own, dropped after
// use.

#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backends/postgres/postgres_event_store.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "bench/bench_display.h"
#include "bench/paired_rounds.h"
#include "bench/postgres_raw.h"
#include "bench/ratio_reporter.h"
#include "bench/sqlite_raw.h"
#include "bench/target.h"
#include "bench/workloads.h"
#include "eventstore/crypto/encrypted_event_store.h"
#include "eventstore/crypto/master_key.h"
#include "eventstore/status_macros.h"
#include "eventstore/stream_lifecycle.h"
#include "tests/support/temp_dir.h"

namespace eventstore::bench {
namespace {

using Sync = SqliteOptions::Synchronous;

constexpr char kSqlite[] = "sqlite";
constexpr char kPostgres[] = "postgres";

// E1..E3: W1..W3's iterations; rounds as eventstore_bench runs W1..W3 (W1
// fewer where every commit waits for the disk).
constexpr Workload kE1 = {
    "E1_EncryptedSingleAppend", 0.8, 1, 3, 2, false, "", "_plain",
    "encrypted / plain"};
constexpr Workload kE2 = {
    "E2_EncryptedBatchAppend", 0.8, 1, 5, 5, false, "", "_plain",
    "encrypted / plain"};
constexpr Workload kE3 = {
    "E3_EncryptedReadStream", 0.8, 40, 7, 7, false, "", "_plain",
    "encrypted / plain"};

// L1: W4's log plus one stream of two events ("retained-1").
constexpr int64_t kL1PageEvents = 1000;
constexpr Workload kL1 = {
    "L1_ReadAllRetention", 0, 8, 7, 7, false, "", "_plain",
    "streams rows / none"};

// S1, S2: streams of kScavengeStreamEvents, each keeping kScavengeKeep.
constexpr int64_t kScavengeStreamEvents = 1000;
constexpr int64_t kScavengeKeep = 100;
constexpr Workload kS1 = {"S1_Scavenge1k",
                          0,
                          1,
                          3,
                          3,
                          false,
                          "",
                          "_raw",
                          "Scavenge / raw DELETE, batches of 1,000"};
constexpr Workload kS2 = {"S2_Scavenge10k",
                          0,
                          1,
                          3,
                          3,
                          false,
                          "",
                          "_raw",
                          "Scavenge / raw DELETE, batches of 10,000"};

[[noreturn]] void Die(const absl::Status& status, std::string_view what) {
  std::cerr << "lifecycle_bench: " << what << ": " << status << std::endl;
  std::exit(1);
}

// Events in each scavenge store: $EVENTSTORE_BENCH_SCAVENGE_EVENTS (rounded
// down to whole streams, at least one), else 1,000,000.
int64_t ScavengeEvents() {
  static const int64_t events = [] {
    int64_t n = 1000000;
    const char* text = std::getenv("EVENTSTORE_BENCH_SCAVENGE_EVENTS");
    if (text != nullptr && *text != '\0' && !absl::SimpleAtoi(text, &n)) {
      Die(absl::InvalidArgumentError(text), "EVENTSTORE_BENCH_SCAVENGE_EVENTS");
    }
    n -= n % kScavengeStreamEvents;
    return n < kScavengeStreamEvents ? kScavengeStreamEvents : n;
  }();
  return events;
}
int64_t ScavengeStreams() { return ScavengeEvents() / kScavengeStreamEvents; }
// The events max_count hides, and Scavenge removes.
int64_t ScavengeHidden() {
  return ScavengeStreams() * (kScavengeStreamEvents - kScavengeKeep);
}

// --- E1..E3 -----------------------------------------------------------------

// One master key for the whole run (an application has one).
const crypto::MasterKey& BenchMasterKey() {
  static const auto* key = new crypto::MasterKey(crypto::MasterKey::Generate());
  return *key;
}

// Fresh stores from `open`, each wrapped by an EncryptedEventStore.
TargetFactory EncryptedTargets(StoreFactory open) {
  return [open = std::move(open)]() -> absl::StatusOr<std::unique_ptr<Target>> {
    ES_ASSIGN_OR_RETURN(std::shared_ptr<EventStore> inner, open());
    crypto::EncryptionOptions options;
    options.master_key = BenchMasterKey();
    ES_ASSIGN_OR_RETURN(
        std::unique_ptr<crypto::EncryptedEventStore> encrypted,
        crypto::EncryptedEventStore::Create(inner.get(), std::move(options)));
    // The inner store, as scratch, is released after the encrypted one.
    return MakeStoreTarget(std::shared_ptr<EventStore>(std::move(encrypted)),
                           std::move(inner));
  };
}

TargetFactory PlainTargets(StoreFactory open) {
  return [open = std::move(open)]() -> absl::StatusOr<std::unique_ptr<Target>> {
    ES_ASSIGN_OR_RETURN(std::shared_ptr<EventStore> store, open());
    return MakeStoreTarget(std::move(store), nullptr);
  };
}

// Every event of the batch names its stream as its data subject (W1: one
// subject per order-* stream, W2 per cart, W3 the ledger's one).
void NameSubjects(Batch& batch) {
  for (size_t i = 0; i < batch.events.size(); ++i) {
    batch.events[i].metadata.set_subject_id(batch.stream);
    batch.encoded_metadata[i].clear();
    batch.events[i].metadata.SerializeToString(&batch.encoded_metadata[i]);
  }
}

struct BackendStores {
  const char* name;
  StoreFactory open;
  bool commits_wait_for_disk;
};

void RegisterEncrypted(const BackendStores& backend) {
  const Workload* pairs[][2] = {{&kE1, &Workloads()[0]},
                                {&kE2, &Workloads()[1]},
                                {&kE3, &Workloads()[2]}};
  for (const auto& [e, w] : pairs) {
    const std::string prefix = absl::StrCat(e->name, "/", backend.name);
    const std::vector<Side> sides = {
        {prefix, EncryptedTargets(backend.open), NameSubjects},
        {absl::StrCat(prefix, "_plain"), PlainTargets(backend.open)}};
    RegisterSides(
        *w,
        backend.commits_wait_for_disk ? e->rounds_when_commits_wait : e->rounds,
        sides);
  }
}

// --- L1 ---------------------------------------------------------------------

// Appends `count` events to `stream` in batches of at most `per_append`.
absl::Status AppendEvents(EventStore& store, const std::string& stream,
                          int64_t count, int64_t per_append, int64_t& next) {
  for (int64_t done = 0; done < count;) {
    std::vector<EventData> events;
    for (int64_t i = 0; i < per_append && done < count; ++i, ++done) {
      events.push_back(BenchEvent(next++));
    }
    ES_RETURN_IF_ERROR(
        store.Append(stream, ExpectedVersion::Any(), events).status());
  }
  return absl::OkStatus();
}

// L1's streams and their lengths: W4's log (1,000 order-* streams of 10,
// 200 cart-* of 100, ledger-1 of 10,000) and retained-1 of 2.
std::vector<std::pair<std::string, int64_t>> L1Streams() {
  std::vector<std::pair<std::string, int64_t>> streams;
  for (int i = 0; i < 1000; ++i)
    streams.push_back({absl::StrCat("order-", i), 10});
  for (int i = 0; i < 200; ++i)
    streams.push_back({absl::StrCat("cart-", i), 100});
  streams.push_back({"ledger-1", 10000});
  streams.push_back({"retained-1", 2});
  return streams;
}

constexpr int64_t kL1PlainEvents = 40002;
// With retained-1 capped to its last event.
constexpr int64_t kL1RetainedEvents = 40001;

// A store holding L1's log; with `rows`, every stream's row caps it at its
// own length (hiding nothing) except retained-1's, which hides one event.
absl::StatusOr<std::shared_ptr<EventStore>> L1Store(const StoreFactory& open,
                                                    bool rows) {
  ES_ASSIGN_OR_RETURN(std::shared_ptr<EventStore> store, open());
  int64_t next = 0;
  for (const auto& [stream, length] : L1Streams()) {
    ES_RETURN_IF_ERROR(AppendEvents(*store, stream, length, 1000, next));
  }
  if (rows) {
    for (const auto& [stream, length] : L1Streams()) {
      StreamMetadata metadata;
      metadata.max_count = stream == "retained-1" ? 1 : length;
      ES_RETURN_IF_ERROR(store->SetStreamMetadata(stream, metadata));
    }
  }
  return store;
}

struct L1Fixture {
  std::shared_ptr<EventStore> rows;
  std::shared_ptr<EventStore> plain;
};

std::map<std::string, L1Fixture>& L1Fixtures() {
  static auto* fixtures = new std::map<std::string, L1Fixture>;
  return *fixtures;
}

// `backend`'s two L1 stores, written on first use (untimed).
L1Fixture& L1For(const std::string& backend, const StoreFactory& open) {
  L1Fixture& fixture = L1Fixtures()[backend];
  if (fixture.rows == nullptr) {
    absl::StatusOr<std::shared_ptr<EventStore>> rows = L1Store(open, true);
    if (!rows.ok()) Die(rows.status(), "L1: writing the store with rows");
    absl::StatusOr<std::shared_ptr<EventStore>> plain = L1Store(open, false);
    if (!plain.ok()) Die(plain.status(), "L1: writing the plain store");
    fixture.rows = *std::move(rows);
    fixture.plain = *std::move(plain);
  }
  return fixture;
}

// Each iteration reads the whole log in pages of 1,000 and checks that
// `expected` events came back.
void ReadWholeLog(benchmark::State& state, EventStore& store,
                  int64_t expected) {
  for (auto _ : state) {
    ReadAllOptions options;
    options.max_count = kL1PageEvents;
    int64_t total = 0;
    while (true) {
      absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
      if (!page.ok()) {
        state.SkipWithError(page.status().ToString().c_str());
        return;
      }
      total += static_cast<int64_t>(page->events.size());
      options.from_position = page->next_position;
      if (page->end_of_log) break;
    }
    if (total != expected) {
      Die(absl::InternalError(
              absl::StrCat("read ", total, ", expected ", expected)),
          "L1");
    }
  }
  state.SetItemsProcessed(state.iterations() * expected);
}

void RegisterReadAllRetention(const BackendStores& backend) {
  const std::string name = backend.name;
  const StoreFactory open = backend.open;
  RegisterPairedRounds(
      kL1, name,
      [name, open](benchmark::State& state) {
        ReadWholeLog(state, *L1For(name, open).rows, kL1RetainedEvents);
      },
      [name, open](benchmark::State& state) {
        ReadWholeLog(state, *L1For(name, open).plain, kL1PlainEvents);
      });
}

// --- S1, S2: the scavenge stores ---------------------------------------------

// The scavenge store's events: one batch of 1,000 reused for every stream
// (nil ids: the store gives each event a new one).
const std::vector<EventData>& ScavengeBatch() {
  static const auto* batch = [] {
    auto* events = new std::vector<EventData>;
    for (int64_t i = 0; i < kScavengeStreamEvents; ++i) {
      events->push_back(BenchEvent(i));
      events->back().id = Uuid();
    }
    return events;
  }();
  return *batch;
}

std::string ScavengeStream(int64_t i) { return absl::StrCat("sensor-", i); }

// Fills an empty store: ScavengeStreams() streams of 1,000 events, each
// with max_count = 100.
absl::Status FillScavengeStore(EventStore& store) {
  for (int64_t s = 0; s < ScavengeStreams(); ++s) {
    ES_RETURN_IF_ERROR(store
                           .Append(ScavengeStream(s),
                                   ExpectedVersion::NoStream(), ScavengeBatch())
                           .status());
  }
  StreamMetadata metadata;
  metadata.max_count = kScavengeKeep;
  for (int64_t s = 0; s < ScavengeStreams(); ++s) {
    ES_RETURN_IF_ERROR(store.SetStreamMetadata(ScavengeStream(s), metadata));
  }
  return absl::OkStatus();
}

// Times `store`'s Scavenge; checks that it removed every hidden event.
void TimeScavenge(benchmark::State& state, EventStore& store,
                  int64_t batch_size) {
  ScavengeOptions options;
  options.batch_size = batch_size;
  state.ResumeTiming();
  absl::StatusOr<ScavengeResult> result = store.Scavenge(options);
  state.PauseTiming();
  if (!result.ok()) Die(result.status(), "Scavenge");
  if (result->events_removed != ScavengeHidden() || !result->complete) {
    Die(absl::InternalError(absl::StrCat("removed ", result->events_removed,
                                         ", expected ", ScavengeHidden())),
        "Scavenge");
  }
}

// --- SQLite: a template file, copied for each run ----------------------------

struct SqliteScavenge {
  std::unique_ptr<test::TempDir> dir;
  std::string template_path;
  int runs = 0;
};

SqliteScavenge& SqliteScavengeEnv() {
  static auto* env = new SqliteScavenge;
  return *env;
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenSqliteFile(
    const std::string& path) {
  SqliteOptions options;
  options.path = path;
  options.synchronous = Sync::kNormal;
  return SqliteEventStore::Open(options);
}

void RemoveSqliteFiles(const std::string& path) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path + suffix, ignored);
  }
}

// A new copy of the filled template (written on first use).
std::string SqliteScavengeCopy() {
  SqliteScavenge& env = SqliteScavengeEnv();
  if (env.dir == nullptr) {
    absl::StatusOr<std::unique_ptr<test::TempDir>> dir =
        test::TempDir::Create();
    if (!dir.ok()) Die(dir.status(), "temporary directory");
    env.dir = *std::move(dir);
    env.template_path = env.dir->File("template.db");
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        OpenSqliteFile(env.template_path);
    if (!store.ok()) Die(store.status(), "S: opening the SQLite template");
    const absl::Status filled = FillScavengeStore(**store);
    if (!filled.ok()) Die(filled, "S: filling the SQLite template");
  }
  const std::string path =
      env.dir->File(absl::StrCat("run-", ++env.runs, ".db"));
  for (const char* suffix : {"", "-wal"}) {
    std::error_code error;
    if (!std::filesystem::exists(env.template_path + suffix)) continue;
    std::filesystem::copy_file(env.template_path + suffix, path + suffix,
                               error);
    if (error) Die(absl::InternalError(error.message()), "S: copying");
  }
  return path;
}

// A raw sqlite3 connection, closed when destroyed.
class RawSqlite {
 public:
  explicit RawSqlite(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      Fail("open");
    }
    Exec("PRAGMA journal_mode = WAL");
    Exec("PRAGMA synchronous = NORMAL");
  }
  RawSqlite(const RawSqlite&) = delete;
  RawSqlite& operator=(const RawSqlite&) = delete;
  ~RawSqlite() { sqlite3_close_v2(db_); }

  void Exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      Fail(sql);
    }
  }
  sqlite3_stmt* Prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      Fail(sql);
    }
    return stmt;
  }
  // The integers the one-column query `sql` returns.
  std::vector<int64_t> Integers(const std::string& sql) {
    sqlite3_stmt* stmt = Prepare(sql);
    std::vector<int64_t> values;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      values.push_back(sqlite3_column_int64(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return values;
  }
  [[noreturn]] void Fail(std::string_view what) {
    Die(absl::InternalError(sqlite3_errmsg(db_)), what);
  }

 private:
  sqlite3* db_ = nullptr;
};

// "DELETE FROM events WHERE position IN (?, ..., ?)" with `n` parameters.
std::string DeleteByPositions(int64_t n) {
  std::string sql = "DELETE FROM events WHERE position IN (?";
  for (int64_t i = 1; i < n; ++i) sql += ",?";
  return sql + ")";
}

void SqliteScavengeOurs(benchmark::State& state, int64_t batch_size) {
  for (auto _ : state) {
    state.PauseTiming();
    const std::string path = SqliteScavengeCopy();
    {
      absl::StatusOr<std::unique_ptr<EventStore>> store = OpenSqliteFile(path);
      if (!store.ok()) Die(store.status(), "S: opening");
      TimeScavenge(state, **store, batch_size);
    }
    RawSqlite check(path);
    if (check.Integers("SELECT count(*) FROM events")[0] !=
        ScavengeEvents() - ScavengeHidden()) {
      Die(absl::InternalError("rows left"), "S: Scavenge");
    }
    RemoveSqliteFiles(path);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * ScavengeHidden());
}

// The baseline: the hidden rows' positions are read first (untimed), then
// deleted `batch_size` at a time, one transaction each.
void SqliteScavengeRaw(benchmark::State& state, int64_t batch_size) {
  for (auto _ : state) {
    state.PauseTiming();
    const std::string path = SqliteScavengeCopy();
    {
      RawSqlite db(path);
      const std::vector<int64_t> positions = db.Integers(absl::StrCat(
          "SELECT position FROM events WHERE version <= ",
          kScavengeStreamEvents - kScavengeKeep, " ORDER BY position"));
      if (static_cast<int64_t>(positions.size()) != ScavengeHidden()) {
        Die(absl::InternalError("wrong count"), "S: raw positions");
      }
      sqlite3_stmt* full = db.Prepare(DeleteByPositions(batch_size));
      const int64_t rest = ScavengeHidden() % batch_size;
      sqlite3_stmt* last =
          rest > 0 ? db.Prepare(DeleteByPositions(rest)) : nullptr;
      state.ResumeTiming();
      for (size_t at = 0; at < positions.size();) {
        const int64_t n = std::min<int64_t>(batch_size, positions.size() - at);
        sqlite3_stmt* stmt = n == batch_size ? full : last;
        db.Exec("BEGIN IMMEDIATE");
        for (int64_t i = 0; i < n; ++i) {
          sqlite3_bind_int64(stmt, static_cast<int>(i + 1), positions[at + i]);
        }
        if (sqlite3_step(stmt) != SQLITE_DONE) db.Fail("DELETE");
        sqlite3_reset(stmt);
        db.Exec("COMMIT");
        at += static_cast<size_t>(n);
      }
      state.PauseTiming();
      sqlite3_finalize(full);
      sqlite3_finalize(last);
      if (db.Integers("SELECT count(*) FROM events")[0] !=
          ScavengeEvents() - ScavengeHidden()) {
        Die(absl::InternalError("rows left"), "S: raw");
      }
    }
    RemoveSqliteFiles(path);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * ScavengeHidden());
}

// --- PostgreSQL: a template schema, copied for each run ----------------------

// A libpq connection, closed when destroyed.
class RawPostgres {
 public:
  explicit RawPostgres(const std::string& url)
      : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) Fail("connect");
    // DROP SCHEMA ... CASCADE's notices say nothing worth showing.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  RawPostgres(const RawPostgres&) = delete;
  RawPostgres& operator=(const RawPostgres&) = delete;
  ~RawPostgres() { PQfinish(conn_); }

  // Runs `sql` (one or more statements, no parameters).
  void Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const ExecStatusType status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      PQclear(r);
      Fail(sql);
    }
    PQclear(r);
  }
  // The rows of `sql`, as text.
  std::vector<std::vector<std::string>> Rows(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      PQclear(r);
      Fail(sql);
    }
    std::vector<std::vector<std::string>> rows(PQntuples(r));
    for (int i = 0; i < PQntuples(r); ++i) {
      for (int j = 0; j < PQnfields(r); ++j) {
        rows[i].emplace_back(PQgetvalue(r, i, j), PQgetlength(r, i, j));
      }
    }
    PQclear(r);
    return rows;
  }
  // Runs the prepared statement `name` with text parameters.
  void ExecPrepared(const char* name, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const std::string& p : params) values.push_back(p.c_str());
    PGresult* r = PQexecPrepared(conn_, name, static_cast<int>(values.size()),
                                 values.data(), nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      PQclear(r);
      Fail(name);
    }
    PQclear(r);
  }
  void Prepare(const char* name, const std::string& sql) {
    PGresult* r = PQprepare(conn_, name, sql.c_str(), 0, nullptr);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      PQclear(r);
      Fail(sql);
    }
    PQclear(r);
  }
  [[noreturn]] void Fail(std::string_view what) {
    Die(absl::InternalError(PQerrorMessage(conn_)), what);
  }

 private:
  PGconn* conn_;
};

struct PostgresScavenge {
  std::string url;
  std::string template_schema;
  int runs = 0;
};

PostgresScavenge& PostgresScavengeEnv() {
  static auto* env = new PostgresScavenge;
  return *env;
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenPostgresSchema(
    const std::string& url, const std::string& schema) {
  PostgresOptions options;
  options.conninfo = url;
  options.schema = schema;
  return PostgresEventStore::Open(options);
}

// A new schema holding a copy of the filled template's tables (the
// template is written on first use), analysed as a store in use would be.
std::string PostgresScavengeCopy() {
  PostgresScavenge& env = PostgresScavengeEnv();
  if (env.template_schema.empty()) {
    absl::StatusOr<std::string> url = BenchPostgresUrl();
    if (!url.ok()) Die(url.status(), "starting PostgreSQL");
    env.url = *url;
    env.template_schema = absl::StrCat("lc_template_", getpid());
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        OpenPostgresSchema(env.url, env.template_schema);
    if (!store.ok()) Die(store.status(), "S: opening the template schema");
    const absl::Status filled = FillScavengeStore(**store);
    if (!filled.ok()) Die(filled, "S: filling the template schema");
  }
  const std::string schema = absl::StrCat("lc_", getpid(), "_", ++env.runs);
  {
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        OpenPostgresSchema(env.url, schema);
    if (!store.ok()) Die(store.status(), "S: creating a schema");
  }
  RawPostgres db(env.url);
  const std::string& t = env.template_schema;
  db.Exec(absl::StrCat(
      "BEGIN; INSERT INTO ", schema,
      ".events OVERRIDING SYSTEM VALUE SELECT * "
      "FROM ",
      t, ".events; INSERT INTO ", schema, ".event_types SELECT * FROM ", t,
      ".event_types ON CONFLICT DO NOTHING; INSERT INTO ", schema,
      ".streams SELECT * FROM ", t, ".streams; SELECT setval(",
      "pg_get_serial_sequence('", schema, ".events', 'position'), (SELECT ",
      "max(position) FROM ", schema, ".events)); COMMIT; ANALYZE ", schema,
      ".events; ANALYZE ", schema, ".streams"));
  return schema;
}

void CheckPostgresLeft(RawPostgres& db, const std::string& schema,
                       std::string_view what) {
  const std::string left =
      db.Rows(absl::StrCat("SELECT count(*) FROM ", schema, ".events"))[0][0];
  if (left != absl::StrCat(ScavengeEvents() - ScavengeHidden())) {
    Die(absl::InternalError(absl::StrCat(left, " rows left")), what);
  }
}

void PostgresScavengeOurs(benchmark::State& state, int64_t batch_size) {
  for (auto _ : state) {
    state.PauseTiming();
    const std::string schema = PostgresScavengeCopy();
    const std::string& url = PostgresScavengeEnv().url;
    {
      absl::StatusOr<std::unique_ptr<EventStore>> store =
          OpenPostgresSchema(url, schema);
      if (!store.ok()) Die(store.status(), "S: opening");
      TimeScavenge(state, **store, batch_size);
    }
    RawPostgres db(url);
    CheckPostgresLeft(db, schema, "S: Scavenge");
    db.Exec(absl::StrCat("DROP SCHEMA ", schema, " CASCADE"));
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * ScavengeHidden());
}

// The baseline: the hidden rows' primary keys (transaction_id, position)
// are read first (untimed), then deleted `batch_size` at a time, one
// statement (its own transaction) each.
void PostgresScavengeRaw(benchmark::State& state, int64_t batch_size) {
  for (auto _ : state) {
    state.PauseTiming();
    const std::string schema = PostgresScavengeCopy();
    RawPostgres db(PostgresScavengeEnv().url);
    const std::vector<std::vector<std::string>> keys = db.Rows(absl::StrCat(
        "SELECT transaction_id::text, position::text FROM ", schema,
        ".events WHERE version <= ", kScavengeStreamEvents - kScavengeKeep,
        " ORDER BY position"));
    if (static_cast<int64_t>(keys.size()) != ScavengeHidden()) {
      Die(absl::InternalError("wrong count"), "S: raw keys");
    }
    // The parameters of each batch, built before timing.
    std::vector<std::vector<std::string>> batches;
    for (size_t at = 0; at < keys.size();) {
      std::string transactions = "{";
      std::string positions = "{";
      for (int64_t i = 0; i < batch_size && at < keys.size(); ++i, ++at) {
        if (i > 0) {
          transactions += ",";
          positions += ",";
        }
        transactions += keys[at][0];
        positions += keys[at][1];
      }
      batches.push_back({transactions + "}", positions + "}"});
    }
    db.Prepare("delete_batch",
               absl::StrCat("DELETE FROM ", schema,
                            ".events e USING unnest($1::xid8[], $2::bigint[]) "
                            "AS k(t, p) WHERE e.transaction_id = k.t AND "
                            "e.position = k.p"));
    state.ResumeTiming();
    for (const std::vector<std::string>& params : batches) {
      db.ExecPrepared("delete_batch", params);
    }
    state.PauseTiming();
    CheckPostgresLeft(db, schema, "S: raw");
    db.Exec(absl::StrCat("DROP SCHEMA ", schema, " CASCADE"));
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * ScavengeHidden());
}

void DropPostgresTemplate() {
  PostgresScavenge& env = PostgresScavengeEnv();
  if (env.template_schema.empty()) return;
  RawPostgres db(env.url);
  db.Exec(absl::StrCat("DROP SCHEMA ", env.template_schema, " CASCADE"));
  env.template_schema.clear();
}

void RegisterScavenge(const char* backend) {
  const bool pg = std::string_view(backend) == kPostgres;
  for (const auto& [workload, batch] :
       {std::pair{&kS1, int64_t{1000}}, std::pair{&kS2, int64_t{10000}}}) {
    const int64_t b = batch;
    RegisterPairedRounds(
        *workload, backend,
        [pg, b](benchmark::State& state) {
          pg ? PostgresScavengeOurs(state, b) : SqliteScavengeOurs(state, b);
        },
        [pg, b](benchmark::State& state) {
          pg ? PostgresScavengeRaw(state, b) : SqliteScavengeRaw(state, b);
        });
  }
}

int Main(int argc, char** argv) {
  BenchDisplay display = MakeBenchDisplay(argc, argv);
  Backend sqlite;
  sqlite.name = kSqlite;
  Backend postgres;
  postgres.name = kPostgres;
  const Workload workloads[] = {kE1, kE2, kE3, kL1, kS1, kS2};
  const Backend backends[] = {sqlite, postgres};
  RatioReporter reporter(std::move(display.reporter), workloads, backends,
                         display.table_out);
  reporter.set_title(
      "Ratios: E1..E3 W1..W3 through EncryptedEventStore (every event names\n"
      "a subject) / the plain store; L1 ReadAll with a streams row per stream\n"
      "/ without; S1, S2 Scavenge / raw DELETE of the same rows (events\n"
      "removed/s). Events/s are each side's median over rounds; the ratio is\n"
      "the median of the rounds' ratios, with their range.");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("scavenge_events",
                              std::to_string(ScavengeEvents()));
  benchmark::AddCustomContext("payload_bytes",
                              std::to_string(TypicalPayloadBytes()));

  const BackendStores stores[] = {
      {kSqlite, SqliteStoreOpener(Sync::kNormal), false},
      {kPostgres, PostgresStoreOpener(), true},
  };
  for (const BackendStores& backend : stores) RegisterEncrypted(backend);
  for (const BackendStores& backend : stores) {
    RegisterReadAllRetention(backend);
  }
  for (const BackendStores& backend : stores) RegisterScavenge(backend.name);
  benchmark::RunSpecifiedBenchmarks(&reporter);

  CloseReadFixtures();
  L1Fixtures().clear();
  SqliteScavengeEnv().dir.reset();
  DropPostgresTemplate();
  StopBenchPostgres();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) { return eventstore::bench::Main(argc, argv); }
