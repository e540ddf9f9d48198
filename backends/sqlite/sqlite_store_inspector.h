// SqliteStoreInspector: the StoreInspector of a SQLite database
// (eventstore/store_inspector.h has the contract).
//
// Internal to the SQLite backend. Info reads its counts in one read
// transaction, so they agree with each other; the size is the database
// file's plus its write-ahead log's (page_count * page_size for an
// in-memory database). Stream names compare as bytes (SQLite's BINARY
// collation), which is how ListStreams sorts and pages. CountEvents counts
// rows of the events table by their position (the primary key), so events
// of deleted streams not yet scavenged count too; FindLeaseHolder asks the
// database's SqliteLeases (sqlite_lease.h).
//
// Thread-safe: every call runs on a reader connection of the database.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_STORE_INSPECTOR_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_STORE_INSPECTOR_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/sqlite/sqlite_database.h"
#include "backends/sqlite/sqlite_lease.h"
#include "eventstore/store_inspector.h"

namespace eventstore::sqlite {

class SqliteStoreInspector final : public StoreInspector {
 public:
  // `db` and `leases` (the database's) must outlive this object.
  SqliteStoreInspector(SqliteDatabase* db, SqliteLeases* leases)
      : db_(db), leases_(leases) {}

  absl::StatusOr<StoreInfo> Info(const InfoOptions& options) override;
  // kInvalidArgument for a negative limit.
  absl::StatusOr<std::vector<StreamSummary>> ListStreams(
      const ListStreamsOptions& options) override;
  absl::StatusOr<std::vector<RecordedType>> RecordedTypes() override;
  absl::StatusOr<Position> PositionBeforeLast(
      int64_t count, const ReadAllFilter& filter) override;
  // Positions compare by their sequence number (commit()), as ReadAll's
  // do; 0 when `up_to` is not after `after`.
  absl::StatusOr<int64_t> CountEvents(Position after, Position up_to) override;
  absl::StatusOr<std::optional<LeaseHolder>> FindLeaseHolder(
      std::string_view name) override;

 private:
  SqliteDatabase* const db_;
  SqliteLeases* const leases_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_STORE_INSPECTOR_H_
