#include "projections/projection_runner.h"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/lease.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/status_macros.h"
#include "eventstore/stream_lifecycle.h"
#include "projections/internal/backoff.h"
#include "projections/internal/projection_observer.h"
#include "projections/internal/worker_thread.h"

namespace eventstore {
namespace {

constexpr std::size_t kMaxNameBytes = 200;

// Dead letters in status kRetrying replayed per look (replay_retrying).
constexpr int kRetryingPerCheck = 10;

// The shortest idle wait, so that a check that is due never spins.
constexpr absl::Duration kMinIdleWait = absl::Milliseconds(1);

// Completes the log message of a damaged event parked.
constexpr char kDamaged[] = "without handling (it is damaged)";

absl::Status ValidateOptions(const std::string& name,
                             const ProjectionRunnerOptions& options) {
  if (name.empty()) {
    return absl::InvalidArgumentError("projection name: is empty");
  }
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("projection name: ", name.size(),
                     " bytes, over the limit of ", kMaxNameBytes));
  }
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size: ", options.batch_size, ", must be >= 1"));
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts: ", options.max_attempts, ", must be >= 1"));
  }
  if (options.idle_wait <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_wait: must be positive");
  }
  if (options.initial_backoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("initial_backoff: is negative");
  }
  if (options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "max_backoff: is less than initial_backoff");
  }
  if (options.lease_retry_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("lease_retry_interval: must be positive");
  }
  if (options.retrying_check_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "retrying_check_interval: must be positive");
  }
  if (options.rebuild_check_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "rebuild_check_interval: must be positive");
  }
  return absl::OkStatus();
}

class ProjectionRunnerImpl final : public ProjectionRunner {
 public:
  // Exactly one of `plain` and `transactional` is set.
  ProjectionRunnerImpl(EventStore& store, Projection* plain,
                       TransactionalProjection* transactional,
                       ProjectionRunnerOptions options, std::string name,
                       std::vector<std::string> event_types)
      : store_(store),
        plain_(plain),
        transactional_(transactional),
        options_(std::move(options)),
        name_(std::move(name)),
        observer_(name_, options_.instrumentation, options_.log_sink,
                  options_.tracer) {
    // A projection that filters by type still learns of deletions: the
    // StreamDeleted markers are read with its types (projection.h).
    if (!event_types.empty() &&
        std::find(event_types.begin(), event_types.end(), kStreamDeletedType) ==
            event_types.end()) {
      event_types.emplace_back(kStreamDeletedType);
    }
    filter_.event_types = std::move(event_types);
    if (options_.lease_name.empty()) {
      options_.lease_name = absl::StrCat("projection:", name_);
    }
  }

  ~ProjectionRunnerImpl() override { Stop(); }

  const std::string& name() const override { return name_; }

  absl::StatusOr<ProjectionRunResult> RunOnce() override {
    ES_RETURN_IF_ERROR(EnterCall("RunOnce"));
    absl::StatusOr<ProjectionRunResult> result = RunOnceInCall();
    LeaveCall();
    return result;
  }

  absl::Status Start() override {
    {
      internal::MutexLock lock(&state_mu_);
      if (mode_ != Mode::kIdle) {
        return absl::FailedPreconditionError(absl::StrCat(
            "projection '", name_, "': the runner is ",
            mode_ == Mode::kBackground ? "already started" : "busy in a call"));
      }
      mode_ = Mode::kBackground;
    }
    absl::Status started = worker_.Start([this] { Loop(); });
    if (!started.ok()) {
      internal::MutexLock lock(&state_mu_);
      mode_ = Mode::kIdle;
    }
    return started;
  }

  void Stop() override {
    worker_.Stop();
    internal::MutexLock lock(&state_mu_);
    if (mode_ == Mode::kBackground) mode_ = Mode::kIdle;
    holds_lease_ = false;
  }

  absl::StatusOr<ProjectionRunResult> Rebuild() override {
    ES_RETURN_IF_ERROR(EnterCall("Rebuild"));
    absl::StatusOr<ProjectionRunResult> result = RebuildInCall();
    LeaveCall();
    return result;
  }

  absl::Status ReplayParked(const Uuid& event_id) override;

  absl::StatusOr<ProjectionLag> Lag() override {
    return store_.checkpoints().Lag(name_, filter_);
  }

  ProjectionRunnerStats stats() const override {
    internal::MutexLock lock(&state_mu_);
    ProjectionRunnerStats stats = stats_;
    stats.running = mode_ == Mode::kBackground;
    stats.holds_lease = holds_lease_;
    return stats;
  }

 private:
  enum class Mode { kIdle, kBackground, kCall };

  // Who runs a batch: the background thread (whose waits Stop() cuts
  // short) or a caller; and the lease held, if any.
  struct Context {
    bool background = false;
    Lease* lease = nullptr;
  };

