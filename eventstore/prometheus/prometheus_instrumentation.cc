#include "eventstore/prometheus/prometheus_instrumentation.h"

#include <atomic>
#include <cstddef>
#include <exception>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/attributes.h"
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

// Family::Add returns the series of `labels`, creating it on first use;
// it allocates and hashes a label map on every call, so each series is
// added once and then reached through a SeriesSlot.
Counter& AddSeries(Family<Counter>& family, const Labels& labels) {
  return family.Add(labels);
}
Gauge& AddSeries(Family<Gauge>& family, const Labels& labels) {
  return family.Add(labels);
}
Histogram& AddSeries(Family<Histogram>& family, const Labels& labels) {
  return family.Add(labels, LatencyBuckets());
}

std::string Str(std::string_view s) { return std::string(s); }

// Label names and values of one series, built into a prometheus::Labels
// only when the series is added.
using LabelList =
    std::initializer_list<std::pair<const char*, std::string_view>>;

// One series of a family, added on first use (so that a series appears in
// the exposition only once something was reported to it, as when every
// call went through Family::Add) and read without a lock afterwards.
// Threads racing on the first use all call Family::Add, which returns the
// same series for the same labels, so they agree.
template <typename Metric>
class SeriesSlot {
 public:
  Metric& Get(Family<Metric>& family, LabelList labels) {
    Metric* metric = metric_.load(std::memory_order_acquire);
    if (metric != nullptr) return *metric;
    return Add(family, labels);
  }

 private:
  ABSL_ATTRIBUTE_NOINLINE Metric& Add(Family<Metric>& family,
                                      LabelList labels) {
    Labels built;
    for (const auto& [name, value] : labels) built.emplace(name, Str(value));
    Metric& metric = AddSeries(family, built);
    metric_.store(&metric, std::memory_order_release);
    return metric;
  }

  std::atomic<Metric*> metric_{nullptr};
};

// The Entry of each label value (a backend label, a projection name, a
// failover mode), made on first use and kept as long as the map. Get takes
// no lock for a value seen before: entries form a list that only grows,
// each published by a release store of the head; insertions are serialised
// by a mutex. A lookup compares the value with each entry's, newest first:
// meant for the few values a process reports under (label values must be
// a small bounded set for Prometheus anyway).
template <typename Entry>
class ByLabel {
 public:
  ByLabel() = default;
  ByLabel(const ByLabel&) = delete;
  ByLabel& operator=(const ByLabel&) = delete;
  ~ByLabel() {
    const Node* node = head_.load(std::memory_order_acquire);
    while (node != nullptr) {
      const Node* next = node->next;
      delete node;
      node = next;
    }
  }

  Entry& Get(std::string_view label) {
    if (Entry* entry = Find(head_.load(std::memory_order_acquire), label)) {
      return *entry;
    }
    return Insert(label);
  }

 private:
  struct Node {
    explicit Node(std::string_view label, const Node* next)
        : label(label), next(next) {}
    const std::string label;
    const Node* const next;
    mutable Entry entry;
  };

  static Entry* Find(const Node* node, std::string_view label) {
    for (; node != nullptr; node = node->next) {
      if (node->label == label) return &node->entry;
    }
    return nullptr;
  }

  ABSL_ATTRIBUTE_NOINLINE Entry& Insert(std::string_view label) {
    internal::MutexLock lock(&mutex_);
    const Node* head = head_.load(std::memory_order_acquire);
    if (Entry* entry = Find(head, label)) return *entry;
    const Node* node = new Node(label, head);
    head_.store(node, std::memory_order_release);
    return node->entry;
  }

  std::atomic<const Node*> head_{nullptr};
  internal::Mutex mutex_;
};

// The index of an enumerator declared in order from 0.
template <typename Enum>
size_t Index(Enum value) {
  return static_cast<size_t>(value);
}

static_assert(std::size(kAllAppendOutcomes) == 6 &&
                  static_cast<int>(AppendOutcome::kOther) == 5,
              "BackendSeries::appends has a slot per AppendOutcome");

