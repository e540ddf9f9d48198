#include "backends/sqlite/sqlite_schema.h"

#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {
namespace {

// Migration i (0-based) brings a database from schema version i to i + 1.
// Append new migrations at the end; never edit a released one.
constexpr const char* kMigrations[] = {
    // 1: the event log, type descriptors and the schema version.
    R"sql(
CREATE TABLE eventstore_schema (
  version INTEGER NOT NULL
);
INSERT INTO eventstore_schema (version) VALUES (0);
CREATE TABLE events (
  position    INTEGER PRIMARY KEY,   -- the global position (rowid)
  id          BLOB    NOT NULL UNIQUE,  -- 16-byte UUID
  stream      TEXT    NOT NULL,
  version     INTEGER NOT NULL,      -- 1-based, gapless per stream
  type        TEXT    NOT NULL,      -- protobuf full name
  payload     BLOB    NOT NULL,
  metadata    BLOB,                  -- eventstore.v1.EventMetadata; NULL if empty
  tenant_id   TEXT,                  -- copied from metadata for ReadAll filters
  recorded_at INTEGER NOT NULL,      -- microseconds since the Unix epoch
  UNIQUE (stream, version)
);
CREATE TABLE event_types (
  type        TEXT PRIMARY KEY,
  descriptor  BLOB    NOT NULL,      -- google.protobuf.FileDescriptorSet
  recorded_at INTEGER NOT NULL
);
)sql",
    // 2: projections' checkpoints and dead letters, the outbox, snapshots.
    R"sql(
CREATE TABLE checkpoints (
  projection       TEXT    PRIMARY KEY,
  position_commit  INTEGER NOT NULL,
  position_prepare INTEGER NOT NULL,
  events_processed INTEGER NOT NULL DEFAULT 0,
  updated_at       INTEGER NOT NULL      -- microseconds since the Unix epoch
);
CREATE TABLE dead_letters (
  projection       TEXT    NOT NULL,
  event_id         BLOB    NOT NULL,     -- 16-byte UUID
  stream           TEXT    NOT NULL,
  version          INTEGER NOT NULL,
  position_commit  INTEGER NOT NULL,
  position_prepare INTEGER NOT NULL,
  event_type       TEXT    NOT NULL,
  status           TEXT    NOT NULL,     -- parked | retrying | resolved
  error            TEXT    NOT NULL,
  failure_count    INTEGER NOT NULL,
  first_failed_at  INTEGER NOT NULL,
  last_failed_at   INTEGER NOT NULL,
  resolved_by      TEXT,
  resolved_at      INTEGER,
  PRIMARY KEY (projection, event_id)
);
CREATE INDEX dead_letters_by_status
  ON dead_letters (projection, status, first_failed_at);
CREATE TABLE outbox (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
  destination  TEXT    NOT NULL,
  message_key  TEXT    NOT NULL,
  payload      BLOB    NOT NULL,
  headers      BLOB,                     -- eventstore.v1.OutboxHeaders
  status       TEXT    NOT NULL DEFAULT 'pending',  -- pending | published | failed
  created_at   INTEGER NOT NULL,
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  published_at INTEGER,
  claimed_by   TEXT,
  lease_until  INTEGER
);
CREATE INDEX outbox_by_status ON outbox (status, id);
CREATE TABLE snapshots (
  stream         TEXT    NOT NULL,
  schema_version INTEGER NOT NULL,
  version        INTEGER NOT NULL,
  type           TEXT    NOT NULL,
  state          BLOB    NOT NULL,
  taken_at       INTEGER NOT NULL,
  PRIMARY KEY (stream, schema_version)
);
)sql",
    // 3: the store's identity, and migrations into this store: each
    // imported event's source position beside its position here.
    R"sql(
CREATE TABLE eventstore_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
INSERT INTO eventstore_meta (key, value) VALUES ('store_id', lower(
  hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
  substr(hex(randomblob(2)), 2) || '-' ||
  substr('89ab', 1 + (abs(random()) % 4), 1) ||
  substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))));
