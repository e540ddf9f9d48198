// SqliteStoreInspector: the StoreInspector of a SQLite database
// (eventstore/store_inspector.h has the contract).
//
// Internal to the SQLite backend. Info reads its counts in one read
// transaction, so they agree with each other; the size is the database
// file's plus its write-ahead log's (page_count * page_size for an
// in-memory database). Stream names compare as bytes (SQLite's BINARY
// collation), which is how ListStreams sorts and pages.
//
// Thread-safe: every call runs on a reader connection of the database.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_STORE_INSPECTOR_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_STORE_INSPECTOR_H_

#include <vector>

#include "absl/status/statusor.h"
#include "backends/sqlite/sqlite_database.h"
#include "eventstore/store_inspector.h"

namespace eventstore::sqlite {

class SqliteStoreInspector final : public StoreInspector {
 public:
  // `db` must outlive this object.
  explicit SqliteStoreInspector(SqliteDatabase* db) : db_(db) {}

  absl::StatusOr<StoreInfo> Info(const InfoOptions& options) override;
  // kInvalidArgument for a negative limit.
  absl::StatusOr<std::vector<StreamSummary>> ListStreams(
      const ListStreamsOptions& options) override;
  absl::StatusOr<std::vector<RecordedType>> RecordedTypes() override;
  absl::StatusOr<Position> PositionBeforeLast(
      int64_t count, const ReadAllFilter& filter) override;

 private:
  SqliteDatabase* const db_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_STORE_INSPECTOR_H_
