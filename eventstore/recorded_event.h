// RecordedEvent: an event as read back from a store.
//
//   for (const RecordedEvent& e : *events) {
//     if (e.type == OrderPlaced::descriptor()->full_name()) {
//       absl::StatusOr<OrderPlaced> placed = e.As<OrderPlaced>();
//       if (!placed.ok()) return placed.status();
//       ...
//     }
//   }
//
// A damaged event: a row the store could not read intact (its metadata or
// id does not decode, or its bytes do not match the checksum stored with
// them) is returned in its place in the log rather than failing the whole
// read, with `damage` saying what is wrong. It keeps whatever of position,
// stream, version and type could be read, so a reader can step past it
// (a projection runner dead-letters it); DecodeInto and As<M> refuse it
// with kDataLoss.
//
//   if (e.damaged()) { log(e.damage); continue; }

#ifndef EVENTSTORE_RECORDED_EVENT_H_
#define EVENTSTORE_RECORDED_EVENT_H_

#include <cstdint>
#include <optional>
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
  // The CRC-32 stored with the event (eventstore/internal/event_checksum.h
  // says what it covers); nullopt for events stored before schema version 4,
  // and for events an upcaster made (their type or payload is not what was
  // stored). Migration carries it and checks it.
  std::optional<uint32_t> checksum;
  // OK for an event read intact; otherwise kDataLoss naming the event (its
  // position, stream and version) and what is wrong (corrupt metadata, a
  // corrupt id, a checksum mismatch). The fields that could not be read are
  // left empty.
  absl::Status damage;

  // True when the stored row could not be read intact (see `damage`).
  bool damaged() const { return !damage.ok(); }

  // Parses the payload into `message`. `damage` when the event is damaged;
  // kDataLoss when the payload does not parse; kInvalidArgument when the
  // event's type is not the message's type.
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
