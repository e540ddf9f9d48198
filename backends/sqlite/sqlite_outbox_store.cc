#include "backends/sqlite/sqlite_outbox_store.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_rows.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/status_macros.h"
#include "eventstore/v1/outbox.pb.h"

namespace eventstore::sqlite {
namespace {

constexpr char kInsert[] =
    "INSERT INTO outbox (destination, message_key, payload, headers, "
    "created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
// Every entry read has these columns, in this order (see DecodeOutboxEntry).
#define ES_OUTBOX_COLUMNS                                                \
  "id, destination, message_key, payload, headers, status, created_at, " \
  "attempts, last_error, published_at, claimed_by, lease_until"
constexpr char kSelectPending[] =
    "SELECT " ES_OUTBOX_COLUMNS
    " FROM outbox WHERE status = 'pending' ORDER BY id LIMIT ?1";
constexpr char kSelectClaimable[] =
    "SELECT " ES_OUTBOX_COLUMNS
    " FROM outbox WHERE status = 'pending' "
    "AND (lease_until IS NULL OR lease_until <= ?1) ORDER BY id LIMIT ?2";
// ?2: a status, or NULL for any.
constexpr char kList[] = "SELECT " ES_OUTBOX_COLUMNS
                         " FROM outbox WHERE id > ?1 AND (?2 IS NULL OR "
                         "status = ?2) ORDER BY id LIMIT ?3";
#undef ES_OUTBOX_COLUMNS
// The rows kSelectClaimable returned, in the same write transaction: one
// statement for the batch. They are the claimable rows from the first id
// selected (?4) to the last (?5): any claimable row between would have
// been selected.
constexpr char kClaim[] =
    "UPDATE outbox SET claimed_by = ?1, lease_until = ?2 "
    "WHERE id BETWEEN ?4 AND ?5 AND status = 'pending' "
    "AND (lease_until IS NULL OR lease_until <= ?3)";
// A batch's ids are most often consecutive: ?1..?2 then names the same
// rows as the JSON array, without parsing one.
constexpr char kMarkRangePublished[] =
    "UPDATE outbox SET status = 'published', published_at = ?3, "
    "claimed_by = NULL, lease_until = NULL WHERE id BETWEEN ?1 AND ?2";
// ?1: the ids as a JSON array.
constexpr char kMarkAllPublished[] =
    "UPDATE outbox SET status = 'published', published_at = ?2, "
    "claimed_by = NULL, lease_until = NULL "
    "WHERE id IN (SELECT value FROM json_each(?1))";
constexpr char kFirstMissing[] =
    "SELECT value FROM json_each(?1) "
    "WHERE value NOT IN (SELECT id FROM outbox) LIMIT 1";
constexpr char kMarkPublished[] =
    "UPDATE outbox SET status = 'published', published_at = ?2, "
    "claimed_by = NULL, lease_until = NULL WHERE id = ?1";
// The CASE sees the row before the update: attempts + 1 is the new count.
constexpr char kMarkFailed[] =
    "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, "
    "claimed_by = NULL, lease_until = NULL, "
    "status = CASE WHEN attempts + 1 >= ?3 THEN 'failed' ELSE 'pending' END "
    "WHERE id = ?1";
// ?1: the ids as a JSON array.
// An empty error keeps the last one (messages a stopped publisher gives back
// unsent).
constexpr char kRelease[] =
    "UPDATE outbox SET last_error = coalesce(nullif(?2, ''), last_error), "
    "claimed_by = NULL, lease_until = NULL "
    "WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending'";
// The lease is cleared so that the message is claimable at once; the last
// error stays, for whoever looks at it again.
constexpr char kRetry[] =
    "UPDATE outbox SET status = 'pending', attempts = 0, claimed_by = NULL, "
    "lease_until = NULL WHERE id = ?1 AND status = 'failed'";
constexpr char kStatusOf[] = "SELECT status FROM outbox WHERE id = ?1";
constexpr char kDeletePublished[] =
    "DELETE FROM outbox WHERE status = 'published' AND published_at <= ?1";
constexpr char kStats[] =
    "SELECT coalesce(sum(status = 'pending'), 0), "
    "coalesce(sum(status = 'published'), 0), "
    "coalesce(sum(status = 'failed'), 0), "
    "min(CASE WHEN status = 'pending' THEN created_at END) FROM outbox";
// Reads only the index outbox_by_status (status, id) for the count, and
// one row for the first pending message.
constexpr char kBacklog[] =
    "SELECT count(*), (SELECT created_at FROM outbox WHERE status = 'pending' "
    "ORDER BY id LIMIT 1) FROM outbox WHERE status = 'pending'";

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

absl::Status NoSuchMessage(int64_t id) {
  return absl::NotFoundError(
      absl::StrCat("outbox: there is no message with id ", id));
}

absl::Status CheckClaim(std::string_view worker, int limit,
                        absl::Duration lease) {
  if (worker.empty()) {
    return absl::InvalidArgumentError("worker: empty; name the publisher");
  }
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  if (lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "lease: ", absl::FormatDuration(lease), " is not positive"));
  }
  return absl::OkStatus();
}

