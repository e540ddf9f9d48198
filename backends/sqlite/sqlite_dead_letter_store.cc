#include "backends/sqlite/sqlite_dead_letter_store.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_rows.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {
namespace {

constexpr char kAdd[] =
    "INSERT INTO dead_letters (projection, event_id, stream, version, "
    "position_commit, position_prepare, event_type, status, error, "
    "failure_count, first_failed_at, last_failed_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'parked', ?8, 1, ?9, ?9) "
    "ON CONFLICT (projection, event_id) DO UPDATE SET status = 'parked', "
    "error = excluded.error, failure_count = failure_count + 1, "
    "last_failed_at = excluded.last_failed_at, resolved_by = NULL, "
    "resolved_at = NULL";
// Every entry is read with these columns, in this order (see DecodeDeadLetter).
#define ES_DEAD_LETTER_SELECT                                       \
  "SELECT projection, event_id, stream, version, position_commit, " \
  "position_prepare, event_type, status, error, failure_count, "    \
  "first_failed_at, last_failed_at, resolved_by, resolved_at FROM " \
  "dead_letters "
#define ES_DEAD_LETTER_ORDER \
  " ORDER BY first_failed_at, position_commit, position_prepare, projection"
constexpr char kGet[] =
    ES_DEAD_LETTER_SELECT "WHERE projection = ?1 AND event_id = ?2";
constexpr char kListAll[] =
    ES_DEAD_LETTER_SELECT ES_DEAD_LETTER_ORDER " LIMIT ?1";
constexpr char kListProjection[] = ES_DEAD_LETTER_SELECT
    "WHERE projection = ?2" ES_DEAD_LETTER_ORDER " LIMIT ?1";
constexpr char kListStatus[] =
    ES_DEAD_LETTER_SELECT "WHERE status = ?3" ES_DEAD_LETTER_ORDER " LIMIT ?1";
constexpr char kListProjectionStatus[] = ES_DEAD_LETTER_SELECT
    "WHERE projection = ?2 AND status = ?3" ES_DEAD_LETTER_ORDER " LIMIT ?1";
// ?1 projection ('' for any), ?2..?4 statuses (NULL for a status left
// out), ?5..?8 the key listed after (?5 NULL: from the first), ?9 limit.
constexpr char kListPage[] = ES_DEAD_LETTER_SELECT
    "WHERE (?1 = '' OR projection = ?1) AND status IN (?2, ?3, ?4) "
    "AND (?5 IS NULL OR (first_failed_at, position_commit, position_prepare, "
    "projection) > (?5, ?6, ?7, ?8))" ES_DEAD_LETTER_ORDER " LIMIT ?9";
#undef ES_DEAD_LETTER_ORDER
#undef ES_DEAD_LETTER_SELECT
constexpr char kMarkRetrying[] =
    "UPDATE dead_letters SET status = 'retrying' "
    "WHERE projection = ?1 AND event_id = ?2";
constexpr char kMarkResolved[] =
    "UPDATE dead_letters SET status = 'resolved', resolved_by = ?3, "
    "resolved_at = ?4 WHERE projection = ?1 AND event_id = ?2";
constexpr char kCounts[] =
    "SELECT projection, sum(status = 'parked'), sum(status = 'retrying') "
    "FROM dead_letters WHERE status <> 'resolved' "
    "GROUP BY projection ORDER BY projection";
constexpr char kDeleteResolved[] =
    "DELETE FROM dead_letters WHERE status = 'resolved' AND resolved_at <= ?1";

absl::Status CheckProjection(std::string_view projection) {
  if (projection.empty()) {
    return absl::InvalidArgumentError("projection: empty; name the projection");
  }
  return absl::OkStatus();
}

absl::Status NoSuchEntry(std::string_view projection, const Uuid& event_id) {
  return absl::NotFoundError(
      absl::StrCat("dead letters: projection '", std::string(projection),
                   "' has no entry for event ", event_id.ToString()));
}

}  // namespace

absl::Status SqliteDeadLetterStore::Add(std::string_view projection,
                                        const RecordedEvent& event,
                                        std::string_view error) {
  ES_RETURN_IF_ERROR(CheckProjection(projection));
  const int64_t now = absl::ToUnixMicros(absl::Now());
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kAdd));
    stmt->BindText(1, projection);
    stmt->BindBlob(2, event.id.bytes());
    stmt->BindText(3, event.stream);
    stmt->BindInt64(4, event.version);
    stmt->BindInt64(5, static_cast<int64_t>(event.position.commit()));
    stmt->BindInt64(6, static_cast<int64_t>(event.position.prepare()));
    stmt->BindText(7, event.type);
    stmt->BindText(8, error);
    stmt->BindInt64(9, now);
    return stmt->Run();
  });
}

