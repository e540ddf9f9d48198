// EventImporter: raw access to a store for copying it to another store (the
// `eventstore migrate`, `export` and `import` commands).
//
// A migration writes the events of a source store into a target store
// exactly as they were recorded there (ids, streams, versions, types,
// payloads, metadata, recorded_at), in the source's global order; the
// target gives them new positions and records, in the same transaction, the
// source position of each event beside its new one, under a migration id
// (the source's StoreId()). So a migration that was interrupted resumes after
// the last source position it imported, a source position (a projection's
// checkpoint) translates into the target's, and a target that already holds
// events is recognised as an earlier run of the same migration.
//
//   EventImporter& source = source_store->importer();
//   EventImporter& target = target_store->importer();
//   ES_ASSIGN_OR_RETURN(std::string id, source.StoreId());
//   ES_ASSIGN_OR_RETURN(std::optional<MigrationState> state,
//                       target.GetMigration(id));
//   Position from = state ? state->last_source_position : Position::Start();
//   ... page = source_store->ReadAll({from, 1000});
//   ES_RETURN_IF_ERROR(target.ImportEvents(id, "sqlite:a.db", page.events));
//
// The listing methods read the store as a source; the Put* methods write it
// as a target, keeping every field given (they are for copies, not for
// applications: they bypass the repositories' rules). Every method is
// thread-safe.

#ifndef EVENTSTORE_EVENT_IMPORTER_H_
#define EVENTSTORE_EVENT_IMPORTER_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/position.h"
#include "eventstore/recorded_event.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/store_inspector.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/uuid.h"

namespace eventstore {

// What a target store knows of one migration into it.
struct MigrationState {
  // The source's StoreId().
  std::string migration_id;
  // Where the events came from (a URL with its password masked, or a file),
  // as given to the latest ImportEvents.
  std::string source;
  // The source position of the last imported event.
  Position last_source_position;
  // Events imported so far.
  int64_t events = 0;
  absl::Time started_at;
  absl::Time updated_at;
};

// Where a listing resumes: the key of the last row of the previous page.
struct DeadLetterCursor {
  std::string projection;
  Uuid event_id;
};
struct SnapshotCursor {
  std::string stream;
  int32_t schema_version = std::numeric_limits<int32_t>::min();
};

// A stream's row in the streams table (stream_lifecycle.h; the columns are
// listed in eventstore/internal/stream_rules.h): its deletion state,
// retention metadata and version floor, copied as they are so that a copy
// hides and refuses exactly what its source does.
struct StreamRowRecord {
  std::string stream;
  StreamStatus state = StreamStatus::kLive;
  StreamMetadata metadata;
  // The stream's version is at least this (a deletion's marker, or rows
  // Scavenge removed).
  int64_t version_floor = 0;
  std::optional<absl::Time> deleted_at;
  // When the row last changed (in its store's clock).
  absl::Time updated_at = absl::UnixEpoch();
};

// What PutCheckpoints, PutDeadLetters or PutOutboxEntries did with the rows
// they were given.
struct PutCounts {
  // Rows this store did not hold.
  int64_t added = 0;
  // Rows this store held in an earlier state, moved forward to the given one.
  int64_t updated = 0;
  // Rows this store holds at or ahead of the given one, left as they are
  // (a copy never moves a row backwards).
  int64_t kept = 0;
};

class EventImporter {
 public:
  virtual ~EventImporter() = default;

  // --- reading the store as a source ---------------------------------------

  // This store's identity: a UUID made when its schema was created. It
  // names migrations out of this store.
  virtual absl::StatusOr<std::string> StoreId() = 0;
  // How many events are at or before `up_to` in the global log.
  virtual absl::StatusOr<int64_t> CountEvents(Position up_to) = 0;
  // Rows of the other tables, for progress and export headers.
  struct TableCounts {
    int64_t checkpoints = 0;
    int64_t dead_letters = 0;
    int64_t outbox = 0;
    int64_t snapshots = 0;
    // Rows of the streams table (schema version 6; 0 before).
    int64_t stream_rows = 0;
    // Records of the key table (EventStore::subject_keys()), and those of
    // them that are forgotten (they hold no key).
    int64_t subject_keys = 0;
    int64_t forgotten_subjects = 0;
  };
  virtual absl::StatusOr<TableCounts> CountTables() = 0;
  // Pages of the other tables in key order, after the cursor (the start when
  // defaulted), at most `limit` rows; fewer means the end.
  virtual absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(
      const DeadLetterCursor& after, int limit) = 0;
  virtual absl::StatusOr<std::vector<OutboxEntry>> ListOutbox(int64_t after_id,
                                                              int limit) = 0;
  virtual absl::StatusOr<std::vector<Snapshot>> ListSnapshots(
      const SnapshotCursor& after, int limit) = 0;
  // Rows of the streams table with stream > `after`, in stream name order
  // (byte order), at most `limit` (1 or more); fewer means the end. This
  // default answers kUnimplemented (a store without a stream lifecycle).
  virtual absl::StatusOr<std::vector<StreamRowRecord>> ListStreamRows(
      std::string_view after, int limit);

  // --- writing the store as a target ----------------------------------------

  // The state of migration `migration_id` into this store; nullopt when no
  // event of it was imported.
  virtual absl::StatusOr<std::optional<MigrationState>> GetMigration(
      std::string_view migration_id) = 0;
  // Every migration into this store (a StoreReplica's copy is one), most
  // recently updated first; empty when none (`eventstore info`).
  virtual absl::StatusOr<std::vector<MigrationState>> ListMigrations() = 0;

