#include "tools/crc64.h"

#include <array>

namespace eventstore::tools {
namespace {

constexpr uint64_t kPolynomial = 0xC96C5795D7870F42ULL;  // reflected

std::array<uint64_t, 256> MakeTable() {
  std::array<uint64_t, 256> table{};
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1) ? (crc >> 1) ^ kPolynomial : crc >> 1;
    }
    table[i] = crc;
  }
  return table;
}

const std::array<uint64_t, 256>& Table() {
  static const std::array<uint64_t, 256> table = MakeTable();
  return table;
}

}  // namespace

void Crc64::Update(std::string_view bytes) {
  const std::array<uint64_t, 256>& table = Table();
  uint64_t crc = state_;
  for (char c : bytes) {
    crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xff] ^ (crc >> 8);
  }
  state_ = crc;
}

void Crc64::UpdateInt64(int64_t v) {
  char bytes[8];
  const uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(u >> (8 * i));
  Update(std::string_view(bytes, 8));
}

}  // namespace eventstore::tools
