#include "eventstore/type_registry.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace eventstore {

void TypeRegistry::Register(const google::protobuf::Message& prototype) {
  types_[prototype.GetDescriptor()->full_name()] = &prototype;
}

void TypeRegistry::AddUpcaster(std::string from_type, Upcaster upcaster) {
  upcasters_[std::move(from_type)] = std::move(upcaster);
}

void TypeRegistry::AddRename(std::string from_type, std::string to_type) {
  AddUpcaster(std::move(from_type),
              [to = std::move(to_type)](const RecordedEvent& event)
                  -> absl::StatusOr<std::vector<Upcasted>> {
                return std::vector<Upcasted>{{to, event.payload}};
              });
}

bool TypeRegistry::Contains(std::string_view type) const {
  return types_.contains(std::string(type));
}

const google::protobuf::Descriptor* TypeRegistry::FindDescriptor(
    std::string_view type) const {
  auto it = types_.find(std::string(type));
  return it == types_.end() ? nullptr : it->second->GetDescriptor();
}

absl::Status TypeRegistry::CheckDecodable(const RecordedEvent& event) const {
  if (event.damaged()) return event.damage;
  if (!types_.contains(event.type)) {
    return absl::NotFoundError(absl::StrCat(
        "unknown event type '", event.type, "' (event ", event.id.ToString(),
        " in stream '", event.stream, "'): register it in the TypeRegistry"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<google::protobuf::Message>> TypeRegistry::Decode(
    const RecordedEvent& event) const {
  absl::Status decodable = CheckDecodable(event);
  if (!decodable.ok()) return decodable;
  std::unique_ptr<google::protobuf::Message> message(
      types_.find(event.type)->second->New());
  absl::Status status = event.DecodeInto(*message);
  if (!status.ok()) return status;
  return message;
}

absl::StatusOr<std::vector<RecordedEvent>> TypeRegistry::Upcast(
    RecordedEvent event) const {
  std::vector<RecordedEvent> done;
  if (event.damaged()) {
    done.push_back(std::move(event));
    return done;
  }
  std::vector<std::pair<RecordedEvent, int>> pending;
  pending.emplace_back(std::move(event), 0);
  while (!pending.empty()) {
    auto [current, depth] = std::move(pending.back());
    pending.pop_back();
    auto it = upcasters_.find(current.type);
    if (it == upcasters_.end()) {
      done.push_back(std::move(current));
      continue;
    }
    if (depth >= kMaxUpcastDepth) {
      return absl::InvalidArgumentError(absl::StrCat(
          "upcasting event type '", current.type, "' did not end after ",
          kMaxUpcastDepth, " steps: the upcasters form a cycle"));
    }
    absl::StatusOr<std::vector<Upcasted>> out = it->second(current);
    if (!out.ok()) {
      return absl::Status(
          out.status().code(),
          absl::StrCat("upcasting event ", current.id.ToString(), " of type '",
                       current.type, "': ", out.status().message()));
    }
    // Push in reverse so that the outputs come out in the upcaster's order.
    for (auto u = out->rbegin(); u != out->rend(); ++u) {
      RecordedEvent next = current;
      next.type = std::move(u->type);
      next.payload = std::move(u->payload);
      // The stored checksum describes the stored event, not this one.
      next.checksum.reset();
      pending.emplace_back(std::move(next), depth + 1);
    }
  }
  return done;
}

absl::Status TypeRegistry::UpcastAll(std::vector<RecordedEvent>& events) const {
  if (upcasters_.empty()) return absl::OkStatus();
  std::vector<RecordedEvent> out;
  out.reserve(events.size());
  for (RecordedEvent& event : events) {
    // A damaged event stays as it was read, for the reader to step past.
    if (event.damaged() || !upcasters_.contains(event.type)) {
      out.push_back(std::move(event));
      continue;
    }
    absl::StatusOr<std::vector<RecordedEvent>> upcast =
        Upcast(std::move(event));
    if (!upcast.ok()) return upcast.status();
    for (RecordedEvent& e : *upcast) out.push_back(std::move(e));
  }
  events = std::move(out);
  return absl::OkStatus();
}

}  // namespace eventstore
