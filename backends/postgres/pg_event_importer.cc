#include "backends/postgres/pg_event_importer.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "backends/postgres/pg_binary.h"
#include "backends/postgres/pg_rows.h"
#include "eventstore/internal/event_checksum.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/internal/stream_row_copy.h"
#include "eventstore/internal/stream_rules.h"
#include "eventstore/status_macros.h"
#include "eventstore/v1/outbox.pb.h"

namespace eventstore::postgres {
namespace {

constexpr uint32_t kTimestamptzOid = 1184;

constexpr char kStoreIdSql[] =
    "SELECT value FROM $S.eventstore_meta WHERE key = 'store_id'";
// What ReadAll would return up to ($1, $2).
constexpr char kCountEventsSql[] =
    "SELECT count(*) FROM $S.events"
    " WHERE (transaction_id, position) <= ($1::xid8, $2::bigint)"
    "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())";
constexpr char kCountTablesSql[] =
    "SELECT (SELECT count(*) FROM $S.checkpoints),"
    " (SELECT count(*) FROM $S.dead_letters),"
    " (SELECT count(*) FROM $S.outbox), (SELECT count(*) FROM $S.snapshots),"
    " (SELECT count(*) FROM $S.streams),"
    " (SELECT count(*) FROM $S.subject_keys),"
    " (SELECT count(*) FROM $S.subject_keys WHERE forgotten_at IS NOT NULL)";
constexpr char kListStreamRowsSql[] =
    "SELECT stream, state::bigint, truncate_before, max_count, max_age_us,"
    " version_floor, deleted_at, updated_at FROM $S.streams"
    " WHERE stream COLLATE \"C\" > $1::text"
    " ORDER BY stream COLLATE \"C\" LIMIT $2::bigint";
// A held row moves on only to a later change, never out of a hard
// deletion, and its floor never goes down (EventImporter::PutStreamRows).
constexpr char kPutStreamRowSql[] =
    "INSERT INTO $S.streams AS s (stream, state, truncate_before, max_count,"
    " max_age_us, version_floor, deleted_at, updated_at)"
    " VALUES ($1::text, $2::bigint, $3::bigint, $4::bigint, $5::bigint,"
    " $6::bigint, $7::timestamptz, $8::timestamptz)"
    " ON CONFLICT (stream) DO UPDATE SET state = EXCLUDED.state,"
    "   truncate_before = EXCLUDED.truncate_before,"
    "   max_count = EXCLUDED.max_count, max_age_us = EXCLUDED.max_age_us,"
    "   version_floor = greatest(s.version_floor, EXCLUDED.version_floor),"
    "   deleted_at = EXCLUDED.deleted_at, updated_at = EXCLUDED.updated_at"
    " WHERE s.state <> 2 AND EXCLUDED.updated_at > s.updated_at"
    " RETURNING (s.xmax = 0) AS inserted";
constexpr char kListDeadLettersSql[] =
    "SELECT projection, event_id, stream, version, position_commit,"
    " position_prepare, event_type, status, error, failure_count::bigint,"
    " first_failed_at, last_failed_at, resolved_by, resolved_at"
    " FROM $S.dead_letters"
    " WHERE (projection COLLATE \"C\", event_id) > ($1::text, $2::uuid)"
    " ORDER BY projection COLLATE \"C\", event_id LIMIT $3::bigint";
constexpr char kListOutboxSql[] =
    "SELECT id, destination, message_key, payload, headers, status,"
    " created_at, attempts::bigint, last_error, published_at, claimed_by,"
    " lease_until FROM $S.outbox WHERE id > $1::bigint ORDER BY id"
    " LIMIT $2::bigint";
constexpr char kListSnapshotsSql[] =
    "SELECT stream, schema_version::bigint, version, type, state, taken_at"
    " FROM $S.snapshots"
    " WHERE (stream COLLATE \"C\", schema_version) > ($1::text, $2::bigint)"
    " ORDER BY stream COLLATE \"C\", schema_version LIMIT $3::bigint";

constexpr char kGetMigrationSql[] =
    "SELECT source, last_source_commit, last_source_prepare, events,"
    " started_at, updated_at FROM $S.migrations WHERE migration_id = $1::text";
constexpr char kListMigrationsSql[] =
    "SELECT migration_id, source, last_source_commit, last_source_prepare,"
    " events, started_at, updated_at FROM $S.migrations"
    " ORDER BY updated_at DESC, migration_id";
constexpr char kStreamVersionsSql[] =
    "SELECT s.stream, coalesce((SELECT version FROM $S.events"
    " WHERE stream = s.stream ORDER BY version DESC LIMIT 1), 0)"
    " FROM unnest($1::text[]) AS s(stream)";
// The events in the order given (they get increasing positions under the
// transaction's id), and each one's source position beside its new one.
constexpr char kImportEventsSql[] = R"sql(
WITH e AS MATERIALIZED (
  SELECT * FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::text[],
                       $6::bytea[], $7::bytea[], $8::text[],
                       $9::timestamptz[], $10::bigint[], $11::bigint[],
                       $12::bigint[])
       WITH ORDINALITY AS e(id, stream, version, type, payload, metadata,
                            tenant_id, recorded_at, sc, sp, checksum, n)
), ins AS (
  INSERT INTO $S.events (id, stream, version, type, payload, metadata,
                         tenant_id, recorded_at, checksum)
  SELECT id, stream, version, type, payload, metadata, tenant_id, recorded_at,
         checksum
  FROM e ORDER BY n
  RETURNING id, transaction_id, position
)
INSERT INTO $S.migration_positions (migration_id, source_commit,
                                    source_prepare, target_commit,
                                    target_prepare)
SELECT $1::text, e.sc, e.sp, ins.transaction_id::text::bigint, ins.position
FROM ins JOIN e USING (id))sql";
constexpr char kUpsertMigrationSql[] =
    "INSERT INTO $S.migrations AS m (migration_id, source, last_source_commit,"
    " last_source_prepare, events)"
    " VALUES ($1::text, $2::text, $3::bigint, $4::bigint, $5::bigint)"
    " ON CONFLICT (migration_id) DO UPDATE SET source = EXCLUDED.source,"
    "   last_source_commit = EXCLUDED.last_source_commit,"
    "   last_source_prepare = EXCLUDED.last_source_prepare,"
    "   events = m.events + EXCLUDED.events, updated_at = now()";
