#include "backends/postgres/pg_store_inspector.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_lease.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {
namespace {

// $1: the schema's name (for the catalog lookup of its tables' sizes).
constexpr char kInfoSql[] =
    "SELECT (SELECT max(version) FROM $S.eventstore_schema)::bigint,"
    " (SELECT count(*) FROM $S.events),"
    " (SELECT count(DISTINCT stream) FROM $S.events),"
    " (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint"
    "    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    "   WHERE n.nspname = $1::text AND c.relkind IN ('r', 'p', 'm'))";
// As kInfoSql, with the planner's statistics for the counts, as of the
// last ANALYZE (autovacuum's or a user's): the events table's reltuples
// (-1 before the first ANALYZE) scaled, as the planner scales it, by the
// pages the table has now against the pages it had then (relpages), and
// its stream column's n_distinct (below zero: minus a fraction of the
// rows; NULL before the first ANALYZE).
constexpr char kInfoEstimatesSql[] =
    "SELECT (SELECT max(version) FROM $S.eventstore_schema)::bigint,"
    " (CASE WHEN c.relpages > 0 AND c.reltuples > 0"
    "  THEN c.reltuples / c.relpages * (pg_relation_size(c.oid)"
    "       / current_setting('block_size')::int)"
    "  ELSE c.reltuples END)::bigint,"
    " (SELECT (CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * c.reltuples"
    "               ELSE s.n_distinct END)::bigint"
    "    FROM pg_stats s WHERE s.schemaname = $1::text"
    "     AND s.tablename = 'events' AND s.attname = 'stream'),"
    " (SELECT coalesce(sum(pg_total_relation_size(c2.oid)), 0)::bigint"
    "    FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace"
    "   WHERE n2.nspname = $1::text AND c2.relkind IN ('r', 'p', 'm'))"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = $1::text AND c.relname = 'events'";
// The streams estimated from a sample of the events (SYSTEM: whole pages
// drawn at random, $1 percent of them): a stream of n events is drawn n
// times as often as a stream of one, so the rows ($2, the planner's
// estimate) times the mean of 1/n over the sample estimates the streams
// (Horvitz-Thompson), n being the drawn stream's last version. NULL when
// the sample is empty.
constexpr char kStreamsSampleSql[] =
    "SELECT ($2::float8 * avg(1.0 / (SELECT max(v.version) FROM $S.events v"
    "  WHERE v.stream = s.stream)))::bigint"
    " FROM $S.events s TABLESAMPLE SYSTEM ($1::float8)";
// Rows kStreamsSampleSql aims to draw.
constexpr double kStreamsSampleRows = 2000;
// The same as the store's HeadPosition.
constexpr char kHeadSql[] =
    "SELECT transaction_id, position FROM $S.events"
    " WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY transaction_id DESC, position DESC LIMIT 1";
// $1 prefix ('' for none), $2 exclusive lower bound, $3 limit.
constexpr char kListStreamsSql[] =
    "SELECT stream, max(version), min(recorded_at), max(recorded_at)"
    " FROM $S.events"
    " WHERE starts_with(stream, $1::text) AND stream COLLATE \"C\" > $2::text"
    " GROUP BY stream ORDER BY stream COLLATE \"C\" LIMIT $3::bigint";
constexpr char kRecordedTypesSql[] =
    "SELECT type, descriptor, recorded_at FROM $S.event_types"
    " ORDER BY type COLLATE \"C\"";
// The visible events as ReadAll sees them, filtered as ReadAll filters
// ($1 prefix, $2 types, $3 tenant; NULL for none), newest first, skipping
// $4.
constexpr char kPositionBeforeLastSql[] =
    "SELECT transaction_id, position FROM $S.events"
    " WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    "   AND ($1::text IS NULL OR starts_with(stream, $1::text))"
    "   AND ($2::text[] IS NULL OR type = ANY($2::text[]))"
    "   AND ($3::text IS NULL OR tenant_id = $3::text)"
    " ORDER BY transaction_id DESC, position DESC LIMIT 1 OFFSET $4::bigint";

// ($1, $2) < (transaction_id, position) <= ($3, $4), among the events
// ReadAll can see: an index range of the primary key.
constexpr char kCountEventsSql[] =
    "SELECT count(*) FROM $S.events"
    " WHERE (transaction_id, position) > ($1::xid8, $2::bigint)"
    "   AND (transaction_id, position) <= ($3::xid8, $4::bigint)"
    "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())";
