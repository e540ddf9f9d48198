// What is specific to the stream lifecycle on SQLite: that Scavenge with
// compact removes deleted events from the files themselves, that scavenging
// stops and resumes, runs beside appends, keeps versions from going back,
// and the streams table's place in read-only stores and schema upgrades.
// The contract itself is tested on every backend by
// tests/conformance/stream_lifecycle_conformance_test.cc.

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "backends/sqlite/sqlite_schema.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace eventstore {
namespace {

using ::eventstore::test::FileExists;
using ::eventstore::test::ReadFileBytes;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

std::vector<EventData> Batch(int n, const std::string& tag) {
  std::vector<EventData> events;
  for (int i = 0; i < n; ++i) events.push_back(Placed(absl::StrCat(tag, i)));
  return events;
}

absl::StatusOr<AppendResult> AppendTo(EventStore& store,
                                      const std::string& stream,
                                      std::vector<EventData> events,
                                      ExpectedVersion expected) {
  AppendRequest request;
  request.stream = stream;
  request.expected = expected;
  request.events = events;
  return store.Append(request);
}

// Every event of the log, read in pages of `page` from `from`.
std::vector<RecordedEvent> ReadAllFrom(EventStore& store, Position from,
                                       int64_t page) {
  std::vector<RecordedEvent> all;
  ReadAllOptions options;
  options.from_position = from;
  options.max_count = page;
  while (true) {
    absl::StatusOr<ReadAllPage> read = store.ReadAll(options);
    EXPECT_OK(read.status());
    if (!read.ok()) return all;
    for (RecordedEvent& e : read->events) all.push_back(std::move(e));
    if (read->end_of_log) return all;
    options.from_position = read->next_position;
  }
}

// Runs a query on `path` through a connection of its own and returns the
// first column of its first row.
int64_t RawCount(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int64_t value = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return value;
}

class SqliteStreamLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    path_ = dir_->File("events.db");
  }

  SqliteOptions Options() const {
    SqliteOptions options;
    options.path = path_;
    return options;
  }

  std::unique_ptr<EventStore> Open() {
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        SqliteEventStore::Open(Options());
    EXPECT_OK(store.status());
    return store.ok() ? *std::move(store) : nullptr;
  }

  // The bytes of the database and of its -wal and -shm files, as any
  // process could read them.
  std::string FileBytes() const {
    std::string bytes;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      const std::string file = path_ + suffix;
      if (FileExists(file)) bytes += ReadFileBytes(file);
    }
    return bytes;
  }

  // Whether `text` occurs in FileBytes() (not printed: megabytes).
  bool FilesHold(const std::string& text) const {
    return FileBytes().find(text) != std::string::npos;
  }

  std::unique_ptr<TempDir> dir_;
  std::string path_;
};

TEST_F(SqliteStreamLifecycleTest,
       CompactRemovesAHardDeletedPayloadFromTheFiles) {
  const std::string marker = "pii-marker-4b1d9e0c-do-not-keep";
  std::unique_ptr<EventStore> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(AppendTo(*store, "customer-1",
                     {Placed(marker + "-1"), Placed(marker + "-2")},
                     ExpectedVersion::NoStream()));
  ASSERT_OK(AppendTo(*store, "customer-2", Batch(3, "kept"),
                     ExpectedVersion::NoStream()));
  // The test can fail: the payload is in the files before the deletion.
  ASSERT_TRUE(FilesHold(marker));

  ASSERT_OK(store->DeleteStream("customer-1", ExpectedVersion::Exactly(2),
                                DeleteMode::kHard));
  ScavengeOptions options;
  options.compact = true;
  ASSERT_OK_AND_ASSIGN(ScavengeResult result, store->Scavenge(options));
  EXPECT_EQ(result.events_removed, 2);
  EXPECT_TRUE(result.compacted);
  EXPECT_TRUE(result.complete);
  // Gone while the store is open (the log truncated, the file rebuilt) ...
  EXPECT_FALSE(FilesHold(marker));
  EXPECT_TRUE(FilesHold("kept2"));
  store.reset();
  // ... and once it is closed.
  EXPECT_FALSE(FilesHold(marker));
  store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> kept,
                       store->ReadStream("customer-2"));
  EXPECT_THAT(kept, SizeIs(3));
}

