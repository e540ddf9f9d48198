#include "backends/sqlite/sqlite_event_importer.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_event_rows.h"
#include "backends/sqlite/sqlite_rows.h"
#include "backends/sqlite/sqlite_stream_lifecycle.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/event_checksum.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/internal/stream_row_copy.h"
#include "eventstore/internal/stream_rules.h"
#include "eventstore/status_macros.h"
#include "eventstore/v1/outbox.pb.h"

namespace eventstore::sqlite {
namespace {

constexpr char kStoreId[] =
    "SELECT value FROM eventstore_meta WHERE key = 'store_id'";
constexpr char kCountEvents[] =
    "SELECT count(*) FROM events WHERE position <= ?1";
constexpr char kCountTables[] =
    "SELECT (SELECT count(*) FROM checkpoints), "
    "(SELECT count(*) FROM dead_letters), (SELECT count(*) FROM outbox), "
    "(SELECT count(*) FROM snapshots), (SELECT count(*) FROM streams), "
    "(SELECT count(*) FROM subject_keys), "
    "(SELECT count(*) FROM subject_keys WHERE forgotten_at IS NOT NULL)";
constexpr char kListStreamRows[] =
    "SELECT stream, state, truncate_before, max_count, max_age_us, "
    "version_floor, deleted_at, updated_at FROM streams WHERE stream > ?1 "
    "ORDER BY stream LIMIT ?2";
constexpr char kHasStreamRow[] = "SELECT 1 FROM streams WHERE stream = ?1";
// A held row moves on only to a later change, never out of a hard
// deletion, and its floor never goes down (EventImporter::PutStreamRows).
constexpr char kPutStreamRow[] =
    "INSERT INTO streams (stream, state, truncate_before, max_count, "
    "max_age_us, version_floor, deleted_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
    "ON CONFLICT (stream) DO UPDATE SET state = excluded.state, "
    "truncate_before = excluded.truncate_before, "
    "max_count = excluded.max_count, max_age_us = excluded.max_age_us, "
    "version_floor = max(streams.version_floor, excluded.version_floor), "
    "deleted_at = excluded.deleted_at, updated_at = excluded.updated_at "
    "WHERE streams.state <> 2 AND excluded.updated_at > streams.updated_at";
constexpr char kListDeadLetters[] =
    "SELECT projection, event_id, stream, version, position_commit, "
    "position_prepare, event_type, status, error, failure_count, "
    "first_failed_at, last_failed_at, resolved_by, resolved_at "
    "FROM dead_letters WHERE (projection, event_id) > (?1, ?2) "
    "ORDER BY projection, event_id LIMIT ?3";
constexpr char kListOutbox[] =
    "SELECT id, destination, message_key, payload, headers, status, "
    "created_at, attempts, last_error, published_at, claimed_by, lease_until "
    "FROM outbox WHERE id > ?1 ORDER BY id LIMIT ?2";
constexpr char kListSnapshots[] =
    "SELECT stream, schema_version, version, type, state, taken_at "
    "FROM snapshots WHERE (stream, schema_version) > (?1, ?2) "
    "ORDER BY stream, schema_version LIMIT ?3";

constexpr char kGetMigration[] =
    "SELECT source, last_source_commit, last_source_prepare, events, "
    "started_at, updated_at FROM migrations WHERE migration_id = ?1";
constexpr char kListMigrations[] =
    "SELECT migration_id, source, last_source_commit, last_source_prepare, "
    "events, started_at, updated_at FROM migrations "
    "ORDER BY updated_at DESC, migration_id";
constexpr char kStreamVersion[] =
    "SELECT version FROM events WHERE stream = ?1 "
    "ORDER BY version DESC LIMIT 1";
constexpr char kInsertEvent[] =
    "INSERT INTO events (id, stream, version, type, payload, metadata, "
    "tenant_id, recorded_at, checksum, source_commit, source_prepare) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr char kInsertPosition[] =
    "INSERT INTO migration_positions (migration_id, source_commit, "
    "source_prepare, position) VALUES (?1, ?2, ?3, ?4)";
constexpr char kUpsertMigration[] =
    "INSERT INTO migrations (migration_id, source, last_source_commit, "
    "last_source_prepare, events, started_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) "
    "ON CONFLICT (migration_id) DO UPDATE SET source = excluded.source, "
    "last_source_commit = excluded.last_source_commit, "
    "last_source_prepare = excluded.last_source_prepare, "
    "events = migrations.events + excluded.events, "
    "updated_at = excluded.updated_at";
constexpr char kTranslate[] =
    "SELECT position FROM migration_positions WHERE migration_id = ?1 "
    "AND (source_commit, source_prepare) <= (?2, ?3) "
    "ORDER BY source_commit DESC, source_prepare DESC LIMIT 1";
// SourcePositions: the rows of runs of positions, each run one range of the
// index of schema version 5 (migration_positions_by_position). ?2 is a JSON
// object {"first": last, ...}: json_each parses it once and gives each
// run's first position as its key (text) and its last as its value (an
// integer parsed per pair would cost as much as the lookup). CROSS JOIN
// keeps the runs the outer loop.
constexpr char kSourcePositions[] =
    "SELECT m.position, m.source_commit, m.source_prepare "
    "FROM json_each(?2) AS r CROSS JOIN migration_positions AS m "
    "WHERE m.migration_id = ?1 "
    "AND m.position BETWEEN CAST(r.key AS INTEGER) AND r.value";
// Positions at most this far apart share a run: reading the few rows
// between costs less than a seek of their own.
constexpr uint64_t kMaxGap = 4;
// ReadStreamAtSourcePositions: the store's events with their source
// positions (schema version 5), and whether the store holds copies of one
// migration only.
constexpr char kReadSourceForward[] =
    "SELECT " ES_EVENT_COLUMNS
    ", source_commit, source_prepare FROM events "
    "WHERE stream = ?1 AND version >= ?2 ORDER BY version LIMIT ?3";
constexpr char kReadSourceBackward[] =
    "SELECT " ES_EVENT_COLUMNS
    ", source_commit, source_prepare FROM events "
    "WHERE stream = ?1 AND version <= ?2 ORDER BY version DESC LIMIT ?3";
// The same within the stream's window (internal::WindowOf), as the store's
// ReadStream reads a stream with a streams-table row: ?4 the lowest
// version, ?5 the earliest recorded_at; never a StreamDeleted event.
constexpr char kReadSourceForwardWindow[] =
    "SELECT " ES_EVENT_COLUMNS
    ", source_commit, source_prepare FROM events "
    "WHERE stream = ?1 AND version >= ?2 AND version >= ?4 "
    "AND recorded_at >= ?5 AND type <> 'eventstore.v1.StreamDeleted' "
    "ORDER BY version LIMIT ?3";
constexpr char kReadSourceBackwardWindow[] =
    "SELECT " ES_EVENT_COLUMNS
    ", source_commit, source_prepare FROM events "
    "WHERE stream = ?1 AND version <= ?2 AND version >= ?4 "
    "AND recorded_at >= ?5 AND type <> 'eventstore.v1.StreamDeleted' "
    "ORDER BY version DESC LIMIT ?3";
constexpr char kOnlyMigration[] =
    "SELECT count(*), max(migration_id = ?1) FROM migrations";
constexpr char kInsertType[] =
    "INSERT OR IGNORE INTO event_types (type, descriptor, recorded_at) "
    "VALUES (?1, ?2, ?3)";
// The Put* statements never move a held row backwards (see
// EventImporter::PutCheckpoints); the kHas* queries tell an added row from
// an updated one.
constexpr char kHasCheckpoint[] =
    "SELECT 1 FROM checkpoints WHERE projection = ?1";
constexpr char kPutCheckpoint[] =
    "INSERT INTO checkpoints (projection, position_commit, "
    "position_prepare, events_processed, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5) "
    "ON CONFLICT (projection) DO UPDATE SET "
    "position_commit = excluded.position_commit, "
    "position_prepare = excluded.position_prepare, "
    "events_processed = excluded.events_processed, "
    "updated_at = excluded.updated_at "
    "WHERE (excluded.position_commit, excluded.position_prepare) > "
    "(checkpoints.position_commit, checkpoints.position_prepare)";
constexpr char kHasDeadLetter[] =
    "SELECT 1 FROM dead_letters WHERE projection = ?1 AND event_id = ?2";
constexpr char kPutDeadLetter[] =
    "INSERT INTO dead_letters (projection, event_id, stream, "
    "version, position_commit, position_prepare, event_type, status, error, "
    "failure_count, first_failed_at, last_failed_at, resolved_by, "
    "resolved_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
    "?13, ?14) "
    "ON CONFLICT (projection, event_id) DO UPDATE SET "
    "stream = excluded.stream, version = excluded.version, "
    "position_commit = excluded.position_commit, "
    "position_prepare = excluded.position_prepare, "
    "event_type = excluded.event_type, status = excluded.status, "
    "error = excluded.error, failure_count = excluded.failure_count, "
    "first_failed_at = excluded.first_failed_at, "
    "last_failed_at = excluded.last_failed_at, "
    "resolved_by = excluded.resolved_by, resolved_at = excluded.resolved_at "
    "WHERE (dead_letters.status = 'parked' AND "
    "(excluded.status <> 'parked' OR "
    "excluded.failure_count > dead_letters.failure_count)) "
    "OR (dead_letters.status = 'retrying' AND excluded.status = 'resolved')";
constexpr char kPutSnapshot[] =
    "INSERT OR REPLACE INTO snapshots (stream, schema_version, version, type, "
    "state, taken_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
// ?1 is the id (NULL: a new one). A held entry moves on only from pending
// to published or failed, and only when it holds the same message.
constexpr char kHasOutbox[] = "SELECT 1 FROM outbox WHERE id = ?1";
constexpr char kPutOutbox[] =
    "INSERT INTO outbox (id, destination, message_key, payload, "
    "headers, status, created_at, attempts, last_error, published_at, "
    "claimed_by, lease_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
    "?10, ?11, ?12) "
    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
    "attempts = excluded.attempts, last_error = excluded.last_error, "
    "published_at = excluded.published_at, claimed_by = excluded.claimed_by, "
    "lease_until = excluded.lease_until "
    "WHERE outbox.status = 'pending' AND excluded.status <> 'pending' "
    "AND outbox.destination = excluded.destination "
    "AND outbox.message_key = excluded.message_key "
    "AND outbox.payload = excluded.payload";

int64_t Signed(uint64_t v) { return static_cast<int64_t>(v); }

void BindInt64OrNull(SqliteStatement& stmt, int index,
                     const std::optional<int64_t>& v) {
  if (v.has_value()) {
    stmt.BindInt64(index, *v);
  } else {
    stmt.BindNull(index);
  }
}

// Runs `put` (bound) after `has` (bound) told whether the row was held, and
// counts the outcome.
absl::Status RunPut(SqliteConnection& conn, SqliteStatement& has,
                    SqliteStatement& put, PutCounts& counts) {
  ES_ASSIGN_OR_RETURN(bool held, has.Step());
  has.Reset();
  ES_RETURN_IF_ERROR(put.Run());
  put.Reset();
  if (conn.Changes() == 0) {
    ++counts.kept;
  } else if (held) {
    ++counts.updated;
  } else {
    ++counts.added;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> StreamVersion(SqliteConnection& conn,
                                      const std::string& stream) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kStreamVersion));
  stmt->BindText(1, stream);
  ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
  return row ? stmt->ColumnInt64(0) : 0;
}

}  // namespace

