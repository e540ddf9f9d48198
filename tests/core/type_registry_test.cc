#include "eventstore/type_registry.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eventstore/event_data.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/test/v1/legacy.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/split_moved_upcaster.h"
#include "tests/support/status_matchers.h"

namespace eventstore {
namespace {

using ::eventstore::test::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kOldName[] = "eventstore.test.v1.OldName";
constexpr char kNewName[] = "eventstore.test.v1.NewName";
constexpr char kMoved[] = "eventstore.test.v1.CustomerMovedV1";
constexpr char kStreet[] = "eventstore.test.v1.StreetChanged";
constexpr char kCity[] = "eventstore.test.v1.CityChanged";

RecordedEvent Recorded(const google::protobuf::Message& message,
                       int64_t version = 3) {
  const EventData data = EventData::From(message);
  RecordedEvent event;
  event.id = data.id;
  event.type = data.type;
  event.payload = data.payload;
  event.metadata.set_correlation_id("corr-1");
  event.stream = "customer-1";
  event.version = version;
  event.position = Position::At(100 + version);
  event.recorded_at = absl::FromUnixMicros(1700000000123456);
  return event;
}

// The split of CustomerMovedV1 into StreetChanged then CityChanged.
TypeRegistry::Upcaster SplitMoved() { return test::SplitMovedUpcaster(); }

test::v1::OldName Old(const std::string& value) {
  test::v1::OldName old;
  old.set_value(value);
  return old;
}

test::v1::CustomerMovedV1 Moved(const std::string& street,
                                const std::string& city) {
  test::v1::CustomerMovedV1 moved;
  moved.set_street(street);
  moved.set_city(city);
  return moved;
}

TEST(TypeRegistryTest, RegisterAndFind) {
  TypeRegistry registry;
  EXPECT_FALSE(registry.Contains("eventstore.test.v1.OrderPlaced"));
  EXPECT_EQ(registry.FindDescriptor("eventstore.test.v1.OrderPlaced"), nullptr);
  registry.Register<test::v1::OrderPlaced>();
  EXPECT_TRUE(registry.Contains("eventstore.test.v1.OrderPlaced"));
  EXPECT_EQ(registry.FindDescriptor("eventstore.test.v1.OrderPlaced"),
            test::v1::OrderPlaced::descriptor());
  EXPECT_FALSE(registry.Contains("eventstore.test.v1.OrderShipped"));
  EXPECT_FALSE(registry.Contains("OrderPlaced"));
  EXPECT_FALSE(registry.HasUpcasters());
}

TEST(TypeRegistryTest, DecodeRegisteredType) {
  TypeRegistry registry;
  registry.Register<test::v1::OrderPlaced>();
  test::v1::OrderPlaced placed;
  placed.set_order_id("o-5");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<google::protobuf::Message> message,
                       registry.Decode(Recorded(placed)));
  ASSERT_NE(message, nullptr);
  EXPECT_EQ(message->GetDescriptor(), test::v1::OrderPlaced::descriptor());
  EXPECT_EQ(message->SerializeAsString(), placed.SerializeAsString());
}

TEST(TypeRegistryTest, DecodeUnknownTypeIsNotFoundNamingIt) {
  TypeRegistry registry;
  registry.Register<test::v1::OrderPlaced>();
  EXPECT_THAT(registry.Decode(Recorded(test::v1::OrderShipped())),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("eventstore.test.v1.OrderShipped")));
}

TEST(TypeRegistryTest, DecodeCorruptPayloadIsDataLoss) {
  TypeRegistry registry;
  registry.Register<test::v1::OrderPlaced>();
  RecordedEvent event = Recorded(test::v1::OrderPlaced());
  event.payload = std::string(
      "\x0a\x05"
      "ab",
      4);
  EXPECT_THAT(registry.Decode(event), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(TypeRegistryTest, TypedDecodeNeedsNoCast) {
  TypeRegistry registry;
  registry.Register<test::v1::OrderPlaced>();
  test::v1::OrderPlaced placed;
  placed.set_order_id("o-7");
  ASSERT_OK_AND_ASSIGN(
      test::v1::OrderPlaced decoded,
      registry.Decode<test::v1::OrderPlaced>(Recorded(placed)));
  EXPECT_EQ(decoded.order_id(), "o-7");
}

TEST(TypeRegistryTest, TypedDecodeOfAnotherTypeIsInvalidArgumentNamingBoth) {
  TypeRegistry registry;
  registry.Register<test::v1::OrderPlaced>();
  registry.Register<test::v1::OrderShipped>();
  EXPECT_THAT(registry.Decode<test::v1::OrderPlaced>(
                  Recorded(test::v1::OrderShipped())),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("eventstore.test.v1.OrderShipped"),
                             HasSubstr("eventstore.test.v1.OrderPlaced"))));
}

