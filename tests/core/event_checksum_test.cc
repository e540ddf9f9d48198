// The checksum stored with every event (eventstore/internal/event_checksum.h)
// and the marking of damaged events.

#include "eventstore/internal/event_checksum.h"

#include <string>

#include "eventstore/recorded_event.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore::internal {
namespace {

using ::eventstore::test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(EventChecksumTest, IsCrc32OfTheLengthPrefixedFields) {
  // The storage format: CRC-32 (IEEE, as zlib.crc32 in Python) of the id,
  // then each field after its length as 8 little-endian bytes.
  const std::string id(16, '\0');
  const uint32_t base = EventChecksum(id, "s", "t", "m", "p");
  EXPECT_EQ(base, 0x680502f9u);
  // Large events are summed field by field, small ones in one buffer: the
  // same format either way.
  EXPECT_EQ(EventChecksum(id, "s", "t", "m", std::string(2000, 'p')),
            0x6caa1928u);
  // Every field counts, and bytes cannot move from one field to the next.
  EXPECT_NE(base,
            EventChecksum(std::string(15, '\0') + "\x01", "s", "t", "m", "p"));
  EXPECT_NE(base, EventChecksum(id, "S", "t", "m", "p"));
  EXPECT_NE(base, EventChecksum(id, "s", "T", "m", "p"));
  EXPECT_NE(base, EventChecksum(id, "s", "t", "M", "p"));
  EXPECT_NE(base, EventChecksum(id, "s", "t", "m", "P"));
  EXPECT_NE(EventChecksum(id, "ab", "c", "", ""),
            EventChecksum(id, "a", "bc", "", ""));
}

TEST(EventChecksumTest, MetadataIsSerializedDeterministically) {
  v1::EventMetadata a;
  v1::EventMetadata b;
  for (int i = 0; i < 50; ++i) {
    (*a.mutable_properties())["k" + std::to_string(i)] = "v";
    (*b.mutable_properties())["k" + std::to_string(49 - i)] = "v";
  }
  std::string sa;
  std::string sb;
  SerializeMetadata(a, sa);
  SerializeMetadata(b, sb);
  EXPECT_EQ(sa, sb);
  // Parsed and serialized again: the same bytes (what an importer does).
  v1::EventMetadata parsed;
  ASSERT_TRUE(parsed.ParseFromString(sa));
  std::string again;
  SerializeMetadata(parsed, again);
  EXPECT_EQ(again, sa);
  SerializeMetadata(v1::EventMetadata(), again);
  EXPECT_TRUE(again.empty());
}

RecordedEvent Stored() {
  RecordedEvent e;
  e.id = Uuid::Generate();
  e.stream = "order-1";
  e.version = 2;
  e.position = Position::At(7);
  e.type = "eventstore.test.v1.OrderPlaced";
  test::v1::OrderPlaced placed;
  placed.set_order_id("1");
  e.payload = placed.SerializeAsString();
  e.metadata.set_actor("bob");
  std::string metadata;
  SerializeMetadata(e.metadata, metadata);
  e.checksum =
      EventChecksum(e.id.bytes(), e.stream, e.type, metadata, e.payload);
  return e;
}

TEST(EventChecksumTest, AMismatchMarksTheEventDamaged) {
  RecordedEvent e = Stored();
  std::string metadata;
  SerializeMetadata(e.metadata, metadata);
  VerifyStoredChecksum("sqlite", e.id.bytes(), metadata, e);
  EXPECT_FALSE(e.damaged());
  ASSERT_TRUE(e.As<test::v1::OrderPlaced>().ok());

  e.payload[e.payload.size() - 1] ^= 1;
  VerifyStoredChecksum("sqlite", e.id.bytes(), metadata, e);
  ASSERT_TRUE(e.damaged());
  EXPECT_THAT(
      e.damage,
      StatusIs(absl::StatusCode::kDataLoss,
               AllOf(HasSubstr(e.id.ToString()),
                     HasSubstr("at position 7 (stream 'order-1', "
                               "version 2) is damaged: its checksum"))));
  EXPECT_THAT(e.As<test::v1::OrderPlaced>().status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));

  // Without a stored checksum nothing is checked.
  RecordedEvent old = Stored();
  old.checksum.reset();
  old.payload += "x";
  VerifyStoredChecksum("sqlite", old.id.bytes(), metadata, old);
  EXPECT_FALSE(old.damaged());
}

TEST(EventChecksumTest, ImportRecomputesAndChecks) {
  RecordedEvent e = Stored();
  std::string metadata;
  ASSERT_OK_AND_ASSIGN(uint32_t sum, CheckImportedEvent(e, metadata));
  EXPECT_EQ(sum, *e.checksum);
  e.metadata.set_actor("eve");
  EXPECT_THAT(
      CheckImportedEvent(e, metadata).status(),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("carries checksum")));
  e.checksum.reset();
  ASSERT_OK(CheckImportedEvent(e, metadata).status());
  e.metadata.set_correlation_id("\xff");
  EXPECT_THAT(
      CheckImportedEvent(e, metadata).status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("metadata.correlation_id is not valid UTF-8")));
}

}  // namespace
}  // namespace eventstore::internal