absl::StatusOr<std::string> SqliteEventImporter::StoreId() {
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::string> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kStoreId));
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        if (!row) {
          return absl::FailedPreconditionError(absl::StrCat(
              "sqlite: '", db_->options().path, "' has no store id"));
        }
        return std::string(stmt->ColumnText(0));
      });
}

absl::StatusOr<int64_t> SqliteEventImporter::CountEvents(Position up_to) {
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<int64_t> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kCountEvents));
        stmt->BindInt64(1, Signed(up_to.commit()));
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        return row ? stmt->ColumnInt64(0) : 0;
      });
}

absl::StatusOr<EventImporter::TableCounts> SqliteEventImporter::CountTables() {
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<TableCounts> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kCountTables));
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        TableCounts counts;
        if (!row) return counts;
        counts.checkpoints = stmt->ColumnInt64(0);
        counts.dead_letters = stmt->ColumnInt64(1);
        counts.outbox = stmt->ColumnInt64(2);
        counts.snapshots = stmt->ColumnInt64(3);
        counts.stream_rows = stmt->ColumnInt64(4);
        counts.subject_keys = stmt->ColumnInt64(5);
        counts.forgotten_subjects = stmt->ColumnInt64(6);
        return counts;
      });
}

absl::StatusOr<std::vector<DeadLetter>> SqliteEventImporter::ListDeadLetters(
    const DeadLetterCursor& after, int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<DeadLetter>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt,
                            conn.Cached(kListDeadLetters));
        stmt->BindText(1, after.projection);
        stmt->BindBlob(2, after.event_id.bytes());
        stmt->BindInt64(3, limit);
        return CollectDeadLetters(*stmt);
      });
}

