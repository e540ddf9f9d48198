// CommandContext: who asked for a change, and as part of what, copied into
// the metadata of every event the change produces.
//
//   eventstore::CommandContext context;
//   context.correlation_id = request.id();   // the whole workflow
//   context.causation_id = command.id();     // this command
//   context.actor = "user:42";
//   absl::Status saved = repository.Save(account, context);
//
// Used by Aggregate (set_context), AggregateRepository (Save, Update, and a
// default in the options) and the decider (DecideOptions). Every field is
// optional; an empty one sets nothing.

#ifndef EVENTSTORE_COMMAND_CONTEXT_H_
#define EVENTSTORE_COMMAND_CONTEXT_H_

#include <map>
#include <string>

#include "eventstore/tracing.h"
#include "eventstore/v1/metadata.pb.h"

namespace eventstore {

struct CommandContext {
  // Shared by every event of one request or workflow.
  std::string correlation_id;
  // The id of the command (or event) that caused the events.
  std::string causation_id;
  // Who or what asked: a user, a service.
  std::string actor;
  // The tenant; ReadAll can filter on it.
  std::string tenant_id;
  // Free application-defined pairs (EventMetadata::properties).
  std::map<std::string, std::string> properties;
  // The caller's trace context (W3C traceparent and tracestate, e.g. the
  // request's headers as received), so that spans about these events, the
  // projection handlers' and the outbox sends' continue the caller's trace
  // (tracing.h). Copied into EventMetadata::traceparent / ::tracestate when
  // the traceparent is valid (ValidateTraceparent); one that is not is
  // ignored, as W3C Trace Context asks of a received header, so a bad
  // header never fails a command. A tracestate that is not valid
  // (ValidateTracestate) is dropped.
  TraceContext trace;

  // The metadata carrying this context.
  v1::EventMetadata ToMetadata() const;

  // Sets each field of `metadata` that is empty to this context's value,
  // and adds each property whose key `metadata` lacks: what an event already
  // says is kept. Filling from a specific context first and a general one
  // after gives the specific one precedence.
  void FillIn(v1::EventMetadata& metadata) const;
};

}  // namespace eventstore

#endif  // EVENTSTORE_COMMAND_CONTEXT_H_
