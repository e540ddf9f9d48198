#include "backends/sqlite/sqlite_stream_lifecycle.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {
namespace {

// The marker type as an SQL literal, for statements that keep or skip it.
#define ES_MARKER_TYPE_SQL "'eventstore.v1.StreamDeleted'"
static_assert(kStreamDeletedType ==
                  std::string_view("eventstore.v1.StreamDeleted"),
              "ES_MARKER_TYPE_SQL must spell kStreamDeletedType");

// One row always: the stream's highest stored version (NULL when none) and
// its streams row (NULL columns when none).
constexpr char kSelectState[] =
    "SELECT (SELECT version FROM events WHERE stream = ?1 "
    "ORDER BY version DESC LIMIT 1), s.state, s.truncate_before, "
    "s.max_count, s.max_age_us, s.version_floor, s.deleted_at "
    "FROM (SELECT 1) AS one LEFT JOIN streams AS s ON s.stream = ?1";
constexpr char kUpsertRow[] =
    "INSERT INTO streams (stream, state, truncate_before, max_count, "
    "max_age_us, version_floor, deleted_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
    "ON CONFLICT (stream) DO UPDATE SET state = excluded.state, "
    "truncate_before = excluded.truncate_before, "
    "max_count = excluded.max_count, max_age_us = excluded.max_age_us, "
    "version_floor = excluded.version_floor, "
    "deleted_at = excluded.deleted_at, updated_at = excluded.updated_at";
constexpr char kRevive[] =
    "UPDATE streams SET state = 0, updated_at = ?2 WHERE stream = ?1";
constexpr char kAnyHidingRow[] =
    "SELECT EXISTS (SELECT 1 FROM streams WHERE state <> 0 "
    "OR truncate_before IS NOT NULL OR max_count IS NOT NULL "
    "OR max_age_us IS NOT NULL)";
// An event is hidden when its stream's row says deleted, or its version is
// below truncate_before, or at most last - max_count (last: the stream's
// highest version, or its floor when higher), or it was recorded before
// now - max_age (internal::WindowOf, in SQL). NULL columns hide nothing.
constexpr char kReadAllHiding[] =
    " AND (type = " ES_MARKER_TYPE_SQL
    " OR NOT EXISTS (SELECT 1 FROM streams AS s "
    "WHERE s.stream = events.stream AND (s.state <> 0 "
    "OR events.version < s.truncate_before "
    "OR events.version <= max((SELECT max(e2.version) FROM events AS e2 "
    "WHERE e2.stream = s.stream), s.version_floor) - s.max_count "
    "OR events.recorded_at < ? - s.max_age_us)))";
constexpr char kLastTenant[] =
    "SELECT tenant_id FROM events WHERE stream = ?1 "
    "ORDER BY version DESC LIMIT 1";
constexpr char kDeleteSnapshots[] = "DELETE FROM snapshots WHERE stream = ?1";
constexpr char kCountStreams[] = "SELECT count(*) FROM streams";
constexpr char kListStreams[] =
    "SELECT stream FROM streams WHERE stream > ?1 ORDER BY stream LIMIT ?2";
// The hidden rows of a stream, oldest first, never a StreamDeleted event.
constexpr char kSelectHidden[] =
    "SELECT position, version FROM events WHERE stream = ?1 "
    "AND type <> " ES_MARKER_TYPE_SQL
    " AND (version < ?2 OR recorded_at < ?3) ORDER BY version LIMIT ?4";
// The same without max_age: a range of the (stream, version) index, so the
// last batch does not read the visible rows after it.
constexpr char kSelectHiddenBelow[] =
    "SELECT position, version FROM events WHERE stream = ?1 "
    "AND type <> " ES_MARKER_TYPE_SQL
    " AND version < ?2 ORDER BY version LIMIT ?4";
constexpr char kDeleteEvent[] = "DELETE FROM events WHERE position = ?1";
constexpr char kListMigrations[] = "SELECT migration_id FROM migrations";
constexpr char kDeleteMigrationPosition[] =
    "DELETE FROM migration_positions WHERE migration_id = ?1 "
    "AND position = ?2";
constexpr char kRaiseFloor[] =
    "UPDATE streams SET version_floor = max(version_floor, ?2), "
    "updated_at = ?3 WHERE stream = ?1";

// Streams listed per query while scavenging.
constexpr int64_t kStreamPage = 256;
constexpr int64_t kMaxBatchSize = 100000;

absl::Status WriteRow(SqliteConnection& conn, std::string_view stream,
                      const internal::StreamRow& row, int64_t now_micros) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kUpsertRow));
  stmt->BindText(1, stream);
  stmt->BindInt64(2, internal::StreamStatusCode(row.state));
  const StreamMetadata& m = row.metadata;
  if (m.truncate_before.has_value()) {
    stmt->BindInt64(3, *m.truncate_before);
  } else {
    stmt->BindNull(3);
  }
  if (m.max_count.has_value()) {
    stmt->BindInt64(4, *m.max_count);
  } else {
    stmt->BindNull(4);
  }
  if (m.max_age.has_value()) {
    stmt->BindInt64(5, absl::ToInt64Microseconds(*m.max_age));
  } else {
    stmt->BindNull(5);
  }
  stmt->BindInt64(6, row.version_floor);
  if (row.deleted_at.has_value()) {
    stmt->BindInt64(7, absl::ToUnixMicros(*row.deleted_at));
  } else {
    stmt->BindNull(7);
  }
  stmt->BindInt64(8, now_micros);
  return stmt->Run();
}