absl::StatusOr<std::vector<OutboxEntry>> SqliteEventImporter::ListOutbox(
    int64_t after_id, int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<OutboxEntry>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kListOutbox));
        stmt->BindInt64(1, after_id);
        stmt->BindInt64(2, limit);
        return CollectOutboxEntries(*stmt);
      });
}

absl::StatusOr<std::vector<Snapshot>> SqliteEventImporter::ListSnapshots(
    const SnapshotCursor& after, int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<Snapshot>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kListSnapshots));
        stmt->BindText(1, after.stream);
        stmt->BindInt64(2, after.schema_version);
        stmt->BindInt64(3, limit);
        std::vector<Snapshot> out;
        while (true) {
          ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
          if (!row) return out;
          Snapshot& s = out.emplace_back();
          s.stream = std::string(stmt->ColumnText(0));
          s.schema_version = static_cast<int32_t>(stmt->ColumnInt64(1));
          s.version = stmt->ColumnInt64(2);
          s.type = std::string(stmt->ColumnText(3));
          s.state = std::string(stmt->ColumnBlob(4));
          s.taken_at = absl::FromUnixMicros(stmt->ColumnInt64(5));
        }
      });
}

absl::StatusOr<std::optional<MigrationState>> SqliteEventImporter::GetMigration(
    std::string_view migration_id) {
  return db_->WithReader([&](SqliteConnection& conn)
                             -> absl::StatusOr<std::optional<MigrationState>> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kGetMigration));
    stmt->BindText(1, migration_id);
    ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) return std::nullopt;
    MigrationState state;
    state.migration_id = std::string(migration_id);
    state.source = std::string(stmt->ColumnText(0));
    state.last_source_position =
        Position::FromParts(static_cast<uint64_t>(stmt->ColumnInt64(1)),
                            static_cast<uint64_t>(stmt->ColumnInt64(2)));
    state.events = stmt->ColumnInt64(3);
    state.started_at = absl::FromUnixMicros(stmt->ColumnInt64(4));
    state.updated_at = absl::FromUnixMicros(stmt->ColumnInt64(5));
    return state;
  });
}