  // One batch's progress.
  struct BatchResult {
    // Events in the page read.
    std::size_t read = 0;
    // The page was the last one (fewer than batch_size events).
    bool end_of_log = false;
    // Stop() was called: the batch ended early.
    bool interrupted = false;
    // Progress saved, and the checkpoint's position after the batch.
    ProjectionRunResult counts;
    // For the lag (LagAfter): the page's events, and the head of the log
    // once read.
    const std::vector<RecordedEvent>* events = nullptr;
    std::optional<Position> head;
  };

  // One handler call. `store` is a store error (begin, checkpoint, commit),
  // which is not the handler's fault and ends the batch.
  struct Attempt {
    absl::Status handler;
    absl::Status store;
  };

  enum class Outcome { kHandled, kFailed, kRetryLater, kInterrupted };

  // What replaying a dead letter did.
  enum class Replayed { kResolved, kParkedAgain, kSkipped };

  absl::Status EnterCall(const char* what) {
    internal::MutexLock lock(&state_mu_);
    if (mode_ != Mode::kIdle) {
      return absl::FailedPreconditionError(absl::StrCat(
          "projection '", name_, "': ", what, " while the runner is ",
          mode_ == Mode::kBackground ? "started; Stop() it first"
                                     : "busy in another call"));
    }
    mode_ = Mode::kCall;
    return absl::OkStatus();
  }

  void LeaveCall() {
    internal::MutexLock lock(&state_mu_);
    mode_ = Mode::kIdle;
  }

  absl::StatusOr<ProjectionRunResult> RunOnceInCall();
  absl::StatusOr<ProjectionRunResult> RebuildInCall();
  absl::StatusOr<ProjectionRunResult> RebuildLocked(const Context& context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);

  // The lease for a RunOnce or Rebuild call: nullptr when use_lease is
  // false, kUnavailable when another runner holds it.
  absl::StatusOr<std::unique_ptr<Lease>> AcquireLeaseForCall();

