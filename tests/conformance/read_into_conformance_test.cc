// EventStore::ReadStreamInto and ReadAllInto, run on every backend of
// AllTestBackendsAndFailover(): into a buffer the caller keeps, the events
// ReadStream and ReadAll return, field for field, whatever the buffer held
// before (larger payloads, richer metadata, a damaged or decrypted event,
// more events); the same filters, paging and errors. The instrumented
// store forwards them and still counts the reads.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/instrumented_event_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/conformance_events.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackendsAndFailover;
using ::eventstore::test::Placed;
using ::eventstore::test::RawAccessTestBackends;
using ::eventstore::test::Shipped;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackendName;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Everything a read returns of an event, as one comparable string.
std::string Describe(const RecordedEvent& e) {
  return absl::StrCat(
      e.stream, "#", e.version, " @", e.position.ToString(), " ",
      e.id.ToString(), " ", e.type, " ", absl::CHexEscape(e.payload), " ",
      absl::ToUnixMicros(e.recorded_at), " ",
      e.checksum.has_value() ? absl::StrCat(*e.checksum) : "-", " [",
      e.metadata.ShortDebugString(), "] ", e.damage.ToString(), " ",
      static_cast<int>(e.payload_state));
}

std::vector<std::string> Describe(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> out;
  for (const RecordedEvent& e : events) out.push_back(Describe(e));
  return out;
}

// Metadata with every field an append keeps.
v1::EventMetadata RichMetadata(int i) {
  v1::EventMetadata m;
  m.set_correlation_id(absl::StrCat("correlation-", i, std::string(40, 'c')));
  m.set_causation_id(absl::StrCat("causation-", i, std::string(40, 'k')));
  m.set_tenant_id(i % 2 == 0 ? "acme" : "globex");
  m.set_actor(absl::StrCat("actor-", i));
  (*m.mutable_properties())["origin"] = std::string(30, 'o');
  (*m.mutable_properties())[absl::StrCat("key-", i)] = "v";
  return m;
}

// A placed order with a payload of about `bytes` bytes.
EventData BigPlaced(int i, int bytes) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(absl::StrCat("big-", i));
  placed.add_items(std::string(static_cast<size_t>(bytes), 'x'));
  return EventData::From(placed, RichMetadata(i));
}

// An event whose every field is set, as a buffer reused from elsewhere
// may hold: what a read into it must overwrite.
RecordedEvent Junk(int i) {
  RecordedEvent e;
  e.id = Uuid::Generate();
  e.type = std::string(100, 't');
  e.payload = std::string(5000, 'p');
  e.metadata = RichMetadata(i);
  e.metadata.set_traceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  e.metadata.set_tracestate("k=v");
  e.metadata.set_subject_id("subject-1");
  e.metadata.set_payload_encryption("xchacha20poly1305-subject-v1");
  e.stream = std::string(200, 's');
  e.version = 999;
  e.position = Position::FromParts(123456, 654321);
  e.recorded_at = absl::FromUnixSeconds(1);
  e.checksum = 42;
  e.damage = absl::DataLossError("stale damage");
  e.payload_state = PayloadState::kForgotten;
  return e;
}

std::vector<RecordedEvent> JunkBuffer(int n) {
  std::vector<RecordedEvent> events;
  for (int i = 0; i < n; ++i) events.push_back(Junk(i));
  return events;
}

ReadStreamOptions Options(std::optional<int64_t> from, int64_t max_count,
                          Direction direction) {
  ReadStreamOptions o;
  o.from_version = from;
  o.max_count = max_count;
  o.direction = direction;
  return o;
}

std::vector<ReadStreamOptions> AllStreamOptions() {
  return {Options(std::nullopt, kUnlimited, Direction::kForward),
          Options(std::nullopt, kUnlimited, Direction::kBackward),
          Options(4, kUnlimited, Direction::kForward),
          Options(7, kUnlimited, Direction::kBackward),
          Options(std::nullopt, 5, Direction::kForward),
          Options(3, 4, Direction::kForward),
          Options(8, 4, Direction::kBackward),
          Options(20, kUnlimited, Direction::kForward),
          Options(std::nullopt, 0, Direction::kForward)};
}

std::string Name(const ReadStreamOptions& o) {
  return absl::StrCat(
      o.direction == Direction::kForward ? "forward" : "backward", " from ",
      o.from_version.has_value() ? absl::StrCat(*o.from_version) : "default",
      " max ", o.max_count);
}