absl::StatusOr<std::vector<MigrationState>>
SqliteEventImporter::ListMigrations() {
  return db_->WithReader([&](SqliteConnection& conn)
                             -> absl::StatusOr<std::vector<MigrationState>> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kListMigrations));
    std::vector<MigrationState> states;
    while (true) {
      ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      MigrationState state;
      state.migration_id = std::string(stmt->ColumnText(0));
      state.source = std::string(stmt->ColumnText(1));
      state.last_source_position =
          Position::FromParts(static_cast<uint64_t>(stmt->ColumnInt64(2)),
                              static_cast<uint64_t>(stmt->ColumnInt64(3)));
      state.events = stmt->ColumnInt64(4);
      state.started_at = absl::FromUnixMicros(stmt->ColumnInt64(5));
      state.updated_at = absl::FromUnixMicros(stmt->ColumnInt64(6));
      states.push_back(std::move(state));
    }
    return states;
  });
}

absl::Status SqliteEventImporter::ImportEvents(
    std::string_view migration_id, std::string_view source,
    absl::Span<const RecordedEvent> events) {
  if (events.empty()) return absl::OkStatus();
  const int64_t now = absl::ToUnixMicros(absl::Now());
  ES_RETURN_IF_ERROR(db_->WithWriteTransaction([&](SqliteConnection& conn)
                                                   -> absl::Status {
    // Each stream's highest version in the target and the batch so far:
    // versions increase, with gaps where the source hides or removed
    // events.
    absl::flat_hash_map<std::string, int64_t> last_version;
    ES_ASSIGN_OR_RETURN(ScopedStatement insert, conn.Cached(kInsertEvent));
    ES_ASSIGN_OR_RETURN(ScopedStatement map, conn.Cached(kInsertPosition));
    std::string metadata;
    for (const RecordedEvent& e : events) {
      auto it = last_version.find(e.stream);
      if (it == last_version.end()) {
        ES_ASSIGN_OR_RETURN(int64_t current, StreamVersion(conn, e.stream));
        it = last_version.emplace(e.stream, current).first;
      }
      if (e.version <= it->second) {
        return absl::FailedPreconditionError(
            absl::StrCat("import: event ", e.id.ToString(), " of stream '",
                         e.stream, "' has version ", e.version,
                         " but the stream already reaches version ", it->second,
                         " in the target; nothing of this batch was written"));
      }
      it->second = e.version;
      ES_ASSIGN_OR_RETURN(uint32_t checksum,
                          internal::CheckImportedEvent(e, metadata));
      insert->BindBlob(1, e.id.bytes());
      insert->BindText(2, e.stream);
      insert->BindInt64(3, e.version);
      insert->BindText(4, e.type);
      insert->BindBlob(5, e.payload);
      if (metadata.empty()) {
        insert->BindNull(6);
      } else {
        insert->BindBlob(6, metadata);
      }
      BindTextOrNull(*insert, 7, e.metadata.tenant_id());
      insert->BindInt64(8, absl::ToUnixMicros(e.recorded_at));
      insert->BindInt64(9, static_cast<int64_t>(checksum));
      insert->BindInt64(10, Signed(e.position.commit()));
      insert->BindInt64(11, Signed(e.position.prepare()));
      absl::Status status = insert->Run();
      if (!status.ok()) {
        const int rc = insert->last_error();
        if (rc == SQLITE_CONSTRAINT_UNIQUE ||
            rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
          return absl::AlreadyExistsError(absl::StrCat(
              "import: event ", e.id.ToString(), " (stream '", e.stream,
              "', version ", e.version, ") is already stored in the target"));
        }
        return status;
      }
      insert->Reset();
      map->BindText(1, migration_id);
      map->BindInt64(2, Signed(e.position.commit()));
      map->BindInt64(3, Signed(e.position.prepare()));
      map->BindInt64(4, conn.LastInsertRowid());
      absl::Status mapped = map->Run();
      if (!mapped.ok()) {
        return absl::Status(
            mapped.code(),
            absl::StrCat("import: source position ", e.position.ToString(),
                         " of migration ", std::string(migration_id),
                         " is already mapped: ", mapped.message()));
      }
      map->Reset();
    }
    ES_ASSIGN_OR_RETURN(ScopedStatement upsert, conn.Cached(kUpsertMigration));
    upsert->BindText(1, migration_id);
    upsert->BindText(2, source);
    upsert->BindInt64(3, Signed(events.back().position.commit()));
    upsert->BindInt64(4, Signed(events.back().position.prepare()));
    upsert->BindInt64(5, static_cast<int64_t>(events.size()));
    upsert->BindInt64(6, now);
    return upsert->Run();
  }));
  db_->NotifyAppend();
  return absl::OkStatus();
}

