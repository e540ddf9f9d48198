// Crc64 (liblzma's CRC-64/XZ): the checksum export files carry, so it must
// stay the same function as the one older files were written with.

#include "tools/crc64.h"

#include <string>

#include "gtest/gtest.h"

namespace eventstore::tools {
namespace {

TEST(Crc64Test, MatchesTheCrc64XzCheckValue) {
  Crc64 empty;
  EXPECT_EQ(empty.value(), 0u);
  // The catalogue's check value of CRC-64/XZ (as the hand-written table
  // computed it before liblzma did).
  Crc64 crc;
  crc.Update("123456789");
  EXPECT_EQ(crc.value(), 0x995DC9BBDF1939FAULL);
}

TEST(Crc64Test, PiecesGiveTheSameAsTheWhole) {
  const std::string data = "eventstore export file, in pieces of any size";
  Crc64 whole;
  whole.Update(data);
  for (size_t cut = 0; cut <= data.size(); ++cut) {
    Crc64 pieces;
    pieces.Update(std::string_view(data).substr(0, cut));
    pieces.Update(std::string_view(data).substr(cut));
    EXPECT_EQ(pieces.value(), whole.value()) << cut;
  }
}

TEST(Crc64Test, Int64IsLittleEndian) {
  Crc64 a;
  a.UpdateInt64(0x0102030405060708LL);
  Crc64 b;
  b.Update(std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  EXPECT_EQ(a.value(), b.value());
}

}  // namespace
}  // namespace eventstore::tools
