#include "backends/postgres/pg_schema.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {
namespace {

// Migration i (0-based) brings a schema from version i to i + 1; "$S" stands
// for the quoted schema name. Append new migrations; never edit a released
// one.
constexpr const char* kMigrations[] = {
    // 1: the event log and type descriptors.
    R"sql(
CREATE TABLE $S.events (
  position       bigint  GENERATED ALWAYS AS IDENTITY,
  transaction_id xid8    NOT NULL DEFAULT pg_current_xact_id(),
  id             uuid    NOT NULL,
  stream         text    NOT NULL,
  version        bigint  NOT NULL,
  type           text    NOT NULL,
  payload        bytea   NOT NULL,
  metadata       bytea,
  tenant_id      text,
  recorded_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT events_pkey PRIMARY KEY (transaction_id, position),
  CONSTRAINT events_id_key UNIQUE (id),
  CONSTRAINT events_stream_version_key UNIQUE (stream, version)
);
CREATE TABLE $S.event_types (
  type        text PRIMARY KEY,
  descriptor  bytea NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
)sql",
    // 2: projections' checkpoints and dead letters, the outbox, snapshots.
    R"sql(
CREATE TABLE $S.checkpoints (
  projection       text   PRIMARY KEY,
  position_commit  bigint NOT NULL,
  position_prepare bigint NOT NULL,
  events_processed bigint NOT NULL DEFAULT 0,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE $S.dead_letters (
  projection       text    NOT NULL,
  event_id         uuid    NOT NULL,
  stream           text    NOT NULL,
  version          bigint  NOT NULL,
  position_commit  bigint  NOT NULL,
  position_prepare bigint  NOT NULL,
  event_type       text    NOT NULL,
  status           text    NOT NULL,   -- parked | retrying | resolved
  error            text    NOT NULL,
  failure_count    integer NOT NULL,
  first_failed_at  timestamptz NOT NULL,
  last_failed_at   timestamptz NOT NULL,
  resolved_by      text,
  resolved_at      timestamptz,
  PRIMARY KEY (projection, event_id)
);
CREATE INDEX dead_letters_by_status
  ON $S.dead_letters (projection, status, first_failed_at);
CREATE TABLE $S.outbox (
  id           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  destination  text    NOT NULL,
  message_key  text    NOT NULL,
  payload      bytea   NOT NULL,
  headers      bytea,                  -- eventstore.v1.OutboxHeaders
  status       text    NOT NULL DEFAULT 'pending',  -- pending | published | failed
  created_at   timestamptz NOT NULL DEFAULT now(),
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text,
  published_at timestamptz,
  claimed_by   text,
  lease_until  timestamptz
);
CREATE INDEX outbox_pending ON $S.outbox (id) WHERE status = 'pending';
CREATE TABLE $S.snapshots (
  stream         text    NOT NULL,
  schema_version integer NOT NULL,
  version        bigint  NOT NULL,
  type           text    NOT NULL,
  state          bytea   NOT NULL,
  taken_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, schema_version)
);
)sql",
    // 3: the store's identity, and migrations into this store: each
    // imported event's source position beside its position here.
    R"sql(
CREATE TABLE $S.eventstore_meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO $S.eventstore_meta (key, value)
  VALUES ('store_id', gen_random_uuid()::text);
CREATE TABLE $S.migrations (
  migration_id        text   PRIMARY KEY,   -- the source's store_id
  source              text   NOT NULL,      -- URL (password masked) or file
  last_source_commit  bigint NOT NULL,
  last_source_prepare bigint NOT NULL,
  events              bigint NOT NULL,
  started_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE $S.migration_positions (
  migration_id   text   NOT NULL,
  source_commit  bigint NOT NULL,
  source_prepare bigint NOT NULL,
  target_commit  bigint NOT NULL,           -- events.transaction_id here
  target_prepare bigint NOT NULL,           -- events.position here
  PRIMARY KEY (migration_id, source_commit, source_prepare)
);
)sql",
    // 4: a checksum per event (eventstore/internal/event_checksum.h); NULL
    // for events stored before this version, which are not checked.
    R"sql(
ALTER TABLE $S.events ADD COLUMN checksum bigint;  -- CRC-32, 0 to 2^32-1
)sql",
    // 5: migration_positions by this store's position, so that a position
    // here maps back to its source position with one index lookup (reads of
    // a StoreReplica carry the primary's positions).
    R"sql(
