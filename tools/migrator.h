// Migrator: copies a store (or an export file) into another store, in
// batches, resumably (`eventstore migrate`, `eventstore import`).
//
//   ES_ASSIGN_OR_RETURN(auto from, OpenStore("sqlite:events.db"));
//   ES_ASSIGN_OR_RETURN(auto to, OpenStore("postgresql://app@db/shop"));
//   StoreSource source(*from, "sqlite:events.db");
//   MigrateOptions options;
//   Migrator migrator(options, std::cerr);
//   ES_ASSIGN_OR_RETURN(MigrationReport report,
//                       migrator.Run(source, *to, "postgresql://app@db/shop"));
//
// Events are read in the source's global order, a batch at a time, and each
// batch is imported in one transaction of the target together with its
// position map and the migration's progress (EventImporter::ImportEvents),
// so memory stays flat and a run that was killed at any moment continues
// where it stopped, duplicating and losing nothing. A target that already
// holds events and is not an earlier run of the same migration (named by the
// source's store id) is refused unless `force`. Recorded types always come
// along; dead letters, outbox entries and snapshots unless `events_only`;
// checkpoints (translated through the position map) only those selected by
// `checkpoints` (none by default: a projection whose read model lives in the
// source's database would otherwise resume on the target over an empty read
// model; without its checkpoint it rebuilds from the start). A copy never
// moves a checkpoint, dead letter or outbox entry the target holds backwards
// (EventImporter::PutCheckpoints), so running it again after the target went
// live resends nothing; what it left alone is counted in the report. A
// pending rebuild request (CheckpointStore::RequestRebuild) is not carried
// with its checkpoint: it asked the source's runners, and carrying it would
// rebuild the target's projection again on every re-run of the copy; the
// report names the projections whose request was dropped.

#ifndef EVENTSTORE_TOOLS_MIGRATOR_H_
#define EVENTSTORE_TOOLS_MIGRATOR_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/event_importer.h"
#include "eventstore/event_store.h"
#include "eventstore/subject_key_store.h"

namespace eventstore::tools {

// Where a migration reads from. Callers read the parts in this order:
// events (NextEvents until it returns none), stream rows, subject keys,
// types, checkpoints, dead letters, outbox entries, snapshots (a file source
// can only go forward); any part after the events may be left out.
class MigrationSource {
 public:
  virtual ~MigrationSource() = default;

  // For messages and MigrationState::source; no password.
  virtual const std::string& description() const = 0;
  // The source store's identity: the migration's id.
  virtual absl::StatusOr<std::string> StoreId() = 0;
  // How many events are after `after` (for progress); nullopt when unknown.
  virtual absl::StatusOr<std::optional<int64_t>> EventsAfter(
      Position after) = 0;
  // The next events after `after` in global order, at most `max`; none at
  // the end. A damaged event (RecordedEvent::damaged()) is never returned:
  // the events before it are, then kDataLoss naming it.
  virtual absl::StatusOr<std::vector<RecordedEvent>> NextEvents(Position after,
                                                                int max) = 0;
  // The rows of the streams table (deletions, retention, version floors),
  // calling `page` with consecutive pages until the end.
  virtual absl::Status StreamRows(
      const std::function<absl::Status(absl::Span<const StreamRowRecord>)>&
          page) = 0;
  // The records of the key table (subject_key_store.h) in subject order,
  // calling `page` with consecutive pages: every record when `with_keys`,
  // else only the forgotten ones (they hold no key). `live_left_out` counts
  // the live records left out. A source without a key table has none.
  virtual absl::Status SubjectKeys(
      bool with_keys,
      const std::function<absl::Status(const std::vector<SubjectKeyRecord>&)>&
          page,
      int64_t& live_left_out) = 0;
  virtual absl::StatusOr<std::vector<RecordedType>> Types() = 0;
  virtual absl::StatusOr<std::vector<Checkpoint>> Checkpoints() = 0;
  // Each calls `page` with consecutive pages until the end.
  virtual absl::Status DeadLetters(
      const std::function<absl::Status(absl::Span<const DeadLetter>)>&
          page) = 0;
  virtual absl::Status Outbox(
      const std::function<absl::Status(absl::Span<const OutboxEntry>)>&
          page) = 0;
  virtual absl::Status Snapshots(
      const std::function<absl::Status(absl::Span<const Snapshot>)>& page) = 0;
};

// A store as a source. With `up_to`, events after it are left out (an
// export stops at the head it counted); otherwise reading goes on until the
// log's end.
class StoreSource final : public MigrationSource {
 public:
  // `store` must outlive this object.
  StoreSource(EventStore& store, std::string description,
              std::optional<Position> up_to = std::nullopt)
      : store_(store), description_(std::move(description)), up_to_(up_to) {}

