// SqliteEventImporter: the EventImporter of a SQLite database (see
// eventstore/event_importer.h for the contract).
//
// Internal to the SQLite backend. Imports run in one write transaction per
// batch under the writer lock; the position map is the
// `migration_positions` table, the migrations' progress `migrations`, the
// store's identity the `store_id` row of `eventstore_meta` (schema 3).

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_IMPORTER_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_IMPORTER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/sqlite/sqlite_database.h"
#include "eventstore/event_importer.h"

namespace eventstore::sqlite {

class SqliteEventImporter final : public EventImporter {
 public:
  // `db` must outlive this object.
  explicit SqliteEventImporter(SqliteDatabase* db) : db_(db) {}

  absl::StatusOr<std::string> StoreId() override;
  absl::StatusOr<int64_t> CountEvents(Position up_to) override;
  absl::StatusOr<TableCounts> CountTables() override;
  absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(
      const DeadLetterCursor& after, int limit) override;
  absl::StatusOr<std::vector<OutboxEntry>> ListOutbox(int64_t after_id,
                                                      int limit) override;
  absl::StatusOr<std::vector<Snapshot>> ListSnapshots(
      const SnapshotCursor& after, int limit) override;
  absl::StatusOr<std::vector<StreamRowRecord>> ListStreamRows(
      std::string_view after, int limit) override;

  absl::StatusOr<std::optional<MigrationState>> GetMigration(
      std::string_view migration_id) override;
  absl::StatusOr<std::vector<MigrationState>> ListMigrations() override;
  absl::Status ImportEvents(std::string_view migration_id,
                            std::string_view source,
                            absl::Span<const RecordedEvent> events) override;
  absl::StatusOr<Position> TranslatePosition(std::string_view migration_id,
                                             Position source_position) override;
  absl::StatusOr<std::vector<Position>> SourcePositions(
      std::string_view migration_id,
      absl::Span<const Position> positions) override;
  absl::StatusOr<std::vector<RecordedEvent>> ReadStreamAtSourcePositions(
      std::string_view migration_id, std::string_view stream,
      const ReadStreamOptions& options) override;
  absl::Status PutRecordedTypes(absl::Span<const RecordedType> types) override;
  absl::StatusOr<PutCounts> PutCheckpoints(
      absl::Span<const Checkpoint> checkpoints) override;
  absl::StatusOr<PutCounts> PutDeadLetters(
      absl::Span<const DeadLetter> dead_letters) override;
  absl::Status PutSnapshots(absl::Span<const Snapshot> snapshots) override;
  absl::StatusOr<PutCounts> PutOutboxEntries(
      absl::Span<const OutboxEntry> entries, bool keep_ids) override;
  absl::StatusOr<PutCounts> PutStreamRows(
      absl::Span<const StreamRowRecord> rows) override;

 private:
  SqliteDatabase* const db_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_IMPORTER_H_
