// StoreInspector (store_inspector.h), run on every backend of
// AllTestBackends(): what Info, ListStreams and RecordedTypes report about
// a store, which the `eventstore` tool's info, streams and JSON rendering
// rely on, and CountEvents and FindLeaseHolder, which the web console's
// charts and projection table rely on.

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/lease.h"
#include "eventstore/store_inspector.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"
#include "tests/support/wait_until.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::AnyOf;
using ::testing::ContainsRegex;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr absl::Duration kClockSlack = absl::Seconds(5);

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

EventData Shipped(const std::string& order_id) {
  test::v1::OrderShipped shipped;
  shipped.set_order_id(order_id);
  return EventData::From(shipped);
}

// An event of a type no descriptor pool knows.
EventData Undescribed() {
  EventData event;
  event.type = "unknown.v1.Mystery";
  event.payload = "\x08\x01";
  return event;
}

std::vector<std::string> Names(const std::vector<StreamSummary>& streams) {
  std::vector<std::string> names;
  for (const StreamSummary& s : streams) names.push_back(s.stream);
  return names;
}

class StoreInspectorConformanceTest : public test::StoreTest {
 protected:
  void AppendN(const std::string& stream, int n) {
    std::vector<EventData> events;
    for (int i = 0; i < n; ++i) events.push_back(Placed(absl::StrCat(i)));
    ASSERT_OK(store_->Append(stream, ExpectedVersion::Any(), events));
  }

  std::vector<StreamSummary> List(const std::string& prefix,
                                  const std::string& after, int64_t limit) {
    ListStreamsOptions options;
    options.prefix = prefix;
    options.after = after;
    options.limit = limit;
    absl::StatusOr<std::vector<StreamSummary>> streams =
        store_->inspector().ListStreams(options);
    EXPECT_OK(streams);
    return streams.ok() ? *streams : std::vector<StreamSummary>();
  }
};

TEST_P(StoreInspectorConformanceTest, InfoOfEmptyStore) {
  ASSERT_OK_AND_ASSIGN(StoreInfo info, store_->inspector().Info());
  EXPECT_THAT(info.backend, AnyOf("sqlite", "postgres"));
  EXPECT_EQ(GetParam().name.rfind(info.backend, 0), 0u)
      << GetParam().name << " reported " << info.backend;
  EXPECT_FALSE(info.location.empty());
  EXPECT_GT(info.code_schema_version, 0);
  EXPECT_EQ(info.schema_version, info.code_schema_version);
  EXPECT_EQ(info.streams, 0);
  EXPECT_EQ(info.events, 0);
  EXPECT_TRUE(info.head.IsStart());
  EXPECT_GT(info.size_bytes, 0);
}

TEST_P(StoreInspectorConformanceTest, InfoCountsStreamsEventsAndHead) {
  AppendN("order-1", 3);
  AppendN("order-2", 2);
  AppendN("invoice-1", 1);
  ASSERT_OK_AND_ASSIGN(StoreInfo info, store_->inspector().Info());
  EXPECT_EQ(info.streams, 3);
  EXPECT_EQ(info.events, 6);
  ASSERT_OK_AND_ASSIGN(Position head, store_->HeadPosition());
  EXPECT_EQ(info.head, head);
  EXPECT_FALSE(info.head.IsStart());
  EXPECT_GT(info.size_bytes, 0);
}

TEST_P(StoreInspectorConformanceTest, ListStreamsSortedWithVersions) {
  const absl::Time before = absl::Now();
  AppendN("order-2", 2);
  AppendN("order-10", 1);
  AppendN("invoice-1", 4);
  AppendN("order-2", 1);
  const absl::Time after = absl::Now();
  std::vector<StreamSummary> streams = List("", "", 1000);
  ASSERT_THAT(Names(streams), ElementsAre("invoice-1", "order-10", "order-2"));
  EXPECT_EQ(streams[0].version, 4);
  EXPECT_EQ(streams[1].version, 1);
  EXPECT_EQ(streams[2].version, 3);
  for (const StreamSummary& s : streams) {
    EXPECT_LE(s.first_recorded_at, s.last_recorded_at) << s.stream;
    EXPECT_GE(s.first_recorded_at, before - kClockSlack) << s.stream;
    EXPECT_LE(s.last_recorded_at, after + kClockSlack) << s.stream;
  }
}