absl::StatusOr<Position> SqliteEventImporter::TranslatePosition(
    std::string_view migration_id, Position source_position) {
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<Position> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kTranslate));
        stmt->BindText(1, migration_id);
        stmt->BindInt64(2, Signed(source_position.commit()));
        stmt->BindInt64(3, Signed(source_position.prepare()));
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        if (!row) return Position::Start();
        return Position::At(static_cast<uint64_t>(stmt->ColumnInt64(0)));
      });
}

absl::StatusOr<std::vector<Position>> SqliteEventImporter::SourcePositions(
    std::string_view migration_id, absl::Span<const Position> positions) {
  std::vector<Position> out(positions.size(), Position::Start());
  // The positions this store can hold (one sequence number, a rowid), each
  // with its index in `positions`, in position order.
  std::vector<std::pair<uint64_t, size_t>> wanted;
  wanted.reserve(positions.size());
  for (size_t i = 0; i < positions.size(); ++i) {
    const Position& p = positions[i];
    if (p.commit() != p.prepare() || p.commit() == 0 ||
        p.commit() > static_cast<uint64_t>(INT64_MAX)) {
      continue;
    }
    wanted.emplace_back(p.commit(), i);
  }
  if (wanted.empty()) return out;
  if (!std::is_sorted(wanted.begin(), wanted.end())) {
    std::sort(wanted.begin(), wanted.end());
  }
  // The runs of positions to read, as a JSON object {"first": last, ...}:
  // positions at most kMaxGap apart share a run (the rows between are read
  // and passed over).
  std::string runs = "{";
  uint64_t run_first = wanted.front().first;
  uint64_t run_last = run_first;
  auto close_run = [&] {
    if (runs.size() > 1) runs.push_back(',');
    absl::StrAppend(&runs, "\"", run_first, "\":", run_last);
  };
  for (const std::pair<uint64_t, size_t>& w : wanted) {
    if (w.first - run_last > kMaxGap) {
      close_run();
      run_first = w.first;
    }
    run_last = w.first;
  }
  close_run();
  runs.push_back('}');
  ES_RETURN_IF_ERROR(
      db_->WithReader([&](SqliteConnection& conn) -> absl::Status {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt,
                            conn.Cached(kSourcePositions));
        stmt->BindText(1, migration_id);
        stmt->BindText(2, runs);
        while (true) {
          ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
          if (!row) return absl::OkStatus();
          const uint64_t at = static_cast<uint64_t>(stmt->ColumnInt64(0));
          auto it = std::lower_bound(wanted.begin(), wanted.end(),
                                     std::pair<uint64_t, size_t>(at, 0));
          if (it == wanted.end() || it->first != at) continue;
          const Position source =
              Position::FromParts(static_cast<uint64_t>(stmt->ColumnInt64(1)),
                                  static_cast<uint64_t>(stmt->ColumnInt64(2)));
          for (; it != wanted.end() && it->first == at; ++it) {
            out[it->second] = source;
          }
        }
      }));
  return out;
}

