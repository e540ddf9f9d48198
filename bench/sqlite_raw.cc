#include "bench/sqlite_raw.h"

#include <benchmark/benchmark.h>
#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/status_macros.h"
#include "tests/support/temp_dir.h"

namespace eventstore::bench {

using ::eventstore::test::TempDir;

namespace {

// The event log's tables and indexes as backends/sqlite/sqlite_schema.cc
// creates them (migrations 1 and 4). CheckRawSchemaMatchesStore() compares
// the two.
constexpr char kSchema[] = R"sql(
CREATE TABLE eventstore_schema (
  version INTEGER NOT NULL
);
INSERT INTO eventstore_schema (version) VALUES (1);
CREATE TABLE events (
  position    INTEGER PRIMARY KEY,
  id          BLOB    NOT NULL UNIQUE,
  stream      TEXT    NOT NULL,
  version     INTEGER NOT NULL,
  type        TEXT    NOT NULL,
  payload     BLOB    NOT NULL,
  metadata    BLOB,
  tenant_id   TEXT,
  recorded_at INTEGER NOT NULL,
  checksum    INTEGER,  -- added by migration 4; the raw side leaves it NULL
  source_commit  INTEGER,  -- added by migration 5 (an imported event's
  source_prepare INTEGER,  -- source position); NULL for an append
  UNIQUE (stream, version)
);
CREATE TABLE event_types (
  type        TEXT PRIMARY KEY,
  descriptor  BLOB    NOT NULL,
  recorded_at INTEGER NOT NULL
);
)sql";

// The store's statements, word for word (backends/sqlite/
// sqlite_event_store.cc).
constexpr char kInsertEvent[] =
    "INSERT INTO events (id, stream, version, type, payload, metadata, "
    "tenant_id, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr char kReadForward[] =
    "SELECT position, id, stream, version, type, payload, metadata, "
    "recorded_at FROM events WHERE stream = ?1 AND version >= ?2 "
    "ORDER BY version LIMIT ?3";
constexpr char kReadAll[] =
    "SELECT position, id, stream, version, type, payload, metadata, "
    "recorded_at FROM events WHERE position > ? ORDER BY position LIMIT ?";

// The structure of the event log's tables, one line per column of a table
// or of an index, in a stable order. (The store's other tables, such as
// checkpoints or the outbox, play no part in the workloads.)
constexpr char kDescribeTables[] =
    "SELECT m.name, p.cid, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk "
    "FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p "
    "WHERE m.name IN ('events', 'event_types') ORDER BY m.name, p.cid";
constexpr char kDescribeIndexes[] =
    "SELECT m.name, l.\"unique\", l.origin, l.partial, i.seqno, i.name "
    "FROM sqlite_master AS m JOIN pragma_index_list(m.name) AS l "
    "JOIN pragma_index_info(l.name) AS i "
    "WHERE m.name IN ('events', 'event_types') "
    "ORDER BY m.name, l.origin, l.\"unique\", "
    "l.name, i.seqno";

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
struct FinalizeStmt {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbHandle = std::unique_ptr<sqlite3, CloseDb>;
using StmtHandle = std::unique_ptr<sqlite3_stmt, FinalizeStmt>;

absl::Status Error(sqlite3* db, std::string_view what) {
  return absl::InternalError(
      absl::StrCat("sqlite (raw): ", std::string(what), ": ",
                   db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

absl::StatusOr<DbHandle> OpenDb(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  DbHandle handle(db);
  if (rc != SQLITE_OK) return Error(db, absl::StrCat("opening ", path));
  return handle;
}

absl::Status Exec(sqlite3* db, const std::string& sql) {
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Error(db, sql);
  }
  return absl::OkStatus();
}

absl::StatusOr<StmtHandle> Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc =
      sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  StmtHandle handle(stmt);
  if (rc != SQLITE_OK) return Error(db, sql);
  return handle;
}

// Steps a statement that returns no rows, then resets it.
absl::Status Run(sqlite3* db, sqlite3_stmt* stmt) {
  const int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  if (rc != SQLITE_DONE) return Error(db, sqlite3_sql(stmt));
  return absl::OkStatus();
}

const char* SynchronousName(SqliteOptions::Synchronous s) {
  switch (s) {
    case SqliteOptions::Synchronous::kOff:
      return "OFF";
    case SqliteOptions::Synchronous::kNormal:
      return "NORMAL";
    case SqliteOptions::Synchronous::kFull:
      return "FULL";
    case SqliteOptions::Synchronous::kExtra:
      return "EXTRA";
  }
  return "FULL";
}

// Reads every column of the current row as an application reading the
// bytes in place would: each value's pointer and size, and its first byte.
int64_t TouchRow(sqlite3_stmt* stmt) {
  int64_t sum = sqlite3_column_int64(stmt, 0) + sqlite3_column_int64(stmt, 3) +
                sqlite3_column_int64(stmt, 7);
  for (int column : {1, 5, 6}) {
    const void* blob = sqlite3_column_blob(stmt, column);
    const int size = sqlite3_column_bytes(stmt, column);
    if (size > 0) sum += *static_cast<const unsigned char*>(blob) + size;
  }
  for (int column : {2, 4}) {
    const unsigned char* text = sqlite3_column_text(stmt, column);
    const int size = sqlite3_column_bytes(stmt, column);
    if (size > 0) sum += text[0] + size;
  }
  return sum;
}

class SqliteRawTarget final : public Target {
 public:
  // A new database at `path`. `scratch` is released after it is closed.
  static absl::StatusOr<std::unique_ptr<SqliteRawTarget>> Create(
      const std::string& path, SqliteOptions::Synchronous synchronous,
      std::shared_ptr<void> scratch) {
    std::unique_ptr<SqliteRawTarget> target(
        new SqliteRawTarget(std::move(scratch)));
    ES_ASSIGN_OR_RETURN(target->db_, OpenDb(path));
    sqlite3* db = target->db_.get();
    ES_RETURN_IF_ERROR(Exec(db, "PRAGMA journal_mode = WAL"));
    ES_RETURN_IF_ERROR(Exec(db, absl::StrCat("PRAGMA synchronous = ",
                                             SynchronousName(synchronous))));
    ES_RETURN_IF_ERROR(Exec(db, kSchema));
    ES_ASSIGN_OR_RETURN(target->begin_, Prepare(db, "BEGIN IMMEDIATE"));
    ES_ASSIGN_OR_RETURN(target->commit_, Prepare(db, "COMMIT"));
    ES_ASSIGN_OR_RETURN(target->rollback_, Prepare(db, "ROLLBACK"));
    ES_ASSIGN_OR_RETURN(target->insert_, Prepare(db, kInsertEvent));
    ES_ASSIGN_OR_RETURN(target->read_stream_, Prepare(db, kReadForward));
    ES_ASSIGN_OR_RETURN(target->read_all_, Prepare(db, kReadAll));
    return target;
  }

  absl::Status Append(const Batch& batch) override {
    int64_t version;
    switch (batch.expected.kind()) {
      case ExpectedVersion::Kind::kNoStream:
        version = 0;
        break;
      case ExpectedVersion::Kind::kExactly:
        version = batch.expected.version();
        break;
      default:
        return absl::InvalidArgumentError(
            "sqlite (raw): a batch needs NoStream() or Exactly(n)");
    }
    sqlite3* db = db_.get();
    sqlite3_stmt* insert = insert_.get();
    const int64_t now = absl::ToUnixMicros(absl::Now());
    ES_RETURN_IF_ERROR(Run(db, begin_.get()));
    for (size_t i = 0; i < batch.events.size(); ++i) {
      const EventData& event = batch.events[i];
      const std::string& metadata = batch.encoded_metadata[i];
      const std::string& tenant = event.metadata.tenant_id();
      const std::string_view id = event.id.bytes();
      sqlite3_bind_blob(insert, 1, id.data(), static_cast<int>(id.size()),
                        SQLITE_STATIC);
      sqlite3_bind_text(insert, 2, batch.stream.data(),
                        static_cast<int>(batch.stream.size()), SQLITE_STATIC);
      sqlite3_bind_int64(insert, 3, ++version);
      sqlite3_bind_text(insert, 4, event.type.data(),
                        static_cast<int>(event.type.size()), SQLITE_STATIC);
      sqlite3_bind_blob(insert, 5, event.payload.data(),
                        static_cast<int>(event.payload.size()), SQLITE_STATIC);
      if (metadata.empty()) {
        sqlite3_bind_null(insert, 6);
      } else {
        sqlite3_bind_blob(insert, 6, metadata.data(),
                          static_cast<int>(metadata.size()), SQLITE_STATIC);
      }
      if (tenant.empty()) {
        sqlite3_bind_null(insert, 7);
      } else {
        sqlite3_bind_text(insert, 7, tenant.data(),
                          static_cast<int>(tenant.size()), SQLITE_STATIC);
      }
      sqlite3_bind_int64(insert, 8, now);
      const absl::Status status = Run(db, insert);
      if (!status.ok()) {
        Run(db, rollback_.get()).IgnoreError();
        return status;
      }
    }
    return Run(db, commit_.get());
  }

  absl::StatusOr<int64_t> ReadStream(const std::string& stream) override {
    sqlite3_stmt* stmt = read_stream_.get();
    sqlite3_bind_text(stmt, 1, stream.data(), static_cast<int>(stream.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, 1);
    sqlite3_bind_int64(stmt, 3, std::numeric_limits<int64_t>::max());
    int64_t rows = 0;
    int64_t sum = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      sum += TouchRow(stmt);
      ++rows;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return Error(db_.get(), kReadForward);
    benchmark::DoNotOptimize(sum);
    return rows;
  }

  absl::StatusOr<PageResult> ReadAll(Position from,
                                     int64_t max_count) override {
    sqlite3_stmt* stmt = read_all_.get();
    sqlite3_bind_int64(stmt, 1, static_cast<int64_t>(from.commit()));
    sqlite3_bind_int64(stmt, 2, max_count);
    PageResult page;
    page.next_position = from;
    int64_t sum = 0;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      sum += TouchRow(stmt);
      ++page.events;
      page.next_position =
          Position::At(static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)));
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return Error(db_.get(), kReadAll);
    benchmark::DoNotOptimize(sum);
    page.end_of_log = page.events < max_count;
    return page;
  }

 private:
  explicit SqliteRawTarget(std::shared_ptr<void> scratch)
      : scratch_(std::move(scratch)) {}

  // Destroyed in reverse: statements, then the handle, then the files.
  std::shared_ptr<void> scratch_;
  DbHandle db_;
  StmtHandle begin_;
  StmtHandle commit_;
  StmtHandle rollback_;
  StmtHandle insert_;
  StmtHandle read_stream_;
  StmtHandle read_all_;
};

absl::StatusOr<std::string> Describe(const std::string& path) {
  ES_ASSIGN_OR_RETURN(DbHandle db, OpenDb(path));
  std::string out;
  for (const char* sql : {kDescribeTables, kDescribeIndexes}) {
    ES_ASSIGN_OR_RETURN(StmtHandle stmt, Prepare(db.get(), sql));
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(stmt.get()); ++c) {
        const unsigned char* text = sqlite3_column_text(stmt.get(), c);
        absl::StrAppend(
            &out, c == 0 ? "" : " | ",
            text == nullptr ? "NULL" : reinterpret_cast<const char*>(text));
      }
      out += "\n";
    }
    if (rc != SQLITE_DONE) return Error(db.get(), sql);
  }
  return out;
}

}  // namespace

