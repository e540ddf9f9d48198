#include "backends/postgres/pg_stream_lifecycle.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "backends/postgres/pg_binary.h"
#include "backends/postgres/pg_event_waiter.h"
#include "backends/postgres/pg_pool.h"
#include "eventstore/errors.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {
namespace {

// How often a deletion is retried when a concurrent append took the
// version its marker was to have.
constexpr int kMaxDeleteRaceRetries = 100;
constexpr int64_t kMaxScavengeBatch = 100000;

// The columns of a stream's state (ParseState): the highest stored
// version, the streams row's columns (state NULL: no row), now(), and the
// tenant of the stream's last event.
#define ES_PG_STREAM_ROW_COLUMNS                                    \
  "s.state::bigint, s.truncate_before, s.max_count, s.max_age_us, " \
  "s.version_floor, s.deleted_at, now()"
#define ES_PG_READ_STATE(tenant)                                           \
  "SELECT coalesce((SELECT version FROM $S.events WHERE stream = $1::text" \
  "                 ORDER BY version DESC LIMIT 1), "                      \
  "0), " ES_PG_STREAM_ROW_COLUMNS ", " tenant                              \
  " FROM (SELECT 1) AS one LEFT JOIN $S.streams s ON s.stream = $1::text"
constexpr char kReadStateSql[] = ES_PG_READ_STATE("NULL::text");
// With the tenant of the stream's last event, for its deletion marker.
constexpr char kDeleteStateSql[] = ES_PG_READ_STATE(
    "(SELECT tenant_id FROM $S.events WHERE stream = $1::text"
    " ORDER BY version DESC LIMIT 1)");
// Deletions of a stream run one at a time: a transaction-scoped advisory
// lock on the schema and stream. (Not the streams row's lock: an append that
// revives a soft-deleted stream takes the row lock after inserting its
// events, and a deletion holding the row lock while its marker waits for
// such an append's version would deadlock with it.)
constexpr char kLockStreamSql[] =
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'eventstore.stream-delete:' || $2::text || ':' || $1::text, 0))";
// The marker ($2..$8 as the append's single-event statement, $3 its
// version), the row after the deletion ($9..$12: the columns RowAfterDelete
// changes; a concurrent SetStreamMetadata keeps its max_count and max_age)
// and the removal of the
// stream's snapshots, in one statement of the deletion's transaction.
constexpr char kDeleteWriteSql[] = R"sql(
WITH ins AS (
  INSERT INTO $S.events (id, stream, version, type, payload, metadata,
                         tenant_id, checksum)
  VALUES ($2::uuid, $1::text, $3::bigint, $4::text, $5::bytea, $6::bytea,
          $7::text, $8::bigint)
  RETURNING transaction_id, position
), upd AS (
  INSERT INTO $S.streams AS s (stream, state, truncate_before, version_floor,
                               deleted_at)
  VALUES ($1::text, $9::bigint, $10::bigint, $11::bigint, $12::timestamptz)
  ON CONFLICT (stream) DO UPDATE SET state = EXCLUDED.state,
         truncate_before = EXCLUDED.truncate_before,
         version_floor = greatest(s.version_floor, EXCLUDED.version_floor),
         deleted_at = EXCLUDED.deleted_at, updated_at = now()
), snap AS (
  DELETE FROM $S.snapshots WHERE stream = $1::text RETURNING 1
)
SELECT ins.transaction_id, ins.position, (SELECT count(*) FROM snap))sql";
// Replaces the metadata; after a deletion truncate_before never drops below
// the deletion's (the deleted events stay hidden). No row returned: the
// stream is hard-deleted.
constexpr char kSetMetadataSql[] =
    "INSERT INTO $S.streams AS s (stream, truncate_before, max_count,"
    " max_age_us) VALUES ($1::text, $2::bigint, $3::bigint, $4::bigint)"
    " ON CONFLICT (stream) DO UPDATE SET"
    "   truncate_before = CASE WHEN s.deleted_at IS NULL"
    "     THEN EXCLUDED.truncate_before"
    "     ELSE greatest(s.truncate_before, EXCLUDED.truncate_before) END,"
    "   max_count = EXCLUDED.max_count, max_age_us = EXCLUDED.max_age_us,"
    "   updated_at = now()"
    " WHERE s.state <> 2"
    " RETURNING 1";
// The rows that may hide events.
#define ES_PG_HIDING_ROW                                                \
  "(state <> 0 OR truncate_before IS NOT NULL OR max_count IS NOT NULL" \
  " OR max_age_us IS NOT NULL)"
