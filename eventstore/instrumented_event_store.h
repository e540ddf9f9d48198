// InstrumentedEventStore: a decorator that measures the calls made to a
// store and reports them to an Instrumentation (instrumentation.h).
//
//   absl::StatusOr<std::unique_ptr<eventstore::EventStore>> opened =
//       eventstore::OpenEventStore(url);
//   if (!opened.ok()) return opened.status();
//   std::unique_ptr<eventstore::EventStore> store = eventstore::Instrument(
//       *std::move(opened), metrics, "postgres");
//
// Append, ReadStream and ReadAll are timed (monotonic clock) and reported
// after they return: OnAppend with the outcome (ClassifyAppend), the
// request's event count and payload bytes; OnRead with the events returned;
// OnOutboxEnqueued when a committed append carried outbox messages. Every
// other call, and every result, passes through unchanged. Thread-safe when
// the wrapped store and the Instrumentation are.

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

namespace eventstore {

class InstrumentedEventStore final : public ForwardingEventStore {
 public:
  // REQUIRES: `target` and `instrumentation` are not null.
  // `backend_label` is reported as AppendObservation::backend (the
  // `backend` label of the metrics), e.g. "sqlite" or "postgres".
  InstrumentedEventStore(std::unique_ptr<EventStore> target,
                         std::shared_ptr<Instrumentation> instrumentation,
                         std::string backend_label);

  using EventStore::Append;
  using EventStore::ReadStream;

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override;
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override;
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override;

  const std::string& backend_label() const { return backend_label_; }

 private:
  const std::unique_ptr<EventStore> owned_;
  const std::shared_ptr<Instrumentation> instrumentation_;
  const std::string backend_label_;
};

// `store` reporting to `instrumentation` under `backend_label`; `store`
// itself when `instrumentation` is null (nothing is measured then). Null
// when `store` is null.
std::unique_ptr<EventStore> Instrument(
    std::unique_ptr<EventStore> store,
    std::shared_ptr<Instrumentation> instrumentation,
    std::string backend_label);

}  // namespace eventstore

#endif  // EVENTSTORE_INSTRUMENTED_EVENT_STORE_H_
