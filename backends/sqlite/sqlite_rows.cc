#include "backends/sqlite/sqlite_rows.h"

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/status_macros.h"
#include "eventstore/v1/outbox.pb.h"

namespace eventstore::sqlite {

absl::Time TimeOrPast(const SqliteStatement& row, int column) {
  return row.ColumnIsNull(column)
             ? absl::InfinitePast()
             : absl::FromUnixMicros(row.ColumnInt64(column));
}

void BindTimeOrNull(SqliteStatement& stmt, int index, absl::Time t) {
  if (t == absl::InfinitePast()) {
    stmt.BindNull(index);
  } else {
    stmt.BindInt64(index, absl::ToUnixMicros(t));
  }
}

void BindTextOrNull(SqliteStatement& stmt, int index, const std::string& s) {
  if (s.empty()) {
    stmt.BindNull(index);
  } else {
    stmt.BindText(index, s);
  }
}

absl::StatusOr<DeadLetter> DecodeDeadLetter(const SqliteStatement& row) {
  DeadLetter letter;
  letter.projection = std::string(row.ColumnText(0));
  absl::StatusOr<Uuid> id = Uuid::FromBytes(row.ColumnBlob(1));
  if (!id.ok()) {
    return absl::DataLossError(
        absl::StrCat("sqlite: a dead letter of projection '", letter.projection,
                     "' has a corrupt event id"));
  }
  letter.event_id = *id;
  letter.stream = std::string(row.ColumnText(2));
  letter.version = row.ColumnInt64(3);
  letter.position =
      Position::FromParts(static_cast<uint64_t>(row.ColumnInt64(4)),
                          static_cast<uint64_t>(row.ColumnInt64(5)));
  letter.event_type = std::string(row.ColumnText(6));
  const std::string_view status = row.ColumnText(7);
  std::optional<DeadLetterStatus> parsed =
      internal::ParseDeadLetterStatus(status);
  if (!parsed.has_value()) {
    return absl::DataLossError(absl::StrCat(
        "sqlite: dead letter ", letter.event_id.ToString(), " of projection '",
        letter.projection, "' has unknown status '", std::string(status), "'"));
  }
  letter.status = *parsed;
  letter.error = std::string(row.ColumnText(8));
  letter.failure_count = static_cast<int32_t>(row.ColumnInt64(9));
  letter.first_failed_at = absl::FromUnixMicros(row.ColumnInt64(10));
  letter.last_failed_at = absl::FromUnixMicros(row.ColumnInt64(11));
  letter.resolved_by = std::string(row.ColumnText(12));
  letter.resolved_at = TimeOrPast(row, 13);
  return letter;
}

absl::StatusOr<OutboxEntry> DecodeOutboxEntry(const SqliteStatement& row) {
  OutboxEntry entry;
  entry.id = row.ColumnInt64(0);
  entry.message.destination = std::string(row.ColumnText(1));
  entry.message.key = std::string(row.ColumnText(2));
  entry.message.payload = std::string(row.ColumnBlob(3));
  if (!row.ColumnIsNull(4)) {
    const std::string_view bytes = row.ColumnBlob(4);
    v1::OutboxHeaders headers;
    if (!headers.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError(
          absl::StrCat("sqlite: outbox message ", entry.id,
                       " has corrupt headers (", bytes.size(), " bytes)"));
    }
    entry.message.headers.insert(headers.headers().begin(),
                                 headers.headers().end());
  }
  const std::string_view status = row.ColumnText(5);
  std::optional<OutboxStatus> parsed = internal::ParseOutboxStatus(status);
  if (!parsed.has_value()) {
    return absl::DataLossError(absl::StrCat("sqlite: outbox message ", entry.id,
                                            " has unknown status '",
                                            std::string(status), "'"));
  }
  entry.status = *parsed;
  entry.created_at = absl::FromUnixMicros(row.ColumnInt64(6));
  entry.attempts = static_cast<int32_t>(row.ColumnInt64(7));
  entry.last_error = std::string(row.ColumnText(8));
  entry.published_at = TimeOrPast(row, 9);
  entry.claimed_by = std::string(row.ColumnText(10));
  entry.lease_until = TimeOrPast(row, 11);
  return entry;
}

namespace {

// Steps `stmt` to its end, decoding each row with `decode`.
template <typename T>
absl::StatusOr<std::vector<T>> Collect(
    SqliteStatement& stmt,
    absl::StatusOr<T> (*decode)(const SqliteStatement& row)) {
  std::vector<T> out;
  while (true) {
    ES_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return out;
    ES_ASSIGN_OR_RETURN(T decoded, decode(stmt));
    out.push_back(std::move(decoded));
  }
}

}  // namespace

absl::StatusOr<std::vector<DeadLetter>> CollectDeadLetters(
    SqliteStatement& stmt) {
  return Collect(stmt, DecodeDeadLetter);
}

absl::StatusOr<std::vector<OutboxEntry>> CollectOutboxEntries(
    SqliteStatement& stmt) {
  return Collect(stmt, DecodeOutboxEntry);
}

}  // namespace eventstore::sqlite