constexpr char kScavengeStreamsSql[] =
    "SELECT stream FROM $S.streams WHERE " ES_PG_HIDING_ROW " ORDER BY stream";
// The state of a stream being scavenged, its row held FOR SHARE.
constexpr char kScavengeLockSql[] =
    "SELECT coalesce((SELECT version FROM $S.events WHERE stream = $1::text"
    "                 ORDER BY version DESC LIMIT 1), "
    "0), " ES_PG_STREAM_ROW_COLUMNS
    ", NULL::text FROM $S.streams s WHERE s.stream = $1::text FOR SHARE OF s";
// Removes up to $6 hidden rows of stream $1 (never a marker, type $2): all
// ($3 = 1), or those below version $4 or recorded before $5; raises the
// floor to the highest version removed. Only rows below the stream's first
// visible one go (max_age may hide a row above a visible one, when
// recorded_at does not grow with the version): the rows removed are always
// the lowest non-marker versions, which the exact-one append relies on
// (postgres_event_store.cc). The removed events' rows in
// migration_positions go with them (by the migration_positions_by_target
// index): a source position then translates to an earlier event, which a
// reader resuming from it reads again.
constexpr char kScavengeDeleteSql[] = R"sql(
WITH d AS (
  DELETE FROM $S.events WHERE (transaction_id, position) IN (
    SELECT transaction_id, position FROM $S.events
    WHERE stream = $1::text AND type <> $2::text
      AND ($3::bigint = 1 OR version < $4::bigint
           OR recorded_at < $5::timestamptz)
      AND ($3::bigint = 1 OR version < coalesce(
            (SELECT min(v.version) FROM $S.events v
             WHERE v.stream = $1::text AND v.type <> $2::text
               AND v.version >= $4::bigint
               AND ($5::timestamptz IS NULL OR v.recorded_at >= $5::timestamptz)),
            9223372036854775807))
    ORDER BY version LIMIT $6::bigint)
  RETURNING version, transaction_id, position
), mp AS (
  DELETE FROM $S.migration_positions AS m
  USING (SELECT g.migration_id, d.transaction_id::text::bigint AS c,
                d.position AS p
         FROM $S.migrations AS g, d) AS x
  WHERE m.migration_id = x.migration_id AND m.target_commit = x.c
    AND m.target_prepare = x.p
), u AS (
  UPDATE $S.streams
  SET version_floor = greatest(version_floor, (SELECT max(version) FROM d)),
      updated_at = now()
  WHERE stream = $1::text AND EXISTS (SELECT 1 FROM d)
)
SELECT count(*) FROM d)sql";

absl::StatusOr<PgStreamState> ParseState(std::string_view stream,
                                         const PgResult& r) {
  PgStreamState state;
  state.max_stored = r.Int64(0, 0);
  state.now = r.Timestamp(0, 7);
  if (r.IsNull(0, 1)) return state;
  internal::StreamRow row;
  ES_ASSIGN_OR_RETURN(row.state,
                      internal::StreamStatusFromCode(stream, r.Int64(0, 1)));
  if (!r.IsNull(0, 2)) row.metadata.truncate_before = r.Int64(0, 2);
  if (!r.IsNull(0, 3)) row.metadata.max_count = r.Int64(0, 3);
  if (!r.IsNull(0, 4)) row.metadata.max_age = absl::Microseconds(r.Int64(0, 4));
  row.version_floor = r.Int64(0, 5);
  if (!r.IsNull(0, 6)) row.deleted_at = r.Timestamp(0, 6);
  state.row = std::move(row);
  return state;
}

void AddOptionalInt64(const std::optional<int64_t>& v, PgParams& params) {
  if (v.has_value()) {
    params.Int64(*v);
  } else {
    params.Null();
  }
}

void AddMaxAge(const std::optional<absl::Duration>& d, PgParams& params) {
  if (d.has_value()) {
    params.Int64(absl::ToInt64Microseconds(*d));
  } else {
    params.Null();
  }
}

absl::Status ValidateScavengeOptions(const ScavengeOptions& options) {
  if (options.batch_size < 1 || options.batch_size > kMaxScavengeBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size: ", options.batch_size, " is not within 1 to ",
                     kMaxScavengeBatch));
  }
  if (options.max_events < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_events: ", options.max_events, " is less than 1"));
  }
  return absl::OkStatus();
}

// `status` of a call whose connection was lost, saying what to do.
absl::Status Lost(const absl::Status& status, std::string_view what) {
  return absl::UnavailableError(
      absl::StrCat(status.message(), "; ", std::string(what)));
}

}  // namespace

