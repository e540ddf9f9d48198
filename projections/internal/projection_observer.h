// ProjectionObserver: what a ProjectionRunner reports about one projection
// to the Instrumentation, LogSink and Tracer of its options (any of which
// may be null: off).
//
//   ProjectionObserver observer(name, options.instrumentation,
//                               options.log_sink, options.tracer);
//   absl::Status handled = observer.Handle(event, [&] {
//     return projection.Handle(event);
//   });
//
// Without an instrumentation, a log sink or a tracer, each report costs a
// null check: no clock is read, nothing is allocated, no text is built.
// Log messages (component "projection_runner") are one line and name the
// projection, and the event (id, stream, version, position) concerned.
//
// Thread safety: every method may be called from any thread.
// Private to the projections library (not installed).

#ifndef EVENTSTORE_PROJECTIONS_INTERNAL_PROJECTION_OBSERVER_H_
#define EVENTSTORE_PROJECTIONS_INTERNAL_PROJECTION_OBSERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "eventstore/instrumentation.h"
#include "eventstore/log_sink.h"
#include "eventstore/position.h"
#include "eventstore/recorded_event.h"
#include "eventstore/tracing.h"

namespace eventstore::internal {

class ProjectionObserver {
 public:
  ProjectionObserver(std::string projection,
                     std::shared_ptr<Instrumentation> instrumentation,
                     std::shared_ptr<LogSink> log_sink,
                     std::shared_ptr<Tracer> tracer);

  // Whether an instrumentation is attached (lag is worth computing).
  bool measuring() const { return instrumentation_ != nullptr; }
  Tracer* tracer() const { return tracer_.get(); }

  // Calls `handler` for `event` inside an "eventstore.projection.handle"
  // span (a child of the event's trace context), and reports the call
  // (OnProjectionEvent). Returns the handler's status.
  absl::Status Handle(const RecordedEvent& event,
                      absl::FunctionRef<absl::Status()> handler);

  // The handler failed on `event` at attempt `attempt` of `max_attempts`
  // and is called again after `delay` (a warning).
  void WillRetry(const RecordedEvent& event, int attempt, int max_attempts,
                 const absl::Status& error, absl::Duration delay);
  // A failed event is handed to the handler again (OnProjectionRetry).
  void Retried();
  // The handler still answered kUnavailable after `attempts` calls: the
  // batch stops before `event`, which is tried again later (a warning).
  void GaveUpForNow(const RecordedEvent& event, int attempts,
                    const absl::Status& error);

  // `event` was parked in the dead-letter store with `error`
  // (OnProjectionDeadLetter, an error). `why` says after what: "after 5
  // attempts", "without handling (damaged)", "again after a replay".
  void Parked(const RecordedEvent& event, const absl::Status& error,
              std::string_view why);
  // The dead letter of `event` was replayed and resolved (info).
  void Resolved(const RecordedEvent& event);

  // A checkpoint at `checkpoint` with `lag_events` events after it
  // (OnProjectionCheckpoint).
  void Checkpoint(Position checkpoint, int64_t lag_events);

  // The lease `lease_name` was gained (held) or lost / released
  // (OnProjectionLease; info, or debug when `quiet`: a RunOnce or Rebuild
  // call takes and releases it each time). `how` completes the message:
  // "gained", "lost (its connection broke)", "released".
  void Lease(bool held, std::string_view lease_name, std::string_view how,
             bool quiet);

  // A rebuild that `requested_by` asked for at `requested_at`
  // (CheckpointStore::RequestRebuild) starts: the read model was cleared and
  // the checkpoint moved back to the start (info).
  void RebuildRequested(std::string_view requested_by, absl::Time requested_at);

  // The background thread failed with `error` (a store error, a lost
  // lease, a handler's kUnavailable) and tries again after `backoff` (a
  // warning).
  void BackgroundError(const absl::Status& error, absl::Duration backoff);

  // A store error the runner survives but cannot report otherwise (a
  // warning), e.g. reading the head of the log for the lag.
  void Warning(std::string_view what, const absl::Status& error);

 private:
  void Log(LogLevel level, std::string_view message) const;

  const std::string projection_;
  const std::shared_ptr<Instrumentation> instrumentation_;
  const std::shared_ptr<LogSink> log_sink_;
  const std::shared_ptr<Tracer> tracer_;
};

}  // namespace eventstore::internal

#endif  // EVENTSTORE_PROJECTIONS_INTERNAL_PROJECTION_OBSERVER_H_
