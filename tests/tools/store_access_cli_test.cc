// How the `eventstore` binary opens stores: the commands that only look
// open read-only (they work on a file without write permission and never
// change a byte), no command upgrades a schema implicitly (an older store is
// refused untouched), and `eventstore upgrade` does it. Run as a process on
// SQLite files and on the test PostgreSQL server; suites whose names contain
// "Postgres" run as one ctest group.

#include <sys/stat.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "backends/sqlite/sqlite_schema.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/outbox_message.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/cli_process.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_schema.h"
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore {
namespace {

using ::eventstore::test::CliResult;
using ::eventstore::test::ReadFileBytes;
using ::eventstore::test::RunCli;
using ::eventstore::test::TempDir;
using ::testing::HasSubstr;

EventData Tick(const std::string& payload) {
  EventData e;
  e.type = "eventstore.test.v1.Tick";
  e.payload = payload;
  return e;
}

// Every command that only looks, on `url`.
std::vector<std::vector<std::string>> ReadCommands(const std::string& url) {
  return {{"info", url},
          {"streams", url},
          {"read", url, "order-1"},
          {"tail", url, "--count", "1"},
          {"verify", url},
          {"checkpoints", url},
          {"dlq", url, "list"},
          {"outbox", url, "stats"}};
}

// A store with two events, a checkpoint, a dead letter and a pending
// outbox message.
void Fill(EventStore& store) {
  std::vector<EventData> events = {Tick("a"), Tick("b")};
  OutboxMessage message;
  message.destination = "billing";
  message.key = "order-1";
  message.payload = "invoice";
  AppendRequest request;
  request.stream = "order-1";
  request.expected = ExpectedVersion::NoStream();
  request.events = events;
  request.outbox = {&message, 1};
  ASSERT_OK(store.Append(request));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       store.ReadStream("order-1"));
  ASSERT_OK(store.checkpoints().Save("totals", read[1].position, 2));
  ASSERT_OK(store.dead_letters().Add("totals", read[0], "boom"));
}

// --- SQLite ------------------------------------------------------------------

class CliStoreAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    path_ = dir_->File("events.db");
    url_ = "sqlite://" + path_;
  }

  // A store of the schema before this code's, as the older code made it.
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
  std::string url_;
};

TEST_F(CliStoreAccessTest, ReadCommandsWorkOnAReadOnlyFileAndWriteNothing) {
  {
    // In the rollback journal mode: a read-write open with the URL's
    // default (wal=true) would switch the file to WAL.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         OpenEventStore(url_ + "?wal=false"));
    Fill(*store);
  }
  ASSERT_EQ(chmod(path_.c_str(), 0444), 0);
  const std::string bytes = ReadFileBytes(path_);
  for (const std::vector<std::string>& args : ReadCommands(url_)) {
    const CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    EXPECT_TRUE(ReadFileBytes(path_) == bytes)
        << args[0] << " modified the file";
    std::ifstream wal(path_ + "-wal");
    EXPECT_FALSE(wal.good()) << args[0] << " switched the file to WAL";
  }
}

