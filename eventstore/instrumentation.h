// Instrumentation: what the library reports about its own work, for metrics.
//
// One interface that the store decorator (instrumented_event_store.h), the
// PostgreSQL pool, the projection runner, the outbox publisher and
// FailoverEventStore report to. The library holds it as a pointer that may
// be null: without one, nothing is measured and nothing is called (one
// null check per operation). eventstore::prometheus implements it over
// prometheus-cpp (prometheus/prometheus_instrumentation.h); an application
// may implement it over anything else.
//
//   std::shared_ptr<eventstore::Instrumentation> metrics = ...;
//   std::unique_ptr<eventstore::EventStore> store =
//       eventstore::Instrument(*std::move(opened), metrics, "postgres");
//
// Contract for implementations: every method may be called from any thread,
// concurrently, and must be thread-safe, must not block on I/O and must not
// throw. A std::string_view argument is valid only during the call. Every
// method has an empty default, so an implementation overrides what it
// records; calls added in later versions do nothing until overridden.
//
// Which calls the library makes today: OnAppend, OnRead and
// OnOutboxEnqueued (from InstrumentedEventStore); the pool calls (the
// PostgreSQL pool, given PostgresOptions::instrumentation); the failover
// calls (FailoverEventStore, given FailoverOptions::instrumentation); the
// projection calls (ProjectionRunner, given
// ProjectionRunnerOptions::instrumentation) and the outbox publisher calls
// (OutboxPublisher, given OutboxPublisherOptions::instrumentation).

#ifndef EVENTSTORE_INSTRUMENTATION_H_
#define EVENTSTORE_INSTRUMENTATION_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/position.h"

namespace eventstore {

// How an append ended (see ClassifyAppend).
enum class AppendOutcome {
  kOk,                    // committed
  kWrongExpectedVersion,  // IsWrongExpectedVersion(status)
  kDuplicate,             // kAlreadyExists: an id stored, not an exact retry
  kIdempotentRetry,       // an exact retry of a committed append: nothing
                          // written, the original result returned
  kUnavailable,           // kUnavailable: the database was unreachable
  kOther,                 // any other error (bad input, corrupt store, ...)
};

// Every AppendOutcome, in declaration order.
inline constexpr AppendOutcome kAllAppendOutcomes[] = {
    AppendOutcome::kOk,          AppendOutcome::kWrongExpectedVersion,
    AppendOutcome::kDuplicate,   AppendOutcome::kIdempotentRetry,
    AppendOutcome::kUnavailable, AppendOutcome::kOther,
};

// "ok", "wrong_expected_version", "duplicate", "idempotent_retry",
// "unavailable", "other": the `outcome` label of the append metrics.
std::string_view AppendOutcomeName(AppendOutcome outcome);

// The outcome of an append that returned `result`: kIdempotentRetry for an
// OK result with idempotent_retry set, kOk for any other OK result (a
// journaled one included), else by status as errors.h maps them.
AppendOutcome ClassifyAppend(const absl::StatusOr<AppendResult>& result);

enum class ReadKind { kReadStream, kReadAll };

// "read_stream", "read_all": the `kind` label of the read metrics.
std::string_view ReadKindName(ReadKind kind);

// How a message send by the outbox publisher ended.
enum class OutboxSendOutcome {
  kPublished,  // the sink accepted it; marked published
  kFailed,     // the sink failed; the message stays pending for a retry
  kGaveUp,     // failed too often; the publisher stopped retrying it
};

// "published", "failed", "gave_up".
std::string_view OutboxSendOutcomeName(OutboxSendOutcome outcome);

// One call of EventStore::Append.
struct AppendObservation {
  // The label the store was instrumented with, e.g. "sqlite", "postgres".
  std::string_view backend;
  AppendOutcome outcome = AppendOutcome::kOk;
  // Events in the request, and the sum of their payload sizes in bytes
  // (metadata not included), whatever the outcome.
  int64_t events = 0;
  int64_t payload_bytes = 0;
  // Wall time of the call, measured on a monotonic clock.
  absl::Duration latency;
};

// One call of EventStore::ReadStream or EventStore::ReadAll.
struct ReadObservation {
  std::string_view backend;
  ReadKind kind = ReadKind::kReadStream;
  // False when the call returned an error status.
  bool ok = true;
  // Events returned (0 on error).
  int64_t events = 0;
  absl::Duration latency;
};

class Instrumentation {
 public:
  virtual ~Instrumentation() = default;

  // --- The store (InstrumentedEventStore) ---------------------------------

