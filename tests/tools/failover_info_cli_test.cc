// `eventstore info` on failover: a journal file (its pending and parked
// appends), a replica file (the copy it holds), and a failover URL (the
// failover and replica sections, against a SQLite primary, a PostgreSQL
// primary, and one that cannot be reached). Run as a process; `info` only
// looks: it neither replays the journal nor syncs the replica. Suites whose
// names contain "Postgres" run as one ctest group.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/event_importer.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/open_event_store.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/failover/failover_fixture.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/cli_process.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore::test {
namespace {

using ::google::protobuf::Value;
using ::testing::HasSubstr;
using ::testing::Not;

Value Json(const std::string& text) {
  Value value;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &value);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in: " << text;
  return value;
}

const Value& Field(const Value& v, const std::string& name) {
  static const Value* const kNull = new Value;
  auto it = v.struct_value().fields().find(name);
  return it == v.struct_value().fields().end() ? *kNull : it->second;
}

class CliFailoverInfoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    SqliteOptions options;
    options.path = dir_->File("primary.db");
    ASSERT_OK_AND_ASSIGN(primary_, SqliteEventStore::Open(options));
    primary_url_ = absl::StrCat("sqlite://", dir_->File("primary.db"));
    journal_url_ = absl::StrCat("sqlite://", dir_->File("journal.db"));
  }

  // Leaves in journal.db, through a FailoverEventStore over primary_ that
  // is made unreachable: order-1 replayed, order-2 parked (a rival wrote
  // it on the primary meanwhile), and order-3 (2 events) pending.
  void MakeJournal() {
    auto switchable = std::make_unique<SwitchablePrimary>(primary_.get());
    SwitchablePrimary* primary = switchable.get();
    FailoverOptions options;
    options.allow_fallback = true;
    options.health_check_interval = absl::ZeroDuration();
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<FailoverEventStore> store,
                         CreateFailoverOver(std::move(switchable),
                                            dir_->File("journal.db"), options));
    ASSERT_OK(
        store->Append("order-1", ExpectedVersion::NoStream(), {Event("a")}));
    primary->down = true;
    ASSERT_OK(store->Append("order-1", ExpectedVersion::Exactly(1),
                            {Event("b"), Event("c")}));
    ASSERT_OK(
        store->Append("order-2", ExpectedVersion::NoStream(), {Event("d")}));
    ASSERT_OK(primary_->Append("order-2", ExpectedVersion::NoStream(),
                               {Event("rival")}));
    primary->down = false;
    ASSERT_OK(store->ReplayNow());
    ASSERT_EQ(store->Status().parked, 1);
    primary->down = true;
    ASSERT_OK(store->Append("order-3", ExpectedVersion::NoStream(),
                            {Event("e"), Event("f")}));
    ASSERT_EQ(store->Status().pending, 1);
  }

  // Opens `url` (a failover URL with a replica), appends `events` to
  // order-r through it and waits until the replica holds them.
  void FillReplica(const std::string& url, int events) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         OpenEventStore(url));
    auto* failover = dynamic_cast<FailoverEventStore*>(store.get());
    ASSERT_NE(failover, nullptr);
    ASSERT_NE(failover->replica(), nullptr);
    ASSERT_OK(store->Append("customer-r", ExpectedVersion::Any(),
                            {Event("not copied")}));
    std::vector<EventData> batch;
    for (int i = 0; i < events; ++i) batch.push_back(Event("r"));
    ASSERT_OK_AND_ASSIGN(
        AppendResult appended,
        store->Append("order-r", ExpectedVersion::NoStream(), batch));
    ASSERT_TRUE(failover->replica()->WaitForPosition(appended.last_position,
                                                     absl::Seconds(30)));
  }

  // The copies the replica file at `path` holds.
  std::vector<MigrationState> Copies(const std::string& path) {
    absl::StatusOr<std::unique_ptr<EventStore>> replica =
        OpenEventStore(absl::StrCat("sqlite://", path));
    EXPECT_OK(replica);
    if (!replica.ok()) return {};
    absl::StatusOr<std::vector<MigrationState>> copies =
        (*replica)->importer().ListMigrations();
    EXPECT_OK(copies);
    return copies.ok() ? *copies : std::vector<MigrationState>();
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<EventStore> primary_;
  std::string primary_url_;
  std::string journal_url_;
};