TEST_F(CliStoreAccessTest, AnOlderSchemaIsLeftUntouchedUntilUpgrade) {
  MakeOlderStore();
  const std::string bytes = ReadFileBytes(path_);
  std::vector<std::vector<std::string>> commands = ReadCommands(url_);
  commands.push_back({"init", url_});
  for (const std::vector<std::string>& args : commands) {
    const CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.out << r.err;
    EXPECT_THAT(r.err,
                HasSubstr(absl::StrCat("schema version ",
                                       SqliteEventStore::kSchemaVersion - 1)))
        << args[0];
    EXPECT_THAT(r.err, HasSubstr("eventstore upgrade")) << args[0];
    EXPECT_TRUE(ReadFileBytes(path_) == bytes)
        << args[0] << " modified the file";
  }

  CliResult r = RunCli({"upgrade", url_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(
                         "from version ", SqliteEventStore::kSchemaVersion - 1,
                         " to ", SqliteEventStore::kSchemaVersion)));
  const std::string upgraded = ReadFileBytes(path_);
  r = RunCli({"upgrade", url_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("already"));
  EXPECT_TRUE(ReadFileBytes(path_) == upgraded) << "a second upgrade wrote";
  for (const std::vector<std::string>& args : ReadCommands(url_)) {
    if (args[0] == "read") continue;  // the store holds no stream
    r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
  }
}

TEST_F(CliStoreAccessTest, UpgradeCreatesNothing) {
  const CliResult r = RunCli({"upgrade", url_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
  std::ifstream absent(path_);
  EXPECT_FALSE(absent.good()) << "upgrade created the file";
}

// --- PostgreSQL --------------------------------------------------------------

#ifdef EVENTSTORE_TEST_POSTGRES

class CliStoreAccessPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(base_url_, test::SharedPostgresUrl());
    schema_ = test::UniqueSchemaName();
    url_ = absl::StrCat(base_url_, "?schema=", schema_);
    ASSERT_OK_AND_ASSIGN(raw_, test::RawPostgres::Connect(base_url_));
  }

  // The schema version and every column of the schema's tables.
  std::vector<std::vector<std::string>> Shape() {
    absl::StatusOr<std::vector<std::vector<std::string>>> rows = raw_->Query(
        absl::StrCat("SELECT table_name, column_name, data_type FROM "
                     "information_schema.columns WHERE table_schema = '",
                     schema_, "' ORDER BY table_name, column_name"));
    EXPECT_OK(rows);
    std::vector<std::vector<std::string>> shape =
        rows.ok() ? *rows : std::vector<std::vector<std::string>>{};
    absl::StatusOr<std::vector<std::vector<std::string>>> version =
        raw_->Query(absl::StrCat("SELECT max(version) FROM \"", schema_,
                                 "\".eventstore_schema"));
    EXPECT_OK(version);
    if (version.ok()) shape.push_back((*version)[0]);
    return shape;
  }

  std::string base_url_;
  std::string schema_;
  std::string url_;
  std::unique_ptr<test::RawPostgres> raw_;
};

TEST_F(CliStoreAccessPostgresTest, ReadCommandsWriteNothing) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         OpenEventStore(url_));
    Fill(*store);
  }
  // A role that may only read the schema's tables: no command that only
  // looks needs more.
  const std::string role = absl::StrCat(schema_, "_reader");
  ASSERT_OK(raw_->Exec(absl::StrCat(
      "CREATE ROLE ", role, " LOGIN; GRANT USAGE ON SCHEMA \"", schema_,
      "\" TO ", role, "; GRANT SELECT ON ALL TABLES IN SCHEMA \"", schema_,
      "\" TO ", role)));
  std::string reader_url = url_;
  const size_t scheme = reader_url.find("://") + 3;
  const size_t at = reader_url.find('@');
  ASSERT_NE(at, std::string::npos) << reader_url;
  reader_url.replace(scheme, at - scheme, role);
  const auto shape = Shape();
  for (const std::vector<std::string>& args : ReadCommands(reader_url)) {
    const CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
  }
  EXPECT_EQ(Shape(), shape);
}

TEST_F(CliStoreAccessPostgresTest, AnOlderSchemaIsLeftUntouchedUntilUpgrade) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<postgres::PgConnection> conn,
                         postgres::PgConnection::Connect(
                             base_url_, absl::Seconds(10), absl::Seconds(30)));
    ASSERT_OK(postgres::CreateSchemaAtVersion(
        *conn, schema_, PostgresEventStore::kSchemaVersion - 1));
  }
  const auto shape = Shape();
  std::vector<std::vector<std::string>> commands = ReadCommands(url_);
  commands.push_back({"init", url_});
  for (const std::vector<std::string>& args : commands) {
    const CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("eventstore upgrade")) << args[0];
    EXPECT_EQ(Shape(), shape) << args[0] << " changed the schema";
  }
  CliResult r = RunCli({"upgrade", url_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              HasSubstr(absl::StrCat(
                  "from version ", PostgresEventStore::kSchemaVersion - 1,
                  " to ", PostgresEventStore::kSchemaVersion)));
  r = RunCli({"upgrade", url_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("already"));
  r = RunCli({"info", url_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore
