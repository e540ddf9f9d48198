// Integrity of the log (issue #9, items 0 and 0b), on every backend: metadata
// that could never be read back is refused at append; a row damaged behind
// the store's back (corrupt metadata, changed payload bytes) comes back as
// one damaged event (RecordedEvent::damage) instead of failing the whole
// read; the checksum stored with each event catches silent corruption,
// unless the store was opened with verify_checksums off.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackendsAndFailover;
using ::eventstore::test::OpenWithoutChecksumVerification;
using ::eventstore::test::RawAccessTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  placed.add_items("book");
  v1::EventMetadata metadata;
  metadata.set_correlation_id(absl::StrCat("req-", order_id));
  (*metadata.mutable_properties())["b"] = "2";
  (*metadata.mutable_properties())["a"] = "1";
  return EventData::From(placed, metadata);
}

// --- refused at append: every backend ----------------------------------------

class MetadataTextConformanceTest : public test::StoreTest {
 protected:
};

TEST_P(MetadataTextConformanceTest, InvalidUtf8InAnyMetadataStringIsRefused) {
  struct Case {
    std::string field;
    void (*set)(v1::EventMetadata&);
  };
  const std::vector<Case> cases = {
      {"correlation_id",
       [](v1::EventMetadata& m) { m.set_correlation_id("req-\xff"); }},
      {"causation_id",
       [](v1::EventMetadata& m) { m.set_causation_id("\xc0\xaf"); }},
      {"tenant_id",
       [](v1::EventMetadata& m) { m.set_tenant_id("t\xed\xa0\x80"); }},
      {"actor", [](v1::EventMetadata& m) { m.set_actor("bob\xfe"); }},
      {"properties key",
       [](v1::EventMetadata& m) { (*m.mutable_properties())["k\xff"] = "v"; }},
      {"properties['k']",
       [](v1::EventMetadata& m) { (*m.mutable_properties())["k"] = "v\x80"; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    EventData event = Placed("1");
    c.set(event.metadata);
    EXPECT_THAT(
        store_->Append("order-1", ExpectedVersion::Any(), {event}).status(),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 AllOf(HasSubstr(absl::StrCat("events[0].metadata.", c.field)),
                       HasSubstr("not valid UTF-8"))));
  }
  // Nothing was written, and valid UTF-8 beyond ASCII is fine.
  ASSERT_OK_AND_ASSIGN(int64_t version, store_->StreamVersion("order-1"));
  EXPECT_EQ(version, 0);
  EventData fine = Placed("2");
  fine.metadata.set_actor("Zoë 🚀");
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::Any(), {fine}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store_->ReadStream("order-1"));
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].metadata.actor(), "Zoë 🚀");
  EXPECT_FALSE(events[0].damaged());
}

TEST_P(MetadataTextConformanceTest, EveryAppendedEventCarriesAChecksum) {
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::Any(),
                           {Placed("1"), Placed("2")}));
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::Any(), {Placed("3")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store_->ReadStream("order-1"));
  ASSERT_THAT(events, SizeIs(3));
  for (const RecordedEvent& e : events) {
    EXPECT_TRUE(e.checksum.has_value());
    EXPECT_FALSE(e.damaged()) << e.damage;
  }
  // Different events, different sums.
  EXPECT_NE(events[0].checksum, events[1].checksum);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, MetadataTextConformanceTest,
                         ::testing::ValuesIn(AllTestBackendsAndFailover()),
                         TestBackendName);

// --- rows damaged by hand ----------------------------------------------------

class EventDamageConformanceTest : public test::StoreTest {
 protected:
  void SetUp() override {
    test::StoreTest::SetUp();
    if (HasFatalFailure()) return;
    // order-1 v1..v3 and order-2 v1, interleaved in the global log.
    ASSERT_OK(store_->Append("order-1", ExpectedVersion::NoStream(),
                             {Placed("a"), Placed("b")}));
    ASSERT_OK(
        store_->Append("order-2", ExpectedVersion::NoStream(), {Placed("x")}));
    ASSERT_OK(
        store_->Append("order-1", ExpectedVersion::Exactly(2), {Placed("c")}));
  }

  absl::Status Overwrite(const std::string& stream, int64_t version,
                         const std::string& column,
                         std::optional<std::string> bytes) {
    return GetParam().overwrite_column(*store_, stream, version, column,
                                       std::move(bytes));
  }

