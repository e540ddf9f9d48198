#include "eventstore/recorded_event.h"

#include "absl/strings/str_cat.h"

namespace eventstore {

absl::Status RecordedEvent::DecodeInto(
    google::protobuf::Message& message) const {
  if (damaged()) return damage;
  if (forgotten()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "event ", id.ToString(), " in stream '", stream,
        "': its payload was forgotten (data subject '", metadata.subject_id(),
        "' was forgotten); it can never be read"));
  }
  if (sealed()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "event ", id.ToString(), " in stream '", stream,
        "': its payload is encrypted for data subject '", metadata.subject_id(),
        "'; read it through an EncryptedEventStore opened with the master "
        "key"));
  }
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
