// The stream lifecycle (stream_lifecycle.h, event_store.h): deletion,
// retention, scavenging, run on every backend of AllTestBackends(). Written
// from the contract: the rules in stream_lifecycle.h's header comment and
// eventstore/internal/stream_rules.h, which every backend shares.
//
// Tests whose names start with "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/status_macros.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/v1/lifecycle.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/conformance_events.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::Batch;
using ::eventstore::test::Ids;
using ::eventstore::test::Placed;
using ::eventstore::test::Range;
using ::eventstore::test::Shipped;
using ::eventstore::test::StatusIs;
using ::eventstore::test::Tenant;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::Tick;
using ::eventstore::test::Types;
using ::eventstore::test::Versions;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kPlacedType[] = "eventstore.test.v1.OrderPlaced";
constexpr char kShippedType[] = "eventstore.test.v1.OrderShipped";
const std::string kDeletedType(kStreamDeletedType);

// A wait that should end at once or on an append may take this long on a
// loaded machine.
constexpr absl::Duration kPrompt = absl::Seconds(2);

// The events of `events` in `stream`.
std::vector<RecordedEvent> Of(const std::vector<RecordedEvent>& events,
                              const std::string& stream) {
  std::vector<RecordedEvent> out;
  for (const RecordedEvent& e : events) {
    if (e.stream == stream) out.push_back(e);
  }
  return out;
}

// Reads the log after `from` in pages of `page_size`, checking each page
// against the ReadAll contract (an Internal error says which rule broke).
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
        return absl::InternalError(
            absl::StrCat("position ", e.position.ToString(),
                         " does not follow ", previous.ToString()));
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

// --- the fixture -------------------------------------------------------------

class StreamLifecycleConformanceTest : public test::StoreTest {
 protected:
  AppendResult MustAppend(const std::string& stream, ExpectedVersion expected,
                          const std::vector<EventData>& events) {
    absl::StatusOr<AppendResult> result =
        store().Append(stream, expected, events);
    EXPECT_OK(result) << "appending " << events.size() << " events to "
                      << stream << " expecting " << expected;
    return result.ok() ? *result : AppendResult();
  }

  DeleteResult MustDelete(const std::string& stream, ExpectedVersion expected,
                          DeleteMode mode) {
    absl::StatusOr<DeleteResult> result =
        store().DeleteStream(stream, expected, mode);
    EXPECT_OK(result) << "deleting " << stream << " expecting " << expected;
    return result.ok() ? *result : DeleteResult();
  }

  void MustSetMetadata(const std::string& stream,
                       const StreamMetadata& metadata) {
    EXPECT_OK(store().SetStreamMetadata(stream, metadata)) << stream;
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

  StreamInfo Info(const std::string& stream) {
    absl::StatusOr<StreamInfo> info = store().GetStreamInfo(stream);
    EXPECT_OK(info) << stream;
    return info.ok() ? *std::move(info) : StreamInfo();
  }

  std::vector<RecordedEvent> Stream(const std::string& stream,
                                    ReadStreamOptions options = {}) {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        store().ReadStream(stream, options);
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

  ScavengeResult MustScavenge(ScavengeOptions options = {}) {
    absl::StatusOr<ScavengeResult> result = store().Scavenge(options);
    EXPECT_OK(result);
    return result.ok() ? *std::move(result) : ScavengeResult();
  }

  // Checks that `status` is a wrong expected version for `stream`.
  static void ExpectWrongVersion(const absl::Status& status,
                                 const std::string& stream,
                                 ExpectedVersion expected, int64_t actual) {
    EXPECT_THAT(status,
                StatusIs(absl::StatusCode::kAborted, HasSubstr(stream)));
    EXPECT_TRUE(IsWrongExpectedVersion(status)) << status;
    std::optional<WrongExpectedVersionInfo> info =
        GetWrongExpectedVersion(status);
    ASSERT_TRUE(info.has_value()) << status;
    EXPECT_EQ(info->stream, stream);
    EXPECT_EQ(info->expected, expected);
    EXPECT_EQ(info->actual, actual);
  }

  // Checks that `status` is HardDeletedStreamError(stream).
  static void ExpectHardDeleted(const absl::Status& status,
                                const std::string& stream) {
    EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 HasSubstr(stream)));
    EXPECT_TRUE(IsHardDeletedStream(status)) << status;
  }

  // Checks that `marker` is the StreamDeleted event of a deletion of
  // `stream` whose last event had `last_version`.
  static void ExpectMarker(const RecordedEvent& marker,
                           const std::string& stream, bool hard,
                           std::optional<int64_t> last_version) {
    EXPECT_EQ(marker.type, kDeletedType);
    EXPECT_EQ(marker.stream, stream);
    absl::StatusOr<v1::StreamDeleted> deleted = marker.As<v1::StreamDeleted>();
    ASSERT_OK(deleted);
    EXPECT_EQ(deleted->stream(), stream);
    EXPECT_EQ(deleted->hard(), hard);
    if (last_version.has_value()) {
      EXPECT_EQ(deleted->last_version(), *last_version);
    }
  }
};

// --- soft delete
// ---------------------------------------------------------------

TEST_P(StreamLifecycleConformanceTest, SoftDeleteHidesTheStream) {
  const std::vector<EventData> deleted_events = Batch(3, "d");
  const AppendResult appended =
      MustAppend("order-1", ExpectedVersion::NoStream(), deleted_events);
  const std::vector<EventData> kept = Batch(2, "k");
  MustAppend("order-2", ExpectedVersion::NoStream(), kept);
  const absl::Time before = absl::Now();

  const DeleteResult d =
      MustDelete("order-1", ExpectedVersion::Exactly(3), DeleteMode::kSoft);
  EXPECT_EQ(d.marker_version, 4);
  EXPECT_EQ(d.snapshots_removed, 0);
  EXPECT_GT(d.position, appended.last_position);
  EXPECT_EQ(Head(), d.position);

  EXPECT_THAT(Stream("order-1"), IsEmpty());
  ReadStreamOptions backward;
  backward.direction = Direction::kBackward;
  EXPECT_THAT(Stream("order-1", backward), IsEmpty());
  EXPECT_EQ(Version("order-1"), 0);
  EXPECT_EQ(Ids(Stream("order-2")), Ids(kept));

  const StreamInfo info = Info("order-1");
  EXPECT_EQ(info.stream, "order-1");
  EXPECT_EQ(info.state, StreamStatus::kSoftDeleted);
  EXPECT_EQ(info.version, 0);
  EXPECT_EQ(info.last_version, 4);
  EXPECT_EQ(info.metadata.truncate_before, std::optional<int64_t>(5));
  EXPECT_EQ(info.metadata.max_count, std::nullopt);
  ASSERT_TRUE(info.deleted_at.has_value());
  // The database's clock, on this machine.
  EXPECT_GE(*info.deleted_at, before - absl::Minutes(1));
  EXPECT_LE(*info.deleted_at, absl::Now() + absl::Minutes(1));

  // ReadAll: the kept stream and the marker, not the deleted events.
  const std::vector<RecordedEvent> all = All();
  ASSERT_THAT(all, SizeIs(3));
  EXPECT_EQ(Ids(Of(all, "order-2")), Ids(kept));
  const RecordedEvent& marker = all.back();
  ExpectMarker(marker, "order-1", /*hard=*/false, 3);
  EXPECT_EQ(marker.version, 4);
  EXPECT_EQ(marker.position, d.position);
}