constexpr char kTranslateSql[] =
    "SELECT target_commit, target_prepare FROM $S.migration_positions"
    " WHERE migration_id = $1::text"
    "   AND (source_commit, source_prepare) <= ($2::bigint, $3::bigint)"
    " ORDER BY source_commit DESC, source_prepare DESC LIMIT 1";
// Each position given ($2, $3: its parts, in order) that holds an event of
// the migration, by its number in the arrays (1-based), with its source
// position: one lookup each in migration_positions_by_target (schema 5).
constexpr char kSourcePositionsSql[] =
    "SELECT p.n, m.source_commit, m.source_prepare"
    " FROM unnest($2::bigint[], $3::bigint[]) WITH ORDINALITY AS p(c, pr, n)"
    " JOIN $S.migration_positions m ON m.migration_id = $1::text"
    "   AND m.target_commit = p.c AND m.target_prepare = p.pr";
constexpr char kPutTypeSql[] =
    "INSERT INTO $S.event_types (type, descriptor, recorded_at)"
    " VALUES ($1::text, $2::bytea, $3::timestamptz)"
    " ON CONFLICT (type) DO NOTHING";
// The Put* statements never move a held row backwards (see
// EventImporter::PutCheckpoints): the conflict's update runs only when the
// given row is further along, on the row as it is now (PostgreSQL locks it).
// They return a row, `inserted`, when they wrote one; none when they kept
// the held row.
constexpr char kPutCheckpointSql[] =
    "INSERT INTO $S.checkpoints AS c (projection, position_commit,"
    " position_prepare, events_processed, updated_at)"
    " VALUES ($1::text, $2::bigint, $3::bigint, $4::bigint, $5::timestamptz)"
    " ON CONFLICT (projection) DO UPDATE SET"
    "   position_commit = EXCLUDED.position_commit,"
    "   position_prepare = EXCLUDED.position_prepare,"
    "   events_processed = EXCLUDED.events_processed,"
    "   updated_at = EXCLUDED.updated_at"
    " WHERE (EXCLUDED.position_commit, EXCLUDED.position_prepare)"
    "   > (c.position_commit, c.position_prepare)"
    " RETURNING (c.xmax = 0) AS inserted";
