// The EventImporter contract (event_importer.h), run on every backend of
// AllTestBackends(): events copied from one store into another keep their
// ids, streams, versions, types, payloads, metadata and recorded_at, get new
// positions in the order given, and leave a position map behind; batches are
// atomic; the other tables are listed and written field for field.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_importer.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class EventImporterConformanceTest
    : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventStore>> source =
        GetParam().open(nullptr);
    ASSERT_OK(source);
    source_ = *std::move(source);
    absl::StatusOr<std::unique_ptr<EventStore>> target =
        GetParam().open(nullptr);
    ASSERT_OK(target);
    target_ = *std::move(target);
  }

  // Appends `n` events to `stream` of the source.
  void AppendToSource(const std::string& stream, int n) {
    std::vector<EventData> events;
    for (int i = 0; i < n; ++i) {
      test::v1::OrderPlaced placed;
      placed.set_order_id(absl::StrCat(stream, "/", i));
      v1::EventMetadata metadata;
      metadata.set_correlation_id(absl::StrCat("corr-", i));
      metadata.set_tenant_id(i % 2 == 0 ? "acme" : "");
      (*metadata.mutable_properties())["k"] = "v";
      events.push_back(EventData::From(placed, metadata));
    }
    ASSERT_OK(source_->Append(stream, ExpectedVersion::Any(), events));
  }

  std::vector<RecordedEvent> ReadAllOf(EventStore& store) {
    ReadAllOptions options;
    options.max_count = 100000;
    absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
    EXPECT_OK(page);
    return page.ok() ? page->events : std::vector<RecordedEvent>();
  }

  std::unique_ptr<EventStore> source_;
  std::unique_ptr<EventStore> target_;
};

TEST_P(EventImporterConformanceTest, StoreIdIsStableAndDiffersPerStore) {
  ASSERT_OK_AND_ASSIGN(std::string a, source_->importer().StoreId());
  ASSERT_OK_AND_ASSIGN(std::string again, source_->importer().StoreId());
  ASSERT_OK_AND_ASSIGN(std::string b, target_->importer().StoreId());
  EXPECT_THAT(a, SizeIs(36));
  EXPECT_EQ(a, again);
  EXPECT_NE(a, b);
}

TEST_P(EventImporterConformanceTest, ImportKeepsEverythingButPositions) {
  AppendToSource("order-1", 3);
  AppendToSource("order-2", 2);
  AppendToSource("order-1", 2);
  const std::vector<RecordedEvent> events = ReadAllOf(*source_);
  ASSERT_THAT(events, SizeIs(7));
  ASSERT_OK(target_->importer().ImportEvents("m1", "src", {events.data(), 4}));
  ASSERT_OK(target_->importer().ImportEvents(
      "m1", "src", {events.data() + 4, events.size() - 4}));

  const std::vector<RecordedEvent> copied = ReadAllOf(*target_);
  ASSERT_THAT(copied, SizeIs(7));
  for (size_t i = 0; i < events.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(copied[i].id, events[i].id);
    EXPECT_EQ(copied[i].stream, events[i].stream);
    EXPECT_EQ(copied[i].version, events[i].version);
    EXPECT_EQ(copied[i].type, events[i].type);
    EXPECT_EQ(copied[i].payload, events[i].payload);
    EXPECT_EQ(copied[i].metadata.SerializeAsString(),
              events[i].metadata.SerializeAsString());
    EXPECT_EQ(copied[i].recorded_at, events[i].recorded_at);
    if (i > 0) {
      EXPECT_GT(copied[i].position, copied[i - 1].position);
    }
  }
  // Tenant filters work on imported events.
  ReadAllOptions tenant;
  tenant.filter.tenant_id = "acme";
  ASSERT_OK_AND_ASSIGN(ReadAllPage acme, target_->ReadAll(tenant));
  EXPECT_THAT(acme.events, SizeIs(4));
  ASSERT_OK_AND_ASSIGN(int64_t v1, target_->StreamVersion("order-1"));
  EXPECT_EQ(v1, 5);

  ASSERT_OK_AND_ASSIGN(std::optional<MigrationState> state,
                       target_->importer().GetMigration("m1"));
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->events, 7);
  EXPECT_EQ(state->source, "src");
  EXPECT_EQ(state->last_source_position, events.back().position);
  ASSERT_OK_AND_ASSIGN(std::optional<MigrationState> none,
                       target_->importer().GetMigration("m2"));
  EXPECT_FALSE(none.has_value());

  // Every source position translates to its copy's; positions in between
  // to the copy of the event before.
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(Position p, target_->importer().TranslatePosition(
                                         "m1", events[i].position));
    EXPECT_EQ(p, copied[i].position);
  }
  ASSERT_OK_AND_ASSIGN(Position before, target_->importer().TranslatePosition(
                                            "m1", Position::Start()));
  EXPECT_TRUE(before.IsStart());
  ASSERT_OK_AND_ASSIGN(
      Position after,
      target_->importer().TranslatePosition(
          "m1",
          Position::FromParts(events.back().position.commit() + 1000, 0)));
  EXPECT_EQ(after, copied.back().position);
  ASSERT_OK_AND_ASSIGN(Position other, target_->importer().TranslatePosition(
                                           "m2", events.back().position));
  EXPECT_TRUE(other.IsStart());
}

