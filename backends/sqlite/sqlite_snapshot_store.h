// SqliteSnapshotStore: the SnapshotStore of a SQLite database (the
// `snapshots` table, one row per (stream, schema_version); see
// eventstore/snapshot_store.h for the contract).
//
// Internal to the SQLite backend. Save is one upsert under the writer lock
// that keeps the stored row when its version is higher. taken_at is stored
// as given, in microseconds since the Unix epoch.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_SNAPSHOT_STORE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_SNAPSHOT_STORE_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/sqlite/sqlite_database.h"
#include "eventstore/snapshot_store.h"

namespace eventstore::sqlite {

class SqliteSnapshotStore final : public SnapshotStore {
 public:
  // `db` must outlive this object.
  explicit SqliteSnapshotStore(SqliteDatabase* db) : db_(db) {}

  absl::Status Save(const Snapshot& snapshot) override;
  absl::StatusOr<std::optional<Snapshot>> Load(std::string_view stream,
                                               int32_t schema_version) override;
  absl::Status Delete(std::string_view stream) override;

 private:
  SqliteDatabase* const db_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_SNAPSHOT_STORE_H_
