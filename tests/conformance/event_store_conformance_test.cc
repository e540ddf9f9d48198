// The EventStore contract (event_store.h, errors.h), run on every backend of
// AllTestBackends(). Each test gets a fresh empty store and uses only the
// EventStore interface, so a new backend is covered by adding it to
// tests/support/test_backends.cc.
//
// Tests whose names start with "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/limits.h"
#include "eventstore/status_macros.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/test/v1/legacy.pb.h"
#include "eventstore/type_registry.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/conformance_events.h"
#include "tests/support/split_moved_upcaster.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::Batch;
using ::eventstore::test::FailoverTestBackend;
using ::eventstore::test::Ids;
using ::eventstore::test::Placed;
using ::eventstore::test::Range;
using ::eventstore::test::Shipped;
using ::eventstore::test::StatusIs;
using ::eventstore::test::Tenant;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::Tick;
using ::eventstore::test::Types;
using ::eventstore::test::Versions;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kPlacedType[] = "eventstore.test.v1.OrderPlaced";
constexpr char kShippedType[] = "eventstore.test.v1.OrderShipped";

// --- reading -----------------------------------------------------------------

// Reads the whole log after `from` in pages of `page_size`, checking each
// page against the ReadAll contract (an Internal error says which rule
// broke).
absl::StatusOr<std::vector<RecordedEvent>> ReadAllEvents(
    EventStore& store, const ReadAllFilter& filter = {},
    int64_t page_size = 1000, Position from = Position::Start()) {
  std::vector<RecordedEvent> out;
  for (int pages = 0; pages < 1000000; ++pages) {
    ReadAllOptions options;
    options.from_position = from;
    options.max_count = page_size;
    options.filter = filter;
    ES_ASSIGN_OR_RETURN(ReadAllPage page, store.ReadAll(options));
    const int64_t size = static_cast<int64_t>(page.events.size());
    if (size > page_size) {
      return absl::InternalError(absl::StrCat(
          "a page of ", size, " events for max_count ", page_size));
    }
    Position previous = from;
    for (const RecordedEvent& e : page.events) {
      if (!(e.position > previous)) {
        return absl::InternalError(absl::StrCat(
            "position ", e.position.ToString(), " of event ", e.id.ToString(),
            " does not follow ", previous.ToString(), " (page from ",
            from.ToString(), ")"));
      }
      previous = e.position;
    }
    const Position expected_next =
        page.events.empty() ? from : page.events.back().position;
    if (page.next_position != expected_next) {
      return absl::InternalError(
          absl::StrCat("next_position ", page.next_position.ToString(),
                       ", expected ", expected_next.ToString()));
    }
    if (page.end_of_log != (size < page_size)) {
      return absl::InternalError(
          absl::StrCat("end_of_log ", page.end_of_log, " on a page of ", size,
                       " events for max_count ", page_size));
    }
    for (RecordedEvent& e : page.events) out.push_back(std::move(e));
    if (page.end_of_log) return out;
    from = page.next_position;
  }
  return absl::InternalError("ReadAll never reached the end of the log");
}

absl::StatusOr<std::vector<RecordedEvent>> ReadStreamWith(
    EventStore& store, const std::string& stream,
    std::optional<int64_t> from_version, int64_t max_count,
    Direction direction) {
  ReadStreamOptions options;
  options.from_version = from_version;
  options.max_count = max_count;
  options.direction = direction;
  return store.ReadStream(stream, options);
}

// --- the fixture -------------------------------------------------------------

class EventStoreConformanceTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        GetParam().open(nullptr);
    ASSERT_OK(store);
    store_ = *std::move(store);
  }

  EventStore& store() { return *store_; }

  // Appends and requires success.
  AppendResult MustAppend(const std::string& stream, ExpectedVersion expected,
                          const std::vector<EventData>& events) {
    absl::StatusOr<AppendResult> result =
        store().Append(stream, expected, events);
    EXPECT_OK(result) << "appending " << events.size() << " events to "
                      << stream << " expecting " << expected;
    return result.ok() ? *result : AppendResult();
  }

  int64_t Version(const std::string& stream) {
    absl::StatusOr<int64_t> version = store().StreamVersion(stream);
    EXPECT_OK(version);
    return version.ok() ? *version : -1;
  }

  Position Head() {
    absl::StatusOr<Position> head = store().HeadPosition();
    EXPECT_OK(head);
    return head.ok() ? *head : Position::Start();
  }

  bool Exists(const Uuid& id) {
    absl::StatusOr<bool> exists = store().EventExists(id);
    EXPECT_OK(exists);
    return exists.ok() && *exists;
  }

  std::vector<RecordedEvent> Stream(const std::string& stream) {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        store().ReadStream(stream);
    EXPECT_OK(events);
    return events.ok() ? *std::move(events) : std::vector<RecordedEvent>();
  }

  std::vector<RecordedEvent> All(const ReadAllFilter& filter = {},
                                 int64_t page_size = 1000) {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        ReadAllEvents(store(), filter, page_size);
    EXPECT_OK(events);
    return events.ok() ? *std::move(events) : std::vector<RecordedEvent>();
  }

  // Checks an append's failure as a wrong expected version with these
  // details, and that the stream and the log are as they were.
  void ExpectWrongExpectedVersion(const std::string& stream,
                                  ExpectedVersion expected,
                                  int64_t actual_version) {
    const Position head = Head();
    const std::vector<EventData> events = Batch(2, "rejected");
    absl::StatusOr<AppendResult> result =
        store().Append(stream, expected, events);
    EXPECT_THAT(result,
                StatusIs(absl::StatusCode::kAborted, HasSubstr(stream)));
    EXPECT_TRUE(IsWrongExpectedVersion(result.status())) << result.status();
    std::optional<WrongExpectedVersionInfo> info =
        GetWrongExpectedVersion(result.status());
    ASSERT_TRUE(info.has_value()) << result.status();
    EXPECT_EQ(info->stream, stream);
    EXPECT_EQ(info->expected, expected);
    EXPECT_EQ(info->actual, actual_version);
    EXPECT_EQ(Version(stream), actual_version);
    EXPECT_EQ(Head(), head);
    EXPECT_FALSE(Exists(events[0].id));
    EXPECT_FALSE(Exists(events[1].id));
  }

  std::unique_ptr<EventStore> store_;
};

// --- expected versions -------------------------------------------------------

TEST_P(EventStoreConformanceTest, AnyOnAbsentAndExistingStream) {
  AppendResult first = MustAppend("s", ExpectedVersion::Any(), Batch(2));
  EXPECT_EQ(first.next_expected_version, 2);
  AppendResult second = MustAppend("s", ExpectedVersion::Any(), Batch(3));
  EXPECT_EQ(second.next_expected_version, 5);
  EXPECT_EQ(Version("s"), 5);
  EXPECT_THAT(Versions(Stream("s")), ElementsAreArray(Range(1, 5)));
}

TEST_P(EventStoreConformanceTest, NoStreamOnAbsentStreamSucceeds) {
  AppendResult r = MustAppend("s", ExpectedVersion::NoStream(), Batch(2));
  EXPECT_EQ(r.next_expected_version, 2);
  EXPECT_EQ(Version("s"), 2);
}

TEST_P(EventStoreConformanceTest, NoStreamOnExistingStreamIsWrongVersion) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(3));
  ExpectWrongExpectedVersion("s", ExpectedVersion::NoStream(), 3);
  ExpectWrongExpectedVersion("s", ExpectedVersion::Exactly(0), 3);
}

TEST_P(EventStoreConformanceTest, StreamExistsOnAbsentStreamIsWrongVersion) {
  ExpectWrongExpectedVersion("s", ExpectedVersion::StreamExists(), 0);
  EXPECT_THAT(Stream("s"), IsEmpty());
  // Another stream existing does not count.
  MustAppend("other", ExpectedVersion::NoStream(), Batch(1));
  ExpectWrongExpectedVersion("s", ExpectedVersion::StreamExists(), 0);
}

TEST_P(EventStoreConformanceTest, StreamExistsOnExistingStreamSucceeds) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(1));
  AppendResult r = MustAppend("s", ExpectedVersion::StreamExists(), Batch(2));
  EXPECT_EQ(r.next_expected_version, 3);
  r = MustAppend("s", ExpectedVersion::StreamExists(), Batch(1));
  EXPECT_EQ(r.next_expected_version, 4);
}

TEST_P(EventStoreConformanceTest, ExactlyZeroOnAbsentStreamSucceeds) {
  AppendResult r = MustAppend("s", ExpectedVersion::Exactly(0), Batch(1));
  EXPECT_EQ(r.next_expected_version, 1);
  EXPECT_EQ(Version("s"), 1);
}

