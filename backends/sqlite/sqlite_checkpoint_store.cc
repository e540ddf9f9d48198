#include "backends/sqlite/sqlite_checkpoint_store.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_event_filter.h"
#include "backends/sqlite/sqlite_sql_transaction.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {
namespace {

// Every checkpoint read has these columns, in this order (see Decode).
#define ES_CHECKPOINT_COLUMNS                                         \
  "projection, position_commit, position_prepare, events_processed, " \
  "updated_at, rebuild_requested_at, rebuild_requested_by"
constexpr char kSelect[] =
    "SELECT " ES_CHECKPOINT_COLUMNS " FROM checkpoints WHERE projection = ?1";
constexpr char kSelectAll[] =
    "SELECT " ES_CHECKPOINT_COLUMNS " FROM checkpoints ORDER BY projection";
#undef ES_CHECKPOINT_COLUMNS
constexpr char kUpsert[] =
    "INSERT INTO checkpoints (projection, position_commit, position_prepare, "
    "events_processed, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (projection) DO UPDATE SET "
    "position_commit = excluded.position_commit, "
    "position_prepare = excluded.position_prepare, "
    "events_processed = events_processed + excluded.events_processed, "
    "updated_at = excluded.updated_at";
constexpr char kDelete[] = "DELETE FROM checkpoints WHERE projection = ?1";
// A row at the start when there is none; the first request is kept (both
// CASEs read the row as it was before the update).
constexpr char kRequestRebuild[] =
    "INSERT INTO checkpoints (projection, position_commit, position_prepare, "
    "events_processed, updated_at, rebuild_requested_at, "
    "rebuild_requested_by) VALUES (?1, 0, 0, 0, ?2, ?2, ?3) "
    "ON CONFLICT (projection) DO UPDATE SET "
    "rebuild_requested_at = CASE WHEN rebuild_requested_at IS NULL "
    "THEN excluded.rebuild_requested_at ELSE rebuild_requested_at END, "
    "rebuild_requested_by = CASE WHEN rebuild_requested_at IS NULL "
    "THEN excluded.rebuild_requested_by ELSE rebuild_requested_by END";
// Lag: the events after a position that pass a filter (SqliteEventFilter
// appends its conditions), and the time of the event at (or before) a
// position.
constexpr char kCountAfterBase[] =
    "SELECT count(*), min(recorded_at), max(recorded_at) FROM events "
    "WHERE position > ?";
constexpr char kRecordedAtOrBefore[] =
    "SELECT recorded_at FROM events WHERE position <= ?1 "
    "ORDER BY position DESC LIMIT 1";

absl::Status CheckProjection(std::string_view projection) {
  if (projection.empty()) {
    return absl::InvalidArgumentError("projection: empty; name the projection");
  }
  return absl::OkStatus();
}

Checkpoint Decode(const SqliteStatement& row) {
  Checkpoint checkpoint;
  checkpoint.projection = std::string(row.ColumnText(0));
  // Positions are unsigned; SQLite stores their bits as signed integers.
  checkpoint.position =
      Position::FromParts(static_cast<uint64_t>(row.ColumnInt64(1)),
                          static_cast<uint64_t>(row.ColumnInt64(2)));
  checkpoint.events_processed = row.ColumnInt64(3);
  checkpoint.updated_at = absl::FromUnixMicros(row.ColumnInt64(4));
  if (!row.ColumnIsNull(5)) {
    checkpoint.rebuild_requested_at = absl::FromUnixMicros(row.ColumnInt64(5));
    checkpoint.rebuild_requested_by = std::string(row.ColumnText(6));
  }
  return checkpoint;
}

absl::StatusOr<std::optional<Checkpoint>> Read(SqliteConnection& conn,
                                               std::string_view projection) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelect));
  stmt->BindText(1, projection);
  ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::nullopt;
  return Decode(*stmt);
}

absl::Status Upsert(SqliteConnection& conn, std::string_view projection,
                    Position position, int64_t processed, int64_t now_micros) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kUpsert));
  stmt->BindText(1, projection);
  stmt->BindInt64(2, static_cast<int64_t>(position.commit()));
  stmt->BindInt64(3, static_cast<int64_t>(position.prepare()));
  stmt->BindInt64(4, processed);
  stmt->BindInt64(5, now_micros);
  absl::Status status = stmt->Run();
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("checkpoint '", std::string(projection),
                                     "': ", status.message()));
  }
  return absl::OkStatus();
}

