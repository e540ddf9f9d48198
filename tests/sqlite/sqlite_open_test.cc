// How a SQLite store is opened: read-only, with or without a schema
// upgrade, the explicit UpgradeSchema, option ranges, and files that are not
// (or no longer) good eventstore databases. Every refusal leaves the file's
// bytes as they were.

#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "backends/sqlite/sqlite_schema.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/lease.h"
#include "eventstore/outbox_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/store_inspector.h"
#include "eventstore/subject_key_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace eventstore {
namespace {

using ::eventstore::test::FileExists;
using ::eventstore::test::IsOk;
using ::eventstore::test::ReadFileBytes;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TempDir;
using ::eventstore::test::WriteFileBytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// Runs `sql` on `path` through a connection of its own (as another process
// would), creating the file when asked.
absl::Status RawExec(const std::string& path, const std::string& sql,
                     bool create = false) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  char* error = nullptr;
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message =
      error != nullptr ? error : (db != nullptr ? sqlite3_errmsg(db) : "");
  sqlite3_free(error);
  sqlite3_close(db);
  if (rc != SQLITE_OK)
    return absl::InternalError(absl::StrCat(sql, ": ", message));
  return absl::OkStatus();
}

EventData Event(const std::string& payload) {
  EventData e;
  e.type = "test.v1.Tick";
  e.payload = payload;
  return e;
}

class SqliteOpenTest : public ::testing::Test {
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

  SqliteOptions ReadOnly() const {
    SqliteOptions options = Options();
    options.read_only = true;
    return options;
  }

  // A store of the current schema with two events, a checkpoint, a dead
  // letter and an outbox message; closed again.
  void MakeStore() {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         SqliteEventStore::Open(Options()));
    AppendRequest request;
    request.stream = "order-1";
    request.expected = ExpectedVersion::NoStream();
    std::vector<EventData> events = {Event("a"), Event("b")};
    request.events = events;
    OutboxMessage message;
    message.destination = "orders";
    message.key = "order-1";
    message.payload = "placed";
    std::vector<OutboxMessage> outbox = {message};
    request.outbox = outbox;
    ASSERT_OK(store->Append(request));
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                         store->ReadStream("order-1"));
    ASSERT_OK(store->checkpoints().Save("totals", read[1].position, 2));
    ASSERT_OK(store->dead_letters().Add("totals", read[0], "boom"));
  }

  // A store whose schema is the one before this code's, built as the older
  // code did (its migrations), holding no events.
  void MakeOlderStore() {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<sqlite::SqliteConnection> conn,
        sqlite::SqliteConnection::Open(
            path_, sqlite::SqliteConnection::Mode::kReadWriteCreate,
            absl::Seconds(5)));
    ASSERT_OK(sqlite::CreateSchemaAtVersion(
        *conn, SqliteEventStore::kSchemaVersion - 1));
  }

  std::unique_ptr<TempDir> dir_;
  std::string path_;
};

// --- read-only ---------------------------------------------------------------

TEST_F(SqliteOpenTest, ReadOnlyReadsEverythingFromAFileWithoutWritePermission) {
  MakeStore();
  ASSERT_EQ(chmod(path_.c_str(), 0444), 0);
  const std::string bytes = ReadFileBytes(path_);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         SqliteEventStore::Open(ReadOnly()));
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                         store->ReadStream("order-1"));
    EXPECT_THAT(read, SizeIs(2));
    ReadAllOptions all;
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, store->ReadAll(all));
    EXPECT_THAT(page.events, SizeIs(2));
    ASSERT_OK_AND_ASSIGN(StoreInfo info, store->inspector().Info());
    EXPECT_EQ(info.events, 2);
    EXPECT_EQ(info.schema_version, SqliteEventStore::kSchemaVersion);
    ASSERT_OK_AND_ASSIGN(std::vector<StreamSummary> streams,
                         store->inspector().ListStreams({}));
    EXPECT_THAT(streams, SizeIs(1));
    ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> checkpoints,
                         store->checkpoints().List());
    EXPECT_THAT(checkpoints, SizeIs(1));
    ASSERT_OK_AND_ASSIGN(std::vector<DeadLetterCount> parked,
                         store->dead_letters().Counts());
    EXPECT_THAT(parked, SizeIs(1));
    ASSERT_OK_AND_ASSIGN(OutboxStats stats, store->outbox().Stats());
    EXPECT_EQ(stats.pending, 1);
  }
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
}

TEST_F(SqliteOpenTest, ReadOnlyRefusesEveryWriteUntouched) {
  MakeStore();
  const std::string bytes = ReadFileBytes(path_);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         SqliteEventStore::Open(ReadOnly()));
    const auto refused = StatusIs(absl::StatusCode::kFailedPrecondition,
                                  HasSubstr("opened read-only"));
    EXPECT_THAT(store->Append("order-2", ExpectedVersion::Any(), {Event("c")}),
                refused);
    EXPECT_THAT(store->checkpoints().Save("totals", Position::Start(), 0),
                refused);
    EXPECT_THAT(store->checkpoints().Reset("totals"), refused);
    EXPECT_THAT(store->outbox().Claim("worker", 10, absl::Seconds(30)),
                refused);
    EXPECT_THAT(store->snapshots().Delete("order-1"), refused);
    EXPECT_THAT(store->BeginTransaction(), refused);
    EXPECT_THAT(store->TryAcquireLease("totals"), refused);
  }
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
}

TEST_F(SqliteOpenTest, ReadOnlyRefusesSubjectKeyWritesUntouched) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         SqliteEventStore::Open(Options()));
    ASSERT_OK(store->subject_keys().Insert("user-1", "wrapped", "mk-1"));
  }
  const std::string bytes = ReadFileBytes(path_);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         SqliteEventStore::Open(ReadOnly()));
    SubjectKeyStore& keys = store->subject_keys();
    ASSERT_OK_AND_ASSIGN(std::optional<SubjectKeyRecord> found,
                         keys.Find("user-1"));
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->wrapped_key, "wrapped");
    ASSERT_OK(keys.List("", 10));
    ASSERT_OK(keys.Streams("user-1"));
    const auto refused = StatusIs(absl::StatusCode::kFailedPrecondition,
                                  HasSubstr("opened read-only"));
    EXPECT_THAT(keys.Insert("user-2", "wrapped", "mk-1"), refused);
    EXPECT_THAT(keys.AddStream("user-1", "order-1"), refused);
    EXPECT_THAT(keys.Forget("user-1"), refused);
    EXPECT_THAT(keys.Rewrap("user-1", "mk-1", "other", "mk-2"), refused);
    SubjectKeyRecord record;
    record.subject = "user-3";
    record.wrapped_key = "wrapped";
    record.master_key_id = "mk-1";
    EXPECT_THAT(keys.Put({record}), refused);
  }
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
}

TEST_F(SqliteOpenTest, ReadOnlyCreatesNothing) {
  EXPECT_THAT(SqliteEventStore::Open(ReadOnly()), Not(IsOk()));
  EXPECT_FALSE(FileExists(path_));
  WriteFileBytes(path_, "");
  EXPECT_THAT(
      SqliteEventStore::Open(ReadOnly()),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("holds no eventstore")));
  EXPECT_EQ(ReadFileBytes(path_), "");
  SqliteOptions memory;
  memory.path = ":memory:";
  memory.read_only = true;
  EXPECT_THAT(
      SqliteEventStore::Open(memory),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("read_only")));
}

TEST_F(SqliteOpenTest, ReadOnlyLeavesTheJournalModeAsItIs) {
  SqliteOptions rollback = Options();
  rollback.wal = false;
  { ASSERT_OK(SqliteEventStore::Open(rollback)); }
  const std::string bytes = ReadFileBytes(path_);
  { ASSERT_OK(SqliteEventStore::Open(ReadOnly())); }  // wal = true asked
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
  EXPECT_FALSE(FileExists(path_ + "-wal"));
}

// --- schema upgrades ---------------------------------------------------------