std::optional<int64_t> OptionalColumn(const SqliteStatement& stmt, int col) {
  if (stmt.ColumnIsNull(col)) return std::nullopt;
  return stmt.ColumnInt64(col);
}

absl::Status ValidateStream(const SqliteDatabase& db, std::string_view stream) {
  return internal::ValidateStreamName(db.options().limits, stream);
}

}  // namespace

int64_t SqliteStreamLifecycle::StreamState::last() const {
  return row.has_value() ? std::max(max_stored, row->version_floor)
                         : max_stored;
}

absl::StatusOr<SqliteStreamLifecycle::StreamState>
SqliteStreamLifecycle::ReadState(SqliteConnection& conn,
                                 std::string_view stream) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectState));
  stmt->BindText(1, stream);
  ES_ASSIGN_OR_RETURN(bool has_row, stmt->Step());
  StreamState state;
  if (!has_row) return state;
  state.max_stored = stmt->ColumnIsNull(0) ? 0 : stmt->ColumnInt64(0);
  if (stmt->ColumnIsNull(1)) return state;
  internal::StreamRow row;
  ES_ASSIGN_OR_RETURN(
      row.state, internal::StreamStatusFromCode(stream, stmt->ColumnInt64(1)));
  row.metadata.truncate_before = OptionalColumn(*stmt, 2);
  row.metadata.max_count = OptionalColumn(*stmt, 3);
  if (std::optional<int64_t> age = OptionalColumn(*stmt, 4)) {
    row.metadata.max_age = absl::Microseconds(*age);
  }
  row.version_floor = stmt->ColumnIsNull(5) ? 0 : stmt->ColumnInt64(5);
  if (std::optional<int64_t> at = OptionalColumn(*stmt, 6)) {
    row.deleted_at = absl::FromUnixMicros(*at);
  }
  state.row = std::move(row);
  return state;
}

absl::Status SqliteStreamLifecycle::Revive(SqliteConnection& conn,
                                           std::string_view stream,
                                           int64_t now_micros) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kRevive));
  stmt->BindText(1, stream);
  stmt->BindInt64(2, now_micros);
  return stmt->Run();
}