absl::Status CheckSave(std::string_view projection, int64_t processed) {
  ES_RETURN_IF_ERROR(CheckProjection(projection));
  if (processed < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("processed: ", processed, " is negative"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<Checkpoint>> SqliteCheckpointStore::Get(
    std::string_view projection) {
  ES_RETURN_IF_ERROR(CheckProjection(projection));
  return db_->WithReader(
      [&](SqliteConnection& conn) { return Read(conn, projection); });
}

absl::Status SqliteCheckpointStore::Save(std::string_view projection,
                                         Position position, int64_t processed) {
  ES_RETURN_IF_ERROR(CheckSave(projection, processed));
  const int64_t now = absl::ToUnixMicros(absl::Now());
  return db_->WithWriter([&](SqliteConnection& conn) {
    return Upsert(conn, projection, position, processed, now);
  });
}

absl::Status SqliteCheckpointStore::SaveIn(SqlTransaction& tx,
                                           std::string_view projection,
                                           Position position,
                                           int64_t processed) {
  auto* sqlite_tx = dynamic_cast<SqliteSqlTransaction*>(&tx);
  if (sqlite_tx == nullptr || &sqlite_tx->database() != db_) {
    return absl::InvalidArgumentError(
        "tx: not a transaction of this store's database (begin it with "
        "BeginTransaction() on the same store)");
  }
  ES_RETURN_IF_ERROR(CheckSave(projection, processed));
  const int64_t now = absl::ToUnixMicros(absl::Now());
  return sqlite_tx->Run([&](SqliteConnection& conn) {
    return Upsert(conn, projection, position, processed, now);
  });
}

absl::Status SqliteCheckpointStore::Reset(std::string_view projection) {
  ES_RETURN_IF_ERROR(CheckProjection(projection));
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kDelete));
    stmt->BindText(1, projection);
    return stmt->Run();
  });
}

absl::Status SqliteCheckpointStore::RequestRebuild(
    std::string_view projection, std::string_view requested_by) {
  ES_RETURN_IF_ERROR(CheckProjection(projection));
  if (requested_by.empty()) {
    return absl::InvalidArgumentError(
        "requested_by: empty; name who asks for the rebuild");
  }
  const int64_t now = absl::ToUnixMicros(absl::Now());
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kRequestRebuild));
    stmt->BindText(1, projection);
    stmt->BindInt64(2, now);
    stmt->BindText(3, requested_by);
    return stmt->Run();
  });
}

absl::StatusOr<std::vector<Checkpoint>> SqliteCheckpointStore::List() {
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<Checkpoint>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectAll));
        std::vector<Checkpoint> checkpoints;
        while (true) {
          ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
          if (!row) return checkpoints;
          checkpoints.push_back(Decode(*stmt));
        }
      });
}

absl::StatusOr<ProjectionLag> SqliteCheckpointStore::Lag(
    std::string_view projection, const ReadAllFilter& filter) {
  ES_RETURN_IF_ERROR(CheckProjection(projection));
  const SqliteEventFilter where(filter);
  const std::string count_sql = absl::StrCat(kCountAfterBase, where.sql());
  ProjectionLag lag;
  lag.projection = std::string(projection);
  ES_RETURN_IF_ERROR(db_->WithReader([&](SqliteConnection& conn)
                                         -> absl::Status {
    // One read transaction: the checkpoint and the events as of one moment.
    // (The thread of an open SqlTransaction on an in-memory database reads
    // inside that transaction instead.)
    std::optional<SqliteTransaction> read;
    if (!conn.InTransaction()) {
      absl::StatusOr<SqliteTransaction> begun =
          SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kDeferred);
      if (!begun.ok()) return begun.status();
      read.emplace(*std::move(begun));
    }
    ES_ASSIGN_OR_RETURN(std::optional<Checkpoint> checkpoint,
                        Read(conn, projection));
    if (checkpoint.has_value()) lag.checkpoint = checkpoint->position;
    int64_t oldest = 0;
    int64_t newest = 0;
    {
      ES_ASSIGN_OR_RETURN(ScopedStatement count, conn.Cached(count_sql));
      count->BindInt64(1, static_cast<int64_t>(lag.checkpoint.commit()));
      where.Bind(*count, 2);
      ES_ASSIGN_OR_RETURN(bool row, count->Step());
      if (!row || count->ColumnInt64(0) == 0) return absl::OkStatus();
      lag.events_behind = count->ColumnInt64(0);
      oldest = count->ColumnInt64(1);
      newest = count->ColumnInt64(2);
    }
    int64_t base = oldest;
    if (checkpoint.has_value()) {
      ES_ASSIGN_OR_RETURN(ScopedStatement at, conn.Cached(kRecordedAtOrBefore));
      at->BindInt64(1, static_cast<int64_t>(lag.checkpoint.commit()));
      ES_ASSIGN_OR_RETURN(bool row, at->Step());
      if (row) base = at->ColumnInt64(0);
    }
    // Clocks can step back: never a negative lag.
    lag.time_behind = absl::Microseconds(std::max<int64_t>(0, newest - base));
    return absl::OkStatus();
  }));
  return lag;
}

}  // namespace eventstore::sqlite
