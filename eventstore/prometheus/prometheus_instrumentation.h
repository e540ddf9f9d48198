// PrometheusInstrumentation: an Instrumentation (instrumentation.h) that
// keeps Prometheus metrics with prometheus-cpp, rendered in the Prometheus
// text exposition format. Target eventstore::prometheus (built when
// prometheus-cpp is found; EVENTSTORE_WITH_PROMETHEUS).
//
//   absl::StatusOr<std::shared_ptr<eventstore::PrometheusInstrumentation>>
//       metrics = eventstore::PrometheusInstrumentation::Create();
//   if (!metrics.ok()) return metrics.status();
//   std::unique_ptr<eventstore::EventStore> store =
//       eventstore::Instrument(*std::move(opened), *metrics, "sqlite");
//   ...
//   std::string text = (*metrics)->Render();  // the body of GET /metrics
//
// Every metric, with its type, labels and meaning, is listed in
// docs/observability.md. Names start with "eventstore_" and use base units
// (seconds, bytes). Latency histograms use kLatencyBucketsSeconds.
// Thread-safe: every method may be called concurrently.
//
// Cost: a series appears in the exposition once something is reported to
// it. Its first report adds it to its family (Family::Add: a label map
// built and hashed, the family's mutex); every later one finds it by its
// label value (backend, projection, mode) without a lock or an allocation,
// and updates it: an atomic add for counters and gauges, the histogram's
// own mutex for a latency. About 40 ns for OnAppend on the machine of
// docs/benchmarks.md ("Instrumentation overhead"). Lookups walk the label
// values seen so far, so keep them few, as Prometheus wants anyway.

#ifndef EVENTSTORE_PROMETHEUS_PROMETHEUS_INSTRUMENTATION_H_
#define EVENTSTORE_PROMETHEUS_PROMETHEUS_INSTRUMENTATION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/instrumentation.h"
#include "eventstore/position.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace eventstore {

// Upper bounds, in seconds, of the latency histograms' buckets: 50 µs to
// 10 s, about 2.5x apart (plus the implicit +Inf).
inline constexpr double kLatencyBucketsSeconds[] = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};

class PrometheusInstrumentation final : public Instrumentation {
 public:
  // Registers the metric families in `registry`, or in a registry of its
  // own when null (Render() then renders only these metrics). Pass an
  // application's registry to expose the store's metrics beside its own
  // through prometheus-cpp's Exposer. kAlreadyExists when the registry
  // holds a family of the same name that cannot be merged (another type or
  // help text). The families must stay in the registry (no
  // Registry::Remove) while this object lives: it keeps their series.
  static absl::StatusOr<std::shared_ptr<PrometheusInstrumentation>> Create(
      std::shared_ptr<prometheus::Registry> registry = nullptr);

  ~PrometheusInstrumentation() override;
  PrometheusInstrumentation(const PrometheusInstrumentation&) = delete;
  PrometheusInstrumentation& operator=(const PrometheusInstrumentation&) =
      delete;

  // Every metric of the registry in the Prometheus text exposition format
  // (version 0.0.4), by prometheus-cpp's TextSerializer.
  std::string Render() const;

  // The registry the metrics live in.
  const std::shared_ptr<prometheus::Registry>& registry() const;

  void OnAppend(const AppendObservation& append) override;
  void OnRead(const ReadObservation& read) override;
  void OnOutboxEnqueued(std::string_view backend, int64_t messages) override;

  void OnPoolConnections(std::string_view backend, int64_t in_use,
                         int64_t idle) override;
  void OnPoolWait(std::string_view backend, absl::Duration waited) override;
  void OnReconnect(std::string_view backend) override;

  void OnProjectionEvent(std::string_view projection, bool ok,
                         absl::Duration latency) override;
  void OnProjectionRetry(std::string_view projection) override;
  void OnProjectionDeadLetter(std::string_view projection) override;
  void OnProjectionCheckpoint(std::string_view projection, Position checkpoint,
                              int64_t lag_events) override;
  void OnProjectionLease(std::string_view projection, bool held) override;

  void OnOutboxSend(OutboxSendOutcome outcome, absl::Duration latency) override;
  void OnOutboxBacklog(int64_t pending,
                       absl::Duration oldest_pending_age) override;

  void OnFailoverMode(std::string_view mode) override;
  void OnFailoverJournaled() override;
  void OnFailoverReplayed(int64_t appends) override;
  void OnFailoverParked() override;
  void OnFailoverPending(int64_t appends) override;

  void OnReplicaBatch(int64_t events, int64_t lag_events,
                      absl::Duration lag_time) override;
  void OnReplicaError() override;
  void OnReplicaCaughtUp(absl::Time at) override;

 private:
  struct Families;
  PrometheusInstrumentation(std::shared_ptr<prometheus::Registry> registry,
                            std::unique_ptr<Families> families);

  const std::shared_ptr<prometheus::Registry> registry_;
  const std::unique_ptr<Families> families_;
};

}  // namespace eventstore

#endif  // EVENTSTORE_PROMETHEUS_PROMETHEUS_INSTRUMENTATION_H_