constexpr char kPutDeadLetterSql[] =
    "INSERT INTO $S.dead_letters AS d (projection, event_id, stream, version,"
    " position_commit, position_prepare, event_type, status, error,"
    " failure_count, first_failed_at, last_failed_at, resolved_by,"
    " resolved_at)"
    " VALUES ($1::text, $2::uuid, $3::text, $4::bigint, $5::bigint,"
    " $6::bigint, $7::text, $8::text, $9::text, $10::bigint::integer,"
    " $11::timestamptz, $12::timestamptz, $13::text, $14::timestamptz)"
    " ON CONFLICT (projection, event_id) DO UPDATE SET"
    "   stream = EXCLUDED.stream, version = EXCLUDED.version,"
    "   position_commit = EXCLUDED.position_commit,"
    "   position_prepare = EXCLUDED.position_prepare,"
    "   event_type = EXCLUDED.event_type, status = EXCLUDED.status,"
    "   error = EXCLUDED.error, failure_count = EXCLUDED.failure_count,"
    "   first_failed_at = EXCLUDED.first_failed_at,"
    "   last_failed_at = EXCLUDED.last_failed_at,"
    "   resolved_by = EXCLUDED.resolved_by,"
    "   resolved_at = EXCLUDED.resolved_at"
    " WHERE (d.status = 'parked' AND (EXCLUDED.status <> 'parked'"
    "        OR EXCLUDED.failure_count > d.failure_count))"
    "    OR (d.status = 'retrying' AND EXCLUDED.status = 'resolved')"
    " RETURNING (d.xmax = 0) AS inserted";
constexpr char kPutSnapshotSql[] =
    "INSERT INTO $S.snapshots (stream, schema_version, version, type, state,"
    " taken_at) VALUES ($1::text, $2::bigint::integer, $3::bigint, $4::text,"
    " $5::bytea, $6::timestamptz)"
    " ON CONFLICT (stream, schema_version) DO UPDATE SET"
    "   version = EXCLUDED.version, type = EXCLUDED.type,"
    "   state = EXCLUDED.state, taken_at = EXCLUDED.taken_at";
#define ES_PG_OUTBOX_VALUES                                              \
  "$2::text, $3::text, $4::bytea, $5::bytea, $6::text, $7::timestamptz," \
  " $8::bigint::integer, $9::text, $10::timestamptz, $11::text,"         \
  " $12::timestamptz"
#define ES_PG_OUTBOX_COLUMNS                                                  \
  "destination, message_key, payload, headers, status, created_at, attempts," \
  " last_error, published_at, claimed_by, lease_until"
// A held entry moves on only from pending to published or failed, and only
// when it holds the same message.
constexpr char kPutOutboxKeepIdSql[] =
    "INSERT INTO $S.outbox AS o (id, " ES_PG_OUTBOX_COLUMNS
    ") OVERRIDING SYSTEM VALUE VALUES ($1::bigint, " ES_PG_OUTBOX_VALUES
    ") ON CONFLICT (id) DO UPDATE SET"
    "   status = EXCLUDED.status, attempts = EXCLUDED.attempts,"
    "   last_error = EXCLUDED.last_error,"
    "   published_at = EXCLUDED.published_at,"
    "   claimed_by = EXCLUDED.claimed_by, lease_until = EXCLUDED.lease_until"
    " WHERE o.status = 'pending' AND EXCLUDED.status <> 'pending'"
    "   AND o.destination = EXCLUDED.destination"
    "   AND o.message_key = EXCLUDED.message_key"
    "   AND o.payload = EXCLUDED.payload"
    " RETURNING (o.xmax = 0) AS inserted";
// $1 is unused: both statements take the same parameters.
constexpr char kPutOutboxNewIdSql[] =
    "INSERT INTO $S.outbox (" ES_PG_OUTBOX_COLUMNS
    ") SELECT " ES_PG_OUTBOX_VALUES
    " WHERE $1::bigint IS NOT NULL OR true"
    " RETURNING true AS inserted";
#undef ES_PG_OUTBOX_COLUMNS
#undef ES_PG_OUTBOX_VALUES
// Later enqueues get ids above the copied ones.
constexpr char kBumpOutboxIdsSql[] =
    "SELECT setval(pg_get_serial_sequence('$S.outbox', 'id'),"
    " (SELECT max(id) FROM $S.outbox)) WHERE EXISTS (SELECT 1 FROM $S.outbox)";

int64_t Signed(uint64_t v) { return static_cast<int64_t>(v); }

