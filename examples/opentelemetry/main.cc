// The OpenTelemetry example: one command followed end to end in one trace.
// A request span (what an HTTP server's instrumentation would start) saves
// an event with an outbox message; a projection handles the event and a
// publisher sends the message. Every span is printed by OpenTelemetry's
// ostream exporter: the append, the projection's batch and handler, the
// outbox send all carry the request's trace id.
//
//   cmake -S . -B build -DCMAKE_PREFIX_PATH=/opt/otel   # where it is installed
//   cmake --build build --target opentelemetry_example
//   build/examples/opentelemetry/opentelemetry_example
//
// Built only when opentelemetry-cpp is found (examples/opentelemetry/
// CMakeLists.txt); not built in CI.

#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "eventstore/command_context.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumented_event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/status_macros.h"
#include "examples/opentelemetry/opentelemetry_tracer.h"
#include "google/protobuf/wrappers.pb.h"
#include "opentelemetry/exporters/ostream/span_exporter_factory.h"
#include "opentelemetry/sdk/trace/simple_processor_factory.h"
#include "opentelemetry/sdk/trace/tracer_provider_factory.h"
#include "opentelemetry/trace/provider.h"
#include "opentelemetry/trace/scope.h"
#include "opentelemetry/trace/tracer_provider.h"
#include "projections/outbox_publisher.h"
#include "projections/projection.h"
#include "projections/projection_runner.h"

namespace {

namespace otel = opentelemetry;

// Prints the trace context each event arrives with.
class PrintingProjection final : public eventstore::Projection {
 public:
  std::string name() const override { return "printer"; }
  absl::Status Handle(const eventstore::RecordedEvent& event) override {
    std::cout << "handler: " << event.type << " in trace "
              << event.metadata.traceparent() << "\n";
    return absl::OkStatus();
  }
};

// Prints the headers a broker would receive.
class PrintingSink final : public eventstore::OutboxSink {
 public:
  absl::Status Send(const eventstore::OutboxEntry& entry) override {
    std::cout << "sink: " << entry.message.destination << " traceparent "
              << entry.message.headers.at(eventstore::kTraceparentHeader)
              << "\n";
    return absl::OkStatus();
  }
};

absl::Status Run() {
  // The SDK: spans go to std::cout as they end.
  std::shared_ptr<otel::trace::TracerProvider> provider =
      otel::sdk::trace::TracerProviderFactory::Create(
          otel::sdk::trace::SimpleSpanProcessorFactory::Create(
              otel::exporter::trace::OStreamSpanExporterFactory::Create()));
  otel::nostd::shared_ptr<otel::trace::Tracer> otel_tracer =
      provider->GetTracer("eventstore-example");
  auto tracer =
      std::make_shared<eventstore_otel::OpenTelemetryTracer>(otel_tracer);

  ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::EventStore> opened,
                      eventstore::OpenEventStore("sqlite::memory:"));
  eventstore::InstrumentOptions instrument;
  instrument.tracer = tracer;
  instrument.backend_label = "sqlite";
  std::unique_ptr<eventstore::EventStore> store =
      eventstore::Instrument(std::move(opened), instrument);

  // The request: its span is active while the command runs, and the
  // command's context carries it into the event's metadata.
  otel::nostd::shared_ptr<otel::trace::Span> request =
      otel_tracer->StartSpan("POST /orders");
  {
    otel::trace::Scope scope(request);
    eventstore::CommandContext context;
    context.correlation_id = "request-1";
    context.trace = eventstore_otel::CurrentTraceContext();

    google::protobuf::StringValue order;
    order.set_value("order 1");
    const std::vector<eventstore::EventData> events = {
        eventstore::EventData::From(order, context.ToMetadata())};
    eventstore::OutboxMessage message;  // gets the traceparent header
    message.destination = "orders";
    message.payload = "order 1 placed";
    const std::vector<eventstore::OutboxMessage> outbox = {message};
    eventstore::AppendRequest append;
    append.stream = "order-1";
    append.expected = eventstore::ExpectedVersion::NoStream();
    append.events = events;
    append.outbox = outbox;
    ES_RETURN_IF_ERROR(store->Append(append).status());
  }
  request->End();

  // Later, elsewhere: the projection and the publisher continue the trace.
  PrintingProjection projection;
  eventstore::ProjectionRunnerOptions runner_options;
  runner_options.use_lease = false;
  runner_options.tracer = tracer;
  ES_ASSIGN_OR_RETURN(
      std::unique_ptr<eventstore::ProjectionRunner> runner,
      eventstore::ProjectionRunner::Create(*store, projection, runner_options));
  ES_RETURN_IF_ERROR(runner->RunOnce().status());

  PrintingSink sink;
  eventstore::OutboxPublisherOptions publisher_options;
  publisher_options.tracer = tracer;
  ES_ASSIGN_OR_RETURN(
      std::unique_ptr<eventstore::OutboxPublisher> publisher,
      eventstore::OutboxPublisher::Create(*store, sink, publisher_options));
  ES_RETURN_IF_ERROR(publisher->RunOnce().status());
  return absl::OkStatus();
}

}  // namespace

int main() {
  absl::Status status = Run();
  if (!status.ok()) {
    std::cerr << "opentelemetry_example: " << status << "\n";
    return 1;
  }
  return 0;
}