// A store holding copies of one migration only (a replica) reads a stream
// at the source's positions: SQLite keeps them beside its events (schema
// version 5); PostgreSQL does not (kUnimplemented: callers map positions
// with SourcePositions). An event appended in the store itself is refused,
// and a store holding copies of two migrations cannot say.
TEST_P(EventImporterConformanceTest, ReadStreamAtSourcePositionsOfAReplica) {
  AppendToSource("order-1", 12);
  AppendToSource("order-2", 8);
  AppendToSource("order-1", 4);
  const std::vector<RecordedEvent> events = ReadAllOf(*source_);
  ASSERT_OK(target_->importer().ImportEvents("m1", "src", events));
  EventImporter& importer = target_->importer();
  absl::StatusOr<std::vector<RecordedEvent>> read =
      importer.ReadStreamAtSourcePositions("m1", "order-1",
                                           ReadStreamOptions());
  if (GetParam().name == "postgres") {
    EXPECT_THAT(read, StatusIs(absl::StatusCode::kUnimplemented));
    return;
  }
  ASSERT_OK(read);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> on_source,
                       source_->ReadStream("order-1"));
  ASSERT_THAT(*read, SizeIs(16));
  for (size_t i = 0; i < read->size(); ++i) {
    EXPECT_EQ((*read)[i].id, on_source[i].id);
    EXPECT_EQ((*read)[i].version, on_source[i].version);
    EXPECT_EQ((*read)[i].position, on_source[i].position) << i;
    EXPECT_EQ((*read)[i].payload, on_source[i].payload);
    EXPECT_FALSE((*read)[i].damaged());
  }
  // The options apply as to ReadStream: backward from version 10, 3 events.
  ReadStreamOptions backward;
  backward.direction = Direction::kBackward;
  backward.from_version = 10;
  backward.max_count = 3;
  ASSERT_OK_AND_ASSIGN(
      std::vector<RecordedEvent> last,
      importer.ReadStreamAtSourcePositions("m1", "order-1", backward));
  ASSERT_THAT(last, SizeIs(3));
  EXPECT_EQ(last[0].version, 10);
  EXPECT_EQ(last[0].position, on_source[9].position);
  EXPECT_EQ(last[2].position, on_source[7].position);
  // Bad options and names are refused as ReadStream refuses them.
  ReadStreamOptions negative;
  negative.max_count = -1;
  EXPECT_THAT(importer.ReadStreamAtSourcePositions("m1", "order-1", negative),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      importer.ReadStreamAtSourcePositions("m1", "", ReadStreamOptions()),
      StatusIs(absl::StatusCode::kInvalidArgument));
  // Another migration's id: the store holds no copies of it only.
  EXPECT_THAT(importer.ReadStreamAtSourcePositions("m2", "order-1",
                                                   ReadStreamOptions()),
              StatusIs(absl::StatusCode::kUnimplemented));
  // An event appended in the store itself is no copy.
  test::v1::OrderPlaced placed;
  placed.set_order_id("local");
  ASSERT_OK(target_->Append("order-1", ExpectedVersion::Any(),
                            {EventData::From(placed)}));
  EXPECT_THAT(
      importer.ReadStreamAtSourcePositions("m1", "order-1",
                                           ReadStreamOptions()),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a copy")));
  // Copies of a second migration: the store cannot say which positions
  // belong to which.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> other,
                       GetParam().open(nullptr));
  ASSERT_OK(other->Append("order-9", ExpectedVersion::Any(),
                          {EventData::From(placed)}));
  ASSERT_OK(target_->importer().ImportEvents("m2", "other", ReadAllOf(*other)));
  EXPECT_THAT(importer.ReadStreamAtSourcePositions("m1", "order-2",
                                                   ReadStreamOptions()),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST_P(EventImporterConformanceTest, SourcePositionsMapTargetPositionsBack) {
  AppendToSource("order-1", 12);
  AppendToSource("order-2", 8);
  AppendToSource("order-1", 4);
  const std::vector<RecordedEvent> events = ReadAllOf(*source_);
  ASSERT_THAT(events, SizeIs(24));
  // The target also holds an event of its own and the events of another
  // migration, between two batches of "m1".
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> other,
                       GetParam().open(nullptr));
  test::v1::OrderPlaced placed;
  placed.set_order_id("x");
  ASSERT_OK(other->Append("order-9", ExpectedVersion::Any(),
                          {EventData::From(placed), EventData::From(placed)}));
  const std::vector<RecordedEvent> others = ReadAllOf(*other);
  ASSERT_OK(target_->importer().ImportEvents("m1", "src", {events.data(), 10}));
  ASSERT_OK(target_->Append("local-1", ExpectedVersion::NoStream(),
                            {EventData::From(placed)}));
  ASSERT_OK(target_->importer().ImportEvents("m2", "other", others));
  ASSERT_OK(target_->importer().ImportEvents(
      "m1", "src", {events.data() + 10, events.size() - 10}));

  // What each of the target's positions maps back to under "m1".
  const std::vector<RecordedEvent> copied = ReadAllOf(*target_);
  ASSERT_THAT(copied, SizeIs(27));
  std::vector<Position> positions;
  std::vector<Position> expected;
  std::vector<Position> m1_copies;
  size_t next = 0;
  for (const RecordedEvent& e : copied) {
    positions.push_back(e.position);
    if (next < events.size() && e.id == events[next].id) {
      expected.push_back(events[next++].position);
      m1_copies.push_back(e.position);
    } else {
      expected.push_back(Position::Start());
    }
  }
  ASSERT_EQ(next, events.size());
  EventImporter& importer = target_->importer();
  // Every position, in order (a dense run).
  ASSERT_OK_AND_ASSIGN(std::vector<Position> all,
                       importer.SourcePositions("m1", positions));
  EXPECT_EQ(all, expected);
  // In reverse order, with a repeat.
  std::vector<Position> reversed(positions.rbegin(), positions.rend());
  reversed.push_back(positions[3]);
  std::vector<Position> reversed_expected(expected.rbegin(), expected.rend());
  reversed_expected.push_back(expected[3]);
  ASSERT_OK_AND_ASSIGN(std::vector<Position> backwards,
                       importer.SourcePositions("m1", reversed));
  EXPECT_EQ(backwards, reversed_expected);
  // Far apart (one lookup each), with positions that hold no event of the
  // migration: the start, past the head, another migration's event.
  const Position head = copied.back().position;
  const std::vector<Position> sparse = {
      m1_copies.back(), Position::Start(),
      Position::FromParts(head.commit() + 1000, head.prepare() + 1000),
      m1_copies.front(), copied[10].position};
  ASSERT_OK_AND_ASSIGN(std::vector<Position> mapped,
                       importer.SourcePositions("m1", sparse));
  EXPECT_EQ(mapped,
            (std::vector<Position>{events.back().position, Position::Start(),
                                   Position::Start(), events.front().position,
                                   expected[10]}));
  // The other migration's events map to their own source.
  ASSERT_OK_AND_ASSIGN(std::vector<Position> m2,
                       importer.SourcePositions("m2", positions));
  std::vector<Position> m2_found;
  for (const Position& p : m2) {
    if (!p.IsStart()) m2_found.push_back(p);
  }
  EXPECT_EQ(m2_found,
            (std::vector<Position>{others[0].position, others[1].position}));
  // An unknown migration, and no positions at all.
  ASSERT_OK_AND_ASSIGN(std::vector<Position> unknown,
                       importer.SourcePositions("m3", positions));
  EXPECT_EQ(unknown, std::vector<Position>(positions.size()));
  ASSERT_OK_AND_ASSIGN(std::vector<Position> none,
                       importer.SourcePositions("m1", {}));
  EXPECT_TRUE(none.empty());
}