TEST_F(SqliteStreamLifecycleTest, ScavengeStoppedByMaxEventsResumes) {
  std::unique_ptr<EventStore> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(
      AppendTo(*store, "doomed", Batch(25, "d"), ExpectedVersion::NoStream()));
  ASSERT_OK(
      AppendTo(*store, "other", Batch(2, "o"), ExpectedVersion::NoStream()));
  ASSERT_OK(
      store->DeleteStream("doomed", ExpectedVersion::Any(), DeleteMode::kHard));
  ScavengeOptions options;
  options.batch_size = 4;
  options.max_events = 10;
  std::vector<int64_t> seen;
  options.progress = [&](const ScavengeProgress& p) {
    seen.push_back(p.events_removed);
  };
  ASSERT_OK_AND_ASSIGN(ScavengeResult first, store->Scavenge(options));
  EXPECT_EQ(first.events_removed, 10);
  EXPECT_FALSE(first.complete);
  EXPECT_EQ(first.batches, 3);  // 4 + 4 + 2
  EXPECT_THAT(seen, ElementsAre(4, 8, 10));
  EXPECT_EQ(RawCount(path_,
                     "SELECT count(*) FROM events WHERE stream = "
                     "'doomed'"),
            16);  // 15 hidden + the marker

  ASSERT_OK_AND_ASSIGN(ScavengeResult second, store->Scavenge(options));
  EXPECT_EQ(second.events_removed, 10);
  ASSERT_OK_AND_ASSIGN(ScavengeResult third, store->Scavenge(options));
  EXPECT_EQ(third.events_removed, 5);
  EXPECT_TRUE(third.complete);
  ASSERT_OK_AND_ASSIGN(ScavengeResult fourth, store->Scavenge(options));
  EXPECT_EQ(fourth.events_removed, 0);
  EXPECT_TRUE(fourth.complete);
  // The marker and the other stream stay.
  EXPECT_EQ(RawCount(path_,
                     "SELECT count(*) FROM events WHERE stream = "
                     "'doomed'"),
            1);
  EXPECT_EQ(RawCount(path_, "SELECT count(*) FROM events"), 3);
}

TEST_F(SqliteStreamLifecycleTest,
       ConcurrentScavengeWhileAppendingRemovesOnlyHiddenEvents) {
  std::unique_ptr<EventStore> store = Open();
  ASSERT_NE(store, nullptr);
  // The doomed stream's events between live ones, so that the removed
  // positions lie inside the log.
  std::vector<Uuid> live_ids;
  for (int i = 0; i < 40; ++i) {
    ASSERT_OK(AppendTo(*store, "doomed", Batch(5, absl::StrCat("d", i)),
                       ExpectedVersion::Any()));
    std::vector<EventData> live = Batch(1, absl::StrCat("l", i));
    live_ids.push_back(live[0].id);
    ASSERT_OK(AppendTo(*store, "live-1", live, ExpectedVersion::Any()));
  }
  // A reader that stopped inside what will be removed: after doomed's
  // 101st event.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> doomed,
                       store->ReadStream("doomed"));
  ASSERT_THAT(doomed, SizeIs(200));
  const Position resume = doomed[100].position;
  ASSERT_OK(store->DeleteStream("doomed", ExpectedVersion::Exactly(200),
                                DeleteMode::kHard));

  std::atomic<bool> failed{false};
  std::vector<Uuid> appended_ids(150);
  std::thread appender([&] {
    for (int i = 0; i < 150; ++i) {
      std::vector<EventData> events = Batch(1, absl::StrCat("a", i));
      appended_ids[i] = events[0].id;
      if (!AppendTo(*store, "live-2", events, ExpectedVersion::Exactly(i))
               .ok()) {
        failed = true;
      }
    }
  });
  ScavengeOptions options;
  options.batch_size = 7;
  absl::StatusOr<ScavengeResult> result = store->Scavenge(options);
  appender.join();
  ASSERT_FALSE(failed.load());
  ASSERT_OK(result.status());
  EXPECT_EQ(result->events_removed, 200);
  EXPECT_EQ(result->batches, 29);  // ceil(200 / 7)

  // Every live event after `resume` exactly once, in order; of the doomed
  // stream only its StreamDeleted event.
  std::vector<RecordedEvent> after = ReadAllFrom(*store, resume, 9);
  std::vector<Uuid> expected;
  for (size_t i = 20; i < live_ids.size(); ++i) expected.push_back(live_ids[i]);
  std::vector<Uuid> got_live;
  std::vector<Uuid> got_appended;
  int markers = 0;
  for (const RecordedEvent& e : after) {
    if (e.stream == "live-1") got_live.push_back(e.id);
    if (e.stream == "live-2") got_appended.push_back(e.id);
    if (e.stream == "doomed") {
      EXPECT_EQ(e.type, std::string(kStreamDeletedType));
      ++markers;
    }
  }
  EXPECT_EQ(got_live, expected);
  EXPECT_EQ(got_appended, appended_ids);
  EXPECT_EQ(markers, 1);
  for (size_t i = 1; i < after.size(); ++i) {
    EXPECT_LT(after[i - 1].position, after[i].position);
  }
  EXPECT_EQ(RawCount(path_, "SELECT count(*) FROM events"), 40 + 150 + 1);
}