  const std::string& description() const override { return description_; }
  absl::StatusOr<std::string> StoreId() override;
  absl::StatusOr<std::optional<int64_t>> EventsAfter(Position after) override;
  absl::StatusOr<std::vector<RecordedEvent>> NextEvents(Position after,
                                                        int max) override;
  // Empty, with a warning on `warnings`, when the store cannot list its
  // types.
  absl::Status StreamRows(
      const std::function<absl::Status(absl::Span<const StreamRowRecord>)>&
          page) override;
  absl::Status SubjectKeys(
      bool with_keys,
      const std::function<absl::Status(const std::vector<SubjectKeyRecord>&)>&
          page,
      int64_t& live_left_out) override;
  absl::StatusOr<std::vector<RecordedType>> Types() override;
  absl::StatusOr<std::vector<Checkpoint>> Checkpoints() override;
  absl::Status DeadLetters(
      const std::function<absl::Status(absl::Span<const DeadLetter>)>& page)
      override;
  absl::Status Outbox(
      const std::function<absl::Status(absl::Span<const OutboxEntry>)>& page)
      override;
  absl::Status Snapshots(
      const std::function<absl::Status(absl::Span<const Snapshot>)>& page)
      override;

  // Rows per page of the other tables.
  static constexpr int kPageSize = 500;

 private:
  EventStore& store_;
  const std::string description_;
  const std::optional<Position> up_to_;
};

// Which projections' checkpoints a copy carries (--checkpoints).
struct CheckpointSelection {
  enum class Mode { kNone, kAll, kNamed };
  Mode mode = Mode::kNone;
  // The projections carried when kNamed.
  std::vector<std::string> names;

