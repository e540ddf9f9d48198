// PgEventImporter: the EventImporter of a PostgreSQL schema (see
// eventstore/event_importer.h for the contract).
//
// Internal to the PostgreSQL backend. An import batch is one transaction on
// one pooled connection: a version check of the batch's streams, then one
// statement inserting the events and their position map, then the
// migration's progress. Imported events get the importing transaction's id,
// so a batch's events are consecutive in the global log and batches follow
// each other in the order they commit. The position map is the
// `migration_positions` table, the progress `migrations`, the store's
// identity the `store_id` row of `eventstore_meta` (schema 3).

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_EVENT_IMPORTER_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_EVENT_IMPORTER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/event_importer.h"

namespace eventstore::postgres {

class PgEventImporter final : public EventImporter {
 public:
  // `db` must outlive this object.
  explicit PgEventImporter(PgDatabase* db);

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
  // Runs `f(PgConnection&)` inside BEGIN ... COMMIT on one pooled
  // connection; rolls back when it fails.
  template <typename F>
  absl::Status InTransaction(F&& f);

  PgDatabase* const db_;
  const PgStatement store_id_;
  const PgStatement count_events_;
  const PgStatement count_tables_;
  const PgStatement list_dead_letters_;
  const PgStatement list_outbox_;
  const PgStatement list_snapshots_;
  const PgStatement get_migration_;
  const PgStatement list_migrations_;
  const PgStatement stream_versions_;
  const PgStatement import_events_;
  const PgStatement upsert_migration_;
  const PgStatement translate_;
  const PgStatement source_positions_;
  const PgStatement put_type_;
  const PgStatement put_checkpoint_;
  const PgStatement put_dead_letter_;
  const PgStatement put_snapshot_;
  const PgStatement put_outbox_keep_id_;
  const PgStatement put_outbox_new_id_;
  const PgStatement bump_outbox_ids_;
  const PgStatement list_stream_rows_;
  const PgStatement put_stream_row_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_EVENT_IMPORTER_H_
