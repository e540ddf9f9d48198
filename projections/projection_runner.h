// ProjectionRunner: feeds a projection the global log, from its checkpoint,
// in batches.
//
//   OrderTotals totals;  // a TransactionalProjection (projection.h)
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::ProjectionRunner> runner,
//                       eventstore::ProjectionRunner::Create(*store, totals));
//   ES_RETURN_IF_ERROR(runner->RunOnce().status());  // catch up, or
//   ES_RETURN_IF_ERROR(runner->Start());  // follow the log on a thread
//   ...
//   runner->Stop();
//
// Each batch is one ReadAll page (ReadAllOptions::max_count = batch_size,
// filtered by the projection's event_types()) after the checkpoint:
//
// - TransactionalProjection: one SqlTransaction per batch holds the
//   handler's writes and the new checkpoint (CheckpointStore::SaveIn), so
//   they commit together: exactly-once. When a handler fails, the batch is
//   rolled back and handled again event by event, one transaction each, so
//   that the events before and after the bad one still commit.
// - Projection: the handler runs for each event, then the checkpoint is
//   saved: at-least-once (a crash before the save delivers the batch again).
//
// A handler that fails is called again after initial_backoff, doubling up to
// max_backoff (each wait jittered: see ProjectionRunnerOptions), max_attempts
// times in all; then the event is parked in
// store.dead_letters() under the projection's name and the runner moves on
// (the checkpoint passes it). ReplayParked() handles it again once the
// handler is fixed; so does the background thread, by itself, for the dead
// letters an operator marks kRetrying (`eventstore dlq URL retry`, i.e.
// DeadLetterStore::MarkRetrying, from any process): see
// ProjectionRunnerOptions::replay_retrying. A handler that returns kUnavailable
// ("try again later", say its downstream is down) is retried the same way but
// never parked: the batch stops there (RunOnce returns the error; the
// background thread backs off and tries again). A damaged event
// (RecordedEvent::damaged(): the store could not read it intact) is never
// handed to the handler: it is parked at once with its damage as the error,
// and the runner moves on; replaying it parks it again while it is damaged.
//
// Several runners of one projection, in one process or several (PostgreSQL,
// or a SQLite file), coordinate through store.TryAcquireLease(
// "projection:" + name): only the holder handles events; the others try to
// acquire it every lease_retry_interval and take over when the holder stops
// or dies. docs/projections.md has the details.
//
// An operator can ask for a rebuild while the runner runs, from any process
// (CheckpointStore::RequestRebuild, `eventstore checkpoints URL rebuild`):
// the runner holding the lease sees the request between batches and does
// what Rebuild() does (see rebuild_check_interval).
//
// Thread safety: every method may be called from any thread. The
// projection's handler is called by one thread at a time (the background
// thread, or the caller of RunOnce, Rebuild or ReplayParked).

#ifndef EVENTSTORE_PROJECTIONS_PROJECTION_RUNNER_H_
#define EVENTSTORE_PROJECTIONS_PROJECTION_RUNNER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/log_sink.h"
#include "eventstore/position.h"
#include "eventstore/tracing.h"
#include "eventstore/uuid.h"
#include "projections/projection.h"

namespace eventstore {

struct ProjectionRunnerOptions {
  // Events per ReadAll page, checkpoint and (transactional) transaction.
  // Default 100. Larger batches write fewer checkpoints; smaller ones hold
  // shorter transactions (on SQLite, the write lock) and redeliver less to a
  // plain Projection after a crash.
  int batch_size = 100;

  // While following the log (Start()), the longest one wait for new events
  // lasts. Default 250 ms. New events end the wait at once
  // (EventStore::WaitForEvents), so this is not added latency; it bounds how
  // long Stop() waits for an idle runner, at the cost of a cheap query per
  // idle_wait.
  absl::Duration idle_wait = absl::Milliseconds(250);

  // Handler calls for one event before it is parked, the first included.
  // Default 5; 1 parks at the first failure.
  int max_attempts = 5;

  // The wait before the first retry of a handler, doubling per retry up to
  // max_backoff. Defaults 100 ms and 10 s. The background thread also waits
  // so after store errors (connection lost, ...), before trying again.
  // Each wait is jittered ("equal jitter"): a random time between half the
  // exponential delay and all of it, so runners that failed together (a
  // database restart) do not retry in lockstep. max_backoff still bounds
  // every wait.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);