CREATE INDEX migration_positions_by_target
  ON $S.migration_positions (migration_id, target_commit, target_prepare);
)sql",
    // 6: the stream lifecycle and crypto-shredding. A row per stream with
    // retention metadata or a deletion (eventstore/internal/stream_rules.h
    // says what each column means); each data subject's key, wrapped with
    // the application's master key (eventstore/subject_key_store.h), and the
    // streams holding the subject's events.
    R"sql(
CREATE TABLE $S.streams (
  stream          text    PRIMARY KEY,
  state           integer NOT NULL DEFAULT 0,  -- 0 live, 1 soft-, 2 hard-deleted
  truncate_before bigint,
  max_count       bigint,
  max_age_us      bigint,
  version_floor   bigint  NOT NULL DEFAULT 0,
  deleted_at      timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE $S.subject_keys (
  subject       text PRIMARY KEY,
  wrapped_key   bytea,                         -- NULL once forgotten
  master_key_id text,                          -- NULL once forgotten
  created_at    timestamptz NOT NULL DEFAULT now(),
  forgotten_at  timestamptz
);
CREATE TABLE $S.subject_streams (
  subject text NOT NULL,
  stream  text NOT NULL,
  PRIMARY KEY (subject, stream)
);
CREATE INDEX subject_streams_by_stream ON $S.subject_streams (stream);
)sql",
    // 7: events by category (the stream name up to its first '-', "order"
    // for "order-17") in log order, so that ReadAll with a stream prefix
    // "<category>-" walks one category from a position instead of scanning
    // the log (postgres_event_store.cc, CategoryOfPrefix). split_part is
    // IMMUTABLE, as an index expression must be; a name without '-' is its
    // own category.
    R"sql(
CREATE INDEX events_by_category
  ON $S.events (split_part(stream, '-', 1), transaction_id, position);
)sql",
    // 8: a rebuild an operator requested for a projection
    // (CheckpointStore::RequestRebuild), until its runner starts it; NULL
    // when none is pending.
    R"sql(
ALTER TABLE $S.checkpoints ADD COLUMN rebuild_requested_at timestamptz;
ALTER TABLE $S.checkpoints ADD COLUMN rebuild_requested_by text;
)sql",
};

static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) ==
                  PostgresEventStore::kSchemaVersion,
              "one migration per schema version");

}  // namespace

absl::Status ValidateSchemaName(const std::string& schema) {
  bool ok = !schema.empty() && schema.size() <= 63 &&
            !(schema[0] >= '0' && schema[0] <= '9');
  for (char c : schema) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "schema: '", schema.substr(0, 80),
        "' is not a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 "
        "bytes)"));
  }
  return absl::OkStatus();
}

absl::Status CreateSchemaAtVersion(PgConnection& conn,
                                   const std::string& schema, int64_t version) {
  ES_RETURN_IF_ERROR(ValidateSchemaName(schema));
  if (version < 1 || version > PostgresEventStore::kSchemaVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("version: ", version, " is not from 1 to ",
                     PostgresEventStore::kSchemaVersion));
  }
  const std::string quoted = absl::StrCat("\"", schema, "\"");
  ES_ASSIGN_OR_RETURN(PgResult found,
                      conn.Exec(absl::StrCat("SELECT to_regclass('", quoted,
                                             ".eventstore_schema') IS NULL")));
  if (found.Bytes(0, 0) != "t") {
    return absl::FailedPreconditionError("the schema holds a store already");
  }
  std::string sql = absl::StrCat(
      "BEGIN; CREATE SCHEMA IF NOT EXISTS ", quoted, "; CREATE TABLE ", quoted,
      ".eventstore_schema (version integer NOT NULL); INSERT INTO ", quoted,
      ".eventstore_schema VALUES (", version, ");");
  for (int64_t v = 0; v < version; ++v) {
    absl::StrAppend(&sql,
                    absl::StrReplaceAll(kMigrations[v], {{"$S", quoted}}));
  }
  absl::StrAppend(&sql, "COMMIT;");
  absl::Status status = conn.Exec(sql).status();
  if (!status.ok() && !conn.broken()) {
    conn.Exec("ROLLBACK").status().IgnoreError();
  }
  return status;
}