TEST_P(EventStoreConformanceTest, ExactlyOnAbsentStreamIsWrongVersion) {
  ExpectWrongExpectedVersion("s", ExpectedVersion::Exactly(1), 0);
  ExpectWrongExpectedVersion("s", ExpectedVersion::Exactly(5), 0);
}

TEST_P(EventStoreConformanceTest, ExactlyMatchingVersionSucceeds) {
  AppendResult r = MustAppend("s", ExpectedVersion::Exactly(0), Batch(2));
  ASSERT_EQ(r.next_expected_version, 2);
  r = MustAppend("s", ExpectedVersion::Exactly(r.next_expected_version),
                 Batch(1));
  ASSERT_EQ(r.next_expected_version, 3);
  r = MustAppend("s", ExpectedVersion::Exactly(r.next_expected_version),
                 Batch(3));
  EXPECT_EQ(r.next_expected_version, 6);
  EXPECT_EQ(Version("s"), 6);
  EXPECT_THAT(Versions(Stream("s")), ElementsAreArray(Range(1, 6)));
}

TEST_P(EventStoreConformanceTest, ExactlyMismatchIsAbortedWithDetails) {
  MustAppend("order-7", ExpectedVersion::NoStream(), Batch(4));
  ExpectWrongExpectedVersion("order-7", ExpectedVersion::Exactly(3), 4);
  ExpectWrongExpectedVersion("order-7", ExpectedVersion::Exactly(5), 4);
  ExpectWrongExpectedVersion("order-7", ExpectedVersion::Exactly(1), 4);
  // The stream still takes the right version.
  AppendResult r = MustAppend("order-7", ExpectedVersion::Exactly(4), Batch(1));
  EXPECT_EQ(r.next_expected_version, 5);
}

// --- idempotent retries ------------------------------------------------------

TEST_P(EventStoreConformanceTest, RetryOfCommittedBatchReturnsOriginalResult) {
  const std::vector<EventData> batch = Batch(3);
  const AppendResult original =
      MustAppend("s", ExpectedVersion::NoStream(), batch);
  const Position head = Head();
  const std::vector<RecordedEvent> before = All();

  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSERT_OK_AND_ASSIGN(
        AppendResult retried,
        store().Append("s", ExpectedVersion::NoStream(), batch));
    EXPECT_EQ(retried, original);
  }
  EXPECT_EQ(Version("s"), 3);
  EXPECT_EQ(Head(), head);
  const std::vector<RecordedEvent> after = All();
  EXPECT_EQ(Ids(after), Ids(before));
  EXPECT_EQ(Ids(after), Ids(batch));
}

TEST_P(EventStoreConformanceTest, RetryWithExactlyAfterStreamMovedOn) {
  const std::vector<EventData> a = Batch(2, "a");
  const std::vector<EventData> b = Batch(1, "b");
  const std::vector<EventData> c = Batch(3, "c");
  const AppendResult ra = MustAppend("s", ExpectedVersion::Exactly(0), a);
  const AppendResult rb = MustAppend("s", ExpectedVersion::Exactly(2), b);
  MustAppend("other", ExpectedVersion::Any(), Batch(2));
  const AppendResult rc = MustAppend("s", ExpectedVersion::Exactly(3), c);
  const Position head = Head();
  ASSERT_EQ(Version("s"), 6);

  ASSERT_OK_AND_ASSIGN(AppendResult retry_a,
                       store().Append("s", ExpectedVersion::Exactly(0), a));
  EXPECT_EQ(retry_a, ra);
  ASSERT_OK_AND_ASSIGN(AppendResult retry_b,
                       store().Append("s", ExpectedVersion::Exactly(2), b));
  EXPECT_EQ(retry_b, rb);
  ASSERT_OK_AND_ASSIGN(AppendResult retry_c,
                       store().Append("s", ExpectedVersion::Exactly(3), c));
  EXPECT_EQ(retry_c, rc);

  EXPECT_EQ(Version("s"), 6);
  EXPECT_EQ(Head(), head);
  EXPECT_THAT(All(), SizeIs(8));
}

TEST_P(EventStoreConformanceTest, RetryWithAnyAndStreamExists) {
  const std::vector<EventData> a = Batch(2, "a");
  const std::vector<EventData> b = Batch(2, "b");
  const AppendResult ra = MustAppend("s", ExpectedVersion::Any(), a);
  const AppendResult rb = MustAppend("s", ExpectedVersion::StreamExists(), b);
  MustAppend("s", ExpectedVersion::Any(), Batch(1, "c"));
  const Position head = Head();

  ASSERT_OK_AND_ASSIGN(AppendResult retry_a,
                       store().Append("s", ExpectedVersion::Any(), a));
  EXPECT_EQ(retry_a, ra);
  ASSERT_OK_AND_ASSIGN(AppendResult retry_b,
                       store().Append("s", ExpectedVersion::StreamExists(), b));
  EXPECT_EQ(retry_b, rb);
  EXPECT_EQ(Version("s"), 5);
  EXPECT_EQ(Head(), head);
}

TEST_P(EventStoreConformanceTest, RetryOfSingleEventWithNoStream) {
  const std::vector<EventData> batch = {Placed("only")};
  const AppendResult original =
      MustAppend("s", ExpectedVersion::NoStream(), batch);
  EXPECT_EQ(original.first_position, original.last_position);
  MustAppend("s", ExpectedVersion::Exactly(1), Batch(2));
  ASSERT_OK_AND_ASSIGN(AppendResult retried,
                       store().Append("s", ExpectedVersion::NoStream(), batch));
  EXPECT_EQ(retried, original);
  EXPECT_EQ(Version("s"), 3);
}

// --- duplicate ids -----------------------------------------------------------

TEST_P(EventStoreConformanceTest, DuplicateIdInAnotherStreamIsAlreadyExists) {
  const std::vector<EventData> stored = {Placed("first")};
  MustAppend("a", ExpectedVersion::NoStream(), stored);
  const Position head = Head();

  std::vector<EventData> batch = Batch(3, "b");
  batch[1].id = stored[0].id;
  EXPECT_THAT(store().Append("b", ExpectedVersion::Any(), batch),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr(stored[0].id.ToString())));
  // The whole batch was rolled back.
  EXPECT_EQ(Version("b"), 0);
  EXPECT_THAT(Stream("b"), IsEmpty());
  EXPECT_FALSE(Exists(batch[0].id));
  EXPECT_FALSE(Exists(batch[2].id));
  EXPECT_EQ(Head(), head);
  EXPECT_EQ(Version("a"), 1);
  // The ids that were not duplicates remain free to use.
  MustAppend("b", ExpectedVersion::NoStream(), {batch[0], batch[2]});
  EXPECT_EQ(Version("b"), 2);
}