void SqliteStreamLifecycle::BindStreamRead(
    SqliteStatement& stmt, std::string_view stream, int64_t from,
    int64_t max_count, const internal::StreamWindow* window) {
  stmt.BindText(1, stream);
  stmt.BindInt64(2, from);
  stmt.BindInt64(3, max_count);
  if (window == nullptr) return;
  stmt.BindInt64(4, window->min_version);
  stmt.BindInt64(5, window->min_recorded_at.has_value()
                        ? absl::ToUnixMicros(*window->min_recorded_at)
                        : std::numeric_limits<int64_t>::min());
}

absl::StatusOr<bool> SqliteStreamLifecycle::AnyHidingRow(
    SqliteConnection& conn) {
  ES_ASSIGN_OR_RETURN(int64_t any, conn.QueryInt64(kAnyHidingRow, 0));
  return any != 0;
}

const char* SqliteStreamLifecycle::ReadAllHidingCondition() {
  return kReadAllHiding;
}

absl::StatusOr<DeleteResult> SqliteStreamLifecycle::DeleteLocked(
    SqliteConnection& conn, std::string_view stream, ExpectedVersion expected,
    DeleteMode mode, const InsertFn& insert) {
  ES_ASSIGN_OR_RETURN(
      SqliteTransaction txn,
      SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kImmediate));
  ES_ASSIGN_OR_RETURN(StreamState state, ReadState(conn, stream));
  ES_RETURN_IF_ERROR(internal::CheckDelete(stream, expected, mode,
                                           state.max_stored, state.row));
  const int64_t last = state.last();
  std::string tenant;
  {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kLastTenant));
    stmt->BindText(1, stream);
    ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (row && !stmt->ColumnIsNull(0))
      tenant = std::string(stmt->ColumnText(0));
  }
  const EventData marker = internal::StreamDeletedEvent(
      stream, mode == DeleteMode::kHard, last, tenant);
  AppendRequest request;
  request.stream = stream;
  request.expected = ExpectedVersion::Any();
  request.events = absl::MakeConstSpan(&marker, 1);
  ES_ASSIGN_OR_RETURN(
      std::vector<internal::PreparedEvent> prepared,
      internal::PrepareAppend(db_->options().limits, request, /*system=*/true));
  ES_ASSIGN_OR_RETURN(AppendResult appended,
                      insert(conn, request, prepared, last));
  const absl::Time now = absl::Now();
  const int64_t now_micros = absl::ToUnixMicros(now);
  ES_RETURN_IF_ERROR(WriteRow(
      conn, stream, internal::RowAfterDelete(state.row, mode, last + 1, now),
      now_micros));
  DeleteResult result;
  result.position = appended.first_position;
  result.marker_version = last + 1;
  {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kDeleteSnapshots));
    stmt->BindText(1, stream);
    ES_RETURN_IF_ERROR(stmt->Run());
    result.snapshots_removed = conn.Changes();
  }
  ES_RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::Status SqliteStreamLifecycle::SetStreamMetadata(
    std::string_view stream, const StreamMetadata& metadata) {
  ES_RETURN_IF_ERROR(ValidateStream(*db_, stream));
  ES_RETURN_IF_ERROR(ValidateStreamMetadata(metadata));
  return db_->WithWriteTransaction([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(StreamState state, ReadState(conn, stream));
    if (state.row.has_value() &&
        state.row->state == StreamStatus::kHardDeleted) {
      return HardDeletedStreamError(stream);
    }
    const internal::StreamRow row =
        internal::RowAfterSetMetadata(state.row, metadata);
    return WriteRow(conn, stream, row, absl::ToUnixMicros(absl::Now()));
  });
}

absl::StatusOr<StreamInfo> SqliteStreamLifecycle::GetStreamInfo(
    std::string_view stream) {
  ES_RETURN_IF_ERROR(ValidateStream(*db_, stream));
  ES_ASSIGN_OR_RETURN(StreamState state,
                      db_->WithReader([&](SqliteConnection& conn) {
                        return ReadState(conn, stream);
                      }));
  StreamInfo info;
  info.stream = std::string(stream);
  info.version = internal::VisibleVersionOf(state.max_stored, state.row);
  info.last_version = state.last();
  if (state.row.has_value()) {
    info.state = state.row->state;
    info.metadata = state.row->metadata;
    info.deleted_at = state.row->deleted_at;
  }
  return info;
}

