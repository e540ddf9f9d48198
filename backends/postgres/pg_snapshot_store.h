// PgSnapshotStore: the SnapshotStore of a PostgreSQL store (the `snapshots`
// table, keyed by (stream, schema_version); eventstore/snapshot_store.h
// has the contract).
//
// Internal to the PostgreSQL backend. Save is one upsert whose update
// applies only when the stored version is not higher, so racing savers
// leave the newest snapshot. taken_at is kept to the microsecond as given;
// an unset one (the Unix epoch, or an infinite time) becomes the server's
// now().
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_SNAPSHOT_STORE_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_SNAPSHOT_STORE_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/snapshot_store.h"

namespace eventstore::postgres {

class PgSnapshotStore final : public SnapshotStore {
 public:
  // `db` must outlive this object.
  explicit PgSnapshotStore(PgDatabase* db);

  // kInvalidArgument for a malformed stream name or a negative version.
  absl::Status Save(const Snapshot& snapshot) override;
  absl::StatusOr<std::optional<Snapshot>> Load(std::string_view stream,
                                               int32_t schema_version) override;
  absl::Status Delete(std::string_view stream) override;

 private:
  PgDatabase* const db_;
  const PgStatement save_;
  const PgStatement load_;
  const PgStatement delete_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_SNAPSHOT_STORE_H_