// The session holding the advisory lock whose key is hashtextextended($1,
// 0), as pg_try_advisory_lock(bigint) takes it: pg_locks shows the key's
// high half as classid, its low half as objid, and objsubid 1 (2 is the
// two-int4 form). Only this database's locks: the same key elsewhere is
// another store's. pg_stat_activity's address and start are NULL for a
// session of a role this one may not watch.
constexpr char kLeaseHolderSql[] =
    "WITH k AS (SELECT hashtextextended($1::text, 0) AS key)"
    " SELECT l.pid::bigint, a.application_name, a.usename::text,"
    "  host(a.client_addr), a.backend_start"
    " FROM k, pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    "   AND l.database = (SELECT oid FROM pg_database"
    "                      WHERE datname = current_database())"
    "   AND l.classid::bigint = (k.key >> 32) & 4294967295"
    "   AND l.objid::bigint = k.key & 4294967295"
    " LIMIT 1";

// The bigint half of a position (PostgreSQL's position column); xid8, the
// other, is unsigned and takes the 64 bits as they are.
int64_t PreparePart(Position p) {
  return static_cast<int64_t>(std::min<uint64_t>(p.prepare(), INT64_MAX));
}

// The holder's session, for people: "application 'x', user 'u', client
// 127.0.0.1, connected since 2026-12-05T06:41:08Z"; row `row` of `r`
// (kLeaseHolderSql's columns).
std::string SessionDetail(const PgResult& r, int row) {
  std::vector<std::string> parts;
  if (!r.IsNull(row, 1) && !r.Bytes(row, 1).empty()) {
    parts.push_back(
        absl::StrCat("application '", std::string(r.Bytes(row, 1)), "'"));
  }
  if (!r.IsNull(row, 2)) {
    parts.push_back(absl::StrCat("user '", std::string(r.Bytes(row, 2)), "'"));
  }
  if (r.IsNull(row, 4)) {
    // Not ours to see (or the session ended as we looked).
    parts.push_back("connection details hidden from this role");
  } else {
    parts.push_back(
        r.IsNull(row, 3)
            ? std::string("client on a Unix socket")
            : absl::StrCat("client ", std::string(r.Bytes(row, 3))));
    parts.push_back(
        absl::StrCat("connected since ",
                     absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", r.Timestamp(row, 4),
                                      absl::UTCTimeZone())));
  }
  return absl::StrJoin(parts, ", ");
}

// The conninfo as a URL with the password masked and the schema added.
std::string Location(const PostgresOptions& options) {
  const std::string masked = MaskPostgresUrl(options.conninfo);
  return absl::StrCat(masked, masked.find('?') == std::string::npos ? "?" : "&",
                      "schema=", options.schema);
}

}  // namespace

PgStoreInspector::PgStoreInspector(PgDatabase* db)
    : db_(db),
      info_(db->Statement("es_in_info", kInfoSql)),
      info_estimates_(db->Statement("es_in_info_estimates", kInfoEstimatesSql)),
      streams_sample_(db->Statement("es_in_streams_sample", kStreamsSampleSql)),
      head_(db->Statement("es_in_head", kHeadSql)),
      list_streams_(db->Statement("es_in_streams", kListStreamsSql)),
      recorded_types_(db->Statement("es_in_types", kRecordedTypesSql)),
      position_before_last_(
          db->Statement("es_in_before_last", kPositionBeforeLastSql)),
      count_events_(db->Statement("es_in_count_events", kCountEventsSql)),
      lease_holder_(db->Statement("es_in_lease_holder", kLeaseHolderSql)) {}

