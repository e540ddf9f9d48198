// Target: what a benchmark workload drives. Either our EventStore, or a raw
// baseline that writes and reads the very same rows through the database's
// own client API (raw sqlite3 or libpq calls), so that one run measures
// the ratio ours / raw.
//
// The workloads (workloads.h) are written once against this interface; a
// backend adds its benchmarks with two TargetFactory values:
//
//   TargetFactory store = []() -> absl::StatusOr<std::unique_ptr<Target>> {
//     ES_ASSIGN_OR_RETURN(std::shared_ptr<TempDir> dir, TempDir::Create());
//     ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> s, OpenFreshStore(*dir));
//     return MakeStoreTarget(std::move(s), std::move(dir));
//   };
//
// A Target is used by one thread; the concurrent workload (W5) gives each
// writer thread its own, from a WritersFactory.

#ifndef EVENTSTORE_BENCH_TARGET_H_
#define EVENTSTORE_BENCH_TARGET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/expected_version.h"
#include "eventstore/position.h"

namespace eventstore::bench {

// One append: the events of one transaction to one stream, built before
// the timed region starts.
struct Batch {
  std::string stream;
  // NoStream() or Exactly(n). The store checks it; a raw baseline only
  // derives the versions to write from it (n + 1, n + 2, ...).
  ExpectedVersion expected = ExpectedVersion::NoStream();
  std::vector<EventData> events;
  // events[i].metadata serialized, byte for byte what the store writes
  // (empty when the metadata is empty): a raw baseline binds these instead
  // of encoding in the timed region.
  std::vector<std::string> encoded_metadata;
};

// One page of the global log as a workload sees it.
struct PageResult {
  // Events in the page.
  int64_t events = 0;
  // Where the next page starts (exclusive).
  Position next_position;
  // Fewer than max_count events: the log is read to its end.
  bool end_of_log = false;
};

class Target {
 public:
  virtual ~Target() = default;

  // Appends `batch` in one transaction.
  virtual absl::Status Append(const Batch& batch) = 0;

  // Reads `stream` from its first event to its last; returns the number of
  // events read.
  virtual absl::StatusOr<int64_t> ReadStream(const std::string& stream) = 0;

  // Reads up to `max_count` events of the global log after `from`.
  virtual absl::StatusOr<PageResult> ReadAll(Position from,
                                             int64_t max_count) = 0;
};

// Makes a Target over a fresh, empty database for one benchmark run. The
// database (its files, its schema) goes away with the Target.
using TargetFactory = std::function<absl::StatusOr<std::unique_ptr<Target>>()>;

// Makes `writers` Targets over one fresh, empty database, one per writer
// thread (W5, the concurrent workload). The database goes away with the
// last of them.
using WritersFactory =
    std::function<absl::StatusOr<std::vector<std::unique_ptr<Target>>>(
        int writers)>;

// Opens a fresh, empty store of ours, for the workloads that use the rest
// of the library on it (projections, aggregates). The database (its files,
// its schema) goes away when the last copy of the pointer does.
using StoreFactory =
    std::function<absl::StatusOr<std::shared_ptr<EventStore>>()>;

// How a store target reads (W3, W4).
enum class ReadApi {
  // ReadStream and ReadAll: every event built into a new RecordedEvent, the
  // result destroyed after each read, as most applications read.
  kOwned,
  // ReadStreamInto and ReadAllInto into one buffer (one event vector, one
  // page) the target keeps from read to read, as a reader going through a
  // log page after page does.
  kInto,
};

// A Target over our `store`, which several targets may share (the store is
// thread-safe). `scratch` (may be null) is released only after the store is
// closed: the temporary directory holding its file, say.
std::unique_ptr<Target> MakeStoreTarget(std::shared_ptr<EventStore> store,
                                        std::shared_ptr<void> scratch,
                                        ReadApi read_api = ReadApi::kOwned);

// Targets over fresh stores from `open`, reading with `read_api`.
TargetFactory StoreTargetFactory(StoreFactory open, ReadApi read_api);

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_TARGET_H_