TEST_P(EventStoreConformanceTest, DuplicateIdInSameStreamLaterIsAlreadyExists) {
  const std::vector<EventData> stored = Batch(2, "a");
  MustAppend("s", ExpectedVersion::NoStream(), stored);
  const Position head = Head();
  // The first event again, as if it were new, at the stream's end.
  EXPECT_THAT(store().Append("s", ExpectedVersion::Exactly(2), {stored[0]}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(
      store().Append("s", ExpectedVersion::Any(), {Placed("new"), stored[1]}),
      StatusIs(absl::StatusCode::kAlreadyExists));
  // The batch in another order is not a retry either.
  EXPECT_THAT(
      store().Append("s", ExpectedVersion::Any(), {stored[1], stored[0]}),
      StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(Version("s"), 2);
  EXPECT_EQ(Head(), head);
}

TEST_P(EventStoreConformanceTest, PartialOverlapIsAlreadyExists) {
  const std::vector<EventData> stored = Batch(3, "a");
  MustAppend("s", ExpectedVersion::NoStream(), stored);
  const Position head = Head();

  const EventData fresh = Placed("fresh");
  EXPECT_THAT(store().Append("s", ExpectedVersion::Any(),
                             {stored[1], stored[2], fresh}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store().Append("s", ExpectedVersion::NoStream(),
                             {stored[0], stored[1], fresh}),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(
      store().Append("s", ExpectedVersion::Exactly(3), {fresh, stored[2]}),
      StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_FALSE(Exists(fresh.id));
  EXPECT_EQ(Version("s"), 3);
  EXPECT_EQ(Head(), head);
  EXPECT_EQ(Ids(Stream("s")), Ids(stored));
}

// --- invalid appends ---------------------------------------------------------

TEST_P(EventStoreConformanceTest, SameIdTwiceInOneBatchIsInvalidArgument) {
  std::vector<EventData> batch = Batch(3);
  batch[2].id = batch[0].id;
  EXPECT_THAT(store().Append("s", ExpectedVersion::Any(), batch),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Version("s"), 0);
  EXPECT_FALSE(Exists(batch[0].id));
  EXPECT_FALSE(Exists(batch[1].id));
  EXPECT_TRUE(Head().IsStart());
}

TEST_P(EventStoreConformanceTest, EmptyBatchIsInvalidArgument) {
  EXPECT_THAT(
      store().Append("s", ExpectedVersion::Any(), {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("events")));
  EXPECT_THAT(store().Append("s", ExpectedVersion::NoStream(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Version("s"), 0);
  EXPECT_TRUE(Head().IsStart());
}

TEST_P(EventStoreConformanceTest, BadStreamNamesAreInvalidArgument) {
  const std::vector<std::string> bad = {
      "",
      std::string(256, 's'),
      "a\x01z",
      "line\nbreak",
      "with space",
      "tab\there",
      std::string("nul\0byte", 8),
      "bad\xffutf8",
      "truncated\xc3",
  };
  for (const std::string& stream : bad) {
    SCOPED_TRACE(::testing::PrintToString(stream));
    const std::vector<EventData> events = Batch(1);
    EXPECT_THAT(
        store().Append(stream, ExpectedVersion::Any(), events),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream")));
    EXPECT_FALSE(Exists(events[0].id));
  }
  EXPECT_TRUE(Head().IsStart());
  EXPECT_THAT(All(), IsEmpty());
}

TEST_P(EventStoreConformanceTest, UnusualValidStreamNamesRoundTrip) {
  const std::vector<std::string> names = {
      std::string(255, 'n'), "caf\xc3\xa9-1", "\xe6\xb3\xa8\xe6\x96\x87-7",
      "\xf0\x9f\x93\xa6",    "100%_done",     "it's\"quoted\"",
      "back\\slash",         "semi;colon--",  "[glob]*?",
  };
  for (const std::string& name : names) {
    SCOPED_TRACE(::testing::PrintToString(name));
    const std::vector<EventData> events = Batch(2);
    MustAppend(name, ExpectedVersion::NoStream(), events);
    EXPECT_EQ(Version(name), 2);
    const std::vector<RecordedEvent> read = Stream(name);
    ASSERT_THAT(read, SizeIs(2));
    EXPECT_EQ(read[0].stream, name);
    EXPECT_EQ(Ids(read), Ids(events));
  }
  EXPECT_THAT(All(), SizeIs(2 * names.size()));
}

TEST_P(EventStoreConformanceTest, OversizePayloadIsInvalidArgument) {
  std::vector<EventData> batch = Batch(2);
  batch[1].payload = std::string(StoreLimits().max_payload_bytes + 1, 'x');
  EXPECT_THAT(
      store().Append("s", ExpectedVersion::Any(), batch),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("payload")));
  EXPECT_FALSE(Exists(batch[0].id));
  EXPECT_EQ(Version("s"), 0);
  EXPECT_TRUE(Head().IsStart());
}

TEST_P(EventStoreConformanceTest, PayloadAtTheLimitRoundTrips) {
  std::vector<EventData> batch = {Placed("big")};
  batch[0].payload = std::string(StoreLimits().max_payload_bytes, '\0');
  for (size_t i = 0; i < batch[0].payload.size(); i += 4093) {
    batch[0].payload[i] = static_cast<char>(i % 251);
  }
  MustAppend("s", ExpectedVersion::NoStream(), batch);
  const std::vector<RecordedEvent> read = Stream("s");
  ASSERT_THAT(read, SizeIs(1));
  EXPECT_TRUE(read[0].payload == batch[0].payload);
}

TEST_P(EventStoreConformanceTest, BinaryPayloadRoundTripsExactly) {
  std::string binary;
  for (int i = 0; i < 512; ++i) binary.push_back(static_cast<char>(i % 256));
  std::vector<EventData> batch = {Placed("a"), Placed("b")};
  batch[0].payload = binary;
  batch[1].payload = "";
  MustAppend("s", ExpectedVersion::NoStream(), batch);
  const std::vector<RecordedEvent> read = Stream("s");
  ASSERT_THAT(read, SizeIs(2));
  EXPECT_EQ(read[0].payload, binary);
  EXPECT_EQ(read[1].payload, "");
  const std::vector<RecordedEvent> all = All();
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[0].payload, binary);
}

TEST_P(EventStoreConformanceTest, LargeBatchIsOneOrderedAppend) {
  const std::vector<EventData> batch = Batch(1000);
  const AppendResult r = MustAppend("s", ExpectedVersion::NoStream(), batch);
  EXPECT_EQ(r.next_expected_version, 1000);
  const std::vector<RecordedEvent> read = Stream("s");
  EXPECT_EQ(Ids(read), Ids(batch));
  EXPECT_THAT(Versions(read), ElementsAreArray(Range(1, 1000)));
  ASSERT_THAT(read, SizeIs(1000));
  EXPECT_EQ(read.front().position, r.first_position);
  EXPECT_EQ(read.back().position, r.last_position);
}

// --- positions ---------------------------------------------------------------

TEST_P(EventStoreConformanceTest, PositionsStrictlyIncreaseAcrossStreams) {
  Position last = Position::Start();
  std::vector<Uuid> appended;
  for (int round = 0; round < 5; ++round) {
    for (const char* stream : {"x-1", "y-1", "x-2"}) {
      const std::vector<EventData> batch = Batch(1 + round % 3);
      const AppendResult r = MustAppend(stream, ExpectedVersion::Any(), batch);
      EXPECT_GT(r.first_position, last);
      EXPECT_LE(r.first_position, r.last_position);
      last = r.last_position;
      for (const Uuid& id : Ids(batch)) appended.push_back(id);
    }
  }
  const std::vector<RecordedEvent> all = All();
  EXPECT_EQ(Ids(all), appended);
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].position, all[i].position) << i;
  }
  EXPECT_EQ(all.back().position, last);
}

TEST_P(EventStoreConformanceTest, AppendResultPositionsMatchReadEvents) {
  MustAppend("other", ExpectedVersion::Any(), Batch(2));
  const std::vector<EventData> batch = Batch(3);
  const AppendResult r = MustAppend("s", ExpectedVersion::NoStream(), batch);
  EXPECT_EQ(r.next_expected_version, 3);
  const std::vector<RecordedEvent> read = Stream("s");
  ASSERT_THAT(read, SizeIs(3));
  EXPECT_EQ(read[0].position, r.first_position);
  EXPECT_EQ(read[2].position, r.last_position);
  EXPECT_LT(read[0].position, read[1].position);
  EXPECT_LT(read[1].position, read[2].position);
  // ReadAll reports the same positions as ReadStream.
  const std::vector<RecordedEvent> all = All();
  ASSERT_THAT(all, SizeIs(5));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(all[2 + i].id, read[i].id);
    EXPECT_EQ(all[2 + i].position, read[i].position);
  }
  const AppendResult single =
      MustAppend("s", ExpectedVersion::Exactly(3), {Placed("one")});
  EXPECT_EQ(single.first_position, single.last_position);
  EXPECT_GT(single.first_position, r.last_position);
}

TEST_P(EventStoreConformanceTest, HeadPosition) {
  ASSERT_OK_AND_ASSIGN(Position empty, store().HeadPosition());
  EXPECT_EQ(empty, Position::Start());
  AppendResult r = MustAppend("a", ExpectedVersion::Any(), Batch(2));
  EXPECT_EQ(Head(), r.last_position);
  r = MustAppend("b", ExpectedVersion::Any(), Batch(3));
  EXPECT_EQ(Head(), r.last_position);
  // A failed append leaves it.
  EXPECT_FALSE(store().Append("b", ExpectedVersion::NoStream(), Batch(1)).ok());
  EXPECT_EQ(Head(), r.last_position);
  const std::vector<RecordedEvent> all = All();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(Head(), all.back().position);
}

// --- ReadStream --------------------------------------------------------------

class ReadStreamConformanceTest : public EventStoreConformanceTest {
 protected:
  void SetUp() override {
    EventStoreConformanceTest::SetUp();
    if (HasFatalFailure()) return;
    // Ten events in three batches, interleaved with another stream.
    events_ = Batch(10, "s");
    MustAppend("s", ExpectedVersion::NoStream(),
               {events_.begin(), events_.begin() + 4});
    MustAppend("t", ExpectedVersion::Any(), Batch(2, "t"));
    MustAppend("s", ExpectedVersion::Exactly(4),
               {events_.begin() + 4, events_.begin() + 5});
    MustAppend("t", ExpectedVersion::Any(), Batch(2, "t"));
    MustAppend("s", ExpectedVersion::Exactly(5),
               {events_.begin() + 5, events_.end()});
  }

  std::vector<int64_t> Read(std::optional<int64_t> from, int64_t max_count,
                            Direction direction) {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        ReadStreamWith(store(), "s", from, max_count, direction);
    EXPECT_OK(events);
    if (!events.ok()) return {};
    for (const RecordedEvent& e : *events) {
      EXPECT_EQ(e.stream, "s");
      EXPECT_EQ(e.id, events_[e.version - 1].id) << e.version;
    }
    return Versions(*events);
  }

  std::vector<EventData> events_;
};

TEST_P(ReadStreamConformanceTest, ForwardFromVersionAndMaxCount) {
  EXPECT_EQ(Ids(Stream("s")), Ids(events_));
  EXPECT_THAT(Read(std::nullopt, kUnlimited, Direction::kForward),
              ElementsAreArray(Range(1, 10)));
  EXPECT_THAT(Read(1, kUnlimited, Direction::kForward),
              ElementsAreArray(Range(1, 10)));
  EXPECT_THAT(Read(4, kUnlimited, Direction::kForward),
              ElementsAreArray(Range(4, 10)));
  EXPECT_THAT(Read(std::nullopt, 3, Direction::kForward), ElementsAre(1, 2, 3));
  EXPECT_THAT(Read(4, 3, Direction::kForward), ElementsAre(4, 5, 6));
  EXPECT_THAT(Read(9, 5, Direction::kForward), ElementsAre(9, 10));
  EXPECT_THAT(Read(10, kUnlimited, Direction::kForward), ElementsAre(10));
  EXPECT_THAT(Read(11, kUnlimited, Direction::kForward), IsEmpty());
}

TEST_P(ReadStreamConformanceTest, Backward) {
  EXPECT_THAT(Read(std::nullopt, kUnlimited, Direction::kBackward),
              ElementsAreArray(Range(10, 1)));
  EXPECT_THAT(Read(std::nullopt, 3, Direction::kBackward),
              ElementsAre(10, 9, 8));
  EXPECT_THAT(Read(5, kUnlimited, Direction::kBackward),
              ElementsAre(5, 4, 3, 2, 1));
  EXPECT_THAT(Read(5, 2, Direction::kBackward), ElementsAre(5, 4));
  EXPECT_THAT(Read(2, 5, Direction::kBackward), ElementsAre(2, 1));
  EXPECT_THAT(Read(1, kUnlimited, Direction::kBackward), ElementsAre(1));
  EXPECT_THAT(Read(10, 1, Direction::kBackward), ElementsAre(10));
}

TEST_P(EventStoreConformanceTest, AbsentStreamReadsEmptyWithVersionZero) {
  MustAppend("present", ExpectedVersion::Any(), Batch(2));
  for (const char* stream : {"absent", "presen", "present-2"}) {
    SCOPED_TRACE(stream);
    EXPECT_THAT(Stream(stream), IsEmpty());
    EXPECT_EQ(Version(stream), 0);
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> backward,
                         ReadStreamWith(store(), stream, std::nullopt,
                                        kUnlimited, Direction::kBackward));
    EXPECT_THAT(backward, IsEmpty());
  }
}

TEST_P(EventStoreConformanceTest, StreamsAreIsolated) {
  // Names that are prefixes of each other, or differ only in case.
  const std::vector<std::string> streams = {"a", "ab", "a-1", "A", "b"};
  absl::flat_hash_map<std::string, std::vector<Uuid>> appended;
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < streams.size(); ++i) {
      const std::vector<EventData> batch =
          Batch(1 + static_cast<int>((round + i) % 2), streams[i]);
      MustAppend(streams[i], ExpectedVersion::Any(), batch);
      for (const Uuid& id : Ids(batch)) appended[streams[i]].push_back(id);
    }
  }
  for (const std::string& stream : streams) {
    SCOPED_TRACE(stream);
    const std::vector<RecordedEvent> read = Stream(stream);
    EXPECT_EQ(Ids(read), appended[stream]);
    EXPECT_THAT(Versions(read),
                ElementsAreArray(Range(1, appended[stream].size())));
    EXPECT_EQ(Version(stream), static_cast<int64_t>(appended[stream].size()));
    for (const RecordedEvent& e : read) EXPECT_EQ(e.stream, stream);
  }
}

// --- metadata and timestamps -------------------------------------------------

TEST_P(EventStoreConformanceTest, MetadataAndRecordedAtRoundTrip) {
  v1::EventMetadata metadata;
  metadata.set_correlation_id("corr-1");
  metadata.set_causation_id("cause-2");
  metadata.set_tenant_id("tenant-a");
  metadata.set_actor("user:42");
  (*metadata.mutable_properties())["ip"] = "192.0.2.1";
  (*metadata.mutable_properties())["empty"] = "";
  (*metadata.mutable_properties())["unicode"] = "caf\xc3\xa9";
  const std::vector<EventData> batch = {Placed("with", metadata),
                                        Placed("without")};
  const absl::Time before = absl::Now();
  MustAppend("s", ExpectedVersion::NoStream(), batch);
  const absl::Time after = absl::Now();

  const std::vector<RecordedEvent> read = Stream("s");
  ASSERT_THAT(read, SizeIs(2));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      read[0].metadata, metadata))
      << read[0].metadata.DebugString();
  EXPECT_EQ(read[1].metadata.ByteSizeLong(), 0u)
      << read[1].metadata.DebugString();
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].id, batch[i].id);
    EXPECT_EQ(read[i].type, kPlacedType);
    EXPECT_EQ(read[i].payload, batch[i].payload);
    EXPECT_EQ(read[i].stream, "s");
    EXPECT_EQ(read[i].version, static_cast<int64_t>(i + 1));
    const absl::Time t = read[i].recorded_at;
    EXPECT_GE(t, before - absl::Seconds(5)) << t;
    EXPECT_LE(t, after + absl::Seconds(5)) << t;
    EXPECT_EQ(absl::FromUnixMicros(absl::ToUnixMicros(t)), t)
        << "recorded_at is not a whole number of microseconds: " << t;
  }

  // The same values through ReadAll and a second ReadStream.
  const std::vector<RecordedEvent> all = All();
  const std::vector<RecordedEvent> again = Stream("s");
  ASSERT_THAT(all, SizeIs(2));
  ASSERT_THAT(again, SizeIs(2));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(all[i].recorded_at, read[i].recorded_at);
    EXPECT_EQ(again[i].recorded_at, read[i].recorded_at);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        all[i].metadata, read[i].metadata));
    EXPECT_EQ(all[i].payload, read[i].payload);
    EXPECT_EQ(all[i].stream, read[i].stream);
    EXPECT_EQ(all[i].version, read[i].version);
  }
}