class ReadIntoConformanceTest : public test::StoreTest {
 protected:
  void SetUp() override {
    test::StoreTest::SetUp();
    if (HasFatalFailure()) return;
    // "big-1": 10 events with large payloads and rich metadata; "small-1":
    // 10 small events, without metadata, every other one shipped;
    // "order-<i>": tenants alternating, for the filters.
    std::vector<EventData> big;
    for (int i = 0; i < 10; ++i) big.push_back(BigPlaced(i, 2000 + 100 * i));
    ASSERT_OK(store_->Append("big-1", ExpectedVersion::NoStream(), big));
    std::vector<EventData> small;
    for (int i = 0; i < 10; ++i) {
      small.push_back(i % 2 == 0 ? Placed(absl::StrCat("s", i))
                                 : Shipped(absl::StrCat("s", i)));
    }
    ASSERT_OK(store_->Append("small-1", ExpectedVersion::NoStream(), small));
    for (int i = 0; i < 6; ++i) {
      ASSERT_OK(store_->Append(
          absl::StrCat("order-", i), ExpectedVersion::NoStream(),
          {Placed(absl::StrCat("o", i), test::Tenant(i % 2 ? "t1" : "t2")),
           Shipped(absl::StrCat("o", i))}));
    }
  }

  // The events of ReadStream(stream, options), described.
  std::vector<std::string> Owned(const std::string& stream,
                                 const ReadStreamOptions& options) {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        store_->ReadStream(stream, options);
    EXPECT_OK(events);
    return events.ok() ? Describe(*events) : std::vector<std::string>();
  }

  // Every page of the log for `options` (from the start), described, read
  // with ReadAll, or with ReadAllInto into `page`.
  struct Pages {
    std::vector<std::vector<std::string>> events;
    std::vector<std::string> next_positions;
    std::vector<bool> ends;
  };
  Pages ReadAllPages(ReadAllOptions options, ReadAllPage* page) {
    Pages pages;
    for (int n = 0; n < 100; ++n) {
      ReadAllPage owned;
      if (page == nullptr) {
        absl::StatusOr<ReadAllPage> read = store_->ReadAll(options);
        EXPECT_OK(read);
        if (!read.ok()) break;
        owned = *std::move(read);
      } else {
        absl::Status read = store_->ReadAllInto(options, *page);
        EXPECT_OK(read);
        if (!read.ok()) break;
      }
      const ReadAllPage& p = page == nullptr ? owned : *page;
      pages.events.push_back(Describe(p.events));
      pages.next_positions.push_back(p.next_position.ToString());
      pages.ends.push_back(p.end_of_log);
      if (p.end_of_log) break;
      options.from_position = p.next_position;
    }
    return pages;
  }

  void ExpectSamePages(const ReadAllOptions& options, ReadAllPage& page) {
    const Pages owned = ReadAllPages(options, nullptr);
    const Pages into = ReadAllPages(options, &page);
    ASSERT_THAT(into.events, SizeIs(owned.events.size()));
    for (size_t i = 0; i < owned.events.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("page ", i));
      EXPECT_THAT(into.events[i], ElementsAreArray(owned.events[i]));
    }
    EXPECT_THAT(into.next_positions, ElementsAreArray(owned.next_positions));
    EXPECT_THAT(into.ends, ElementsAreArray(owned.ends));
  }
};

TEST_P(ReadIntoConformanceTest, ReadStreamIntoAnEmptyBufferEqualsReadStream) {
  for (const std::string stream : {"big-1", "small-1", "order-3", "absent"}) {
    for (const ReadStreamOptions& options : AllStreamOptions()) {
      SCOPED_TRACE(absl::StrCat(stream, ", ", Name(options)));
      std::vector<RecordedEvent> events;
      ASSERT_OK(store_->ReadStreamInto(stream, options, events));
      EXPECT_THAT(Describe(events), ElementsAreArray(Owned(stream, options)));
    }
  }
}