TEST_P(StreamLifecycleConformanceTest,
       SoftDeletedStreamRevivesWithNoStreamAnyOrExactlyZero) {
  const std::vector<std::pair<std::string, ExpectedVersion>> cases = {
      {"no-stream", ExpectedVersion::NoStream()},
      {"any", ExpectedVersion::Any()},
      {"exactly-0", ExpectedVersion::Exactly(0)}};
  for (const auto& [stream, expected] : cases) {
    SCOPED_TRACE(stream);
    MustAppend(stream, ExpectedVersion::NoStream(), Batch(2));
    EXPECT_EQ(MustDelete(stream, ExpectedVersion::Any(), DeleteMode::kSoft)
                  .marker_version,
              3);
    const std::vector<EventData> revived = Batch(2, "r");
    const AppendResult r = MustAppend(stream, expected, revived);
    EXPECT_EQ(r.next_expected_version, 5);
    const std::vector<RecordedEvent> read = Stream(stream);
    EXPECT_THAT(Versions(read), ElementsAre(4, 5));
    EXPECT_EQ(Ids(read), Ids(revived));
    EXPECT_EQ(Version(stream), 5);
    const StreamInfo info = Info(stream);
    EXPECT_EQ(info.state, StreamStatus::kLive);
    EXPECT_EQ(info.version, 5);
    EXPECT_EQ(info.last_version, 5);

    // The marker stays in the log between the old and the new events.
    ReadAllFilter filter;
    filter.stream_prefix = stream;
    const std::vector<RecordedEvent> all = All(filter);
    EXPECT_THAT(Types(all),
                ElementsAre(kDeletedType, kPlacedType, kPlacedType));
    EXPECT_THAT(Versions(all), ElementsAre(3, 4, 5));

    EXPECT_EQ(MustAppend(stream, ExpectedVersion::Exactly(5), Batch(1))
                  .next_expected_version,
              6);
  }
}

// A retried command that read the stream before its deletion cannot write
// at an old version, nor claim the stream exists.
TEST_P(StreamLifecycleConformanceTest, SoftDeletedStreamRefusesOldVersions) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(3));
  MustDelete("s", ExpectedVersion::Exactly(3), DeleteMode::kSoft);
  const Position head = Head();
  for (ExpectedVersion expected :
       {ExpectedVersion::Exactly(3), ExpectedVersion::Exactly(4),
        ExpectedVersion::StreamExists()}) {
    SCOPED_TRACE(::testing::PrintToString(expected));
    const std::vector<EventData> events = Batch(1, "late");
    absl::StatusOr<AppendResult> r = store().Append("s", expected, events);
    ExpectWrongVersion(r.status(), "s", expected, 0);
    EXPECT_FALSE(Exists(events[0].id));
  }
  EXPECT_EQ(Head(), head);
  EXPECT_EQ(Version("s"), 0);
  EXPECT_EQ(Info("s").state, StreamStatus::kSoftDeleted);
}

TEST_P(StreamLifecycleConformanceTest, SoftDeleteOfADeletedStreamIsNotFound) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(2));
  MustDelete("s", ExpectedVersion::Any(), DeleteMode::kSoft);
  const Position head = Head();
  EXPECT_THAT(
      store().DeleteStream("s", ExpectedVersion::Any(), DeleteMode::kSoft),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("s")));
  EXPECT_EQ(Head(), head);
}

