// Crc64: CRC-64/XZ (ECMA-182 polynomial, reflected; liblzma's lzma_crc64),
// the checksum of export files and of `migrate --verify`. It detects every
// burst of errors up to 64 bits long, so a flipped bit or a truncated
// record never goes unseen.
//
//   Crc64 crc;
//   crc.Update(bytes);
//   uint64_t sum = crc.value();

#ifndef EVENTSTORE_TOOLS_CRC64_H_
#define EVENTSTORE_TOOLS_CRC64_H_

#include <cstdint>
#include <string_view>

namespace eventstore::tools {

class Crc64 {
 public:
  void Update(std::string_view bytes);
  // Adds `v` as 8 bytes, little-endian.
  void UpdateInt64(int64_t v);
  // The CRC of everything added so far (0 for nothing).
  uint64_t value() const { return value_; }

 private:
  uint64_t value_ = 0;
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_CRC64_H_
