#include "backends/postgres/pg_rows.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/status_macros.h"
#include "eventstore/v1/outbox.pb.h"

namespace eventstore::postgres {

// A NULL timestamp reads as absl::InfinitePast() (see PgResult::Timestamp).
absl::StatusOr<DeadLetter> DecodeDeadLetter(const PgResult& r, int row) {
  DeadLetter d;
  d.projection = std::string(r.Bytes(row, 0));
  absl::StatusOr<Uuid> id = Uuid::FromBytes(r.Bytes(row, 1));
  if (!id.ok()) {
    return absl::DataLossError(absl::StrCat("postgres: a dead letter of '",
                                            d.projection,
                                            "' has a corrupt event id"));
  }
  d.event_id = *id;
  d.stream = std::string(r.Bytes(row, 2));
  d.version = r.Int64(row, 3);
  d.position = Position::FromParts(r.Uint64(row, 4), r.Uint64(row, 5));
  d.event_type = std::string(r.Bytes(row, 6));
  const std::string_view status = r.Bytes(row, 7);
  std::optional<DeadLetterStatus> parsed =
      internal::ParseDeadLetterStatus(status);
  if (!parsed.has_value()) {
    return absl::DataLossError(absl::StrCat(
        "postgres: dead letter ", d.event_id.ToString(), " of '", d.projection,
        "' has unknown status '", std::string(status), "'"));
  }
  d.status = *parsed;
  d.error = std::string(r.Bytes(row, 8));
  d.failure_count = static_cast<int32_t>(r.Int64(row, 9));
  d.first_failed_at = r.Timestamp(row, 10);
  d.last_failed_at = r.Timestamp(row, 11);
  if (!r.IsNull(row, 12)) d.resolved_by = std::string(r.Bytes(row, 12));
  d.resolved_at = r.Timestamp(row, 13);
  return d;
}

absl::StatusOr<OutboxEntry> DecodeOutboxEntry(const PgResult& r, int row) {
  OutboxEntry e;
  e.id = r.Int64(row, 0);
  e.message.destination = std::string(r.Bytes(row, 1));
  e.message.key = std::string(r.Bytes(row, 2));
  e.message.payload = std::string(r.Bytes(row, 3));
  if (!r.IsNull(row, 4)) {
    const std::string_view bytes = r.Bytes(row, 4);
    v1::OutboxHeaders headers;
    if (!headers.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return absl::DataLossError(absl::StrCat("postgres: outbox message ", e.id,
                                              " has corrupt headers"));
    }
    e.message.headers.insert(headers.headers().begin(),
                             headers.headers().end());
  }
  const std::string_view status = r.Bytes(row, 5);
  std::optional<OutboxStatus> parsed = internal::ParseOutboxStatus(status);
  if (!parsed.has_value()) {
    return absl::DataLossError(absl::StrCat("postgres: outbox message ", e.id,
                                            " has unknown status '",
                                            std::string(status), "'"));
  }
  e.status = *parsed;
  e.created_at = r.Timestamp(row, 6);
  e.attempts = static_cast<int32_t>(r.Int64(row, 7));
  if (!r.IsNull(row, 8)) e.last_error = std::string(r.Bytes(row, 8));
  e.published_at = r.Timestamp(row, 9);
  if (!r.IsNull(row, 10)) e.claimed_by = std::string(r.Bytes(row, 10));
  e.lease_until = r.Timestamp(row, 11);
  return e;
}

namespace {

// Every row of `r`, decoded with `decode`.
template <typename T>
absl::StatusOr<std::vector<T>> DecodeAll(
    const PgResult& r,
    absl::StatusOr<T> (*decode)(const PgResult& r, int row)) {
  std::vector<T> out;
  out.reserve(r.rows());
  for (int row = 0; row < r.rows(); ++row) {
    ES_ASSIGN_OR_RETURN(T decoded, decode(r, row));
    out.push_back(std::move(decoded));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<DeadLetter>> DecodeDeadLetters(const PgResult& r) {
  return DecodeAll(r, DecodeDeadLetter);
}

absl::StatusOr<std::vector<OutboxEntry>> DecodeOutboxEntries(
    const PgResult& r) {
  return DecodeAll(r, DecodeOutboxEntry);
}

}  // namespace eventstore::postgres
