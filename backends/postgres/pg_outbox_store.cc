#include "backends/postgres/pg_outbox_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/postgres/pg_binary.h"
#include "backends/postgres/pg_rows.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/status_macros.h"
#include "eventstore/v1/outbox.pb.h"

namespace eventstore::postgres {
namespace {

#define ES_PG_OUTBOX_COLUMNS                                            \
  "id, destination, message_key, payload, headers, status, created_at," \
  " attempts::bigint, last_error, published_at, claimed_by, lease_until"

constexpr char kEnqueueSql[] =
    "INSERT INTO $S.outbox (destination, message_key, payload, headers)"
    " SELECT m.destination, m.message_key, m.payload, m.headers"
    " FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[])"
    "      WITH ORDINALITY AS m(destination, message_key, payload, headers, n)"
    " ORDER BY m.n";
constexpr char kPendingSql[] = "SELECT " ES_PG_OUTBOX_COLUMNS
                               " FROM $S.outbox WHERE status = 'pending'"
                               " ORDER BY id LIMIT $1::bigint";
// The oldest pending messages whose lease is free or over, skipping those
// another publisher is claiming right now. The claim reads ids from the
// oldest claimable one (`lo`, an index lookup) to 16 times the limit past
// it, a bound that does not rest on the planner's estimates: on
// a table never analysed (a new store, then a burst), the guess for
// status = 'pending' is a few hundred rows, and with a larger limit the
// plan that reads every pending row and sorts them looks the cheapest, for
// each claim. Where claimable messages are sparser than that (a retry far
// behind the rest, other publishers' batches in between), a batch holds
// fewer of them.
constexpr char kClaimSql[] =
    "WITH lo AS (SELECT min(id) AS id FROM $S.outbox"
    "            WHERE status = 'pending'"
    "              AND (lease_until IS NULL OR lease_until <= now()))"
    " UPDATE $S.outbox SET claimed_by = $1::text,"
    " lease_until = now() + $3::bigint * interval '1 microsecond'"
    " WHERE id IN (SELECT id FROM $S.outbox"
    "              WHERE status = 'pending'"
    "                AND (lease_until IS NULL OR lease_until <= now())"
    "                AND id >= (SELECT id FROM lo)"
    "                AND id < (SELECT id FROM lo) + 16 * $2::bigint"
    "              ORDER BY id LIMIT $2::bigint FOR UPDATE SKIP LOCKED)"
    " RETURNING " ES_PG_OUTBOX_COLUMNS;
constexpr char kMarkPublishedSql[] =
    "UPDATE $S.outbox SET status = 'published', published_at = now(),"
    " claimed_by = NULL, lease_until = NULL"
    " WHERE id = $1::bigint AND status <> 'published'";
// $1 the ids (bigint[]). Marks nothing when one names no message, and
// returns the smallest such id (NULL when all exist).
constexpr char kMarkAllPublishedSql[] =
    "WITH ids AS (SELECT DISTINCT unnest($1::bigint[]) AS id),"
    " missing AS (SELECT min(ids.id) AS id FROM ids WHERE NOT EXISTS"
    "   (SELECT 1 FROM $S.outbox o WHERE o.id = ids.id)),"
    " marked AS (UPDATE $S.outbox o SET status = 'published',"
    "   published_at = now(), claimed_by = NULL, lease_until = NULL"
    "   FROM ids WHERE o.id = ids.id AND o.status <> 'published'"
    "   AND (SELECT id FROM missing) IS NULL RETURNING 1)"
    " SELECT (SELECT id FROM missing), (SELECT count(*) FROM marked)";
// kMarkAllPublishedSql and kClaimSql in one statement (one commit): $1 the
// ids to mark (bigint[]), $2 the worker, $3 the limit, $4 the lease in
// microseconds. Nothing is marked or claimed when an id names no message.
// The claim skips the ids being marked (both updates see the table as the
// statement found it) and reads a bounded range of ids, as kClaimSql does.
// One row per message claimed, with the smallest missing id (NULL when all
// exist) in column 12; one row of NULLs but for that column when none is
// claimed.
constexpr char kMarkPublishedAndClaimSql[] =
    "WITH ids AS (SELECT DISTINCT unnest($1::bigint[]) AS id),"
    " missing AS (SELECT min(ids.id) AS id FROM ids WHERE NOT EXISTS"
    "   (SELECT 1 FROM $S.outbox o WHERE o.id = ids.id)),"
    " marked AS (UPDATE $S.outbox o SET status = 'published',"
    "   published_at = now(), claimed_by = NULL, lease_until = NULL"
    "   FROM ids WHERE o.id = ids.id AND o.status <> 'published'"
    "   AND (SELECT id FROM missing) IS NULL RETURNING 1),"
    " lo AS (SELECT min(id) AS id FROM $S.outbox"
    "   WHERE status = 'pending'"
    "     AND (lease_until IS NULL OR lease_until <= now())"
    "     AND id NOT IN (SELECT id FROM ids)),"
    " claimed AS (UPDATE $S.outbox SET claimed_by = $2::text,"
    "   lease_until = now() + $4::bigint * interval '1 microsecond'"
    "   WHERE id IN (SELECT id FROM $S.outbox"
    "                WHERE status = 'pending'"
    "                  AND (lease_until IS NULL OR lease_until <= now())"
    "                  AND id NOT IN (SELECT id FROM ids)"
    "                  AND id >= (SELECT id FROM lo)"
    "                  AND id < (SELECT id FROM lo) + 16 * $3::bigint"
    "                  AND (SELECT id FROM missing) IS NULL"
    "                ORDER BY id LIMIT $3::bigint FOR UPDATE SKIP LOCKED)"
    "   RETURNING " ES_PG_OUTBOX_COLUMNS
    "),"
    " outcome AS (SELECT (SELECT id FROM missing) AS missing,"
    "   (SELECT count(*) FROM marked) AS marked)"
    " SELECT claimed.*, outcome.missing"
    " FROM claimed RIGHT JOIN outcome ON true";
// $1 the ids (bigint[]), $2 the error; an empty error keeps the last one
// (messages a stopped publisher gives back unsent).
constexpr char kReleaseSql[] =
    "UPDATE $S.outbox SET last_error = coalesce(nullif($2::text, ''),"
    " last_error), claimed_by = NULL,"
    " lease_until = NULL"
    " WHERE id = ANY($1::bigint[]) AND status = 'pending'";
constexpr char kMarkFailedSql[] =
    "UPDATE $S.outbox SET attempts = attempts + 1, last_error = $2::text,"
    " claimed_by = NULL, lease_until = NULL,"
    " status = CASE WHEN attempts + 1 >= $3::bigint THEN 'failed'"
    "               ELSE 'pending' END"
    " WHERE id = $1::bigint AND status = 'pending'";
constexpr char kStatusOfSql[] =
    "SELECT status FROM $S.outbox WHERE id = $1::bigint";
constexpr char kDeletePublishedSql[] =
    "DELETE FROM $S.outbox WHERE status = 'published'"
    " AND published_at < now() - $1::bigint * interval '1 microsecond'";
constexpr char kStatsSql[] =
    "SELECT count(*) FILTER (WHERE status = 'pending'),"
    " count(*) FILTER (WHERE status = 'published'),"
    " count(*) FILTER (WHERE status = 'failed'),"
    " min(created_at) FILTER (WHERE status = 'pending')"
    " FROM $S.outbox";
// Reads only the partial index outbox_pending for the count, and one row
// for the first pending message, whose age the server computes (created_at
// is the server's now() at enqueue).
constexpr char kBacklogSql[] =
    "SELECT count(*),"
    " (SELECT greatest(0, (extract(epoch FROM now() - created_at)"
    "                      * 1000000)::bigint)"
    "  FROM $S.outbox WHERE status = 'pending' ORDER BY id LIMIT 1)"
    " FROM $S.outbox WHERE status = 'pending'";
// $2: a status, or NULL for any.
constexpr char kListSql[] =
    "SELECT " ES_PG_OUTBOX_COLUMNS
    " FROM $S.outbox WHERE id > $1::bigint"
    " AND ($2::text IS NULL OR status = $2::text) ORDER BY id LIMIT $3::bigint";
// Whether message $1 was retried, and its status before (NULL: there is no
// such message): the outer SELECT sees the table as the statement found it,
// not the CTE's update. The lease is cleared so that the message is
// claimable at once; the last error stays.
constexpr char kRetrySql[] =
    "WITH retried AS (UPDATE $S.outbox SET status = 'pending', attempts = 0,"
    "   claimed_by = NULL, lease_until = NULL"
    "   WHERE id = $1::bigint AND status = 'failed' RETURNING id)"
    " SELECT (SELECT count(*) FROM retried),"
    "  (SELECT status FROM $S.outbox WHERE id = $1::bigint)";

}  // namespace

OutboxArrays EncodeOutboxMessages(absl::Span<const OutboxMessage> messages) {
  ArrayBuilder destinations(kTextOid, messages.size());
  ArrayBuilder keys(kTextOid, messages.size());
  ArrayBuilder payloads(kByteaOid, messages.size());
  ArrayBuilder headers(kByteaOid, messages.size());
  for (const OutboxMessage& m : messages) {
    destinations.Add(m.destination);
    keys.Add(m.key);
    payloads.Add(m.payload);
    if (m.headers.empty()) {
      headers.AddNull();
    } else {
      v1::OutboxHeaders proto;
      proto.mutable_headers()->insert(m.headers.begin(), m.headers.end());
      headers.Add(proto.SerializeAsString());
    }
  }
  return OutboxArrays{destinations.Finish(), keys.Finish(), payloads.Finish(),
                      headers.Finish()};
}

PgOutboxStore::PgOutboxStore(PgDatabase* db)
    : db_(db),
      enqueue_(db->Statement("es_ob_enqueue", kEnqueueSql)),
      pending_(db->Statement("es_ob_pending", kPendingSql)),
      claim_(db->Statement("es_ob_claim", kClaimSql)),
      mark_published_(db->Statement("es_ob_mark_published", kMarkPublishedSql)),
      mark_all_published_(
          db->Statement("es_ob_mark_all_published", kMarkAllPublishedSql)),
      mark_published_and_claim_(db->Statement("es_ob_mark_published_and_claim",
                                              kMarkPublishedAndClaimSql)),
      release_(db->Statement("es_ob_release", kReleaseSql)),
      mark_failed_(db->Statement("es_ob_mark_failed", kMarkFailedSql)),
      status_of_(db->Statement("es_ob_status_of", kStatusOfSql)),
      delete_published_(
          db->Statement("es_ob_delete_published", kDeletePublishedSql)),
      stats_(db->Statement("es_ob_stats", kStatsSql)),
      backlog_(db->Statement("es_ob_backlog", kBacklogSql)),
      list_(db->Statement("es_ob_list", kListSql)),
      retry_(db->Statement("es_ob_retry", kRetrySql)) {}

absl::Status PgOutboxStore::Enqueue(absl::Span<const OutboxMessage> messages) {
  ES_RETURN_IF_ERROR(
      internal::ValidateOutboxMessages(db_->options().limits, messages));
  if (messages.empty()) return absl::OkStatus();
  const OutboxArrays arrays = EncodeOutboxMessages(messages);
  PgParams params;
  params.Bytes(arrays.destinations)
      .Bytes(arrays.keys)
      .Bytes(arrays.payloads)
      .Bytes(arrays.headers);
  return db_
      ->WithConnection(
          [&](PgConnection& conn) { return conn.Execute(enqueue_, params); },
          PgDatabase::Retry::kNever)
      .status();
}

absl::StatusOr<std::vector<OutboxEntry>> PgOutboxStore::Pending(int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  PgParams params;
  params.Int64(limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(pending_, params);
  }));
  return DecodeOutboxEntries(r);
}