Position PositionAt(const PgResult& r, int row, int column) {
  return Position::FromParts(static_cast<uint64_t>(r.Int64(row, column)),
                             static_cast<uint64_t>(r.Int64(row, column + 1)));
}

PgParams& TimeOrNull(PgParams& params, absl::Time t) {
  if (t == absl::InfinitePast()) return params.Null();
  return params.Bytes(EncodeTimestamp(t));
}

PgParams& TextOrNull(PgParams& params, const std::string& s) {
  if (s.empty()) return params.Null();
  return params.Bytes(s);
}

// Counts the outcome of one Put* statement (see kPutCheckpointSql).
void CountPut(const PgResult& r, PutCounts& counts) {
  if (r.rows() == 0) {
    ++counts.kept;
  } else if (r.Bool(0, 0)) {
    ++counts.added;
  } else {
    ++counts.updated;
  }
}

}  // namespace

PgEventImporter::PgEventImporter(PgDatabase* db)
    : db_(db),
      store_id_(db->Statement("es_imp_store_id", kStoreIdSql)),
      count_events_(db->Statement("es_imp_count_events", kCountEventsSql)),
      count_tables_(db->Statement("es_imp_count_tables", kCountTablesSql)),
      list_dead_letters_(
          db->Statement("es_imp_list_dead_letters", kListDeadLettersSql)),
      list_outbox_(db->Statement("es_imp_list_outbox", kListOutboxSql)),
      list_snapshots_(
          db->Statement("es_imp_list_snapshots", kListSnapshotsSql)),
      get_migration_(db->Statement("es_imp_get_migration", kGetMigrationSql)),
      list_migrations_(
          db->Statement("es_imp_list_migrations", kListMigrationsSql)),
      stream_versions_(
          db->Statement("es_imp_stream_versions", kStreamVersionsSql)),
      import_events_(db->Statement("es_imp_import_events", kImportEventsSql)),
      upsert_migration_(
          db->Statement("es_imp_upsert_migration", kUpsertMigrationSql)),
      translate_(db->Statement("es_imp_translate", kTranslateSql)),
      source_positions_(
          db->Statement("es_imp_source_positions", kSourcePositionsSql)),
      put_type_(db->Statement("es_imp_put_type", kPutTypeSql)),
      put_checkpoint_(
          db->Statement("es_imp_put_checkpoint", kPutCheckpointSql)),
      put_dead_letter_(
          db->Statement("es_imp_put_dead_letter", kPutDeadLetterSql)),
      put_snapshot_(db->Statement("es_imp_put_snapshot", kPutSnapshotSql)),
      put_outbox_keep_id_(
          db->Statement("es_imp_put_outbox_keep_id", kPutOutboxKeepIdSql)),
      put_outbox_new_id_(
          db->Statement("es_imp_put_outbox_new_id", kPutOutboxNewIdSql)),
      bump_outbox_ids_(
          db->Statement("es_imp_bump_outbox_ids", kBumpOutboxIdsSql)),
      list_stream_rows_(
          db->Statement("es_imp_list_stream_rows", kListStreamRowsSql)),
      put_stream_row_(
          db->Statement("es_imp_put_stream_row", kPutStreamRowSql)) {}

template <typename F>
absl::Status PgEventImporter::InTransaction(F&& f) {
  ES_ASSIGN_OR_RETURN(PgPool::Lease conn, db_->Acquire());
  ES_RETURN_IF_ERROR(conn->Exec("BEGIN").status());
  absl::Status status = f(*conn);
  if (!status.ok()) {
    if (!conn->broken()) conn->Exec("ROLLBACK").status().IgnoreError();
    return status;
  }
  return conn->Exec("COMMIT").status();
}

absl::StatusOr<std::string> PgEventImporter::StoreId() {
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(store_id_, PgParams());
  }));
  if (r.rows() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "postgres: schema ", db_->quoted_schema(), " has no store id"));
  }
  return std::string(r.Bytes(0, 0));
}

absl::StatusOr<int64_t> PgEventImporter::CountEvents(Position up_to) {
  PgParams params;
  params.Int64(Signed(up_to.commit())).Int64(Signed(up_to.prepare()));
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(count_events_, params);
  }));
  return r.Int64(0, 0);
}

