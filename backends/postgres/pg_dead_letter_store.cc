#include "backends/postgres/pg_dead_letter_store.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/postgres/pg_rows.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {
namespace {

#define ES_PG_DEAD_LETTER_COLUMNS                                        \
  "projection, event_id, stream, version, position_commit,"              \
  " position_prepare, event_type, status, error, failure_count::bigint," \
  " first_failed_at, last_failed_at, resolved_by, resolved_at"

// A second failure keeps the first's time, counts one more, and parks the
// entry again (even a resolved one: it failed once more).
constexpr char kAddSql[] =
    "INSERT INTO $S.dead_letters AS d (projection, event_id, stream, version,"
    " position_commit, position_prepare, event_type, status, error,"
    " failure_count, first_failed_at, last_failed_at)"
    " VALUES ($1::text, $2::uuid, $3::text, $4::bigint, $5::bigint,"
    " $6::bigint, $7::text, 'parked', $8::text, 1, now(), now())"
    " ON CONFLICT (projection, event_id) DO UPDATE SET"
    "   status = 'parked', error = EXCLUDED.error,"
    "   failure_count = d.failure_count + 1,"
    "   last_failed_at = EXCLUDED.last_failed_at,"
    "   resolved_by = NULL, resolved_at = NULL";
constexpr char kGetSql[] =
    "SELECT " ES_PG_DEAD_LETTER_COLUMNS
    " FROM $S.dead_letters"
    " WHERE projection = $1::text AND event_id = $2::uuid";
constexpr char kListSql[] =
    "SELECT " ES_PG_DEAD_LETTER_COLUMNS
    " FROM $S.dead_letters"
    " WHERE ($1::text IS NULL OR projection = $1::text)"
    "   AND ($2::text IS NULL OR status = $2::text)"
    " ORDER BY first_failed_at, position_commit, position_prepare,"
    "   projection COLLATE \"C\""
    " LIMIT $3::bigint";
// $1 projection (NULL for any), $2..$4 statuses (NULL for a status left
// out), $5..$8 the key listed after ($5 NULL: from the first), $9 limit.
constexpr char kListPageSql[] =
    "SELECT " ES_PG_DEAD_LETTER_COLUMNS
    " FROM $S.dead_letters"
    " WHERE ($1::text IS NULL OR projection = $1::text)"
    "   AND status IN ($2::text, $3::text, $4::text)"
    "   AND ($5::bigint IS NULL"
    "        OR (first_failed_at, position_commit, position_prepare,"
    "            projection COLLATE \"C\")"
    "           > (timestamptz 'epoch' + $5::bigint * interval '1 microsecond',"
    "              $6::bigint, $7::bigint, $8::text COLLATE \"C\"))"
    " ORDER BY first_failed_at, position_commit, position_prepare,"
    "   projection COLLATE \"C\""
    " LIMIT $9::bigint";
constexpr char kMarkRetryingSql[] =
    "UPDATE $S.dead_letters SET status = 'retrying'"
    " WHERE projection = $1::text AND event_id = $2::uuid";
constexpr char kMarkResolvedSql[] =
    "UPDATE $S.dead_letters SET status = 'resolved', resolved_by = $3::text,"
    " resolved_at = now()"
    " WHERE projection = $1::text AND event_id = $2::uuid";
constexpr char kCountsSql[] =
    "SELECT projection, count(*) FILTER (WHERE status = 'parked'),"
    " count(*) FILTER (WHERE status = 'retrying')"
    " FROM $S.dead_letters WHERE status <> 'resolved'"
    " GROUP BY projection ORDER BY projection COLLATE \"C\"";
constexpr char kDeleteResolvedSql[] =
    "DELETE FROM $S.dead_letters WHERE status = 'resolved'"
    " AND resolved_at < now() - $1::bigint * interval '1 microsecond'";

absl::Status ValidateProjection(std::string_view projection) {
  if (projection.empty()) {
    return absl::InvalidArgumentError("projection: empty");
  }
  return absl::OkStatus();
}

}  // namespace

PgDeadLetterStore::PgDeadLetterStore(PgDatabase* db)
    : db_(db),
      add_(db->Statement("es_dl_add", kAddSql)),
      get_(db->Statement("es_dl_get", kGetSql)),
      list_(db->Statement("es_dl_list", kListSql)),
      mark_retrying_(db->Statement("es_dl_mark_retrying", kMarkRetryingSql)),
      mark_resolved_(db->Statement("es_dl_mark_resolved", kMarkResolvedSql)),
      counts_(db->Statement("es_dl_counts", kCountsSql)),
      delete_resolved_(
          db->Statement("es_dl_delete_resolved", kDeleteResolvedSql)),
      list_page_(db->Statement("es_dl_list_page", kListPageSql)) {}