// Claims up to `limit` messages for `worker` until `until` on `conn`.
// REQUIRES: inside a write transaction on the writer.
absl::StatusOr<std::vector<OutboxEntry>> ClaimOn(SqliteConnection& conn,
                                                 std::string_view worker,
                                                 int limit, absl::Time now,
                                                 absl::Time until) {
  const int64_t now_micros = absl::ToUnixMicros(now);
  const int64_t until_micros = absl::ToUnixMicros(until);
  std::vector<OutboxEntry> entries;
  {
    ES_ASSIGN_OR_RETURN(ScopedStatement select, conn.Cached(kSelectClaimable));
    select->BindInt64(1, now_micros);
    select->BindInt64(2, limit);
    ES_ASSIGN_OR_RETURN(entries, CollectOutboxEntries(*select));
  }
  if (entries.empty()) return entries;
  ES_ASSIGN_OR_RETURN(ScopedStatement claim, conn.Cached(kClaim));
  claim->BindText(1, worker);
  claim->BindInt64(2, until_micros);
  claim->BindInt64(3, now_micros);
  claim->BindInt64(4, entries.front().id);
  claim->BindInt64(5, entries.back().id);
  ES_RETURN_IF_ERROR(claim->Run());
  if (conn.Changes() != static_cast<int64_t>(entries.size())) {
    return absl::InternalError(absl::StrCat("sqlite: claimed ", conn.Changes(),
                                            " outbox messages of ",
                                            entries.size(), " selected"));
  }
  for (OutboxEntry& entry : entries) {
    entry.claimed_by = std::string(worker);
    entry.lease_until = absl::FromUnixMicros(until_micros);
  }
  return entries;
}

// The ids of a batch to mark, without repeats, and as the JSON array that
// kMarkAllPublished takes.
struct IdsToMark {
  explicit IdsToMark(absl::Span<const int64_t> ids)
      : requested(ids.size()), distinct(ids.begin(), ids.end()) {
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()),
                   distinct.end());
    json = absl::StrCat("[", absl::StrJoin(distinct, ","), "]");
  }
  // Whether they are every id from the first to the last.
  bool consecutive() const {
    return !distinct.empty() && distinct.back() - distinct.front() + 1 ==
                                    static_cast<int64_t>(distinct.size());
  }
  size_t requested;
  std::vector<int64_t> distinct;
  std::string json;
};

// Marks `ids` published on `conn`; kNotFound when one names no message (the
// caller's transaction is then rolled back: nothing marked).
// REQUIRES: inside a write transaction on the writer.
absl::Status MarkAllOn(SqliteConnection& conn, const IdsToMark& ids,
                       int64_t now_micros) {
  if (ids.consecutive()) {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kMarkRangePublished));
    stmt->BindInt64(1, ids.distinct.front());
    stmt->BindInt64(2, ids.distinct.back());
    stmt->BindInt64(3, now_micros);
    ES_RETURN_IF_ERROR(stmt->Run());
  } else {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kMarkAllPublished));
    stmt->BindText(1, ids.json);
    stmt->BindInt64(2, now_micros);
    ES_RETURN_IF_ERROR(stmt->Run());
  }
  if (conn.Changes() == static_cast<int64_t>(ids.distinct.size())) {
    return absl::OkStatus();
  }
  ES_ASSIGN_OR_RETURN(ScopedStatement missing, conn.Cached(kFirstMissing));
  missing->BindText(1, ids.json);
  ES_ASSIGN_OR_RETURN(bool row, missing->Step());
  if (!row) return absl::InternalError("sqlite: marking outbox messages");
  return absl::NotFoundError(
      absl::StrCat("no outbox message ", missing->ColumnInt64(0),
                   "; none of the batch of ", ids.requested, " was marked"));
}

}  // namespace