absl::StatusOr<EventImporter::TableCounts> PgEventImporter::CountTables() {
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(count_tables_, PgParams());
  }));
  TableCounts counts;
  counts.checkpoints = r.Int64(0, 0);
  counts.dead_letters = r.Int64(0, 1);
  counts.outbox = r.Int64(0, 2);
  counts.snapshots = r.Int64(0, 3);
  counts.stream_rows = r.Int64(0, 4);
  counts.subject_keys = r.Int64(0, 5);
  counts.forgotten_subjects = r.Int64(0, 6);
  return counts;
}

absl::StatusOr<std::vector<DeadLetter>> PgEventImporter::ListDeadLetters(
    const DeadLetterCursor& after, int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  PgParams params;
  params.Bytes(after.projection).Bytes(after.event_id.bytes()).Int64(limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_dead_letters_, params);
  }));
  return DecodeDeadLetters(r);
}

absl::StatusOr<std::vector<OutboxEntry>> PgEventImporter::ListOutbox(
    int64_t after_id, int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  PgParams params;
  params.Int64(after_id).Int64(limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_outbox_, params);
  }));
  return DecodeOutboxEntries(r);
}

absl::StatusOr<std::vector<Snapshot>> PgEventImporter::ListSnapshots(
    const SnapshotCursor& after, int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  PgParams params;
  params.Bytes(after.stream).Int64(after.schema_version).Int64(limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_snapshots_, params);
  }));
  std::vector<Snapshot> out;
  for (int row = 0; row < r.rows(); ++row) {
    Snapshot& s = out.emplace_back();
    s.stream = std::string(r.Bytes(row, 0));
    s.schema_version = static_cast<int32_t>(r.Int64(row, 1));
    s.version = r.Int64(row, 2);
    s.type = std::string(r.Bytes(row, 3));
    s.state = std::string(r.Bytes(row, 4));
    s.taken_at = r.Timestamp(row, 5);
  }
  return out;
}

absl::StatusOr<std::optional<MigrationState>> PgEventImporter::GetMigration(
    std::string_view migration_id) {
  PgParams params;
  params.Bytes(migration_id);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(get_migration_, params);
  }));
  if (r.rows() == 0) return std::nullopt;
  MigrationState state;
  state.migration_id = std::string(migration_id);
  state.source = std::string(r.Bytes(0, 0));
  state.last_source_position = PositionAt(r, 0, 1);
  state.events = r.Int64(0, 3);
  state.started_at = r.Timestamp(0, 4);
  state.updated_at = r.Timestamp(0, 5);
  return state;
}

absl::StatusOr<std::vector<MigrationState>> PgEventImporter::ListMigrations() {
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_migrations_, PgParams());
  }));
  std::vector<MigrationState> states;
  for (int row = 0; row < r.rows(); ++row) {
    MigrationState state;
    state.migration_id = std::string(r.Bytes(row, 0));
    state.source = std::string(r.Bytes(row, 1));
    state.last_source_position = PositionAt(r, row, 2);
    state.events = r.Int64(row, 4);
    state.started_at = r.Timestamp(row, 5);
    state.updated_at = r.Timestamp(row, 6);
    states.push_back(std::move(state));
  }
  return states;
}