CREATE TABLE migrations (
  migration_id        TEXT    PRIMARY KEY,  -- the source's store_id
  source              TEXT    NOT NULL,     -- URL (password masked) or file
  last_source_commit  INTEGER NOT NULL,
  last_source_prepare INTEGER NOT NULL,
  events              INTEGER NOT NULL,
  started_at          INTEGER NOT NULL,     -- microseconds since the epoch
  updated_at          INTEGER NOT NULL
);
CREATE TABLE migration_positions (
  migration_id   TEXT    NOT NULL,
  source_commit  INTEGER NOT NULL,
  source_prepare INTEGER NOT NULL,
  position       INTEGER NOT NULL,          -- events.position here
  PRIMARY KEY (migration_id, source_commit, source_prepare)
) WITHOUT ROWID;
)sql",
    // 4: a checksum per event (eventstore/internal/event_checksum.h); NULL
    // for events stored before this version, which are not checked.
    R"sql(
ALTER TABLE events ADD COLUMN checksum INTEGER;  -- CRC-32, 0 to 2^32-1
)sql",
    // 5: migration_positions by this store's position, so that a position
    // here maps back to its source position with one index lookup (reads of
    // a StoreReplica carry the primary's positions); and an imported event's
    // source position beside it (NULL for an event appended here), so that
    // a replica's stream reads at the primary's positions with no lookup.
    R"sql(
CREATE INDEX migration_positions_by_position
  ON migration_positions (migration_id, position);
ALTER TABLE events ADD COLUMN source_commit INTEGER;
ALTER TABLE events ADD COLUMN source_prepare INTEGER;
)sql",
    // 6: the stream lifecycle and crypto-shredding. A row per stream with
    // retention metadata or a deletion (eventstore/internal/stream_rules.h
    // says what each column means); each data subject's key, wrapped with
    // the application's master key (eventstore/subject_key_store.h), and the
    // streams holding the subject's events.
    R"sql(
CREATE TABLE streams (
  stream          TEXT    PRIMARY KEY,
  state           INTEGER NOT NULL DEFAULT 0,  -- 0 live, 1 soft-, 2 hard-deleted
  truncate_before INTEGER,
  max_count       INTEGER,
  max_age_us      INTEGER,
  version_floor   INTEGER NOT NULL DEFAULT 0,
  deleted_at      INTEGER,                     -- microseconds since the epoch
  updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE subject_keys (
  subject       TEXT    PRIMARY KEY,
  wrapped_key   BLOB,                          -- NULL once forgotten
  master_key_id TEXT,                          -- NULL once forgotten
  created_at    INTEGER NOT NULL,
  forgotten_at  INTEGER
) WITHOUT ROWID;
CREATE TABLE subject_streams (
  subject TEXT NOT NULL,
  stream  TEXT NOT NULL,
  PRIMARY KEY (subject, stream)
) WITHOUT ROWID;
CREATE INDEX subject_streams_by_stream ON subject_streams (stream);
)sql",
    // 7: a rebuild an operator requested for a projection
    // (CheckpointStore::RequestRebuild), until its runner starts it; NULL
    // when none is pending.
    R"sql(
ALTER TABLE checkpoints ADD COLUMN rebuild_requested_at INTEGER;  -- micros
ALTER TABLE checkpoints ADD COLUMN rebuild_requested_by TEXT;
)sql",
};

static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) ==
                  SqliteEventStore::kSchemaVersion,
              "one migration per schema version");

absl::Status NotOurs(const std::string& path, std::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("sqlite: '", path, "' is not an eventstore database (",
                   std::string(why), "); it was left untouched"));
}

absl::Status Damaged(const std::string& path, std::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("sqlite: '", path, "' is a damaged eventstore database (",
                   std::string(why), "); it was left untouched"));
}

// OK when the file at `path` is absent, empty, or starts with SQLite's
// header. SQLite takes a file shorter than its header for an empty
// database, which would then be overwritten with a new store.
absl::Status CheckFileHeader(const std::string& path) {
  if (path == ":memory:") return absl::OkStatus();
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::OkStatus();  // absent: SQLite reports that
  static constexpr char kHeader[] = "SQLite format 3";  // and its NUL
  char head[sizeof(kHeader)] = {};
  file.read(head, sizeof(head));
  const std::streamsize got = file.gcount();
  if (got == 0) return absl::OkStatus();
  if (got < static_cast<std::streamsize>(sizeof(head)) ||
      std::memcmp(head, kHeader, sizeof(kHeader)) != 0) {
    return NotOurs(path, "it is not a SQLite database");
  }
  return absl::OkStatus();
}