absl::StatusOr<std::optional<DeadLetter>> SqliteDeadLetterStore::Get(
    std::string_view projection, const Uuid& event_id) {
  ES_RETURN_IF_ERROR(CheckProjection(projection));
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::optional<DeadLetter>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kGet));
        stmt->BindText(1, projection);
        stmt->BindBlob(2, event_id.bytes());
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        if (!row) return std::nullopt;
        return DecodeDeadLetter(*stmt);
      });
}

absl::StatusOr<std::vector<DeadLetter>> SqliteDeadLetterStore::List(
    std::string_view projection, std::optional<DeadLetterStatus> status,
    int limit) {
  if (limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: ", limit, " is negative"));
  }
  const char* sql =
      projection.empty()
          ? (status.has_value() ? kListStatus : kListAll)
          : (status.has_value() ? kListProjectionStatus : kListProjection);
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<DeadLetter>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(sql));
        stmt->BindInt64(1, limit);
        if (!projection.empty()) stmt->BindText(2, projection);
        if (status.has_value())
          stmt->BindText(3, internal::DeadLetterStatusName(*status));
        return CollectDeadLetters(*stmt);
      });
}

absl::Status SqliteDeadLetterStore::MarkRetrying(std::string_view projection,
                                                 const Uuid& event_id) {
  ES_RETURN_IF_ERROR(CheckProjection(projection));
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kMarkRetrying));
    stmt->BindText(1, projection);
    stmt->BindBlob(2, event_id.bytes());
    ES_RETURN_IF_ERROR(stmt->Run());
    return conn.Changes() == 0 ? NoSuchEntry(projection, event_id)
                               : absl::OkStatus();
  });
}

absl::Status SqliteDeadLetterStore::MarkResolved(std::string_view projection,
                                                 const Uuid& event_id,
                                                 std::string_view resolved_by) {
  ES_RETURN_IF_ERROR(CheckProjection(projection));
  const int64_t now = absl::ToUnixMicros(absl::Now());
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kMarkResolved));
    stmt->BindText(1, projection);
    stmt->BindBlob(2, event_id.bytes());
    stmt->BindText(3, resolved_by);
    stmt->BindInt64(4, now);
    ES_RETURN_IF_ERROR(stmt->Run());
    return conn.Changes() == 0 ? NoSuchEntry(projection, event_id)
                               : absl::OkStatus();
  });
}

absl::StatusOr<std::vector<DeadLetterCount>> SqliteDeadLetterStore::Counts() {
  return db_->WithReader([&](SqliteConnection& conn)
                             -> absl::StatusOr<std::vector<DeadLetterCount>> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kCounts));
    std::vector<DeadLetterCount> counts;
    while (true) {
      ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) return counts;
      DeadLetterCount count;
      count.projection = std::string(stmt->ColumnText(0));
      count.parked = stmt->ColumnInt64(1);
      count.retrying = stmt->ColumnInt64(2);
      counts.push_back(std::move(count));
    }
  });
}

absl::StatusOr<int64_t> SqliteDeadLetterStore::DeleteResolvedOlderThan(
    absl::Duration age) {
  if (age < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("age: ", absl::FormatDuration(age), " is negative"));
  }
  const int64_t before = absl::ToUnixMicros(absl::Now() - age);
  return db_->WithWriter(
      [&](SqliteConnection& conn) -> absl::StatusOr<int64_t> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kDeleteResolved));
        stmt->BindInt64(1, before);
        ES_RETURN_IF_ERROR(stmt->Run());
        return conn.Changes();
      });
}

absl::StatusOr<std::vector<DeadLetter>> SqliteDeadLetterStore::ListPage(
    const DeadLetterListOptions& options) {
  ES_RETURN_IF_ERROR(internal::CheckLimit(options.limit));
  constexpr DeadLetterStatus kAll[] = {DeadLetterStatus::kParked,
                                       DeadLetterStatus::kRetrying,
                                       DeadLetterStatus::kResolved};
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<DeadLetter>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kListPage));
        stmt->BindText(1, options.projection);
        for (int i = 0; i < 3; ++i) {
          const bool wanted =
              options.statuses.empty() ||
              std::find(options.statuses.begin(), options.statuses.end(),
                        kAll[i]) != options.statuses.end();
          if (wanted) {
            stmt->BindText(2 + i, internal::DeadLetterStatusName(kAll[i]));
          } else {
            stmt->BindNull(2 + i);
          }
        }
        if (options.after.has_value()) {
          const DeadLetterKey& key = *options.after;
          stmt->BindInt64(5, absl::ToUnixMicros(key.first_failed_at));
          stmt->BindInt64(6, static_cast<int64_t>(key.position.commit()));
          stmt->BindInt64(7, static_cast<int64_t>(key.position.prepare()));
          stmt->BindText(8, key.projection);
        } else {
          for (int i = 5; i <= 8; ++i) stmt->BindNull(i);
        }
        stmt->BindInt64(9, options.limit);
        return CollectDeadLetters(*stmt);
      });
}

}  // namespace eventstore::sqlite