absl::StatusOr<std::vector<OutboxEntry>> PgOutboxStore::Claim(
    std::string_view worker, int limit, absl::Duration lease) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  if (worker.empty()) return absl::InvalidArgumentError("worker: empty");
  PgParams params;
  params.Bytes(worker).Int64(limit).Int64(
      IntervalMicros(std::max(lease, absl::ZeroDuration())));
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection(
                                      [&](PgConnection& conn) {
                                        return conn.Execute(claim_, params);
                                      },
                                      PgDatabase::Retry::kNever));
  ES_ASSIGN_OR_RETURN(std::vector<OutboxEntry> claimed, DecodeOutboxEntries(r));
  // RETURNING follows no order.
  std::sort(
      claimed.begin(), claimed.end(),
      [](const OutboxEntry& a, const OutboxEntry& b) { return a.id < b.id; });
  return claimed;
}

absl::Status PgOutboxStore::MarkPublished(int64_t id) {
  PgParams params;
  params.Int64(id);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(mark_published_, params);
  }));
  if (r.AffectedRows() > 0) return absl::OkStatus();
  // Already published (say, a retry after a lost connection) is fine.
  ES_ASSIGN_OR_RETURN(PgResult status,
                      db_->WithConnection([&](PgConnection& conn) {
                        return conn.Execute(status_of_, params);
                      }));
  if (status.rows() == 0) {
    return absl::NotFoundError(absl::StrCat("no outbox message ", id));
  }
  return absl::OkStatus();
}

