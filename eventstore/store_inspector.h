// StoreInspector: what a store holds, for tools and operators (the
// `eventstore` command-line tool's info, streams and rendering).
//
//   eventstore::StoreInspector& inspector = store->inspector();
//   absl::StatusOr<eventstore::StoreInfo> info = inspector.Info();
//   // info->events: exact below a million events, else estimated
//   // (info->counts_estimated); InfoOptions::exact_count_limit says.
//   eventstore::ListStreamsOptions options;
//   options.prefix = "order-";
//   absl::StatusOr<std::vector<eventstore::StreamSummary>> streams =
//       inspector.ListStreams(options);
//
// Every method is thread-safe and reads only.

#ifndef EVENTSTORE_STORE_INSPECTOR_H_
#define EVENTSTORE_STORE_INSPECTOR_H_

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

namespace eventstore {

// Who holds a lease (EventStore::TryAcquireLease), as far as the database
// can tell (StoreInspector::FindLeaseHolder).
struct LeaseHolder {
  // The holding process: its id on the database host (PostgreSQL: the
  // server process of the holder's connection) or on this host (SQLite:
  // the process holding the lock file).
  int64_t pid = 0;
  // What else is known, for people: PostgreSQL's application_name, client
  // address and since when the connection is open; empty on SQLite.
  std::string detail;
};

struct StoreInfo {
  // "sqlite" or "postgres".
  std::string backend;
  // Where the store lives, with any password masked ("***").
  std::string location;
  // The schema version of the database, and the newest this code knows.
  int schema_version = 0;
  int code_schema_version = 0;
  int64_t streams = 0;
  int64_t events = 0;
  // True when `events` and `streams` are estimates (InfoOptions). Events:
  // SQLite counts the positions between the first and the last event (an
  // upper bound once events were deleted or scavenged), PostgreSQL takes
  // the planner's pg_class.reltuples (as of the last ANALYZE). Streams:
  // both estimate them from a sample of about 2,000 events, each weighed
  // by its stream's length (events times the mean of 1/length).
  bool counts_estimated = false;
  // The last event's position; Position::Start() when the log is empty.
  Position head;
  // Bytes the store takes on disk (SQLite: the file, WAL included;
  // PostgreSQL: the schema's tables and indexes).
  int64_t size_bytes = 0;
};

struct InfoOptions {
  // Events and streams are counted exactly when the store holds fewer than
  // this many events (by a bound the database gives at once: SQLite's first
  // and last positions, PostgreSQL's statistics), and estimated above it,
  // where counting takes seconds (StoreInfo::counts_estimated). 0: estimate
  // whenever the database can; INT64_MAX: always count. PostgreSQL counts
  // a table it has no statistics of yet (never analyzed).
  int64_t exact_count_limit = 1000000;
};

struct StreamSummary {
  std::string stream;
  // The stream's version: its number of events.
  int64_t version = 0;
  absl::Time first_recorded_at;
  absl::Time last_recorded_at;
};

struct ListStreamsOptions {
  // Only streams whose name starts with this.
  std::string prefix;
  // Exclusive: streams sorted after this name (for paging).
  std::string after;
  // Most streams returned.
  int64_t limit = 1000;
};

// A protobuf type the store recorded the first time an event of it was
// appended.
struct RecordedType {
  // The protobuf full name.
  std::string type;
  // A serialized google.protobuf.FileDescriptorSet holding the type's file
  // and everything it imports.
  std::string descriptor_set;
  absl::Time recorded_at;
};

class StoreInspector {
 public:
  virtual ~StoreInspector() = default;

  virtual absl::StatusOr<StoreInfo> Info(const InfoOptions& options) = 0;
  absl::StatusOr<StoreInfo> Info() { return Info(InfoOptions()); }

  // Streams sorted by name.
  virtual absl::StatusOr<std::vector<StreamSummary>> ListStreams(
      const ListStreamsOptions& options) = 0;

  // Every recorded type, sorted by type name.
  virtual absl::StatusOr<std::vector<RecordedType>> RecordedTypes() = 0;

  // Where ReadAll starts to return the last `count` events that pass
  // `filter`: the position of the one before them, or Position::Start()
  // when no more than `count` match. One indexed query, however long the
  // log (`eventstore tail`). kInvalidArgument for a negative count.
  virtual absl::StatusOr<Position> PositionBeforeLast(
      int64_t count, const ReadAllFilter& filter) = 0;

  // How many events have a position after `after` and at most `up_to`,
  // counted through the position index: the cost grows with the count,
  // not with the log (the console's events-per-second chart, between two
  // heads of PositionBeforeLast(0, {})). 0 when `up_to` is not after
  // `after`. PostgreSQL counts only events ReadAll can already see (as
  // HeadPosition does); events ReadAll hides (of a stream deleted softly
  // or truncated, not yet scavenged) are counted. This default answers
  // kUnimplemented; the backends override it.
  virtual absl::StatusOr<int64_t> CountEvents(Position after, Position up_to);

  // Who holds the lease `name` now, or nullopt when nobody does. Reads
  // only: it never takes the lease, not even for a moment (PostgreSQL:
  // pg_locks and pg_stat_activity; SQLite file: the lease file's flock()
  // in /proc/locks, Linux only; SQLite ":memory:": this process while the
  // store holds the name). kInvalidArgument for an empty name. This
  // default answers kUnimplemented; the backends override it.
  virtual absl::StatusOr<std::optional<LeaseHolder>> FindLeaseHolder(
      std::string_view name);
};

inline absl::StatusOr<int64_t> StoreInspector::CountEvents(Position, Position) {
  return absl::UnimplementedError("this store cannot count events");
}

inline absl::StatusOr<std::optional<LeaseHolder>>
StoreInspector::FindLeaseHolder(std::string_view) {
  return absl::UnimplementedError("this store cannot tell lease holders");
}

}  // namespace eventstore

#endif  // EVENTSTORE_STORE_INSPECTOR_H_