TEST_P(StoreInspectorConformanceTest, ListStreamsSortsAsBytes) {
  // Upper case sorts before lower case, '-' before digits, as in memcmp.
  AppendN("b", 1);
  AppendN("B", 1);
  AppendN("a-1", 1);
  AppendN("a1", 1);
  AppendN("A", 1);
  EXPECT_THAT(Names(List("", "", 1000)),
              ElementsAre("A", "B", "a-1", "a1", "b"));
}

TEST_P(StoreInspectorConformanceTest, ListStreamsByPrefix) {
  AppendN("order-1", 1);
  AppendN("order-2", 1);
  AppendN("orders", 1);
  AppendN("ordex", 1);
  AppendN("invoice-1", 1);
  EXPECT_THAT(Names(List("order-", "", 1000)),
              ElementsAre("order-1", "order-2"));
  EXPECT_THAT(Names(List("order", "", 1000)),
              ElementsAre("order-1", "order-2", "orders"));
  EXPECT_THAT(List("shipment-", "", 1000), IsEmpty());
}

TEST_P(StoreInspectorConformanceTest, ListStreamsPagesWithAfterAndLimit) {
  for (int i = 0; i < 7; ++i) AppendN(absl::StrCat("s-", i), 1);
  std::vector<std::string> seen;
  std::string after;
  int pages = 0;
  while (true) {
    std::vector<StreamSummary> page = List("s-", after, 3);
    if (page.empty()) break;
    ASSERT_LE(page.size(), 3u);
    ++pages;
    for (const StreamSummary& s : page) seen.push_back(s.stream);
    after = page.back().stream;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(seen,
              ElementsAre("s-0", "s-1", "s-2", "s-3", "s-4", "s-5", "s-6"));
  EXPECT_THAT(Names(List("", "s-4", 2)), ElementsAre("s-5", "s-6"));
  EXPECT_THAT(List("", "", 0), IsEmpty());
}

TEST_P(StoreInspectorConformanceTest, ListStreamsRejectsNegativeLimit) {
  ListStreamsOptions options;
  options.limit = -1;
  EXPECT_THAT(store_->inspector().ListStreams(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// ReadAll from PositionBeforeLast(n, filter) returns exactly the last n
// events that pass the filter.
TEST_P(StoreInspectorConformanceTest, PositionBeforeLastStartsTheLastEvents) {
  StoreInspector& inspector = store_->inspector();
  ASSERT_OK_AND_ASSIGN(Position empty,
                       inspector.PositionBeforeLast(3, ReadAllFilter()));
  EXPECT_TRUE(empty.IsStart());
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(store_->Append(absl::StrCat("order-", i), ExpectedVersion::Any(),
                             {Placed(absl::StrCat(i)), Shipped("s")}));
    AppendN(absl::StrCat("invoice-", i), 1);
  }
  auto last = [&](int64_t n, const ReadAllFilter& filter) {
    std::vector<std::string> out;
    absl::StatusOr<Position> from = inspector.PositionBeforeLast(n, filter);
    EXPECT_OK(from);
    if (!from.ok()) return out;
    ReadAllOptions options;
    options.from_position = *from;
    options.filter = filter;
    absl::StatusOr<ReadAllPage> page = store_->ReadAll(options);
    EXPECT_OK(page);
    if (!page.ok()) return out;
    for (const RecordedEvent& e : page->events) {
      out.push_back(absl::StrCat(e.stream, "/", e.version));
    }
    return out;
  };
  EXPECT_THAT(last(3, ReadAllFilter()),
              ElementsAre("order-3/1", "order-3/2", "invoice-3/1"));
  EXPECT_THAT(last(0, ReadAllFilter()), IsEmpty());
  ReadAllFilter orders;
  orders.stream_prefix = "order-";
  EXPECT_THAT(last(3, orders),
              ElementsAre("order-2/2", "order-3/1", "order-3/2"));
  ReadAllFilter shipped;
  shipped.event_types = {test::v1::OrderShipped::descriptor()->full_name()};
  EXPECT_THAT(last(2, shipped), ElementsAre("order-2/2", "order-3/2"));
  // More than there are: from the start.
  EXPECT_THAT(last(100, shipped), SizeIs(4));
  ASSERT_OK_AND_ASSIGN(Position all,
                       inspector.PositionBeforeLast(100, shipped));
  EXPECT_TRUE(all.IsStart());
  EXPECT_THAT(inspector.PositionBeforeLast(-1, ReadAllFilter()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("count: -1 is negative")));
}

// CountEvents counts the events in (after, up_to], whatever their streams
// and however they were appended.
TEST_P(StoreInspectorConformanceTest, CountEventsCountsARangeOfPositions) {
  StoreInspector& inspector = store_->inspector();
  const Position far = Position::FromParts(UINT64_MAX, UINT64_MAX);
  ASSERT_OK_AND_ASSIGN(int64_t none,
                       inspector.CountEvents(Position::Start(), far));
  EXPECT_EQ(none, 0);

  AppendN("order-1", 3);  // one append, one transaction
  AppendN("invoice-1", 1);
  AppendN("order-2", 2);
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store_->ReadAll(ReadAllOptions()));
  ASSERT_THAT(page.events, SizeIs(6));
  std::vector<Position> p;
  for (const RecordedEvent& e : page.events) p.push_back(e.position);
  auto count = [&](Position after, Position up_to) -> int64_t {
    absl::StatusOr<int64_t> n = inspector.CountEvents(after, up_to);
    EXPECT_OK(n);
    return n.ok() ? *n : -1;
  };
  EXPECT_EQ(count(Position::Start(), far), 6);
  EXPECT_EQ(count(Position::Start(), p[5]), 6);
  EXPECT_EQ(count(Position::Start(), p[0]), 1);
  // After is exclusive, up_to inclusive, across appends and inside one.
  EXPECT_EQ(count(p[0], p[2]), 2);
  EXPECT_EQ(count(p[1], p[4]), 3);
  EXPECT_EQ(count(p[2], p[3]), 1);
  EXPECT_EQ(count(p[5], far), 0);
  // Empty ranges, and reversed ones, count nothing.
  EXPECT_EQ(count(p[3], p[3]), 0);
  EXPECT_EQ(count(p[4], p[1]), 0);
  EXPECT_EQ(count(Position::Start(), Position::Start()), 0);

  // The console's use: the events appended between two heads.
  ASSERT_OK_AND_ASSIGN(Position before,
                       inspector.PositionBeforeLast(0, ReadAllFilter()));
  EXPECT_EQ(before, p[5]);
  AppendN("order-3", 2);
  AppendN("order-1", 1);
  ASSERT_OK_AND_ASSIGN(Position after,
                       inspector.PositionBeforeLast(0, ReadAllFilter()));
  EXPECT_EQ(count(before, after), 3);
  EXPECT_EQ(count(Position::Start(), after), 9);
}

// FindLeaseHolder tells who holds a lease, and never takes it.
TEST_P(StoreInspectorConformanceTest, FindLeaseHolderFindsTheHolder) {
  StoreInspector& inspector = store_->inspector();
  const std::string name = "projection:order-totals";
  // Never taken, then looked at: still free for the taking.
  ASSERT_OK_AND_ASSIGN(std::optional<LeaseHolder> free,
                       inspector.FindLeaseHolder(name));
  EXPECT_EQ(free, std::nullopt);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       store_->TryAcquireLease(name));
  ASSERT_NE(lease, nullptr);

  for (int look = 0; look < 2; ++look) {
    SCOPED_TRACE(absl::StrCat("look ", look));
    ASSERT_OK_AND_ASSIGN(std::optional<LeaseHolder> holder,
                         inspector.FindLeaseHolder(name));
    ASSERT_TRUE(holder.has_value());
    if (GetParam().name.rfind("postgres", 0) == 0) {
      // The server process of the lease's connection, and what the server
      // knows of that connection.
      EXPECT_GT(holder->pid, 0);
      EXPECT_NE(holder->pid, static_cast<int64_t>(getpid()));
      EXPECT_THAT(holder->detail, HasSubstr("client "));
      EXPECT_THAT(holder->detail,
                  ContainsRegex("connected since [0-9]{4}-[0-9]{2}-[0-9]{2}T"
                                "[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"));
    } else {
      EXPECT_EQ(holder->pid, static_cast<int64_t>(getpid()));
    }
    // Looking took nothing: the holder keeps it, nobody else gets it.
    EXPECT_TRUE(lease->Valid());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> other,
                         store_->TryAcquireLease(name));
    EXPECT_EQ(other, nullptr);
  }
  // Other names, even close ones, are free.
  for (const char* other :
       {"projection:order-total", "projection:order-totals2",
        "projection:Order-totals"}) {
    ASSERT_OK_AND_ASSIGN(std::optional<LeaseHolder> holder,
                         inspector.FindLeaseHolder(other));
    EXPECT_EQ(holder, std::nullopt) << other;
  }

  // Released: nobody holds it (PostgreSQL unlocks in the lease's
  // destructor; polled all the same, as another process would).
  lease.reset();
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        absl::StatusOr<std::optional<LeaseHolder>> holder =
            inspector.FindLeaseHolder(name);
        EXPECT_OK(holder);
        return holder.ok() && !holder->has_value();
      },
      absl::Seconds(10)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> again,
                       store_->TryAcquireLease(name));
  EXPECT_NE(again, nullptr);
  EXPECT_THAT(inspector.FindLeaseHolder(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(StoreInspectorConformanceTest, RecordedTypesHoldDescriptorSets) {
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedType> none,
                       store_->inspector().RecordedTypes());
  EXPECT_THAT(none, IsEmpty());

  const absl::Time before = absl::Now();
  std::vector<EventData> events = {Shipped("1"), Placed("1"), Undescribed(),
                                   Placed("2")};
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::Any(), events));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedType> types,
                       store_->inspector().RecordedTypes());
  std::vector<std::string> names;
  for (const RecordedType& t : types) names.push_back(t.type);
  // Sorted by name; a type without a descriptor is not recorded.
  EXPECT_THAT(names, ElementsAre("eventstore.test.v1.OrderPlaced",
                                 "eventstore.test.v1.OrderShipped"));
  for (const RecordedType& t : types) {
    EXPECT_GE(t.recorded_at, before - kClockSlack) << t.type;
    google::protobuf::FileDescriptorSet set;
    ASSERT_TRUE(set.ParseFromString(t.descriptor_set)) << t.type;
    // The set is self-contained: a fresh pool builds every file in it and
    // then knows the type.
    google::protobuf::DescriptorPool pool;
    for (const google::protobuf::FileDescriptorProto& file : set.file()) {
      ASSERT_NE(pool.BuildFile(file), nullptr) << file.name();
    }
    EXPECT_NE(pool.FindMessageTypeByName(t.type), nullptr) << t.type;
  }
}