absl::Status PgOutboxStore::MarkAllPublished(absl::Span<const int64_t> ids) {
  if (ids.empty()) return absl::OkStatus();
  ArrayBuilder array(kInt8Oid, ids.size());
  for (const int64_t id : ids) array.Add(EncodeInt64(id));
  PgParams params;
  params.Bytes(array.Finish());
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(mark_all_published_, params);
  }));
  if (r.rows() != 1) {
    return absl::InternalError("postgres: marking outbox messages: no row");
  }
  if (!r.IsNull(0, 0)) {
    return absl::NotFoundError(absl::StrCat("no outbox message ", r.Int64(0, 0),
                                            "; none of the batch of ",
                                            ids.size(), " was marked"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OutboxEntry>> PgOutboxStore::MarkPublishedAndClaim(
    absl::Span<const int64_t> published, std::string_view worker, int limit,
    absl::Duration lease) {
  if (published.empty()) return Claim(worker, limit, lease);
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  if (worker.empty()) return absl::InvalidArgumentError("worker: empty");
  ArrayBuilder array(kInt8Oid, published.size());
  for (const int64_t id : published) array.Add(EncodeInt64(id));
  PgParams params;
  params.Bytes(array.Finish())
      .Bytes(worker)
      .Int64(limit)
      .Int64(IntervalMicros(std::max(lease, absl::ZeroDuration())));
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection(
                                      [&](PgConnection& conn) {
                                        return conn.Execute(
                                            mark_published_and_claim_, params);
                                      },
                                      PgDatabase::Retry::kNever));
  if (r.rows() < 1) {
    return absl::InternalError(
        "postgres: marking and claiming outbox messages: no row");
  }
  constexpr int kMissingColumn = 12;
  if (!r.IsNull(0, kMissingColumn)) {
    return absl::NotFoundError(absl::StrCat(
        "no outbox message ", r.Int64(0, kMissingColumn),
        "; none of the batch of ", published.size(), " was marked"));
  }
  // Nothing claimed: the one row of the outcome.
  if (r.rows() == 1 && r.IsNull(0, 0)) return std::vector<OutboxEntry>();
  ES_ASSIGN_OR_RETURN(std::vector<OutboxEntry> claimed, DecodeOutboxEntries(r));
  // RETURNING follows no order.
  std::sort(
      claimed.begin(), claimed.end(),
      [](const OutboxEntry& a, const OutboxEntry& b) { return a.id < b.id; });
  return claimed;
}

absl::Status PgOutboxStore::Release(absl::Span<const int64_t> ids,
                                    std::string_view error) {
  if (ids.empty()) return absl::OkStatus();
  ArrayBuilder array(kInt8Oid, ids.size());
  for (const int64_t id : ids) array.Add(EncodeInt64(id));
  PgParams params;
  params.Bytes(array.Finish()).Bytes(error);
  return db_
      ->WithConnection(
          [&](PgConnection& conn) { return conn.Execute(release_, params); })
      .status();
}

absl::Status PgOutboxStore::MarkFailed(int64_t id, std::string_view error,
                                       int32_t max_attempts) {
  PgParams params;
  params.Int64(id).Bytes(error).Int64(max_attempts);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection(
                                      [&](PgConnection& conn) {
                                        return conn.Execute(mark_failed_,
                                                            params);
                                      },
                                      PgDatabase::Retry::kNever));
  if (r.AffectedRows() > 0) return absl::OkStatus();
  PgParams id_only;
  id_only.Int64(id);
  ES_ASSIGN_OR_RETURN(PgResult status,
                      db_->WithConnection([&](PgConnection& conn) {
                        return conn.Execute(status_of_, id_only);
                      }));
  if (status.rows() == 0) {
    return absl::NotFoundError(absl::StrCat("no outbox message ", id));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("outbox message ", id, " is ",
                   std::string(status.Bytes(0, 0)), ", no longer pending"));
}

absl::Status PgOutboxStore::Retry(int64_t id) {
  PgParams params;
  params.Int64(id);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection(
                                      [&](PgConnection& conn) {
                                        return conn.Execute(retry_, params);
                                      },
                                      PgDatabase::Retry::kNever));
  if (r.rows() != 1) {
    return absl::InternalError("postgres: retrying an outbox message: no row");
  }
  if (r.Int64(0, 0) > 0) return absl::OkStatus();
  if (r.IsNull(0, 1)) {
    return absl::NotFoundError(absl::StrCat("no outbox message ", id));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("outbox message ", id, " is ", std::string(r.Bytes(0, 1)),
                   ", not failed; only a failed message can be retried"));
}