// ListMigrations: every migration into the store, most recently updated
// first (what `eventstore info` shows of a replica or a migrate target).
TEST_P(EventImporterConformanceTest, ListMigrationsNewestFirst) {
  ASSERT_OK_AND_ASSIGN(std::vector<MigrationState> none,
                       target_->importer().ListMigrations());
  EXPECT_TRUE(none.empty());
  AppendToSource("order-1", 2);
  AppendToSource("order-2", 1);
  const std::vector<RecordedEvent> events = ReadAllOf(*source_);
  ASSERT_THAT(events, SizeIs(3));
  ASSERT_OK(
      target_->importer().ImportEvents("m1", "src-1", {events.data(), 2}));
  ASSERT_OK_AND_ASSIGN(std::optional<MigrationState> first,
                       target_->importer().GetMigration("m1"));
  ASSERT_TRUE(first.has_value());
  // The second import is stamped later (the stamps are microseconds).
  while (absl::Now() < first->updated_at + absl::Microseconds(2)) {
  }
  ASSERT_OK(
      target_->importer().ImportEvents("m2", "src-2", {events.data() + 2, 1}));
  ASSERT_OK_AND_ASSIGN(std::vector<MigrationState> listed,
                       target_->importer().ListMigrations());
  ASSERT_THAT(listed, SizeIs(2));
  for (const MigrationState& state : listed) {
    ASSERT_OK_AND_ASSIGN(std::optional<MigrationState> got,
                         target_->importer().GetMigration(state.migration_id));
    ASSERT_TRUE(got.has_value()) << state.migration_id;
    EXPECT_EQ(state.source, got->source);
    EXPECT_EQ(state.events, got->events);
    EXPECT_EQ(state.last_source_position, got->last_source_position);
    EXPECT_EQ(state.started_at, got->started_at);
    EXPECT_EQ(state.updated_at, got->updated_at);
  }
  EXPECT_GT(listed[0].updated_at, listed[1].updated_at);
  EXPECT_EQ(listed[0].migration_id, "m2");
  EXPECT_EQ(listed[0].events, 1);
  EXPECT_EQ(listed[1].migration_id, "m1");
  EXPECT_EQ(listed[1].source, "src-1");
  EXPECT_EQ(listed[1].last_source_position, events[1].position);
}