TEST_F(CliFailoverInfoTest, AJournalFileShowsItsPendingAndParkedAppends) {
  MakeJournal();
  const CliResult table = RunCli({"info", journal_url_});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("\nfailover journal\n"));
  EXPECT_THAT(table.out, HasSubstr("pending appends 1 (2 events)"));
  EXPECT_THAT(table.out, HasSubstr("parked appends  1"));

  const CliResult json = RunCli({"info", journal_url_, "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Value journal = Field(Json(json.out), "failover_journal");
  EXPECT_EQ(Field(journal, "pending_appends").number_value(), 1);
  EXPECT_EQ(Field(journal, "pending_events").number_value(), 2);
  EXPECT_EQ(Field(journal, "parked").number_value(), 1);

  // A plain store has no such section.
  const CliResult plain = RunCli({"info", primary_url_, "--format", "json"});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.out, Not(HasSubstr("failover_journal")));
  EXPECT_THAT(plain.out, Not(HasSubstr("replica_of")));
}

TEST_F(CliFailoverInfoTest, AFailoverUrlShowsTheModeAndOnlyLooks) {
  MakeJournal();
  const std::string url =
      absl::StrCat("failover:", primary_url_, "?journal=", journal_url_);
  const CliResult table = RunCli({"info", url});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("backend         sqlite"));
  EXPECT_THAT(table.out, HasSubstr("\nfailover\nmode            recovering\n"));
  EXPECT_THAT(table.out, HasSubstr("pending appends 1 (2 events)"));
  EXPECT_THAT(table.out, HasSubstr("parked appends  1"));
  EXPECT_THAT(table.out, HasSubstr("last error      -"));
  EXPECT_THAT(table.out, Not(HasSubstr("\nreplica\n")));

  const CliResult json = RunCli({"info", url, "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Value info = Json(json.out);
  EXPECT_EQ(Field(info, "backend").string_value(), "sqlite");
  const Value& failover = Field(info, "failover");
  EXPECT_EQ(Field(failover, "mode").string_value(), "recovering");
  EXPECT_EQ(Field(failover, "pending_appends").number_value(), 1);
  EXPECT_EQ(Field(failover, "parked").number_value(), 1);
  EXPECT_TRUE(Field(failover, "last_error").has_null_value());

  // Nothing was replayed: order-3 is still only in the journal.
  ASSERT_OK_AND_ASSIGN(const int64_t version,
                       primary_->StreamVersion("order-3"));
  EXPECT_EQ(version, 0);
  EXPECT_EQ(RunCli({"info", url + "&replica_batch_size=0"}).exit_code, 2);
}

// Other commands refuse a failover URL (opening one would replay the
// journal and write the replica) and say what to give them instead.
TEST_F(CliFailoverInfoTest, OtherCommandsRefuseAFailoverUrlAndChangeNothing) {
  MakeJournal();
  const std::string url = absl::StrCat(
      "failover:", primary_url_, "?journal=", journal_url_, "&replica=order-");
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"streams", url}, {"read", url, "order-3"}, {"verify", url}}) {
    const CliResult result = RunCli(args);
    EXPECT_NE(result.exit_code, 0) << args[0];
    EXPECT_THAT(result.err, HasSubstr("a failover URL is for applications"))
        << args[0];
  }
  // Nothing was replayed, and no replica file was made.
  ASSERT_OK_AND_ASSIGN(const int64_t version,
                       primary_->StreamVersion("order-3"));
  EXPECT_EQ(version, 0);
  EXPECT_FALSE(FileExists(dir_->File("journal.db.replica")));
}