absl::StatusOr<int64_t> PgOutboxStore::DeletePublishedOlderThan(
    absl::Duration age) {
  PgParams params;
  params.Int64(IntervalMicros(age));
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection(
                                      [&](PgConnection& conn) {
                                        return conn.Execute(delete_published_,
                                                            params);
                                      },
                                      PgDatabase::Retry::kNever));
  return r.AffectedRows();
}

absl::StatusOr<OutboxStats> PgOutboxStore::Stats() {
  PgParams params;
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(stats_, params);
  }));
  OutboxStats stats;
  stats.pending = r.Int64(0, 0);
  stats.published = r.Int64(0, 1);
  stats.failed = r.Int64(0, 2);
  stats.oldest_pending =
      r.IsNull(0, 3) ? absl::InfinitePast() : r.Timestamp(0, 3);
  return stats;
}

absl::StatusOr<OutboxBacklog> PgOutboxStore::Backlog() {
  PgParams params;
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(backlog_, params);
  }));
  OutboxBacklog backlog;
  backlog.pending = r.Int64(0, 0);
  if (!r.IsNull(0, 1)) {
    backlog.oldest_pending_age = absl::Microseconds(r.Int64(0, 1));
  }
  return backlog;
}

absl::StatusOr<std::vector<OutboxEntry>> PgOutboxStore::List(
    const OutboxListOptions& options) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(options.limit));
  PgParams params;
  params.Int64(options.after_id);
  if (options.status.has_value()) {
    params.Bytes(internal::OutboxStatusName(*options.status));
  } else {
    params.Null();
  }
  params.Int64(options.limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_, params);
  }));
  return DecodeOutboxEntries(r);
}

}  // namespace eventstore::postgres