// The series labelled with one backend.
struct BackendSeries {
  // By AppendOutcome.
  SeriesSlot<Counter> appends[std::size(kAllAppendOutcomes)];
  SeriesSlot<Counter> appended_events;
  SeriesSlot<Counter> appended_bytes;
  SeriesSlot<Histogram> append_duration;
  // By ReadKind, then ok (1) or error (0).
  SeriesSlot<Counter> reads[2][2];
  SeriesSlot<Counter> read_events[2];
  SeriesSlot<Histogram> read_duration[2];
  SeriesSlot<Counter> outbox_enqueued;
  SeriesSlot<Gauge> pool_in_use;
  SeriesSlot<Gauge> pool_idle;
  SeriesSlot<Counter> pool_waits;
  SeriesSlot<Counter> pool_wait_seconds;
  SeriesSlot<Counter> reconnects;
};

// The series labelled with one projection.
struct ProjectionSeries {
  // Error (0) or ok (1).
  SeriesSlot<Counter> events[2];
  SeriesSlot<Histogram> duration;
  SeriesSlot<Counter> retries;
  SeriesSlot<Counter> dead_letters;
  SeriesSlot<Gauge> checkpoint;
  SeriesSlot<Gauge> lag;
  SeriesSlot<Gauge> lease;
};

}  // namespace

// The metric families, registered once in the registry, and their series
// (SeriesSlot, ByLabel: added on first use, then reached without a lock or
// an allocation). prometheus-cpp's Family::Add and the metrics themselves
// are thread-safe; `mutex` guards only the failover mode kept beside them.
// The families must stay in the registry as long as this object lives.
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
                        "Journaled appends waiting to be replayed.")),
        replica_events(CounterFamily(
            r, "eventstore_replica_events_total",
            "Events copied from the primary into the local replica.")),
        replica_lag_events(GaugeFamily(
            r, "eventstore_replica_lag_events",
            "Events the local replica is behind the primary's head, as of "
            "its last batch.")),
        replica_lag_seconds(
            GaugeFamily(r, "eventstore_replica_lag_seconds",
                        "How far the local replica's last event is behind the "
                        "primary's head in time, as of its last batch.")),
        replica_errors(CounterFamily(
            r, "eventstore_replica_errors_total",
            "Replica syncs that failed (primary unreachable or refused).")),
        replica_last_sync(GaugeFamily(
            r, "eventstore_replica_last_sync_timestamp_seconds",
            "When a sync of the local replica last reached the end of the "
            "primary's log (Unix time).")) {}

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
  Family<Counter>& replica_events;
  Family<Gauge>& replica_lag_events;
  Family<Gauge>& replica_lag_seconds;
  Family<Counter>& replica_errors;
  Family<Gauge>& replica_last_sync;

  // The series, by label value; the unlabelled ones once.
  ByLabel<BackendSeries> backends;
  ByLabel<ProjectionSeries> projections;
  // By OutboxSendOutcome.
  SeriesSlot<Counter> outbox_sends_by_outcome[3];
  SeriesSlot<Histogram> outbox_send_latency;
  SeriesSlot<Gauge> outbox_pending_now;
  SeriesSlot<Gauge> outbox_oldest_age_now;
  ByLabel<SeriesSlot<Gauge>> failover_modes;
  SeriesSlot<Counter> failover_journaled_count;
  SeriesSlot<Counter> failover_replayed_count;
  SeriesSlot<Counter> failover_parked_count;
  SeriesSlot<Gauge> failover_pending_now;
  SeriesSlot<Counter> replica_events_count;
  SeriesSlot<Gauge> replica_lag_events_now;
  SeriesSlot<Gauge> replica_lag_seconds_now;
  SeriesSlot<Counter> replica_errors_count;
  SeriesSlot<Gauge> replica_last_sync_now;

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
  Families& f = *families_;
  BackendSeries& series = f.backends.Get(append.backend);
  series.appends[Index(append.outcome)]
      .Get(f.appends, {{"backend", append.backend},
                       {"outcome", AppendOutcomeName(append.outcome)}})
      .Increment();
  if (append.outcome == AppendOutcome::kOk) {
    series.appended_events.Get(f.appended_events, {{"backend", append.backend}})
        .Increment(static_cast<double>(append.events));
    series.appended_bytes.Get(f.appended_bytes, {{"backend", append.backend}})
        .Increment(static_cast<double>(append.payload_bytes));
  }
  series.append_duration.Get(f.append_duration, {{"backend", append.backend}})
      .Observe(absl::ToDoubleSeconds(append.latency));
}