  // Reads order-1 and the whole log; expects order-1 version 2 damaged with
  // a message containing `why`, and every other event intact.
  void ExpectOnlyOrder1V2Damaged(const std::string& why) {
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stream,
                         store_->ReadStream("order-1"));
    ASSERT_THAT(stream, SizeIs(3));
    EXPECT_FALSE(stream[0].damaged()) << stream[0].damage;
    EXPECT_FALSE(stream[2].damaged()) << stream[2].damage;
    const RecordedEvent& bad = stream[1];
    ASSERT_TRUE(bad.damaged());
    EXPECT_EQ(bad.stream, "order-1");
    EXPECT_EQ(bad.version, 2);
    EXPECT_THAT(bad.damage,
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr(bad.position.ToString()),
                               HasSubstr("'order-1'"), HasSubstr("version 2"),
                               HasSubstr(why))));
    // Decoding it refuses with the damage.
    EXPECT_THAT(bad.As<test::v1::OrderPlaced>().status(),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(why)));
    ASSERT_OK_AND_ASSIGN(test::v1::OrderPlaced c,
                         stream[2].As<test::v1::OrderPlaced>());
    EXPECT_EQ(c.order_id(), "c");

    // The global log: all four, one damaged, in order, and a reader can
    // step past it page by page.
    ReadAllOptions options;
    options.max_count = 1;
    std::vector<RecordedEvent> all;
    while (true) {
      ASSERT_OK_AND_ASSIGN(ReadAllPage page, store_->ReadAll(options));
      for (RecordedEvent& e : page.events) all.push_back(std::move(e));
      if (page.end_of_log) break;
      options.from_position = page.next_position;
    }
    ASSERT_THAT(all, SizeIs(4));
    int damaged = 0;
    for (const RecordedEvent& e : all) damaged += e.damaged() ? 1 : 0;
    EXPECT_EQ(damaged, 1);
    EXPECT_TRUE(all[1].damaged());
    EXPECT_EQ(all[1].position, bad.position);
    EXPECT_EQ(all[2].stream, "order-2");
    EXPECT_FALSE(all[2].damaged());
  }
};

TEST_P(EventDamageConformanceTest, CorruptMetadataDamagesOnlyThatEvent) {
  // What a store without the append check kept: a correlation id that is
  // not UTF-8, which protobuf refuses to parse.
  ASSERT_OK(
      Overwrite("order-1", 2, "metadata", std::string("\x0a\x05req-\xff")));
  ExpectOnlyOrder1V2Damaged("metadata does not parse");
}

TEST_P(EventDamageConformanceTest, ChangedPayloadFailsItsChecksum) {
  test::v1::OrderPlaced other;
  other.set_order_id("z");  // parses fine: only the checksum tells
  other.add_items("book");
  ASSERT_OK(Overwrite("order-1", 2, "payload", other.SerializeAsString()));
  ExpectOnlyOrder1V2Damaged("checksum");
}

TEST_P(EventDamageConformanceTest, VerifyChecksumsOffReadsAChangedPayload) {
  test::v1::OrderPlaced other;
  other.set_order_id("z");
  other.add_items("book");
  ASSERT_OK(Overwrite("order-1", 2, "payload", other.SerializeAsString()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> unverified,
                       OpenWithoutChecksumVerification(*store_));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stream,
                       unverified->ReadStream("order-1"));
  ASSERT_THAT(stream, SizeIs(3));
  for (const RecordedEvent& e : stream) {
    EXPECT_FALSE(e.damaged()) << e.damage;
    EXPECT_TRUE(e.checksum.has_value());  // carried, not compared
  }
  EXPECT_EQ(stream[1].payload, other.SerializeAsString());
  ReadAllOptions all;
  all.max_count = 10;
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, unverified->ReadAll(all));
  ASSERT_THAT(page.events, SizeIs(4));
  for (const RecordedEvent& e : page.events) {
    EXPECT_FALSE(e.damaged()) << e.damage;
  }
  // The same row through the store opened with the default: checked.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> checked,
                       store_->ReadStream("order-1"));
  ASSERT_THAT(checked, SizeIs(3));
  EXPECT_THAT(checked[1].damage,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_P(EventDamageConformanceTest, VerifyChecksumsOffStillMarksBadMetadata) {
  ASSERT_OK(
      Overwrite("order-1", 2, "metadata", std::string("\x0a\x05req-\xff")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> unverified,
                       OpenWithoutChecksumVerification(*store_));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stream,
                       unverified->ReadStream("order-1"));
  ASSERT_THAT(stream, SizeIs(3));
  EXPECT_FALSE(stream[0].damaged()) << stream[0].damage;
  EXPECT_THAT(stream[1].damage, StatusIs(absl::StatusCode::kDataLoss,
                                         HasSubstr("metadata does not parse")));
}

TEST_P(EventDamageConformanceTest, ChangedMetadataFailsItsChecksum) {
  v1::EventMetadata metadata;
  metadata.set_correlation_id("req-forged");
  ASSERT_OK(Overwrite("order-1", 2, "metadata", metadata.SerializeAsString()));
  ExpectOnlyOrder1V2Damaged("checksum");
}

TEST_P(EventDamageConformanceTest, RowsWithoutAChecksumAreNotChecked) {
  // A row from before schema version 4 has no checksum.
  ASSERT_OK(Overwrite("order-1", 2, "checksum", std::nullopt));
  ASSERT_OK(Overwrite("order-1", 2, "payload", std::string("\x0a\x01q")));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stream,
                       store_->ReadStream("order-1"));
  ASSERT_THAT(stream, SizeIs(3));
  EXPECT_FALSE(stream[1].damaged()) << stream[1].damage;
  EXPECT_FALSE(stream[1].checksum.has_value());
  EXPECT_TRUE(stream[0].checksum.has_value());
}

INSTANTIATE_TEST_SUITE_P(RawAccessBackends, EventDamageConformanceTest,
                         ::testing::ValuesIn(RawAccessTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
