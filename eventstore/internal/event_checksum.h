// The checksum stored with every event (schema version 4), and the marking
// of events that cannot be read intact. Shared by both backends' append,
// read and import paths, so that they agree to the bit.
//
// The checksum is CRC-32 (IEEE 802.3, liblzma's lzma_crc32) over, in order:
// the 16 id bytes, the stream name, the type, the stored metadata bytes and
// the payload, each but the id preceded by its length (8 bytes, little
// endian). It does not cover the version, position or recorded_at: a
// PostgreSQL append computes the version inside its statement, and a
// migration gives events new positions.
//
//   std::string metadata;
//   SerializeMetadata(event.metadata, metadata);  // the bytes to store
//   uint32_t crc = EventChecksum(id.bytes(), stream, type, metadata, payload);

#ifndef EVENTSTORE_INTERNAL_EVENT_CHECKSUM_H_
#define EVENTSTORE_INTERNAL_EVENT_CHECKSUM_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "eventstore/recorded_event.h"
#include "eventstore/v1/metadata.pb.h"

namespace eventstore::internal {

// The checksum of one event's stored fields (see above); `id` is the 16
// stored id bytes, `metadata` the stored metadata bytes (empty when none).
uint32_t EventChecksum(std::string_view id, std::string_view stream,
                       std::string_view type, std::string_view metadata,
                       std::string_view payload);

// Sets `out` to the stored form of `metadata`: its deterministic
// serialization (map entries in key order), empty when the metadata is
// empty. Append and import both store this form, so a copied event's
// checksum is recomputed to the value its source stored.
void SerializeMetadata(const v1::EventMetadata& metadata, std::string& out);

// Marks `event` damaged: `damage` becomes kDataLoss naming the event
// (position, stream, version, and id unless it is nil) after `backend`
// ("sqlite", "postgres"), followed by `what`.
void MarkDamaged(std::string_view backend, std::string_view what,
                 RecordedEvent& event);

// Verifies a row as read: when `event.checksum` is set and differs from
// the checksum of `id`, the event's stream and type, `metadata` and the
// event's payload (the stored bytes), marks the event damaged.
void VerifyStoredChecksum(std::string_view backend, std::string_view id,
                          std::string_view metadata, RecordedEvent& event);

// What an importer checks and stores for `event`, copied from another
// store: sets `metadata` to the stored form of event.metadata and returns
// the checksum to store. kDataLoss naming the event when it is damaged or
// carries a checksum that does not match its fields; kInvalidArgument
// naming the field when a metadata string is not valid UTF-8, or naming
// the event when its payload is not as stored (decrypted or forgotten by an
// EncryptedEventStore: a copy carries ciphertext only).
absl::StatusOr<uint32_t> CheckImportedEvent(const RecordedEvent& event,
                                            std::string& metadata);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_EVENT_CHECKSUM_H_