absl::Status PgEventImporter::ImportEvents(
    std::string_view migration_id, std::string_view source,
    absl::Span<const RecordedEvent> events) {
  if (events.empty()) return absl::OkStatus();
  // Each stream's first and last version in the batch; versions increase,
  // with gaps where the source hides or removed events.
  absl::flat_hash_map<std::string, std::pair<int64_t, int64_t>> streams;
  std::vector<std::string> order;
  for (const RecordedEvent& e : events) {
    auto [it, inserted] = streams.try_emplace(e.stream, e.version, e.version);
    if (inserted) {
      order.push_back(e.stream);
      continue;
    }
    if (e.version <= it->second.second) {
      return absl::FailedPreconditionError(
          absl::StrCat("import: event ", e.id.ToString(), " of stream '",
                       e.stream, "' has version ", e.version,
                       " but follows version ", it->second.second,
                       " in the batch; nothing of this batch was "
                       "written"));
    }
    it->second.second = e.version;
  }
  ArrayBuilder stream_names(kTextOid, order.size());
  for (const std::string& s : order) stream_names.Add(s);
  PgParams check;
  check.Bytes(stream_names.Finish());

  ArrayBuilder ids(kUuidOid, events.size());
  ArrayBuilder names(kTextOid, events.size());
  ArrayBuilder versions(kInt8Oid, events.size());
  ArrayBuilder types(kTextOid, events.size());
  ArrayBuilder payloads(kByteaOid, events.size());
  ArrayBuilder metadata(kByteaOid, events.size());
  ArrayBuilder tenants(kTextOid, events.size());
  ArrayBuilder recorded(kTimestamptzOid, events.size());
  ArrayBuilder source_commits(kInt8Oid, events.size());
  ArrayBuilder source_prepares(kInt8Oid, events.size());
  ArrayBuilder checksums(kInt8Oid, events.size());
  size_t payload_bytes = 0;
  for (const RecordedEvent& e : events) payload_bytes += e.payload.size() + 4;
  payloads.Reserve(payload_bytes);
  std::string meta;
  for (const RecordedEvent& e : events) {
    ids.Add(e.id.bytes());
    names.Add(e.stream);
    versions.Add(EncodeInt64(e.version));
    types.Add(e.type);
    payloads.Add(e.payload);
    ES_ASSIGN_OR_RETURN(uint32_t checksum,
                        internal::CheckImportedEvent(e, meta));
    checksums.Add(EncodeInt64(static_cast<int64_t>(checksum)));
    if (meta.empty()) {
      metadata.AddNull();
    } else {
      metadata.Add(meta);
    }
    if (e.metadata.tenant_id().empty()) {
      tenants.AddNull();
    } else {
      tenants.Add(e.metadata.tenant_id());
    }
    recorded.Add(EncodeTimestamp(e.recorded_at));
    source_commits.Add(EncodeInt64(Signed(e.position.commit())));
    source_prepares.Add(EncodeInt64(Signed(e.position.prepare())));
  }
  PgParams insert;
  insert.Bytes(migration_id)
      .Bytes(ids.Finish())
      .Bytes(names.Finish())
      .Bytes(versions.Finish())
      .Bytes(types.Finish())
      .Bytes(payloads.Finish())
      .Bytes(metadata.Finish())
      .Bytes(tenants.Finish())
      .Bytes(recorded.Finish())
      .Bytes(source_commits.Finish())
      .Bytes(source_prepares.Finish())
      .Bytes(checksums.Finish());
  PgParams progress;
  progress.Bytes(migration_id)
      .Bytes(source)
      .Int64(Signed(events.back().position.commit()))
      .Int64(Signed(events.back().position.prepare()))
      .Int64(static_cast<int64_t>(events.size()));

  return InTransaction([&](PgConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(PgResult current,
                        conn.Execute(stream_versions_, check));
    for (int row = 0; row < current.rows(); ++row) {
      const std::string stream(current.Bytes(row, 0));
      const int64_t version = current.Int64(row, 1);
      const auto it = streams.find(stream);
      if (it == streams.end() || it->second.first > version) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          "import: stream '", stream, "' continues at version ",
          it->second.first,
          " in the batch but the stream already reaches version ", version,
          " in the target; nothing of this batch was "
          "written"));
    }
    absl::StatusOr<PgResult> inserted = conn.Execute(import_events_, insert);
    if (!inserted.ok()) {
      if (inserted.status().code() == absl::StatusCode::kAlreadyExists &&
          conn.last_constraint() == "events_id_key") {
        return absl::AlreadyExistsError(absl::StrCat(
            "import: an event of the batch is already stored in the target "
            "(same id): ",
            inserted.status().message()));
      }
      return absl::Status(
          inserted.status().code(),
          absl::StrCat("import: ", inserted.status().message()));
    }
    return conn.Execute(upsert_migration_, progress).status();
  });
}

absl::StatusOr<Position> PgEventImporter::TranslatePosition(
    std::string_view migration_id, Position source_position) {
  PgParams params;
  params.Bytes(migration_id)
      .Int64(Signed(source_position.commit()))
      .Int64(Signed(source_position.prepare()));
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(translate_, params);
  }));
  if (r.rows() == 0) return Position::Start();
  return PositionAt(r, 0, 0);
}

