#include "eventstore/prometheus/prometheus_instrumentation.h"

#include <exception>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/internal/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace eventstore {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;
using prometheus::Registry;

Family<Counter>& CounterFamily(Registry& registry, const std::string& name,
                               const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

Family<Gauge>& GaugeFamily(Registry& registry, const std::string& name,
                           const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

Family<Histogram>& HistogramFamily(Registry& registry, const std::string& name,
                                   const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
}

Histogram::BucketBoundaries LatencyBuckets() {
  return Histogram::BucketBoundaries(std::begin(kLatencyBucketsSeconds),
                                     std::end(kLatencyBucketsSeconds));
}

// Family::Add returns the series of `labels`, creating it on first use.
void Observe(Family<Histogram>& family, const Labels& labels,
             absl::Duration latency) {
  family.Add(labels, LatencyBuckets()).Observe(absl::ToDoubleSeconds(latency));
}

std::string Str(std::string_view s) { return std::string(s); }

}  // namespace

// The metric families, registered once in the registry. prometheus-cpp's
// Family::Add and the metrics themselves are thread-safe; mutex_ guards only
// what this class keeps beside them.
struct PrometheusInstrumentation::Families {
  explicit Families(Registry& r)
      : appends(CounterFamily(r, "eventstore_appends_total",
                              "Append calls, by backend and outcome.")),
        appended_events(CounterFamily(
            r, "eventstore_appended_events_total",
            "Events committed by appends with outcome ok, by backend.")),
        appended_bytes(CounterFamily(
            r, "eventstore_appended_payload_bytes_total",
            "Payload bytes committed by appends with outcome ok, by "
            "backend.")),
        append_duration(HistogramFamily(
            r, "eventstore_append_duration_seconds",
            "Latency of append calls, whatever their outcome, by backend.")),
        reads(CounterFamily(r, "eventstore_reads_total",
                            "ReadStream and ReadAll calls, by backend, kind "
                            "and outcome (ok or error).")),
        read_events(CounterFamily(r, "eventstore_read_events_total",
                                  "Events returned by reads, by backend and "
                                  "kind.")),
        read_duration(HistogramFamily(r, "eventstore_read_duration_seconds",
                                      "Latency of read calls, by backend and "
                                      "kind.")),
        outbox_enqueued(CounterFamily(
            r, "eventstore_outbox_enqueued_total",
            "Outbox messages enqueued by committed appends, by backend.")),
        pool_connections(GaugeFamily(
            r, "eventstore_pool_connections",
            "PostgreSQL pool connections, by backend and state (in_use or "
            "idle).")),
        pool_waits(CounterFamily(
            r, "eventstore_pool_waits_total",
            "Times a caller waited for a PostgreSQL pool connection.")),
        pool_wait_seconds(
            CounterFamily(r, "eventstore_pool_wait_seconds_total",
                          "Time spent waiting for a PostgreSQL pool "
                          "connection.")),
        reconnects(CounterFamily(r, "eventstore_reconnects_total",
                                 "Lost database connections replaced by new "
                                 "ones, by backend.")),
        projection_events(CounterFamily(
            r, "eventstore_projection_events_total",
            "Handler calls, by projection and outcome (ok or error).")),
        projection_duration(HistogramFamily(
            r, "eventstore_projection_handler_duration_seconds",
            "Latency of projection handler calls, by projection.")),
        projection_retries(CounterFamily(
            r, "eventstore_projection_retries_total",
            "Failed events handed to the handler again, by projection.")),
        projection_dead_letters(CounterFamily(
            r, "eventstore_projection_dead_letters_total",
            "Events parked in the dead-letter store, by projection.")),
        projection_checkpoint(
            GaugeFamily(r, "eventstore_projection_checkpoint_position",
                        "Commit part of the last saved checkpoint position, by "
                        "projection.")),
        projection_lag(GaugeFamily(
            r, "eventstore_projection_lag_events",
            "Events in the log after the projection's checkpoint.")),
        projection_lease(GaugeFamily(
            r, "eventstore_projection_lease_held",
            "1 while this process holds the projection's lease, else 0.")),
        outbox_sends(CounterFamily(
            r, "eventstore_outbox_sends_total",
            "Outbox send attempts, by outcome (published, failed, "
            "gave_up).")),
        outbox_send_duration(
            HistogramFamily(r, "eventstore_outbox_send_duration_seconds",
                            "Latency of outbox send attempts.")),
        outbox_pending(GaugeFamily(r, "eventstore_outbox_pending_messages",
                                   "Outbox messages waiting to be "
                                   "published.")),
        outbox_oldest_age(GaugeFamily(
            r, "eventstore_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending outbox message; 0 when none.")),
        failover_mode(GaugeFamily(
            r, "eventstore_failover_mode",
            "1 for the failover store's current mode (primary, fallback, "
            "recovering), 0 for a mode it left.")),
        failover_journaled(
            CounterFamily(r, "eventstore_failover_journaled_total",
                          "Appends written to the failover journal.")),
        failover_replayed(
            CounterFamily(r, "eventstore_failover_replayed_total",
                          "Journaled appends replayed on the primary.")),
        failover_parked(CounterFamily(
            r, "eventstore_failover_parked_total",
            "Journaled appends parked because they conflict on the "
            "primary.")),
        failover_pending(
            GaugeFamily(r, "eventstore_failover_pending_appends",
                        "Journaled appends waiting to be replayed.")) {}

  Family<Counter>& appends;
  Family<Counter>& appended_events;
  Family<Counter>& appended_bytes;
  Family<Histogram>& append_duration;
  Family<Counter>& reads;
  Family<Counter>& read_events;
  Family<Histogram>& read_duration;
  Family<Counter>& outbox_enqueued;
  Family<Gauge>& pool_connections;
  Family<Counter>& pool_waits;
  Family<Counter>& pool_wait_seconds;
  Family<Counter>& reconnects;
  Family<Counter>& projection_events;
  Family<Histogram>& projection_duration;
  Family<Counter>& projection_retries;
  Family<Counter>& projection_dead_letters;
  Family<Gauge>& projection_checkpoint;
  Family<Gauge>& projection_lag;
  Family<Gauge>& projection_lease;
  Family<Counter>& outbox_sends;
  Family<Histogram>& outbox_send_duration;
  Family<Gauge>& outbox_pending;
  Family<Gauge>& outbox_oldest_age;
  Family<Gauge>& failover_mode;
  Family<Counter>& failover_journaled;
  Family<Counter>& failover_replayed;
  Family<Counter>& failover_parked;
  Family<Gauge>& failover_pending;

  internal::Mutex mutex;
  // The mode last reported to OnFailoverMode; empty before the first.
  std::string failover_mode_now ABSL_GUARDED_BY(mutex);
};

absl::StatusOr<std::shared_ptr<PrometheusInstrumentation>>
PrometheusInstrumentation::Create(std::shared_ptr<Registry> registry) {
  if (registry == nullptr) registry = std::make_shared<Registry>();
  std::unique_ptr<Families> families;
  try {
    families = std::make_unique<Families>(*registry);
  } catch (const std::exception& e) {
    return absl::AlreadyExistsError(
        absl::StrCat("prometheus registry: cannot register the eventstore "
                     "metrics: ",
                     e.what()));
  }
  return std::shared_ptr<PrometheusInstrumentation>(
      new PrometheusInstrumentation(std::move(registry), std::move(families)));
}

PrometheusInstrumentation::PrometheusInstrumentation(
    std::shared_ptr<Registry> registry, std::unique_ptr<Families> families)
    : registry_(std::move(registry)), families_(std::move(families)) {}

PrometheusInstrumentation::~PrometheusInstrumentation() = default;

std::string PrometheusInstrumentation::Render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

const std::shared_ptr<Registry>& PrometheusInstrumentation::registry() const {
  return registry_;
}

void PrometheusInstrumentation::OnAppend(const AppendObservation& append) {
  const std::string backend = Str(append.backend);
  families_->appends
      .Add({{"backend", backend},
            {"outcome", Str(AppendOutcomeName(append.outcome))}})
      .Increment();
  if (append.outcome == AppendOutcome::kOk) {
    families_->appended_events.Add({{"backend", backend}})
        .Increment(static_cast<double>(append.events));
    families_->appended_bytes.Add({{"backend", backend}})
        .Increment(static_cast<double>(append.payload_bytes));
  }
  Observe(families_->append_duration, {{"backend", backend}}, append.latency);
}

void PrometheusInstrumentation::OnRead(const ReadObservation& read) {
  const Labels labels = {{"backend", Str(read.backend)},
                         {"kind", Str(ReadKindName(read.kind))}};
  Labels with_outcome = labels;
  with_outcome.emplace("outcome", read.ok ? "ok" : "error");
  families_->reads.Add(with_outcome).Increment();
  families_->read_events.Add(labels).Increment(
      static_cast<double>(read.events));
  Observe(families_->read_duration, labels, read.latency);
}

void PrometheusInstrumentation::OnOutboxEnqueued(std::string_view backend,
                                                 int64_t messages) {
  families_->outbox_enqueued.Add({{"backend", Str(backend)}})
      .Increment(static_cast<double>(messages));
}

void PrometheusInstrumentation::OnPoolConnections(std::string_view backend,
                                                  int64_t in_use,
                                                  int64_t idle) {
  families_->pool_connections
      .Add({{"backend", Str(backend)}, {"state", "in_use"}})
      .Set(static_cast<double>(in_use));
  families_->pool_connections
      .Add({{"backend", Str(backend)}, {"state", "idle"}})
      .Set(static_cast<double>(idle));
}

void PrometheusInstrumentation::OnPoolWait(std::string_view backend,
                                           absl::Duration waited) {
  families_->pool_waits.Add({{"backend", Str(backend)}}).Increment();
  families_->pool_wait_seconds.Add({{"backend", Str(backend)}})
      .Increment(absl::ToDoubleSeconds(waited));
}

void PrometheusInstrumentation::OnReconnect(std::string_view backend) {
  families_->reconnects.Add({{"backend", Str(backend)}}).Increment();
}

void PrometheusInstrumentation::OnProjectionEvent(std::string_view projection,
                                                  bool ok,
                                                  absl::Duration latency) {
  families_->projection_events
      .Add({{"projection", Str(projection)}, {"outcome", ok ? "ok" : "error"}})
      .Increment();
  Observe(families_->projection_duration, {{"projection", Str(projection)}},
          latency);
}

void PrometheusInstrumentation::OnProjectionRetry(std::string_view projection) {
  families_->projection_retries.Add({{"projection", Str(projection)}})
      .Increment();
}

void PrometheusInstrumentation::OnProjectionDeadLetter(
    std::string_view projection) {
  families_->projection_dead_letters.Add({{"projection", Str(projection)}})
      .Increment();
}

void PrometheusInstrumentation::OnProjectionCheckpoint(
    std::string_view projection, Position checkpoint, int64_t lag_events) {
  families_->projection_checkpoint.Add({{"projection", Str(projection)}})
      .Set(static_cast<double>(checkpoint.commit()));
  families_->projection_lag.Add({{"projection", Str(projection)}})
      .Set(static_cast<double>(lag_events));
}

void PrometheusInstrumentation::OnProjectionLease(std::string_view projection,
                                                  bool held) {
  families_->projection_lease.Add({{"projection", Str(projection)}})
      .Set(held ? 1 : 0);
}

void PrometheusInstrumentation::OnOutboxSend(OutboxSendOutcome outcome,
                                             absl::Duration latency) {
  families_->outbox_sends
      .Add({{"outcome", Str(OutboxSendOutcomeName(outcome))}})
      .Increment();
  Observe(families_->outbox_send_duration, {}, latency);
}

void PrometheusInstrumentation::OnOutboxBacklog(
    int64_t pending, absl::Duration oldest_pending_age) {
  families_->outbox_pending.Add({}).Set(static_cast<double>(pending));
  families_->outbox_oldest_age.Add({}).Set(
      absl::ToDoubleSeconds(oldest_pending_age));
}

void PrometheusInstrumentation::OnFailoverMode(std::string_view mode) {
  internal::MutexLock lock(&families_->mutex);
  if (!families_->failover_mode_now.empty() &&
      families_->failover_mode_now != mode) {
    families_->failover_mode.Add({{"mode", families_->failover_mode_now}})
        .Set(0);
  }
  families_->failover_mode_now = Str(mode);
  families_->failover_mode.Add({{"mode", Str(mode)}}).Set(1);
}

void PrometheusInstrumentation::OnFailoverJournaled() {
  families_->failover_journaled.Add({}).Increment();
}

void PrometheusInstrumentation::OnFailoverReplayed(int64_t appends) {
  families_->failover_replayed.Add({}).Increment(static_cast<double>(appends));
}

void PrometheusInstrumentation::OnFailoverParked() {
  families_->failover_parked.Add({}).Increment();
}

void PrometheusInstrumentation::OnFailoverPending(int64_t appends) {
  families_->failover_pending.Add({}).Set(static_cast<double>(appends));
}

}  // namespace eventstore
