#include "backends/sqlite/sqlite_schema.h"

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
};

static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) ==
                  SqliteEventStore::kSchemaVersion,
              "one migration per schema version");

absl::Status NotOurs(const std::string& path, std::string_view why) {
  return absl::FailedPreconditionError(
      absl::StrCat("sqlite: '", path, "' is not an eventstore database (",
                   std::string(why), "); it was left untouched"));
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
    if (tables == 0) return 0;
    return NotOurs(path, "it holds tables of another application");
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
  ES_ASSIGN_OR_RETURN(
      int64_t version,
      conn.QueryInt64("SELECT max(version) FROM eventstore_schema", -1));
  if (version < 0) return NotOurs(path, "its schema table is empty");
  if (version > SqliteEventStore::kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sqlite: '", path, "' has schema version ", version,
        ", newer than this code's ", SqliteEventStore::kSchemaVersion,
        "; upgrade eventstore to open it (the file was left untouched)"));
  }
  return version;
}

}  // namespace

absl::Status EnsureSchema(SqliteConnection& conn, const std::string& path) {
  int64_t version;
  {
    // One read transaction, so that the inspection sees one state of the
    // file even while another process initialises it.
    ES_ASSIGN_OR_RETURN(
        SqliteTransaction read,
        SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kDeferred));
    ES_ASSIGN_OR_RETURN(version, InspectSchema(conn, path));
  }
  if (version == SqliteEventStore::kSchemaVersion) return absl::OkStatus();

  // Migrate under the write lock, inspecting again: another process may
  // have migrated since.
  ES_ASSIGN_OR_RETURN(
      SqliteTransaction txn,
      SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kImmediate));
  ES_ASSIGN_OR_RETURN(version, InspectSchema(conn, path));
  if (version == 0) {
    ES_RETURN_IF_ERROR(
        conn.Exec(absl::StrCat("PRAGMA application_id = ", kApplicationId)));
  }
  for (int64_t v = version; v < SqliteEventStore::kSchemaVersion; ++v) {
    ES_RETURN_IF_ERROR(conn.Exec(kMigrations[v]));
    ES_RETURN_IF_ERROR(conn.Exec(
        absl::StrCat("UPDATE eventstore_schema SET version = ", v + 1)));
  }
  return txn.Commit();
}

}  // namespace eventstore::sqlite