absl::Status SqliteOutboxStore::Insert(SqliteConnection& conn,
                                       absl::Span<const OutboxMessage> messages,
                                       int64_t now_micros) {
  ES_ASSIGN_OR_RETURN(ScopedStatement insert, conn.Cached(kInsert));
  std::string headers;
  for (const OutboxMessage& message : messages) {
    insert->BindText(1, message.destination);
    insert->BindText(2, message.key);
    insert->BindBlob(3, message.payload);
    if (message.headers.empty()) {
      insert->BindNull(4);
    } else {
      v1::OutboxHeaders proto;
      proto.mutable_headers()->insert(message.headers.begin(),
                                      message.headers.end());
      headers = proto.SerializeAsString();
      insert->BindBlob(4, headers);
    }
    insert->BindInt64(5, now_micros);
    absl::Status status = insert->Run();
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("outbox: enqueue to '",
                                                      message.destination,
                                                      "': ", status.message()));
    }
    insert->Reset();
  }
  return absl::OkStatus();
}

absl::Status SqliteOutboxStore::Enqueue(
    absl::Span<const OutboxMessage> messages) {
  ES_RETURN_IF_ERROR(
      internal::ValidateOutboxMessages(db_->options().limits, messages));
  if (messages.empty()) return absl::OkStatus();
  const int64_t now = NowMicros();
  return db_->WithWriteTransaction(
      [&](SqliteConnection& conn) { return Insert(conn, messages, now); });
}

absl::StatusOr<std::vector<OutboxEntry>> SqliteOutboxStore::Pending(int limit) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(limit));
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<OutboxEntry>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectPending));
        stmt->BindInt64(1, limit);
        return CollectOutboxEntries(*stmt);
      });
}

absl::StatusOr<std::vector<OutboxEntry>> SqliteOutboxStore::Claim(
    std::string_view worker, int limit, absl::Duration lease) {
  ES_RETURN_IF_ERROR(CheckClaim(worker, limit, lease));
  if (limit == 0) return std::vector<OutboxEntry>();
  const absl::Time now = absl::Now();
  return db_->WithWriteTransaction([&](SqliteConnection& conn) {
    return ClaimOn(conn, worker, limit, now, now + lease);
  });
}

absl::Status SqliteOutboxStore::MarkPublished(int64_t id) {
  const int64_t now = NowMicros();
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kMarkPublished));
    stmt->BindInt64(1, id);
    stmt->BindInt64(2, now);
    ES_RETURN_IF_ERROR(stmt->Run());
    return conn.Changes() == 0 ? NoSuchMessage(id) : absl::OkStatus();
  });
}

absl::Status SqliteOutboxStore::MarkAllPublished(
    absl::Span<const int64_t> ids) {
  if (ids.empty()) return absl::OkStatus();
  const int64_t now = NowMicros();
  const IdsToMark to_mark(ids);
  // One statement in one transaction: one commit for the batch, and
  // nothing marked when an id names no message.
  return db_->WithWriteTransaction(
      [&](SqliteConnection& conn) { return MarkAllOn(conn, to_mark, now); });
}

absl::StatusOr<std::vector<OutboxEntry>>
SqliteOutboxStore::MarkPublishedAndClaim(absl::Span<const int64_t> published,
                                         std::string_view worker, int limit,
                                         absl::Duration lease) {
  ES_RETURN_IF_ERROR(CheckClaim(worker, limit, lease));
  if (published.empty()) return Claim(worker, limit, lease);
  const absl::Time now = absl::Now();
  const IdsToMark to_mark(published);
  return db_->WithWriteTransaction(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<OutboxEntry>> {
        ES_RETURN_IF_ERROR(MarkAllOn(conn, to_mark, absl::ToUnixMicros(now)));
        if (limit == 0) return std::vector<OutboxEntry>();
        // The messages just marked are no longer pending: never claimed.
        return ClaimOn(conn, worker, limit, now, now + lease);
      });
}