// A source leaves out what its deletions and retention hide (and what
// Scavenge removed): versions may skip, but never repeat or go back.
TEST_P(EventImporterConformanceTest, VersionsMaySkipButNeverGoBack) {
  AppendToSource("order-1", 4);
  std::vector<RecordedEvent> events = ReadAllOf(*source_);
  ASSERT_OK(target_->importer().ImportEvents("m1", "src", {events.data(), 1}));
  // Skips version 2.
  const std::vector<RecordedEvent> gap = {events[2]};
  ASSERT_OK(target_->importer().ImportEvents("m1", "src", gap));
  // Version 2 now comes after version 3 in the target: refused.
  const std::vector<RecordedEvent> back = {events[1]};
  EXPECT_THAT(
      target_->importer().ImportEvents("m1", "src", back),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("order-1")));
  // A batch whose second event repeats a version, or goes back.
  const std::vector<RecordedEvent> repeat = {events[3], events[3]};
  EXPECT_FALSE(target_->importer().ImportEvents("m1", "src", repeat).ok());
  EXPECT_THAT(ReadAllOf(*target_), SizeIs(2));
  ASSERT_OK_AND_ASSIGN(std::optional<MigrationState> state,
                       target_->importer().GetMigration("m1"));
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->events, 2);
  const std::vector<RecordedEvent> copied = ReadAllOf(*target_);
  EXPECT_EQ(copied[0].version, 1);
  EXPECT_EQ(copied[1].version, 3);
  EXPECT_FALSE(copied[1].damaged()) << copied[1].damage;
}

// Encrypted payloads and the store's own deletion markers are copied byte
// for byte (PrepareAppend's rules are for applications, not copies); a
// payload a reader decrypted or dropped is never written.
TEST_P(EventImporterConformanceTest,
       EncryptedEventsAndMarkersAreCopiedAsStored) {
  std::string ciphertext(48, '\0');
  for (size_t i = 0; i < ciphertext.size(); ++i) {
    ciphertext[i] = static_cast<char>((i * 37 + 11) & 0xff);
  }
  EventData sealed;
  sealed.type = "eventstore.test.v1.OrderPlaced";
  sealed.payload = ciphertext;
  sealed.metadata.set_subject_id("user-7");
  sealed.metadata.set_payload_encryption(
      std::string(kPayloadEncryptionXChaCha20));
  ASSERT_OK(
      source_->Append("customer-7", ExpectedVersion::NoStream(), {sealed}));
  std::vector<RecordedEvent> events = ReadAllOf(*source_);
  ASSERT_THAT(events, SizeIs(1));
  RecordedEvent marker;
  marker.id = Uuid::Generate();
  marker.stream = "customer-7";
  marker.version = 2;
  marker.type = std::string(kStreamDeletedType);
  marker.recorded_at = absl::FromUnixMicros(1700000000000000);
  marker.position = Position::FromParts(events[0].position.commit() + 1, 0);
  events.push_back(marker);

  std::vector<RecordedEvent> decrypted = events;
  decrypted[0].payload_state = PayloadState::kDecrypted;
  EXPECT_THAT(target_->importer().ImportEvents("m1", "src", decrypted),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(events[0].id.ToString())));
  std::vector<RecordedEvent> forgotten = events;
  forgotten[0].payload_state = PayloadState::kForgotten;
  forgotten[0].payload.clear();
  EXPECT_THAT(target_->importer().ImportEvents("m1", "src", forgotten),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ReadAllOf(*target_), SizeIs(0));

  ASSERT_OK(target_->importer().ImportEvents("m1", "src", events));
  const std::vector<RecordedEvent> copied = ReadAllOf(*target_);
  ASSERT_THAT(copied, SizeIs(2));
  EXPECT_EQ(copied[0].payload, ciphertext);
  EXPECT_EQ(copied[0].metadata.subject_id(), "user-7");
  EXPECT_EQ(copied[0].metadata.payload_encryption(),
            kPayloadEncryptionXChaCha20);
  EXPECT_TRUE(copied[0].sealed());
  EXPECT_EQ(copied[0].checksum, events[0].checksum);
  EXPECT_FALSE(copied[0].damaged()) << copied[0].damage;
  EXPECT_EQ(copied[1].type, kStreamDeletedType);
  EXPECT_EQ(copied[1].version, 2);
  EXPECT_FALSE(copied[1].damaged()) << copied[1].damage;
}