  // Run only while holding the lease `lease_name` (default "projection:" +
  // the projection's name), so that one runner of the projection is active
  // among several threads or processes. Default true. False is for a runner
  // that is known to be alone.
  bool use_lease = true;
  std::string lease_name;

  // How often the background thread tries to acquire the lease while
  // another runner holds it: a standby takes over within about this long
  // after the holder stops or dies. Default 1 s; each try is one query.
  absl::Duration lease_retry_interval = absl::Seconds(1);

  // While following the log (Start()), and holding the lease, replay this
  // projection's dead letters in status kRetrying: those an operator marked
  // for a retry (`eventstore dlq URL retry`, DeadLetterStore::MarkRetrying)
  // from this or any other process, once the fixed handler is deployed.
  // Each is handled as ReplayParked does: kResolved on success; on failure
  // parked again (failure_count + 1, the new error), so that it is not
  // tried again until it is marked again (never a hot loop). One whose
  // event is no longer stored is parked again with that error. The
  // background thread looks at most every retrying_check_interval, between
  // batches and while idle (an idle wait ends early for it), and replays at
  // most 10 entries per look, oldest first; a look costs one small query.
  // A store error is reported in stats().last_error and retried with
  // backoff like any other. RunOnce and Rebuild do not replay. Defaults
  // true and 1 s: a marked entry is replayed within about a second.
  // False: only ReplayParked replays (an application replaying on its own).
  bool replay_retrying = true;
  absl::Duration retrying_check_interval = absl::Seconds(1);

  // How often the runner looks, between batches (and while idle: an idle
  // wait ends early for it), for a rebuild requested from this or any other
  // process (CheckpointStore::RequestRebuild, `eventstore checkpoints URL
  // rebuild`); it also looks whenever it reads the checkpoint anyway (on
  // Start, after taking the lease or an error, at the start of RunOnce).
  // A look is one read of the checkpoint's row by its key. Holding the
  // lease, the runner then does what Rebuild() does: clears the read model,
  // moves the checkpoint back to the start (which clears the request),
  // logs who asked (info) and counts it in stats().rebuilds, and replays.
  // Default 1 s: a request is started within about a second, at the end of
  // the batch in progress; a smaller interval costs a read per batch.
  absl::Duration rebuild_check_interval = absl::Seconds(1);

  // Recorded as resolved_by when the runner (ReplayParked or replay_retrying)
  // resolves a dead letter. Default "projection-runner".
  std::string worker_name = "projection-runner";

  // Observability (docs/projections.md, "Metrics, logs and traces"); each
  // is off when null, the default, and then costs a null check:
  // - instrumentation: handler calls and their latency, retries, dead
  //   letters, checkpoints with the lag, the lease (OnProjection*);
  // - log_sink: handler failures that are retried (warning), events
  //   dead-lettered (error), the lease gained or lost (info), the
  //   background thread's errors and backoff (warning); component
  //   "projection_runner";
  // - tracer: a span per batch ("eventstore.projection.batch") and per
  //   handler call ("eventstore.projection.handle", a child of the event's
  //   trace context, EventMetadata::traceparent).
  // Shared: one instrumentation may serve many runners and stores.
  std::shared_ptr<Instrumentation> instrumentation;
  std::shared_ptr<LogSink> log_sink;
  std::shared_ptr<Tracer> tracer;

