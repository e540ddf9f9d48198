#include "backends/postgres/pg_checkpoint_store.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/postgres/pg_sql_transaction.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {
namespace {

// Every checkpoint read has these columns, in this order (see
// DecodeCheckpoint).
#define ES_CHECKPOINT_COLUMNS                                        \
  "projection, position_commit, position_prepare, events_processed," \
  " updated_at, rebuild_requested_at, rebuild_requested_by"
constexpr char kGetSql[] = "SELECT " ES_CHECKPOINT_COLUMNS
                           " FROM $S.checkpoints WHERE projection = $1::text";
// Last write wins for the position; the count adds up. kSaveSql or
// kSaveNonDurableSql, then kUpsertSql.
constexpr char kSaveSql[] =
    "INSERT INTO $S.checkpoints AS c (projection, position_commit,"
    " position_prepare, events_processed, updated_at)"
    " VALUES ($1::text, $2::bigint, $3::bigint, $4::bigint, now())";
// The same row, its commit not waiting for the WAL flush:
// set_config(..., true) is SET LOCAL, for this statement's own transaction
// only, and the commit reads the setting before the transaction's settings
// are undone. The WHERE uses its result, so that the planner cannot drop
// the call.
constexpr char kSaveNonDurableSql[] =
    "INSERT INTO $S.checkpoints AS c (projection, position_commit,"
    " position_prepare, events_processed, updated_at)"
    " SELECT $1::text, $2::bigint, $3::bigint, $4::bigint, now()"
    " FROM (SELECT set_config('synchronous_commit', 'off', true) AS sc) s"
    " WHERE s.sc = 'off'";
constexpr char kUpsertSql[] =
    " ON CONFLICT (projection) DO UPDATE SET"
    "   position_commit = EXCLUDED.position_commit,"
    "   position_prepare = EXCLUDED.position_prepare,"
    "   events_processed = c.events_processed + EXCLUDED.events_processed,"
    "   updated_at = EXCLUDED.updated_at";
constexpr char kResetSql[] =
    "DELETE FROM $S.checkpoints WHERE projection = $1::text";
// Byte order, as on SQLite, whatever the database's collation.
constexpr char kListSql[] = "SELECT " ES_CHECKPOINT_COLUMNS
                            " FROM $S.checkpoints"
                            " ORDER BY projection COLLATE \"C\"";
#undef ES_CHECKPOINT_COLUMNS
// A row at the start when there is none; the first request is kept (both
// CASEs read the row as it was before the update).
constexpr char kRequestRebuildSql[] =
    "INSERT INTO $S.checkpoints AS c (projection, position_commit,"
    " position_prepare, events_processed, updated_at, rebuild_requested_at,"
    " rebuild_requested_by) VALUES ($1::text, 0, 0, 0, now(), now(), $2::text)"
    " ON CONFLICT (projection) DO UPDATE SET"
    "   rebuild_requested_at = CASE WHEN c.rebuild_requested_at IS NULL"
    "     THEN EXCLUDED.rebuild_requested_at ELSE c.rebuild_requested_at END,"
    "   rebuild_requested_by = CASE WHEN c.rebuild_requested_at IS NULL"
    "     THEN EXCLUDED.rebuild_requested_by ELSE c.rebuild_requested_by END";
// The events after ($1, $2) that ReadAll would return with the filter
// ($3..$5): their count and the range of their recorded_at, and the
// recorded_at of the event at ($1, $2) itself.
constexpr char kLagSql[] = R"sql(
WITH behind AS (
  SELECT count(*) AS n, min(recorded_at) AS oldest, max(recorded_at) AS newest
  FROM $S.events
  WHERE (transaction_id, position) > ($1::xid8, $2::bigint)
    AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    AND ($3::text IS NULL OR starts_with(stream, $3::text))
    AND ($4::text[] IS NULL OR type = ANY($4::text[]))
    AND ($5::text IS NULL OR tenant_id = $5::text)
)
SELECT n, oldest, newest,
       (SELECT recorded_at FROM $S.events
        WHERE transaction_id = $1::xid8 AND position = $2::bigint)
FROM behind)sql";

Checkpoint DecodeCheckpoint(const PgResult& r, int row) {
  Checkpoint cp;
  cp.projection = std::string(r.Bytes(row, 0));
  cp.position = Position::FromParts(r.Uint64(row, 1), r.Uint64(row, 2));
  cp.events_processed = r.Int64(row, 3);
  cp.updated_at = r.Timestamp(row, 4);
  if (!r.IsNull(row, 5)) {
    cp.rebuild_requested_at = r.Timestamp(row, 5);
    cp.rebuild_requested_by = std::string(r.Bytes(row, 6));
  }
  return cp;
}

absl::Status ValidateProjection(std::string_view projection) {
  if (projection.empty()) {
    return absl::InvalidArgumentError("projection: empty");
  }
  return absl::OkStatus();
}

absl::StatusOr<PgParams> SaveParams(std::string_view projection,
                                    Position position, int64_t processed) {
  ES_RETURN_IF_ERROR(ValidateProjection(projection));
  if (processed < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("processed: ", processed, " is negative"));
  }
  PgParams params;
  params.Bytes(projection)
      .Int64(static_cast<int64_t>(position.commit()))
      .Int64(static_cast<int64_t>(position.prepare()))
      .Int64(processed);
  return params;
}

}  // namespace