TEST_P(StreamLifecycleConformanceTest, DeleteOfAnAbsentStreamIsNotFound) {
  MustAppend("other", ExpectedVersion::NoStream(), Batch(1));
  const Position head = Head();
  for (DeleteMode mode : {DeleteMode::kSoft, DeleteMode::kHard}) {
    for (ExpectedVersion expected :
         {ExpectedVersion::Any(), ExpectedVersion::NoStream()}) {
      EXPECT_THAT(store().DeleteStream("absent", expected, mode),
                  StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent")));
    }
  }
  EXPECT_EQ(Head(), head);
  const StreamInfo info = Info("absent");
  EXPECT_EQ(info.stream, "absent");
  EXPECT_EQ(info.state, StreamStatus::kLive);
  EXPECT_EQ(info.version, 0);
  EXPECT_EQ(info.last_version, 0);
  EXPECT_EQ(info.metadata, StreamMetadata());
  EXPECT_EQ(info.deleted_at, std::nullopt);
  // Nothing was recorded: the stream can still be created.
  EXPECT_EQ(MustAppend("absent", ExpectedVersion::NoStream(), Batch(1))
                .next_expected_version,
            1);
}

TEST_P(StreamLifecycleConformanceTest, DeleteWithAWrongExpectedVersionAborts) {
  const std::vector<EventData> events = Batch(3);
  MustAppend("s", ExpectedVersion::NoStream(), events);
  const Position head = Head();
  for (DeleteMode mode : {DeleteMode::kSoft, DeleteMode::kHard}) {
    for (ExpectedVersion expected :
         {ExpectedVersion::Exactly(2), ExpectedVersion::Exactly(4),
          ExpectedVersion::NoStream()}) {
      SCOPED_TRACE(::testing::PrintToString(expected));
      ExpectWrongVersion(store().DeleteStream("s", expected, mode).status(),
                         "s", expected, 3);
    }
  }
  EXPECT_EQ(Head(), head);
  EXPECT_EQ(Ids(Stream("s")), Ids(events));
  EXPECT_EQ(Info("s").state, StreamStatus::kLive);
  // StreamExists matches an existing stream.
  EXPECT_EQ(MustDelete("s", ExpectedVersion::StreamExists(), DeleteMode::kSoft)
                .marker_version,
            4);
}

// --- hard delete
// ---------------------------------------------------------------

TEST_P(StreamLifecycleConformanceTest, HardDeleteRefusesEveryLaterWrite) {
  MustAppend("gone", ExpectedVersion::NoStream(), Batch(3));
  const DeleteResult d =
      MustDelete("gone", ExpectedVersion::Exactly(3), DeleteMode::kHard);
  EXPECT_EQ(d.marker_version, 4);
  const Position head = Head();
  EXPECT_EQ(head, d.position);

  for (ExpectedVersion expected :
       {ExpectedVersion::Any(), ExpectedVersion::NoStream(),
        ExpectedVersion::Exactly(0), ExpectedVersion::Exactly(4)}) {
    SCOPED_TRACE(::testing::PrintToString(expected));
    ExpectHardDeleted(store().Append("gone", expected, Batch(1)).status(),
                      "gone");
  }
  StreamMetadata metadata;
  metadata.max_count = 5;
  ExpectHardDeleted(store().SetStreamMetadata("gone", metadata), "gone");
  for (DeleteMode mode : {DeleteMode::kSoft, DeleteMode::kHard}) {
    ExpectHardDeleted(
        store().DeleteStream("gone", ExpectedVersion::Any(), mode).status(),
        "gone");
  }
  EXPECT_EQ(Head(), head);

  // AppendEach: the append to the deleted stream fails alone.
  const std::vector<EventData> refused = Batch(1, "x");
  const std::vector<EventData> other = Batch(1, "y");
  const std::vector<AppendRequest> requests = {
      {"gone", ExpectedVersion::Any(), refused, {}},
      {"other", ExpectedVersion::NoStream(), other, {}}};
  ASSERT_OK_AND_ASSIGN(auto results, store().AppendEach(requests));
  ASSERT_THAT(results, SizeIs(2));
  ExpectHardDeleted(results[0].status(), "gone");
  EXPECT_OK(results[1]);
  EXPECT_FALSE(Exists(refused[0].id));
  EXPECT_TRUE(Exists(other[0].id));

  EXPECT_THAT(Stream("gone"), IsEmpty());
  EXPECT_EQ(Version("gone"), 0);
  const StreamInfo info = Info("gone");
  EXPECT_EQ(info.state, StreamStatus::kHardDeleted);
  EXPECT_EQ(info.version, 0);
  EXPECT_EQ(info.last_version, 4);
  EXPECT_TRUE(info.deleted_at.has_value());
  EXPECT_EQ(StreamStatusName(info.state), "hard-deleted");

  const std::vector<RecordedEvent> all = All();
  ASSERT_THAT(all, SizeIs(2));
  ExpectMarker(all[0], "gone", /*hard=*/true, 3);
  EXPECT_EQ(all[0].version, 4);
  EXPECT_EQ(all[0].position, d.position);
  EXPECT_EQ(all[1].id, other[0].id);
}

TEST_P(StreamLifecycleConformanceTest, HardDeleteOfASoftDeletedStream) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(3));
  MustDelete("s", ExpectedVersion::Exactly(3), DeleteMode::kSoft);
  // It reads as absent: version 0.
  ExpectWrongVersion(
      store()
          .DeleteStream("s", ExpectedVersion::Exactly(3), DeleteMode::kHard)
          .status(),
      "s", ExpectedVersion::Exactly(3), 0);
  const DeleteResult hard =
      MustDelete("s", ExpectedVersion::Exactly(0), DeleteMode::kHard);
  EXPECT_EQ(hard.marker_version, 5);
  EXPECT_EQ(Info("s").state, StreamStatus::kHardDeleted);
  ExpectHardDeleted(
      store().Append("s", ExpectedVersion::NoStream(), Batch(1)).status(), "s");
  ReadAllFilter filter;
  filter.event_types = {kDeletedType};
  const std::vector<RecordedEvent> markers = All(filter);
  ASSERT_THAT(markers, SizeIs(2));
  ExpectMarker(markers[0], "s", false, 3);
  ExpectMarker(markers[1], "s", true, std::nullopt);
  EXPECT_THAT(Versions(markers), ElementsAre(4, 5));
}

TEST_P(StreamLifecycleConformanceTest, DeleteRemovesTheStreamsSnapshots) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(3));
  MustAppend("t", ExpectedVersion::NoStream(), Batch(3));
  for (const char* stream : {"s", "t"}) {
    for (int32_t schema : {1, 2}) {
      Snapshot snapshot;
      snapshot.stream = stream;
      snapshot.version = 3;
      snapshot.type = "eventstore.test.v1.State";
      snapshot.state = "state";
      snapshot.schema_version = schema;
      snapshot.taken_at = absl::Now();
      ASSERT_OK(store().snapshots().Save(snapshot));
    }
  }
  EXPECT_EQ(MustDelete("s", ExpectedVersion::Any(), DeleteMode::kSoft)
                .snapshots_removed,
            2);
  for (int32_t schema : {1, 2}) {
    ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> s,
                         store().snapshots().Load("s", schema));
    EXPECT_FALSE(s.has_value());
    ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> t,
                         store().snapshots().Load("t", schema));
    EXPECT_TRUE(t.has_value());
  }
  EXPECT_EQ(MustDelete("t", ExpectedVersion::Any(), DeleteMode::kHard)
                .snapshots_removed,
            2);
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> t,
                       store().snapshots().Load("t", 1));
  EXPECT_FALSE(t.has_value());
}

// --- what appends may not do
// ---------------------------------------------------