// --- ReadAll -----------------------------------------------------------------

TEST_P(EventStoreConformanceTest, ReadAllOnEmptyStore) {
  ReadAllOptions options;
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store().ReadAll(options));
  EXPECT_THAT(page.events, IsEmpty());
  EXPECT_TRUE(page.end_of_log);
  EXPECT_EQ(page.next_position, Position::Start());
}

TEST_P(EventStoreConformanceTest, ReadAllReturnsEveryEventInPositionOrder) {
  std::vector<Uuid> appended;
  for (int i = 0; i < 12; ++i) {
    const std::vector<EventData> batch = Batch(1 + i % 3);
    MustAppend(absl::StrCat("s-", i % 4), ExpectedVersion::Any(), batch);
    for (const Uuid& id : Ids(batch)) appended.push_back(id);
  }
  ReadAllOptions options;
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store().ReadAll(options));
  EXPECT_TRUE(page.end_of_log);
  EXPECT_EQ(Ids(page.events), appended);
  for (size_t i = 1; i < page.events.size(); ++i) {
    EXPECT_LT(page.events[i - 1].position, page.events[i].position);
  }
  ASSERT_FALSE(page.events.empty());
  EXPECT_EQ(page.next_position, page.events.back().position);
}

TEST_P(EventStoreConformanceTest, ReadAllResumesExclusivelyFromNextPosition) {
  const std::vector<EventData> batch = Batch(6);
  MustAppend("s", ExpectedVersion::Any(), batch);
  ReadAllOptions options;
  options.max_count = 2;
  ASSERT_OK_AND_ASSIGN(ReadAllPage first, store().ReadAll(options));
  ASSERT_THAT(first.events, SizeIs(2));
  EXPECT_FALSE(first.end_of_log);
  EXPECT_EQ(first.next_position, first.events[1].position);

  options.from_position = first.next_position;
  ASSERT_OK_AND_ASSIGN(ReadAllPage second, store().ReadAll(options));
  ASSERT_THAT(second.events, SizeIs(2));
  EXPECT_EQ(second.events[0].id, batch[2].id);  // not batch[1] again
  EXPECT_EQ(second.events[1].id, batch[3].id);

  // From any event's own position, the next event comes first.
  const std::vector<RecordedEvent> all = All();
  for (size_t i = 0; i + 1 < all.size(); ++i) {
    ReadAllOptions from_event;
    from_event.from_position = all[i].position;
    from_event.max_count = 1;
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, store().ReadAll(from_event));
    ASSERT_THAT(page.events, SizeIs(1));
    EXPECT_EQ(page.events[0].id, all[i + 1].id);
  }
}

