// StoreReplica: a local store that follows the primary's global log.
//
// A StoreReplica copies the events of a primary store (PostgreSQL, say)
// into a replica store (a local SQLite file) exactly as they were recorded
// there: ids, streams, versions, types, payloads, metadata and recorded_at,
// through the replica's EventImporter, which also records each event's
// primary position beside its replica position (the migration named by the
// primary's StoreId()). Optionally only streams with given prefixes are
// copied, so that an edge device keeps what it needs.
//
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> local,
//                       OpenEventStore("sqlite:/var/lib/app/replica.db"));
//   ReplicaOptions options;
//   options.stream_prefixes = {"order-", "customer-"};
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<StoreReplica> replica,
//                       StoreReplica::Create(*primary, *local, options));
//   ES_RETURN_IF_ERROR(replica->Start());  // follows the log in background
//   ...
//   ReplicaStatus status = replica->Status();  // position, lag, last error
//   local->ReadStream("order-1");              // reads the copy
//
// Resuming: each batch of events is imported in one transaction of the
// replica together with the primary position of its last event, and the
// next read starts after the position ReadAll returned (the projections'
// gap-free rule, docs/projections.md). So a replica stopped or killed at any
// moment resumes where its last batch committed, copying nothing twice and
// missing nothing. An empty replica (new, or its file deleted) is filled
// from the start of the primary's log, with a warning naming the primary.
//
// Safety: a primary that does not hold the replica's last copied event at
// the position the replica recorded (restored from an older backup, or
// another store) is refused with kFailedPrecondition naming both positions;
// the replica is not changed. The check runs at the first sync and after
// every error reaching the primary.
//
// Thread safety: every method may be called from any thread. SyncOnce()
// calls are serialised (and wait for the background sync when started).
// One StoreReplica per replica store: two of them writing the same replica
// fail each other's batches (after a failed sync, the replica's progress is
// read again).

#ifndef EVENTSTORE_STORE_REPLICA_H_
#define EVENTSTORE_STORE_REPLICA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/log_sink.h"
#include "eventstore/position.h"

namespace eventstore {

struct ReplicaOptions {
  // Only streams whose name starts with one of these are copied. Default
  // empty: every stream. With one prefix the primary filters the log; with
  // several the replica reads the whole log and keeps what matches (the
  // other streams' events cross the network but are not stored).
  std::vector<std::string> stream_prefixes;
  // Events read and imported per batch (one replica transaction, so one
  // fsync on a durable SQLite replica, each). Default 5,000: catching up
  // from PostgreSQL into a SQLite replica (synchronous=FULL) ran about
  // 1.7 times faster than with 1,000; larger batches hold more memory.
  int batch_size = 5000;
  // When caught up, the background sync waits this long for new events
  // (EventStore::WaitForEvents) before reading again; also the first delay
  // before retrying after an error. Default 1 s. Stop() may take this long.
  absl::Duration poll_interval = absl::Seconds(1);
  // The longest delay between retries after errors (the delay doubles from
  // poll_interval). Default 30 s.
  absl::Duration max_backoff = absl::Seconds(30);
  // Names the primary in log messages and in the replica's MigrationState
  // (a URL with its password masked). Never holds a secret. Default
  // "primary".
  std::string primary_description = "primary";
  // Null: nothing measured (Instrumentation::OnReplicaBatch and
  // OnReplicaError).
  std::shared_ptr<Instrumentation> instrumentation;
  // Null: NullLogSink(). Component "replica".
  std::shared_ptr<LogSink> log_sink;
};

// Where a replica stands. Lag figures are as of the last batch read from
// the primary (the last time it was reachable).
struct ReplicaStatus {
  // The primary position of the last event copied; Start() when none.
  Position replica_position;
  // Where the next read of the primary's log starts: at or after
  // replica_position (events of streams outside the prefixes are passed
  // over without being copied).
  Position read_position;
  // Events the replica holds from the primary (every run of the copy).
  int64_t events = 0;
  // The primary's head when last read; Start() when never read.
  Position primary_head;
  // Events of the primary's log after read_position when last reachable:
  // 0 once a read reached the end of the log; otherwise the distance to
  // the head in sequence numbers (HeadPosition().prepare() -
  // read_position.prepare()), an estimate that counts numbers never used
  // and events of streams outside the prefixes, as for projections.
  int64_t lag_events = 0;
  // Zero once a read reached the end of the log; otherwise how old the
  // replica's data was when last reachable: that time minus recorded_at
  // of the last event read.
  absl::Duration lag_time;
  // When a sync last reached the end of the primary's log (caught up);
  // InfinitePast() when never.
  absl::Time last_sync = absl::InfinitePast();
  // When the primary last answered; InfinitePast() when never.
  absl::Time last_contact = absl::InfinitePast();
  std::vector<std::string> stream_prefixes;
  // The error of the last sync; OK when it succeeded.
  absl::Status last_error;
  // True while the background sync runs (between Start() and Stop()).
  bool running = false;
};

// What one SyncOnce() did.
struct ReplicaSyncResult {
  // Events copied into the replica by this call.
  int64_t events_copied = 0;
  // True when the read reached the end of the primary's log.
  bool caught_up = false;
};

class StoreReplica {
 public:
  // A replica of `primary` kept in `replica`; both must outlive the
  // result. Reads nothing yet: the first sync reads the primary's identity
  // and the replica's progress (so a replica can be created while the
  // primary is down). kInvalidArgument naming the field for a batch_size
  // below 1, a negative or infinite poll_interval or max_backoff, or an
  // empty prefix.
  static absl::StatusOr<std::unique_ptr<StoreReplica>> Create(
      EventStore& primary, EventStore& replica, ReplicaOptions options);

  virtual ~StoreReplica() = default;

  // Copies what the primary's log holds after the replica's position, at
  // most `max_events` events (in batches of batch_size), then returns.
  // kUnavailable when the primary (or the replica) cannot be reached: the
  // batches committed before stay, nothing of a failed batch is written.
  // kFailedPrecondition when the primary does not hold the replica's last
  // event where the replica recorded it, or the replica holds events that
  // are not copies of this primary's.
  virtual absl::StatusOr<ReplicaSyncResult> SyncOnce(
      int64_t max_events = kUnlimited) = 0;

  // Runs SyncOnce() on a background thread, following the log: waits for
  // new events when caught up, retries with backoff (poll_interval doubling
  // to max_backoff) after an error, logging the first error of a run of
  // them and the recovery. kFailedPrecondition when already started.
  virtual absl::Status Start() = 0;
  // Stops and joins the background thread (at most about poll_interval, or
  // one batch). Does nothing when not started. The destructor calls it.
  virtual void Stop() = 0;

  virtual ReplicaStatus Status() const = 0;
  // Status().replica_position.
  virtual Position replica_position() const = 0;

  // Waits until the replica holds the primary's events up to `position`
  // (replica_position() >= position) or `timeout` passes: true when it
  // does. For tests and for reading one's own writes.
  virtual bool WaitForPosition(Position position, absl::Duration timeout) = 0;

  // True when `stream` is one the replica copies (it matches a prefix, or
  // there are none).
  virtual bool Covers(std::string_view stream) const = 0;

  // Reads of the copy, as the primary answered them when last reachable:
  // every event carries its PRIMARY position (not the replica store's), and
  // ReadAll's from_position and next_position are primary positions too, so
  // that a reader can move between the primary and the replica. A stream
  // (or, for ReadAll, a filter.stream_prefix) the replica does not cover
  // (Covers) is kUnavailable naming the replica's prefixes: the copy cannot
  // answer it exactly. ReadAll covers a filter whose stream_prefix starts
  // with one of the prefixes (any filter when there are none); its other
  // filter fields apply as on any store, so its pages are those the
  // primary's ReadAll returned for the copied events; an empty page at the
  // end of the copy moves next_position to Status().read_position when that
  // is later (past the events the replica read and did not copy).
  // kFailedPrecondition before the first sync reached the primary (the
  // copy's origin is not known yet), for all four.
  // The replica store's own errors otherwise.
  virtual absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) = 0;
  virtual absl::StatusOr<ReadAllPage> ReadAll(
      const ReadAllOptions& options) = 0;
  // The stream's version in the copy (0: absent from it).
  virtual absl::StatusOr<int64_t> StreamVersion(std::string_view stream) = 0;
  // Whether the copy holds an event with this id. False means "not in the
  // copy": with prefixes, the event may be in a stream not copied.
  virtual absl::StatusOr<bool> EventExists(const Uuid& id) = 0;

  // The replica position of the last copied event whose primary position is
  // at or before `primary_position`; Start() when there is none. For
  // merging a ReadAll of the replica with the primary's positions.
  // kFailedPrecondition before the first sync reached the primary.
  virtual absl::StatusOr<Position> TranslatePosition(
      Position primary_position) = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_STORE_REPLICA_H_