TEST_P(StreamLifecycleConformanceTest, ReservedTypeIsRefusedOnAppend) {
  v1::StreamDeleted forged;
  forged.set_stream("s");
  const std::vector<EventData> events = {Placed("ok"), EventData::From(forged)};
  ASSERT_EQ(events[1].type, kDeletedType);
  const Position head = Head();
  EXPECT_THAT(
      store().Append("s", ExpectedVersion::Any(), events),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reserved")));
  const std::vector<AppendRequest> requests = {
      {"s", ExpectedVersion::Any(), events, {}}};
  ASSERT_OK_AND_ASSIGN(auto results, store().AppendEach(requests));
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_THAT(results[0], StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Head(), head);
  EXPECT_FALSE(Exists(events[0].id));
  EXPECT_EQ(Version("s"), 0);
}

// --- metadata
// ------------------------------------------------------------------

TEST_P(StreamLifecycleConformanceTest, MetadataOutOfRangeIsInvalidArgument) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(2));
  struct Case {
    std::string field;
    StreamMetadata metadata;
  };
  std::vector<Case> cases;
  for (int64_t count : {0, -1}) {
    Case c{"max_count", {}};
    c.metadata.max_count = count;
    cases.push_back(c);
  }
  for (absl::Duration age : {absl::ZeroDuration(), absl::Seconds(-1),
                             absl::InfiniteDuration(), absl::Nanoseconds(1)}) {
    Case c{"max_age", {}};
    c.metadata.max_age = age;
    cases.push_back(c);
  }
  {
    Case c{"truncate_before", {}};
    c.metadata.truncate_before = -1;
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    EXPECT_THAT(
        store().SetStreamMetadata("s", c.metadata),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)));
  }
  const StreamInfo info = Info("s");
  EXPECT_EQ(info.metadata, StreamMetadata());
  EXPECT_THAT(Stream("s"), SizeIs(2));
  EXPECT_THAT(store().SetStreamMetadata("", StreamMetadata()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      store().DeleteStream("", ExpectedVersion::Any(), DeleteMode::kSoft),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(StreamLifecycleConformanceTest, MetadataRoundTripsAndCanBeCleared) {
  StreamMetadata metadata;
  metadata.max_count = 7;
  metadata.max_age = absl::Hours(24 * 90);
  metadata.truncate_before = 2;
  // A stream with no events yet may have metadata.
  MustSetMetadata("later", metadata);
  StreamInfo info = Info("later");
  EXPECT_EQ(info.metadata, metadata);
  EXPECT_EQ(info.state, StreamStatus::kLive);
  EXPECT_EQ(info.version, 0);
  EXPECT_EQ(MustAppend("later", ExpectedVersion::NoStream(), Batch(3))
                .next_expected_version,
            3);
  EXPECT_THAT(Versions(Stream("later")), ElementsAre(2, 3));
  MustSetMetadata("later", StreamMetadata());
  info = Info("later");
  EXPECT_EQ(info.metadata, StreamMetadata());
  EXPECT_EQ(info.version, 3);
  EXPECT_EQ(info.last_version, 3);
  EXPECT_THAT(Versions(Stream("later")), ElementsAre(1, 2, 3));
}

TEST_P(StreamLifecycleConformanceTest, MetadataCannotBringBackDeletedEvents) {
  MustAppend("gone", ExpectedVersion::NoStream(), Batch(5));
  MustDelete("gone", ExpectedVersion::Exactly(5), DeleteMode::kSoft);
  // Marker at 6: everything below 7 stays hidden, whatever the metadata.
  MustSetMetadata("gone", StreamMetadata());
  EXPECT_EQ(Info("gone").metadata.truncate_before, 7);
  StreamMetadata lower;
  lower.truncate_before = 1;
  lower.max_count = 10;
  MustSetMetadata("gone", lower);
  StreamInfo info = Info("gone");
  EXPECT_EQ(info.metadata.truncate_before, 7);
  EXPECT_EQ(info.metadata.max_count, 10);
  EXPECT_EQ(MustAppend("gone", ExpectedVersion::NoStream(), Batch(1))
                .next_expected_version,
            7);
  EXPECT_THAT(Versions(Stream("gone")), ElementsAre(7));
  // Raising it still works.
  StreamMetadata higher;
  higher.truncate_before = 8;
  MustSetMetadata("gone", higher);
  EXPECT_THAT(Versions(Stream("gone")), IsEmpty());
}

// --- retention
// -----------------------------------------------------------------

TEST_P(StreamLifecycleConformanceTest, MaxCountKeepsTheNewestEvents) {
  const std::vector<EventData> events = Batch(5, "c");
  MustAppend("capped", ExpectedVersion::NoStream(), events);
  const std::vector<EventData> other = Batch(2, "p");
  MustAppend("plain", ExpectedVersion::NoStream(), other);
  StreamMetadata metadata;
  metadata.max_count = 2;
  MustSetMetadata("capped", metadata);

  EXPECT_THAT(Versions(Stream("capped")), ElementsAre(4, 5));
  ReadStreamOptions from_one;
  from_one.from_version = 1;
  from_one.max_count = 1;
  EXPECT_THAT(Versions(Stream("capped", from_one)), ElementsAre(4));
  ReadStreamOptions backward;
  backward.direction = Direction::kBackward;
  EXPECT_THAT(Versions(Stream("capped", backward)), ElementsAre(5, 4));
  backward.from_version = 3;
  EXPECT_THAT(Stream("capped", backward), IsEmpty());
  EXPECT_EQ(Version("capped"), 5);
  EXPECT_EQ(Info("capped").version, 5);

  const std::vector<RecordedEvent> all = All();
  EXPECT_THAT(Versions(Of(all, "capped")), ElementsAre(4, 5));
  EXPECT_EQ(Ids(Of(all, "plain")), Ids(other));

  MustAppend("capped", ExpectedVersion::Exactly(5), Batch(1));
  EXPECT_THAT(Versions(Stream("capped")), ElementsAre(5, 6));
  EXPECT_THAT(Versions(Of(All(), "capped")), ElementsAre(5, 6));
}

TEST_P(StreamLifecycleConformanceTest, TruncateBeforeHidesOlderVersions) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(5));
  StreamMetadata metadata;
  metadata.truncate_before = 3;
  MustSetMetadata("s", metadata);
  EXPECT_THAT(Versions(Stream("s")), ElementsAre(3, 4, 5));
  EXPECT_THAT(Versions(Of(All(), "s")), ElementsAre(3, 4, 5));

  // Beyond the last version: nothing visible, the version unchanged.
  metadata.truncate_before = 7;
  MustSetMetadata("s", metadata);
  EXPECT_THAT(Stream("s"), IsEmpty());
  EXPECT_THAT(Of(All(), "s"), IsEmpty());
  EXPECT_EQ(Version("s"), 5);
  EXPECT_EQ(Info("s").state, StreamStatus::kLive);
  EXPECT_EQ(MustAppend("s", ExpectedVersion::Exactly(5), Batch(2))
                .next_expected_version,
            7);
  EXPECT_THAT(Versions(Stream("s")), ElementsAre(7));
}

