#include "eventstore/aggregate.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace eventstore {

Aggregate::Aggregate(std::string id) : id_(std::move(id)) {}

Aggregate::~Aggregate() = default;

void Aggregate::ClearUncommitted() {
  uncommitted_.clear();
  uncommitted_outbox_.clear();
}

void Aggregate::MarkCommitted(int64_t new_version) {
  uncommitted_.clear();
  uncommitted_outbox_.clear();
  version_ = new_version;
}

void Aggregate::AddHandler(
    const google::protobuf::Message& prototype,
    std::function<absl::Status(const google::protobuf::Message&)> apply) {
  handlers_.insert_or_assign(prototype.GetDescriptor()->full_name(),
                             Handler{&prototype, std::move(apply)});
}

const Aggregate::Handler* Aggregate::FindHandler(
    const std::string& type) const {
  auto it = handlers_.find(type);
  return it == handlers_.end() ? nullptr : &it->second;
}

absl::Status Aggregate::Raise(const google::protobuf::Message& event) {
  const std::string& type = event.GetDescriptor()->full_name();
  const Handler* handler = FindHandler(type);
  if (handler == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("aggregate '", id_, "' has no handler for event type '",
                     type, "': register one with On<", type, ">()"));
  }
  absl::Status applied = handler->apply(event);
  if (!applied.ok()) return applied;
  uncommitted_.push_back(EventData::From(event, context_.ToMetadata()));
  return absl::OkStatus();
}

absl::Status Aggregate::ApplyStored(const RecordedEvent& event) {
  if (!uncommitted_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "aggregate '", id_, "' has ", uncommitted_.size(),
        " uncommitted events: stored events can only be replayed before "
        "new ones are raised"));
  }
  if (event.version < version_) {
    return absl::FailedPreconditionError(
        absl::StrCat("aggregate '", id_, "' is at version ", version_,
                     " and cannot replay event version ", event.version,
                     " of stream '", event.stream, "'"));
  }
  // A damaged event is never skipped, even of an ignored type: a state
  // built past it would be wrong without anyone knowing.
  if (event.damaged()) return event.damage;
  const Handler* handler = FindHandler(event.type);
  if (handler == nullptr) {
    if (ignore_unknown_types_) {
      version_ = event.version;
      return absl::OkStatus();
    }
    return absl::NotFoundError(
        absl::StrCat("aggregate '", id_, "' has no handler for event type '",
                     event.type, "' (stream '", event.stream, "', version ",
                     event.version, "): register one with On<", event.type,
                     ">() or call IgnoreUnknownEventTypes()"));
  }
  absl::Status applied;
  if (event.forgotten()) {
    applied = OnForgotten(event);
    if (applied.ok()) ++forgotten_events_;
  } else {
    std::unique_ptr<google::protobuf::Message> message(
        handler->prototype->New());
    absl::Status decoded = event.DecodeInto(*message);
    if (!decoded.ok()) return decoded;
    applied = handler->apply(*message);
  }
  if (!applied.ok()) {
    return absl::Status(applied.code(),
                        absl::StrCat("applying event version ", event.version,
                                     " of stream '", event.stream, "' (type '",
                                     event.type, "'): ", applied.message()));
  }
  version_ = event.version;
  return absl::OkStatus();
}

absl::Status Aggregate::OnForgotten(const RecordedEvent&) {
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<google::protobuf::Message>>
Aggregate::SnapshotState() const {
  return absl::UnimplementedError(
      absl::StrCat("aggregate '", id_, "' does not take snapshots"));
}

absl::Status Aggregate::RestoreSnapshot(const google::protobuf::Message&) {
  return absl::UnimplementedError(
      absl::StrCat("aggregate '", id_, "' does not restore snapshots"));
}

}  // namespace eventstore
