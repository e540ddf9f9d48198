#include "tools/crc64.h"

#include <lzma.h>

namespace eventstore::tools {

void Crc64::Update(std::string_view bytes) {
  // lzma_crc64 continues from a previous result.
  value_ = lzma_crc64(reinterpret_cast<const uint8_t*>(bytes.data()),
                      bytes.size(), value_);
}

void Crc64::UpdateInt64(int64_t v) {
  char bytes[8];
  const uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(u >> (8 * i));
  Update(std::string_view(bytes, 8));
}

}  // namespace eventstore::tools