// Reads measure max_age from the real clock: the events are hidden once it
// has passed, and an event just appended is visible.
TEST_P(StreamLifecycleConformanceTest, MaxAgeHidesOldEventsOnRead) {
  constexpr absl::Duration kMaxAge = absl::Seconds(3);
  const std::vector<EventData> old_events = Batch(3, "old");
  MustAppend("aged", ExpectedVersion::NoStream(), old_events);
  MustAppend("plain", ExpectedVersion::NoStream(), Batch(1));
  StreamMetadata metadata;
  metadata.max_age = kMaxAge;
  MustSetMetadata("aged", metadata);

  const absl::Time deadline = absl::Now() + kMaxAge + absl::Seconds(30);
  while (!Stream("aged").empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_THAT(Stream("aged"), IsEmpty()) << "still visible after the deadline";
  EXPECT_EQ(Version("aged"), 3);
  const std::vector<RecordedEvent> all = All();
  EXPECT_THAT(Of(all, "aged"), IsEmpty());
  EXPECT_THAT(Of(all, "plain"), SizeIs(1));
  for (const EventData& e : old_events) EXPECT_TRUE(Exists(e.id));

  const std::vector<EventData> fresh = Batch(1, "fresh");
  MustAppend("aged", ExpectedVersion::Exactly(3), fresh);
  EXPECT_EQ(Ids(Stream("aged")), Ids(fresh));
  EXPECT_EQ(Ids(Of(All(), "aged")), Ids(fresh));
}

// Scavenge measures max_age from options.now.
TEST_P(StreamLifecycleConformanceTest, ScavengeMeasuresMaxAgeFromNow) {
  const std::vector<EventData> events = Batch(4);
  MustAppend("aged", ExpectedVersion::NoStream(), events);
  StreamMetadata metadata;
  metadata.max_age = absl::Hours(1);
  MustSetMetadata("aged", metadata);
  EXPECT_THAT(Stream("aged"), SizeIs(4));

  ScavengeOptions options;
  options.now = absl::Now();
  EXPECT_EQ(MustScavenge(options).events_removed, 0);
  EXPECT_THAT(Stream("aged"), SizeIs(4));

  options.now = absl::Now() + absl::Hours(2);
  const ScavengeResult result = MustScavenge(options);
  EXPECT_EQ(result.events_removed, 4);
  EXPECT_EQ(result.streams_scavenged, 1);
  EXPECT_TRUE(result.complete);
  for (const EventData& e : events) EXPECT_FALSE(Exists(e.id));
  EXPECT_THAT(Stream("aged"), IsEmpty());
  // The version never goes back.
  EXPECT_EQ(Version("aged"), 4);
  EXPECT_EQ(Info("aged").last_version, 4);
  EXPECT_EQ(MustAppend("aged", ExpectedVersion::Exactly(4), Batch(1))
                .next_expected_version,
            5);
  EXPECT_THAT(Versions(Stream("aged")), ElementsAre(5));
}

// --- ReadAll
// -------------------------------------------------------------------

TEST_P(StreamLifecycleConformanceTest, ReadAllHidesHiddenEventsNotMarkers) {
  // order-1 (tenant a): soft-deleted; order-2 (tenant b): max_count 1;
  // invoice-1 (tenant a): truncate_before 2.
  MustAppend("order-1", ExpectedVersion::NoStream(),
             {Placed("1", Tenant("a")), Shipped("1", Tenant("a"))});
  MustAppend("order-2", ExpectedVersion::NoStream(),
             {Placed("2", Tenant("b")), Shipped("2", Tenant("b"))});
  MustAppend("invoice-1", ExpectedVersion::NoStream(),
             {Placed("i", Tenant("a")), Shipped("i", Tenant("a"))});
  MustDelete("order-1", ExpectedVersion::Exactly(2), DeleteMode::kSoft);
  StreamMetadata capped;
  capped.max_count = 1;
  MustSetMetadata("order-2", capped);
  StreamMetadata truncated;
  truncated.truncate_before = 2;
  MustSetMetadata("invoice-1", truncated);

  struct Expect {
    std::string name;
    ReadAllFilter filter;
    std::vector<std::pair<std::string, std::string>> events;  // stream, type
  };
  std::vector<Expect> cases;
  cases.push_back({"none",
                   {},
                   {{"order-2", kShippedType},
                    {"invoice-1", kShippedType},
                    {"order-1", kDeletedType}}});
  cases.push_back({"prefix order-",
                   {"order-", {}, ""},
                   {{"order-2", kShippedType}, {"order-1", kDeletedType}}});
  cases.push_back(
      {"prefix invoice-", {"invoice-", {}, ""}, {{"invoice-1", kShippedType}}});
  cases.push_back({"type placed", {"", {kPlacedType}, ""}, {}});
  cases.push_back({"type shipped + deleted",
                   {"", {kShippedType, kDeletedType}, ""},
                   {{"order-2", kShippedType},
                    {"invoice-1", kShippedType},
                    {"order-1", kDeletedType}}});
  cases.push_back(
      {"type deleted", {"", {kDeletedType}, ""}, {{"order-1", kDeletedType}}});
  // The marker carries the tenant of the stream's last event.
  cases.push_back({"tenant a",
                   {"", {}, "a"},
                   {{"invoice-1", kShippedType}, {"order-1", kDeletedType}}});
  cases.push_back({"tenant b", {"", {}, "b"}, {{"order-2", kShippedType}}});
  cases.push_back({"order- and tenant a",
                   {"order-", {kDeletedType}, "a"},
                   {{"order-1", kDeletedType}}});
  for (const Expect& c : cases) {
    for (int64_t page_size : {1, 2, 1000}) {
      SCOPED_TRACE(absl::StrCat(c.name, ", pages of ", page_size));
      std::vector<std::pair<std::string, std::string>> got;
      for (const RecordedEvent& e : All(c.filter, page_size)) {
        got.emplace_back(e.stream, e.type);
      }
      EXPECT_THAT(got, ElementsAreArray(c.events));
    }
  }
}

// A reader that resumes from the position of an event that is now hidden
// (or removed) goes on with the next visible event.
TEST_P(StreamLifecycleConformanceTest, ReadAllResumesInsideAHiddenRange) {
  MustAppend("before", ExpectedVersion::NoStream(), Batch(1));
  std::vector<Position> positions;
  for (int i = 0; i < 5; ++i) {
    positions.push_back(
        MustAppend("capped", ExpectedVersion::Any(), Batch(1)).last_position);
  }
  const std::vector<EventData> after = Batch(1, "after");
  MustAppend("after", ExpectedVersion::NoStream(), after);
  StreamMetadata metadata;
  metadata.max_count = 1;
  MustSetMetadata("capped", metadata);
  for (bool scavenged : {false, true}) {
    if (scavenged) {
      EXPECT_EQ(MustScavenge().events_removed, 4);
    }
    for (int i = 0; i < 4; ++i) {
      SCOPED_TRACE(absl::StrCat("from capped version ", i + 1,
                                scavenged ? ", scavenged" : ""));
      ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> rest,
                           ReadAllEvents(store(), {}, 2, positions[i]));
      ASSERT_THAT(rest, SizeIs(2));
      EXPECT_EQ(rest[0].stream, "capped");
      EXPECT_EQ(rest[0].version, 5);
      EXPECT_EQ(rest[1].id, after[0].id);
    }
  }
}

// --- GetStreamInfo
// ----------------------------------------------------------------