TEST_F(SqliteOpenTest, AnOlderSchemaIsRefusedUntouchedWithoutUpgrade) {
  MakeOlderStore();
  const std::string bytes = ReadFileBytes(path_);
  SqliteOptions no_upgrade = Options();
  no_upgrade.upgrade_schema = false;
  for (const SqliteOptions& options : {no_upgrade, ReadOnly()}) {
    EXPECT_THAT(
        SqliteEventStore::Open(options),
        StatusIs(
            absl::StatusCode::kFailedPrecondition,
            AllOf(HasSubstr(absl::StrCat("schema version ",
                                         SqliteEventStore::kSchemaVersion - 1)),
                  HasSubstr("eventstore upgrade"))));
    EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
    EXPECT_FALSE(FileExists(path_ + "-wal"));
  }
}

TEST_F(SqliteOpenTest, TheDefaultOpenUpgradesAnOlderSchema) {
  MakeOlderStore();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(StoreInfo info, store->inspector().Info());
  EXPECT_EQ(info.schema_version, SqliteEventStore::kSchemaVersion);
  EXPECT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("a")}));
}

TEST_F(SqliteOpenTest, UpgradeSchemaReportsTheVersionsAndIsIdempotent) {
  MakeOlderStore();
  ASSERT_OK_AND_ASSIGN(SchemaUpgrade first,
                       SqliteEventStore::UpgradeSchema(Options()));
  EXPECT_EQ(first.from_version, SqliteEventStore::kSchemaVersion - 1);
  EXPECT_EQ(first.to_version, SqliteEventStore::kSchemaVersion);
  EXPECT_TRUE(first.upgraded());
  const std::string bytes = ReadFileBytes(path_);
  ASSERT_OK_AND_ASSIGN(SchemaUpgrade second,
                       SqliteEventStore::UpgradeSchema(Options()));
  EXPECT_EQ(second.from_version, SqliteEventStore::kSchemaVersion);
  EXPECT_FALSE(second.upgraded());
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
  SqliteOptions no_upgrade = ReadOnly();
  EXPECT_OK(SqliteEventStore::Open(no_upgrade));
}

TEST_F(SqliteOpenTest, AVersion6StoreKeepsItsCheckpointsAndTakesRebuilds) {
  // Version 7 of the schema adds the rebuild request to checkpoints.
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<sqlite::SqliteConnection> conn,
        sqlite::SqliteConnection::Open(
            path_, sqlite::SqliteConnection::Mode::kReadWriteCreate,
            absl::Seconds(5)));
    ASSERT_OK(sqlite::CreateSchemaAtVersion(*conn, 6));
    // A checkpoint as version 6 stored it.
    ASSERT_OK(
        conn->Exec("INSERT INTO checkpoints (projection, position_commit, "
                   "position_prepare, events_processed, updated_at) "
                   "VALUES ('totals', 0, 42, 7, 1000000)"));
  }
  ASSERT_OK_AND_ASSIGN(SchemaUpgrade upgrade,
                       SqliteEventStore::UpgradeSchema(Options()));
  EXPECT_EQ(upgrade.from_version, 6);
  EXPECT_EQ(upgrade.to_version, SqliteEventStore::kSchemaVersion);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(Options()));
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       store->checkpoints().Get("totals"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, Position::FromParts(0, 42));
  EXPECT_EQ(cp->events_processed, 7);
  EXPECT_EQ(cp->updated_at, absl::FromUnixSeconds(1));
  EXPECT_FALSE(cp->rebuild_requested_at.has_value());
  ASSERT_OK(store->checkpoints().RequestRebuild("totals", "alice"));
  ASSERT_OK_AND_ASSIGN(cp, store->checkpoints().Get("totals"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, "alice");
  EXPECT_EQ(cp->position, Position::FromParts(0, 42));
}