absl::StatusOr<ScavengeResult> SqliteStreamLifecycle::Scavenge(
    const ScavengeOptions& options) {
  if (options.batch_size < 1 || options.batch_size > kMaxBatchSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size: ", options.batch_size,
                     " is out of range (1 to ", kMaxBatchSize, ")"));
  }
  if (options.max_events < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_events: ", options.max_events, " is out of range (1 or more)"));
  }
  if (db_->options().read_only) {
    // Every batch is a write; LockWriter names the reason.
    ES_RETURN_IF_ERROR(db_->LockWriter().status());
  }
  const absl::Time started = absl::Now();
  const absl::Time now = options.now.value_or(started);
  ScavengeResult result;
  ScavengeProgress progress;
  ES_ASSIGN_OR_RETURN(progress.streams_total,
                      db_->WithReader([](SqliteConnection& conn) {
                        return conn.QueryInt64(kCountStreams, 0);
                      }));
  std::string after;
  bool stopped = false;
  while (!stopped) {
    std::vector<std::string> page;
    ES_RETURN_IF_ERROR(
        db_->WithReader([&](SqliteConnection& conn) -> absl::Status {
          ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kListStreams));
          stmt->BindText(1, after);
          stmt->BindInt64(2, kStreamPage);
          while (true) {
            ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
            if (!row) break;
            page.emplace_back(stmt->ColumnText(0));
          }
          return absl::OkStatus();
        }));
    if (page.empty()) break;
    after = page.back();
    for (size_t i = 0; i < page.size(); ++i) {
      const std::string& stream = page[i];
      ++result.streams_examined;
      bool scavenged = false;
      while (true) {
        const int64_t limit = std::min(
            options.batch_size, options.max_events - result.events_removed);
        ES_ASSIGN_OR_RETURN(StreamScavenge batch,
                            ScavengeBatch(stream, limit, now));
        if (batch.removed > 0) {
          scavenged = true;
          result.events_removed += batch.removed;
          ++result.batches;
        }
        if (batch.done) {
          ++progress.streams_done;
          // Streams given a row since the count was taken.
          progress.streams_total =
              std::max(progress.streams_total, progress.streams_done);
        }
        if (batch.removed > 0 && options.progress) {
          progress.events_removed = result.events_removed;
          options.progress(progress);
        }
        if (result.events_removed >= options.max_events) {
          // Stopped by max_events: complete only when nothing is left.
          stopped = true;
          result.complete = batch.done && i + 1 == page.size() &&
                            static_cast<int64_t>(page.size()) < kStreamPage;
          break;
        }
        if (batch.done) break;
      }
      if (scavenged) ++result.streams_scavenged;
      if (stopped) break;
    }
    if (static_cast<int64_t>(page.size()) < kStreamPage) break;
  }
  if (result.complete && options.progress) {
    progress.events_removed = result.events_removed;
    progress.streams_total =
        std::max(progress.streams_total, progress.streams_done);
    progress.streams_done = progress.streams_total;
    options.progress(progress);
  }
  if (options.compact) {
    ES_RETURN_IF_ERROR(Compact());
    result.compacted = true;
  }
  result.elapsed = absl::Now() - started;
  return result;
}

