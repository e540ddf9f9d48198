#include "backends/sqlite/sqlite_event_rows.h"

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/internal/event_checksum.h"
#include "eventstore/status_macros.h"
#include "eventstore/uuid.h"

namespace eventstore::sqlite {
namespace {

// Copies `value` into `out`, reusing out's buffer.
void AssignTo(std::string& out, std::string_view value) {
  out.assign(value.data(), value.size());
}

}  // namespace

void DecodeRowInto(const SqliteStatement& row, bool verify,
                   RecordedEvent& event) {
  event.position = Position::At(static_cast<uint64_t>(row.ColumnInt64(0)));
  AssignTo(event.stream, row.ColumnText(2));
  event.version = row.ColumnInt64(3);
  AssignTo(event.type, row.ColumnText(4));
  AssignTo(event.payload, row.ColumnBlob(5));
  event.recorded_at = absl::FromUnixMicros(row.ColumnInt64(7));
  if (row.ColumnIsNull(8)) {
    event.checksum.reset();
  } else {
    event.checksum = static_cast<uint32_t>(row.ColumnInt64(8));
  }
  // What an event reused from an earlier read may still carry.
  if (!event.damage.ok()) event.damage = absl::OkStatus();
  event.payload_state = PayloadState::kAsStored;
  const std::string_view id_bytes = row.ColumnBlob(1);
  absl::StatusOr<Uuid> id = Uuid::FromBytes(id_bytes);
  if (!id.ok()) {
    event.id = Uuid();
    event.metadata.Clear();
    internal::MarkDamaged(
        "sqlite", absl::StrCat("its id is corrupt: ", id.status().message()),
        event);
    return;
  }
  event.id = *id;
  const std::string_view metadata = row.ColumnBlob(6);
  // ParseFromArray clears first; Clear() keeps the strings' buffers.
  if (metadata.empty()) {
    event.metadata.Clear();
  } else if (!event.metadata.ParseFromArray(
                 metadata.data(), static_cast<int>(metadata.size()))) {
    event.metadata.Clear();
    internal::MarkDamaged("sqlite",
                          absl::StrCat("its metadata does not parse (",
                                       metadata.size(), " bytes)"),
                          event);
    return;
  }
  if (verify) {
    internal::VerifyStoredChecksum("sqlite", id_bytes, metadata, event);
  }
}

absl::Status CollectRows(SqliteStatement& stmt, bool verify,
                         std::vector<RecordedEvent>& out) {
  while (true) {
    ES_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::OkStatus();
    DecodeRowInto(stmt, verify, out.emplace_back());
  }
}

absl::Status CollectRowsReusing(SqliteStatement& stmt, bool verify,
                                std::vector<RecordedEvent>& out, size_t* rows) {
  while (true) {
    ES_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::OkStatus();
    DecodeRowInto(stmt, verify,
                  *rows < out.size() ? out[*rows] : out.emplace_back());
    ++*rows;
  }
}

}  // namespace eventstore::sqlite
