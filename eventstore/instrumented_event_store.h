// InstrumentedEventStore: a decorator that measures the calls made to a
// store and reports them to an Instrumentation (instrumentation.h), and
// traces them through a Tracer (tracing.h).
//
//   absl::StatusOr<std::unique_ptr<eventstore::EventStore>> opened =
//       eventstore::OpenEventStore(url);
//   if (!opened.ok()) return opened.status();
//   std::unique_ptr<eventstore::EventStore> store = eventstore::Instrument(
//       *std::move(opened), metrics, "postgres");
//
//   // Or metrics and spans:
//   eventstore::InstrumentOptions options;
//   options.instrumentation = metrics;  // may be null
//   options.tracer = tracer;            // may be null
//   options.backend_label = "postgres";
//   store = eventstore::Instrument(*std::move(opened), std::move(options));
//
// Append, ReadStream and ReadAll are timed (monotonic clock) and reported
// after they return: OnAppend with the outcome (ClassifyAppend), the
// request's event count and payload bytes; OnRead with the events returned;
// OnOutboxEnqueued when a committed append carried outbox messages.
// AppendEach is forwarded to the target's AppendEach (so a backend's batch
// stays one transaction) and timed as a whole; each of its appends is
// reported with OnAppend as Append reports it, with latency the batch's
// latency divided by the number of appends (a call that failed as a whole
// reports every append with the call's status), and the call is one span
// "eventstore.append_each" (eventstore.backend, eventstore.appends,
// eventstore.events). Every other call, and every result, passes through
// unchanged. Thread-safe when
// the wrapped store, the Instrumentation and the Tracer are.
//
// With a Tracer, each of those three calls is a span (SpanKind::kClient):
//   "eventstore.append"       child of the first event's metadata trace
//                             context (CommandContext::trace) when it has
//                             one; eventstore.backend, eventstore.stream,
//                             eventstore.events (in the request),
//                             eventstore.expected_version (ToString()),
//                             eventstore.outcome (AppendOutcomeName)
//   "eventstore.read_stream"  eventstore.backend, eventstore.stream,
//                             eventstore.events (returned)
//   "eventstore.read_all"     eventstore.backend, eventstore.from_position
//                             (Position::ToString()), eventstore.events
//                             (returned)
// A call that fails sets the span's error (Span::SetError). Without an
// Instrumentation the clock is not read; without a Tracer nothing is
// allocated or called for spans.

#ifndef EVENTSTORE_INSTRUMENTED_EVENT_STORE_H_
#define EVENTSTORE_INSTRUMENTED_EVENT_STORE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/tracing.h"

namespace eventstore {

// What Instrument() attaches to a store.
struct InstrumentOptions {
  // Receives OnAppend, OnRead and OnOutboxEnqueued. Null: nothing measured
  // (the clock is not read).
  std::shared_ptr<Instrumentation> instrumentation;
  // Starts the spans above. Null: no spans.
  std::shared_ptr<Tracer> tracer;
  // The `backend` label of the metrics and the eventstore.backend span
  // attribute, e.g. "sqlite" or "postgres". Default empty.
  std::string backend_label;
};

class InstrumentedEventStore final : public ForwardingEventStore {
 public:
  // REQUIRES: `target` is not null. Either pointer of `options` may be null.
  InstrumentedEventStore(std::unique_ptr<EventStore> target,
                         InstrumentOptions options);
  // REQUIRES: `target` is not null.
  // `backend_label` is reported as AppendObservation::backend (the
  // `backend` label of the metrics), e.g. "sqlite" or "postgres".
  InstrumentedEventStore(std::unique_ptr<EventStore> target,
                         std::shared_ptr<Instrumentation> instrumentation,
                         std::string backend_label);

  using EventStore::Append;
  using EventStore::ReadStream;

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override;
  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests) override;
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override;
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override;
  // Measured and traced as ReadStream and ReadAll are (the same metrics and
  // span names), forwarded to the target's own, so that its reuse of the
  // caller's buffer is kept.
  absl::Status ReadStreamInto(std::string_view stream,
                              const ReadStreamOptions& options,
                              std::vector<RecordedEvent>& events) override;
  absl::Status ReadAllInto(const ReadAllOptions& options,
                           ReadAllPage& page) override;

  const std::string& backend_label() const { return backend_label_; }

 private:
  const std::unique_ptr<EventStore> owned_;
  const std::shared_ptr<Instrumentation> instrumentation_;
  const std::shared_ptr<Tracer> tracer_;
  const std::string backend_label_;
};

// `store` reporting to `instrumentation` under `backend_label`; `store`
// itself when `instrumentation` is null (nothing is measured then). Null
// when `store` is null.
std::unique_ptr<EventStore> Instrument(
    std::unique_ptr<EventStore> store,
    std::shared_ptr<Instrumentation> instrumentation,
    std::string backend_label);

// `store` reporting to options.instrumentation and traced through
// options.tracer; `store` itself when both are null. Null when `store` is
// null.
std::unique_ptr<EventStore> Instrument(std::unique_ptr<EventStore> store,
                                       InstrumentOptions options);

}  // namespace eventstore

#endif  // EVENTSTORE_INSTRUMENTED_EVENT_STORE_H_