// Stream rows are listed in name order, a page at a time, and written as
// given; a held row moves only forward: a later change replaces it, an
// older one does not, a hard deletion is final and a floor never drops.
TEST_P(EventImporterConformanceTest, StreamRowsRoundTripAndNeverMoveBack) {
  EventImporter& importer = target_->importer();
  StreamRowRecord capped;
  capped.stream = "sensor-1";
  capped.metadata.max_count = 3;
  capped.metadata.max_age = absl::Hours(24);
  capped.updated_at = absl::FromUnixMicros(1700000000000000);
  StreamRowRecord soft;
  soft.stream = "order-1";
  soft.state = StreamStatus::kSoftDeleted;
  soft.metadata.truncate_before = 7;
  soft.version_floor = 6;
  soft.deleted_at = absl::FromUnixMicros(1700000001000000);
  soft.updated_at = absl::FromUnixMicros(1700000001000000);
  StreamRowRecord hard;
  hard.stream = "order-2";
  hard.state = StreamStatus::kHardDeleted;
  hard.version_floor = 4;
  hard.deleted_at = absl::FromUnixMicros(1700000002000000);
  hard.updated_at = absl::FromUnixMicros(1700000002000000);
  std::vector<StreamRowRecord> rows = {capped, soft, hard};
  ASSERT_OK_AND_ASSIGN(PutCounts counts, importer.PutStreamRows(rows));
  EXPECT_EQ(counts.added, 3);

  ASSERT_OK_AND_ASSIGN(std::vector<StreamRowRecord> first,
                       importer.ListStreamRows("", 2));
  ASSERT_THAT(first, SizeIs(2));
  EXPECT_EQ(first[0].stream, "order-1");
  EXPECT_EQ(first[1].stream, "order-2");
  ASSERT_OK_AND_ASSIGN(std::vector<StreamRowRecord> rest,
                       importer.ListStreamRows(first.back().stream, 2));
  ASSERT_THAT(rest, SizeIs(1));
  const StreamRowRecord& got_soft = first[0];
  EXPECT_EQ(got_soft.state, StreamStatus::kSoftDeleted);
  EXPECT_EQ(got_soft.metadata, soft.metadata);
  EXPECT_EQ(got_soft.version_floor, 6);
  EXPECT_EQ(got_soft.deleted_at, soft.deleted_at);
  EXPECT_EQ(got_soft.updated_at, soft.updated_at);
  EXPECT_EQ(first[1].state, StreamStatus::kHardDeleted);
  EXPECT_EQ(rest[0].stream, "sensor-1");
  EXPECT_EQ(rest[0].metadata, capped.metadata);
  EXPECT_FALSE(rest[0].deleted_at.has_value());

  // The same rows again: kept. A revival of order-1 (later, live, lower
  // floor given), an older change of sensor-1 and a live order-2: only
  // order-1 moves, and keeps its floor.
  ASSERT_OK_AND_ASSIGN(counts, importer.PutStreamRows(rows));
  EXPECT_EQ(counts.kept, 3);
  rows[1].state = StreamStatus::kLive;
  rows[1].version_floor = 2;
  rows[1].updated_at += absl::Seconds(5);
  rows[0].metadata.max_count = 10;
  rows[0].updated_at -= absl::Seconds(5);
  rows[2].state = StreamStatus::kLive;
  rows[2].updated_at += absl::Seconds(5);
  ASSERT_OK_AND_ASSIGN(counts, importer.PutStreamRows(rows));
  EXPECT_EQ(counts.updated, 1);
  EXPECT_EQ(counts.kept, 2);
  ASSERT_OK_AND_ASSIGN(std::vector<StreamRowRecord> now,
                       importer.ListStreamRows("", 10));
  ASSERT_THAT(now, SizeIs(3));
  EXPECT_EQ(now[0].state, StreamStatus::kLive);
  EXPECT_EQ(now[0].version_floor, 6);
  EXPECT_EQ(now[1].state, StreamStatus::kHardDeleted);
  EXPECT_EQ(now[2].metadata.max_count, 3);

  // Bad rows: refused, naming the row, nothing written.
  StreamRowRecord bad = capped;
  bad.stream = "sensor-2";
  bad.metadata.max_count = 0;
  std::vector<StreamRowRecord> with_bad = {rows[0], bad};
  EXPECT_THAT(
      importer.PutStreamRows(with_bad),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rows[1]")));
  bad.metadata.max_count = 3;
  bad.version_floor = -1;
  EXPECT_THAT(
      importer.PutStreamRows({&bad, 1}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version_floor")));
  ASSERT_OK_AND_ASSIGN(now, importer.ListStreamRows("", 10));
  EXPECT_THAT(now, SizeIs(3));
  ASSERT_OK_AND_ASSIGN(EventImporter::TableCounts tables,
                       importer.CountTables());
  EXPECT_EQ(tables.stream_rows, 3);
}

TEST_P(EventImporterConformanceTest, AnExistingIdFailsTheWholeBatch) {
  AppendToSource("order-1", 2);
  std::vector<RecordedEvent> events = ReadAllOf(*source_);
  // The same id under another stream.
  RecordedEvent clash = events[0];
  clash.stream = "order-9";
  clash.version = 1;
  clash.checksum.reset();  // a made-up event: its source sum would not hold
  ASSERT_OK(target_->importer().ImportEvents("m1", "src", {&clash, 1}));
  EXPECT_THAT(target_->importer().ImportEvents("m1", "src", events),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(ReadAllOf(*target_), SizeIs(1));
}

TEST_P(EventImporterConformanceTest, CountsEventsUpToAPosition) {
  AppendToSource("order-1", 5);
  const std::vector<RecordedEvent> events = ReadAllOf(*source_);
  ASSERT_OK_AND_ASSIGN(int64_t all,
                       source_->importer().CountEvents(events.back().position));
  EXPECT_EQ(all, 5);
  ASSERT_OK_AND_ASSIGN(int64_t two,
                       source_->importer().CountEvents(events[1].position));
  EXPECT_EQ(two, 2);
  ASSERT_OK_AND_ASSIGN(int64_t none,
                       source_->importer().CountEvents(Position::Start()));
  EXPECT_EQ(none, 0);
}

TEST_P(EventImporterConformanceTest, CheckpointsAndSnapshotsRoundTrip) {
  Checkpoint c;
  c.projection = "totals";
  c.position = Position::FromParts(7, 9);
  c.events_processed = 42;
  c.updated_at = absl::FromUnixMicros(1700000000123456);
  ASSERT_OK(target_->importer().PutCheckpoints({&c, 1}));
  ASSERT_OK(target_->importer().PutCheckpoints({&c, 1}));
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> got,
                       target_->checkpoints().Get("totals"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->position, c.position);
  EXPECT_EQ(got->events_processed, 42);
  EXPECT_EQ(got->updated_at, c.updated_at);

  std::vector<Snapshot> snapshots;
  for (int i = 0; i < 5; ++i) {
    Snapshot& s = snapshots.emplace_back();
    s.stream = absl::StrCat("order-", i / 2);
    s.schema_version = i % 2;
    s.version = 10 + i;
    s.type = "eventstore.test.v1.OrderState";
    s.state = std::string("st\0te", 5) + std::to_string(i);
    s.taken_at = absl::FromUnixMicros(1700000000000000 + i);
  }
  ASSERT_OK(target_->importer().PutSnapshots(snapshots));
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> loaded,
                       target_->snapshots().Load("order-1", 1));
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->version, 13);
  EXPECT_EQ(loaded->state, snapshots[3].state);
  EXPECT_EQ(loaded->taken_at, snapshots[3].taken_at);
  // Paged listing in key order.
  std::vector<Snapshot> listed;
  SnapshotCursor cursor;
  while (true) {
    ASSERT_OK_AND_ASSIGN(std::vector<Snapshot> page,
                         target_->importer().ListSnapshots(cursor, 2));
    for (const Snapshot& s : page) listed.push_back(s);
    if (page.size() < 2) break;
    cursor.stream = page.back().stream;
    cursor.schema_version = page.back().schema_version;
  }
  ASSERT_THAT(listed, SizeIs(5));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(listed[i].stream, snapshots[i].stream);
    EXPECT_EQ(listed[i].schema_version, snapshots[i].schema_version);
    EXPECT_EQ(listed[i].state, snapshots[i].state);
  }
  ASSERT_OK_AND_ASSIGN(EventImporter::TableCounts counts,
                       target_->importer().CountTables());
  EXPECT_EQ(counts.checkpoints, 1);
  EXPECT_EQ(counts.snapshots, 5);
  EXPECT_EQ(counts.dead_letters, 0);
  EXPECT_EQ(counts.outbox, 0);
}

TEST_P(EventImporterConformanceTest, DeadLettersRoundTrip) {
  std::vector<DeadLetter> letters;
  for (int i = 0; i < 5; ++i) {
    DeadLetter& d = letters.emplace_back();
    d.projection = i < 3 ? "a" : "b";
    d.event_id = Uuid::Generate();
    d.stream = "order-1";
    d.version = i + 1;
    d.position = Position::FromParts(100 + i, 200 + i);
    d.event_type = "eventstore.test.v1.OrderPlaced";
    d.status = i == 4 ? DeadLetterStatus::kResolved : DeadLetterStatus::kParked;
    d.error = "boom";
    d.failure_count = i + 1;
    d.first_failed_at = absl::FromUnixMicros(1700000000000000 + i);
    d.last_failed_at = absl::FromUnixMicros(1700000001000000 + i);
    if (i == 4) {
      d.resolved_by = "ops";
      d.resolved_at = absl::FromUnixMicros(1700000002000000);
    }
  }
  ASSERT_OK(target_->importer().PutDeadLetters(letters));
  ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> got,
                       target_->dead_letters().Get("b", letters[4].event_id));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status, DeadLetterStatus::kResolved);
  EXPECT_EQ(got->resolved_by, "ops");
  EXPECT_EQ(got->resolved_at, letters[4].resolved_at);
  EXPECT_EQ(got->failure_count, 5);
  EXPECT_EQ(got->position, letters[4].position);
  EXPECT_EQ(got->first_failed_at, letters[4].first_failed_at);

  std::vector<DeadLetter> listed;
  DeadLetterCursor cursor;
  while (true) {
    ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> page,
                         target_->importer().ListDeadLetters(cursor, 2));
    for (const DeadLetter& d : page) listed.push_back(d);
    if (page.size() < 2) break;
    cursor.projection = page.back().projection;
    cursor.event_id = page.back().event_id;
  }
  ASSERT_THAT(listed, SizeIs(5));
  EXPECT_EQ(listed[0].projection, "a");
  EXPECT_EQ(listed[4].projection, "b");
  EXPECT_EQ(listed[0].resolved_at, absl::InfinitePast());
}