absl::StatusOr<StoreInfo> PgStoreInspector::Info(const InfoOptions& options) {
  StoreInfo info;
  info.backend = "postgres";
  info.location = Location(db_->options());
  info.code_schema_version = PostgresEventStore::kSchemaVersion;
  PgParams params;
  params.Bytes(db_->schema());
  ES_ASSIGN_OR_RETURN(PgResult estimates,
                      db_->WithConnection([&](PgConnection& c) {
                        return c.Execute(info_estimates_, params);
                      }));
  if (estimates.rows() != 1) {
    return absl::InternalError("postgres: info: no events table");
  }
  const int64_t rows = estimates.Int64(0, 1);
  info.counts_estimated = rows > 0 && rows >= options.exact_count_limit;
  if (info.counts_estimated) {
    info.schema_version =
        estimates.IsNull(0, 0) ? 0 : static_cast<int>(estimates.Int64(0, 0));
    info.events = rows;
    info.size_bytes = estimates.Int64(0, 3);
    // pg_stats' n_distinct samples 30,000 rows and can be off several
    // times over (29,000 for 100,000 streams at 10M events); the sample
    // below weighs each drawn stream by its length instead.
    PgParams sample;
    sample
        .Text(absl::StrCat(std::min(
            100.0, 100.0 * kStreamsSampleRows / static_cast<double>(rows))))
        .Text(absl::StrCat(rows));
    ES_ASSIGN_OR_RETURN(PgResult streams,
                        db_->WithConnection([&](PgConnection& c) {
                          return c.Execute(streams_sample_, sample);
                        }));
    if (streams.rows() == 1 && !streams.IsNull(0, 0)) {
      info.streams = streams.Int64(0, 0);
    } else if (!estimates.IsNull(0, 2)) {
      info.streams = estimates.Int64(0, 2);  // the planner's n_distinct
    }
  } else {
    ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& c) {
      return c.Execute(info_, params);
    }));
    if (r.rows() != 1) return absl::InternalError("postgres: info: no row");
    info.schema_version = r.IsNull(0, 0) ? 0 : static_cast<int>(r.Int64(0, 0));
    info.events = r.Int64(0, 1);
    info.streams = r.Int64(0, 2);
    info.size_bytes = r.Int64(0, 3);
  }
  PgParams none;
  ES_ASSIGN_OR_RETURN(PgResult head, db_->WithConnection([&](PgConnection& c) {
    return c.Execute(head_, none);
  }));
  if (head.rows() > 0) {
    info.head = Position::FromParts(head.Uint64(0, 0), head.Uint64(0, 1));
  }
  return info;
}

absl::StatusOr<std::vector<StreamSummary>> PgStoreInspector::ListStreams(
    const ListStreamsOptions& options) {
  if (options.limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: ", options.limit, " is negative"));
  }
  std::vector<StreamSummary> streams;
  if (options.limit == 0) return streams;
  PgParams params;
  params.Bytes(options.prefix).Bytes(options.after).Int64(options.limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& c) {
    return c.Execute(list_streams_, params);
  }));
  streams.reserve(static_cast<size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) {
    StreamSummary& s = streams.emplace_back();
    s.stream = std::string(r.Bytes(row, 0));
    s.version = r.Int64(row, 1);
    s.first_recorded_at = r.Timestamp(row, 2);
    s.last_recorded_at = r.Timestamp(row, 3);
  }
  return streams;
}

absl::StatusOr<std::vector<RecordedType>> PgStoreInspector::RecordedTypes() {
  PgParams none;
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& c) {
    return c.Execute(recorded_types_, none);
  }));
  std::vector<RecordedType> types;
  types.reserve(static_cast<size_t>(r.rows()));
  for (int row = 0; row < r.rows(); ++row) {
    RecordedType& t = types.emplace_back();
    t.type = std::string(r.Bytes(row, 0));
    t.descriptor_set = std::string(r.Bytes(row, 1));
    t.recorded_at = r.Timestamp(row, 2);
  }
  return types;
}

absl::StatusOr<Position> PgStoreInspector::PositionBeforeLast(
    int64_t count, const ReadAllFilter& filter) {
  if (count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("count: ", count, " is negative"));
  }
  PgParams params;
  AddFilterParams(filter, params);
  params.Int64(count);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& c) {
    return c.Execute(position_before_last_, params);
  }));
  if (r.rows() == 0) return Position::Start();
  return Position::FromParts(r.Uint64(0, 0), r.Uint64(0, 1));
}

absl::StatusOr<int64_t> PgStoreInspector::CountEvents(Position after,
                                                      Position up_to) {
  if (up_to <= after) return 0;
  PgParams params;
  params.Int64(static_cast<int64_t>(after.commit()))
      .Int64(PreparePart(after))
      .Int64(static_cast<int64_t>(up_to.commit()))
      .Int64(PreparePart(up_to));
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& c) {
    return c.Execute(count_events_, params);
  }));
  if (r.rows() != 1) return absl::InternalError("postgres: count: no row");
  return r.Int64(0, 0);
}

absl::StatusOr<std::optional<LeaseHolder>> PgStoreInspector::FindLeaseHolder(
    std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("lease name: empty");
  PgParams params;
  params.Bytes(PgLease::KeyText(db_->schema(), name));
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& c) {
    return c.Execute(lease_holder_, params);
  }));
  if (r.rows() == 0) return std::nullopt;
  return LeaseHolder{r.Int64(0, 0), SessionDetail(r, 0)};
}

}  // namespace eventstore::postgres
