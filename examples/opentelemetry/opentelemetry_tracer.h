// OpenTelemetryTracer: eventstore's Tracer (eventstore/tracing.h) over the
// OpenTelemetry C++ API, so that the library's spans (appends, reads,
// projection batches and handlers, outbox sends) join the application's
// traces and go wherever its OpenTelemetry SDK exports them.
//
// This is an example, not part of the library: no Debian package of
// opentelemetry-cpp exists, so it is built only when CMake finds one
// (`find_package(opentelemetry-cpp CONFIG)`, e.g. installed from source with
// `-DCMAKE_INSTALL_PREFIX=/opt/otel` and configured with
// `-DCMAKE_PREFIX_PATH=/opt/otel`), and CI does not build it. Copy the two
// files into your application and link `opentelemetry-cpp::api`.
//
//   // Your SDK set-up (exporter, processor, provider), then:
//   auto tracer = std::make_shared<eventstore_otel::OpenTelemetryTracer>(
//       provider->GetTracer("eventstore"));
//   eventstore::InstrumentOptions instrument;
//   instrument.tracer = tracer;
//   instrument.backend_label = "postgres";
//   store = eventstore::Instrument(std::move(store), instrument);
//   runner_options.tracer = tracer;     // ProjectionRunnerOptions
//   publisher_options.tracer = tracer;  // OutboxPublisherOptions
//
// Trace context crosses the boundary as W3C `traceparent` / `tracestate`
// text, through OpenTelemetry's own propagator (HttpTraceContext) and a
// small TextMapCarrier: a parent given by the library is extracted into an
// OpenTelemetry context, and a span's context() is injected back into text.
// With no parent, OpenTelemetry takes its active span as the parent, so
// spans of a store call made inside a request's scope join that request.
// A command handler passes the request's context down the same way:
//
//   eventstore::CommandContext context;
//   context.trace = eventstore_otel::CurrentTraceContext();
//   ES_RETURN_IF_ERROR(repository.Save(account, context));

#ifndef EVENTSTORE_EXAMPLES_OPENTELEMETRY_OPENTELEMETRY_TRACER_H_
#define EVENTSTORE_EXAMPLES_OPENTELEMETRY_OPENTELEMETRY_TRACER_H_

#include <memory>
#include <string_view>

#include "eventstore/tracing.h"
#include "opentelemetry/nostd/shared_ptr.h"
#include "opentelemetry/trace/tracer.h"

namespace eventstore_otel {

class OpenTelemetryTracer final : public eventstore::Tracer {
 public:
  // REQUIRES: `tracer` is not null (a provider's GetTracer never returns
  // null; the no-op provider's tracer makes spans that record nothing).
  explicit OpenTelemetryTracer(
      opentelemetry::nostd::shared_ptr<opentelemetry::trace::Tracer> tracer);

  std::unique_ptr<eventstore::Span> StartSpan(
      std::string_view name, eventstore::SpanKind kind,
      const eventstore::TraceContext& parent) override;

 private:
  const opentelemetry::nostd::shared_ptr<opentelemetry::trace::Tracer> tracer_;
};

// The trace context of OpenTelemetry's active span (RuntimeContext), for
// CommandContext::trace; empty when no valid span is active.
eventstore::TraceContext CurrentTraceContext();

}  // namespace eventstore_otel

#endif  // EVENTSTORE_EXAMPLES_OPENTELEMETRY_OPENTELEMETRY_TRACER_H_