TEST_P(EventImporterConformanceTest, OutboxEntriesRoundTrip) {
  std::vector<OutboxEntry> entries;
  for (int i = 0; i < 3; ++i) {
    OutboxEntry& e = entries.emplace_back();
    e.id = 10 * (i + 1);
    e.message.destination = "billing";
    e.message.key = absl::StrCat("k", i);
    e.message.payload = "p";
    e.message.headers["h"] = absl::StrCat(i);
    e.status = i == 0 ? OutboxStatus::kPublished : OutboxStatus::kPending;
    e.created_at = absl::FromUnixMicros(1700000000000000 + i);
    e.attempts = i;
    if (i == 0) e.published_at = absl::FromUnixMicros(1700000005000000);
    if (i == 2) e.last_error = "timeout";
  }
  ASSERT_OK(target_->importer().PutOutboxEntries(entries, /*keep_ids=*/true));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> listed,
                       target_->importer().ListOutbox(0, 100));
  ASSERT_THAT(listed, SizeIs(3));
  EXPECT_EQ(listed[0].id, 10);
  EXPECT_EQ(listed[0].status, OutboxStatus::kPublished);
  EXPECT_EQ(listed[0].published_at, entries[0].published_at);
  EXPECT_EQ(listed[2].last_error, "timeout");
  EXPECT_EQ(listed[2].message.headers.at("h"), "2");
  EXPECT_EQ(listed[1].created_at, entries[1].created_at);
  // Later enqueues get higher ids.
  OutboxMessage m;
  m.destination = "billing";
  m.payload = "later";
  ASSERT_OK(target_->outbox().Enqueue({&m, 1}));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> after,
                       target_->importer().ListOutbox(30, 100));
  ASSERT_THAT(after, SizeIs(1));
  EXPECT_EQ(after[0].message.payload, "later");
  // Without keeping ids: new ones, after the existing.
  ASSERT_OK(target_->importer().PutOutboxEntries(entries, /*keep_ids=*/false));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> all,
                       target_->importer().ListOutbox(0, 100));
  EXPECT_THAT(all, SizeIs(7));
}

