#include "eventstore/recorded_event.h"

#include "absl/strings/str_cat.h"

namespace eventstore {

absl::Status RecordedEvent::DecodeInto(
    google::protobuf::Message& message) const {
  if (damaged()) return damage;
  const std::string& want = message.GetDescriptor()->full_name();
  if (type != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("event ", id.ToString(), " in stream '", stream,
                     "' has type '", type, "', not '", want, "'"));
  }
  if (!message.ParseFromString(payload)) {
    return absl::DataLossError(
        absl::StrCat("event ", id.ToString(), " in stream '", stream,
                     "': payload does not parse as '", type, "' (",
                     payload.size(), " bytes)"));
  }
  return absl::OkStatus();
}

}  // namespace eventstore