absl::StatusOr<std::vector<RecordedEvent>>
SqliteEventImporter::ReadStreamAtSourcePositions(
    std::string_view migration_id, std::string_view stream,
    const ReadStreamOptions& options) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  ES_RETURN_IF_ERROR(internal::ValidateReadStreamOptions(options));
  const bool forward = options.direction == Direction::kForward;
  const int64_t from = options.from_version.value_or(forward ? 1 : kUnlimited);
  std::vector<RecordedEvent> events;
  bool only_migration = false;
  ES_RETURN_IF_ERROR(
      db_->WithReader([&](SqliteConnection& conn) -> absl::Status {
        ES_ASSIGN_OR_RETURN(ScopedStatement only, conn.Cached(kOnlyMigration));
        only->BindText(1, migration_id);
        ES_ASSIGN_OR_RETURN(bool row, only->Step());
        only_migration =
            row && only->ColumnInt64(0) == 1 && only->ColumnInt64(1) == 1;
        if (!only_migration || options.max_count == 0) {
          return absl::OkStatus();
        }
        // The stream's highest version and streams-table row, in this read
        // transaction: deletions and retention hide here as in ReadStream.
        ES_ASSIGN_OR_RETURN(SqliteStreamLifecycle::StreamState state,
                            SqliteStreamLifecycle::ReadState(conn, stream));
        const bool windowed = state.row.has_value();
        internal::StreamWindow window;
        if (windowed) {
          window = internal::WindowOf(state.row, state.last(), absl::Now());
          if (window.empty) return absl::OkStatus();
        }
        const char* sql =
            forward
                ? (windowed ? kReadSourceForwardWindow : kReadSourceForward)
                : (windowed ? kReadSourceBackwardWindow : kReadSourceBackward);
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(sql));
        SqliteStreamLifecycle::BindStreamRead(*stmt, stream, from,
                                              options.max_count,
                                              windowed ? &window : nullptr);
        // Reserved up front, as the store's ReadStream does: the stream's
        // version bounds the rows.
        const int64_t last = state.max_stored;
        const int64_t rows = forward ? last - from + 1 : std::min(from, last);
        events.reserve(static_cast<size_t>(
            std::max<int64_t>(0, std::min(options.max_count, rows))));
        const bool verify = db_->options().verify_checksums;
        while (true) {
          ES_ASSIGN_OR_RETURN(bool more, stmt->Step());
          if (!more) return absl::OkStatus();
          RecordedEvent& event = events.emplace_back();
          DecodeRowInto(*stmt, verify, event);
          if (stmt->ColumnIsNull(kEventColumns)) {
            return absl::FailedPreconditionError(absl::StrCat(
                "the store holds event ", event.id.ToString(), " (",
                event.stream, " version ", event.version, ") at position ",
                event.position.ToString(), " that is not a copy of store ",
                std::string(migration_id), " (appended here)"));
          }
          event.position = Position::FromParts(
              static_cast<uint64_t>(stmt->ColumnInt64(kEventColumns)),
              static_cast<uint64_t>(stmt->ColumnInt64(kEventColumns + 1)));
        }
      }));
  if (!only_migration) {
    return absl::UnimplementedError(absl::StrCat(
        "ReadStreamAtSourcePositions: the store does not hold copies of "
        "store ",
        std::string(migration_id), " only"));
  }
  if (db_->options().type_registry != nullptr) {
    ES_RETURN_IF_ERROR(db_->options().type_registry->UpcastAll(events));
  }
  return events;
}