TEST_P(EventImporterConformanceTest, RecordedTypesAreInsertedIfAbsent) {
  RecordedType t;
  t.type = "x.v1.Thing";
  t.descriptor_set = "not really a descriptor set";
  t.recorded_at = absl::FromUnixMicros(1700000000000000);
  ASSERT_OK(target_->importer().PutRecordedTypes({&t, 1}));
  RecordedType other = t;
  other.descriptor_set = "another";
  ASSERT_OK(target_->importer().PutRecordedTypes({&other, 1}));
  absl::StatusOr<std::vector<RecordedType>> types =
      target_->inspector().RecordedTypes();
  if (types.status().code() == absl::StatusCode::kUnimplemented) return;
  ASSERT_OK(types);
  ASSERT_THAT(*types, SizeIs(1));
  EXPECT_EQ((*types)[0].descriptor_set, t.descriptor_set);
}

// A copy made again after the target went live (a re-run `migrate`) adds
// what is missing and moves held rows only forward: a published or given-up
// message is never set back to pending (it would be sent again), a
// checkpoint never goes back, a resolved or retrying dead letter is never
// parked again.
TEST_P(EventImporterConformanceTest, PutsNeverMoveHeldRowsBackwards) {
  EventImporter& importer = target_->importer();
  // Checkpoints: added; moved forward; kept when behind or equal.
  Checkpoint behind;
  behind.projection = "totals";
  behind.position = Position::FromParts(7, 9);
  behind.events_processed = 42;
  behind.updated_at = absl::FromUnixMicros(1700000000000000);
  Checkpoint ahead = behind;
  ahead.position = Position::FromParts(8, 1);
  ahead.events_processed = 50;
  ASSERT_OK_AND_ASSIGN(PutCounts counts, importer.PutCheckpoints({&behind, 1}));
  EXPECT_EQ(counts.added, 1);
  ASSERT_OK_AND_ASSIGN(counts, importer.PutCheckpoints({&ahead, 1}));
  EXPECT_EQ(counts.updated, 1);
  std::vector<Checkpoint> both = {behind, ahead};
  ASSERT_OK_AND_ASSIGN(counts, importer.PutCheckpoints(both));
  EXPECT_EQ(counts.kept, 2);
  EXPECT_EQ(counts.added + counts.updated, 0);
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       target_->checkpoints().Get("totals"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, ahead.position);
  EXPECT_EQ(cp->events_processed, 50);

  // Outbox entries 1..4, all pending in the copy.
  std::vector<OutboxEntry> entries;
  for (int i = 1; i <= 4; ++i) {
    OutboxEntry& e = entries.emplace_back();
    e.id = i;
    e.message.destination = "billing";
    e.message.key = absl::StrCat("k", i);
    e.message.payload = "invoice";
    e.created_at = absl::FromUnixMicros(1700000000000000 + i);
  }
  ASSERT_OK_AND_ASSIGN(counts, importer.PutOutboxEntries(entries, true));
  EXPECT_EQ(counts.added, 4);
  // The target publishes 1 and gives up on 2; 3 holds another message.
  ASSERT_OK(target_->outbox().MarkPublished(1));
  ASSERT_OK(target_->outbox().MarkFailed(2, "refused", 1));
  // The source published 3 (another message under id 3 on the target) and
  // 4 (the same message): only 4 moves forward.
  entries[2].message.payload = "something else";
  entries[2].status = OutboxStatus::kPublished;
  entries[3].status = OutboxStatus::kPublished;
  entries[3].published_at = absl::FromUnixMicros(1700000009000000);
  ASSERT_OK_AND_ASSIGN(counts, importer.PutOutboxEntries(entries, true));
  EXPECT_EQ(counts.added, 0);
  EXPECT_EQ(counts.updated, 1);
  EXPECT_EQ(counts.kept, 3);
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> outbox,
                       importer.ListOutbox(0, 100));
  ASSERT_THAT(outbox, SizeIs(4));
  EXPECT_EQ(outbox[0].status, OutboxStatus::kPublished);
  EXPECT_EQ(outbox[1].status, OutboxStatus::kFailed);
  EXPECT_EQ(outbox[2].status, OutboxStatus::kPending);
  EXPECT_EQ(outbox[2].message.payload, "invoice");
  EXPECT_EQ(outbox[3].status, OutboxStatus::kPublished);
  EXPECT_EQ(outbox[3].published_at, entries[3].published_at);

  // Dead letters a..d, parked once in the copy.
  std::vector<DeadLetter> letters;
  for (int i = 0; i < 4; ++i) {
    DeadLetter& d = letters.emplace_back();
    d.projection = std::string(1, static_cast<char>('a' + i));
    d.event_id = Uuid::Generate();
    d.stream = "order-1";
    d.version = i + 1;
    d.position = Position::FromParts(100 + i, 200 + i);
    d.event_type = "eventstore.test.v1.OrderPlaced";
    d.error = "boom";
    d.failure_count = 1;
    d.first_failed_at = absl::FromUnixMicros(1700000000000000);
    d.last_failed_at = d.first_failed_at;
  }
  ASSERT_OK_AND_ASSIGN(counts, importer.PutDeadLetters(letters));
  EXPECT_EQ(counts.added, 4);
  // The target resolves a and retries b; the source parks a, b and c again
  // and resolves d.
  ASSERT_OK(
      target_->dead_letters().MarkResolved("a", letters[0].event_id, "ops"));
  ASSERT_OK(target_->dead_letters().MarkRetrying("b", letters[1].event_id));
  for (int i = 0; i < 3; ++i) letters[i].failure_count = 2;
  letters[3].status = DeadLetterStatus::kResolved;
  letters[3].resolved_by = "source-ops";
  letters[3].resolved_at = absl::FromUnixMicros(1700000005000000);
  ASSERT_OK_AND_ASSIGN(counts, importer.PutDeadLetters(letters));
  EXPECT_EQ(counts.kept, 2);
  EXPECT_EQ(counts.updated, 2);
  const DeadLetterStatus want[] = {
      DeadLetterStatus::kResolved, DeadLetterStatus::kRetrying,
      DeadLetterStatus::kParked, DeadLetterStatus::kResolved};
  const int32_t failures[] = {1, 1, 2, 1};
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> got,
                         target_->dead_letters().Get(letters[i].projection,
                                                     letters[i].event_id));
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->status, want[i]) << letters[i].projection;
    EXPECT_EQ(got->failure_count, failures[i]) << letters[i].projection;
  }
  // Parked fewer times than on the target: kept.
  letters[2].failure_count = 1;
  ASSERT_OK_AND_ASSIGN(counts, importer.PutDeadLetters({&letters[2], 1}));
  EXPECT_EQ(counts.kept, 1);
}