TEST_P(StreamLifecycleConformanceTest, StreamInfoFollowsTheLifecycle) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(4));
  StreamInfo info = Info("s");
  EXPECT_EQ(info.stream, "s");
  EXPECT_EQ(info.state, StreamStatus::kLive);
  EXPECT_EQ(info.version, 4);
  EXPECT_EQ(info.last_version, 4);
  EXPECT_EQ(info.metadata, StreamMetadata());
  EXPECT_FALSE(info.deleted_at.has_value());

  StreamMetadata metadata;
  metadata.max_count = 2;
  MustSetMetadata("s", metadata);
  info = Info("s");
  EXPECT_EQ(info.metadata, metadata);
  EXPECT_EQ(info.version, 4);

  MustDelete("s", ExpectedVersion::Exactly(4), DeleteMode::kSoft);
  info = Info("s");
  EXPECT_EQ(info.state, StreamStatus::kSoftDeleted);
  EXPECT_EQ(StreamStatusName(info.state), "soft-deleted");
  EXPECT_EQ(info.version, 0);
  EXPECT_EQ(info.last_version, 5);
  EXPECT_EQ(info.metadata.max_count, std::optional<int64_t>(2));
  EXPECT_EQ(info.metadata.truncate_before, std::optional<int64_t>(6));
  EXPECT_TRUE(info.deleted_at.has_value());

  MustAppend("s", ExpectedVersion::NoStream(), Batch(1));
  info = Info("s");
  EXPECT_EQ(info.state, StreamStatus::kLive);
  EXPECT_EQ(StreamStatusName(info.state), "live");
  EXPECT_EQ(info.version, 6);
  EXPECT_EQ(info.last_version, 6);
  EXPECT_EQ(info.metadata.truncate_before, std::optional<int64_t>(6));
}

// --- Scavenge
// ------------------------------------------------------------------

TEST_P(StreamLifecycleConformanceTest, ScavengeRemovesExactlyTheHiddenRows) {
  std::vector<Uuid> removed;
  auto append = [&](const std::string& stream, int n, int hidden) {
    const std::vector<EventData> events = Batch(n, stream);
    MustAppend(stream, ExpectedVersion::NoStream(), events);
    for (int i = 0; i < hidden; ++i) removed.push_back(events[i].id);
  };
  append("keep", 5, 0);
  append("capped", 10, 7);
  append("truncated", 6, 3);
  append("soft", 4, 4);
  append("hard", 3, 3);
  StreamMetadata capped;
  capped.max_count = 3;
  MustSetMetadata("capped", capped);
  StreamMetadata truncated;
  truncated.truncate_before = 4;
  MustSetMetadata("truncated", truncated);
  // Metadata that hides nothing.
  StreamMetadata roomy;
  roomy.max_count = 100;
  MustSetMetadata("keep", roomy);
  MustDelete("soft", ExpectedVersion::Exactly(4), DeleteMode::kSoft);
  MustDelete("hard", ExpectedVersion::Exactly(3), DeleteMode::kHard);
  const std::vector<RecordedEvent> visible = All();
  ASSERT_THAT(visible, SizeIs(5 + 3 + 3 + 2));

  const ScavengeResult result = MustScavenge();
  EXPECT_EQ(result.events_removed, 17);
  EXPECT_EQ(result.streams_scavenged, 4);
  EXPECT_GE(result.streams_examined, 4);
  EXPECT_GE(result.batches, 1);
  EXPECT_TRUE(result.complete);
  EXPECT_FALSE(result.compacted);

  for (const Uuid& id : removed) EXPECT_FALSE(Exists(id)) << id.ToString();
  for (const RecordedEvent& e : visible) EXPECT_TRUE(Exists(e.id));
  const std::vector<RecordedEvent> after = All();
  EXPECT_EQ(Ids(after), Ids(visible));
  for (size_t i = 0; i < after.size() && i < visible.size(); ++i) {
    EXPECT_EQ(after[i].position, visible[i].position);
  }
  EXPECT_EQ(Version("keep"), 5);
  EXPECT_EQ(Version("capped"), 10);
  EXPECT_EQ(Version("truncated"), 6);
  EXPECT_EQ(Version("soft"), 0);
  EXPECT_EQ(Info("soft").last_version, 5);
  EXPECT_EQ(Info("hard").last_version, 4);

  // Idempotent.
  const ScavengeResult again = MustScavenge();
  EXPECT_EQ(again.events_removed, 0);
  EXPECT_EQ(again.streams_scavenged, 0);
  EXPECT_TRUE(again.complete);
  EXPECT_EQ(Ids(All()), Ids(visible));

  // Versions go on.
  EXPECT_EQ(MustAppend("capped", ExpectedVersion::Exactly(10), Batch(1))
                .next_expected_version,
            11);
  EXPECT_EQ(MustAppend("soft", ExpectedVersion::NoStream(), Batch(1))
                .next_expected_version,
            6);
  ExpectHardDeleted(
      store().Append("hard", ExpectedVersion::Any(), Batch(1)).status(),
      "hard");
}

TEST_P(StreamLifecycleConformanceTest, ScavengeNeverRemovesMarkers) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(3));
  MustDelete("s", ExpectedVersion::Exactly(3), DeleteMode::kSoft);  // 4
  MustAppend("s", ExpectedVersion::NoStream(), Batch(1));           // 5
  MustDelete("s", ExpectedVersion::Exactly(5), DeleteMode::kSoft);  // 6
  const ScavengeResult result = MustScavenge();
  EXPECT_EQ(result.events_removed, 4);
  const std::vector<RecordedEvent> all = All();
  EXPECT_THAT(Types(all), ElementsAre(kDeletedType, kDeletedType));
  EXPECT_THAT(Versions(all), ElementsAre(4, 6));
  EXPECT_EQ(MustAppend("s", ExpectedVersion::NoStream(), Batch(1))
                .next_expected_version,
            7);
  EXPECT_EQ(MustScavenge().events_removed, 0);
  EXPECT_THAT(Versions(All()), ElementsAre(4, 6, 7));
}

TEST_P(StreamLifecycleConformanceTest, VersionContinuesAfterAllRowsRemoved) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(5));
  StreamMetadata metadata;
  metadata.truncate_before = 100;
  MustSetMetadata("s", metadata);
  EXPECT_EQ(MustScavenge().events_removed, 5);
  EXPECT_EQ(Version("s"), 5);
  EXPECT_EQ(Info("s").last_version, 5);
  ExpectWrongVersion(
      store().Append("s", ExpectedVersion::NoStream(), Batch(1)).status(), "s",
      ExpectedVersion::NoStream(), 5);
  MustSetMetadata("s", StreamMetadata());
  const std::vector<EventData> next = Batch(1, "next");
  EXPECT_EQ(
      MustAppend("s", ExpectedVersion::Exactly(5), next).next_expected_version,
      6);
  const std::vector<RecordedEvent> read = Stream("s");
  EXPECT_THAT(Versions(read), ElementsAre(6));
  EXPECT_EQ(Ids(read), Ids(next));
}

