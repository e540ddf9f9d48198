// RecordingTracer: a Tracer that keeps every span it starts, for tests that
// assert names, parents, attributes and errors. Thread-safe. Each span gets
// a traceparent of its own: the parent's trace-id (or a new one) and a new
// span id, so tests can check that context propagates.
//
//   auto tracer = std::make_shared<test::RecordingTracer>();
//   ... run the code with the tracer attached ...
//   std::vector<test::RecordedSpan> spans = tracer->ended();
//   EXPECT_EQ(spans[0].name, "eventstore.append");

#ifndef EVENTSTORE_TESTS_SUPPORT_RECORDING_TRACER_H_
#define EVENTSTORE_TESTS_SUPPORT_RECORDING_TRACER_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/tracing.h"

namespace eventstore::test {

// One ended span.
struct RecordedSpan {
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  // The parent the library passed (empty for none).
  TraceContext parent;
  // This span's own context.
  TraceContext context;
  std::map<std::string, std::string> string_attributes;
  std::map<std::string, int64_t> int_attributes;
  // OK unless SetError was called.
  absl::Status error;
  int end_calls = 0;

  std::string trace_id() const { return context.traceparent.substr(3, 32); }
};

class RecordingTracer final : public Tracer {
 public:
  std::unique_ptr<Span> StartSpan(std::string_view name, SpanKind kind,
                                  const TraceContext& parent) override {
    RecordedSpan span;
    span.name = std::string(name);
    span.kind = kind;
    span.parent = parent;
    uint64_t id = 0;
    {
      internal::MutexLock lock(&mutex_);
      id = ++next_id_;
      ++started_;
    }
    char span_id[17];
    std::snprintf(span_id, sizeof span_id, "%016llx",
                  static_cast<unsigned long long>(id));
    std::string trace_id = parent.empty() ? std::string(32 - 16, '0') + span_id
                                          : parent.traceparent.substr(3, 32);
    span.context.traceparent = "00-" + trace_id + "-" + span_id + "-01";
    span.context.tracestate = parent.tracestate;
    return std::make_unique<Recording>(this, std::move(span));
  }

  // Spans ended so far, in the order they ended.
  std::vector<RecordedSpan> ended() const {
    internal::MutexLock lock(&mutex_);
    return ended_;
  }
  // Those named `name`.
  std::vector<RecordedSpan> ended(std::string_view name) const {
    internal::MutexLock lock(&mutex_);
    std::vector<RecordedSpan> out;
    for (const RecordedSpan& span : ended_) {
      if (span.name == name) out.push_back(span);
    }
    return out;
  }
  // Spans started so far (ended or not).
  int64_t started() const {
    internal::MutexLock lock(&mutex_);
    return started_;
  }

 private:
  class Recording final : public Span {
   public:
    Recording(RecordingTracer* tracer, RecordedSpan span)
        : tracer_(tracer), span_(std::move(span)) {}
    void SetAttribute(std::string_view key, std::string_view value) override {
      span_.string_attributes[std::string(key)] = std::string(value);
    }
    void SetAttribute(std::string_view key, int64_t value) override {
      span_.int_attributes[std::string(key)] = value;
    }
    void SetError(const absl::Status& status) override { span_.error = status; }
    void End() override {
      ++span_.end_calls;
      internal::MutexLock lock(&tracer_->mutex_);
      tracer_->ended_.push_back(span_);
    }
    TraceContext context() const override { return span_.context; }

   private:
    RecordingTracer* const tracer_;
    RecordedSpan span_;
  };

  mutable internal::Mutex mutex_;
  uint64_t next_id_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t started_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<RecordedSpan> ended_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_RECORDING_TRACER_H_