TEST_P(EventImporterConformanceTest, ImportCarriesAndChecksTheChecksum) {
  AppendToSource("order-1", 3);
  std::vector<RecordedEvent> events = ReadAllOf(*source_);
  ASSERT_THAT(events, SizeIs(3));
  for (const RecordedEvent& e : events) ASSERT_TRUE(e.checksum.has_value());

  // A payload changed in transit no longer matches its checksum: refused,
  // naming the event, and nothing of the batch is written.
  std::vector<RecordedEvent> changed = events;
  changed[1].payload += "x";
  EXPECT_THAT(target_->importer().ImportEvents("m1", "src", changed),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr(changed[1].id.ToString())));
  // So is an event the source read as damaged.
  std::vector<RecordedEvent> damaged = events;
  damaged[2].damage = absl::DataLossError("sqlite: event at position 3 ...");
  EXPECT_THAT(target_->importer().ImportEvents("m1", "src", damaged),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("damaged")));
  // And metadata that could never be read back.
  std::vector<RecordedEvent> bad_text = events;
  bad_text[0].metadata.set_actor("bob\xff");
  EXPECT_THAT(target_->importer().ImportEvents("m1", "src", bad_text),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("metadata.actor is not valid UTF-8")));
  EXPECT_THAT(ReadAllOf(*target_), SizeIs(0));

  // The copy keeps the source's checksums; an event without one (stored
  // before schema version 4) gets one.
  events[2].checksum.reset();
  ASSERT_OK(target_->importer().ImportEvents("m1", "src", events));
  const std::vector<RecordedEvent> copied = ReadAllOf(*target_);
  const std::vector<RecordedEvent> original = ReadAllOf(*source_);
  ASSERT_THAT(copied, SizeIs(3));
  for (size_t i = 0; i < copied.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_FALSE(copied[i].damaged()) << copied[i].damage;
    EXPECT_EQ(copied[i].checksum, original[i].checksum);
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, EventImporterConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
