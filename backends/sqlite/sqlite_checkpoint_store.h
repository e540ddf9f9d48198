// SqliteCheckpointStore: the CheckpointStore of a SQLite database (the
// `checkpoints` table; see eventstore/checkpoint_store.h for the contract).
//
// Internal to the SQLite backend. Save runs under the database's writer
// lock; SaveIn writes on the connection of a SqliteSqlTransaction of the
// same database, which holds that lock already. Lag reads the checkpoint
// and counts the events after it in one read transaction, with the same
// filter as ReadAll (SqliteEventFilter).

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_CHECKPOINT_STORE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_CHECKPOINT_STORE_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_database.h"
#include "eventstore/checkpoint_store.h"

namespace eventstore::sqlite {

class SqliteCheckpointStore final : public CheckpointStore {
 public:
  // `db` must outlive this object.
  explicit SqliteCheckpointStore(SqliteDatabase* db) : db_(db) {}

  absl::StatusOr<std::optional<Checkpoint>> Get(
      std::string_view projection) override;
  absl::Status Save(std::string_view projection, Position position,
                    int64_t processed) override;
  // kInvalidArgument when `tx` is not a transaction of this database.
  absl::Status SaveIn(SqlTransaction& tx, std::string_view projection,
                      Position position, int64_t processed) override;
  absl::Status Reset(std::string_view projection) override;
  absl::Status RequestRebuild(std::string_view projection,
                              std::string_view requested_by) override;
  absl::StatusOr<std::vector<Checkpoint>> List() override;
  absl::StatusOr<ProjectionLag> Lag(std::string_view projection,
                                    const ReadAllFilter& filter) override;

 private:
  SqliteDatabase* const db_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_CHECKPOINT_STORE_H_
