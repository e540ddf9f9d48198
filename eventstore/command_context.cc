#include "eventstore/command_context.h"

namespace eventstore {

v1::EventMetadata CommandContext::ToMetadata() const {
  v1::EventMetadata metadata;
  FillIn(metadata);
  return metadata;
}

void CommandContext::FillIn(v1::EventMetadata& metadata) const {
  if (metadata.correlation_id().empty() && !correlation_id.empty()) {
    metadata.set_correlation_id(correlation_id);
  }
  if (metadata.causation_id().empty() && !causation_id.empty()) {
    metadata.set_causation_id(causation_id);
  }
  if (metadata.actor().empty() && !actor.empty()) metadata.set_actor(actor);
  if (metadata.tenant_id().empty() && !tenant_id.empty()) {
    metadata.set_tenant_id(tenant_id);
  }
  // As W3C Trace Context asks of a received header: a traceparent that is
  // not valid is ignored (a new trace starts), never an error of the
  // command; a tracestate that is not valid is dropped.
  if (metadata.traceparent().empty() && !trace.traceparent.empty() &&
      ValidateTraceparent(trace.traceparent).ok()) {
    metadata.set_traceparent(trace.traceparent);
    if (metadata.tracestate().empty() &&
        ValidateTracestate(trace.tracestate).ok()) {
      metadata.set_tracestate(trace.tracestate);
    }
  }
  auto& out = *metadata.mutable_properties();
  for (const auto& [key, value] : properties) out.insert({key, value});
}

}  // namespace eventstore
