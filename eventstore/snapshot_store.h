// SnapshotStore: saved aggregate states, so that loading replays only the
// events after the snapshot.
//
// One snapshot is kept per (stream, schema version): saving a newer one
// replaces it. Bumping the schema version of an aggregate's state makes the
// old snapshots invisible to Load, so they are never decoded into a new
// shape.

#ifndef EVENTSTORE_SNAPSHOT_STORE_H_
#define EVENTSTORE_SNAPSHOT_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace eventstore {

struct Snapshot {
  std::string stream;
  // The stream version the state includes.
  int64_t version = 0;
  // The state's protobuf full name and serialized bytes.
  std::string type;
  std::string state;
  // The aggregate's state schema version when it was taken.
  int32_t schema_version = 0;
  absl::Time taken_at;
};

class SnapshotStore {
 public:
  virtual ~SnapshotStore() = default;

  // Saves (replaces) the snapshot of (stream, schema_version), unless the
  // stored one has a higher version.
  virtual absl::Status Save(const Snapshot& snapshot) = 0;
  // The snapshot of `stream` taken with `schema_version`; nullopt when none.
  virtual absl::StatusOr<std::optional<Snapshot>> Load(
      std::string_view stream, int32_t schema_version) = 0;
  // Removes every snapshot of `stream`.
  virtual absl::Status Delete(std::string_view stream) = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_SNAPSHOT_STORE_H_