TEST_P(ReadIntoConformanceTest, AReusedBufferKeepsNothingOfItsOldEvents) {
  // One buffer through every read, in an order where each read follows
  // one of larger events with richer metadata, or of more events.
  std::vector<RecordedEvent> events = JunkBuffer(25);
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string stream :
         {"big-1", "small-1", "big-1", "order-3", "absent", "small-1"}) {
      for (const ReadStreamOptions& options : AllStreamOptions()) {
        SCOPED_TRACE(absl::StrCat(stream, ", ", Name(options)));
        ASSERT_OK(store_->ReadStreamInto(stream, options, events));
        EXPECT_THAT(Describe(events), ElementsAreArray(Owned(stream, options)));
      }
    }
    // Refilled with junk: more events than any stream here, every field
    // set (damage, checksum, payload_state, every metadata field).
    events = JunkBuffer(25);
  }
}

TEST_P(ReadIntoConformanceTest, SmallEventsIntoABufferOfBigOnes) {
  std::vector<RecordedEvent> events;
  ASSERT_OK(store_->ReadStreamInto("big-1", {}, events));
  ASSERT_THAT(events, SizeIs(10));
  ASSERT_GT(events[0].metadata.properties_size(), 0);
  ASSERT_OK(store_->ReadStreamInto("small-1", {}, events));
  ASSERT_THAT(events, SizeIs(10));
  for (const RecordedEvent& e : events) {
    EXPECT_EQ(e.stream, "small-1");
    EXPECT_EQ(e.metadata.ByteSizeLong(), 0u) << e.metadata.ShortDebugString();
    EXPECT_LT(e.payload.size(), 100u);
    EXPECT_FALSE(e.damaged());
  }
  ASSERT_OK_AND_ASSIGN(test::v1::OrderShipped shipped,
                       events[1].As<test::v1::OrderShipped>());
  EXPECT_EQ(shipped.order_id(), "s1");
  EXPECT_EQ(shipped.carrier(), "post");
}

TEST_P(ReadIntoConformanceTest, ReadAllIntoOnePageEqualsReadAll) {
  for (int64_t max_count : {1, 3, 7, 1000}) {
    SCOPED_TRACE(absl::StrCat("max_count ", max_count));
    ReadAllPage page;
    page.events = JunkBuffer(static_cast<int>(max_count % 10) + 12);
    page.next_position = Position::FromParts(99999, 99999);
    page.end_of_log = true;
    ReadAllOptions options;
    options.max_count = max_count;
    ExpectSamePages(options, page);
  }
}

TEST_P(ReadIntoConformanceTest, ReadAllIntoAppliesTheFilters) {
  ReadAllFilter by_prefix;
  by_prefix.stream_prefix = "order-";
  ReadAllFilter by_type;
  by_type.event_types = {test::v1::OrderShipped::descriptor()->full_name()};
  ReadAllFilter by_tenant;
  by_tenant.tenant_id = "t1";
  ReadAllFilter all_three = by_prefix;
  all_three.event_types = {test::v1::OrderPlaced::descriptor()->full_name()};
  all_three.tenant_id = "t2";
  int n = 0;
  for (const ReadAllFilter& filter :
       {by_prefix, by_type, by_tenant, all_three}) {
    SCOPED_TRACE(absl::StrCat("filter ", n++));
    for (int64_t max_count : {2, 1000}) {
      ReadAllPage page;
      page.events = JunkBuffer(30);
      ReadAllOptions options;
      options.max_count = max_count;
      options.filter = filter;
      ExpectSamePages(options, page);
      // The page of the last read holds only the filter's events.
      for (const RecordedEvent& e : page.events) {
        if (!filter.stream_prefix.empty()) {
          EXPECT_THAT(e.stream, ::testing::StartsWith(filter.stream_prefix));
        }
        if (!filter.tenant_id.empty()) {
          EXPECT_EQ(e.metadata.tenant_id(), filter.tenant_id);
        }
      }
    }
  }
}

TEST_P(ReadIntoConformanceTest, ReadAllIntoFromTheMiddleAndPastTheEnd) {
  ASSERT_OK_AND_ASSIGN(Position head, store_->HeadPosition());
  ReadAllOptions all;
  all.max_count = 1000;
  ASSERT_OK_AND_ASSIGN(ReadAllPage whole, store_->ReadAll(all));
  ASSERT_THAT(whole.events, SizeIs(32));
  ReadAllPage page;
  page.events = JunkBuffer(40);
  ReadAllOptions middle;
  middle.from_position = whole.events[13].position;
  middle.max_count = 5;
  ExpectSamePages(middle, page);

  // After the head: an empty page that says where it was asked from.
  ReadAllOptions past;
  past.from_position = head;
  ASSERT_OK(store_->ReadAllInto(past, page));
  EXPECT_THAT(page.events, IsEmpty());
  EXPECT_EQ(page.next_position, head);
  EXPECT_TRUE(page.end_of_log);

  // max_count 0: as ReadAll, an empty page, not the end of the log.
  page.events = JunkBuffer(3);
  ReadAllOptions none;
  none.from_position = whole.events[3].position;
  none.max_count = 0;
  ASSERT_OK_AND_ASSIGN(ReadAllPage owned, store_->ReadAll(none));
  ASSERT_OK(store_->ReadAllInto(none, page));
  EXPECT_THAT(page.events, IsEmpty());
  EXPECT_EQ(page.next_position, owned.next_position);
  EXPECT_EQ(page.end_of_log, owned.end_of_log);
}