TEST_P(EventStoreConformanceTest, ReadAllPagingReconstructsTheLog) {
  std::vector<Uuid> appended;
  for (int i = 0; i < 10; ++i) {
    const std::vector<EventData> batch = Batch(1 + i % 2);
    MustAppend(absl::StrCat("s-", i % 3), ExpectedVersion::Any(), batch);
    for (const Uuid& id : Ids(batch)) appended.push_back(id);
  }
  ASSERT_EQ(appended.size(), 15u);
  for (int64_t page_size : {1, 2, 4, 5, 14, 15, 16, 1000}) {
    SCOPED_TRACE(page_size);
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                         ReadAllEvents(store(), {}, page_size));
    EXPECT_EQ(Ids(events), appended);
  }
  // A page exactly as long as what is left is not the end; the next, empty
  // one is.
  ReadAllOptions options;
  options.max_count = 15;
  ASSERT_OK_AND_ASSIGN(ReadAllPage full, store().ReadAll(options));
  EXPECT_THAT(full.events, SizeIs(15));
  EXPECT_FALSE(full.end_of_log);
  options.from_position = full.next_position;
  ASSERT_OK_AND_ASSIGN(ReadAllPage empty, store().ReadAll(options));
  EXPECT_THAT(empty.events, IsEmpty());
  EXPECT_TRUE(empty.end_of_log);
  EXPECT_EQ(empty.next_position, full.next_position);
}

class ReadAllFilterConformanceTest : public EventStoreConformanceTest {
 protected:
  void SetUp() override {
    EventStoreConformanceTest::SetUp();
    if (HasFatalFailure()) return;
    // Streams chosen so that LIKE or GLOB patterns, or a case-insensitive
    // comparison, would match streams the prefix does not.
    Add("order-1", Placed("1", Tenant("t1")));
    Add("customer-1", StreetEvent(Tenant("t1")));
    Add("order-2", Placed("2", Tenant("t2")));
    Add("order-1", Shipped("1", Tenant("t1")));
    Add("order_3", Shipped("3", Tenant("t1")));
    Add("orderX4", Placed("4", Tenant("t1")));
    Add("Order-5", Placed("5", Tenant("t1")));
    Add("order%6", Placed("6", Tenant("t2")));
    Add("order-2", Placed("2b"));
    Add("customer-1", CityEvent(Tenant("t2")));
    Add("order-10", Shipped("10", Tenant("t1")));
    Add("order-2", Shipped("2", Tenant("T1")));
    all_ = All();
    ASSERT_THAT(all_, SizeIs(12));
  }

  static EventData StreetEvent(v1::EventMetadata metadata) {
    test::v1::StreetChanged street;
    street.set_street("Main St 1");
    return EventData::From(street, std::move(metadata));
  }
  static EventData CityEvent(v1::EventMetadata metadata) {
    test::v1::CityChanged city;
    city.set_city("Springfield");
    return EventData::From(city, std::move(metadata));
  }

  void Add(const std::string& stream, EventData event) {
    MustAppend(stream, ExpectedVersion::Any(), {std::move(event)});
  }

  // The ids of all_ that pass `filter`, computed here.
  std::vector<Uuid> Expected(const ReadAllFilter& filter) const {
    std::vector<Uuid> ids;
    for (const RecordedEvent& e : all_) {
      if (!absl::StartsWith(e.stream, filter.stream_prefix)) continue;
      if (!filter.event_types.empty() &&
          std::find(filter.event_types.begin(), filter.event_types.end(),
                    e.type) == filter.event_types.end()) {
        continue;
      }
      if (!filter.tenant_id.empty() &&
          e.metadata.tenant_id() != filter.tenant_id) {
        continue;
      }
      ids.push_back(e.id);
    }
    return ids;
  }

  std::vector<Uuid> Filtered(const ReadAllFilter& filter,
                             int64_t page_size = 1000) {
    return Ids(All(filter, page_size));
  }

  std::vector<RecordedEvent> all_;
};

ReadAllFilter PrefixFilter(const std::string& prefix) {
  ReadAllFilter filter;
  filter.stream_prefix = prefix;
  return filter;
}

TEST_P(ReadAllFilterConformanceTest, StreamPrefix) {
  ReadAllFilter filter = PrefixFilter("order-");
  EXPECT_THAT(Filtered(filter), SizeIs(6));
  EXPECT_EQ(Filtered(filter), Expected(filter));
  for (const RecordedEvent& e : All(filter)) {
    EXPECT_TRUE(absl::StartsWith(e.stream, "order-")) << e.stream;
  }
  filter = PrefixFilter("order-1");  // order-1 and order-10
  EXPECT_THAT(Filtered(filter), SizeIs(3));
  EXPECT_EQ(Filtered(filter), Expected(filter));
  filter = PrefixFilter("customer-1");
  EXPECT_EQ(Filtered(filter), Expected(filter));
  EXPECT_THAT(Filtered(filter), SizeIs(2));
}

TEST_P(ReadAllFilterConformanceTest, StreamPrefixIsLiteralAndCaseSensitive) {
  for (const auto& [prefix, count] : std::vector<std::pair<std::string, int>>{
           {"order_", 1},  // not orderX4: '_' is no wildcard
           {"order%", 1},  // not every order stream: '%' is no wildcard
           {"Order", 1},   // not order-*: case matters
           {"ORDER", 0},
           {"ord*", 0},
           {"order?", 0},
           {"[o]rder", 0},
           {"order-1\\", 0}}) {
    SCOPED_TRACE(prefix);
    const ReadAllFilter filter = PrefixFilter(prefix);
    EXPECT_EQ(Filtered(filter), Expected(filter));
    EXPECT_THAT(Filtered(filter), SizeIs(count));
  }
}

TEST_P(ReadAllFilterConformanceTest, EventTypes) {
  ReadAllFilter filter;
  filter.event_types = {kPlacedType, "eventstore.test.v1.CityChanged"};
  EXPECT_THAT(Filtered(filter), SizeIs(7));
  EXPECT_EQ(Filtered(filter), Expected(filter));
  for (const RecordedEvent& e : All(filter)) {
    EXPECT_THAT(e.type, ::testing::AnyOf(kPlacedType,
                                         "eventstore.test.v1.CityChanged"));
  }
  filter.event_types = {kShippedType};
  EXPECT_THAT(Filtered(filter), SizeIs(4));
  EXPECT_EQ(Filtered(filter), Expected(filter));
  // A type name is matched whole.
  filter.event_types = {"eventstore.test.v1.Order"};
  EXPECT_THAT(Filtered(filter), IsEmpty());
}

TEST_P(ReadAllFilterConformanceTest, TenantId) {
  ReadAllFilter filter;
  filter.tenant_id = "t1";
  EXPECT_THAT(Filtered(filter), SizeIs(7));
  EXPECT_EQ(Filtered(filter), Expected(filter));
  for (const RecordedEvent& e : All(filter)) {
    EXPECT_EQ(e.metadata.tenant_id(), "t1");
  }
  filter.tenant_id = "t2";
  EXPECT_THAT(Filtered(filter), SizeIs(3));
  EXPECT_EQ(Filtered(filter), Expected(filter));
  filter.tenant_id = "t";  // whole value, not a prefix
  EXPECT_THAT(Filtered(filter), IsEmpty());
}

TEST_P(ReadAllFilterConformanceTest, CombinedFilters) {
  ReadAllFilter filter;
  filter.stream_prefix = "order-";
  filter.event_types = {kPlacedType};
  EXPECT_THAT(Filtered(filter), SizeIs(3));
  EXPECT_EQ(Filtered(filter), Expected(filter));
  filter.tenant_id = "t1";
  EXPECT_THAT(Filtered(filter), SizeIs(1));
  EXPECT_EQ(Filtered(filter), Expected(filter));
  filter.event_types = {kPlacedType, kShippedType};
  EXPECT_THAT(Filtered(filter), SizeIs(3));
  EXPECT_EQ(Filtered(filter), Expected(filter));
  filter.stream_prefix = "";
  filter.event_types = {kShippedType};
  EXPECT_THAT(Filtered(filter), SizeIs(3));
  EXPECT_EQ(Filtered(filter), Expected(filter));
}

