#include "eventstore/instrumented_event_store.h"

#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/time/time.h"
#include "eventstore/status_macros.h"

namespace eventstore {
namespace {

using Clock = std::chrono::steady_clock;

absl::Duration Since(Clock::time_point start) {
  return absl::FromChrono(Clock::now() - start);
}

// The trace context an append continues: its first event's.
TraceContext AppendParent(const AppendRequest& request) {
  if (request.events.empty()) return {};
  const v1::EventMetadata& metadata = request.events.front().metadata;
  return TraceContext{metadata.traceparent(), metadata.tracestate()};
}

// Reports one read call that started at `start`.
void ReportRead(Instrumentation& instrumentation, std::string_view backend,
                ReadKind kind, bool ok, int64_t returned,
                Clock::time_point start) {
  ReadObservation observation;
  observation.latency = Since(start);
  observation.backend = backend;
  observation.kind = kind;
  observation.ok = ok;
  observation.events = returned;
  instrumentation.OnRead(observation);
}

}  // namespace

InstrumentedEventStore::InstrumentedEventStore(
    std::unique_ptr<EventStore> target,
    std::shared_ptr<Instrumentation> instrumentation, std::string backend_label)
    : InstrumentedEventStore(
          std::move(target),
          InstrumentOptions{std::move(instrumentation), nullptr,
                            std::move(backend_label)}) {}

InstrumentedEventStore::InstrumentedEventStore(
    std::unique_ptr<EventStore> target, InstrumentOptions options)
    : ForwardingEventStore(target.get()),
      owned_(std::move(target)),
      instrumentation_(std::move(options.instrumentation)),
      tracer_(std::move(options.tracer)),
      backend_label_(std::move(options.backend_label)) {}

absl::StatusOr<AppendResult> InstrumentedEventStore::Append(
    const AppendRequest& request) {
  Clock::time_point start;
  if (instrumentation_ != nullptr) start = Clock::now();
  ScopedSpan span(tracer_.get(), "eventstore.append", SpanKind::kClient,
                  tracer_ != nullptr ? AppendParent(request) : TraceContext{});
  if (span) {
    span.SetAttribute("eventstore.backend", backend_label_);
    span.SetAttribute("eventstore.stream", request.stream);
    span.SetAttribute("eventstore.events",
                      static_cast<int64_t>(request.events.size()));
    span.SetAttribute("eventstore.expected_version",
                      request.expected.ToString());
  }
  absl::StatusOr<AppendResult> result = ForwardingEventStore::Append(request);
  const AppendOutcome outcome = ClassifyAppend(result);
  if (span) {
    span.SetAttribute("eventstore.outcome", AppendOutcomeName(outcome));
    span.SetStatus(result.status());
  }
  if (instrumentation_ == nullptr) return result;
  AppendObservation observation;
  observation.latency = Since(start);
  observation.backend = backend_label_;
  observation.outcome = outcome;
  observation.events = static_cast<int64_t>(request.events.size());
  for (const EventData& event : request.events) {
    observation.payload_bytes += static_cast<int64_t>(event.payload.size());
  }
  instrumentation_->OnAppend(observation);
  if (outcome == AppendOutcome::kOk && !request.outbox.empty()) {
    instrumentation_->OnOutboxEnqueued(
        backend_label_, static_cast<int64_t>(request.outbox.size()));
  }
  return result;
}

absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>>
InstrumentedEventStore::AppendEach(absl::Span<const AppendRequest> requests) {
  Clock::time_point start;
  if (instrumentation_ != nullptr) start = Clock::now();
  ScopedSpan span(tracer_.get(), "eventstore.append_each", SpanKind::kClient);
  if (span) {
    int64_t events = 0;
    for (const AppendRequest& request : requests) {
      events += static_cast<int64_t>(request.events.size());
    }
    span.SetAttribute("eventstore.backend", backend_label_);
    span.SetAttribute("eventstore.appends",
                      static_cast<int64_t>(requests.size()));
    span.SetAttribute("eventstore.events", events);
  }
  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> results =
      target()->AppendEach(requests);
  if (span) span.SetStatus(results.status());
  if (instrumentation_ == nullptr || requests.empty()) return results;
  const absl::Duration latency =
      Since(start) / static_cast<int64_t>(requests.size());
  // A call that failed as a whole: each append with the call's status.
  const AppendOutcome call_outcome =
      results.ok()
          ? AppendOutcome::kOk
          : ClassifyAppend(absl::StatusOr<AppendResult>(results.status()));
  for (size_t i = 0; i < requests.size(); ++i) {
    const AppendRequest& request = requests[i];
    AppendObservation observation;
    observation.latency = latency;
    observation.backend = backend_label_;
    observation.outcome = results.ok() && i < results->size()
                              ? ClassifyAppend((*results)[i])
                              : call_outcome;
    observation.events = static_cast<int64_t>(request.events.size());
    for (const EventData& event : request.events) {
      observation.payload_bytes += static_cast<int64_t>(event.payload.size());
    }
    instrumentation_->OnAppend(observation);
    if (observation.outcome == AppendOutcome::kOk && !request.outbox.empty()) {
      instrumentation_->OnOutboxEnqueued(
          backend_label_, static_cast<int64_t>(request.outbox.size()));
    }
  }
  return results;
}

// The owned reads are the reads into a fresh buffer: one place measures
// and traces both (a backend's ReadStream is its ReadStreamInto into a new
// vector too, and the default ReadStreamInto of any other target calls
// its ReadStream).
absl::StatusOr<std::vector<RecordedEvent>> InstrumentedEventStore::ReadStream(
    std::string_view stream, const ReadStreamOptions& options) {
  std::vector<RecordedEvent> events;
  ES_RETURN_IF_ERROR(ReadStreamInto(stream, options, events));
  return events;
}

absl::StatusOr<ReadAllPage> InstrumentedEventStore::ReadAll(
    const ReadAllOptions& options) {
  ReadAllPage page;
  ES_RETURN_IF_ERROR(ReadAllInto(options, page));
  return page;
}

absl::Status InstrumentedEventStore::ReadStreamInto(
    std::string_view stream, const ReadStreamOptions& options,
    std::vector<RecordedEvent>& events) {
  Clock::time_point start;
  if (instrumentation_ != nullptr) start = Clock::now();
  ScopedSpan span(tracer_.get(), "eventstore.read_stream", SpanKind::kClient);
  if (span) {
    span.SetAttribute("eventstore.backend", backend_label_);
    span.SetAttribute("eventstore.stream", stream);
  }
  const absl::Status status = target()->ReadStreamInto(stream, options, events);
  const int64_t returned =
      status.ok() ? static_cast<int64_t>(events.size()) : 0;
  if (span) {
    span.SetAttribute("eventstore.events", returned);
    span.SetStatus(status);
  }
  if (instrumentation_ != nullptr) {
    ReportRead(*instrumentation_, backend_label_, ReadKind::kReadStream,
               status.ok(), returned, start);
  }
  return status;
}

absl::Status InstrumentedEventStore::ReadAllInto(const ReadAllOptions& options,
                                                 ReadAllPage& page) {
  Clock::time_point start;
  if (instrumentation_ != nullptr) start = Clock::now();
  ScopedSpan span(tracer_.get(), "eventstore.read_all", SpanKind::kClient);
  if (span) {
    span.SetAttribute("eventstore.backend", backend_label_);
    span.SetAttribute("eventstore.from_position",
                      options.from_position.ToString());
  }
  const absl::Status status = target()->ReadAllInto(options, page);
  const int64_t returned =
      status.ok() ? static_cast<int64_t>(page.events.size()) : 0;
  if (span) {
    span.SetAttribute("eventstore.events", returned);
    span.SetStatus(status);
  }
  if (instrumentation_ != nullptr) {
    ReportRead(*instrumentation_, backend_label_, ReadKind::kReadAll,
               status.ok(), returned, start);
  }
  return status;
}

std::unique_ptr<EventStore> Instrument(
    std::unique_ptr<EventStore> store,
    std::shared_ptr<Instrumentation> instrumentation,
    std::string backend_label) {
  return Instrument(std::move(store),
                    InstrumentOptions{std::move(instrumentation), nullptr,
                                      std::move(backend_label)});
}

std::unique_ptr<EventStore> Instrument(std::unique_ptr<EventStore> store,
                                       InstrumentOptions options) {
  if (store == nullptr) return store;
  if (options.instrumentation == nullptr && options.tracer == nullptr) {
    return store;
  }
  return std::make_unique<InstrumentedEventStore>(std::move(store),
                                                  std::move(options));
}

}  // namespace eventstore