TEST_F(SqliteStreamLifecycleTest, AStreamScavengedEmptyContinuesItsVersions) {
  std::unique_ptr<EventStore> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(
      AppendTo(*store, "sensor-1", Batch(5, "s"), ExpectedVersion::NoStream()));
  StreamMetadata metadata;
  metadata.truncate_before = 6;
  ASSERT_OK(store->SetStreamMetadata("sensor-1", metadata));
  ASSERT_OK_AND_ASSIGN(ScavengeResult result,
                       store->Scavenge(ScavengeOptions()));
  EXPECT_EQ(result.events_removed, 5);
  EXPECT_EQ(RawCount(path_, "SELECT count(*) FROM events"), 0);
  EXPECT_EQ(RawCount(path_, "SELECT version_floor FROM streams"), 5);

  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("sensor-1"));
  EXPECT_EQ(version, 5);
  ASSERT_OK_AND_ASSIGN(StreamInfo info, store->GetStreamInfo("sensor-1"));
  EXPECT_EQ(info.version, 5);
  EXPECT_EQ(info.last_version, 5);
  EXPECT_THAT(
      AppendTo(*store, "sensor-1", Batch(1, "x"), ExpectedVersion::NoStream()),
      StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(
      AppendResult appended,
      AppendTo(*store, "sensor-1", Batch(1, "n"), ExpectedVersion::Exactly(5)));
  EXPECT_EQ(appended.next_expected_version, 6);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       store->ReadStream("sensor-1"));
  ASSERT_THAT(read, SizeIs(1));
  EXPECT_EQ(read[0].version, 6);
}

TEST_F(SqliteStreamLifecycleTest, ScavengeRemovesMigrationPositionsOfRemoved) {
  std::unique_ptr<EventStore> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(
      AppendResult doomed,
      AppendTo(*store, "doomed", Batch(2, "d"), ExpectedVersion::NoStream()));
  ASSERT_OK_AND_ASSIGN(
      AppendResult kept,
      AppendTo(*store, "kept", Batch(1, "k"), ExpectedVersion::NoStream()));
  {
    // As an import would have recorded them (sqlite_event_importer.cc).
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<sqlite::SqliteConnection> conn,
                         sqlite::SqliteConnection::Open(
                             path_, sqlite::SqliteConnection::Mode::kReadWrite,
                             absl::Seconds(5)));
    ASSERT_OK(conn->Exec(absl::StrCat(
        "INSERT INTO migrations VALUES ('m1', 'src', 3, 3, 3, 0, 0);"
        "INSERT INTO migration_positions VALUES ('m1', 1, 1, ",
        doomed.first_position.commit(), "), ('m1', 2, 2, ",
        doomed.last_position.commit(), "), ('m1', 3, 3, ",
        kept.first_position.commit(), ");")));
  }
  ASSERT_OK(
      store->DeleteStream("doomed", ExpectedVersion::Any(), DeleteMode::kSoft));
  ASSERT_OK_AND_ASSIGN(ScavengeResult result,
                       store->Scavenge(ScavengeOptions()));
  EXPECT_EQ(result.events_removed, 2);
  EXPECT_EQ(RawCount(path_, "SELECT count(*) FROM migration_positions"), 1);
  EXPECT_EQ(RawCount(path_, "SELECT position FROM migration_positions"),
            static_cast<int64_t>(kept.first_position.commit()));
}

