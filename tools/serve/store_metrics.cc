#include "tools/serve/store_metrics.h"

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <exception>
#include <set>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/status_macros.h"
#include "eventstore/store_inspector.h"

namespace eventstore::tools {
namespace {

using prometheus::Family;
using prometheus::Gauge;
using prometheus::Labels;

Family<Gauge>& GaugeFamily(prometheus::Registry& registry,
                           const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

// The series of one labelled family that the last read set; those the next
// read does not set are removed (a projection whose checkpoint was reset).
class LabelledGauges {
 public:
  explicit LabelledGauges(Family<Gauge>& family) : family_(family) {}

  void Set(const Labels& labels, double value) {
    family_.Add(labels).Set(value);
    seen_.insert(labels);
  }
  // Removes the series not Set since the last EndRead.
  void EndRead() {
    for (const Labels& labels : current_) {
      if (seen_.count(labels) == 0) family_.Remove(&family_.Add(labels));
    }
    current_ = std::move(seen_);
    seen_.clear();
  }
  // Forgets what was set since the last EndRead (a read that failed).
  void AbandonRead() { seen_.clear(); }

 private:
  Family<Gauge>& family_;
  std::set<Labels> current_;
  std::set<Labels> seen_;
};

}  // namespace

struct StoreMetrics::Families {
  explicit Families(prometheus::Registry& r)
      : up(GaugeFamily(r, "eventstore_store_up",
                       "1 when the last read of the store-level gauges "
                       "worked, 0 when the database did not answer.")
               .Add({})),
        head(GaugeFamily(r, "eventstore_store_head_position",
                         "Commit part of the position of the last event in "
                         "the log; 0 when the log is empty.")
                 .Add({})),
        events(GaugeFamily(r, "eventstore_store_events", "Events in the store.")
                   .Add({})),
        streams(
            GaugeFamily(r, "eventstore_store_streams", "Streams in the store.")
                .Add({})),
        size(GaugeFamily(r, "eventstore_store_size_bytes",
                         "Bytes the store takes (SQLite: the file and its "
                         "write-ahead log; PostgreSQL: the schema's tables "
                         "and indexes).")
                 .Add({})),
        outbox_oldest_age(
            GaugeFamily(r, "eventstore_store_outbox_oldest_pending_age_seconds",
                        "Age of the oldest pending outbox message; 0 when "
                        "none is pending.")
                .Add({})),
        checkpoint(
            GaugeFamily(r, "eventstore_store_projection_checkpoint_position",
                        "Commit part of the projection's saved "
                        "checkpoint position, by projection.")),
        lag(GaugeFamily(r, "eventstore_store_projection_lag_events",
                        "Events in the log after the projection's "
                        "checkpoint, by projection.")),
        dead_letters(GaugeFamily(r, "eventstore_store_dead_letters",
                                 "Unresolved dead letters, by projection and "
                                 "status (parked or retrying).")),
        outbox(GaugeFamily(r, "eventstore_store_outbox_messages",
                           "Outbox messages, by status (pending, published "
                           "or failed).")) {}

  Gauge& up;
  Gauge& head;
  Gauge& events;
  Gauge& streams;
  Gauge& size;
  Gauge& outbox_oldest_age;
  LabelledGauges checkpoint;
  LabelledGauges lag;
  LabelledGauges dead_letters;
  LabelledGauges outbox;
};

absl::StatusOr<std::unique_ptr<StoreMetrics>> StoreMetrics::Create(
    prometheus::Registry& registry) {
  try {
    return std::unique_ptr<StoreMetrics>(
        new StoreMetrics(std::make_unique<Families>(registry)));
  } catch (const std::exception& e) {
    return absl::AlreadyExistsError(
        absl::StrCat("store metrics: cannot register the gauges: ", e.what()));
  }
}

StoreMetrics::StoreMetrics(std::unique_ptr<Families> families)
    : families_(std::move(families)) {}

StoreMetrics::~StoreMetrics() = default;

absl::Status StoreMetrics::Refresh(EventStore& store,
                                   const std::function<void()>& then) {
  absl::MutexLock lock(&mutex_);
  const absl::Status read = Read(store);
  Families& f = *families_;
  if (read.ok()) {
    f.checkpoint.EndRead();
    f.lag.EndRead();
    f.dead_letters.EndRead();
    f.outbox.EndRead();
    f.up.Set(1);
  } else {
    f.checkpoint.AbandonRead();
    f.lag.AbandonRead();
    f.dead_letters.AbandonRead();
    f.outbox.AbandonRead();
    f.up.Set(0);
  }
  if (then) then();
  return read;
}

absl::Status StoreMetrics::Read(EventStore& store) {
  Families& f = *families_;
  // Everything is read before any gauge is set, so that a failed read
  // leaves the last good values whole.
  ES_ASSIGN_OR_RETURN(const StoreInfo info, store.inspector().Info());
  ES_ASSIGN_OR_RETURN(const std::vector<Checkpoint> checkpoints,
                      store.checkpoints().List());
  std::vector<ProjectionLag> lags;
  for (const Checkpoint& cp : checkpoints) {
    ES_ASSIGN_OR_RETURN(ProjectionLag lag,
                        store.checkpoints().Lag(cp.projection, {}));
    lags.push_back(std::move(lag));
  }
  ES_ASSIGN_OR_RETURN(const std::vector<DeadLetterCount> dead_letters,
                      store.dead_letters().Counts());
  ES_ASSIGN_OR_RETURN(const OutboxStats outbox, store.outbox().Stats());

  f.head.Set(static_cast<double>(info.head.commit()));
  f.events.Set(static_cast<double>(info.events));
  f.streams.Set(static_cast<double>(info.streams));
  f.size.Set(static_cast<double>(info.size_bytes));
  for (const ProjectionLag& lag : lags) {
    f.checkpoint.Set({{"projection", lag.projection}},
                     static_cast<double>(lag.checkpoint.commit()));
    f.lag.Set({{"projection", lag.projection}},
              static_cast<double>(lag.events_behind));
  }
  // Every projection with a checkpoint or a dead letter gets both series,
  // 0 when it has none of that status.
  std::map<std::string, DeadLetterCount> counts;
  for (const Checkpoint& cp : checkpoints) {
    counts[cp.projection].projection = cp.projection;
  }
  for (const DeadLetterCount& count : dead_letters) {
    counts[count.projection] = count;
  }
  for (const auto& [projection, count] : counts) {
    f.dead_letters.Set({{"projection", projection}, {"status", "parked"}},
                       static_cast<double>(count.parked));
    f.dead_letters.Set({{"projection", projection}, {"status", "retrying"}},
                       static_cast<double>(count.retrying));
  }
  f.outbox.Set({{"status", "pending"}}, static_cast<double>(outbox.pending));
  f.outbox.Set({{"status", "published"}},
               static_cast<double>(outbox.published));
  f.outbox.Set({{"status", "failed"}}, static_cast<double>(outbox.failed));
  const absl::Duration oldest_age =
      outbox.pending > 0 && outbox.oldest_pending != absl::InfinitePast()
          ? absl::Now() - outbox.oldest_pending
          : absl::ZeroDuration();
  f.outbox_oldest_age.Set(
      absl::ToDoubleSeconds(std::max(oldest_age, absl::ZeroDuration())));
  return absl::OkStatus();
}

}  // namespace eventstore::tools