  // Appends `events` (in the source's global order) atomically, keeping
  // their ids, streams, versions, types, payloads, metadata and recorded_at;
  // they get new positions in the order given. Records each event's source
  // position (event.position) against its new one under `migration_id`, and
  // the migration's progress, in the same transaction. Each event's version
  // must be above its stream's highest version in this store and in the
  // batch (kFailedPrecondition naming the event otherwise); gaps are
  // allowed, since a source leaves out what its deletions and retention
  // hide (and Scavenge removed). The streams table is neither read nor
  // written: PutStreamRows carries it. Events of reserved types (a
  // StreamDeleted marker) and encrypted payloads (metadata
  // .payload_encryption) are written as given, byte for byte; an event
  // whose payload was decrypted or dropped by a reader
  // (RecordedEvent::payload_state not kAsStored) is kInvalidArgument
  // naming it. An id already stored is kAlreadyExists.
  // Each event's checksum is recomputed and stored; an event that is
  // damaged (RecordedEvent::damaged()) or carries a checksum its fields do
  // not match is kDataLoss naming it, and a metadata string that is not
  // valid UTF-8 is kInvalidArgument naming the field.
  // Nothing is written on an error. `source` describes the source (no
  // password) for MigrationState.
  virtual absl::Status ImportEvents(std::string_view migration_id,
                                    std::string_view source,
                                    absl::Span<const RecordedEvent> events) = 0;

  // The position in this store of the last event of migration
  // `migration_id` whose source position is at or before `source_position`;
  // Position::Start() when there is none.
  virtual absl::StatusOr<Position> TranslatePosition(
      std::string_view migration_id, Position source_position) = 0;

  // The source positions of events of migration `migration_id` that this
  // store holds at `positions` (its own positions, in any order): one per
  // position given, in the same order; Position::Start() for a position
  // that holds no event of that migration. One index lookup each (schema
  // version 5 indexes migration_positions by this store's position).
  virtual absl::StatusOr<std::vector<Position>> SourcePositions(
      std::string_view migration_id, absl::Span<const Position> positions) = 0;
  // EventStore::ReadStream of this store with every event at its source
  // position under migration `migration_id`, when this store keeps source
  // positions beside its events and holds events of that migration only
  // (a replica): no lookup per event. kUnimplemented otherwise (the
  // caller maps positions with SourcePositions); kFailedPrecondition
  // naming an event read that is not a copy (appended here).
  virtual absl::StatusOr<std::vector<RecordedEvent>>
  ReadStreamAtSourcePositions(std::string_view migration_id,
                              std::string_view stream,
                              const ReadStreamOptions& options) {
    return absl::UnimplementedError(
        "ReadStreamAtSourcePositions: this store keeps no source positions");
  }

  // Records type descriptors that are not recorded yet (a recorded type is
  // left as it is).
  virtual absl::Status PutRecordedTypes(
      absl::Span<const RecordedType> types) = 0;
  // PutCheckpoints, PutDeadLetters and PutOutboxEntries insert the rows this
  // store does not hold, keeping every field (positions as given: translate
  // them first), and never move a row this store holds backwards, so that
  // copying again after this store went live (a re-run `migrate`) resends
  // nothing and undoes nothing. A held row is replaced by the given one only
  // when the given one is further along, atomically with respect to the
  // store's own writers (a publisher marking the same message):
  //  - a checkpoint: when the given position is after the held one;
  //  - a dead letter: when the held one is parked and the given one is
  //    retrying or resolved, or parked more often (failure_count); or the
  //    held one is retrying and the given one resolved. A resolved or
  //    retrying dead letter is never set back to parked;
  //  - an outbox entry (same id, same destination, key and payload): when
  //    the held one is pending and the given one published or failed. A
  //    published or failed (given up) entry is never set back to pending,
  //    and an entry holding another message under the same id is kept.
  // Every other held row is kept, and counted in PutCounts::kept.
  virtual absl::StatusOr<PutCounts> PutCheckpoints(
      absl::Span<const Checkpoint> checkpoints) = 0;
  virtual absl::StatusOr<PutCounts> PutDeadLetters(
      absl::Span<const DeadLetter> dead_letters) = 0;
  // Inserts or replaces, keeping every field.
  virtual absl::Status PutSnapshots(absl::Span<const Snapshot> snapshots) = 0;
  // With `keep_ids`, entries keep their ids (later enqueues get higher
  // ids); without, they get new ids in the order given (all added). Other
  // fields are kept either way.
  virtual absl::StatusOr<PutCounts> PutOutboxEntries(
      absl::Span<const OutboxEntry> entries, bool keep_ids) = 0;
  // Writes stream rows as given (a row this store does not hold is added),
  // atomically; the rows say nothing of events, which ImportEvents copies.
  // A held row never moves backwards: it is replaced only when the given
  // one changed later (updated_at) and the held one is not hard-deleted (a
  // hard deletion is final); the version floor never goes down. So a
  // re-run migration resends nothing and undoes no deletion made on the
  // target meanwhile. kInvalidArgument naming the row (rows[i]) for a bad
  // stream name, metadata out of range or a negative floor, writing
  // nothing. This default answers kUnimplemented.
  virtual absl::StatusOr<PutCounts> PutStreamRows(
      absl::Span<const StreamRowRecord> rows);
};

}  // namespace eventstore

#endif  // EVENTSTORE_EVENT_IMPORTER_H_
