#include "backends/sqlite/sqlite_store_inspector.h"

#include <sys/stat.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_event_filter.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {
namespace {

// One statement: one snapshot of the database, so the counts agree.
constexpr char kInfo[] =
    "SELECT (SELECT max(version) FROM eventstore_schema), count(*), "
    "count(DISTINCT stream), max(position) FROM events";
// The first and last positions: two seeks of the primary key.
constexpr char kPositionBounds[] =
    "SELECT (SELECT min(position) FROM events), "
    "(SELECT max(position) FROM events)";
// As kInfo, with estimates: the events are the positions between the
// first and the last event; the streams are estimated from 2,000 events
// drawn at random positions: a stream of n events is drawn n times as
// often as a stream of one, so the events times the mean of 1/n over the
// draws estimates the streams (Horvitz-Thompson), n being the drawn
// stream's last version. 4,000 index seeks, however large the store.
constexpr char kInfoEstimated[] =
    "WITH RECURSIVE"
    " bounds(lo, span) AS (SELECT (SELECT min(position) FROM events),"
    "  (SELECT max(position) FROM events) - (SELECT min(position) FROM events)"
    "  + 1),"
    " draws(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM draws WHERE i < 2000),"
    " picks(stream) AS (SELECT (SELECT e.stream FROM events e"
    "  WHERE e.position >= bounds.lo + abs(random() + 0 * draws.i) % "
    "bounds.span"
    "  ORDER BY e.position LIMIT 1) FROM draws, bounds) "
    "SELECT (SELECT max(version) FROM eventstore_schema), "
    "(SELECT span FROM bounds), "
    "(SELECT CAST(round((SELECT span FROM bounds) * avg(1.0 /"
    "  (SELECT max(v.version) FROM events v WHERE v.stream = picks.stream)))"
    "  AS INTEGER) FROM picks), "
    "(SELECT max(position) FROM events)";
constexpr char kPageBytes[] =
    "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size";
// ?1 the prefix (a lower bound), ?2 the first name past every name with the
// prefix (NULL when there is none), ?3 the exclusive lower bound, ?4 the
// limit. Bounds rather than LIKE, so the (stream, version) index serves.
constexpr char kListStreams[] =
    "SELECT stream, max(version), min(recorded_at), max(recorded_at) "
    "FROM events WHERE stream >= ?1 AND (?2 IS NULL OR stream < ?2) "
    "AND stream > ?3 GROUP BY stream ORDER BY stream LIMIT ?4";
// ?1 < position <= ?2: a range of the primary key.
constexpr char kCountEvents[] =
    "SELECT count(*) FROM events WHERE position > ?1 AND position <= ?2";
constexpr char kRecordedTypes[] =
    "SELECT type, descriptor, recorded_at FROM event_types ORDER BY type";

// The smallest string greater than every string that starts with `prefix`
// (byte order), or false when there is none (empty, or all bytes 0xff).
bool PrefixEnd(std::string prefix, std::string* end) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) {
    prefix.pop_back();
  }
  if (prefix.empty()) return false;
  prefix.back() =
      static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  *end = std::move(prefix);
  return true;
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_size);
}

// A position's sequence number as SQLite's integer (positions past
// INT64_MAX cannot exist there).
int64_t Sequence(Position p) {
  return static_cast<int64_t>(std::min<uint64_t>(p.commit(), INT64_MAX));
}

std::string AbsolutePath(const std::string& path) {
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return path;
  return resolved;
}

}  // namespace