TEST(TypeRegistryTest, TypedDecodeKeepsDecodesErrors) {
  TypeRegistry registry;
  registry.Register<test::v1::OrderPlaced>();
  // Not registered, even when M is the event's type.
  EXPECT_THAT(registry.Decode<test::v1::OrderShipped>(
                  Recorded(test::v1::OrderShipped())),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("eventstore.test.v1.OrderShipped")));
  RecordedEvent corrupt = Recorded(test::v1::OrderPlaced());
  corrupt.payload = std::string(
      "\x0a\x05"
      "ab",
      4);
  EXPECT_THAT(registry.Decode<test::v1::OrderPlaced>(corrupt),
              StatusIs(absl::StatusCode::kDataLoss));
  RecordedEvent damaged = Recorded(test::v1::OrderPlaced());
  damaged.damage = absl::DataLossError("checksum mismatch");
  EXPECT_THAT(registry.Decode<test::v1::OrderPlaced>(damaged),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST(TypeRegistryTest, UpcastWithoutUpcasterReturnsTheEventItself) {
  TypeRegistry registry;
  const RecordedEvent event = Recorded(Old("x"));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> out, registry.Upcast(event));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, kOldName);
  EXPECT_EQ(out[0].payload, event.payload);
  EXPECT_EQ(out[0].id, event.id);
}

TEST(TypeRegistryTest, RenameKeepsPayloadAndEverythingElse) {
  TypeRegistry registry;
  registry.AddRename(kOldName, kNewName);
  EXPECT_TRUE(registry.HasUpcasters());
  const RecordedEvent event = Recorded(Old("kept"));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> out, registry.Upcast(event));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, kNewName);
  EXPECT_EQ(out[0].payload, event.payload);
  EXPECT_EQ(out[0].id, event.id);
  EXPECT_EQ(out[0].stream, event.stream);
  EXPECT_EQ(out[0].version, event.version);
  EXPECT_EQ(out[0].position, event.position);
  EXPECT_EQ(out[0].recorded_at, event.recorded_at);
  EXPECT_EQ(out[0].metadata.correlation_id(), "corr-1");
  ASSERT_OK_AND_ASSIGN(test::v1::NewName renamed,
                       out[0].As<test::v1::NewName>());
  EXPECT_EQ(renamed.value(), "kept");
}

TEST(TypeRegistryTest, SplitGivesEventsInOrderSharingStreamVersionPosition) {
  TypeRegistry registry;
  registry.AddUpcaster(kMoved, SplitMoved());
  const RecordedEvent event = Recorded(Moved("Main St 1", "Springfield"), 4);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> out, registry.Upcast(event));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, kStreet);
  EXPECT_EQ(out[1].type, kCity);
  for (const RecordedEvent& e : out) {
    EXPECT_EQ(e.stream, event.stream);
    EXPECT_EQ(e.version, 4);
    EXPECT_EQ(e.position, event.position);
    EXPECT_EQ(e.recorded_at, event.recorded_at);
  }
  ASSERT_OK_AND_ASSIGN(test::v1::StreetChanged street,
                       out[0].As<test::v1::StreetChanged>());
  EXPECT_EQ(street.street(), "Main St 1");
  ASSERT_OK_AND_ASSIGN(test::v1::CityChanged city,
                       out[1].As<test::v1::CityChanged>());
  EXPECT_EQ(city.city(), "Springfield");
}

TEST(TypeRegistryTest, UpcasterToNothingDropsTheEvent) {
  TypeRegistry registry;
  registry.AddUpcaster(
      kOldName,
      [](const RecordedEvent&)
          -> absl::StatusOr<std::vector<TypeRegistry::Upcasted>> {
        return std::vector<TypeRegistry::Upcasted>{};
      });
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> out,
                       registry.Upcast(Recorded(Old("gone"))));
  EXPECT_TRUE(out.empty());
}

TEST(TypeRegistryTest, ChainsApplyEveryStep) {
  // A -> B (rename), B -> [C, D] (split), C -> E (rename): A gives E, D.
  TypeRegistry registry;
  registry.AddRename("x.A", "x.B");
  registry.AddUpcaster(
      "x.B",
      [](const RecordedEvent& e)
          -> absl::StatusOr<std::vector<TypeRegistry::Upcasted>> {
        return std::vector<TypeRegistry::Upcasted>{{"x.C", e.payload + "c"},
                                                   {"x.D", e.payload + "d"}};
      });
  registry.AddRename("x.C", "x.E");
  RecordedEvent event = Recorded(Old(""));
  event.type = "x.A";
  event.payload = "p";
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> out, registry.Upcast(event));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].type, "x.E");
  EXPECT_EQ(out[0].payload, "pc");
  EXPECT_EQ(out[1].type, "x.D");
  EXPECT_EQ(out[1].payload, "pd");
}

