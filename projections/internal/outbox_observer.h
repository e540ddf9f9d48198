// OutboxObserver: what an OutboxPublisher reports to the Instrumentation,
// LogSink and Tracer of its options (any of which may be null: off).
//
//   OutboxObserver observer(options.instrumentation, options.log_sink,
//                           options.tracer);
//   std::vector<absl::Status> sent = observer.SendBatch(
//       batch, max_attempts, [&] { return sink.SendBatch(batch); });
//
// Without an instrumentation, a log sink or a tracer, each report costs a
// null check: no clock is read, nothing is allocated, no text is built.
// Log messages (component "outbox_publisher") are one line and name the
// outbox message by id (not its destination, which may be a URL).
//
// Thread safety: every method may be called from any thread.
// Private to the projections library (not installed).

#ifndef EVENTSTORE_PROJECTIONS_INTERNAL_OUTBOX_OBSERVER_H_
#define EVENTSTORE_PROJECTIONS_INTERNAL_OUTBOX_OBSERVER_H_

#include <chrono>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/instrumentation.h"
#include "eventstore/log_sink.h"
#include "eventstore/outbox_store.h"
#include "eventstore/tracing.h"

namespace eventstore::internal {

// Whether a failed send gives its message up at once, whatever its
// attempts: kInvalidArgument, a message the receiver will never take
// (OutboxSink::SendBatch).
inline bool GivesUpAtOnce(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument;
}

// Whether a failed send says only that the receiver could not be reached
// (kUnavailable: a broker down or restarting, no acknowledgement in time):
// the message is given back without counting an attempt
// (OutboxStore::Release), so an outage gives nothing up.
inline bool ReceiverUnreachable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable;
}

class OutboxObserver {
 public:
  OutboxObserver(std::shared_ptr<Instrumentation> instrumentation,
                 std::shared_ptr<LogSink> log_sink,
                 std::shared_ptr<Tracer> tracer);

  // Whether an instrumentation is attached (the backlog is worth reading).
  bool measuring() const { return instrumentation_ != nullptr; }

  // Calls `send` for `batch` (which returns one status per entry, in
  // order) inside an "eventstore.outbox.send" span per entry (a child of
  // the message's traceparent / tracestate headers), and reports each
  // attempt (OnOutboxSend with the batch's latency: kGaveUp when it failed
  // for the `max_attempts`th time or for good (GivesUpAtOnce), else
  // kFailed or kPublished; a ReceiverUnreachable failure is never given
  // up) with a log message for a failure (a warning, or
  // an error when given up). Returns what `send` returned.
  std::vector<absl::Status> SendBatch(
      absl::Span<const OutboxEntry> batch, int max_attempts,
      absl::FunctionRef<std::vector<absl::Status>()> send);

  // SendBatch in two halves, for a batch kept in flight while the next
  // one is handed over (OutboxSink::BeginBatch / EndBatch): StartSending
  // before `batch` goes to the sink, FinishSending with its statuses (the
  // same reports as SendBatch). Movable.
  struct Sending {
    // One per entry when tracing; a deque: spans are neither copied nor
    // moved.
    std::deque<ScopedSpan> spans;
    std::chrono::steady_clock::time_point start;
  };
  Sending StartSending(absl::Span<const OutboxEntry> batch) const;
  void FinishSending(Sending& sending, absl::Span<const OutboxEntry> batch,
                     int max_attempts,
                     const std::vector<absl::Status>& results) const;

  // OnOutboxBacklog.
  void Backlog(const OutboxBacklog& backlog);

  // The background thread of publisher `worker` failed with a store error
  // and tries again after `backoff` (a warning).
  void BackgroundError(std::string_view worker, const absl::Status& error,
                       absl::Duration backoff);

  // An error the publisher survives but reports no other way (a warning).
  void Warning(std::string_view what, const absl::Status& error);

 private:
  const std::shared_ptr<Instrumentation> instrumentation_;
  const std::shared_ptr<LogSink> log_sink_;
  const std::shared_ptr<Tracer> tracer_;
};

}  // namespace eventstore::internal

#endif  // EVENTSTORE_PROJECTIONS_INTERNAL_OUTBOX_OBSERVER_H_
