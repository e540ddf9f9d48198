#include "tools/serve/activity_sampler.h"

#include <algorithm>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/store_inspector.h"
#include "tools/cli_support.h"
#include "tools/output_format.h"

namespace eventstore::tools {
namespace {

// A duration as a JSON number of seconds ("1", "0.05").
std::string SecondsJson(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleSeconds(d));
}

std::string ErrorJson(const std::optional<std::string>& error) {
  return error.has_value() ? JsonQuote(*error) : "null";
}

std::string Masked(const absl::Status& status) {
  return ProcessMasker().Mask(std::string(status.message()));
}

template <typename T>
void PushBounded(std::deque<T>& ring, T value, size_t max) {
  ring.push_back(std::move(value));
  while (ring.size() > max) ring.pop_front();
}

}  // namespace

ActivitySampler::ActivitySampler(EventStore& store, ActivityOptions options)
    : store_(store), options_(std::move(options)) {}

ActivitySampler::~ActivitySampler() { Stop(); }

void ActivitySampler::Start() {
  if (thread_.joinable()) return;
  {
    internal::MutexLock lock(&mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void ActivitySampler::Stop() {
  {
    internal::MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ActivitySampler::Loop() {
  const absl::Time start = absl::Now();
  // The base of the first count, and a first lag sample at once.
  SampleAppended(start);
  SampleLag(start);
  absl::Time next_count = start + options_.interval;
  absl::Time next_lag = start + options_.lag_interval;
  while (true) {
    {
      std::unique_lock<internal::Mutex> lock(mu_);
      const absl::Time due = std::min(next_count, next_lag);
      wake_.wait_until(lock, absl::ToChronoTime(due),
                       [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
                         return stop_ || absl::Now() >= due;
                       });
    }
    if (Stopping()) return;
    const absl::Time now = absl::Now();
    if (now >= next_count) {
      SampleAppended(now);
      // The next tick on the grid: a slow count skips ticks rather than
      // sampling in a burst to catch up.
      while (next_count <= now) next_count += options_.interval;
    }
    if (now >= next_lag) {
      SampleLag(now);
      while (next_lag <= now) next_lag += options_.lag_interval;
    }
  }
}

bool ActivitySampler::Stopping() const {
  internal::MutexLock lock(&mu_);
  return stop_;
}

void ActivitySampler::SampleAppended(absl::Time now) {
  // The head as the console's tail sees it: the position before the last
  // zero events.
  const absl::StatusOr<Position> head =
      store_.inspector().PositionBeforeLast(0, {});
  if (!head.ok()) {
    internal::MutexLock lock(&mu_);
    appended_error_ = Masked(head.status());
    return;
  }
  if (!last_head_.has_value()) {
    last_head_ = *head;
    return;
  }
  const absl::StatusOr<int64_t> count =
      store_.inspector().CountEvents(*last_head_, *head);
  internal::MutexLock lock(&mu_);
  if (!count.ok()) {
    // The base stays: the next count that works covers the gap.
    appended_error_ = Masked(count.status());
    return;
  }
  last_head_ = *head;
  appended_error_.reset();
  PushBounded(appended_, Count{now, *count}, options_.appended_samples);
}

void ActivitySampler::SampleLag(absl::Time now) {
  const absl::StatusOr<std::vector<Checkpoint>> checkpoints =
      store_.checkpoints().List();
  if (!checkpoints.ok()) {
    internal::MutexLock lock(&mu_);
    lag_error_ = Masked(checkpoints.status());
    return;
  }
  std::vector<std::pair<std::string, int64_t>> behind;
  for (const Checkpoint& cp : *checkpoints) {
    const absl::StatusOr<ProjectionLag> lag =
        store_.checkpoints().Lag(cp.projection, {});
    if (!lag.ok()) {
      internal::MutexLock lock(&mu_);
      lag_error_ = Masked(lag.status());
      return;
    }
    behind.emplace_back(cp.projection, lag->events_behind);
  }
  internal::MutexLock lock(&mu_);
  lag_error_.reset();
  // A projection whose checkpoint is gone (reset) leaves the chart.
  std::set<std::string> listed;
  for (const auto& [projection, events] : behind) {
    listed.insert(projection);
    PushBounded(lags_[projection], Count{now, events}, options_.lag_samples);
  }
  for (auto it = lags_.begin(); it != lags_.end();) {
    it = listed.count(it->first) > 0 ? std::next(it) : lags_.erase(it);
  }
}

std::string ActivitySampler::Json() const {
  internal::MutexLock lock(&mu_);
  std::vector<std::string> appended;
  appended.reserve(appended_.size());
  for (const Count& c : appended_) {
    appended.push_back(
        JsonObject().Time("at", c.at).Int("events", c.value).Build());
  }
  std::vector<std::string> projections;
  for (const auto& [projection, ring] : lags_) {
    std::vector<std::string> samples;
    samples.reserve(ring.size());
    for (const Count& c : ring) {
      samples.push_back(
          JsonObject().Time("at", c.at).Int("events_behind", c.value).Build());
    }
    projections.push_back(
        JsonObject()
            .Str("projection", projection)
            .Raw("samples", absl::StrCat("[", absl::StrJoin(samples, ","), "]"))
            .Build());
  }
  return JsonObject()
      .Raw("interval_seconds", SecondsJson(options_.interval))
      .Raw("appended", absl::StrCat("[", absl::StrJoin(appended, ","), "]"))
      .Raw("appended_error", ErrorJson(appended_error_))
      .Raw("lag_interval_seconds", SecondsJson(options_.lag_interval))
      .Raw("projections",
           absl::StrCat("[", absl::StrJoin(projections, ","), "]"))
      .Raw("lag_error", ErrorJson(lag_error_))
      .Build();
}

}  // namespace eventstore::tools
