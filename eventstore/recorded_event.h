// RecordedEvent: an event as read back from a store.
//
//   for (const RecordedEvent& e : *events) {
//     if (e.type == OrderPlaced::descriptor()->full_name()) {
//       absl::StatusOr<OrderPlaced> placed = e.As<OrderPlaced>();
//       if (!placed.ok()) return placed.status();
//       ...
//     }
//   }

#ifndef EVENTSTORE_RECORDED_EVENT_H_
#define EVENTSTORE_RECORDED_EVENT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/position.h"
#include "eventstore/uuid.h"
#include "eventstore/v1/metadata.pb.h"
#include "google/protobuf/message.h"

namespace eventstore {

struct RecordedEvent {
  Uuid id;
  std::string type;
  std::string payload;
  v1::EventMetadata metadata;
  std::string stream;
  // 1-based, gapless within the stream.
  int64_t version = 0;
  // Strictly increasing along the global log; may have gaps.
  Position position;
  // When the store committed the event (microsecond precision).
  absl::Time recorded_at;

  // Parses the payload into `message`. kInvalidArgument when the event's
  // type is not the message's type; kDataLoss when the payload does not
  // parse.
  absl::Status DecodeInto(google::protobuf::Message& message) const;

  // The payload as an M (a generated protobuf message class).
  template <typename M>
  absl::StatusOr<M> As() const {
    M message;
    absl::Status status = DecodeInto(message);
    if (!status.ok()) return status;
    return message;
  }
};

}  // namespace eventstore

#endif  // EVENTSTORE_RECORDED_EVENT_H_
