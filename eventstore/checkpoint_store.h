// CheckpointStore: where each projection has got to in the global log.
//
//   ES_ASSIGN_OR_RETURN(std::optional<Checkpoint> cp,
//                       store->checkpoints().Get("order-totals"));
//   Position from = cp ? cp->position : Position::Start();
//   ...
//   ES_RETURN_IF_ERROR(store->checkpoints().Save("order-totals", last, n));

#ifndef EVENTSTORE_CHECKPOINT_STORE_H_
#define EVENTSTORE_CHECKPOINT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/position.h"
#include "eventstore/sql_transaction.h"

namespace eventstore {

struct Checkpoint {
  std::string projection;
  // The last event the projection has processed.
  Position position;
  // Events processed since the checkpoint was created or reset.
  int64_t events_processed = 0;
  absl::Time updated_at;
  // Set while a rebuild was requested (RequestRebuild) and no runner has
  // started it yet.
  std::optional<absl::Time> rebuild_requested_at;
  std::string rebuild_requested_by;
};

// How far a projection is behind the head of the log.
struct ProjectionLag {
  std::string projection;
  // The checkpoint's position (Start() when there is none).
  Position checkpoint;
  // Events after the checkpoint that pass the projection's filter.
  int64_t events_behind = 0;
  // recorded_at of the newest such event minus recorded_at of the event
  // at the checkpoint (or of the oldest such event when there is no
  // checkpoint); zero when caught up.
  absl::Duration time_behind;
};

class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;

  // nullopt when the projection has no checkpoint.
  virtual absl::StatusOr<std::optional<Checkpoint>> Get(
      std::string_view projection) = 0;
  // Sets the position (last write wins) and adds `processed` to the count.
  virtual absl::Status Save(std::string_view projection, Position position,
                            int64_t processed) = 0;
  // The same, but the commit need not be durable: once it returns, the
  // checkpoint is saved and visible to every reader, but a crash of the
  // database server or machine soon after may lose it, leaving an earlier
  // checkpoint (never a later one, never a torn one). For at-least-once
  // consumers, which a lost checkpoint only redelivers a batch to:
  // ProjectionRunner saves a plain Projection's checkpoints so. PostgreSQL
  // commits it with synchronous_commit off (no wait for the WAL flush);
  // the default, and SQLite's, is Save.
  virtual absl::Status SaveNonDurable(std::string_view projection,
                                      Position position, int64_t processed) {
    return Save(projection, position, processed);
  }
  // The same as Save, inside `tx` (a transaction of this store's database), so
  // that it commits with the read model's writes.
  virtual absl::Status SaveIn(SqlTransaction& tx, std::string_view projection,
                              Position position, int64_t processed) = 0;
  // Removes the checkpoint: the projection starts over from the start.
  // Removes a pending rebuild request with it.
  virtual absl::Status Reset(std::string_view projection) = 0;
  // Asks the projection's runner to rebuild: clear its read model and
  // replay from the start (ProjectionRunner::Rebuild). A running runner
  // starts it between batches; otherwise the next runner to start does.
  // Creates the checkpoint row (at the start) when there is none.
  // `requested_by` is recorded (an operator's name; non-empty,
  // kInvalidArgument otherwise). Requesting again keeps the first request.
  virtual absl::Status RequestRebuild(std::string_view projection,
                                      std::string_view requested_by) = 0;
  // Every checkpoint, sorted by projection name, with pending rebuild
  // requests.
  virtual absl::StatusOr<std::vector<Checkpoint>> List() = 0;
  // The projection's lag, counting only events that pass `filter`.
  virtual absl::StatusOr<ProjectionLag> Lag(std::string_view projection,
                                            const ReadAllFilter& filter) = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_CHECKPOINT_STORE_H_