TEST_P(StoreInspectorConformanceTest, LocationShowsNoPassword) {
  ASSERT_OK_AND_ASSIGN(StoreInfo info, store_->inspector().Info());
  EXPECT_THAT(info.location, Not(HasSubstr("password=")));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, StoreInspectorConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

// A lease held through another store on the same database (as another
// process's runner would hold it) is found too.
class LeaseHolderOfAnotherStoreTest : public test::StoreTest {};

TEST_P(LeaseHolderOfAnotherStoreTest, FindsALeaseAnotherStoreHolds) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> other,
                       test::OpenWithoutChecksumVerification(*store_));
  const std::string name = "projection:search-index";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       other->TryAcquireLease(name));
  ASSERT_NE(lease, nullptr);
  ASSERT_OK_AND_ASSIGN(std::optional<LeaseHolder> holder,
                       store_->inspector().FindLeaseHolder(name));
  ASSERT_TRUE(holder.has_value());
  if (GetParam().name.rfind("postgres", 0) == 0) {
    EXPECT_GT(holder->pid, 0);
    EXPECT_FALSE(holder->detail.empty());
  } else {
    EXPECT_EQ(holder->pid, static_cast<int64_t>(getpid()));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> mine,
                       store_->TryAcquireLease(name));
  EXPECT_EQ(mine, nullptr);
  lease.reset();
  EXPECT_TRUE(test::WaitUntil(
      [&] {
        absl::StatusOr<std::optional<LeaseHolder>> now =
            store_->inspector().FindLeaseHolder(name);
        EXPECT_OK(now);
        return now.ok() && !now->has_value();
      },
      absl::Seconds(10)));
}

INSTANTIATE_TEST_SUITE_P(RawAccessBackends, LeaseHolderOfAnotherStoreTest,
                         ::testing::ValuesIn(test::RawAccessTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