absl::Status PgDeadLetterStore::Add(std::string_view projection,
                                    const RecordedEvent& event,
                                    std::string_view error) {
  ES_RETURN_IF_ERROR(ValidateProjection(projection));
  PgParams params;
  params.Bytes(projection)
      .Bytes(event.id.bytes())
      .Bytes(event.stream)
      .Int64(event.version)
      .Int64(static_cast<int64_t>(event.position.commit()))
      .Int64(static_cast<int64_t>(event.position.prepare()))
      .Bytes(event.type)
      .Bytes(error);
  return db_
      ->WithConnection(
          [&](PgConnection& conn) { return conn.Execute(add_, params); },
          PgDatabase::Retry::kNever)
      .status();
}

absl::StatusOr<std::optional<DeadLetter>> PgDeadLetterStore::Get(
    std::string_view projection, const Uuid& event_id) {
  PgParams params;
  params.Bytes(projection).Bytes(event_id.bytes());
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(get_, params);
  }));
  if (r.rows() == 0) return std::nullopt;
  return DecodeDeadLetter(r, 0);
}

absl::StatusOr<std::vector<DeadLetter>> PgDeadLetterStore::List(
    std::string_view projection, std::optional<DeadLetterStatus> status,
    int limit) {
  if (limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: ", limit, " is negative"));
  }
  PgParams params;
  if (projection.empty()) {
    params.Null();
  } else {
    params.Bytes(projection);
  }
  if (status.has_value()) {
    params.Bytes(internal::DeadLetterStatusName(*status));
  } else {
    params.Null();
  }
  params.Int64(limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_, params);
  }));
  return DecodeDeadLetters(r);
}

absl::Status PgDeadLetterStore::UpdateOne(const PgStatement& stmt,
                                          const PgParams& params,
                                          std::string_view projection,
                                          const Uuid& event_id) {
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(stmt, params);
  }));
  if (r.AffectedRows() == 0) {
    return absl::NotFoundError(
        absl::StrCat("no dead letter of projection '", std::string(projection),
                     "' for event ", event_id.ToString()));
  }
  return absl::OkStatus();
}

absl::Status PgDeadLetterStore::MarkRetrying(std::string_view projection,
                                             const Uuid& event_id) {
  PgParams params;
  params.Bytes(projection).Bytes(event_id.bytes());
  return UpdateOne(mark_retrying_, params, projection, event_id);
}

absl::Status PgDeadLetterStore::MarkResolved(std::string_view projection,
                                             const Uuid& event_id,
                                             std::string_view resolved_by) {
  PgParams params;
  params.Bytes(projection).Bytes(event_id.bytes()).Bytes(resolved_by);
  return UpdateOne(mark_resolved_, params, projection, event_id);
}

absl::StatusOr<std::vector<DeadLetterCount>> PgDeadLetterStore::Counts() {
  PgParams params;
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(counts_, params);
  }));
  std::vector<DeadLetterCount> out(r.rows());
  for (int row = 0; row < r.rows(); ++row) {
    out[row].projection = std::string(r.Bytes(row, 0));
    out[row].parked = r.Int64(row, 1);
    out[row].retrying = r.Int64(row, 2);
  }
  return out;
}

absl::StatusOr<int64_t> PgDeadLetterStore::DeleteResolvedOlderThan(
    absl::Duration age) {
  PgParams params;
  params.Int64(IntervalMicros(age));
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection(
                                      [&](PgConnection& conn) {
                                        return conn.Execute(delete_resolved_,
                                                            params);
                                      },
                                      PgDatabase::Retry::kNever));
  return r.AffectedRows();
}

absl::StatusOr<std::vector<DeadLetter>> PgDeadLetterStore::ListPage(
    const DeadLetterListOptions& options) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(options.limit));
  constexpr DeadLetterStatus kAll[] = {DeadLetterStatus::kParked,
                                       DeadLetterStatus::kRetrying,
                                       DeadLetterStatus::kResolved};
  PgParams params;
  if (options.projection.empty()) {
    params.Null();
  } else {
    params.Bytes(options.projection);
  }
  for (DeadLetterStatus status : kAll) {
    const bool wanted =
        options.statuses.empty() ||
        std::find(options.statuses.begin(), options.statuses.end(), status) !=
            options.statuses.end();
    if (wanted) {
      params.Bytes(internal::DeadLetterStatusName(status));
    } else {
      params.Null();
    }
  }
  if (options.after.has_value()) {
    const DeadLetterKey& key = *options.after;
    params.Int64(absl::ToUnixMicros(key.first_failed_at))
        .Int64(static_cast<int64_t>(key.position.commit()))
        .Int64(static_cast<int64_t>(key.position.prepare()))
        .Bytes(key.projection);
  } else {
    params.Null().Null().Null().Null();
  }
  params.Int64(options.limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_page_, params);
  }));
  return DecodeDeadLetters(r);
}

}  // namespace eventstore::postgres