TEST_P(ReadIntoConformanceTest, ErrorsAreTheOwnedCallsErrors) {
  std::vector<RecordedEvent> events = JunkBuffer(2);
  ReadStreamOptions negative;
  negative.max_count = -1;
  const absl::Status owned = store_->ReadStream("big-1", negative).status();
  EXPECT_THAT(owned, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->ReadStreamInto("big-1", negative, events),
              StatusIs(owned.code(), HasSubstr(std::string(owned.message()))));

  const absl::Status bad_name = store_->ReadStream("", {}).status();
  EXPECT_THAT(bad_name, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->ReadStreamInto("", {}, events),
              StatusIs(bad_name.code()));

  ReadAllPage page;
  ReadAllOptions bad_count;
  bad_count.max_count = -5;
  const absl::Status owned_all = store_->ReadAll(bad_count).status();
  EXPECT_THAT(owned_all, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->ReadAllInto(bad_count, page),
              StatusIs(owned_all.code(), HasSubstr("max_count")));

  // The buffer is still usable after an error.
  ASSERT_OK(store_->ReadStreamInto("small-1", {}, events));
  EXPECT_THAT(Describe(events), ElementsAreArray(Owned("small-1", {})));
}

TEST_P(ReadIntoConformanceTest, InstrumentedStoreForwardsAndCountsTheReads) {
  auto recorder = std::make_shared<test::RecordingInstrumentation>();
  // Not owned: the wrapper is over the fixture's store.
  class Borrowed final : public ForwardingEventStore {
   public:
    explicit Borrowed(EventStore* target) : ForwardingEventStore(target) {}
    absl::Status ReadStreamInto(std::string_view stream,
                                const ReadStreamOptions& options,
                                std::vector<RecordedEvent>& events) override {
      ++stream_into;
      return target()->ReadStreamInto(stream, options, events);
    }
    absl::Status ReadAllInto(const ReadAllOptions& options,
                             ReadAllPage& page) override {
      ++all_into;
      return target()->ReadAllInto(options, page);
    }
    int stream_into = 0;
    int all_into = 0;
  };
  auto borrowed = std::make_unique<Borrowed>(store_.get());
  Borrowed* inner = borrowed.get();
  std::unique_ptr<EventStore> instrumented =
      Instrument(std::move(borrowed), recorder, "test");

  std::vector<RecordedEvent> events;
  ASSERT_OK(instrumented->ReadStreamInto("big-1", {}, events));
  EXPECT_THAT(events, SizeIs(10));
  ReadAllPage page;
  ReadAllOptions options;
  options.max_count = 4;
  ASSERT_OK(instrumented->ReadAllInto(options, page));
  EXPECT_THAT(page.events, SizeIs(4));
  ReadAllOptions bad;
  bad.max_count = -1;
  EXPECT_FALSE(instrumented->ReadAllInto(bad, page).ok());

  // Forwarded to the wrapped store's own calls (its reuse kept) ...
  EXPECT_EQ(inner->stream_into, 1);
  EXPECT_EQ(inner->all_into, 2);
  // ... and counted as ReadStream and ReadAll are.
  const std::vector<test::RecordedRead> reads = recorder->reads();
  ASSERT_THAT(reads, SizeIs(3));
  EXPECT_EQ(reads[0].kind, ReadKind::kReadStream);
  EXPECT_TRUE(reads[0].ok);
  EXPECT_EQ(reads[0].events, 10);
  EXPECT_EQ(reads[0].backend, "test");
  EXPECT_EQ(reads[1].kind, ReadKind::kReadAll);
  EXPECT_EQ(reads[1].events, 4);
  EXPECT_EQ(reads[2].kind, ReadKind::kReadAll);
  EXPECT_FALSE(reads[2].ok);
  EXPECT_EQ(reads[2].events, 0);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ReadIntoConformanceTest,
                         ::testing::ValuesIn(AllTestBackendsAndFailover()),
                         TestBackendName);

