// PgCheckpointStore: the CheckpointStore of a PostgreSQL store (the
// `checkpoints` table; eventstore/checkpoint_store.h has the contract).
//
// Internal to the PostgreSQL backend. A position is kept as its two parts
// (position_commit, position_prepare). SaveIn writes on the connection of a
// PgSqlTransaction of the same database, inside its transaction. Lag
// counts the events after the checkpoint with ReadAll's filter and
// visibility rule (only transactions older than every running one), so it
// counts exactly what a reader resuming from the checkpoint would get.
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_CHECKPOINT_STORE_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_CHECKPOINT_STORE_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/checkpoint_store.h"

namespace eventstore::postgres {

class PgCheckpointStore final : public CheckpointStore {
 public:
  // `db` must outlive this object.
  explicit PgCheckpointStore(PgDatabase* db);

  absl::StatusOr<std::optional<Checkpoint>> Get(
      std::string_view projection) override;
  // Not repeated after a lost connection (the count would add up twice):
  // kUnavailable then means the outcome is unknown.
  absl::Status Save(std::string_view projection, Position position,
                    int64_t processed) override;
  // One statement that sets synchronous_commit off for its own transaction
  // (set_config(..., is_local = true)): the commit does not wait for the
  // WAL flush. Not repeated after a lost connection, as Save.
  absl::Status SaveNonDurable(std::string_view projection, Position position,
                              int64_t processed) override;
  // kInvalidArgument when `tx` is not a transaction of this database,
  // kFailedPrecondition when it has ended.
  absl::Status SaveIn(SqlTransaction& tx, std::string_view projection,
                      Position position, int64_t processed) override;
  absl::Status Reset(std::string_view projection) override;
  // Repeated after a lost connection (the first request is kept).
  absl::Status RequestRebuild(std::string_view projection,
                              std::string_view requested_by) override;
  absl::StatusOr<std::vector<Checkpoint>> List() override;
  absl::StatusOr<ProjectionLag> Lag(std::string_view projection,
                                    const ReadAllFilter& filter) override;

 private:
  PgDatabase* const db_;
  const PgStatement get_;
  const PgStatement save_;
  const PgStatement save_non_durable_;
  const PgStatement reset_;
  const PgStatement request_rebuild_;
  const PgStatement list_;
  const PgStatement lag_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_CHECKPOINT_STORE_H_