  // Reads the checkpoint's position; when a rebuild was requested, starts it
  // first (StartOver) and returns the start.
  absl::StatusOr<Position> LoadCheckpoint(const Context& context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  // When rebuild_check_interval has passed since the last look, looks for a
  // requested rebuild and starts it (StartOver): true when it did (the
  // checkpoint is then at the start).
  absl::StatusOr<bool> RebuildIfRequested(const Context& context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  // Starts the rebuild requested in `checkpoint`: StartOver, logged.
  absl::Status StartRequestedRebuild(const Context& context,
                                     const Checkpoint& checkpoint)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  // Clears the read model and the checkpoint (and so a pending rebuild
  // request), and counts a rebuild.
  absl::Status StartOver(const Context& context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);

  // Batches from the checkpoint until the head as it is now.
  absl::StatusOr<ProjectionRunResult> CatchUp(const Context& context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);

  // Reads one page after `from` and handles it. `*result` holds the
  // progress made even when an error is returned.
  absl::Status RunBatch(const Context& context, Position from,
                        BatchResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  absl::Status RunPlainBatch(const Context& context,
                             const std::vector<RecordedEvent>& events,
                             BatchResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  absl::Status RunTransactionalBatch(const Context& context,
                                     const std::vector<RecordedEvent>& events,
                                     BatchResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  // After a transactional batch failed at `failed` with `error`: each event
  // in a transaction of its own.
  absl::Status RunTransactionalOneByOne(
      const Context& context, const std::vector<RecordedEvent>& events,
      std::size_t failed, absl::Status error, BatchResult* result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);

  // Calls `attempt` (the handler on `event`) until the handler succeeds or
  // max_attempts calls (of which `used` already made, the last failing with
  // `*last_error`) have failed, waiting the backoff before each retry. A
  // store error ends it.
  absl::StatusOr<Outcome> Retry(const Context& context,
                                const RecordedEvent& event,
                                const std::function<Attempt()>& attempt,
                                int used, absl::Status* last_error);

  // Waits `delay` before a retry: false when Stop() cut the wait short.
  bool WaitBeforeRetry(const Context& context, absl::Duration delay);

  // Parks `event` with `error`; `why` completes the log message ("after 5
  // attempts", ...).
  absl::Status Park(const RecordedEvent& event, const absl::Status& error,
                    std::string_view why);
  // "after <max_attempts> attempts".
  std::string AfterAttempts() const;

  // Handles the dead letter of `event_id` again (ReplayParked): kResolved on
  // success; on failure kParkedAgain, with the handler's error in *error.
  // kSkipped when it is resolved or, with `only_retrying`, no longer exists
  // or is no longer kRetrying. Without `only_retrying`, kNotFound when there
  // is no such dead letter or its event is no longer stored; with it, such an
  // event is parked again (kParkedAgain) so that it leaves kRetrying. Other
  // errors are the store's.
  absl::StatusOr<Replayed> Replay(const Uuid& event_id, bool only_retrying,
                                  absl::Status* error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);

  // Replays (Replay) up to kRetryingPerCheck dead letters of the projection
  // in status kRetrying, oldest first, while the lease is held and Stop()
  // is not called. Returns the first store error.
  absl::Status ReplayRetrying(const Context& context)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);

  // The lease, when this batch runs under one, is still held.
  static absl::Status CheckLease(const Context& context);

  // Counts progress saved in the store (a checkpoint at `position`), and
  // reports the checkpoint (OnProjectionCheckpoint) when measuring.
  void Record(BatchResult* result, int64_t handled, int64_t parked,
              Position position) ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  // The lag reported with a checkpoint at `position` in `result`'s batch:
  // see docs/projections.md and Instrumentation::OnProjectionCheckpoint.
  int64_t LagAfter(BatchResult* result, Position position)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  // Reports (position, lag); with `if_changed`, only when it differs from
  // what was reported last.
  void ReportCheckpoint(Position position, int64_t lag, bool if_changed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  // Reports the lease of a RunOnce or Rebuild call released (when held).
  void ReleaseCallLease(std::unique_ptr<Lease> lease);
  void SetPosition(Position position);
  // stats().idle: set around the background thread's wait for new events.
  void SetIdle(bool idle);
  void SetBackgroundState(std::optional<bool> holds_lease,
                          std::optional<absl::Status> error);

  // The background thread's body.
  void Loop();

  EventStore& store_;
  Projection* const plain_;
  TransactionalProjection* const transactional_;
  ProjectionRunnerOptions options_;
  const std::string name_;
  internal::ProjectionObserver observer_;
  ReadAllFilter filter_;

  // Held for each batch, RunOnce, Rebuild and ReplayParked: the handler is
  // never called from two threads at once.
  internal::Mutex work_mu_;
  // The checkpoint and lag reported last (when measuring).
  std::optional<std::pair<Position, int64_t>> reported_
      ABSL_GUARDED_BY(work_mu_);
  // When to look next for a requested rebuild (RebuildIfRequested).
  absl::Time next_rebuild_check_ ABSL_GUARDED_BY(work_mu_) =
      absl::InfinitePast();
  // The page each batch reads into (EventStore::ReadAllInto): its events'
  // strings and metadata are reused from batch to batch.
  ReadAllPage page_ ABSL_GUARDED_BY(work_mu_);

  mutable internal::Mutex state_mu_;
  Mode mode_ ABSL_GUARDED_BY(state_mu_) = Mode::kIdle;
  bool holds_lease_ ABSL_GUARDED_BY(state_mu_) = false;
  ProjectionRunnerStats stats_ ABSL_GUARDED_BY(state_mu_);

  // Declared last: destroyed (stopped) first.
  internal::WorkerThread worker_;
};

absl::StatusOr<std::unique_ptr<Lease>>
ProjectionRunnerImpl::AcquireLeaseForCall() {
  if (!options_.use_lease) return std::unique_ptr<Lease>();
  ES_ASSIGN_OR_RETURN(std::unique_ptr<Lease> lease,
                      store_.TryAcquireLease(options_.lease_name));
  if (lease == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("projection '", name_, "': the lease '",
                     options_.lease_name, "' is held by another runner"));
  }
  observer_.Lease(true, options_.lease_name, "gained", /*quiet=*/true);
  return lease;
}

void ProjectionRunnerImpl::ReleaseCallLease(std::unique_ptr<Lease> lease) {
  if (lease == nullptr) return;
  lease.reset();
  observer_.Lease(false, options_.lease_name, "released", /*quiet=*/true);
}

absl::StatusOr<ProjectionRunResult> ProjectionRunnerImpl::RunOnceInCall() {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<Lease> lease, AcquireLeaseForCall());
  absl::StatusOr<ProjectionRunResult> result;
  {
    internal::MutexLock lock(&work_mu_);
    result = CatchUp(Context{false, lease.get()});
  }
  ReleaseCallLease(std::move(lease));
  return result;
}

absl::StatusOr<ProjectionRunResult> ProjectionRunnerImpl::RebuildInCall() {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<Lease> lease, AcquireLeaseForCall());
  absl::StatusOr<ProjectionRunResult> result;
  {
    internal::MutexLock lock(&work_mu_);
    result = RebuildLocked(Context{false, lease.get()});
  }
  ReleaseCallLease(std::move(lease));
  return result;
}

absl::StatusOr<ProjectionRunResult> ProjectionRunnerImpl::RebuildLocked(
    const Context& context) {
  ES_RETURN_IF_ERROR(StartOver(context));
  return CatchUp(context);
}

absl::Status ProjectionRunnerImpl::StartOver(const Context& context) {
  ES_RETURN_IF_ERROR(CheckLease(context));
  if (transactional_ != nullptr) {
    // The read model is cleared and the checkpoint moved back in one
    // transaction, so they never disagree.
    ES_ASSIGN_OR_RETURN(std::unique_ptr<SqlTransaction> tx,
                        store_.BeginTransaction());
    ES_RETURN_IF_ERROR(transactional_->Reset(*tx));
    ES_RETURN_IF_ERROR(
        store_.checkpoints().SaveIn(*tx, name_, Position::Start(), 0));
    ES_RETURN_IF_ERROR(CheckLease(context));
    ES_RETURN_IF_ERROR(tx->Commit());
  } else {
    ES_RETURN_IF_ERROR(plain_->Reset());
  }
  // Also zeroes events_processed, and removes a pending rebuild request.
  // A request made since the read model was cleared is served by this
  // rebuild all the same (nothing was replayed yet); one that this fails
  // to remove (an error, a crash) only rebuilds once more.
  ES_RETURN_IF_ERROR(store_.checkpoints().Reset(name_));
  reported_.reset();
  {
    internal::MutexLock lock(&state_mu_);
    ++stats_.rebuilds;
    stats_.position = Position::Start();
  }
  return absl::OkStatus();
}

absl::StatusOr<Position> ProjectionRunnerImpl::LoadCheckpoint(
    const Context& context) {
  ES_ASSIGN_OR_RETURN(std::optional<Checkpoint> checkpoint,
                      store_.checkpoints().Get(name_));
  next_rebuild_check_ = absl::Now() + options_.rebuild_check_interval;
  if (checkpoint.has_value() && checkpoint->rebuild_requested_at.has_value()) {
    ES_RETURN_IF_ERROR(StartRequestedRebuild(context, *checkpoint));
    return Position::Start();
  }
  const Position position =
      checkpoint.has_value() ? checkpoint->position : Position::Start();
  SetPosition(position);
  return position;
}

absl::StatusOr<bool> ProjectionRunnerImpl::RebuildIfRequested(
    const Context& context) {
  if (absl::Now() < next_rebuild_check_) return false;
  ES_ASSIGN_OR_RETURN(std::optional<Checkpoint> checkpoint,
                      store_.checkpoints().Get(name_));
  next_rebuild_check_ = absl::Now() + options_.rebuild_check_interval;
  if (!checkpoint.has_value() ||
      !checkpoint->rebuild_requested_at.has_value()) {
    return false;
  }
  ES_RETURN_IF_ERROR(StartRequestedRebuild(context, *checkpoint));
  return true;
}

absl::Status ProjectionRunnerImpl::StartRequestedRebuild(
    const Context& context, const Checkpoint& checkpoint) {
  ES_RETURN_IF_ERROR(StartOver(context));
  observer_.RebuildRequested(checkpoint.rebuild_requested_by,
                             *checkpoint.rebuild_requested_at);
  return absl::OkStatus();
}

absl::StatusOr<ProjectionRunResult> ProjectionRunnerImpl::CatchUp(
    const Context& context) {
  ES_ASSIGN_OR_RETURN(const Position head, store_.HeadPosition());
  ES_ASSIGN_OR_RETURN(Position position, LoadCheckpoint(context));
  ProjectionRunResult total;
  total.position = position;
  while (true) {
    // Between batches (LoadCheckpoint has just looked before the first): a
    // rebuild requested since starts over here.
    ES_ASSIGN_OR_RETURN(const bool rebuilt, RebuildIfRequested(context));
    if (rebuilt) position = Position::Start();
    BatchResult batch;
    absl::Status status = RunBatch(context, position, &batch);
    total.handled += batch.counts.handled;
    total.parked += batch.counts.parked;
    total.checkpoints += batch.counts.checkpoints;
    total.position = batch.counts.position;
    ES_RETURN_IF_ERROR(status);
    position = batch.counts.position;
    if (batch.read == 0 || batch.end_of_log || position >= head) break;
  }
  return total;
}

absl::Status ProjectionRunnerImpl::RunBatch(const Context& context,
                                            Position from,
                                            BatchResult* result) {
  result->counts.position = from;
  ReadAllOptions read;
  read.from_position = from;
  read.max_count = options_.batch_size;
  read.filter = filter_;
  ReadAllPage& page = page_;
  ES_RETURN_IF_ERROR(store_.ReadAllInto(read, page));
  result->read = page.events.size();
  result->end_of_log = page.end_of_log;
  if (page.events.empty()) {
    // Nothing after the checkpoint: caught up (reported once).
    if (observer_.measuring()) ReportCheckpoint(from, 0, /*if_changed=*/true);
    return absl::OkStatus();
  }
  result->events = &page.events;
  ScopedSpan span(observer_.tracer(), "eventstore.projection.batch",
                  SpanKind::kInternal);
  if (span) {
    span.SetAttribute("eventstore.projection", name_);
    span.SetAttribute("eventstore.events",
                      static_cast<int64_t>(page.events.size()));
  }
  absl::Status status = CheckLease(context);
  if (status.ok()) {
    status = transactional_ != nullptr
                 ? RunTransactionalBatch(context, page.events, result)
                 : RunPlainBatch(context, page.events, result);
  }
  result->events = nullptr;
  span.SetStatus(status);
  return status;
}

absl::Status ProjectionRunnerImpl::RunPlainBatch(
    const Context& context, const std::vector<RecordedEvent>& events,
    BatchResult* result) {
  const Position from = result->counts.position;
  Position last = from;
  int64_t handled = 0;
  int64_t parked = 0;
  absl::Status error;
  for (const RecordedEvent& event : events) {
    if (context.background && worker_.stopping()) {
      result->interrupted = true;
      break;
    }
    if (event.damaged()) {
      // Never handed to the handler: parked with its damage, and passed.
      error = Park(event, event.damage, kDamaged);
      if (!error.ok()) break;
      ++parked;
      last = event.position;
      continue;
    }
    absl::Status last_error;
    absl::StatusOr<Outcome> outcome = Retry(
        context, event,
        [&] {
          return Attempt{
              observer_.Handle(event, [&] { return plain_->Handle(event); }),
              {}};
        },
        0, &last_error);
    if (!outcome.ok()) {
      error = outcome.status();
      break;
    }
    if (*outcome == Outcome::kInterrupted) {
      result->interrupted = true;
      break;
    }
    if (*outcome == Outcome::kRetryLater) {
      error = last_error;
      break;
    }
    if (*outcome == Outcome::kFailed) {
      error = Park(event, last_error, AfterAttempts());
      if (!error.ok()) break;
      ++parked;
    } else {
      ++handled;
    }
    last = event.position;
  }
  if (last != from) {
    // At-least-once: when this fails, the events handled are delivered
    // again from the previous checkpoint. So may they be when the database
    // crashes soon after a non-durable save: no durable commit (on
    // PostgreSQL, no wait for the WAL flush) is needed per batch.
    ES_RETURN_IF_ERROR(
        store_.checkpoints().SaveNonDurable(name_, last, handled));
    Record(result, handled, parked, last);
  }
  return error;
}

absl::Status ProjectionRunnerImpl::RunTransactionalBatch(
    const Context& context, const std::vector<RecordedEvent>& events,
    BatchResult* result) {
  std::size_t failed = events.size();
  absl::Status error;
  {
    ES_ASSIGN_OR_RETURN(std::unique_ptr<SqlTransaction> tx,
                        store_.BeginTransaction());
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (context.background && worker_.stopping()) {
        result->interrupted = true;
        return absl::OkStatus();  // rolls back
      }
      // A damaged event is parked one by one below, never handled.
      error = events[i].damaged()
                  ? events[i].damage
                  : observer_.Handle(events[i], [&] {
                      return transactional_->Handle(events[i], *tx);
                    });
      if (!error.ok()) {
        failed = i;
        break;
      }
    }
    if (failed == events.size()) {
      const Position last = events.back().position;
      ES_RETURN_IF_ERROR(CheckLease(context));
      ES_RETURN_IF_ERROR(store_.checkpoints().SaveIn(
          *tx, name_, last, static_cast<int64_t>(events.size())));
      ES_RETURN_IF_ERROR(tx->Commit());
      Record(result, static_cast<int64_t>(events.size()), 0, last);
      return absl::OkStatus();
    }
  }  // The failed batch rolls back here.
  return RunTransactionalOneByOne(context, events, failed, std::move(error),
                                  result);
}

absl::Status ProjectionRunnerImpl::RunTransactionalOneByOne(
    const Context& context, const std::vector<RecordedEvent>& events,
    std::size_t failed, absl::Status error, BatchResult* result) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    const RecordedEvent& event = events[i];
    if (context.background && worker_.stopping()) {
      result->interrupted = true;
      return absl::OkStatus();
    }
    if (event.damaged()) {
      ES_RETURN_IF_ERROR(Park(event, event.damage, kDamaged));
      ES_RETURN_IF_ERROR(store_.checkpoints().Save(name_, event.position, 0));
      Record(result, 0, 1, event.position);
      continue;
    }
    // The failure in the batch counts as the failed event's first attempt.
    const int used = i == failed ? 1 : 0;
    absl::Status last_error = i == failed ? error : absl::OkStatus();
    absl::StatusOr<Outcome> outcome = Retry(
        context, event,
        [&] {
          Attempt attempt;
          absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
              store_.BeginTransaction();
          if (!tx.ok()) {
            attempt.store = tx.status();
            return attempt;
          }
          attempt.handler = observer_.Handle(
              event, [&] { return transactional_->Handle(event, **tx); });
          if (!attempt.handler.ok()) return attempt;
          attempt.store = CheckLease(context);
          if (attempt.store.ok()) {
            attempt.store =
                store_.checkpoints().SaveIn(**tx, name_, event.position, 1);
          }
          if (attempt.store.ok()) attempt.store = (*tx)->Commit();
          return attempt;
        },
        used, &last_error);
    ES_RETURN_IF_ERROR(outcome.status());
    switch (*outcome) {
      case Outcome::kHandled:
        Record(result, 1, 0, event.position);
        break;
      case Outcome::kFailed:
        ES_RETURN_IF_ERROR(Park(event, last_error, AfterAttempts()));
        // The read model is unchanged: only the position moves past it.
        ES_RETURN_IF_ERROR(store_.checkpoints().Save(name_, event.position, 0));
        Record(result, 0, 1, event.position);
        break;
      case Outcome::kRetryLater:
        return last_error;
      case Outcome::kInterrupted:
        result->interrupted = true;
        return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ProjectionRunnerImpl::Outcome> ProjectionRunnerImpl::Retry(
    const Context& context, const RecordedEvent& event,
    const std::function<Attempt()>& attempt, int used,
    absl::Status* last_error) {
  // The wait before the next retry, drawn when a call fails (to log it).
  absl::Duration delay;
  const auto failed = [&](int calls) {
    if (calls >= options_.max_attempts) return;
    delay = internal::JitteredBackoffDelay(options_.initial_backoff,
                                           options_.max_backoff, calls);
    observer_.WillRetry(event, calls, options_.max_attempts, *last_error,
                        delay);
  };
  if (used > 0) failed(used);
  for (int n = used; n < options_.max_attempts; ++n) {
    if (n > 0) {
      if (!WaitBeforeRetry(context, delay)) return Outcome::kInterrupted;
      observer_.Retried();
    }
    Attempt a = attempt();
    ES_RETURN_IF_ERROR(a.store);
    if (a.handler.ok()) return Outcome::kHandled;
    *last_error = std::move(a.handler);
    failed(n + 1);
  }
  if (last_error->code() == absl::StatusCode::kUnavailable) {
    observer_.GaveUpForNow(event, options_.max_attempts, *last_error);
    return Outcome::kRetryLater;
  }
  return Outcome::kFailed;
}

bool ProjectionRunnerImpl::WaitBeforeRetry(const Context& context,
                                           absl::Duration delay) {
  if (options_.retry_sleep) {
    options_.retry_sleep(delay);
    return !(context.background && worker_.stopping());
  }
  if (context.background) return worker_.WaitFor(delay);
  absl::SleepFor(delay);
  return true;
}

absl::Status ProjectionRunnerImpl::Park(const RecordedEvent& event,
                                        const absl::Status& error,
                                        std::string_view why) {
  ES_RETURN_IF_ERROR(store_.dead_letters().Add(name_, event, error.ToString()));
  observer_.Parked(event, error, why);
  return absl::OkStatus();
}

std::string ProjectionRunnerImpl::AfterAttempts() const {
  return absl::StrCat("after ", options_.max_attempts,
                      options_.max_attempts == 1 ? " attempt" : " attempts");
}

absl::Status ProjectionRunnerImpl::CheckLease(const Context& context) {
  if (context.lease == nullptr || context.lease->Valid()) {
    return absl::OkStatus();
  }
  return absl::UnavailableError("the projection's lease was lost");
}

absl::Status ProjectionRunnerImpl::ReplayParked(const Uuid& event_id) {
  internal::MutexLock lock(&work_mu_);
  absl::Status error;
  ES_ASSIGN_OR_RETURN(const Replayed replayed,
                      Replay(event_id, /*only_retrying=*/false, &error));
  return replayed == Replayed::kParkedAgain ? error : absl::OkStatus();
}

absl::StatusOr<ProjectionRunnerImpl::Replayed> ProjectionRunnerImpl::Replay(
    const Uuid& event_id, bool only_retrying, absl::Status* error) {
  ES_ASSIGN_OR_RETURN(std::optional<DeadLetter> letter,
                      store_.dead_letters().Get(name_, event_id));
  if (!letter.has_value()) {
    if (only_retrying) return Replayed::kSkipped;
    return absl::NotFoundError(absl::StrCat("projection '", name_,
                                            "' has no dead letter for event ",
                                            event_id.ToString()));
  }
  if (letter->status == DeadLetterStatus::kResolved ||
      (only_retrying && letter->status != DeadLetterStatus::kRetrying)) {
    return Replayed::kSkipped;
  }
  ReadStreamOptions read;
  read.from_version = letter->version;
  read.max_count = 1;
  ES_ASSIGN_OR_RETURN(std::vector<RecordedEvent> events,
                      store_.ReadStream(letter->stream, read));
  if (events.empty() || events.front().id != event_id) {
    absl::Status gone = absl::NotFoundError(absl::StrCat(
        "event ", event_id.ToString(), " (stream '", letter->stream,
        "' version ", letter->version, ") is no longer stored"));
    if (!only_retrying) return gone;
    // Parked again with the reason, so that it is not looked at again
    // until an operator marks it again (or resolves it).
    RecordedEvent parked;
    parked.id = event_id;
    parked.stream = letter->stream;
    parked.version = letter->version;
    parked.position = letter->position;
    parked.type = letter->event_type;
    ES_RETURN_IF_ERROR(Park(parked, gone, "again when replayed"));
    *error = std::move(gone);
    return Replayed::kParkedAgain;
  }
  const RecordedEvent& event = events.front();
  if (letter->status != DeadLetterStatus::kRetrying) {
    ES_RETURN_IF_ERROR(store_.dead_letters().MarkRetrying(name_, event_id));
  }
  absl::Status handled;
  if (event.damaged()) {
    handled = event.damage;  // still damaged: parked again, not handled
  } else if (transactional_ != nullptr) {
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store_.BeginTransaction();
    handled = tx.status();
    if (handled.ok()) {
      handled = observer_.Handle(
          event, [&] { return transactional_->Handle(event, **tx); });
    }
    if (handled.ok()) handled = (*tx)->Commit();
  } else {
    handled = observer_.Handle(event, [&] { return plain_->Handle(event); });
  }
  if (!handled.ok()) {
    // Parked again: one more failure, with this error.
    ES_RETURN_IF_ERROR(Park(event, handled, "again when replayed"));
    *error = std::move(handled);
    return Replayed::kParkedAgain;
  }
  {
    internal::MutexLock state(&state_mu_);
    ++stats_.handled;
  }
  ES_RETURN_IF_ERROR(store_.dead_letters().MarkResolved(name_, event_id,
                                                        options_.worker_name));
  observer_.Resolved(event);
  return Replayed::kResolved;
}

absl::Status ProjectionRunnerImpl::ReplayRetrying(const Context& context) {
  ES_ASSIGN_OR_RETURN(
      std::vector<DeadLetter> marked,
      store_.dead_letters().List(name_, DeadLetterStatus::kRetrying,
                                 kRetryingPerCheck));
  for (const DeadLetter& letter : marked) {
    if (context.background && worker_.stopping()) break;
    ES_RETURN_IF_ERROR(CheckLease(context));
    // A handler that still fails parks the entry again: it stays in the
    // dead-letter store with the new error, and is not an error of the
    // runner's.
    absl::Status error;
    ES_RETURN_IF_ERROR(
        Replay(letter.event_id, /*only_retrying=*/true, &error).status());
  }
  return absl::OkStatus();
}

void ProjectionRunnerImpl::Record(BatchResult* result, int64_t handled,
                                  int64_t parked, Position position) {
  result->counts.handled += handled;
  result->counts.parked += parked;
  ++result->counts.checkpoints;
  result->counts.position = position;
  {
    internal::MutexLock lock(&state_mu_);
    stats_.handled += handled;
    stats_.parked += parked;
    ++stats_.checkpoints;
    stats_.position = position;
  }
  if (observer_.measuring()) {
    ReportCheckpoint(position, LagAfter(result, position),
                     /*if_changed=*/false);
  }
}

int64_t ProjectionRunnerImpl::LagAfter(BatchResult* result, Position position) {
  // The page's events after `position`: exact when the page reached the end
  // of the log.
  int64_t in_page = 0;
  if (result->events != nullptr) {
    const std::vector<RecordedEvent>& events = *result->events;
    in_page = events.end() -
              std::upper_bound(events.begin(), events.end(), position,
                               [](Position p, const RecordedEvent& event) {
                                 return p < event.position;
                               });
  }
  if (result->end_of_log) return in_page;
  // A full page: more may follow. The distance to the head in sequence
  // numbers (one indexed lookup per batch, not a count).
  if (!result->head.has_value()) {
    absl::StatusOr<Position> head = store_.HeadPosition();
    if (!head.ok()) {
      observer_.Warning("reading the head of the log for the lag",
                        head.status());
    }
    result->head = head.ok() ? *head : position;
  }
  const uint64_t head = result->head->prepare();
  const int64_t behind = head > position.prepare()
                             ? static_cast<int64_t>(head - position.prepare())
                             : 0;
  return std::max(in_page, behind);
}

void ProjectionRunnerImpl::ReportCheckpoint(Position position, int64_t lag,
                                            bool if_changed) {
  if (if_changed && reported_.has_value() && reported_->first == position &&
      reported_->second == lag) {
    return;
  }
  reported_.emplace(position, lag);
  observer_.Checkpoint(position, lag);
}

void ProjectionRunnerImpl::SetPosition(Position position) {
  internal::MutexLock lock(&state_mu_);
  stats_.position = position;
}

void ProjectionRunnerImpl::SetIdle(bool idle) {
  internal::MutexLock lock(&state_mu_);
  stats_.idle = idle;
}

void ProjectionRunnerImpl::SetBackgroundState(
    std::optional<bool> holds_lease, std::optional<absl::Status> error) {
  internal::MutexLock lock(&state_mu_);
  if (holds_lease.has_value()) holds_lease_ = *holds_lease;
  if (error.has_value()) stats_.last_error = *std::move(error);
}

void ProjectionRunnerImpl::Loop() {
  std::unique_ptr<Lease> lease;
  // The checkpoint's position; unknown at first, after taking the lease and
  // after an error (a commit may have happened or not).
  std::optional<Position> position;
  int errors = 0;
  // When to look next for dead letters marked kRetrying (replay_retrying):
  // at once after starting, then every retrying_check_interval.
  absl::Time next_retrying_check = absl::InfinitePast();
  // next_rebuild_check_ as of the last batch, for the idle wait.
  absl::Time next_rebuild_check = absl::InfiniteFuture();
  const auto fail = [&](absl::Status status) {
    ++errors;
    const absl::Duration backoff = internal::JitteredBackoffDelay(
        options_.initial_backoff, options_.max_backoff, errors);
    observer_.BackgroundError(status, backoff);
    SetBackgroundState(std::nullopt, std::move(status));
    position.reset();
    worker_.WaitFor(backoff);
  };
  while (!worker_.stopping()) {
    if (options_.use_lease) {
      if (lease != nullptr && !lease->Valid()) {
        lease.reset();
        SetBackgroundState(false, std::nullopt);
        observer_.Lease(false, options_.lease_name,
                        "lost (its connection broke)", /*quiet=*/false);
      }
      if (lease == nullptr) {
        absl::StatusOr<std::unique_ptr<Lease>> acquired =
            store_.TryAcquireLease(options_.lease_name);
        if (!acquired.ok()) {
          fail(acquired.status());
          continue;
        }
        if (*acquired == nullptr) {
          worker_.WaitFor(options_.lease_retry_interval);
          continue;
        }
        lease = *std::move(acquired);
        position.reset();
        SetBackgroundState(true, std::nullopt);
        observer_.Lease(true, options_.lease_name, "gained", /*quiet=*/false);
      }
    }
    absl::Status status;
    bool idle = false;
    Position wait_after;
    {
      const Context context{true, lease.get()};
      internal::MutexLock lock(&work_mu_);
      if (!position.has_value()) {
        absl::StatusOr<Position> loaded = LoadCheckpoint(context);
        if (loaded.ok()) position = *loaded;
        status = loaded.status();
      } else {
        // Between batches (or after an idle wait), at most once per
        // rebuild_check_interval.
        absl::StatusOr<bool> rebuilt = RebuildIfRequested(context);
        if (rebuilt.ok() && *rebuilt) position = Position::Start();
        status = rebuilt.status();
      }
      next_rebuild_check = next_rebuild_check_;
      // With a filter, the page may end well before the head: wait for
      // events after the head as it was before the read, not after the
      // checkpoint, or non-matching events would wake the runner forever.
      Position head = Position::Start();
      if (status.ok() && !filter_.event_types.empty()) {
        absl::StatusOr<Position> h = store_.HeadPosition();
        if (h.ok()) head = *h;
        status = h.status();
      }
      bool interrupted = true;
      if (status.ok()) {
        BatchResult batch;
        status = RunBatch(context, *position, &batch);
        position = batch.counts.position;
        interrupted = batch.interrupted;
        idle = !batch.interrupted && (batch.read == 0 || batch.end_of_log);
        wait_after = std::max(batch.counts.position, head);
      }
      // Between batches (or after an idle wait), at most once per interval,
      // whatever the outcome: a failing look is not repeated at once.
      if (status.ok() && !interrupted && options_.replay_retrying &&
          absl::Now() >= next_retrying_check) {
        next_retrying_check = absl::Now() + options_.retrying_check_interval;
        status = ReplayRetrying(context);
      }
    }
    if (!status.ok()) {
      fail(std::move(status));
      continue;
    }
    if (errors > 0) {
      errors = 0;
      SetBackgroundState(std::nullopt, absl::OkStatus());
    }
    if (idle && !worker_.stopping()) {
      absl::Duration wait = options_.idle_wait;
      if (options_.replay_retrying) {
        // Wake up for the next look for dead letters marked kRetrying.
        wait = std::min(
            wait, std::max(next_retrying_check - absl::Now(), kMinIdleWait));
      }
      // And for the next look for a requested rebuild.
      wait = std::min(wait,
                      std::max(next_rebuild_check - absl::Now(), kMinIdleWait));
      SetIdle(true);
      absl::StatusOr<bool> woken = store_.WaitForEvents(wait_after, wait);
      SetIdle(false);
      if (!woken.ok()) fail(woken.status());
    }
  }
  if (lease != nullptr) {
    lease.reset();
    SetBackgroundState(false, std::nullopt);
    observer_.Lease(false, options_.lease_name, "released", /*quiet=*/false);
  } else {
    SetBackgroundState(false, std::nullopt);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<ProjectionRunner>> ProjectionRunner::Create(
    EventStore& store, Projection& projection,
    ProjectionRunnerOptions options) {
  std::string name = projection.name();
  ES_RETURN_IF_ERROR(ValidateOptions(name, options));
  return std::make_unique<ProjectionRunnerImpl>(
      store, &projection, nullptr, std::move(options), std::move(name),
      projection.event_types());
}

absl::StatusOr<std::unique_ptr<ProjectionRunner>> ProjectionRunner::Create(
    EventStore& store, TransactionalProjection& projection,
    ProjectionRunnerOptions options) {
  std::string name = projection.name();
  ES_RETURN_IF_ERROR(ValidateOptions(name, options));
  return std::make_unique<ProjectionRunnerImpl>(
      store, nullptr, &projection, std::move(options), std::move(name),
      projection.event_types());
}

}  // namespace eventstore
