#include "eventstore/event_data.h"

#include <utility>

namespace eventstore {

EventData EventData::From(const google::protobuf::Message& message,
                          v1::EventMetadata metadata) {
  EventData event;
  event.id = Uuid::Generate();
  event.type = message.GetDescriptor()->full_name();
  // Partial: proto3 has no required fields; a proto2 message missing one is
  // stored as given rather than refused here.
  message.SerializePartialToString(&event.payload);
  event.metadata = std::move(metadata);
  event.descriptor = message.GetDescriptor();
  return event;
}

}  // namespace eventstore