  bool Includes(const std::string& projection) const;
};

// "none", "all" or "NAME[,NAME...]"; kInvalidArgument naming the flag for
// an empty text or an empty name.
absl::StatusOr<CheckpointSelection> ParseCheckpointSelection(
    const std::string& text);

struct MigrateOptions {
  // Events per batch (one target transaction each). Default 1,000: larger
  // batches are slightly faster and hold more memory.
  int batch_size = 1000;
  // Copy only events and recorded types, not checkpoints, dead letters,
  // outbox entries and snapshots. Default false.
  bool events_only = false;
  // The checkpoints to carry. Default none: projections rebuild from the
  // start on the target, which is right when their read models live in the
  // source's database (they are not copied); carry them when the read
  // models live elsewhere, or were copied too. A warning names the
  // projections that will rebuild.
  CheckpointSelection checkpoints;
  // Copy into a target that holds events of its own. Default false: such a
  // target is refused (kFailedPrecondition).
  bool force = false;
  // Copy the key table's live records (wrapped data keys) too
  // (--with-keys). Default false: only forgotten subjects' records are
  // copied (they hold no key, and keep the subjects forgotten on the
  // target); the target cannot decrypt the other subjects' events, and a
  // warning says how many subjects' keys were left out.
  bool with_keys = false;
  // No progress and no summary (warnings still print). Default false.
  bool quiet = false;
  // Progress as a bar redrawn in place (a terminal) rather than a line
  // every `progress_interval`. Default: whether stderr is a terminal.
  std::optional<bool> progress_bar;
  absl::Duration progress_interval = absl::Seconds(2);
  // The command's name in messages ("migrate", "import").
  std::string command = "migrate";
};

struct MigrationReport {
  std::string migration_id;
  // Events copied by this run, and by earlier runs of the same migration.
  int64_t events_copied = 0;
  int64_t events_before = 0;
  int64_t types = 0;
  // Rows written to the target (added, or moved forward).
  int64_t checkpoints = 0;
  int64_t dead_letters = 0;
  int64_t outbox_entries = 0;
  int64_t snapshots = 0;
  // Stream rows written (added, or moved forward) and left as they were
  // (the target's is as recent, or hard-deleted).
  int64_t stream_rows = 0;
  int64_t stream_rows_kept = 0;
  // Key-table records written (forgotten ones included), the forgotten
  // ones among those copied, and live ones left out (no --with-keys).
  int64_t subject_keys = 0;
  int64_t forgotten_subjects = 0;
  int64_t subject_keys_left_out = 0;
  // Rows the target holds at or ahead of the source's, left as they were.
  int64_t checkpoints_kept = 0;
  int64_t dead_letters_kept = 0;
  int64_t outbox_kept = 0;
  // Source checkpoints not carried (not selected by --checkpoints): the
  // projections that rebuild from the start on the target (it has no
  // checkpoint of theirs), and those that keep the target's own.
  std::vector<std::string> rebuilt_projections;
  std::vector<std::string> projections_on_target;
  // Names given to --checkpoints that have no checkpoint in the source.
  std::vector<std::string> unknown_projections;
  // Carried checkpoints whose pending rebuild request was dropped: "name
  // (requested by NAME)".
  std::vector<std::string> rebuild_requests_dropped;
  // True when the run continued an earlier one.
  bool resumed = false;
  absl::Duration elapsed;
};

class Migrator {
 public:
  // Progress and summaries go to `progress` (stderr in the tool).
  Migrator(MigrateOptions options, std::ostream& progress)
      : options_(std::move(options)), progress_(progress) {}

  // Copies `source` into `target`; `target_description` (no password) is for
  // messages.
  absl::StatusOr<MigrationReport> Run(MigrationSource& source,
                                      EventStore& target,
                                      const std::string& target_description);

 private:
  // The streams table and the key table, after the events (always, even
  // with events_only: they decide what the events' readers see).
  absl::Status CopyLifecycle(MigrationSource& source, EventStore& target,
                             MigrationReport& report);
  absl::Status CopyRest(MigrationSource& source, EventStore& target,
                        const std::string& migration_id, bool keep_outbox_ids,
                        MigrationReport& report);
  absl::Status CopyCheckpoints(MigrationSource& source, EventStore& target,
                               const std::string& migration_id,
                               MigrationReport& report);
  // The lines after the summary: what was skipped, what was not carried.
  void PrintNotes(const MigrationReport& report);

  const MigrateOptions options_;
  std::ostream& progress_;
};

// One stream's side of a verification.
struct StreamDigest {
  int64_t events = 0;
  // CRC-64 over (id, type, payload, metadata, version) of its events in
  // version order.
  uint64_t checksum = 0;
};

// Compares `source` and `target` stream by stream (event counts and
// checksums of what ReadAll returns: deleted and retention-hidden events
// left out, deletion markers in) reading both logs once, and their stream
// rows (state, metadata, version floor); writes each difference to `out`
// (at most `max_reported` lines, then a count). True when they hold the
// same streams with the same events and rows.
absl::StatusOr<bool> VerifyCopy(EventStore& source, EventStore& target,
                                std::ostream& out, int max_reported = 20);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_MIGRATOR_H_
