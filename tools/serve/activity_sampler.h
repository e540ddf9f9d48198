// ActivitySampler: what the web console's charts draw (GET /api/activity,
// docs/http-api.md), sampled by a background thread of `eventstore serve`
// from its start, so that a page opened later still sees the last minutes.
//
//   ActivityOptions options;            // every 1 s and 5 s
//   ActivitySampler sampler(*store, options);
//   sampler.Start();
//   ...  response body: sampler.Json();
//   sampler.Stop();                     // prompt: wakes the thread
//
// Every `interval`: how many events were appended since the sample before
// (StoreInspector::CountEvents between the head then and the head now,
// through the position index: the cost grows with the events appended,
// not with the log), in a ring of the last `appended_samples`. Every
// `lag_interval`: each projection's events_behind (CheckpointStore::Lag,
// every event counted: the store does not know a projection's filter), a
// ring of the last `lag_samples` per projection. A store error (say,
// CountEvents not implemented by the backend, or the database down) is
// kept as the "error" of that series, masked of secrets, and the series
// carries on at the next tick; no sample is made up.
//
// Thread safety: Json() may be called from any thread; Start() and Stop()
// from one.

#ifndef EVENTSTORE_TOOLS_SERVE_ACTIVITY_SAMPLER_H_
#define EVENTSTORE_TOOLS_SERVE_ACTIVITY_SAMPLER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/position.h"

namespace eventstore::tools {

struct ActivityOptions {
  // How often appended events are counted. Default 1 s: the chart's
  // resolution, one indexed count per second.
  absl::Duration interval = absl::Seconds(1);
  // How often each projection's lag is read. Default 5 s: one indexed
  // count per projection each time.
  absl::Duration lag_interval = absl::Seconds(5);
  // Samples kept. Defaults 600 (10 minutes at 1 s) and 120 per projection
  // (10 minutes at 5 s).
  size_t appended_samples = 600;
  size_t lag_samples = 120;
};

class ActivitySampler {
 public:
  // `store` must outlive the sampler.
  ActivitySampler(EventStore& store, ActivityOptions options);
  ActivitySampler(const ActivitySampler&) = delete;
  ActivitySampler& operator=(const ActivitySampler&) = delete;
  // Stops the thread.
  ~ActivitySampler();

  // Starts the sampling thread: reads the head (the base of the first
  // count) and the lags at once, then samples every interval. Does
  // nothing when started already.
  void Start();
  // Ends the thread, waking it from its wait; returns once it has ended
  // (after the store call in progress, if any). Idempotent.
  void Stop();

  // The body of GET /api/activity: {"interval_seconds":1,"appended":[{"at":
  // RFC3339,"events":N}...],"lag_interval_seconds":5,"projections":[{
  // "projection":NAME,"samples":[{"at":...,"events_behind":N}...]}...]},
  // oldest first, plus "appended_error"/"lag_error" (null, or the last
  // error's message when the last attempt failed).
  std::string Json() const;

  const ActivityOptions& options() const { return options_; }

 private:
  struct Count {
    absl::Time at;
    int64_t value = 0;
  };

  void Loop();
  bool Stopping() const;
  void SampleAppended(absl::Time now);
  void SampleLag(absl::Time now);

  EventStore& store_;
  const ActivityOptions options_;
  std::thread thread_;
  // Only the sampling thread uses it: the head at the last count.
  std::optional<Position> last_head_;

  mutable internal::Mutex mu_;
  std::condition_variable_any wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Count> appended_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<Count>> lags_ ABSL_GUARDED_BY(mu_);
  std::optional<std::string> appended_error_ ABSL_GUARDED_BY(mu_);
  std::optional<std::string> lag_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_ACTIVITY_SAMPLER_H_