void PrometheusInstrumentation::OnRead(const ReadObservation& read) {
  Families& f = *families_;
  BackendSeries& series = f.backends.Get(read.backend);
  const size_t kind = Index(read.kind);
  const std::string_view kind_name = ReadKindName(read.kind);
  series.reads[kind][read.ok ? 1 : 0]
      .Get(f.reads, {{"backend", read.backend},
                     {"kind", kind_name},
                     {"outcome", read.ok ? "ok" : "error"}})
      .Increment();
  series.read_events[kind]
      .Get(f.read_events, {{"backend", read.backend}, {"kind", kind_name}})
      .Increment(static_cast<double>(read.events));
  series.read_duration[kind]
      .Get(f.read_duration, {{"backend", read.backend}, {"kind", kind_name}})
      .Observe(absl::ToDoubleSeconds(read.latency));
}

void PrometheusInstrumentation::OnOutboxEnqueued(std::string_view backend,
                                                 int64_t messages) {
  Families& f = *families_;
  f.backends.Get(backend)
      .outbox_enqueued.Get(f.outbox_enqueued, {{"backend", backend}})
      .Increment(static_cast<double>(messages));
}

void PrometheusInstrumentation::OnPoolConnections(std::string_view backend,
                                                  int64_t in_use,
                                                  int64_t idle) {
  Families& f = *families_;
  BackendSeries& series = f.backends.Get(backend);
  series.pool_in_use
      .Get(f.pool_connections, {{"backend", backend}, {"state", "in_use"}})
      .Set(static_cast<double>(in_use));
  series.pool_idle
      .Get(f.pool_connections, {{"backend", backend}, {"state", "idle"}})
      .Set(static_cast<double>(idle));
}

void PrometheusInstrumentation::OnPoolWait(std::string_view backend,
                                           absl::Duration waited) {
  Families& f = *families_;
  BackendSeries& series = f.backends.Get(backend);
  series.pool_waits.Get(f.pool_waits, {{"backend", backend}}).Increment();
  series.pool_wait_seconds.Get(f.pool_wait_seconds, {{"backend", backend}})
      .Increment(absl::ToDoubleSeconds(waited));
}

void PrometheusInstrumentation::OnReconnect(std::string_view backend) {
  Families& f = *families_;
  f.backends.Get(backend)
      .reconnects.Get(f.reconnects, {{"backend", backend}})
      .Increment();
}

void PrometheusInstrumentation::OnProjectionEvent(std::string_view projection,
                                                  bool ok,
                                                  absl::Duration latency) {
  Families& f = *families_;
  ProjectionSeries& series = f.projections.Get(projection);
  series.events[ok ? 1 : 0]
      .Get(f.projection_events,
           {{"projection", projection}, {"outcome", ok ? "ok" : "error"}})
      .Increment();
  series.duration.Get(f.projection_duration, {{"projection", projection}})
      .Observe(absl::ToDoubleSeconds(latency));
}

void PrometheusInstrumentation::OnProjectionRetry(std::string_view projection) {
  Families& f = *families_;
  f.projections.Get(projection)
      .retries.Get(f.projection_retries, {{"projection", projection}})
      .Increment();
}

void PrometheusInstrumentation::OnProjectionDeadLetter(
    std::string_view projection) {
  Families& f = *families_;
  f.projections.Get(projection)
      .dead_letters.Get(f.projection_dead_letters, {{"projection", projection}})
      .Increment();
}