absl::Status SqliteEventImporter::PutRecordedTypes(
    absl::Span<const RecordedType> types) {
  if (types.empty()) return absl::OkStatus();
  return db_->WithWriteTransaction([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kInsertType));
    for (const RecordedType& t : types) {
      stmt->BindText(1, t.type);
      stmt->BindBlob(2, t.descriptor_set);
      stmt->BindInt64(3, absl::ToUnixMicros(t.recorded_at));
      ES_RETURN_IF_ERROR(stmt->Run());
      stmt->Reset();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<PutCounts> SqliteEventImporter::PutCheckpoints(
    absl::Span<const Checkpoint> checkpoints) {
  PutCounts counts;
  if (checkpoints.empty()) return counts;
  ES_RETURN_IF_ERROR(
      db_->WithWriteTransaction([&](SqliteConnection& conn) -> absl::Status {
        counts = PutCounts();
        ES_ASSIGN_OR_RETURN(ScopedStatement has, conn.Cached(kHasCheckpoint));
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kPutCheckpoint));
        for (const Checkpoint& c : checkpoints) {
          has->BindText(1, c.projection);
          stmt->BindText(1, c.projection);
          stmt->BindInt64(2, Signed(c.position.commit()));
          stmt->BindInt64(3, Signed(c.position.prepare()));
          stmt->BindInt64(4, c.events_processed);
          stmt->BindInt64(5, absl::ToUnixMicros(c.updated_at));
          ES_RETURN_IF_ERROR(RunPut(conn, *has, *stmt, counts));
        }
        return absl::OkStatus();
      }));
  return counts;
}

absl::StatusOr<PutCounts> SqliteEventImporter::PutDeadLetters(
    absl::Span<const DeadLetter> dead_letters) {
  PutCounts counts;
  if (dead_letters.empty()) return counts;
  ES_RETURN_IF_ERROR(
      db_->WithWriteTransaction([&](SqliteConnection& conn) -> absl::Status {
        counts = PutCounts();
        ES_ASSIGN_OR_RETURN(ScopedStatement has, conn.Cached(kHasDeadLetter));
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kPutDeadLetter));
        for (const DeadLetter& d : dead_letters) {
          has->BindText(1, d.projection);
          has->BindBlob(2, d.event_id.bytes());
          stmt->BindText(1, d.projection);
          stmt->BindBlob(2, d.event_id.bytes());
          stmt->BindText(3, d.stream);
          stmt->BindInt64(4, d.version);
          stmt->BindInt64(5, Signed(d.position.commit()));
          stmt->BindInt64(6, Signed(d.position.prepare()));
          stmt->BindText(7, d.event_type);
          stmt->BindText(8, internal::DeadLetterStatusName(d.status));
          stmt->BindText(9, d.error);
          stmt->BindInt64(10, d.failure_count);
          stmt->BindInt64(11, absl::ToUnixMicros(d.first_failed_at));
          stmt->BindInt64(12, absl::ToUnixMicros(d.last_failed_at));
          BindTextOrNull(*stmt, 13, d.resolved_by);
          BindTimeOrNull(*stmt, 14, d.resolved_at);
          ES_RETURN_IF_ERROR(RunPut(conn, *has, *stmt, counts));
        }
        return absl::OkStatus();
      }));
  return counts;
}