PgCheckpointStore::PgCheckpointStore(PgDatabase* db)
    : db_(db),
      get_(db->Statement("es_cp_get", kGetSql)),
      save_(db->Statement("es_cp_save", absl::StrCat(kSaveSql, kUpsertSql))),
      save_non_durable_(
          db->Statement("es_cp_save_non_durable",
                        absl::StrCat(kSaveNonDurableSql, kUpsertSql))),
      reset_(db->Statement("es_cp_reset", kResetSql)),
      request_rebuild_(
          db->Statement("es_cp_request_rebuild", kRequestRebuildSql)),
      list_(db->Statement("es_cp_list", kListSql)),
      lag_(db->Statement("es_cp_lag", kLagSql)) {}

absl::StatusOr<std::optional<Checkpoint>> PgCheckpointStore::Get(
    std::string_view projection) {
  ES_RETURN_IF_ERROR(ValidateProjection(projection));
  PgParams params;
  params.Bytes(projection);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(get_, params);
  }));
  if (r.rows() == 0) return std::nullopt;
  return DecodeCheckpoint(r, 0);
}

absl::Status PgCheckpointStore::Save(std::string_view projection,
                                     Position position, int64_t processed) {
  ES_ASSIGN_OR_RETURN(PgParams params,
                      SaveParams(projection, position, processed));
  return db_
      ->WithConnection(
          [&](PgConnection& conn) { return conn.Execute(save_, params); },
          PgDatabase::Retry::kNever)
      .status();
}

absl::Status PgCheckpointStore::SaveNonDurable(std::string_view projection,
                                               Position position,
                                               int64_t processed) {
  ES_ASSIGN_OR_RETURN(PgParams params,
                      SaveParams(projection, position, processed));
  return db_
      ->WithConnection(
          [&](PgConnection& conn) {
            return conn.Execute(save_non_durable_, params);
          },
          PgDatabase::Retry::kNever)
      .status();
}

absl::Status PgCheckpointStore::SaveIn(SqlTransaction& tx,
                                       std::string_view projection,
                                       Position position, int64_t processed) {
  auto* pg_tx = dynamic_cast<PgSqlTransaction*>(&tx);
  if (pg_tx == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SaveIn: the transaction is not a PostgreSQL one (dialect ",
        std::string(tx.dialect()), "); use the store's BeginTransaction()"));
  }
  ES_ASSIGN_OR_RETURN(PgParams params,
                      SaveParams(projection, position, processed));
  return pg_tx->ExecutePrepared(db_, save_, params).status();
}

absl::Status PgCheckpointStore::Reset(std::string_view projection) {
  ES_RETURN_IF_ERROR(ValidateProjection(projection));
  PgParams params;
  params.Bytes(projection);
  return db_
      ->WithConnection(
          [&](PgConnection& conn) { return conn.Execute(reset_, params); })
      .status();
}

absl::Status PgCheckpointStore::RequestRebuild(std::string_view projection,
                                               std::string_view requested_by) {
  ES_RETURN_IF_ERROR(ValidateProjection(projection));
  if (requested_by.empty()) {
    return absl::InvalidArgumentError(
        "requested_by: empty; name who asks for the rebuild");
  }
  PgParams params;
  params.Bytes(projection).Bytes(requested_by);
  // Repeating it after a lost connection is harmless: the first request is
  // kept.
  return db_
      ->WithConnection([&](PgConnection& conn) {
        return conn.Execute(request_rebuild_, params);
      })
      .status();
}

absl::StatusOr<std::vector<Checkpoint>> PgCheckpointStore::List() {
  PgParams params;
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_, params);
  }));
  std::vector<Checkpoint> out;
  out.reserve(r.rows());
  for (int row = 0; row < r.rows(); ++row) {
    out.push_back(DecodeCheckpoint(r, row));
  }
  return out;
}

absl::StatusOr<ProjectionLag> PgCheckpointStore::Lag(
    std::string_view projection, const ReadAllFilter& filter) {
  ES_ASSIGN_OR_RETURN(std::optional<Checkpoint> cp, Get(projection));
  ProjectionLag lag;
  lag.projection = std::string(projection);
  lag.checkpoint = cp.has_value() ? cp->position : Position::Start();
  PgParams params;
  params.Int64(static_cast<int64_t>(lag.checkpoint.commit()))
      .Int64(static_cast<int64_t>(lag.checkpoint.prepare()));
  AddFilterParams(filter, params);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(lag_, params);
  }));
  lag.events_behind = r.Int64(0, 0);
  lag.time_behind = absl::ZeroDuration();
  if (lag.events_behind > 0) {
    // From the event at the checkpoint; without one (no checkpoint, or a
    // position that is no event's), from the oldest event behind.
    const absl::Time from =
        r.IsNull(0, 3) ? r.Timestamp(0, 1) : r.Timestamp(0, 3);
    lag.time_behind = std::max(absl::ZeroDuration(), r.Timestamp(0, 2) - from);
  }
  return lag;
}

}  // namespace eventstore::postgres