absl::Status SqliteOutboxStore::Release(absl::Span<const int64_t> ids,
                                        std::string_view error) {
  if (ids.empty()) return absl::OkStatus();
  const std::string json = absl::StrCat("[", absl::StrJoin(ids, ","), "]");
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kRelease));
    stmt->BindText(1, json);
    stmt->BindText(2, error);
    return stmt->Run();
  });
}

absl::Status SqliteOutboxStore::MarkFailed(int64_t id, std::string_view error,
                                           int32_t max_attempts) {
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kMarkFailed));
    stmt->BindInt64(1, id);
    stmt->BindText(2, error);
    stmt->BindInt64(3, max_attempts);
    ES_RETURN_IF_ERROR(stmt->Run());
    return conn.Changes() == 0 ? NoSuchMessage(id) : absl::OkStatus();
  });
}

absl::Status SqliteOutboxStore::Retry(int64_t id) {
  return db_->WithWriteTransaction([&](SqliteConnection& conn) -> absl::Status {
    {
      ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kRetry));
      stmt->BindInt64(1, id);
      ES_RETURN_IF_ERROR(stmt->Run());
    }
    if (conn.Changes() > 0) return absl::OkStatus();
    ES_ASSIGN_OR_RETURN(ScopedStatement status, conn.Cached(kStatusOf));
    status->BindInt64(1, id);
    ES_ASSIGN_OR_RETURN(bool row, status->Step());
    if (!row) return NoSuchMessage(id);
    return absl::FailedPreconditionError(absl::StrCat(
        "outbox: message ", id, " is ", std::string(status->ColumnText(0)),
        ", not failed; only a failed message can be retried"));
  });
}

absl::StatusOr<int64_t> SqliteOutboxStore::DeletePublishedOlderThan(
    absl::Duration age) {
  if (age < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("age: ", absl::FormatDuration(age), " is negative"));
  }
  const int64_t before = absl::ToUnixMicros(absl::Now() - age);
  return db_->WithWriter(
      [&](SqliteConnection& conn) -> absl::StatusOr<int64_t> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt,
                            conn.Cached(kDeletePublished));
        stmt->BindInt64(1, before);
        ES_RETURN_IF_ERROR(stmt->Run());
        return conn.Changes();
      });
}

absl::StatusOr<OutboxStats> SqliteOutboxStore::Stats() {
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<OutboxStats> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kStats));
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        OutboxStats stats;
        if (!row) return stats;
        stats.pending = stmt->ColumnInt64(0);
        stats.published = stmt->ColumnInt64(1);
        stats.failed = stmt->ColumnInt64(2);
        stats.oldest_pending = TimeOrPast(*stmt, 3);
        return stats;
      });
}

absl::StatusOr<OutboxBacklog> SqliteOutboxStore::Backlog() {
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<OutboxBacklog> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kBacklog));
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        OutboxBacklog backlog;
        if (!row) return backlog;
        backlog.pending = stmt->ColumnInt64(0);
        const absl::Time oldest = TimeOrPast(*stmt, 1);
        if (oldest != absl::InfinitePast()) {
          backlog.oldest_pending_age =
              std::max(absl::ZeroDuration(), absl::Now() - oldest);
        }
        return backlog;
      });
}

absl::StatusOr<std::vector<OutboxEntry>> SqliteOutboxStore::List(
    const OutboxListOptions& options) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(options.limit));
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<OutboxEntry>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kList));
        stmt->BindInt64(1, options.after_id);
        if (options.status.has_value()) {
          stmt->BindText(2, internal::OutboxStatusName(*options.status));
        } else {
          stmt->BindNull(2);
        }
        stmt->BindInt64(3, options.limit);
        return CollectOutboxEntries(*stmt);
      });
}

}  // namespace eventstore::sqlite