TEST_P(ReadAllFilterConformanceTest, FilteredPagingSeesEveryMatchOnce) {
  ReadAllFilter filter;
  filter.tenant_id = "t1";
  for (int64_t page_size : {1, 2, 3, 7, 8}) {
    SCOPED_TRACE(page_size);
    EXPECT_EQ(Filtered(filter, page_size), Expected(filter));
  }
  filter = PrefixFilter("order-2");
  for (int64_t page_size : {1, 2, 3}) {
    SCOPED_TRACE(page_size);
    EXPECT_EQ(Filtered(filter, page_size), Expected(filter));
  }
}

TEST_P(ReadAllFilterConformanceTest, EmptyWhenNothingMatches) {
  ReadAllFilter none;
  none.event_types = {"no.such.Type"};
  for (const Position from :
       {Position::Start(), all_[3].position, all_.back().position}) {
    SCOPED_TRACE(from.ToString());
    ReadAllOptions options;
    options.from_position = from;
    options.filter = none;
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, store().ReadAll(options));
    EXPECT_THAT(page.events, IsEmpty());
    EXPECT_TRUE(page.end_of_log);
    EXPECT_EQ(page.next_position, from);
  }
  // Without a filter, from the head or beyond it.
  for (const Position from :
       {all_.back().position,
        Position::FromParts(all_.back().position.commit() + 1000,
                            all_.back().position.prepare() + 1000)}) {
    SCOPED_TRACE(from.ToString());
    ReadAllOptions options;
    options.from_position = from;
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, store().ReadAll(options));
    EXPECT_THAT(page.events, IsEmpty());
    EXPECT_TRUE(page.end_of_log);
    EXPECT_EQ(page.next_position, from);
  }
  // A filter whose matches all lie before `from`.
  ReadAllOptions options;
  options.from_position = all_[2].position;
  options.filter = PrefixFilter("customer-1");
  options.filter.tenant_id = "t1";  // the only match is all_[1]
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store().ReadAll(options));
  EXPECT_THAT(page.events, IsEmpty());
  EXPECT_TRUE(page.end_of_log);
  EXPECT_EQ(page.next_position, all_[2].position);
}

// --- EventExists -------------------------------------------------------------

TEST_P(EventStoreConformanceTest, EventExists) {
  const std::vector<EventData> batch = Batch(2);
  EXPECT_FALSE(Exists(batch[0].id));
  EXPECT_FALSE(Exists(Uuid()));
  MustAppend("s", ExpectedVersion::NoStream(), batch);
  EXPECT_TRUE(Exists(batch[0].id));
  EXPECT_TRUE(Exists(batch[1].id));
  EXPECT_FALSE(Exists(Uuid::Generate()));
  EXPECT_FALSE(Exists(Uuid()));
}

// --- decoding ----------------------------------------------------------------

TEST_P(EventStoreConformanceTest, RecordedEventAsDecodesItsType) {
  MustAppend("s", ExpectedVersion::NoStream(), {Placed("o-42")});
  const std::vector<RecordedEvent> read = Stream("s");
  ASSERT_THAT(read, SizeIs(1));
  ASSERT_OK_AND_ASSIGN(test::v1::OrderPlaced placed,
                       read[0].As<test::v1::OrderPlaced>());
  EXPECT_EQ(placed.order_id(), "o-42");
  EXPECT_EQ(placed.total().units(), 1999);
  EXPECT_EQ(placed.placed_at().seconds(), 1700000000);
  EXPECT_THAT(read[0].As<test::v1::OrderShipped>(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(EventStoreConformanceTest, CorruptPayloadDecodesAsDataLoss) {
  EventData corrupt = Placed("x");
  corrupt.payload = std::string(
      "\x0a\x05"
      "ab",
      4);  // truncated field
  MustAppend("s", ExpectedVersion::NoStream(), {corrupt});
  const std::vector<RecordedEvent> read = Stream("s");
  ASSERT_THAT(read, SizeIs(1));
  EXPECT_EQ(read[0].payload, corrupt.payload);
  EXPECT_THAT(read[0].As<test::v1::OrderPlaced>(),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST_P(EventStoreConformanceTest, DecodeOfUnregisteredTypeIsNotFound) {
  MustAppend("s", ExpectedVersion::NoStream(), {Placed("a"), Shipped("a")});
  TypeRegistry registry;
  registry.Register<test::v1::OrderShipped>();
  const std::vector<RecordedEvent> read = Stream("s");
  ASSERT_THAT(read, SizeIs(2));
  EXPECT_THAT(registry.Decode(read[0]),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(kPlacedType)));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<google::protobuf::Message> shipped,
                       registry.Decode(read[1]));
  EXPECT_EQ(shipped->GetDescriptor()->full_name(), kShippedType);
}

// --- upcasting ---------------------------------------------------------------

TEST_P(EventStoreConformanceTest, UpcastersApplyOnRead) {
  auto registry = std::make_shared<TypeRegistry>();
  registry->Register<test::v1::NewName>();
  registry->Register<test::v1::StreetChanged>();
  registry->Register<test::v1::CityChanged>();
  registry->Register<test::v1::OrderPlaced>();
  registry->AddRename("eventstore.test.v1.OldName",
                      "eventstore.test.v1.NewName");
  registry->AddUpcaster(test::kCustomerMovedV1Type, test::SplitMovedUpcaster());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       GetParam().open(registry));

  test::v1::OldName old;
  old.set_value("renamed value");
  test::v1::CustomerMovedV1 moved;
  moved.set_street("Main St 1");
  moved.set_city("Springfield");
  const std::vector<EventData> batch = {
      EventData::From(old), EventData::From(moved), Placed("after")};
  ASSERT_OK_AND_ASSIGN(
      AppendResult appended,
      store->Append("customer-1", ExpectedVersion::NoStream(), batch));
  EXPECT_EQ(appended.next_expected_version, 3);
  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("customer-1"));
  EXPECT_EQ(version, 3);

  const auto check = [&](const std::vector<RecordedEvent>& events) {
    EXPECT_THAT(Types(events),
                ElementsAre("eventstore.test.v1.NewName",
                            "eventstore.test.v1.StreetChanged",
                            "eventstore.test.v1.CityChanged", kPlacedType));
    EXPECT_THAT(Versions(events), ElementsAre(1, 2, 2, 3));
    if (events.size() != 4) return;
    EXPECT_EQ(events[1].position, events[2].position);
    EXPECT_LT(events[0].position, events[1].position);
    EXPECT_EQ(events[3].position, appended.last_position);
    absl::StatusOr<test::v1::NewName> renamed =
        events[0].As<test::v1::NewName>();
    ASSERT_OK(renamed);
    EXPECT_EQ(renamed->value(), "renamed value");
    absl::StatusOr<test::v1::StreetChanged> street =
        events[1].As<test::v1::StreetChanged>();
    ASSERT_OK(street);
    EXPECT_EQ(street->street(), "Main St 1");
    absl::StatusOr<test::v1::CityChanged> city =
        events[2].As<test::v1::CityChanged>();
    ASSERT_OK(city);
    EXPECT_EQ(city->city(), "Springfield");
    for (const RecordedEvent& e : events) {
      EXPECT_EQ(e.stream, "customer-1");
      EXPECT_OK(registry->Decode(e));
    }
  };
  {
    SCOPED_TRACE("ReadStream");
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                         store->ReadStream("customer-1"));
    check(events);
  }
  {
    SCOPED_TRACE("ReadAll");
    ReadAllOptions options;
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, store->ReadAll(options));
    EXPECT_TRUE(page.end_of_log);
    EXPECT_EQ(page.next_position, appended.last_position);
    check(page.events);
  }
  // Paging that cuts through the split still delivers every event once:
  // the parts of a split share one position, so a page must not end
  // between them.
  for (int64_t page_size : {1, 2, 3}) {
    SCOPED_TRACE(absl::StrCat("ReadAll in pages of ", page_size));
    std::vector<RecordedEvent> events;
    ReadAllOptions options;
    options.max_count = page_size;
    for (int pages = 0; pages < 10; ++pages) {
      ASSERT_OK_AND_ASSIGN(ReadAllPage page, store->ReadAll(options));
      for (RecordedEvent& e : page.events) events.push_back(std::move(e));
      if (page.end_of_log) break;
      options.from_position = page.next_position;
    }
    check(events);
  }
  {
    SCOPED_TRACE("ReadStream backward");
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                         ReadStreamWith(*store, "customer-1", std::nullopt,
                                        kUnlimited, Direction::kBackward));
    EXPECT_THAT(Versions(events), ElementsAre(3, 2, 2, 1));
  }
}

// --- generated ids -----------------------------------------------------------

