#include "examples/opentelemetry/opentelemetry_tracer.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "opentelemetry/context/context.h"
#include "opentelemetry/context/propagation/text_map_propagator.h"
#include "opentelemetry/context/runtime_context.h"
#include "opentelemetry/nostd/string_view.h"
#include "opentelemetry/trace/context.h"
#include "opentelemetry/trace/propagation/http_trace_context.h"
#include "opentelemetry/trace/span.h"
#include "opentelemetry/trace/span_metadata.h"
#include "opentelemetry/trace/span_startoptions.h"

namespace eventstore_otel {
namespace {

namespace otel = opentelemetry;

otel::nostd::string_view View(std::string_view text) {
  return otel::nostd::string_view(text.data(), text.size());
}

// Reads and writes the two W3C keys of an eventstore::TraceContext for
// OpenTelemetry's propagator.
class TraceContextCarrier final
    : public otel::context::propagation::TextMapCarrier {
 public:
  explicit TraceContextCarrier(eventstore::TraceContext* context)
      : context_(context) {}

  otel::nostd::string_view Get(
      otel::nostd::string_view key) const noexcept override {
    if (key == otel::nostd::string_view(eventstore::kTraceparentHeader)) {
      return View(context_->traceparent);
    }
    if (key == otel::nostd::string_view(eventstore::kTracestateHeader)) {
      return View(context_->tracestate);
    }
    return "";
  }

  void Set(otel::nostd::string_view key,
           otel::nostd::string_view value) noexcept override {
    if (key == otel::nostd::string_view(eventstore::kTraceparentHeader)) {
      context_->traceparent.assign(value.data(), value.size());
    } else if (key == otel::nostd::string_view(eventstore::kTracestateHeader)) {
      context_->tracestate.assign(value.data(), value.size());
    }
  }

 private:
  eventstore::TraceContext* const context_;
};

otel::trace::SpanKind ToOpenTelemetry(eventstore::SpanKind kind) {
  switch (kind) {
    case eventstore::SpanKind::kClient:
      return otel::trace::SpanKind::kClient;
    case eventstore::SpanKind::kProducer:
      return otel::trace::SpanKind::kProducer;
    case eventstore::SpanKind::kConsumer:
      return otel::trace::SpanKind::kConsumer;
    case eventstore::SpanKind::kInternal:
      break;
  }
  return otel::trace::SpanKind::kInternal;
}

// `context` written as W3C text; empty when it holds no valid span.
eventstore::TraceContext Inject(const otel::context::Context& context) {
  eventstore::TraceContext out;
  TraceContextCarrier carrier(&out);
  otel::trace::propagation::HttpTraceContext().Inject(carrier, context);
  return out;
}

class OpenTelemetrySpan final : public eventstore::Span {
 public:
  explicit OpenTelemetrySpan(otel::nostd::shared_ptr<otel::trace::Span> span)
      : span_(std::move(span)) {}

  void SetAttribute(std::string_view key, std::string_view value) override {
    span_->SetAttribute(View(key), View(value));
  }
  void SetAttribute(std::string_view key, int64_t value) override {
    span_->SetAttribute(View(key), value);
  }
  void SetError(const absl::Status& status) override {
    span_->SetAttribute("eventstore.status_code",
                        View(absl::StatusCodeToString(status.code())));
    const absl::string_view message = status.message();
    span_->SetStatus(otel::trace::StatusCode::kError,
                     View(std::string_view(message.data(), message.size())));
  }
  void End() override { span_->End(); }
  eventstore::TraceContext context() const override {
    otel::context::Context empty;
    return Inject(otel::trace::SetSpan(empty, span_));
  }

 private:
  const otel::nostd::shared_ptr<otel::trace::Span> span_;
};

}  // namespace

OpenTelemetryTracer::OpenTelemetryTracer(
    otel::nostd::shared_ptr<otel::trace::Tracer> tracer)
    : tracer_(std::move(tracer)) {}

std::unique_ptr<eventstore::Span> OpenTelemetryTracer::StartSpan(
    std::string_view name, eventstore::SpanKind kind,
    const eventstore::TraceContext& parent) {
  otel::trace::StartSpanOptions options;
  options.kind = ToOpenTelemetry(kind);
  if (!parent.empty()) {
    // The library passes only a valid traceparent (tracing.h).
    eventstore::TraceContext text = parent;
    TraceContextCarrier carrier(&text);
    otel::context::Context empty;
    options.parent =
        otel::trace::propagation::HttpTraceContext().Extract(carrier, empty);
  }
  // Without a parent, options.parent stays invalid and OpenTelemetry uses
  // the active span, if any, as the parent.
  return std::make_unique<OpenTelemetrySpan>(
      tracer_->StartSpan(View(name), options));
}

eventstore::TraceContext CurrentTraceContext() {
  return Inject(otel::context::RuntimeContext::GetCurrent());
}

}  // namespace eventstore_otel