  // For tests: when set, called instead of waiting out a handler's retry
  // backoff, with the (jittered) wait (so tests need no clock). Default unset:
  // wait (the background thread's waits end early on Stop()).
  std::function<void(absl::Duration)> retry_sleep;
};

// What one RunOnce (or Rebuild) did.
struct ProjectionRunResult {
  // Events whose handler succeeded.
  int64_t handled = 0;
  // Events parked in the dead-letter store.
  int64_t parked = 0;
  // Checkpoints saved (one per batch, or per event after a failure in a
  // transactional batch).
  int64_t checkpoints = 0;
  // The checkpoint's position afterwards.
  Position position;
};

// Counters since the runner was created, for monitoring.
struct ProjectionRunnerStats {
  int64_t handled = 0;
  int64_t parked = 0;
  int64_t checkpoints = 0;
  // Rebuilds started: Rebuild() calls, and rebuilds requested through
  // CheckpointStore::RequestRebuild.
  int64_t rebuilds = 0;
  // The last checkpoint position the runner read or saved.
  Position position;
  // Between Start() and Stop().
  bool running = false;
  // Whether the background thread holds the lease (is the active runner).
  bool holds_lease = false;
  // Whether the background thread is waiting for new events, having handled
  // (or skipped) every event up to the head of the log as it last read it:
  // an event appended while this is true ends the wait.
  bool idle = false;
  // The background thread's latest error (a store error, a lease error, a
  // handler's kUnavailable); OK once a batch has succeeded since.
  absl::Status last_error;
};

class ProjectionRunner {
 public:
  // A runner of `projection` over `store`. kInvalidArgument naming the
  // option (or the projection's name) that is wrong.
  // REQUIRES: `store` and `projection` outlive the runner.
  static absl::StatusOr<std::unique_ptr<ProjectionRunner>> Create(
      EventStore& store, Projection& projection,
      ProjectionRunnerOptions options = ProjectionRunnerOptions());
  static absl::StatusOr<std::unique_ptr<ProjectionRunner>> Create(
      EventStore& store, TransactionalProjection& projection,
      ProjectionRunnerOptions options = ProjectionRunnerOptions());

  // Stops the background thread.
  virtual ~ProjectionRunner() = default;

  // The projection's name.
  virtual const std::string& name() const = 0;

  // Handles every event after the checkpoint up to the head of the log as it
  // was when called, batch by batch, then returns. kFailedPrecondition while
  // started; kUnavailable when another runner holds the lease (use_lease);
  // otherwise the first store error, or a handler's kUnavailable (batches
  // before it stay committed).
  virtual absl::StatusOr<ProjectionRunResult> RunOnce() = 0;

  // Starts the background thread: acquire the lease (use_lease), catch up,
  // then follow the log, handling new events as they are appended. Errors
  // are retried with backoff and reported in stats().last_error.
  // kFailedPrecondition when already started.
  virtual absl::Status Start() = 0;

  // Stops the background thread and releases the lease. Returns once the
  // thread has ended: after the batch in progress (a handler's retry wait
  // ends at once; an unfinished transactional batch rolls back, a plain
  // one saves the checkpoint of the events handled), within about
  // idle_wait when idle. Does nothing when not started. Must not be called
  // from a handler.
  virtual void Stop() = 0;

  // Starts over: clears the read model (Projection::Reset(), or
  // TransactionalProjection::Reset(tx) in the transaction that also moves
  // the checkpoint back to the start), resets the checkpoint, and replays
  // the whole log as RunOnce does. kFailedPrecondition while started;
  // kUnavailable when another runner holds the lease. Dead letters are
  // kept; events parked before may be parked again. A pending request
  // (CheckpointStore::RequestRebuild) is cleared with the checkpoint. To
  // rebuild while the runner is started, or from another process, request
  // it instead: see rebuild_check_interval.
  virtual absl::StatusOr<ProjectionRunResult> Rebuild() = 0;

  // Handles the parked event `event_id` of this projection again, once,
  // after the handler was fixed (a transactional projection in a
  // transaction of its own; the checkpoint does not move). On success the
  // dead letter becomes kResolved (resolved_by = worker_name); on failure
  // it is parked again (failure_count + 1, new error) and the handler's
  // error is returned. kNotFound when there is no such dead letter or the
  // event is no longer stored; OK without handling when it is already
  // resolved. Runs between batches of a started runner; does not take the
  // lease. A started runner also does this by itself for the entries marked
  // kRetrying (replay_retrying).
  virtual absl::Status ReplayParked(const Uuid& event_id) = 0;

  // How far the projection is behind the head: events (of its types) after
  // the checkpoint, and their age (CheckpointStore::Lag).
  virtual absl::StatusOr<ProjectionLag> Lag() = 0;

  virtual ProjectionRunnerStats stats() const = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_PROJECTIONS_PROJECTION_RUNNER_H_
