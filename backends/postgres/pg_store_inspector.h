// PgStoreInspector: the StoreInspector of a PostgreSQL store
// (eventstore/store_inspector.h has the contract).
//
// Internal to the PostgreSQL backend. The location is the connection URL
// with its password masked and the schema as a parameter. Info's head is
// HeadPosition's (the last event of a transaction older than every running
// one); its counts are of committed rows, all from one statement. The size
// is pg_total_relation_size (tables, indexes, TOAST) summed over the
// schema's tables. Stream and type names sort as bytes (COLLATE "C"), as
// on SQLite, whatever the database's collation. CountEvents counts the
// events ReadAll can see (of transactions older than every running one),
// walking the primary key (transaction_id, position) over the range; events
// of deleted streams not yet scavenged count too. FindLeaseHolder looks
// for the lease's advisory lock (pg_lease.h) among the granted ones of
// this database in pg_locks, and for its session in pg_stat_activity;
// a role that is neither the holder's nor a member of pg_read_all_stats
// sees its pid and application name but not its address or start.
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_STORE_INSPECTOR_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_STORE_INSPECTOR_H_

#include <cstdint>
#include <optional>
#include <string_view>
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
  // 0 when `up_to` is not after `after`.
  absl::StatusOr<int64_t> CountEvents(Position after, Position up_to) override;
  // kInvalidArgument for an empty name.
  absl::StatusOr<std::optional<LeaseHolder>> FindLeaseHolder(
      std::string_view name) override;

 private:
  PgDatabase* const db_;
  const PgStatement info_;
  const PgStatement info_estimates_;
  const PgStatement streams_sample_;
  const PgStatement head_;
  const PgStatement list_streams_;
  const PgStatement recorded_types_;
  const PgStatement position_before_last_;
  const PgStatement count_events_;
  const PgStatement lease_holder_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_STORE_INSPECTOR_H_
