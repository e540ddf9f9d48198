// EventData: an event to append.
//
//   OrderPlaced placed;
//   placed.set_order_id("o-1");
//   eventstore::v1::EventMetadata meta;
//   meta.set_correlation_id("req-42");
//   eventstore::EventData event = eventstore::EventData::From(placed, meta);
//
// From() gives the event a fresh id at once, so appending the same EventData
// again after an error (a lost connection, say) is an idempotent retry.

#ifndef EVENTSTORE_EVENT_DATA_H_
#define EVENTSTORE_EVENT_DATA_H_

#include <string>

#include "eventstore/uuid.h"
#include "eventstore/v1/metadata.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace eventstore {

struct EventData {
  // Unique across the whole store. Nil: a new id is generated when appended
  // (such an append cannot be retried idempotently).
  Uuid id;
  // The protobuf full name of the payload's message, e.g. "shop.v1.Placed".
  std::string type;
  // The serialized message.
  std::string payload;
  v1::EventMetadata metadata;
  // The payload's descriptor, when known (From() sets it). The store records
  // each type's descriptor the first time the type is appended, so tools can
  // render stored events without the application's code. When null, the
  // store looks the type up in the generated descriptor pool.
  const google::protobuf::Descriptor* descriptor = nullptr;

  // An event carrying `message`, with a newly generated id.
  static EventData From(const google::protobuf::Message& message,
                        v1::EventMetadata metadata = {});
};

}  // namespace eventstore

#endif  // EVENTSTORE_EVENT_DATA_H_