absl::StatusOr<int64_t> EnsureSchema(PgConnection& conn,
                                     const std::string& schema,
                                     SchemaPolicy policy) {
  ES_RETURN_IF_ERROR(ValidateSchemaName(schema));
  const std::string quoted = absl::StrCat("\"", schema, "\"");
  // The name is validated above, so it is safe inside a literal as well.
  const std::string literal = absl::StrCat("'", schema, "'");
  ES_RETURN_IF_ERROR(conn.Exec("BEGIN").status());
  int64_t found_version = 0;
  absl::Status status = [&]() -> absl::Status {
    if (policy.create || policy.upgrade) {
      ES_RETURN_IF_ERROR(
          conn.Exec(
                  absl::StrCat("SELECT pg_advisory_xact_lock(hashtextextended(",
                               "'eventstore schema ' || ", literal, ", 0))"))
              .status());
    }
    ES_ASSIGN_OR_RETURN(PgResult found, conn.Exec(absl::StrCat(
                                            "SELECT to_regclass(", "'", quoted,
                                            ".eventstore_schema') "
                                            "IS NOT NULL, to_regclass('",
                                            quoted, ".events') IS NOT NULL")));
    const bool has_version_table = found.Bytes(0, 0) == "t";
    const bool has_events = found.Bytes(0, 1) == "t";
    int64_t version = 0;
    if (has_version_table) {
      ES_ASSIGN_OR_RETURN(
          PgResult v, conn.Exec(absl::StrCat("SELECT max(version) FROM ",
                                             quoted, ".eventstore_schema")));
      if (v.rows() != 1 || v.IsNull(0, 0)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "postgres: schema ", quoted,
            " has an empty eventstore_schema table; it was left untouched"));
      }
      if (!absl::SimpleAtoi(std::string(v.Bytes(0, 0)), &version) ||
          version < 1) {
        return absl::FailedPreconditionError(absl::StrCat(
            "postgres: schema ", quoted, " has version ",
            std::string(v.Bytes(0, 0)).substr(0, 40),
            " in its eventstore_schema table; it was left untouched"));
      }
    } else if (has_events) {
      return absl::FailedPreconditionError(absl::StrCat(
          "postgres: schema ", quoted,
          " has an events table that is not eventstore's; it was left "
          "untouched (choose another schema)"));
    }
    if (version > PostgresEventStore::kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "postgres: schema ", quoted, " has version ", version,
          ", newer than this code's ", PostgresEventStore::kSchemaVersion,
          "; upgrade eventstore to open it (it was left untouched)"));
    }
    found_version = version;
    if (version == PostgresEventStore::kSchemaVersion) return absl::OkStatus();
    if (has_version_table && !policy.upgrade) {
      return absl::FailedPreconditionError(absl::StrCat(
          "postgres: schema ", quoted, " has version ", version,
          ", older than this code's ", PostgresEventStore::kSchemaVersion,
          ", and this open may not upgrade it (read-only, or upgrade_schema "
          "off): run `eventstore upgrade URL` first; it was left untouched"));
    }
    if (!has_version_table) {
      if (!policy.create) {
        return absl::NotFoundError(absl::StrCat(
            "postgres: schema ", quoted,
            " holds no eventstore, and creating one was not asked for "
            "(`eventstore init URL` creates it)"));
      }
      ES_RETURN_IF_ERROR(
          conn.Exec(absl::StrCat("CREATE SCHEMA IF NOT EXISTS ", quoted))
              .status());
      ES_RETURN_IF_ERROR(
          conn.Exec(absl::StrCat("CREATE TABLE ", quoted,
                                 ".eventstore_schema (version integer NOT "
                                 "NULL); INSERT INTO ",
                                 quoted, ".eventstore_schema VALUES (0)"))
              .status());
    }
    for (int64_t v = version; v < PostgresEventStore::kSchemaVersion; ++v) {
      ES_RETURN_IF_ERROR(
          conn.Exec(absl::StrReplaceAll(kMigrations[v], {{"$S", quoted}}))
              .status());
      ES_RETURN_IF_ERROR(conn.Exec(absl::StrCat("UPDATE ", quoted,
                                                ".eventstore_schema SET "
                                                "version = ",
                                                v + 1))
                             .status());
    }
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    if (!conn.broken()) conn.Exec("ROLLBACK").status().IgnoreError();
    return status;
  }
  ES_RETURN_IF_ERROR(conn.Exec("COMMIT").status());
  return found_version;
}

}  // namespace eventstore::postgres