TEST_P(StreamLifecycleConformanceTest, ScavengeResumesAfterMaxEvents) {
  MustAppend("capped", ExpectedVersion::NoStream(), Batch(30));
  StreamMetadata metadata;
  metadata.max_count = 5;
  MustSetMetadata("capped", metadata);

  ScavengeOptions options;
  options.batch_size = 10;
  options.max_events = 10;
  int64_t total = 0;
  int calls = 0;
  bool complete = false;
  while (!complete && calls < 10) {
    const ScavengeResult r = MustScavenge(options);
    ++calls;
    EXPECT_LE(r.events_removed, 20) << "call " << calls;
    if (!r.complete) {
      EXPECT_GE(r.events_removed, 10) << "call " << calls;
    }
    total += r.events_removed;
    complete = r.complete;
  }
  EXPECT_TRUE(complete);
  EXPECT_GE(calls, 2);
  EXPECT_EQ(total, 25);
  EXPECT_THAT(Versions(Stream("capped")), ElementsAreArray(Range(26, 30)));
  EXPECT_EQ(MustScavenge().events_removed, 0);
}

TEST_P(StreamLifecycleConformanceTest, ScavengeWorksInBatches) {
  MustAppend("capped", ExpectedVersion::NoStream(), Batch(30));
  MustAppend("other", ExpectedVersion::NoStream(), Batch(10));
  StreamMetadata metadata;
  metadata.max_count = 5;
  MustSetMetadata("capped", metadata);
  MustDelete("other", ExpectedVersion::Exactly(10), DeleteMode::kSoft);

  std::vector<ScavengeProgress> progress;
  ScavengeOptions options;
  options.batch_size = 7;
  options.progress = [&](const ScavengeProgress& p) { progress.push_back(p); };
  const ScavengeResult result = MustScavenge(options);
  EXPECT_EQ(result.events_removed, 35);
  EXPECT_EQ(result.streams_scavenged, 2);
  EXPECT_TRUE(result.complete);
  // 35 rows in batches of at most 7.
  EXPECT_GE(result.batches, 5);
  // After each batch, and once more at the end.
  EXPECT_EQ(static_cast<int64_t>(progress.size()), result.batches + 1);
  int64_t previous = 0;
  for (const ScavengeProgress& p : progress) {
    EXPECT_GE(p.events_removed, previous);
    EXPECT_LE(p.events_removed - previous, 7);
    EXPECT_LE(p.streams_done, p.streams_total);
    previous = p.events_removed;
  }
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back().events_removed, 35);
  EXPECT_EQ(progress.back().streams_done, progress.back().streams_total);

  for (int64_t bad : {0, -1, 100001}) {
    ScavengeOptions wrong;
    wrong.batch_size = bad;
    EXPECT_THAT(
        store().Scavenge(wrong),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("batch_size")));
  }
}

TEST_P(StreamLifecycleConformanceTest, ScavengeCanCompact) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(20));
  MustDelete("s", ExpectedVersion::Any(), DeleteMode::kHard);
  ScavengeOptions options;
  options.compact = true;
  const ScavengeResult result = MustScavenge(options);
  EXPECT_EQ(result.events_removed, 20);
  EXPECT_TRUE(result.compacted);
  EXPECT_THAT(Types(All()), ElementsAre(kDeletedType));
}

// --- idempotency and waiting
// ---------------------------------------------------

TEST_P(StreamLifecycleConformanceTest, RetryOfAnAppendOnAStreamWithMetadata) {
  StreamMetadata metadata;
  metadata.max_count = 2;
  MustSetMetadata("s", metadata);
  const std::vector<EventData> batch = Batch(3);
  const AppendResult first =
      MustAppend("s", ExpectedVersion::NoStream(), batch);
  ASSERT_OK_AND_ASSIGN(AppendResult retry,
                       store().Append("s", ExpectedVersion::NoStream(), batch));
  EXPECT_EQ(retry, first);
  EXPECT_TRUE(retry.idempotent_retry);
  EXPECT_EQ(Version("s"), 3);
  EXPECT_THAT(Versions(Stream("s")), ElementsAre(2, 3));
  // A retry after the stream moved on.
  MustAppend("s", ExpectedVersion::Exactly(3), Batch(1, "more"));
  ASSERT_OK_AND_ASSIGN(retry,
                       store().Append("s", ExpectedVersion::NoStream(), batch));
  EXPECT_EQ(retry, first);
  EXPECT_EQ(Version("s"), 4);
}