// Types x.T0 -> x.T1 -> ... -> x.T<steps>.
void AddChain(TypeRegistry& registry, int steps) {
  for (int i = 0; i < steps; ++i) {
    registry.AddRename(absl::StrCat("x.T", i), absl::StrCat("x.T", i + 1));
  }
}

TEST(TypeRegistryTest, ChainOfMaxDepthSucceeds) {
  TypeRegistry registry;
  AddChain(registry, TypeRegistry::kMaxUpcastDepth);
  RecordedEvent event = Recorded(Old(""));
  event.type = "x.T0";
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> out, registry.Upcast(event));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, absl::StrCat("x.T", TypeRegistry::kMaxUpcastDepth));
}

TEST(TypeRegistryTest, ChainLongerThanMaxDepthIsInvalidArgument) {
  TypeRegistry registry;
  AddChain(registry, TypeRegistry::kMaxUpcastDepth + 1);
  RecordedEvent event = Recorded(Old(""));
  event.type = "x.T0";
  EXPECT_THAT(registry.Upcast(event),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cycle")));
}

TEST(TypeRegistryTest, CycleIsInvalidArgumentNotAHang) {
  TypeRegistry registry;
  registry.AddRename("x.A", "x.B");
  registry.AddRename("x.B", "x.A");
  RecordedEvent event = Recorded(Old(""));
  event.type = "x.A";
  EXPECT_THAT(registry.Upcast(event),
              StatusIs(absl::StatusCode::kInvalidArgument));
  registry.AddRename("x.Self", "x.Self");
  event.type = "x.Self";
  EXPECT_THAT(registry.Upcast(event),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TypeRegistryTest, SplitCycleIsInvalidArgument) {
  // Each step doubles the events: must stop by depth, not run out of memory.
  TypeRegistry registry;
  registry.AddUpcaster(
      "x.Fork",
      [](const RecordedEvent& e)
          -> absl::StatusOr<std::vector<TypeRegistry::Upcasted>> {
        return std::vector<TypeRegistry::Upcasted>{{"x.Fork", e.payload},
                                                   {"x.Fork", e.payload}};
      });
  RecordedEvent event = Recorded(Old(""));
  event.type = "x.Fork";
  EXPECT_THAT(registry.Upcast(event),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TypeRegistryTest, UpcasterErrorKeepsCodeAndNamesTheEvent) {
  TypeRegistry registry;
  registry.AddUpcaster(kMoved, SplitMoved());
  RecordedEvent event = Recorded(Moved("a", "b"));
  event.payload = std::string(
      "\x0a\x05"
      "ab",
      4);
  EXPECT_THAT(registry.Upcast(event),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(event.id.ToString()), HasSubstr(kMoved),
                             HasSubstr("does not parse"))));
}

TEST(TypeRegistryTest, UpcastAllKeepsOrderAndExpandsSplits) {
  TypeRegistry registry;
  registry.AddRename(kOldName, kNewName);
  registry.AddUpcaster(kMoved, SplitMoved());
  test::v1::OrderPlaced placed;
  placed.set_order_id("o-1");
  std::vector<RecordedEvent> events = {
      Recorded(placed, 1), Recorded(Old("v"), 2), Recorded(Moved("s", "c"), 3),
      Recorded(placed, 4)};
  ASSERT_OK(registry.UpcastAll(events));
  std::vector<std::string> types;
  std::vector<int64_t> versions;
  for (const RecordedEvent& e : events) {
    types.push_back(e.type);
    versions.push_back(e.version);
  }
  EXPECT_THAT(types,
              ElementsAre("eventstore.test.v1.OrderPlaced", kNewName, kStreet,
                          kCity, "eventstore.test.v1.OrderPlaced"));
  EXPECT_THAT(versions, ElementsAre(1, 2, 3, 3, 4));
}

TEST(TypeRegistryTest, UpcastAllFailsWholeOnAnyError) {
  TypeRegistry registry;
  registry.AddRename("x.A", "x.B");
  registry.AddRename("x.B", "x.A");
  std::vector<RecordedEvent> events = {Recorded(Old("v"), 1),
                                       Recorded(Old("w"), 2)};
  events[1].type = "x.A";
  EXPECT_THAT(registry.UpcastAll(events),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TypeRegistryTest, UpcastAllWithoutUpcastersIsIdentity) {
  TypeRegistry registry;
  std::vector<RecordedEvent> events = {Recorded(Old("v"), 1),
                                       Recorded(Moved("s", "c"), 2)};
  const std::vector<RecordedEvent> before = events;
  ASSERT_OK(registry.UpcastAll(events));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, before[0].type);
  EXPECT_EQ(events[1].type, before[1].type);
  EXPECT_EQ(events[1].payload, before[1].payload);
}

}  // namespace
}  // namespace eventstore