TEST_P(EventStoreConformanceTest, NilIdGetsAGeneratedId) {
  std::vector<EventData> batch = Batch(2);
  batch[0].id = Uuid();
  batch[1].id = Uuid();
  const AppendResult r = MustAppend("s", ExpectedVersion::NoStream(), batch);
  EXPECT_EQ(r.next_expected_version, 2);
  const std::vector<RecordedEvent> read = Stream("s");
  ASSERT_THAT(read, SizeIs(2));
  EXPECT_FALSE(read[0].id.IsNil());
  EXPECT_FALSE(read[1].id.IsNil());
  EXPECT_NE(read[0].id, read[1].id);
  EXPECT_EQ(read[0].payload, batch[0].payload);
  EXPECT_TRUE(Exists(read[0].id));
  EXPECT_TRUE(Exists(read[1].id));
  EXPECT_EQ(Ids(All()), Ids(read));
  // Appending the nil-id batch again is a new append, not a retry.
  const AppendResult again =
      MustAppend("s", ExpectedVersion::Exactly(2), batch);
  EXPECT_EQ(again.next_expected_version, 4);
}

// --- randomised model --------------------------------------------------------

// Thousands of random appends over twenty streams, many with stale or
// impossible expected versions, checked one by one against a model of the
// stream versions and of the global order; then every stream and the whole
// log are read back and compared with the model.
TEST_P(EventStoreConformanceTest, RandomisedAppendsMatchModel) {
  constexpr uint32_t kSeed = 20240611;
  constexpr int kSteps = 3000;
  constexpr int kStreams = 20;
  SCOPED_TRACE(absl::StrCat("seed ", kSeed));
  std::mt19937 rng(kSeed);
  const auto uniform = [&rng](int n) {
    return static_cast<int>(rng() % static_cast<uint32_t>(n));
  };

  struct Committed {
    std::string stream;
    ExpectedVersion expected = ExpectedVersion::Any();
    std::vector<EventData> events;
    AppendResult result;
  };
  struct Logged {
    Uuid id;
    std::string stream;
    int64_t version;
  };
  absl::flat_hash_map<std::string, int64_t> versions;
  std::vector<Logged> log;
  std::vector<Committed> committed;
  Position last = Position::Start();
  int conflicts = 0;
  int retries = 0;

  const absl::Time start = absl::Now();
  for (int step = 0; step < kSteps; ++step) {
    if (!committed.empty() && uniform(20) == 0) {
      const Committed& c = committed[uniform(committed.size())];
      absl::StatusOr<AppendResult> r =
          store().Append(c.stream, c.expected, c.events);
      ASSERT_OK(r) << "retry at step " << step;
      ASSERT_EQ(*r, c.result) << "retry at step " << step;
      ++retries;
      continue;
    }
    const std::string stream = absl::StrCat("stream-", uniform(kStreams));
    const int64_t current = versions[stream];
    ExpectedVersion expected = ExpectedVersion::Any();
    const int kind = uniform(100);
    if (kind < 15) {
      expected = ExpectedVersion::Any();
    } else if (kind < 25) {
      expected = ExpectedVersion::NoStream();
    } else if (kind < 35) {
      expected = ExpectedVersion::StreamExists();
    } else if (kind < 70) {
      expected = ExpectedVersion::Exactly(current);
    } else if (kind < 90) {
      expected = ExpectedVersion::Exactly(
          std::max<int64_t>(0, current - 1 - uniform(3)));  // stale
    } else {
      expected = ExpectedVersion::Exactly(current + 1 + uniform(2));
    }
    std::vector<EventData> events;
    const int n = 1 + uniform(3);
    for (int k = 0; k < n; ++k) events.push_back(Tick(0, step * 10 + k));

    absl::StatusOr<AppendResult> r = store().Append(stream, expected, events);
    if (expected.Matches(current)) {
      ASSERT_OK(r) << "step " << step << ": " << stream << " at " << current
                   << " expecting " << expected;
      ASSERT_EQ(r->next_expected_version, current + n) << "step " << step;
      ASSERT_GT(r->first_position, last) << "step " << step;
      ASSERT_LE(r->first_position, r->last_position) << "step " << step;
      if (n == 1) {
        ASSERT_EQ(r->first_position, r->last_position);
      }
      last = r->last_position;
      for (int k = 0; k < n; ++k) {
        log.push_back({events[k].id, stream, current + k + 1});
      }
      versions[stream] = current + n;
      committed.push_back({stream, expected, std::move(events), *r});
    } else {
      ASSERT_TRUE(IsWrongExpectedVersion(r.status()))
          << "step " << step << ": " << stream << " at " << current
          << " expecting " << expected << " gave " << r.status();
      std::optional<WrongExpectedVersionInfo> info =
          GetWrongExpectedVersion(r.status());
      ASSERT_TRUE(info.has_value());
      ASSERT_EQ(info->actual, current) << "step " << step;
      ASSERT_EQ(info->stream, stream);
      ASSERT_EQ(info->expected, expected);
      ++conflicts;
    }
  }
  EXPECT_GT(conflicts, kSteps / 5);
  EXPECT_GT(retries, kSteps / 50);
  EXPECT_GT(log.size(), static_cast<size_t>(kSteps));

  // Every stream as the model has it.
  for (int s = 0; s < kStreams; ++s) {
    const std::string stream = absl::StrCat("stream-", s);
    SCOPED_TRACE(stream);
    std::vector<Uuid> expected_ids;
    for (const Logged& l : log) {
      if (l.stream == stream) expected_ids.push_back(l.id);
    }
    EXPECT_EQ(Version(stream), versions[stream]);
    const std::vector<RecordedEvent> read = Stream(stream);
    EXPECT_EQ(Ids(read), expected_ids);
    EXPECT_THAT(Versions(read), ElementsAreArray(Range(1, versions[stream])));
  }
  // The whole log, in pages.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> all,
                       ReadAllEvents(store(), {}, 97));
  ASSERT_EQ(all.size(), log.size());
  for (size_t i = 0; i < log.size(); ++i) {
    ASSERT_EQ(all[i].id, log[i].id) << "log entry " << i;
    ASSERT_EQ(all[i].stream, log[i].stream) << "log entry " << i;
    ASSERT_EQ(all[i].version, log[i].version) << "log entry " << i;
  }
  EXPECT_EQ(Head(), last);
  const absl::Duration elapsed = absl::Now() - start;
  RecordProperty("elapsed_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(elapsed)));
}

// --- concurrency -------------------------------------------------------------

// Starts `n` threads running `body(i)` together and joins them.
template <typename Body>
void RunTogether(int n, Body body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&ready, &body, n, i] {
      ready.fetch_add(1);
      while (ready.load() < n) std::this_thread::yield();
      body(i);
    });
  }
  for (std::thread& thread : threads) thread.join();
}

// Eight writers race for each version of one stream with Exactly(the
// version they read): every version has exactly one winner, nobody's event
// is lost or doubled, and the losers learn it through kAborted.
TEST_P(EventStoreConformanceTest, ConcurrentAppendsToOneStream) {
  constexpr int kThreads = 8;
  constexpr int kWinsEach = 10;
  constexpr int kMaxAttempts = 20000;
  struct Outcome {
    std::vector<int64_t> won_versions;
    std::vector<Uuid> won_ids;
    int lost = 0;
    std::vector<std::string> errors;
  };
  std::vector<Outcome> outcomes(kThreads);
  RunTogether(kThreads, [&](int t) {
    Outcome& out = outcomes[t];
    for (int attempt = 0;
         static_cast<int>(out.won_versions.size()) < kWinsEach &&
         attempt < kMaxAttempts;
         ++attempt) {
      absl::StatusOr<int64_t> version = store().StreamVersion("contended");
      if (!version.ok()) {
        out.errors.push_back(version.status().ToString());
        return;
      }
      const std::vector<EventData> events = {Tick(t, attempt)};
      absl::StatusOr<AppendResult> r = store().Append(
          "contended", ExpectedVersion::Exactly(*version), events);
      if (r.ok()) {
        if (r->next_expected_version != *version + 1) {
          out.errors.push_back(absl::StrCat("won at ", *version, " but got ",
                                            r->next_expected_version));
        }
        out.won_versions.push_back(r->next_expected_version);
        out.won_ids.push_back(events[0].id);
        continue;
      }
      std::optional<WrongExpectedVersionInfo> info =
          GetWrongExpectedVersion(r.status());
      if (!IsWrongExpectedVersion(r.status()) || !info.has_value()) {
        out.errors.push_back(r.status().ToString());
        return;
      }
      if (info->actual <= *version) {
        out.errors.push_back(absl::StrCat("lost at ", *version,
                                          " to a stream at ", info->actual));
      }
      ++out.lost;
    }
  });

  absl::flat_hash_map<int64_t, std::pair<int, Uuid>> winner_of;
  int lost = 0;
  for (int t = 0; t < kThreads; ++t) {
    SCOPED_TRACE(absl::StrCat("thread ", t));
    EXPECT_THAT(outcomes[t].errors, IsEmpty());
    EXPECT_THAT(outcomes[t].won_versions, SizeIs(kWinsEach));
    lost += outcomes[t].lost;
    for (size_t i = 0; i < outcomes[t].won_versions.size(); ++i) {
      const int64_t v = outcomes[t].won_versions[i];
      EXPECT_TRUE(
          winner_of.emplace(v, std::make_pair(t, outcomes[t].won_ids[i]))
              .second)
          << "version " << v << " won twice";
    }
  }
  constexpr int64_t kTotal = kThreads * kWinsEach;
  EXPECT_EQ(Version("contended"), kTotal);
  const std::vector<RecordedEvent> read = Stream("contended");
  ASSERT_THAT(read, SizeIs(kTotal));
  EXPECT_THAT(Versions(read), ElementsAreArray(Range(1, kTotal)));
  for (const RecordedEvent& e : read) {
    auto it = winner_of.find(e.version);
    ASSERT_NE(it, winner_of.end()) << "version " << e.version;
    EXPECT_EQ(e.id, it->second.second) << "version " << e.version;
    absl::StatusOr<test::v1::Tick> tick = e.As<test::v1::Tick>();
    ASSERT_OK(tick);
    EXPECT_EQ(tick->writer(), it->second.first) << "version " << e.version;
  }
  // Losers wrote nothing.
  EXPECT_THAT(All(), SizeIs(kTotal));
  RecordProperty("lost_races", lost);
}

