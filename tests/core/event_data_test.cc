#include "eventstore/event_data.h"

#include <string>

#include "eventstore/recorded_event.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore {
namespace {

using ::eventstore::test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

test::v1::OrderPlaced Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  placed.mutable_total()->set_currency("EUR");
  placed.mutable_total()->set_units(1250);
  placed.add_items("book");
  return placed;
}

TEST(EventDataTest, FromFillsEveryField) {
  v1::EventMetadata metadata;
  metadata.set_correlation_id("req-42");
  metadata.set_tenant_id("acme");
  const test::v1::OrderPlaced placed = Placed("o-1");
  const EventData event = EventData::From(placed, metadata);
  EXPECT_FALSE(event.id.IsNil());
  EXPECT_EQ(event.type, "eventstore.test.v1.OrderPlaced");
  EXPECT_EQ(event.payload, placed.SerializeAsString());
  EXPECT_EQ(event.metadata.correlation_id(), "req-42");
  EXPECT_EQ(event.metadata.tenant_id(), "acme");
  EXPECT_EQ(event.descriptor, test::v1::OrderPlaced::descriptor());
}

TEST(EventDataTest, FromGivesEachEventItsOwnId) {
  const test::v1::OrderPlaced placed = Placed("o-1");
  const EventData a = EventData::From(placed);
  const EventData b = EventData::From(placed);
  EXPECT_NE(a.id, b.id);
  EXPECT_EQ(a.payload, b.payload);
  EXPECT_EQ(a.metadata.ByteSizeLong(), 0u);
}

TEST(EventDataTest, DefaultHasNilIdAndNoDescriptor) {
  const EventData event;
  EXPECT_TRUE(event.id.IsNil());
  EXPECT_EQ(event.descriptor, nullptr);
}

RecordedEvent Recorded(const google::protobuf::Message& message) {
  const EventData data = EventData::From(message);
  RecordedEvent event;
  event.id = data.id;
  event.type = data.type;
  event.payload = data.payload;
  event.stream = "order-1";
  event.version = 1;
  event.position = Position::At(1);
  return event;
}

TEST(RecordedEventTest, AsDecodesItsType) {
  const RecordedEvent event = Recorded(Placed("o-9"));
  ASSERT_OK_AND_ASSIGN(test::v1::OrderPlaced decoded,
                       event.As<test::v1::OrderPlaced>());
  EXPECT_EQ(decoded.order_id(), "o-9");
  EXPECT_EQ(decoded.total().units(), 1250);
  EXPECT_THAT(decoded.items(), ::testing::ElementsAre("book"));
}

TEST(RecordedEventTest, AsAnotherTypeIsInvalidArgumentNamingBoth) {
  const RecordedEvent event = Recorded(Placed("o-9"));
  EXPECT_THAT(event.As<test::v1::OrderShipped>(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("eventstore.test.v1.OrderPlaced"),
                             HasSubstr("eventstore.test.v1.OrderShipped"))));
}

TEST(RecordedEventTest, CorruptPayloadIsDataLossNamingTheEvent) {
  RecordedEvent event = Recorded(Placed("o-9"));
  // Field 1, length 5, but only two bytes follow.
  event.payload = std::string(
      "\x0a\x05"
      "ab",
      4);
  EXPECT_THAT(
      event.As<test::v1::OrderPlaced>(),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr(event.id.ToString())));
  test::v1::OrderPlaced message;
  EXPECT_THAT(event.DecodeInto(message), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(RecordedEventTest, EmptyPayloadDecodesAsDefaultMessage) {
  RecordedEvent event = Recorded(test::v1::OrderShipped());
  EXPECT_TRUE(event.payload.empty());
  ASSERT_OK_AND_ASSIGN(test::v1::OrderShipped decoded,
                       event.As<test::v1::OrderShipped>());
  EXPECT_EQ(decoded.order_id(), "");
}

}  // namespace
}  // namespace eventstore