absl::StatusOr<SqliteStreamLifecycle::StreamScavenge>
SqliteStreamLifecycle::ScavengeBatch(std::string_view stream, int64_t limit,
                                     absl::Time now) {
  return db_->WithWriteTransaction(
      [&](SqliteConnection& conn) -> absl::StatusOr<StreamScavenge> {
        StreamScavenge batch;
        ES_ASSIGN_OR_RETURN(StreamState state, ReadState(conn, stream));
        const internal::StreamWindow window =
            internal::WindowOf(state.row, state.last(), now);
        if (!window.empty && window.min_version <= 1 &&
            !window.min_recorded_at.has_value()) {
          batch.done = true;  // hides nothing
          return batch;
        }
        std::vector<int64_t> positions;
        int64_t newest = 0;
        {
          const bool by_age = window.min_recorded_at.has_value();
          ES_ASSIGN_OR_RETURN(
              ScopedStatement stmt,
              conn.Cached(by_age ? kSelectHidden : kSelectHiddenBelow));
          stmt->BindText(1, stream);
          stmt->BindInt64(2, window.min_version);
          if (by_age) {
            stmt->BindInt64(3, absl::ToUnixMicros(*window.min_recorded_at));
          }
          stmt->BindInt64(4, limit + 1);
          // One row more than the limit: the stream is done when it does
          // not come.
          batch.done = true;
          while (true) {
            ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
            if (!row) break;
            if (static_cast<int64_t>(positions.size()) == limit) {
              batch.done = false;
              break;
            }
            positions.push_back(stmt->ColumnInt64(0));
            newest = std::max(newest, stmt->ColumnInt64(1));
          }
        }
        batch.removed = static_cast<int64_t>(positions.size());
        if (positions.empty()) return batch;
        {
          ES_ASSIGN_OR_RETURN(ScopedStatement del, conn.Cached(kDeleteEvent));
          for (int64_t position : positions) {
            del->BindInt64(1, position);
            ES_RETURN_IF_ERROR(del->Run());
            del->Reset();
          }
        }
        // Migrations map source positions to positions here: a removed
        // event's mapping goes with it (a translation then falls back on the
        // nearest earlier event still held, as for any later position).
        std::vector<std::string> migrations;
        {
          ES_ASSIGN_OR_RETURN(ScopedStatement stmt,
                              conn.Cached(kListMigrations));
          while (true) {
            ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
            if (!row) break;
            migrations.emplace_back(stmt->ColumnText(0));
          }
        }
        if (!migrations.empty()) {
          ES_ASSIGN_OR_RETURN(ScopedStatement del,
                              conn.Cached(kDeleteMigrationPosition));
          for (const std::string& migration : migrations) {
            for (int64_t position : positions) {
              del->BindText(1, migration);
              del->BindInt64(2, position);
              ES_RETURN_IF_ERROR(del->Run());
              del->Reset();
            }
          }
        }
        if (newest >= state.max_stored) {
          // The stream's newest rows went: its version must not go back.
          ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kRaiseFloor));
          stmt->BindText(1, stream);
          stmt->BindInt64(2, newest);
          stmt->BindInt64(3, absl::ToUnixMicros(absl::Now()));
          ES_RETURN_IF_ERROR(stmt->Run());
        }
        return batch;
      });
}

absl::Status SqliteStreamLifecycle::Compact() {
  ES_ASSIGN_OR_RETURN(SqliteDatabase::WriterLock lock, db_->LockWriter());
  SqliteConnection& conn = lock.connection();
  ES_RETURN_IF_ERROR(conn.Exec("VACUUM"));
  if (db_->in_memory()) return absl::OkStatus();
  // Truncates the write-ahead log (whose frames held the removed rows'
  // pages) once every frame is back in the database file; the background
  // checkpointer waits meanwhile (SQLite refuses two checkpoints at once).
  std::optional<SqliteWalCheckpointer::Paused> paused;
  if (db_->checkpointer() != nullptr) {
    paused.emplace(db_->checkpointer()->Pause());
  }
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt,
                      conn.Cached("PRAGMA wal_checkpoint(TRUNCATE)"));
  ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (row && stmt->ColumnInt64(0) != 0) {
    return absl::UnavailableError(
        "sqlite: compact: the write-ahead log could not be truncated (a "
        "reader held it, or another process was checkpointing): run "
        "Scavenge with compact again");
  }
  return absl::OkStatus();
}

}  // namespace eventstore::sqlite
