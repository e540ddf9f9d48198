#include "eventstore/internal/event_checksum.h"

#include <lzma.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "eventstore/internal/append_validation.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace eventstore::internal {
namespace {

// Events up to this size (nearly all) are laid out in one stack buffer and
// summed in one call: each lzma_crc32 call has a fixed cost that, for small
// fields, is as large as the summing itself.
constexpr size_t kStackBytes = 1024;

uint32_t Update(uint32_t crc, std::string_view bytes) {
  return lzma_crc32(reinterpret_cast<const uint8_t*>(bytes.data()),
                    bytes.size(), crc);
}

// The 8 little-endian bytes of `length`, at `out`.
uint8_t* PutLength(uint8_t* out, size_t length) {
  const uint64_t n = length;
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  return out + 8;
}

uint8_t* Put(uint8_t* out, std::string_view bytes) {
  if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
}

uint32_t UpdateField(uint32_t crc, std::string_view bytes) {
  uint8_t length[8];
  PutLength(length, bytes.size());
  crc = lzma_crc32(length, sizeof(length), crc);
  return Update(crc, bytes);
}

std::string ChecksumText(uint32_t crc) {
  return absl::StrCat(absl::Hex(crc, absl::kZeroPad8));
}

}  // namespace

uint32_t EventChecksum(std::string_view id, std::string_view stream,
                       std::string_view type, std::string_view metadata,
                       std::string_view payload) {
  const size_t total = id.size() + 4 * 8 + stream.size() + type.size() +
                       metadata.size() + payload.size();
  if (total <= kStackBytes) {
    // The same bytes as below, in one buffer: the same sum.
    uint8_t buffer[kStackBytes];
    uint8_t* out = Put(buffer, id);
    out = Put(PutLength(out, stream.size()), stream);
    out = Put(PutLength(out, type.size()), type);
    out = Put(PutLength(out, metadata.size()), metadata);
    out = Put(PutLength(out, payload.size()), payload);
    return lzma_crc32(buffer, static_cast<size_t>(out - buffer), 0);
  }
  uint32_t crc = Update(0, id);
  crc = UpdateField(crc, stream);
  crc = UpdateField(crc, type);
  crc = UpdateField(crc, metadata);
  return UpdateField(crc, payload);
}

void SerializeMetadata(const v1::EventMetadata& metadata, std::string& out) {
  out.clear();
  if (metadata.properties_size() <= 1) {
    // Fields are written in number order; only two map entries or more
    // have an order to fix, so this is the deterministic form, the fast way.
    metadata.SerializeToString(&out);
    return;
  }
  out.reserve(metadata.ByteSizeLong());
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  metadata.SerializeWithCachedSizes(&coded);
}

void MarkDamaged(std::string_view backend, std::string_view what,
                 RecordedEvent& event) {
  event.damage = absl::DataLossError(absl::StrCat(
      std::string(backend), ": event ",
      event.id.IsNil() ? std::string() : absl::StrCat(event.id.ToString(), " "),
      "at position ", event.position.ToString(), " (stream '", event.stream,
      "', version ", event.version, ") is damaged: ", std::string(what)));
}

void VerifyStoredChecksum(std::string_view backend, std::string_view id,
                          std::string_view metadata, RecordedEvent& event) {
  if (!event.checksum.has_value() || event.damaged()) return;
  const uint32_t actual =
      EventChecksum(id, event.stream, event.type, metadata, event.payload);
  if (actual == *event.checksum) return;
  MarkDamaged(backend,
              absl::StrCat("its checksum is ", ChecksumText(*event.checksum),
                           " but its bytes sum to ", ChecksumText(actual)),
              event);
}

absl::StatusOr<uint32_t> CheckImportedEvent(const RecordedEvent& event,
                                            std::string& metadata) {
  if (event.damaged()) {
    return absl::DataLossError(absl::StrCat(
        "import: refusing a damaged event: ", event.damage.message()));
  }
  if (event.payload_state != PayloadState::kAsStored) {
    // A copy carries encrypted payloads as stored, never decrypted: a
    // decrypted (or forgotten, emptied) payload under payload_encryption
    // metadata would be stored in the clear, or lost.
    return absl::InvalidArgumentError(absl::StrCat(
        "import: event ", event.id.ToString(), " (stream '", event.stream,
        "', version ", event.version, ") holds a ",
        event.payload_state == PayloadState::kDecrypted ? "decrypted"
                                                        : "forgotten",
        " payload; copies carry encrypted payloads as stored: read the "
        "source without its master key"));
  }
  absl::Status text = ValidateMetadataText(
      absl::StrCat("import: event ", event.id.ToString(), " (stream '",
                   event.stream, "', version ", event.version, ") metadata"),
      event.metadata);
  if (!text.ok()) return text;
  SerializeMetadata(event.metadata, metadata);
  const uint32_t actual = EventChecksum(event.id.bytes(), event.stream,
                                        event.type, metadata, event.payload);
  if (event.checksum.has_value() && *event.checksum != actual) {
    return absl::DataLossError(absl::StrCat(
        "import: event ", event.id.ToString(), " (stream '", event.stream,
        "', version ", event.version, ") carries checksum ",
        ChecksumText(*event.checksum), " but its fields sum to ",
        ChecksumText(actual), "; it was changed or damaged in transit"));
  }
  return actual;
}

}  // namespace eventstore::internal
