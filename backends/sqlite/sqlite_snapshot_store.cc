#include "backends/sqlite/sqlite_snapshot_store.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {
namespace {

// Replaces the stored snapshot unless it has a higher version.
constexpr char kUpsert[] =
    "INSERT INTO snapshots (stream, schema_version, version, type, state, "
    "taken_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT (stream, schema_version) DO UPDATE SET "
    "version = excluded.version, type = excluded.type, "
    "state = excluded.state, taken_at = excluded.taken_at "
    "WHERE excluded.version >= snapshots.version";
constexpr char kLoad[] =
    "SELECT version, type, state, taken_at FROM snapshots "
    "WHERE stream = ?1 AND schema_version = ?2";
constexpr char kDelete[] = "DELETE FROM snapshots WHERE stream = ?1";

}  // namespace

absl::Status SqliteSnapshotStore::Save(const Snapshot& snapshot) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, snapshot.stream));
  if (snapshot.version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("version: ", snapshot.version, " is negative"));
  }
  if (snapshot.type.empty()) {
    return absl::InvalidArgumentError(
        "type: empty; give the state's protobuf full name");
  }
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kUpsert));
    stmt->BindText(1, snapshot.stream);
    stmt->BindInt64(2, snapshot.schema_version);
    stmt->BindInt64(3, snapshot.version);
    stmt->BindText(4, snapshot.type);
    stmt->BindBlob(5, snapshot.state);
    stmt->BindInt64(6, absl::ToUnixMicros(snapshot.taken_at));
    return stmt->Run();
  });
}

absl::StatusOr<std::optional<Snapshot>> SqliteSnapshotStore::Load(
    std::string_view stream, int32_t schema_version) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::optional<Snapshot>> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kLoad));
        stmt->BindText(1, stream);
        stmt->BindInt64(2, schema_version);
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        if (!row) return std::nullopt;
        Snapshot snapshot;
        snapshot.stream = std::string(stream);
        snapshot.schema_version = schema_version;
        snapshot.version = stmt->ColumnInt64(0);
        snapshot.type = std::string(stmt->ColumnText(1));
        snapshot.state = std::string(stmt->ColumnBlob(2));
        snapshot.taken_at = absl::FromUnixMicros(stmt->ColumnInt64(3));
        return snapshot;
      });
}

absl::Status SqliteSnapshotStore::Delete(std::string_view stream) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kDelete));
    stmt->BindText(1, stream);
    return stmt->Run();
  });
}

}  // namespace eventstore::sqlite
