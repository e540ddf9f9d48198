// OutboxObserver: what an OutboxPublisher reports to the Instrumentation,
// LogSink and Tracer of its options (any of which may be null: off).
//
//   OutboxObserver observer(options.instrumentation, options.log_sink,
//                           options.tracer);
//   absl::Status sent = observer.Send(entry, max_attempts, [&] {
//     return sink.Send(entry);
//   });
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

#include <memory>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "eventstore/instrumentation.h"
#include "eventstore/log_sink.h"
#include "eventstore/outbox_store.h"
#include "eventstore/tracing.h"

namespace eventstore::internal {

class OutboxObserver {
 public:
  OutboxObserver(std::shared_ptr<Instrumentation> instrumentation,
                 std::shared_ptr<LogSink> log_sink,
                 std::shared_ptr<Tracer> tracer);

  // Whether an instrumentation is attached (the backlog is worth reading).
  bool measuring() const { return instrumentation_ != nullptr; }

  // Calls `send` for `entry` inside an "eventstore.outbox.send" span (a
  // child of the message's traceparent / tracestate headers), and reports
  // the attempt (OnOutboxSend: kGaveUp when it fails for the
  // `max_attempts`th time, else kFailed or kPublished) with a log message
  // for a failure (a warning, or an error when given up). Returns the
  // status of `send`.
  absl::Status Send(const OutboxEntry& entry, int max_attempts,
                    absl::FunctionRef<absl::Status()> send);

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