// The tables that the migrations up to `version` create.
std::vector<std::string> TablesOfVersion(int64_t version) {
  std::vector<std::string> tables;
  for (int64_t v = 0; v < version; ++v) {
    const std::string_view sql = kMigrations[v];
    static constexpr std::string_view kCreate = "CREATE TABLE ";
    for (size_t at = sql.find(kCreate); at != std::string_view::npos;
         at = sql.find(kCreate, at + 1)) {
      size_t name = at + kCreate.size();
      static constexpr std::string_view kIfNotExists = "IF NOT EXISTS ";
      if (sql.substr(name, kIfNotExists.size()) == kIfNotExists) {
        name += kIfNotExists.size();
      }
      const size_t end = sql.find_first_of(" (\n", name);
      tables.emplace_back(sql.substr(name, end - name));
    }
  }
  return tables;
}

// kFailedPrecondition naming the first table of `version` that is missing.
absl::Status CheckTables(SqliteConnection& conn, const std::string& path,
                         int64_t version) {
  ES_ASSIGN_OR_RETURN(
      SqliteStatement stmt,
      SqliteStatement::Prepare(
          conn.handle(), "SELECT name FROM sqlite_master WHERE type = 'table'",
          /*persistent=*/false));
  std::set<std::string, std::less<>> present;
  while (true) {
    ES_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    present.emplace(stmt.ColumnText(0));
  }
  for (const std::string& table : TablesOfVersion(version)) {
    if (present.count(table) == 0) {
      return Damaged(
          path, absl::StrCat("schema version ", version, " but its table '",
                             table, "' is missing"));
    }
  }
  return absl::OkStatus();
}

// The version in the schema table: kFailedPrecondition, with a short
// message, unless it holds a whole number from 1 to this code's version.
absl::StatusOr<int64_t> ReadSchemaVersion(SqliteConnection& conn,
                                          const std::string& path) {
  ES_ASSIGN_OR_RETURN(
      SqliteStatement stmt,
      SqliteStatement::Prepare(conn.handle(),
                               "SELECT typeof(max(version)), max(version) "
                               "FROM eventstore_schema",
                               /*persistent=*/false));
  ES_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row || stmt.ColumnIsNull(1)) {
    return NotOurs(path, "its schema table is empty");
  }
  if (stmt.ColumnText(0) != "integer") {
    std::string shown(stmt.ColumnText(1).substr(0, 40));
    return Damaged(path, absl::StrCat("its schema table holds '", shown,
                                      "', not a version number"));
  }
  const int64_t version = stmt.ColumnInt64(1);
  if (version < 1) {
    return Damaged(path,
                   absl::StrCat("its schema table holds version ", version));
  }
  if (version > SqliteEventStore::kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sqlite: '", path, "' has schema version ", version,
        ", newer than this code's ", SqliteEventStore::kSchemaVersion,
        "; upgrade eventstore to open it (the file was left untouched)"));
  }
  return version;
}

// Inspects without writing. Returns the schema version, 0 for an empty
// database that is ours to initialise.
absl::StatusOr<int64_t> InspectSchema(SqliteConnection& conn,
                                      const std::string& path) {
  absl::StatusOr<int64_t> app_id = conn.QueryInt64("PRAGMA application_id", 0);
  if (!app_id.ok()) {
    if (app_id.status().code() == absl::StatusCode::kFailedPrecondition) {
      return NotOurs(path, std::string(app_id.status().message()));
    }
    return app_id.status();
  }
  ES_ASSIGN_OR_RETURN(int64_t tables,
                      conn.QueryInt64("SELECT count(*) FROM sqlite_master", 0));
  if (*app_id == 0) {
    if (tables != 0) {
      return NotOurs(path, "it holds tables of another application");
    }
    ES_RETURN_IF_ERROR(CheckFileHeader(path));
    return 0;
  }
  if (*app_id != kApplicationId) {
    return NotOurs(path, absl::StrCat("its application_id is ", *app_id));
  }
  ES_ASSIGN_OR_RETURN(
      int64_t has_table,
      conn.QueryInt64("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                      "AND name = 'eventstore_schema'",
                      0));
  if (has_table == 0) return NotOurs(path, "its schema table is missing");
  ES_ASSIGN_OR_RETURN(int64_t version, ReadSchemaVersion(conn, path));
  ES_RETURN_IF_ERROR(CheckTables(conn, path, version));
  return version;
}

}  // namespace

