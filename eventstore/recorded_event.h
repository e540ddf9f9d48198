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
//
// An encrypted event (crypto-shredding, eventstore/crypto/): its payload is
// stored encrypted with its data subject's key (metadata.subject_id,
// metadata.payload_encryption). Read through an EncryptedEventStore, the
// payload comes back decrypted (payload_state kDecrypted), or, once the
// subject was forgotten, empty with payload_state kForgotten: the event
// keeps its id, stream, version, position, type and metadata, and says so
// explicitly. Read through a store without the master key, the payload is
// the ciphertext (sealed()). DecodeInto and As<M> refuse a forgotten or
// sealed event with kFailedPrecondition, never with a decode error.
//
//   if (e.forgotten()) { drop_personal_data(e.stream); continue; }

#ifndef EVENTSTORE_RECORDED_EVENT_H_
#define EVENTSTORE_RECORDED_EVENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/position.h"
#include "eventstore/uuid.h"
#include "eventstore/v1/metadata.pb.h"
#include "google/protobuf/message.h"

namespace eventstore {

// metadata.payload_encryption of a payload encrypted with its subject's key
// by XChaCha20-Poly1305 (IETF): a 24-byte nonce, then the ciphertext and
// its 16-byte tag; the event id and subject id are authenticated with it.
inline constexpr std::string_view kPayloadEncryptionXChaCha20 =
    "xchacha20poly1305-subject-v1";

// What RecordedEvent::payload holds.
enum class PayloadState {
  // The payload as stored: plain bytes, or the ciphertext of an encrypted
  // event read without its key (RecordedEvent::sealed()).
  kAsStored,
  // An encrypted event's payload, decrypted.
  kDecrypted,
  // An encrypted event whose subject was forgotten: the payload is empty
  // and can never be read again.
  kForgotten,
};

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

  // Set by EncryptedEventStore (crypto-shredding); kAsStored otherwise.
  PayloadState payload_state = PayloadState::kAsStored;

  // True when the stored row could not be read intact (see `damage`).
  bool damaged() const { return !damage.ok(); }
  // True when the event's data subject was forgotten: its payload is gone.
  bool forgotten() const { return payload_state == PayloadState::kForgotten; }
  // True when the payload is still encrypted: an encrypted event read
  // without the master key.
  bool sealed() const {
    return payload_state == PayloadState::kAsStored &&
           !metadata.payload_encryption().empty();
  }

  // Parses the payload into `message`. `damage` when the event is damaged;
  // kFailedPrecondition when it is forgotten() or sealed(); kDataLoss when
  // the payload does not parse; kInvalidArgument when the
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