const char PgStreamLifecycle::kHiddenInReadAllSql[] =
    "EXISTS (SELECT 1 FROM $S.streams s WHERE s.stream = e.stream AND ("
    "  s.state <> 0 OR e.version < s.truncate_before"
    "  OR e.recorded_at < now() - s.max_age_us * interval '1 microsecond'"
    "  OR e.version <= greatest(s.version_floor,"
    "       (SELECT l.version FROM $S.events l WHERE l.stream = e.stream"
    "        ORDER BY l.version DESC LIMIT 1)) - s.max_count))";

PgStreamLifecycle::PgStreamLifecycle(
    PgDatabase* db,
    std::function<absl::Status(const std::vector<internal::PreparedEvent>&)>
        record_types,
    std::function<void()> notify)
    : db_(db),
      record_types_(std::move(record_types)),
      notify_(std::move(notify)),
      read_state_(db->Statement("es_lc_read_state", kReadStateSql)),
      delete_state_(db->Statement("es_lc_delete_state", kDeleteStateSql)),
      lock_stream_(db->Statement("es_lc_lock_stream", kLockStreamSql)),
      delete_write_(db->Statement(
          "es_lc_delete_write",
          absl::StrCat(
              kDeleteWriteSql,
              db->options().notify_on_append
                  ? absl::StrCat(", pg_notify('", PgEventWaiter::kChannel,
                                 "', '", db->schema(), "')")
                  : "",
              "\nFROM ins"))),
      set_metadata_(db->Statement("es_lc_set_metadata", kSetMetadataSql)),
      scavenge_streams_(
          db->Statement("es_lc_scavenge_streams", kScavengeStreamsSql)),
      scavenge_lock_(db->Statement("es_lc_scavenge_lock", kScavengeLockSql)),
      scavenge_delete_(
          db->Statement("es_lc_scavenge_delete", kScavengeDeleteSql)) {}

absl::StatusOr<PgStreamState> PgStreamLifecycle::ReadState(
    PgConnection& conn, std::string_view stream) const {
  PgParams params;
  params.Bytes(stream);
  ES_ASSIGN_OR_RETURN(PgResult r, conn.Execute(read_state_, params));
  return ParseState(stream, r);
}

absl::StatusOr<PgStreamState> PgStreamLifecycle::ReadState(
    std::string_view stream) {
  return db_->WithConnection(
      [&](PgConnection& conn) { return ReadState(conn, stream); });
}

absl::StatusOr<DeleteResult> PgStreamLifecycle::DeleteStream(
    std::string_view stream, ExpectedVersion expected, DeleteMode mode) {
  const StoreLimits& limits = db_->options().limits;
  ES_RETURN_IF_ERROR(internal::ValidateStreamName(limits, stream));
  // The marker is prepared (and its type recorded) before the transaction;
  // its version and tenant are filled in under the lock.
  EventData marker_event = internal::StreamDeletedEvent(
      stream, mode == DeleteMode::kHard, /*last_version=*/0, "");
  AppendRequest request;
  request.stream = stream;
  request.events = absl::MakeConstSpan(&marker_event, 1);
  ES_ASSIGN_OR_RETURN(
      std::vector<internal::PreparedEvent> prepared,
      internal::PrepareAppend(limits, request, /*system=*/true));
  ES_RETURN_IF_ERROR(record_types_(prepared));
  for (int attempt = 0;; ++attempt) {
    ES_ASSIGN_OR_RETURN(PgPool::Lease conn, db_->Acquire());
    bool retry = false;
    absl::StatusOr<DeleteResult> result =
        DeleteOnce(*conn, stream, expected, mode, prepared.front(), &retry);
    if (!result.ok() && !conn->broken()) {
      conn->Exec("ROLLBACK").status().IgnoreError();
    }
    if (!result.ok() && conn->broken()) {
      return Lost(result.status(),
                  "whether the stream was deleted is unknown (GetStreamInfo "
                  "tells)");
    }
    if (retry && attempt < kMaxDeleteRaceRetries) continue;
    if (result.ok()) notify_();
    return result;
  }
}