absl::StatusOr<std::vector<Position>> PgEventImporter::SourcePositions(
    std::string_view migration_id, absl::Span<const Position> positions) {
  std::vector<Position> out(positions.size(), Position::Start());
  // The positions this store can hold (both parts fit a bigint), each with
  // its index in `positions`.
  std::vector<size_t> asked;
  asked.reserve(positions.size());
  for (size_t i = 0; i < positions.size(); ++i) {
    const Position& p = positions[i];
    if (p.IsStart() || p.commit() > static_cast<uint64_t>(INT64_MAX) ||
        p.prepare() > static_cast<uint64_t>(INT64_MAX)) {
      continue;
    }
    asked.push_back(i);
  }
  if (asked.empty()) return out;
  ArrayBuilder commits(kInt8Oid, asked.size());
  ArrayBuilder prepares(kInt8Oid, asked.size());
  for (size_t i : asked) {
    commits.Add(EncodeInt64(Signed(positions[i].commit())));
    prepares.Add(EncodeInt64(Signed(positions[i].prepare())));
  }
  PgParams params;
  params.Bytes(migration_id).Bytes(commits.Finish()).Bytes(prepares.Finish());
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(source_positions_, params);
  }));
  for (int row = 0; row < r.rows(); ++row) {
    const int64_t n = r.Int64(row, 0);
    if (n < 1 || static_cast<size_t>(n) > asked.size()) {
      return absl::InternalError(
          absl::StrCat("SourcePositions: the database returned row number ", n,
                       " for ", asked.size(), " positions"));
    }
    out[asked[static_cast<size_t>(n - 1)]] = PositionAt(r, row, 1);
  }
  return out;
}

