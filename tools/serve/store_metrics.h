// StoreMetrics: the store-level gauges of `eventstore serve`'s /metrics,
// read from the database on each scrape (the process's own calls are
// measured by PrometheusInstrumentation beside them, in the same registry).
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   absl::StatusOr<std::unique_ptr<StoreMetrics>> gauges =
//       StoreMetrics::Create(*registry);
//   ...
//   absl::Status read = (*gauges)->Refresh(store);  // then render `registry`
//
// The gauges (docs/cli.md, section serve, lists them with their meaning):
//   eventstore_store_up                         1 when the last read worked
//   eventstore_store_head_position              commit part of the head
//   eventstore_store_events                     events in the log
//   eventstore_store_streams                    streams
//   eventstore_store_size_bytes                 StoreInfo::size_bytes
//   eventstore_store_projection_checkpoint_position{projection}
//   eventstore_store_projection_lag_events{projection}
//   eventstore_store_dead_letters{projection,status}   parked / retrying
//   eventstore_store_outbox_messages{status}    pending / published / failed
//   eventstore_store_outbox_oldest_pending_age_seconds
//
// Thread safety: Refresh may be called from several threads; calls are
// serialised, so that one scrape never sees another's half-set gauges when
// the caller renders under the same lock (see Refresh's `then`).

#ifndef EVENTSTORE_TOOLS_SERVE_STORE_METRICS_H_
#define EVENTSTORE_TOOLS_SERVE_STORE_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "eventstore/event_store.h"

namespace prometheus {
class Gauge;
template <typename T>
class Family;
class Registry;
}  // namespace prometheus

namespace eventstore::tools {

class StoreMetrics {
 public:
  // Registers the gauge families in `registry`, which must outlive this
  // object. kAlreadyExists when the registry holds a family of one of the
  // names with another type or help.
  static absl::StatusOr<std::unique_ptr<StoreMetrics>> Create(
      prometheus::Registry& registry);

  StoreMetrics(const StoreMetrics&) = delete;
  StoreMetrics& operator=(const StoreMetrics&) = delete;
  ~StoreMetrics();

  // Reads the store (StoreInspector::Info, the checkpoints and their lag,
  // dead-letter counts, outbox stats) and sets the gauges, then runs `then`
  // (e.g. rendering the registry) before another Refresh may start. On an
  // error, eventstore_store_up is 0, the other gauges keep the values of
  // the last read that worked, `then` still runs, and the error is
  // returned.
  absl::Status Refresh(EventStore& store,
                       const std::function<void()>& then = nullptr);

 private:
  struct Families;
  explicit StoreMetrics(std::unique_ptr<Families> families);
  absl::Status Read(EventStore& store) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  absl::Mutex mutex_;
  const std::unique_ptr<Families> families_;
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_STORE_METRICS_H_