TargetFactory SqliteRawFactory(SqliteOptions::Synchronous synchronous) {
  return [synchronous]() -> absl::StatusOr<std::unique_ptr<Target>> {
    ES_ASSIGN_OR_RETURN(std::shared_ptr<TempDir> dir, TempDir::Create());
    ES_ASSIGN_OR_RETURN(
        std::unique_ptr<Target> target,
        SqliteRawTarget::Create(dir->File("raw.db"), synchronous, dir));
    return target;
  };
}

StoreFactory SqliteStoreOpener(SqliteOptions::Synchronous synchronous) {
  return [synchronous]() -> absl::StatusOr<std::shared_ptr<EventStore>> {
    ES_ASSIGN_OR_RETURN(std::shared_ptr<TempDir> dir, TempDir::Create());
    SqliteOptions options;
    options.path = dir->File("events.db");
    options.synchronous = synchronous;
    options.wal = true;
    ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> store,
                        SqliteEventStore::Open(options));
    // The deleter owns the directory: it is removed after the store closes.
    return std::shared_ptr<EventStore>(
        store.release(), [dir = std::move(dir)](EventStore* s) { delete s; });
  };
}

TargetFactory SqliteStoreFactory(SqliteOptions::Synchronous synchronous) {
  return [open = SqliteStoreOpener(
              synchronous)]() -> absl::StatusOr<std::unique_ptr<Target>> {
    ES_ASSIGN_OR_RETURN(std::shared_ptr<EventStore> store, open());
    return MakeStoreTarget(std::move(store), nullptr);
  };
}

absl::Status CheckRawSchemaMatchesStore() {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const std::string ours_path = dir->File("ours.db");
  const std::string raw_path = dir->File("raw.db");
  {
    SqliteOptions options;
    options.path = ours_path;
    ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> store,
                        SqliteEventStore::Open(options));
  }
  {
    ES_ASSIGN_OR_RETURN(
        std::unique_ptr<SqliteRawTarget> raw,
        SqliteRawTarget::Create(raw_path, SqliteOptions::Synchronous::kNormal,
                                nullptr));
  }
  ES_ASSIGN_OR_RETURN(std::string ours, Describe(ours_path));
  ES_ASSIGN_OR_RETURN(std::string raw, Describe(raw_path));
  if (ours != raw) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the raw baseline's schema (kSchema in bench/sqlite_raw.cc) differs "
        "from the store's (backends/sqlite/sqlite_schema.cc); copy it "
        "again.\nstore:\n",
        ours, "raw:\n", raw));
  }
  return absl::OkStatus();
}

}  // namespace eventstore::bench
