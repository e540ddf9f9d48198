// PgStoreInspector: the StoreInspector of a PostgreSQL store
// (eventstore/store_inspector.h has the contract).
//
// Internal to the PostgreSQL backend. The location is the connection URL
// with its password masked and the schema as a parameter. Info's head is
// HeadPosition's (the last event of a transaction older than every running
// one); its counts are of committed rows, all from one statement. The size
// is pg_total_relation_size (tables, indexes, TOAST) summed over the
// schema's tables. Stream and type names sort as bytes (COLLATE "C"), as
// on SQLite, whatever the database's collation.
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_STORE_INSPECTOR_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_STORE_INSPECTOR_H_

#include <vector>

#include "absl/status/statusor.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/store_inspector.h"

namespace eventstore::postgres {

class PgStoreInspector final : public StoreInspector {
 public:
  // `db` must outlive this object.
  explicit PgStoreInspector(PgDatabase* db);

  absl::StatusOr<StoreInfo> Info(const InfoOptions& options) override;
  // kInvalidArgument for a negative limit.
  absl::StatusOr<std::vector<StreamSummary>> ListStreams(
      const ListStreamsOptions& options) override;
  absl::StatusOr<std::vector<RecordedType>> RecordedTypes() override;
  absl::StatusOr<Position> PositionBeforeLast(
      int64_t count, const ReadAllFilter& filter) override;

 private:
  PgDatabase* const db_;
  const PgStatement info_;
  const PgStatement info_estimates_;
  const PgStatement streams_sample_;
  const PgStatement head_;
  const PgStatement list_streams_;
  const PgStatement recorded_types_;
  const PgStatement position_before_last_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_STORE_INSPECTOR_H_