absl::StatusOr<DeleteResult> PgStreamLifecycle::DeleteOnce(
    PgConnection& conn, std::string_view stream, ExpectedVersion expected,
    DeleteMode mode, const internal::PreparedEvent& marker, bool* retry) {
  *retry = false;
  ES_RETURN_IF_ERROR(conn.Exec("BEGIN").status());
  PgParams lock_params;
  lock_params.Bytes(stream).Bytes(db_->schema());
  ES_RETURN_IF_ERROR(conn.Execute(lock_stream_, lock_params).status());
  // A statement after the lock: it sees every deletion committed before.
  ES_ASSIGN_OR_RETURN(PgResult r, [&]() -> absl::StatusOr<PgResult> {
    PgParams params;
    params.Bytes(stream);
    return conn.Execute(delete_state_, params);
  }());
  ES_ASSIGN_OR_RETURN(PgStreamState state, ParseState(stream, r));
  ES_RETURN_IF_ERROR(internal::CheckDelete(stream, expected, mode,
                                           state.max_stored, state.row));
  ES_ASSIGN_OR_RETURN(
      internal::AppendBase base,
      internal::AppendBaseOf(stream, state.max_stored, state.row));
  const int64_t marker_version = base.last + 1;
  const std::string tenant =
      r.IsNull(0, 8) ? std::string() : std::string(r.Bytes(0, 8));
  // The marker's content: the last version and tenant known only now.
  EventData event = internal::StreamDeletedEvent(
      stream, mode == DeleteMode::kHard, base.last, tenant);
  event.id = marker.id;
  AppendRequest request;
  request.stream = stream;
  request.events = absl::MakeConstSpan(&event, 1);
  ES_ASSIGN_OR_RETURN(
      std::vector<internal::PreparedEvent> prepared,
      internal::PrepareAppend(db_->options().limits, request, /*system=*/true));
  const internal::PreparedEvent& p = prepared.front();
  const internal::StreamRow after =
      internal::RowAfterDelete(state.row, mode, marker_version, state.now);
  PgParams params;
  params.Bytes(stream)
      .Bytes(p.id.bytes())
      .Int64(marker_version)
      .Bytes(p.source->type)
      .Bytes(p.source->payload);
  if (p.metadata.empty()) {
    params.Null();
  } else {
    params.Bytes(p.metadata);
  }
  if (tenant.empty()) {
    params.Null();
  } else {
    params.Bytes(tenant);
  }
  params.Int64(static_cast<int64_t>(p.checksum))
      .Int64(internal::StreamStatusCode(after.state));
  AddOptionalInt64(after.metadata.truncate_before, params);
  params.Int64(after.version_floor)
      .Bytes(EncodeTimestamp(after.deleted_at.value_or(state.now)));
  absl::StatusOr<PgResult> w = conn.Execute(delete_write_, params);
  if (!w.ok()) {
    if (w.status().code() == absl::StatusCode::kAlreadyExists &&
        conn.last_constraint() == "events_stream_version_key") {
      // A concurrent append took the marker's version: check again.
      *retry = true;
    }
    return w.status();
  }
  DeleteResult result;
  result.marker_version = marker_version;
  result.position = Position::FromParts(w->Uint64(0, 0), w->Uint64(0, 1));
  result.snapshots_removed = w->Int64(0, 2);
  ES_ASSIGN_OR_RETURN(PgResult committed, conn.Exec("COMMIT"));
  if (committed.CommandTag() == "ROLLBACK") {
    return absl::InternalError("postgres: the deletion was rolled back");
  }
  return result;
}

absl::Status PgStreamLifecycle::SetStreamMetadata(
    std::string_view stream, const StreamMetadata& metadata) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  ES_RETURN_IF_ERROR(ValidateStreamMetadata(metadata));
  PgParams params;
  params.Bytes(stream);
  AddOptionalInt64(metadata.truncate_before, params);
  AddOptionalInt64(metadata.max_count, params);
  AddMaxAge(metadata.max_age, params);
  // Setting the same metadata twice leaves the same state: safe to repeat.
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& c) {
    return c.Execute(set_metadata_, params);
  }));
  if (r.rows() == 0) return HardDeletedStreamError(stream);
  return absl::OkStatus();
}

absl::StatusOr<StreamInfo> PgStreamLifecycle::GetStreamInfo(
    std::string_view stream) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  ES_ASSIGN_OR_RETURN(PgStreamState state, ReadState(stream));
  StreamInfo info;
  info.stream = std::string(stream);
  info.version = internal::VisibleVersionOf(state.max_stored, state.row);
  info.last_version = state.max_stored;
  if (state.row.has_value()) {
    info.state = state.row->state;
    info.last_version = std::max(state.max_stored, state.row->version_floor);
    info.metadata = state.row->metadata;
    info.deleted_at = state.row->deleted_at;
  }
  return info;
}

