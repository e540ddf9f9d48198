#include "eventstore/aggregate_repository.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "eventstore/internal/stream_reader.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/status_macros.h"

namespace eventstore::aggregate_internal {
namespace {

// Debian's Abseil has its own absl::string_view, which StrCat takes and
// std::string_view does not convert to.
absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

RepositoryCore::RepositoryCore(EventStore& store,
                               AggregateRepositoryOptions options)
    : store_(store), options_(std::move(options)) {}

std::string RepositoryCore::StreamName(std::string_view id) const {
  if (options_.stream_name) return options_.stream_name(id);
  return absl::StrCat(options_.stream_prefix, ToAbsl(id));
}

bool RepositoryCore::SnapshotsEnabled(const Aggregate& aggregate) const {
  return options_.snapshot_every > 0 &&
         aggregate.snapshot_prototype() != nullptr;
}

absl::StatusOr<std::unique_ptr<Aggregate>> RepositoryCore::Load(
    std::string_view id, Factory make, bool or_create) const {
  const std::string aggregate_id(id);
  const std::string stream = StreamName(id);
  std::unique_ptr<Aggregate> aggregate = make(aggregate_id);
  if (SnapshotsEnabled(*aggregate)) {
    absl::StatusOr<bool> restored = RestoreSnapshot(stream, *aggregate);
    if (!restored.ok()) {
      // The snapshot may have changed the aggregate half-way: start afresh.
      ReportSnapshotError(stream, restored.status());
      aggregate = make(aggregate_id);
    }
  }
  const int64_t from_version = aggregate->version() + 1;
  ES_ASSIGN_OR_RETURN(
      const int64_t replayed,
      internal::ForEachStreamEvent(store_, stream, from_version,
                                   [&](const RecordedEvent& event) {
                                     return aggregate->ApplyStored(event);
                                   }));
  if (replayed == 0 && aggregate->version() == 0) {
    // Nothing applied: `aggregate` is still as `make` made it.
    if (or_create) return aggregate;
    return absl::NotFoundError(absl::StrCat("stream '", stream,
                                            "' of aggregate '", aggregate_id,
                                            "' does not exist"));
  }
  return aggregate;
}

absl::StatusOr<bool> RepositoryCore::RestoreSnapshot(
    const std::string& stream, Aggregate& aggregate) const {
  const int32_t schema_version = aggregate.snapshot_schema_version();
  ES_ASSIGN_OR_RETURN(std::optional<Snapshot> snapshot,
                      store_.snapshots().Load(stream, schema_version));
  if (!snapshot.has_value()) return false;
  const google::protobuf::Message& prototype = *aggregate.snapshot_prototype();
  const std::string& type = prototype.GetDescriptor()->full_name();
  if (snapshot->type != type) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the snapshot of stream '", stream, "' at schema version ",
        schema_version, " holds a '", snapshot->type,
        "', but the aggregate's state is a '", type,
        "': bump snapshot_schema_version() when the state type changes"));
  }
  if (snapshot->version < 1) {
    return absl::DataLossError(absl::StrCat("the snapshot of stream '", stream,
                                            "' has version ",
                                            snapshot->version));
  }
  std::unique_ptr<google::protobuf::Message> state(prototype.New());
  if (!state->ParseFromString(snapshot->state)) {
    return absl::DataLossError(absl::StrCat("the snapshot of stream '", stream,
                                            "' at version ", snapshot->version,
                                            " does not parse as '", type, "'"));
  }
  ES_RETURN_IF_ERROR(aggregate.RestoreSnapshot(*state));
  aggregate.MarkCommitted(snapshot->version);
  return true;
}

absl::Status RepositoryCore::Save(Aggregate& aggregate,
                                  const CommandContext& context) const {
  if (aggregate.uncommitted_events().empty()) {
    if (aggregate.uncommitted_outbox().empty()) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("aggregate '", aggregate.id(), "' has ",
                     aggregate.uncommitted_outbox().size(),
                     " outbox messages but no events to save them with"));
  }
  const std::string stream = StreamName(aggregate.id());
  std::vector<EventData> events = aggregate.uncommitted_events();
  for (EventData& event : events) {
    context.FillIn(event.metadata);
    options_.context.FillIn(event.metadata);
  }
  const int64_t before = aggregate.version();
  const ExpectedVersion expected = before == 0
                                       ? ExpectedVersion::NoStream()
                                       : ExpectedVersion::Exactly(before);
  AppendRequest request;
  request.stream = stream;
  request.expected = expected;
  request.events = events;
  request.outbox = aggregate.uncommitted_outbox();
  ES_ASSIGN_OR_RETURN(AppendResult appended, store_.Append(request));
  aggregate.MarkCommitted(appended.next_expected_version);

  const int64_t every = options_.snapshot_every;
  if (SnapshotsEnabled(aggregate) &&
      before / every != appended.next_expected_version / every) {
    absl::Status taken = TakeSnapshot(stream, aggregate);
    if (!taken.ok()) ReportSnapshotError(stream, taken);
  }
  return absl::OkStatus();
}

absl::Status RepositoryCore::TakeSnapshot(const std::string& stream,
                                          const Aggregate& aggregate) const {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> state,
                      aggregate.SnapshotState());
  const std::string& type =
      aggregate.snapshot_prototype()->GetDescriptor()->full_name();
  if (state == nullptr || state->GetDescriptor()->full_name() != type) {
    return absl::InternalError(absl::StrCat(
        "SnapshotState() of aggregate '", aggregate.id(), "' returned ",
        state == nullptr ? "null" : state->GetDescriptor()->full_name(),
        ", not a '", type, "'"));
  }
  Snapshot snapshot;
  snapshot.stream = stream;
  snapshot.version = aggregate.version();
  snapshot.type = type;
  if (!state->SerializeToString(&snapshot.state)) {
    return absl::InternalError(
        absl::StrCat("the state of aggregate '", aggregate.id(),
                     "' does not serialize (a required field is missing?)"));
  }
  snapshot.schema_version = aggregate.snapshot_schema_version();
  snapshot.taken_at = absl::Now();
  return store_.snapshots().Save(snapshot);
}

void RepositoryCore::ReportSnapshotError(const std::string& stream,
                                         const absl::Status& error) const {
  if (options_.on_snapshot_error) options_.on_snapshot_error(stream, error);
}

}  // namespace eventstore::aggregate_internal