TEST_F(CliFailoverInfoTest, AReplicaFileAndItsLagBehindTheFailoverPrimary) {
  const std::string url =
      absl::StrCat("failover:", primary_url_, "?journal=", journal_url_,
                   "&health_check_interval_ms=0&replica=order-");
  FillReplica(url, 3);
  const std::string replica_path = dir_->File("journal.db.replica");
  const std::vector<MigrationState> before = Copies(replica_path);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(before[0].events, 3);
  // Two events the replica lacks, and one of a stream it does not copy.
  ASSERT_OK(primary_->Append("order-9", ExpectedVersion::NoStream(),
                             {Event("x"), Event("y")}));
  ASSERT_OK(primary_->Append("customer-9", ExpectedVersion::NoStream(),
                             {Event("z")}));

  const CliResult file = RunCli({"info", "sqlite://" + replica_path});
  ASSERT_EQ(file.exit_code, 0) << file.err;
  EXPECT_THAT(
      file.out,
      HasSubstr(absl::StrCat(
          "replica of ", primary_url_, ": 3 events, last source position ",
          before[0].last_source_position.ToString(), ", updated at ")));
  const CliResult file_json =
      RunCli({"info", "sqlite://" + replica_path, "--format", "json"});
  ASSERT_EQ(file_json.exit_code, 0) << file_json.err;
  const Value file_info = Json(file_json.out);
  const Value& copies = Field(file_info, "replica_of");
  ASSERT_EQ(copies.list_value().values_size(), 1) << file_json.out;
  const Value& copy = copies.list_value().values(0);
  EXPECT_EQ(Field(copy, "source").string_value(), primary_url_);
  EXPECT_EQ(Field(copy, "events").number_value(), 3);
  EXPECT_EQ(Field(copy, "last_source_position").string_value(),
            before[0].last_source_position.ToString());

  const CliResult table = RunCli({"info", url});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("mode            primary"));
  EXPECT_THAT(table.out, HasSubstr("\nreplica\nlocation        sqlite://"));
  EXPECT_THAT(table.out, HasSubstr("prefixes        order-\n"));
  EXPECT_THAT(table.out, HasSubstr(absl::StrCat(
                             "position        ",
                             before[0].last_source_position.ToString(), "\n")));
  EXPECT_THAT(table.out, HasSubstr("lag             2 events, "));
  EXPECT_THAT(table.out, HasSubstr("events copied   3"));

  const CliResult json = RunCli({"info", url, "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Value replica = Field(Json(json.out), "replica");
  EXPECT_EQ(Field(replica, "lag_events").number_value(), 2);
  EXPECT_EQ(Field(replica, "events").number_value(), 3);
  ASSERT_EQ(Field(replica, "prefixes").list_value().values_size(), 1);
  EXPECT_EQ(Field(replica, "prefixes").list_value().values(0).string_value(),
            "order-");
  ASSERT_OK_AND_ASSIGN(const Position head, primary_->HeadPosition());
  EXPECT_EQ(Field(replica, "primary_head").string_value(), head.ToString());

  // Nothing was synced: the replica still holds 3 events.
  const std::vector<MigrationState> after = Copies(replica_path);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].events, 3);
}