void PrometheusInstrumentation::OnProjectionCheckpoint(
    std::string_view projection, Position checkpoint, int64_t lag_events) {
  Families& f = *families_;
  ProjectionSeries& series = f.projections.Get(projection);
  series.checkpoint.Get(f.projection_checkpoint, {{"projection", projection}})
      .Set(static_cast<double>(checkpoint.commit()));
  series.lag.Get(f.projection_lag, {{"projection", projection}})
      .Set(static_cast<double>(lag_events));
}

void PrometheusInstrumentation::OnProjectionLease(std::string_view projection,
                                                  bool held) {
  Families& f = *families_;
  f.projections.Get(projection)
      .lease.Get(f.projection_lease, {{"projection", projection}})
      .Set(held ? 1 : 0);
}

void PrometheusInstrumentation::OnOutboxSend(OutboxSendOutcome outcome,
                                             absl::Duration latency) {
  Families& f = *families_;
  f.outbox_sends_by_outcome[Index(outcome)]
      .Get(f.outbox_sends, {{"outcome", OutboxSendOutcomeName(outcome)}})
      .Increment();
  f.outbox_send_latency.Get(f.outbox_send_duration, {})
      .Observe(absl::ToDoubleSeconds(latency));
}

void PrometheusInstrumentation::OnOutboxBacklog(
    int64_t pending, absl::Duration oldest_pending_age) {
  Families& f = *families_;
  f.outbox_pending_now.Get(f.outbox_pending, {})
      .Set(static_cast<double>(pending));
  f.outbox_oldest_age_now.Get(f.outbox_oldest_age, {})
      .Set(absl::ToDoubleSeconds(oldest_pending_age));
}

void PrometheusInstrumentation::OnFailoverMode(std::string_view mode) {
  Families& f = *families_;
  internal::MutexLock lock(&f.mutex);
  if (!f.failover_mode_now.empty() && f.failover_mode_now != mode) {
    f.failover_modes.Get(f.failover_mode_now)
        .Get(f.failover_mode, {{"mode", f.failover_mode_now}})
        .Set(0);
  }
  f.failover_mode_now = Str(mode);
  f.failover_modes.Get(mode).Get(f.failover_mode, {{"mode", mode}}).Set(1);
}

void PrometheusInstrumentation::OnFailoverJournaled() {
  Families& f = *families_;
  f.failover_journaled_count.Get(f.failover_journaled, {}).Increment();
}

void PrometheusInstrumentation::OnFailoverReplayed(int64_t appends) {
  Families& f = *families_;
  f.failover_replayed_count.Get(f.failover_replayed, {})
      .Increment(static_cast<double>(appends));
}

void PrometheusInstrumentation::OnFailoverParked() {
  Families& f = *families_;
  f.failover_parked_count.Get(f.failover_parked, {}).Increment();
}

void PrometheusInstrumentation::OnFailoverPending(int64_t appends) {
  Families& f = *families_;
  f.failover_pending_now.Get(f.failover_pending, {})
      .Set(static_cast<double>(appends));
}

void PrometheusInstrumentation::OnReplicaBatch(int64_t events,
                                               int64_t lag_events,
                                               absl::Duration lag_time) {
  Families& f = *families_;
  f.replica_events_count.Get(f.replica_events, {})
      .Increment(static_cast<double>(events));
  f.replica_lag_events_now.Get(f.replica_lag_events, {})
      .Set(static_cast<double>(lag_events));
  f.replica_lag_seconds_now.Get(f.replica_lag_seconds, {})
      .Set(absl::ToDoubleSeconds(lag_time));
}

void PrometheusInstrumentation::OnReplicaError() {
  Families& f = *families_;
  f.replica_errors_count.Get(f.replica_errors, {}).Increment();
}

void PrometheusInstrumentation::OnReplicaCaughtUp(absl::Time at) {
  Families& f = *families_;
  f.replica_last_sync_now.Get(f.replica_last_sync, {})
      .Set(absl::ToDoubleSeconds(at - absl::UnixEpoch()));
}

}  // namespace eventstore