absl::StatusOr<StoreInfo> SqliteStoreInspector::Info(
    const InfoOptions& options) {
  StoreInfo info;
  info.backend = "sqlite";
  info.code_schema_version = SqliteEventStore::kSchemaVersion;
  const std::string& path = db_->options().path;
  info.location = db_->in_memory() ? path : AbsolutePath(path);
  ES_RETURN_IF_ERROR(
      db_->WithReader([&](SqliteConnection& conn) -> absl::Status {
        {
          ES_ASSIGN_OR_RETURN(ScopedStatement bounds,
                              conn.Cached(kPositionBounds));
          ES_ASSIGN_OR_RETURN(bool row, bounds->Step());
          const int64_t span =
              row && !bounds->ColumnIsNull(0)
                  ? bounds->ColumnInt64(1) - bounds->ColumnInt64(0) + 1
                  : 0;
          info.counts_estimated = span > 0 && span >= options.exact_count_limit;
          ES_ASSIGN_OR_RETURN(
              ScopedStatement stmt,
              conn.Cached(info.counts_estimated ? kInfoEstimated : kInfo));
          ES_ASSIGN_OR_RETURN(row, stmt->Step());
          if (!row) return absl::InternalError("sqlite: info returned no row");
          info.schema_version = static_cast<int>(stmt->ColumnInt64(0));
          info.events = stmt->ColumnInt64(1);
          info.streams = stmt->ColumnInt64(2);
          if (!stmt->ColumnIsNull(3)) {
            info.head =
                Position::At(static_cast<uint64_t>(stmt->ColumnInt64(3)));
          }
        }
        if (db_->in_memory()) {
          ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kPageBytes));
          ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
          if (row) info.size_bytes = stmt->ColumnInt64(0);
        }
        return absl::OkStatus();
      }));
  if (!db_->in_memory()) {
    info.size_bytes = FileSize(path) + FileSize(path + "-wal");
  }
  return info;
}

absl::StatusOr<std::vector<StreamSummary>> SqliteStoreInspector::ListStreams(
    const ListStreamsOptions& options) {
  if (options.limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: ", options.limit, " is negative"));
  }
  std::vector<StreamSummary> streams;
  if (options.limit == 0) return streams;
  std::string end;
  const bool bounded = PrefixEnd(options.prefix, &end);
  ES_RETURN_IF_ERROR(
      db_->WithReader([&](SqliteConnection& conn) -> absl::Status {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kListStreams));
        stmt->BindText(1, options.prefix);
        if (bounded) {
          stmt->BindText(2, end);
        } else {
          stmt->BindNull(2);
        }
        stmt->BindText(3, options.after);
        stmt->BindInt64(4, options.limit);
        while (true) {
          ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
          if (!row) return absl::OkStatus();
          StreamSummary& s = streams.emplace_back();
          s.stream = std::string(stmt->ColumnText(0));
          s.version = stmt->ColumnInt64(1);
          s.first_recorded_at = absl::FromUnixMicros(stmt->ColumnInt64(2));
          s.last_recorded_at = absl::FromUnixMicros(stmt->ColumnInt64(3));
        }
      }));
  return streams;
}

absl::StatusOr<std::vector<RecordedType>>
SqliteStoreInspector::RecordedTypes() {
  std::vector<RecordedType> types;
  ES_RETURN_IF_ERROR(
      db_->WithReader([&](SqliteConnection& conn) -> absl::Status {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kRecordedTypes));
        while (true) {
          ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
          if (!row) return absl::OkStatus();
          RecordedType& t = types.emplace_back();
          t.type = std::string(stmt->ColumnText(0));
          t.descriptor_set = std::string(stmt->ColumnBlob(1));
          t.recorded_at = absl::FromUnixMicros(stmt->ColumnInt64(2));
        }
      }));
  return types;
}

absl::StatusOr<Position> SqliteStoreInspector::PositionBeforeLast(
    int64_t count, const ReadAllFilter& filter) {
  if (count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("count: ", count, " is negative"));
  }
  const SqliteEventFilter where(filter);
  const std::string sql =
      absl::StrCat("SELECT position FROM events WHERE position > ?",
                   where.sql(), " ORDER BY position DESC LIMIT 1 OFFSET ?");
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<Position> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(sql));
        stmt->BindInt64(1, 0);
        const int next = where.Bind(*stmt, 2);
        stmt->BindInt64(next, count);
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        if (!row) return Position::Start();
        return Position::At(static_cast<uint64_t>(stmt->ColumnInt64(0)));
      });
}

absl::StatusOr<int64_t> SqliteStoreInspector::CountEvents(Position after,
                                                          Position up_to) {
  if (up_to <= after) return 0;
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<int64_t> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kCountEvents));
        stmt->BindInt64(1, Sequence(after));
        stmt->BindInt64(2, Sequence(up_to));
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        if (!row) return absl::InternalError("sqlite: count returned no row");
        return stmt->ColumnInt64(0);
      });
}

absl::StatusOr<std::optional<LeaseHolder>>
SqliteStoreInspector::FindLeaseHolder(std::string_view name) {
  return leases_->FindHolder(name);
}

}  // namespace eventstore::sqlite
