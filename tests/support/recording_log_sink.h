// RecordingLogSink: a LogSink that keeps every message, for tests of what
// the library logs (background work included). Thread-safe.
//
//   auto sink = std::make_shared<test::RecordingLogSink>();
//   ... start something that logs from a background thread ...
//   EXPECT_TRUE(sink->WaitFor(LogLevel::kError, "projection_runner",
//                             "dead-lettered", absl::Seconds(10)));

#ifndef EVENTSTORE_TESTS_SUPPORT_RECORDING_LOG_SINK_H_
#define EVENTSTORE_TESTS_SUPPORT_RECORDING_LOG_SINK_H_

#include <chrono>
#include <condition_variable>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/log_sink.h"

namespace eventstore::test {

struct LogEntry {
  LogLevel level = LogLevel::kInfo;
  std::string component;
  std::string message;
};

class RecordingLogSink final : public LogSink {
 public:
  void Log(LogLevel level, std::string_view component,
           std::string_view message) override {
    {
      internal::MutexLock lock(&mutex_);
      entries_.push_back({level, std::string(component), std::string(message)});
    }
    logged_.notify_all();
  }

  std::vector<LogEntry> entries() const {
    internal::MutexLock lock(&mutex_);
    return entries_;
  }

  // True once an entry of `level` from `component` whose message contains
  // `substring` has been logged; false when `timeout` passes first.
  bool WaitFor(LogLevel level, std::string_view component,
               std::string_view substring, absl::Duration timeout) const {
    std::unique_lock<internal::Mutex> lock(mutex_);
    return logged_.wait_for(
        lock, absl::ToChronoMilliseconds(timeout),
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          for (const LogEntry& entry : entries_) {
            if (entry.level == level && entry.component == component &&
                entry.message.find(substring) != std::string::npos) {
              return true;
            }
          }
          return false;
        });
  }

 private:
  mutable internal::Mutex mutex_;
  mutable std::condition_variable_any logged_;
  std::vector<LogEntry> entries_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_RECORDING_LOG_SINK_H_