// --- rows damaged by hand ----------------------------------------------------

class ReadIntoDamageConformanceTest : public test::StoreTest {
 protected:
  void SetUp() override {
    test::StoreTest::SetUp();
    if (HasFatalFailure()) return;
    std::vector<EventData> events;
    for (int i = 0; i < 3; ++i) events.push_back(BigPlaced(i, 300));
    ASSERT_OK(store_->Append("order-1", ExpectedVersion::NoStream(), events));
    ASSERT_OK(store_->Append("order-2", ExpectedVersion::NoStream(),
                             {BigPlaced(7, 300), BigPlaced(8, 300)}));
  }

  absl::Status Overwrite(const std::string& stream, int64_t version,
                         const std::string& column,
                         std::optional<std::string> bytes) {
    return GetParam().overwrite_column(*store_, stream, version, column,
                                       std::move(bytes));
  }

  void ExpectSameAsOwned(const std::string& stream,
                         std::vector<RecordedEvent>& events) {
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> owned,
                         store_->ReadStream(stream));
    ASSERT_OK(store_->ReadStreamInto(stream, {}, events));
    EXPECT_THAT(Describe(events), ElementsAreArray(Describe(owned)));
  }
};

TEST_P(ReadIntoDamageConformanceTest, DamageNeitherLeaksNorIsLost) {
  ASSERT_OK(
      Overwrite("order-1", 2, "metadata", std::string("\x0a\x05req-\xff")));
  std::vector<RecordedEvent> events;
  // Intact events into the buffer, then the damaged one over them ...
  ExpectSameAsOwned("order-2", events);
  ExpectSameAsOwned("order-1", events);
  ASSERT_THAT(events, SizeIs(3));
  EXPECT_THAT(events[1].damage, StatusIs(absl::StatusCode::kDataLoss,
                                         HasSubstr("metadata does not parse")));
  // Its metadata is left empty, not the previous event's.
  EXPECT_EQ(events[1].metadata.ByteSizeLong(), 0u);
  // ... then intact events over the damaged one.
  ExpectSameAsOwned("order-2", events);
  EXPECT_FALSE(events[1].damaged()) << events[1].damage;
  // And in the log, page by page.
  ReadAllPage page;
  ReadAllOptions options;
  options.max_count = 2;
  int damaged = 0;
  int read = 0;
  while (true) {
    ASSERT_OK(store_->ReadAllInto(options, page));
    for (const RecordedEvent& e : page.events) {
      ++read;
      damaged += e.damaged() ? 1 : 0;
    }
    if (page.end_of_log) break;
    options.from_position = page.next_position;
  }
  EXPECT_EQ(read, 5);
  EXPECT_EQ(damaged, 1);
}

TEST_P(ReadIntoDamageConformanceTest, AMissingChecksumIsNotTheLastOnes) {
  // A row from before schema version 4 has no checksum.
  ASSERT_OK(Overwrite("order-1", 2, "checksum", std::nullopt));
  std::vector<RecordedEvent> events = JunkBuffer(3);
  ExpectSameAsOwned("order-2", events);
  ExpectSameAsOwned("order-1", events);
  ASSERT_THAT(events, SizeIs(3));
  EXPECT_TRUE(events[0].checksum.has_value());
  EXPECT_FALSE(events[1].checksum.has_value());
  EXPECT_FALSE(events[1].damaged()) << events[1].damage;
}

TEST_P(ReadIntoDamageConformanceTest, AChangedPayloadFailsItsChecksum) {
  test::v1::OrderPlaced other;
  other.set_order_id("z");
  other.add_items("book");
  ASSERT_OK(Overwrite("order-1", 3, "payload", other.SerializeAsString()));
  std::vector<RecordedEvent> events = JunkBuffer(1);
  ExpectSameAsOwned("order-1", events);
  ASSERT_THAT(events, SizeIs(3));
  EXPECT_FALSE(events[1].damaged()) << events[1].damage;
  EXPECT_THAT(events[2].damage,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

INSTANTIATE_TEST_SUITE_P(RawAccessBackends, ReadIntoDamageConformanceTest,
                         ::testing::ValuesIn(RawAccessTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