TEST_P(EventStoreConformanceTest, ConcurrentAppendsToDistinctStreams) {
  constexpr int kThreads = 8;
  constexpr int kAppendsEach = 30;
  constexpr int kBatch = 2;
  struct Outcome {
    std::vector<AppendResult> results;
    std::vector<Uuid> ids;
    std::vector<std::string> errors;
  };
  std::vector<Outcome> outcomes(kThreads);
  RunTogether(kThreads, [&](int t) {
    const std::string stream = absl::StrCat("writer-", t);
    for (int i = 0; i < kAppendsEach; ++i) {
      const std::vector<EventData> events = {Tick(t, 2 * i),
                                             Tick(t, 2 * i + 1)};
      absl::StatusOr<AppendResult> r =
          store().Append(stream, ExpectedVersion::Exactly(i * kBatch), events);
      if (!r.ok()) {
        outcomes[t].errors.push_back(r.status().ToString());
        return;
      }
      outcomes[t].results.push_back(*r);
      for (const EventData& e : events) outcomes[t].ids.push_back(e.id);
    }
  });

  std::vector<AppendResult> results;
  for (int t = 0; t < kThreads; ++t) {
    SCOPED_TRACE(absl::StrCat("thread ", t));
    EXPECT_THAT(outcomes[t].errors, IsEmpty());
    const std::string stream = absl::StrCat("writer-", t);
    EXPECT_EQ(Version(stream), kAppendsEach * kBatch);
    const std::vector<RecordedEvent> read = Stream(stream);
    EXPECT_EQ(Ids(read), outcomes[t].ids);
    EXPECT_THAT(Versions(read),
                ElementsAreArray(Range(1, kAppendsEach * kBatch)));
    for (size_t i = 0; i < outcomes[t].results.size(); ++i) {
      EXPECT_EQ(outcomes[t].results[i].next_expected_version,
                static_cast<int64_t>((i + 1) * kBatch));
    }
    results.insert(results.end(), outcomes[t].results.begin(),
                   outcomes[t].results.end());
  }
  // The appends' position ranges do not overlap.
  std::sort(results.begin(), results.end(),
            [](const AppendResult& a, const AppendResult& b) {
              return a.first_position < b.first_position;
            });
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_LT(results[i - 1].last_position, results[i].first_position);
  }
  const std::vector<RecordedEvent> all = All({}, 100);
  EXPECT_THAT(all, SizeIs(kThreads * kAppendsEach * kBatch));
  // Within each stream the log keeps version order.
  absl::flat_hash_map<std::string, int64_t> seen;
  for (const RecordedEvent& e : all) {
    EXPECT_EQ(e.version, ++seen[e.stream]) << e.stream;
  }
}

// A writer appends while readers tail the log with ReadAll: every reader
// sees every event exactly once, in the order they were appended.
TEST_P(EventStoreConformanceTest, ConcurrentReadersAndWriter) {
  constexpr int kReaders = 3;
  constexpr int kBatches = 150;
  std::vector<Uuid> written;
  std::vector<std::string> writer_errors;
  std::atomic<bool> writer_done{false};
  std::atomic<int> readers_started{0};
  struct Seen {
    std::vector<Uuid> ids;
    std::vector<std::string> errors;
  };
  std::vector<Seen> seen(kReaders);

  std::thread writer([&] {
    while (readers_started.load() < kReaders) std::this_thread::yield();
    for (int i = 0; i < kBatches; ++i) {
      std::vector<EventData> events;
      for (int k = 0; k <= i % 3; ++k) events.push_back(Tick(0, i * 3 + k));
      absl::StatusOr<AppendResult> r = store().Append(
          absl::StrCat("tail-", i % 5), ExpectedVersion::Any(), events);
      if (!r.ok()) {
        writer_errors.push_back(r.status().ToString());
        break;
      }
      for (const EventData& e : events) written.push_back(e.id);
    }
    writer_done.store(true);
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&, t] {
      Seen& out = seen[t];
      readers_started.fetch_add(1);
      const absl::Time deadline = absl::Now() + absl::Seconds(120);
      Position from = Position::Start();
      while (absl::Now() < deadline) {
        const bool done_before_read = writer_done.load();
        ReadAllOptions options;
        options.from_position = from;
        options.max_count = 7 + t;
        absl::StatusOr<ReadAllPage> page = store().ReadAll(options);
        if (!page.ok()) {
          out.errors.push_back(page.status().ToString());
          return;
        }
        for (const RecordedEvent& e : page->events) {
          if (!(e.position > from)) {
            out.errors.push_back(absl::StrCat("position ",
                                              e.position.ToString(), " after ",
                                              from.ToString()));
          }
          from = e.position;
          out.ids.push_back(e.id);
        }
        if (page->next_position != from) {
          out.errors.push_back(absl::StrCat("next_position ",
                                            page->next_position.ToString(),
                                            " for ", from.ToString()));
          return;
        }
        if (page->end_of_log) {
          if (done_before_read) return;
          std::this_thread::yield();
        }
      }
      out.errors.push_back("deadline passed before the log was read");
    });
  }
  writer.join();
  for (std::thread& reader : readers) reader.join();

  ASSERT_THAT(writer_errors, IsEmpty());
  ASSERT_GE(written.size(), static_cast<size_t>(kBatches));
  for (int t = 0; t < kReaders; ++t) {
    SCOPED_TRACE(absl::StrCat("reader ", t));
    EXPECT_THAT(seen[t].errors, IsEmpty());
    EXPECT_EQ(seen[t].ids.size(), written.size());
    EXPECT_EQ(seen[t].ids, written);
  }
}

// The same batch appended by several threads at once (a client retrying
// while its first attempt is still in flight): one of them writes it, and
// every one gets the same result.
TEST_P(EventStoreConformanceTest, ConcurrentRetriesOfOneBatch) {
  constexpr int kThreads = 6;
  constexpr int kRounds = 15;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string stream = absl::StrCat("retried-", round);
    const std::vector<EventData> batch = Batch(3, stream);
    std::vector<absl::StatusOr<AppendResult>> results(
        kThreads, absl::UnknownError("not run"));
    RunTogether(kThreads, [&](int t) {
      results[t] = store().Append(stream, ExpectedVersion::NoStream(), batch);
    });
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_OK(results[t]) << "thread " << t;
      EXPECT_EQ(*results[t], *results[0]) << "thread " << t;
    }
    EXPECT_EQ(results[0]->next_expected_version, 3);
    EXPECT_EQ(Version(stream), 3);
    EXPECT_EQ(Ids(Stream(stream)), Ids(batch));
  }
  EXPECT_THAT(All(), SizeIs(3 * kRounds));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, EventStoreConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);
INSTANTIATE_TEST_SUITE_P(Failover, EventStoreConformanceTest,
                         ::testing::Values(FailoverTestBackend()),
                         TestBackendName);
INSTANTIATE_TEST_SUITE_P(AllBackends, ReadStreamConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);
INSTANTIATE_TEST_SUITE_P(AllBackends, ReadAllFilterConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