TEST_F(SqliteStreamLifecycleTest, AReadOnlyStoreRefusesLifecycleWrites) {
  {
    std::unique_ptr<EventStore> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_OK(AppendTo(*store, "order-1", Batch(2, "o"),
                       ExpectedVersion::NoStream()));
    ASSERT_OK(AppendTo(*store, "order-2", Batch(2, "o"),
                       ExpectedVersion::NoStream()));
    ASSERT_OK(store->DeleteStream("order-2", ExpectedVersion::Any(),
                                  DeleteMode::kSoft));
  }
  // The database file, closed (its log checkpointed into it).
  const std::string before = ReadFileBytes(path_);
  SqliteOptions options = Options();
  options.read_only = true;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(options));
  const auto read_only =
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("read-only"));
  EXPECT_THAT(
      store->DeleteStream("order-1", ExpectedVersion::Any(), DeleteMode::kHard),
      read_only);
  EXPECT_THAT(store->SetStreamMetadata("order-1", StreamMetadata()), read_only);
  EXPECT_THAT(store->Scavenge(ScavengeOptions()), read_only);
  ScavengeOptions compact;
  compact.compact = true;
  EXPECT_THAT(store->Scavenge(compact), read_only);
  // Reads still apply the streams table.
  ASSERT_OK_AND_ASSIGN(StreamInfo info, store->GetStreamInfo("order-2"));
  EXPECT_EQ(info.state, StreamStatus::kSoftDeleted);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> deleted,
                       store->ReadStream("order-2"));
  EXPECT_THAT(deleted, IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> live,
                       store->ReadStream("order-1"));
  EXPECT_THAT(live, SizeIs(2));
  store.reset();
  EXPECT_TRUE(ReadFileBytes(path_) == before) << "the database file changed";
}

TEST_F(SqliteStreamLifecycleTest, AVersion5StoreIsUpgradedAndHasALifecycle) {
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<sqlite::SqliteConnection> conn,
        sqlite::SqliteConnection::Open(
            path_, sqlite::SqliteConnection::Mode::kReadWriteCreate,
            absl::Seconds(5)));
    ASSERT_OK(sqlite::CreateSchemaAtVersion(*conn, 5));
    // An event as version 5 stored it (no checksum to check).
    test::v1::OrderPlaced placed;
    placed.set_order_id("old");
    std::string payload = placed.SerializeAsString();
    std::string hex;
    for (unsigned char c : payload) {
      absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
    }
    ASSERT_OK(conn->Exec(absl::StrCat(
        "INSERT INTO events (id, stream, version, type, payload, recorded_at) "
        "VALUES (randomblob(16), 'order-1', 1, "
        "'eventstore.test.v1.OrderPlaced', x'",
        hex, "', 0)")));
  }
  std::unique_ptr<EventStore> store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawCount(path_, "SELECT version FROM eventstore_schema"),
            SqliteEventStore::kSchemaVersion);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> old,
                       store->ReadStream("order-1"));
  EXPECT_THAT(old, SizeIs(1));
  ASSERT_OK_AND_ASSIGN(
      DeleteResult deleted,
      store->DeleteStream("order-1", ExpectedVersion::Exactly(1),
                          DeleteMode::kHard));
  EXPECT_EQ(deleted.marker_version, 2);
  ASSERT_OK_AND_ASSIGN(ScavengeResult result,
                       store->Scavenge(ScavengeOptions()));
  EXPECT_EQ(result.events_removed, 1);
  EXPECT_THAT(
      AppendTo(*store, "order-1", Batch(1, "n"), ExpectedVersion::Any()),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("order-1")));
}

TEST_F(SqliteStreamLifecycleTest, ScavengeOptionsOutOfRangeAreRefused) {
  std::unique_ptr<EventStore> store = Open();
  ASSERT_NE(store, nullptr);
  ScavengeOptions options;
  options.batch_size = 0;
  EXPECT_THAT(
      store->Scavenge(options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("batch_size")));
  options.batch_size = 100001;
  EXPECT_THAT(
      store->Scavenge(options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("batch_size")));
  options.batch_size = 100000;
  options.max_events = 0;
  EXPECT_THAT(
      store->Scavenge(options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_events")));
}

}  // namespace
}  // namespace eventstore