TEST_F(CliFailoverInfoTest, AReplicaNotCreatedYet) {
  const CliResult r =
      RunCli({"info", absl::StrCat("failover:", primary_url_,
                                   "?journal=", journal_url_, "&replica=*")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("(no file yet)"));
  EXPECT_THAT(r.out, HasSubstr("prefixes        every stream"));
  EXPECT_THAT(r.out, HasSubstr("position        - (nothing copied yet)"));
  EXPECT_THAT(r.out, HasSubstr("0 (0 events), no journal file"));
}

#ifdef EVENTSTORE_TEST_POSTGRES

class CliFailoverInfoPostgresTest : public CliFailoverInfoTest {};

TEST_F(CliFailoverInfoPostgresTest, APostgresPrimaryWithAReplica) {
  ASSERT_OK_AND_ASSIGN(const std::string server_url, SharedPostgresUrl());
  const std::string schema = UniqueSchemaName();
  const std::string password = "s3cr3t-Pa55";
  std::string pg_url = server_url;
  pg_url.insert(pg_url.find('@'), ":" + password);
  absl::StrAppend(&pg_url, "?schema=", schema);
  const std::string url =
      absl::StrCat("failover:", pg_url, "&journal=", journal_url_,
                   "&health_check_interval_ms=0&replica=*");
  FillReplica(url, 3);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> primary,
                       OpenEventStore(pg_url));
  ASSERT_OK(
      primary->Append("order-9", ExpectedVersion::NoStream(), {Event("x")}));

  const CliResult json = RunCli({"info", url, "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, Not(HasSubstr(password)));
  const Value info = Json(json.out);
  EXPECT_EQ(Field(info, "backend").string_value(), "postgres");
  EXPECT_EQ(Field(Field(info, "failover"), "mode").string_value(), "primary");
  const Value& replica = Field(info, "replica");
  EXPECT_EQ(Field(replica, "events").number_value(), 4);  // customer-r too
  EXPECT_EQ(Field(replica, "lag_events").number_value(), 1);
  EXPECT_EQ(Field(replica, "prefixes").list_value().values_size(), 0);

  const CliResult file =
      RunCli({"info", "sqlite://" + dir_->File("journal.db.replica")});
  ASSERT_EQ(file.exit_code, 0) << file.err;
  EXPECT_THAT(file.out, HasSubstr("replica of postgresql://"));
  EXPECT_THAT(file.out, HasSubstr(":***@"));
  EXPECT_THAT(file.out, Not(HasSubstr(password)));
}

// A primary nothing listens for: the journal and the replica are shown
// all the same, mode fallback, exit code 1, the password nowhere.
TEST_F(CliFailoverInfoPostgresTest, AnUnreachablePrimary) {
  MakeJournal();
  FillReplica(absl::StrCat("failover:", primary_url_, "?journal=sqlite://",
                           dir_->File("other-journal.db"),
                           "&health_check_interval_ms=0&replica=order-&",
                           "replica_url=sqlite://", dir_->File("replica.db")),
              2);
  const std::string password = "s3cr3t-Pa55";
  const std::string url = absl::StrCat(
      "failover:postgresql://app:", password,
      "@127.0.0.1:1/shop?connect_timeout_ms=2000&journal=", journal_url_,
      "&replica=order-&replica_url=sqlite://", dir_->File("replica.db"));
  const CliResult r = RunCli({"info", url});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("failover\nmode            fallback\n"));
  EXPECT_THAT(r.out, HasSubstr("pending appends 1 (2 events)"));
  EXPECT_THAT(r.out, HasSubstr("last error      "));
  EXPECT_THAT(r.out, HasSubstr("primary head    - (the primary is "
                               "unreachable)"));
  // order-1 (3 events) and order-2 (1) of the journal's primary, order-r.
  EXPECT_THAT(r.out, HasSubstr("events copied   6\n"));
  EXPECT_THAT(r.out, HasSubstr("Connection refused Is the server running"));
  EXPECT_THAT(r.out, Not(HasSubstr("backend")));
  EXPECT_FALSE(r.err.empty());
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(password)));

  const CliResult json = RunCli({"info", url, "--format", "json"});
  EXPECT_EQ(json.exit_code, 1) << json.err;
  const Value info = Json(json.out);
  EXPECT_EQ(Field(Field(info, "failover"), "mode").string_value(), "fallback");
  EXPECT_FALSE(
      Field(Field(info, "failover"), "last_error").string_value().empty());
  EXPECT_TRUE(Field(Field(info, "replica"), "lag_events").has_null_value());
  EXPECT_THAT(json.out + json.err, Not(HasSubstr(password)));
}

#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore::test