absl::Status PgEventImporter::PutRecordedTypes(
    absl::Span<const RecordedType> types) {
  if (types.empty()) return absl::OkStatus();
  return InTransaction([&](PgConnection& conn) -> absl::Status {
    for (const RecordedType& t : types) {
      PgParams params;
      params.Bytes(t.type).Bytes(t.descriptor_set);
      TimeOrNull(params, t.recorded_at);
      ES_RETURN_IF_ERROR(conn.Execute(put_type_, params).status());
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<PutCounts> PgEventImporter::PutCheckpoints(
    absl::Span<const Checkpoint> checkpoints) {
  PutCounts counts;
  if (checkpoints.empty()) return counts;
  ES_RETURN_IF_ERROR(InTransaction([&](PgConnection& conn) -> absl::Status {
    counts = PutCounts();
    for (const Checkpoint& c : checkpoints) {
      PgParams params;
      params.Bytes(c.projection)
          .Int64(Signed(c.position.commit()))
          .Int64(Signed(c.position.prepare()))
          .Int64(c.events_processed)
          .Bytes(EncodeTimestamp(c.updated_at));
      ES_ASSIGN_OR_RETURN(PgResult r, conn.Execute(put_checkpoint_, params));
      CountPut(r, counts);
    }
    return absl::OkStatus();
  }));
  return counts;
}

absl::StatusOr<PutCounts> PgEventImporter::PutDeadLetters(
    absl::Span<const DeadLetter> dead_letters) {
  PutCounts counts;
  if (dead_letters.empty()) return counts;
  ES_RETURN_IF_ERROR(InTransaction([&](PgConnection& conn) -> absl::Status {
    counts = PutCounts();
    for (const DeadLetter& d : dead_letters) {
      PgParams params;
      params.Bytes(d.projection)
          .Bytes(d.event_id.bytes())
          .Bytes(d.stream)
          .Int64(d.version)
          .Int64(Signed(d.position.commit()))
          .Int64(Signed(d.position.prepare()))
          .Bytes(d.event_type)
          .Bytes(internal::DeadLetterStatusName(d.status))
          .Bytes(d.error)
          .Int64(d.failure_count)
          .Bytes(EncodeTimestamp(d.first_failed_at))
          .Bytes(EncodeTimestamp(d.last_failed_at));
      TextOrNull(params, d.resolved_by);
      TimeOrNull(params, d.resolved_at);
      ES_ASSIGN_OR_RETURN(PgResult r, conn.Execute(put_dead_letter_, params));
      CountPut(r, counts);
    }
    return absl::OkStatus();
  }));
  return counts;
}

absl::Status PgEventImporter::PutSnapshots(
    absl::Span<const Snapshot> snapshots) {
  if (snapshots.empty()) return absl::OkStatus();
  return InTransaction([&](PgConnection& conn) -> absl::Status {
    for (const Snapshot& s : snapshots) {
      PgParams params;
      params.Bytes(s.stream)
          .Int64(s.schema_version)
          .Int64(s.version)
          .Bytes(s.type)
          .Bytes(s.state)
          .Bytes(EncodeTimestamp(s.taken_at));
      ES_RETURN_IF_ERROR(conn.Execute(put_snapshot_, params).status());
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<PutCounts> PgEventImporter::PutOutboxEntries(
    absl::Span<const OutboxEntry> entries, bool keep_ids) {
  PutCounts counts;
  if (entries.empty()) return counts;
  ES_RETURN_IF_ERROR(InTransaction([&](PgConnection& conn) -> absl::Status {
    counts = PutCounts();
    for (const OutboxEntry& e : entries) {
      PgParams params;
      params.Int64(e.id)
          .Bytes(e.message.destination)
          .Bytes(e.message.key)
          .Bytes(e.message.payload);
      if (e.message.headers.empty()) {
        params.Null();
      } else {
        v1::OutboxHeaders proto;
        proto.mutable_headers()->insert(e.message.headers.begin(),
                                        e.message.headers.end());
        params.Bytes(proto.SerializeAsString());
      }
      params.Bytes(internal::OutboxStatusName(e.status))
          .Bytes(EncodeTimestamp(e.created_at))
          .Int64(e.attempts);
      TextOrNull(params, e.last_error);
      TimeOrNull(params, e.published_at);
      TextOrNull(params, e.claimed_by);
      TimeOrNull(params, e.lease_until);
      ES_ASSIGN_OR_RETURN(
          PgResult r,
          conn.Execute(keep_ids ? put_outbox_keep_id_ : put_outbox_new_id_,
                       params));
      CountPut(r, counts);
    }
    if (!keep_ids) return absl::OkStatus();
    return conn.Execute(bump_outbox_ids_, PgParams()).status();
  }));
  return counts;
}

namespace {

PgParams& Int64OrNull(PgParams& params, const std::optional<int64_t>& v) {
  if (!v.has_value()) return params.Null();
  return params.Int64(*v);
}

}  // namespace

absl::StatusOr<std::vector<StreamRowRecord>> PgEventImporter::ListStreamRows(
    std::string_view after, int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  PgParams params;
  params.Bytes(after).Int64(limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_stream_rows_, params);
  }));
  std::vector<StreamRowRecord> out;
  for (int row = 0; row < r.rows(); ++row) {
    StreamRowRecord& s = out.emplace_back();
    s.stream = std::string(r.Bytes(row, 0));
    ES_ASSIGN_OR_RETURN(
        s.state, internal::StreamStatusFromCode(s.stream, r.Int64(row, 1)));
    if (!r.IsNull(row, 2)) s.metadata.truncate_before = r.Int64(row, 2);
    if (!r.IsNull(row, 3)) s.metadata.max_count = r.Int64(row, 3);
    if (!r.IsNull(row, 4)) {
      s.metadata.max_age = absl::Microseconds(r.Int64(row, 4));
    }
    s.version_floor = r.Int64(row, 5);
    if (!r.IsNull(row, 6)) s.deleted_at = r.Timestamp(row, 6);
    s.updated_at = r.Timestamp(row, 7);
  }
  return out;
}

absl::StatusOr<PutCounts> PgEventImporter::PutStreamRows(
    absl::Span<const StreamRowRecord> rows) {
  PutCounts counts;
  if (rows.empty()) return counts;
  ES_RETURN_IF_ERROR(internal::ValidateStreamRows(db_->options().limits, rows));
  ES_RETURN_IF_ERROR(InTransaction([&](PgConnection& conn) -> absl::Status {
    counts = PutCounts();
    for (const StreamRowRecord& s : rows) {
      PgParams params;
      params.Bytes(s.stream).Int64(internal::StreamStatusCode(s.state));
      Int64OrNull(params, s.metadata.truncate_before);
      Int64OrNull(params, s.metadata.max_count);
      if (s.metadata.max_age.has_value()) {
        params.Int64(absl::ToInt64Microseconds(*s.metadata.max_age));
      } else {
        params.Null();
      }
      params.Int64(s.version_floor);
      TimeOrNull(params, s.deleted_at.value_or(absl::InfinitePast()));
      params.Bytes(EncodeTimestamp(s.updated_at));
      ES_ASSIGN_OR_RETURN(PgResult r, conn.Execute(put_stream_row_, params));
      CountPut(r, counts);
    }
    return absl::OkStatus();
  }));
  return counts;
}

}  // namespace eventstore::postgres