TEST_F(SqliteOpenTest, UpgradeSchemaCreatesNothing) {
  EXPECT_THAT(SqliteEventStore::UpgradeSchema(Options()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(FileExists(path_));
  WriteFileBytes(path_, "");
  EXPECT_THAT(
      SqliteEventStore::UpgradeSchema(Options()),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("holds no eventstore")));
  EXPECT_EQ(ReadFileBytes(path_), "");
}

// --- option ranges -----------------------------------------------------------

TEST_F(SqliteOpenTest, OptionsOutOfRangeAreInvalidArguments) {
  SqliteOptions options = Options();
  options.busy_timeout = absl::Milliseconds(int64_t{1} << 31);
  EXPECT_THAT(
      SqliteEventStore::Open(options),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("busy_timeout"), HasSubstr("2147483647 ms"))));
  options.busy_timeout = absl::Milliseconds(-1);
  EXPECT_THAT(
      SqliteEventStore::Open(options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("busy_timeout")));
  options = Options();
  for (int readers : {0, SqliteOptions::kMaxReaders + 1}) {
    options.max_readers = readers;
    EXPECT_THAT(
        SqliteEventStore::Open(options),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_readers")));
  }
  EXPECT_FALSE(FileExists(path_));
  options = Options();
  options.busy_timeout = absl::Milliseconds(SqliteOptions::kMaxBusyTimeoutMs);
  options.max_readers = SqliteOptions::kMaxReaders;
  EXPECT_OK(SqliteEventStore::Open(options));
}

// --- files that are not (good) eventstore databases
// ---------------------------

TEST_F(SqliteOpenTest, ShortFilesThatAreNotDatabasesAreRefusedUntouched) {
  for (const std::string& content :
       {std::string("x"), std::string("not a database\n"),
        std::string("SQLite format 3")}) {
    WriteFileBytes(path_, content);
    EXPECT_THAT(SqliteEventStore::Open(Options()),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         HasSubstr("is not an eventstore database")))
        << content;
    EXPECT_EQ(ReadFileBytes(path_), content);
    EXPECT_FALSE(FileExists(path_ + "-wal"));
    EXPECT_FALSE(FileExists(path_ + "-journal"));
  }
}

TEST_F(SqliteOpenTest, OurSchemaTableWithoutTheTablesIsRefusedUntouched) {
  ASSERT_OK(
      RawExec(path_,
              absl::StrCat("PRAGMA application_id = ", sqlite::kApplicationId,
                           "; CREATE TABLE eventstore_schema (version "
                           "INTEGER NOT NULL); INSERT INTO "
                           "eventstore_schema VALUES (",
                           SqliteEventStore::kSchemaVersion, ");"),
              /*create=*/true));
  const std::string bytes = ReadFileBytes(path_);
  EXPECT_THAT(SqliteEventStore::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("table 'events' is missing")));
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
  EXPECT_FALSE(FileExists(path_ + "-wal")) << "switched to WAL";
}

TEST_F(SqliteOpenTest, AMissingTableOfAnUpgradedStoreIsRefusedUntouched) {
  MakeStore();
  ASSERT_OK(RawExec(path_, "DROP TABLE outbox"));
  const std::string bytes = ReadFileBytes(path_);
  EXPECT_THAT(SqliteEventStore::Open(Options()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("table 'outbox' is missing")));
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
}

TEST_F(SqliteOpenTest, ASchemaVersionThatIsNotANumberIsRefusedUntouched) {
  MakeStore();
  for (const char* value : {"0", "'abc'", "-3", "2.5"}) {
    ASSERT_OK(RawExec(
        path_, absl::StrCat("UPDATE eventstore_schema SET version = ", value)));
    const std::string bytes = ReadFileBytes(path_);
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        SqliteEventStore::Open(Options());
    EXPECT_THAT(store, StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("damaged")))
        << value;
    EXPECT_LT(store.status().message().size(), 300u) << store.status();
    EXPECT_THAT(std::string(store.status().message()),
                Not(HasSubstr("CREATE TABLE")));
    EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
  }
}

TEST_F(SqliteOpenTest, ANulByteInThePathIsRefused) {
  const std::string url =
      "sqlite:" + dir_->File("a") + std::string(1, '\0') + "b.db";
  EXPECT_THAT(SqliteOptions::FromUrl(url),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  SqliteOptions options;
  options.path = dir_->File("a") + std::string(1, '\0') + "b.db";
  EXPECT_THAT(SqliteEventStore::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  EXPECT_FALSE(FileExists(dir_->File("a")));
}

}  // namespace
}  // namespace eventstore