absl::Status SqliteEventImporter::PutSnapshots(
    absl::Span<const Snapshot> snapshots) {
  if (snapshots.empty()) return absl::OkStatus();
  return db_->WithWriteTransaction([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kPutSnapshot));
    for (const Snapshot& s : snapshots) {
      stmt->BindText(1, s.stream);
      stmt->BindInt64(2, s.schema_version);
      stmt->BindInt64(3, s.version);
      stmt->BindText(4, s.type);
      stmt->BindBlob(5, s.state);
      stmt->BindInt64(6, absl::ToUnixMicros(s.taken_at));
      ES_RETURN_IF_ERROR(stmt->Run());
      stmt->Reset();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<PutCounts> SqliteEventImporter::PutOutboxEntries(
    absl::Span<const OutboxEntry> entries, bool keep_ids) {
  PutCounts counts;
  if (entries.empty()) return counts;
  ES_RETURN_IF_ERROR(
      db_->WithWriteTransaction([&](SqliteConnection& conn) -> absl::Status {
        counts = PutCounts();
        ES_ASSIGN_OR_RETURN(ScopedStatement has, conn.Cached(kHasOutbox));
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kPutOutbox));
        std::string headers;
        for (const OutboxEntry& e : entries) {
          if (keep_ids) {
            has->BindInt64(1, e.id);
            stmt->BindInt64(1, e.id);
          } else {
            has->BindNull(1);  // holds nothing: a new id
            stmt->BindNull(1);
          }
          stmt->BindText(2, e.message.destination);
          stmt->BindText(3, e.message.key);
          stmt->BindBlob(4, e.message.payload);
          if (e.message.headers.empty()) {
            stmt->BindNull(5);
          } else {
            v1::OutboxHeaders proto;
            proto.mutable_headers()->insert(e.message.headers.begin(),
                                            e.message.headers.end());
            headers = proto.SerializeAsString();
            stmt->BindBlob(5, headers);
          }
          stmt->BindText(6, internal::OutboxStatusName(e.status));
          stmt->BindInt64(7, absl::ToUnixMicros(e.created_at));
          stmt->BindInt64(8, e.attempts);
          BindTextOrNull(*stmt, 9, e.last_error);
          BindTimeOrNull(*stmt, 10, e.published_at);
          BindTextOrNull(*stmt, 11, e.claimed_by);
          BindTimeOrNull(*stmt, 12, e.lease_until);
          ES_RETURN_IF_ERROR(RunPut(conn, *has, *stmt, counts));
        }
        return absl::OkStatus();
      }));
  return counts;
}

absl::StatusOr<std::vector<StreamRowRecord>>
SqliteEventImporter::ListStreamRows(std::string_view after, int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  return db_->WithReader([&](SqliteConnection& conn)
                             -> absl::StatusOr<std::vector<StreamRowRecord>> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kListStreamRows));
    stmt->BindText(1, after);
    stmt->BindInt64(2, limit);
    std::vector<StreamRowRecord> rows;
    while (true) {
      ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      StreamRowRecord& r = rows.emplace_back();
      r.stream = std::string(stmt->ColumnText(0));
      ES_ASSIGN_OR_RETURN(r.state, internal::StreamStatusFromCode(
                                       r.stream, stmt->ColumnInt64(1)));
      if (!stmt->ColumnIsNull(2)) {
        r.metadata.truncate_before = stmt->ColumnInt64(2);
      }
      if (!stmt->ColumnIsNull(3)) r.metadata.max_count = stmt->ColumnInt64(3);
      if (!stmt->ColumnIsNull(4)) {
        r.metadata.max_age = absl::Microseconds(stmt->ColumnInt64(4));
      }
      r.version_floor = stmt->ColumnInt64(5);
      if (!stmt->ColumnIsNull(6)) {
        r.deleted_at = absl::FromUnixMicros(stmt->ColumnInt64(6));
      }
      r.updated_at = absl::FromUnixMicros(stmt->ColumnInt64(7));
    }
    return rows;
  });
}

absl::StatusOr<PutCounts> SqliteEventImporter::PutStreamRows(
    absl::Span<const StreamRowRecord> rows) {
  PutCounts counts;
  if (rows.empty()) return counts;
  ES_RETURN_IF_ERROR(internal::ValidateStreamRows(db_->options().limits, rows));
  ES_RETURN_IF_ERROR(
      db_->WithWriteTransaction([&](SqliteConnection& conn) -> absl::Status {
        counts = PutCounts();
        ES_ASSIGN_OR_RETURN(ScopedStatement has, conn.Cached(kHasStreamRow));
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kPutStreamRow));
        for (const StreamRowRecord& r : rows) {
          has->BindText(1, r.stream);
          stmt->BindText(1, r.stream);
          stmt->BindInt64(2, internal::StreamStatusCode(r.state));
          BindInt64OrNull(*stmt, 3, r.metadata.truncate_before);
          BindInt64OrNull(*stmt, 4, r.metadata.max_count);
          if (r.metadata.max_age.has_value()) {
            stmt->BindInt64(5, absl::ToInt64Microseconds(*r.metadata.max_age));
          } else {
            stmt->BindNull(5);
          }
          stmt->BindInt64(6, r.version_floor);
          if (r.deleted_at.has_value()) {
            stmt->BindInt64(7, absl::ToUnixMicros(*r.deleted_at));
          } else {
            stmt->BindNull(7);
          }
          stmt->BindInt64(8, absl::ToUnixMicros(r.updated_at));
          ES_RETURN_IF_ERROR(RunPut(conn, *has, *stmt, counts));
        }
        return absl::OkStatus();
      }));
  return counts;
}

}  // namespace eventstore::sqlite
