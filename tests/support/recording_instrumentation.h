// RecordingInstrumentation: an Instrumentation that keeps every store call
// it receives, for tests that assert exact values. Thread-safe.
//
//   auto recorder = std::make_shared<test::RecordingInstrumentation>();
//   std::unique_ptr<EventStore> store =
//       Instrument(std::move(opened), recorder, "sqlite");
//   ...
//   std::vector<test::RecordedAppend> appends = recorder->appends();

#ifndef EVENTSTORE_TESTS_SUPPORT_RECORDING_INSTRUMENTATION_H_
#define EVENTSTORE_TESTS_SUPPORT_RECORDING_INSTRUMENTATION_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "eventstore/instrumentation.h"
#include "eventstore/internal/mutex.h"

namespace eventstore::test {

// AppendObservation and ReadObservation with the label copied.
struct RecordedAppend {
  std::string backend;
  AppendOutcome outcome = AppendOutcome::kOk;
  int64_t events = 0;
  int64_t payload_bytes = 0;
  absl::Duration latency;
};

struct RecordedRead {
  std::string backend;
  ReadKind kind = ReadKind::kReadStream;
  bool ok = true;
  int64_t events = 0;
  absl::Duration latency;
};

struct RecordedEnqueue {
  std::string backend;
  int64_t messages = 0;
};

class RecordingInstrumentation final : public Instrumentation {
 public:
  void OnAppend(const AppendObservation& append) override {
    internal::MutexLock lock(&mutex_);
    appends_.push_back({std::string(append.backend), append.outcome,
                        append.events, append.payload_bytes, append.latency});
  }
  void OnRead(const ReadObservation& read) override {
    internal::MutexLock lock(&mutex_);
    reads_.push_back({std::string(read.backend), read.kind, read.ok,
                      read.events, read.latency});
  }
  void OnOutboxEnqueued(std::string_view backend, int64_t messages) override {
    internal::MutexLock lock(&mutex_);
    enqueues_.push_back({std::string(backend), messages});
  }

  std::vector<RecordedAppend> appends() const {
    internal::MutexLock lock(&mutex_);
    return appends_;
  }
  std::vector<RecordedRead> reads() const {
    internal::MutexLock lock(&mutex_);
    return reads_;
  }
  std::vector<RecordedEnqueue> enqueues() const {
    internal::MutexLock lock(&mutex_);
    return enqueues_;
  }

 private:
  mutable internal::Mutex mutex_;
  std::vector<RecordedAppend> appends_ ABSL_GUARDED_BY(mutex_);
  std::vector<RecordedRead> reads_ ABSL_GUARDED_BY(mutex_);
  std::vector<RecordedEnqueue> enqueues_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_RECORDING_INSTRUMENTATION_H_