TEST_P(StreamLifecycleConformanceTest, ConcurrentDeleteWakesWaitForEvents) {
  MustAppend("s", ExpectedVersion::NoStream(), Batch(1));
  const Position head = Head();
  absl::StatusOr<DeleteResult> deleted = absl::UnknownError("not run");
  std::thread deleter([&] {
    absl::SleepFor(absl::Milliseconds(100));
    deleted = store().DeleteStream("s", ExpectedVersion::Exactly(1),
                                   DeleteMode::kSoft);
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<bool> woke = store().WaitForEvents(head, absl::Seconds(10));
  const absl::Duration elapsed = absl::Now() - start;
  deleter.join();
  ASSERT_OK(deleted);
  ASSERT_OK(woke);
  EXPECT_TRUE(*woke);
  EXPECT_LT(elapsed, kPrompt);
  ReadAllOptions options;
  options.from_position = head;
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store().ReadAll(options));
  ASSERT_THAT(page.events, SizeIs(1));
  EXPECT_EQ(page.events[0].type, kDeletedType);
  EXPECT_EQ(page.events[0].position, deleted->position);
}

// --- concurrency
// ---------------------------------------------------------------

// Scavenges a capped stream while writers append to it and to other
// streams, and a reader follows the log in small pages (so that it often
// resumes from a position inside a range being removed): nothing but the
// hidden rows is removed, and the reader sees every event that is still
// visible at the end exactly once, in order, and every event of the
// uncapped streams.
TEST_P(StreamLifecycleConformanceTest, ConcurrentAppendsDuringScavenge) {
  constexpr int kRetained = 600;
  constexpr int kMaxCount = 10;
  constexpr int kWriters = 2;
  constexpr int kAppendsEach = 40;
  for (int i = 0; i < kRetained; i += 100) {
    MustAppend("retained", ExpectedVersion::Any(), Batch(100, "r"));
  }
  StreamMetadata metadata;
  metadata.max_count = kMaxCount;
  MustSetMetadata("retained", metadata);

  std::atomic<bool> writing{true};
  std::atomic<bool> stop_reader{false};
  std::atomic<int> writers_done{0};
  // The writers start once the first scavenge has removed its first batch,
  // so that they surely run while it does.
  std::atomic<bool> scavenging{false};
  auto wait_for_scavenge = [&scavenging] {
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    while (!scavenging.load() && absl::Now() < give_up) {
      std::this_thread::yield();
    }
  };
  std::vector<std::vector<Uuid>> written(kWriters);
  std::vector<std::string> errors(kWriters + 2);
  std::vector<Uuid> retained_written;
  std::vector<RecordedEvent> seen;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      wait_for_scavenge();
      for (int i = 0; i < kAppendsEach; ++i) {
        const std::vector<EventData> events = {Tick(w, i)};
        absl::StatusOr<AppendResult> r = store().Append(
            absl::StrCat("plain-", w), ExpectedVersion::Any(), events);
        if (!r.ok()) {
          errors[w] = r.status().ToString();
          break;
        }
        written[w].push_back(events[0].id);
      }
      writers_done.fetch_add(1);
    });
  }
  threads.emplace_back([&] {
    wait_for_scavenge();
    while (writing.load() && retained_written.size() < 1500) {
      const std::vector<EventData> events = {Tick(99, 0)};
      absl::StatusOr<AppendResult> r =
          store().Append("retained", ExpectedVersion::Any(), events);
      if (!r.ok()) {
        errors[kWriters] = r.status().ToString();
        return;
      }
      retained_written.push_back(events[0].id);
    }
  });
  threads.emplace_back([&] {
    Position from = Position::Start();
    bool last_round = false;
    while (true) {
      ReadAllOptions options;
      options.from_position = from;
      options.max_count = 7;
      absl::StatusOr<ReadAllPage> page = store().ReadAll(options);
      if (!page.ok()) {
        errors[kWriters + 1] = page.status().ToString();
        return;
      }
      for (RecordedEvent& e : page->events) seen.push_back(std::move(e));
      from = page->next_position;
      if (page->end_of_log) {
        if (last_round) return;
        if (stop_reader.load()) last_round = true;
      }
    }
  });

  // Scavenges in small batches until the writers of the other streams are
  // done and a whole pass followed.
  ScavengeOptions options;
  options.batch_size = 5;
  options.progress = [&scavenging](const ScavengeProgress&) {
    scavenging.store(true);
  };
  int64_t removed = 0;
  int scavenges = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  bool finished = false;
  while (!finished && absl::Now() < deadline) {
    const bool writers_were_done = writers_done.load() == kWriters;
    const ScavengeResult r = MustScavenge(options);
    ++scavenges;
    removed += r.events_removed;
    finished = writers_were_done && r.complete;
  }
  EXPECT_TRUE(finished) << "still scavenging at the deadline";
  writing.store(false);
  for (int i = 0; i < kWriters + 1; ++i) threads[i].join();
  stop_reader.store(true);
  threads.back().join();
  EXPECT_THAT(errors, ::testing::Each(IsEmpty()));
  EXPECT_GE(removed, kRetained - kMaxCount);
  EXPECT_THAT(retained_written, ::testing::Not(IsEmpty()));

  // Nothing else removed.
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_EQ(Ids(Stream(absl::StrCat("plain-", w))), written[w]);
  }
  const int64_t last =
      kRetained + static_cast<int64_t>(retained_written.size());
  EXPECT_EQ(Version("retained"), last);
  const std::vector<RecordedEvent> retained = Stream("retained");
  EXPECT_THAT(Versions(retained),
              ElementsAreArray(Range(last - kMaxCount + 1, last)));

  // The reader: in order, each event once, every event still visible.
  for (size_t i = 1; i < seen.size(); ++i) {
    ASSERT_GT(seen[i].position, seen[i - 1].position) << "at " << i;
  }
  absl::flat_hash_set<Uuid> seen_ids;
  for (const RecordedEvent& e : seen) {
    EXPECT_TRUE(seen_ids.insert(e.id).second) << "seen twice: " << e.id;
  }
  const std::vector<RecordedEvent> final_log = All();
  for (const RecordedEvent& e : final_log) {
    EXPECT_TRUE(seen_ids.contains(e.id))
        << "missed " << e.stream << " version " << e.version;
  }
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_EQ(Ids(Of(seen, absl::StrCat("plain-", w))), written[w]);
  }
  // The retained stream's events, as the reader saw them, in version order.
  const std::vector<RecordedEvent> seen_retained = Of(seen, "retained");
  for (size_t i = 1; i < seen_retained.size(); ++i) {
    EXPECT_GT(seen_retained[i].version, seen_retained[i - 1].version);
  }
  RecordProperty("scavenges", scavenges);
  RecordProperty("retained_appends", static_cast<int>(retained_written.size()));
}

// Deletions and revivals of one stream race with appends to it and a
// scavenger: every append either fails with a wrong expected version or
// lands after the last marker it raced with; the stream's versions stay
// gapless and never go back.
TEST_P(StreamLifecycleConformanceTest, ConcurrentDeletesAndAppends) {
  constexpr int kRounds = 30;
  MustAppend("s", ExpectedVersion::NoStream(), Batch(1));
  std::vector<std::string> errors(3);
  std::vector<int64_t> appended_versions;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < kRounds * 3; ++i) {
      absl::StatusOr<AppendResult> r =
          store().Append("s", ExpectedVersion::Any(), {Tick(1, i)});
      if (!r.ok()) {
        errors[0] = r.status().ToString();
        return;
      }
      appended_versions.push_back(r->next_expected_version);
    }
  });
  std::thread deleter([&] {
    for (int i = 0; i < kRounds; ++i) {
      absl::StatusOr<DeleteResult> d =
          store().DeleteStream("s", ExpectedVersion::Any(), DeleteMode::kSoft);
      if (!d.ok() && d.status().code() != absl::StatusCode::kNotFound) {
        errors[1] = d.status().ToString();
        return;
      }
    }
  });
  std::thread scavenger([&] {
    while (!done.load()) {
      absl::StatusOr<ScavengeResult> r = store().Scavenge(ScavengeOptions());
      if (!r.ok()) {
        errors[2] = r.status().ToString();
        return;
      }
    }
  });
  writer.join();
  deleter.join();
  done.store(true);
  scavenger.join();
  EXPECT_THAT(errors, ::testing::Each(IsEmpty()));
  for (size_t i = 1; i < appended_versions.size(); ++i) {
    EXPECT_GT(appended_versions[i], appended_versions[i - 1]);
  }
  // Every version of the stream once: the events still stored and the
  // markers, in the log, strictly increasing.
  const std::vector<RecordedEvent> all = All();
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_GT(all[i].version, all[i - 1].version);
  }
  const StreamInfo info = Info("s");
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(info.last_version, all.back().version);
  MustScavenge();
  EXPECT_EQ(MustScavenge().events_removed, 0);
  EXPECT_EQ(Ids(All()), Ids(all));
  // Nothing hidden is left, and what is visible in ReadStream is the tail.
  const std::vector<RecordedEvent> read = Stream("s");
  if (info.state == StreamStatus::kLive) {
    ASSERT_FALSE(read.empty());
    EXPECT_EQ(read.back().version, info.last_version);
  } else {
    EXPECT_THAT(read, IsEmpty());
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, StreamLifecycleConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