  // After every Append, whatever its outcome.
  virtual void OnAppend(const AppendObservation& append) {}
  // After every ReadStream and ReadAll.
  virtual void OnRead(const ReadObservation& read) {}
  // When an append committed (not an idempotent retry) with `messages` > 0
  // outbox messages in the same transaction.
  virtual void OnOutboxEnqueued(std::string_view backend, int64_t messages) {}

  // --- The PostgreSQL connection pool (PostgresOptions::instrumentation) --

  // When the pool's use changes: connections lent out and idle ones.
  virtual void OnPoolConnections(std::string_view backend, int64_t in_use,
                                 int64_t idle) {}
  // When a caller had to wait for a connection (all were in use), with how
  // long it waited.
  virtual void OnPoolWait(std::string_view backend, absl::Duration waited) {}
  // When a lost connection was replaced by a new one.
  virtual void OnReconnect(std::string_view backend) {}

  // --- The projection runner (ProjectionRunnerOptions::instrumentation) ---

  // After each call of a projection's handler (replays of dead letters
  // included): `ok` false when it failed (it may be retried:
  // OnProjectionRetry). When a transactional batch rolls back after a
  // failure, its events are handled again one by one, and those calls
  // count too. `latency` is the handler's alone, on a monotonic clock.
  virtual void OnProjectionEvent(std::string_view projection, bool ok,
                                 absl::Duration latency) {}
  // When a failed event is handed to the handler again after a backoff.
  virtual void OnProjectionRetry(std::string_view projection) {}
  // When an event is parked in the dead-letter store.
  virtual void OnProjectionDeadLetter(std::string_view projection) {}
  // After a checkpoint is saved, and once when the runner reads nothing
  // after its checkpoint (caught up): its position, and how many events
  // the log holds after it (lag), found without counting the log:
  // - when the batch's read reached the end of the log (a page shorter than
  //   batch_size), the events of that page after the checkpoint, exactly:
  //   0 when caught up;
  // - after a full page (more may follow), the larger of those and
  //   HeadPosition().prepare() - checkpoint.prepare(), the distance to the
  //   head in sequence numbers (the head read once per batch): an estimate
  //   that counts numbers never used (gaps) and, for a projection with an
  //   event-type filter, events of every type (docs/projections.md, "What
  //   the lag means").
  virtual void OnProjectionCheckpoint(std::string_view projection,
                                      Position checkpoint, int64_t lag_events) {
  }
  // When this process gains (true) or loses (false) the projection's lease.
  virtual void OnProjectionLease(std::string_view projection, bool held) {}

  // --- The outbox publisher (OutboxPublisherOptions::instrumentation) ----

  // After each attempt to send a message (each call of the sink), with the
  // sink's latency on a monotonic clock: kGaveUp for a failure that
  // reaches max_attempts (instead of kFailed).
  virtual void OnOutboxSend(OutboxSendOutcome outcome, absl::Duration latency) {
  }
  // After each poll: messages pending, and the age of the oldest one
  // (zero when none is pending), from OutboxStore::Backlog. The publisher
  // reports it when a round of claims ends (the outbox drained, or a send
  // failed) and at most every poll_interval during a long round.
  virtual void OnOutboxBacklog(int64_t pending,
                               absl::Duration oldest_pending_age) {}

  // --- FailoverEventStore (FailoverOptions::instrumentation) --------------

  // When the mode changes; `mode` is FailoverModeName(): "primary",
  // "fallback" or "recovering".
  virtual void OnFailoverMode(std::string_view mode) {}
  // When an append is written to the journal.
  virtual void OnFailoverJournaled() {}
  // When `appends` journaled appends were replayed on the primary.
  virtual void OnFailoverReplayed(int64_t appends) {}
  // When a journaled append is parked (it conflicts on the primary).
  virtual void OnFailoverParked() {}
  // When the number of journaled appends waiting for replay changes.
  virtual void OnFailoverPending(int64_t appends) {}

  // --- StoreReplica (ReplicaOptions::instrumentation) ---------------------

  // After each batch read from the primary: `events` copied into the
  // replica by it (0 when the batch held only other streams, or nothing),
  // and the lag then (ReplicaStatus::lag_events and lag_time).
  virtual void OnReplicaBatch(int64_t events, int64_t lag_events,
                              absl::Duration lag_time) {}
  // When a sync fails (the primary unreachable, a refused primary).
  virtual void OnReplicaError() {}
  // When a sync reached the end of the primary's log (caught up), at `at`
  // (ReplicaStatus::last_sync).
  virtual void OnReplicaCaughtUp(absl::Time at) {}
};

}  // namespace eventstore

#endif  // EVENTSTORE_INSTRUMENTATION_H_
