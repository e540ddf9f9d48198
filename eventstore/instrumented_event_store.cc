#include "eventstore/instrumented_event_store.h"

#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/time/time.h"

namespace eventstore {
namespace {

using Clock = std::chrono::steady_clock;

absl::Duration Since(Clock::time_point start) {
  return absl::FromChrono(Clock::now() - start);
}

}  // namespace

InstrumentedEventStore::InstrumentedEventStore(
    std::unique_ptr<EventStore> target,
    std::shared_ptr<Instrumentation> instrumentation, std::string backend_label)
    : ForwardingEventStore(target.get()),
      owned_(std::move(target)),
      instrumentation_(std::move(instrumentation)),
      backend_label_(std::move(backend_label)) {}

absl::StatusOr<AppendResult> InstrumentedEventStore::Append(
    const AppendRequest& request) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<AppendResult> result = ForwardingEventStore::Append(request);
  AppendObservation observation;
  observation.latency = Since(start);
  observation.backend = backend_label_;
  observation.outcome = ClassifyAppend(result);
  observation.events = static_cast<int64_t>(request.events.size());
  for (const EventData& event : request.events) {
    observation.payload_bytes += static_cast<int64_t>(event.payload.size());
  }
  instrumentation_->OnAppend(observation);
  if (observation.outcome == AppendOutcome::kOk && !request.outbox.empty()) {
    instrumentation_->OnOutboxEnqueued(
        backend_label_, static_cast<int64_t>(request.outbox.size()));
  }
  return result;
}

absl::StatusOr<std::vector<RecordedEvent>> InstrumentedEventStore::ReadStream(
    std::string_view stream, const ReadStreamOptions& options) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<std::vector<RecordedEvent>> events =
      ForwardingEventStore::ReadStream(stream, options);
  ReadObservation observation;
  observation.latency = Since(start);
  observation.backend = backend_label_;
  observation.kind = ReadKind::kReadStream;
  observation.ok = events.ok();
  observation.events = events.ok() ? static_cast<int64_t>(events->size()) : 0;
  instrumentation_->OnRead(observation);
  return events;
}

absl::StatusOr<ReadAllPage> InstrumentedEventStore::ReadAll(
    const ReadAllOptions& options) {
  const Clock::time_point start = Clock::now();
  absl::StatusOr<ReadAllPage> page = ForwardingEventStore::ReadAll(options);
  ReadObservation observation;
  observation.latency = Since(start);
  observation.backend = backend_label_;
  observation.kind = ReadKind::kReadAll;
  observation.ok = page.ok();
  observation.events =
      page.ok() ? static_cast<int64_t>(page->events.size()) : 0;
  instrumentation_->OnRead(observation);
  return page;
}

std::unique_ptr<EventStore> Instrument(
    std::unique_ptr<EventStore> store,
    std::shared_ptr<Instrumentation> instrumentation,
    std::string backend_label) {
  if (store == nullptr || instrumentation == nullptr) return store;
  return std::make_unique<InstrumentedEventStore>(
      std::move(store), std::move(instrumentation), std::move(backend_label));
}

}  // namespace eventstore