absl::StatusOr<int64_t> PgStreamLifecycle::ScavengeBatch(
    PgConnection& conn, std::string_view stream, int64_t limit,
    std::optional<absl::Time> now) {
  ES_RETURN_IF_ERROR(conn.Exec("BEGIN").status());
  PgParams lock_params;
  lock_params.Bytes(stream);
  ES_ASSIGN_OR_RETURN(PgResult r, conn.Execute(scavenge_lock_, lock_params));
  if (r.rows() == 0) {
    ES_RETURN_IF_ERROR(conn.Exec("COMMIT").status());
    return 0;
  }
  ES_ASSIGN_OR_RETURN(PgStreamState state, ParseState(stream, r));
  const int64_t last = std::max(
      state.max_stored, state.row.has_value() ? state.row->version_floor : 0);
  const internal::StreamWindow window =
      internal::WindowOf(state.row, last, now.value_or(state.now));
  PgParams params;
  params.Bytes(stream)
      .Bytes(kStreamDeletedType)
      .Int64(window.empty ? 1 : 0)
      .Int64(window.min_version);
  if (window.min_recorded_at.has_value()) {
    params.Bytes(EncodeTimestamp(*window.min_recorded_at));
  } else {
    params.Null();
  }
  params.Int64(limit);
  ES_ASSIGN_OR_RETURN(PgResult d, conn.Execute(scavenge_delete_, params));
  ES_RETURN_IF_ERROR(conn.Exec("COMMIT").status());
  return d.Int64(0, 0);
}

absl::StatusOr<ScavengeResult> PgStreamLifecycle::Scavenge(
    const ScavengeOptions& options) {
  ES_RETURN_IF_ERROR(ValidateScavengeOptions(options));
  const absl::Time start = absl::Now();
  ScavengeResult result;
  PgParams none;
  ES_ASSIGN_OR_RETURN(PgResult streams,
                      db_->WithConnection([&](PgConnection& c) {
                        return c.Execute(scavenge_streams_, none);
                      }));
  ScavengeProgress progress;
  progress.streams_total = streams.rows();
  const auto lost = [](const absl::Status& status) {
    return Lost(status,
                "the scavenge stopped; every batch before this one is "
                "committed, run it again to go on");
  };
  for (int i = 0; i < streams.rows(); ++i) {
    const std::string stream(streams.Bytes(i, 0));
    ++result.streams_examined;
    bool scavenged = false;
    for (;;) {
      if (result.events_removed >= options.max_events) {
        result.complete = false;
        break;
      }
      const int64_t limit = options.batch_size;
      // A batch lost with its connection is run once more on a fresh one:
      // it computes what is hidden again, so repeating it is safe.
      absl::StatusOr<int64_t> removed = db_->WithConnection(
          [&](PgConnection& conn) -> absl::StatusOr<int64_t> {
            absl::StatusOr<int64_t> n =
                ScavengeBatch(conn, stream, limit, options.now);
            if (!n.ok() && !conn.broken()) {
              conn.Exec("ROLLBACK").status().IgnoreError();
            }
            return n;
          });
      if (!removed.ok()) {
        if (absl::IsUnavailable(removed.status())) {
          return lost(removed.status());
        }
        return removed.status();
      }
      if (*removed > 0) {
        ++result.batches;
        result.events_removed += *removed;
        scavenged = true;
        progress.events_removed = result.events_removed;
        progress.streams_done = i;
        if (options.progress) options.progress(progress);
      }
      if (*removed < limit) break;
    }
    if (scavenged) ++result.streams_scavenged;
    if (!result.complete) break;
    progress.streams_done = i + 1;
  }
  if (result.complete && options.progress) options.progress(progress);
  if (options.compact) {
    ES_RETURN_IF_ERROR(Compact());
    result.compacted = true;
  }
  result.elapsed = absl::Now() - start;
  return result;
}

absl::Status PgStreamLifecycle::Compact() {
  // VACUUM FULL rewrites the events table, its TOAST table and indexes into
  // new files and unlinks the old ones: plain VACUUM only marks the space
  // free and leaves removed payloads in the files (tests/postgres/
  // postgres_stream_lifecycle_test.cc). It holds an ACCESS EXCLUSIVE lock on
  // the events table throughout, so appends and reads wait; no statement
  // timeout applies to it (its own connection).
  ES_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn,
                      db_->ConnectDedicated());
  ES_RETURN_IF_ERROR(conn->Exec("SET statement_timeout = 0").status());
  absl::Status status =
      conn->Exec(absl::StrCat("VACUUM FULL ", db_->quoted_schema(), ".events"))
          .status();
  if (!status.ok() && conn->broken()) {
    return Lost(status, "compaction did not finish; run it again");
  }
  return status;
}

}  // namespace eventstore::postgres