absl::Status CreateSchemaAtVersion(SqliteConnection& conn, int64_t version) {
  if (version < 1 || version > SqliteEventStore::kSchemaVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("version: ", version, " is not from 1 to ",
                     SqliteEventStore::kSchemaVersion));
  }
  ES_ASSIGN_OR_RETURN(
      SqliteTransaction txn,
      SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kImmediate));
  ES_ASSIGN_OR_RETURN(int64_t found, InspectSchema(conn, "(new)"));
  if (found != 0) {
    return absl::FailedPreconditionError("the database is not empty");
  }
  ES_RETURN_IF_ERROR(
      conn.Exec(absl::StrCat("PRAGMA application_id = ", kApplicationId)));
  for (int64_t v = 0; v < version; ++v) {
    ES_RETURN_IF_ERROR(conn.Exec(kMigrations[v]));
    ES_RETURN_IF_ERROR(conn.Exec(
        absl::StrCat("UPDATE eventstore_schema SET version = ", v + 1)));
  }
  return txn.Commit();
}

absl::StatusOr<int64_t> EnsureSchema(SqliteConnection& conn,
                                     const std::string& path,
                                     SchemaPolicy policy) {
  int64_t version;
  {
    // One read transaction, so that the inspection sees one state of the
    // file even while another process initialises it.
    ES_ASSIGN_OR_RETURN(
        SqliteTransaction read,
        SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kDeferred));
    ES_ASSIGN_OR_RETURN(version, InspectSchema(conn, path));
  }
  auto refuse_change = [&](int64_t found) -> absl::Status {
    if (found == 0 && !policy.create) {
      return absl::NotFoundError(absl::StrCat(
          "sqlite: '", path,
          "' holds no eventstore yet, and creating one was not asked for "
          "(`eventstore init URL` creates it)"));
    }
    if (found != 0 && found < SqliteEventStore::kSchemaVersion &&
        !policy.upgrade) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite: '", path, "' has schema version ", found,
          ", older than this code's ", SqliteEventStore::kSchemaVersion,
          ", and this open may not upgrade it (read-only, or upgrade_schema "
          "off): run `eventstore upgrade URL` first; the file was left "
          "untouched"));
    }
    return absl::OkStatus();
  };
  if (version == SqliteEventStore::kSchemaVersion) return version;
  ES_RETURN_IF_ERROR(refuse_change(version));

  // Migrate under the write lock, inspecting again: another process may
  // have migrated since.
  ES_ASSIGN_OR_RETURN(
      SqliteTransaction txn,
      SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kImmediate));
  ES_ASSIGN_OR_RETURN(version, InspectSchema(conn, path));
  // Another process upgraded it meanwhile: nothing left to do here.
  if (version == SqliteEventStore::kSchemaVersion) return version;
  ES_RETURN_IF_ERROR(refuse_change(version));
  if (version == 0) {
    ES_RETURN_IF_ERROR(
        conn.Exec(absl::StrCat("PRAGMA application_id = ", kApplicationId)));
  }
  for (int64_t v = version; v < SqliteEventStore::kSchemaVersion; ++v) {
    ES_RETURN_IF_ERROR(conn.Exec(kMigrations[v]));
    ES_RETURN_IF_ERROR(conn.Exec(
        absl::StrCat("UPDATE eventstore_schema SET version = ", v + 1)));
  }
  ES_RETURN_IF_ERROR(txn.Commit());
  return version;
}

}  // namespace eventstore::sqlite
