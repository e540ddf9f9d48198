// Tracing hooks: spans around the library's work, and W3C trace context
// carried from a command through its events to projections and the outbox.
//
// The library starts spans through a Tracer the application supplies (an
// adapter over OpenTelemetry, for example: examples/opentelemetry/). Without
// one, no span is started and nothing is called (a null check).
//
// Trace context follows an event end to end, whether or not a Tracer is
// attached:
//   1. CommandContext::trace (the caller's span, as a W3C `traceparent`) is
//      copied into each event's metadata (EventMetadata::traceparent and
//      ::tracestate) by Aggregate, AggregateRepository and the decider;
//      one that is not valid is ignored (command_context.h).
//   2. An append refuses metadata whose trace context is not valid
//      (kInvalidArgument naming events[i].metadata.traceparent or
//      .tracestate; nothing written), and copies the first event's trace
//      context into the `traceparent` / `tracestate` headers of each outbox
//      message that has no `traceparent` header (the headers a broker sink
//      forwards).
//   3. The projection runner starts each handler's span as a child of the
//      event's trace context; the handler reads it from
//      event.metadata.traceparent(). The outbox publisher starts each send's
//      span as a child of the message's `traceparent` header.
//
// Spans the library starts (name, kind; attributes in docs/observability.md):
//   "eventstore.append"             client    InstrumentedEventStore
//   "eventstore.append_each"        client    InstrumentedEventStore
//   "eventstore.read_stream"        client    InstrumentedEventStore
//   "eventstore.read_all"           client    InstrumentedEventStore
//   "eventstore.projection.batch"   internal  ProjectionRunner, per batch
//   "eventstore.projection.handle"  consumer  ProjectionRunner, per event
//   "eventstore.outbox.send"        producer  OutboxPublisher, per message
//
// Contract for implementations: StartSpan and every Span method may be
// called from any thread (one Span from one thread at a time), must be
// thread-safe, must not block on I/O and must not throw. string_view
// arguments are valid only during the call.

#ifndef EVENTSTORE_TRACING_H_
#define EVENTSTORE_TRACING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace eventstore {

// The keys of the trace context in outbox message headers (and the HTTP
// header names of the W3C Trace Context recommendation).
inline constexpr char kTraceparentHeader[] = "traceparent";
inline constexpr char kTracestateHeader[] = "tracestate";

// W3C trace context: which span a piece of work continues.
struct TraceContext {
  // "00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>", lowercase;
  // empty for none.
  std::string traceparent;
  // Vendor-specific data that travels with it; may be empty.
  std::string tracestate;

  bool empty() const { return traceparent.empty(); }
};

// OK when `traceparent` is a valid W3C traceparent (level 1): version 00
// with exactly four fields, or a later version with at least four;
// lowercase hex; trace-id and parent-id not all zeros; version not ff.
// kInvalidArgument naming what is wrong otherwise.
absl::Status ValidateTraceparent(std::string_view traceparent);

// The longest `tracestate` the library stores or forwards: the 512
// characters every W3C Trace Context implementation must propagate.
inline constexpr size_t kMaxTracestateBytes = 512;

// OK when `tracestate` (which may be empty) has at most kMaxTracestateBytes
// characters, each printable ASCII (0x20 to 0x7e); kInvalidArgument naming
// the length or the offending byte's offset otherwise. The list syntax is
// not checked: a tracer parses what it understands.
absl::Status ValidateTracestate(std::string_view tracestate);

enum class SpanKind {
  kInternal,  // work inside the process
  kClient,    // a call to the database
  kProducer,  // sending a message (outbox)
  kConsumer,  // handling an event delivered from the log (projections)
};

// One unit of work being timed. The library calls End() exactly once, last.
class Span {
 public:
  virtual ~Span() = default;

  virtual void SetAttribute(std::string_view key, std::string_view value) = 0;
  virtual void SetAttribute(std::string_view key, int64_t value) = 0;
  // How the work ended; not called when it succeeded.
  virtual void SetError(const absl::Status& status) = 0;
  virtual void End() = 0;
  // This span's context, to propagate to work it causes; empty when the
  // tracer does not propagate.
  virtual TraceContext context() const = 0;
};

class Tracer {
 public:
  virtual ~Tracer() = default;

  // A new span, started now: a child of `parent` when it is not empty (a
  // traceparent the library found valid), else whatever the implementation
  // takes as the parent (its current span, or a new trace). Never null.
  virtual std::unique_ptr<Span> StartSpan(std::string_view name, SpanKind kind,
                                          const TraceContext& parent) = 0;
};

// A span for one scope: started when `tracer` is not null, ended when the
// ScopedSpan is destroyed. Every method does nothing without a tracer. A
// `parent` whose traceparent is not valid is ignored (as if empty); a
// tracestate that is not valid is dropped (ValidateTracestate).
class ScopedSpan {
 public:
  ScopedSpan(Tracer* tracer, std::string_view name, SpanKind kind,
             const TraceContext& parent = {});
  ~ScopedSpan();
  ScopedSpan(const ScopedSpan&) = delete;
  ScopedSpan& operator=(const ScopedSpan&) = delete;

  // True when a span was started.
  explicit operator bool() const { return span_ != nullptr; }

  void SetAttribute(std::string_view key, std::string_view value);
  void SetAttribute(std::string_view key, int64_t value);
  // Records `status` as the span's error when it is not OK.
  void SetStatus(const absl::Status& status);
  // The span's context; empty without a span.
  TraceContext context() const;

 private:
  std::unique_ptr<Span> span_;
};

}  // namespace eventstore

#endif  // EVENTSTORE_TRACING_H_
