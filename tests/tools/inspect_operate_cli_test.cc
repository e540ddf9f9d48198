// The `eventstore` binary's inspect and operate commands (info, streams,
// read, tail, init, verify, checkpoints, dlq, outbox), run as a process on
// real SQLite files and on the test PostgreSQL server.
//
// The events appended here are of the test protos, which the tool does not
// link: their JSON rendering comes only from the descriptors the store
// recorded. Suites whose names contain "Postgres" run as one ctest group.

#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/lease.h"
#include "eventstore/open_event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/cli_process.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore {
namespace {

using ::eventstore::test::CliProcess;
using ::eventstore::test::CliResult;
using ::eventstore::test::RunCli;
using ::eventstore::test::TempDir;
using ::google::protobuf::Value;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPlaced[] = "eventstore.test.v1.OrderPlaced";
constexpr char kShipped[] = "eventstore.test.v1.OrderShipped";

// Parses one JSON document (an object or an array).
Value Json(const std::string& text) {
  Value value;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &value);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in: " << text;
  return value;
}

// The lines of `text` that are not empty.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty()) lines.push_back(std::string(line));
  }
  return lines;
}

const Value& Field(const Value& v, const std::string& name) {
  static const Value* const kNull = new Value;
  auto it = v.struct_value().fields().find(name);
  return it == v.struct_value().fields().end() ? *kNull : it->second;
}

std::string Str(const Value& v, const std::string& name) {
  return Field(v, name).string_value();
}

EventData PlacedEvent(const std::string& order_id, int64_t units) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  placed.mutable_total()->set_currency("EUR");
  placed.mutable_total()->set_units(units);
  placed.add_items("book");
  placed.mutable_placed_at()->set_seconds(1700000000);
  v1::EventMetadata metadata;
  metadata.set_correlation_id(absl::StrCat("corr-", order_id));
  metadata.set_tenant_id("acme");
  return EventData::From(placed, metadata);
}

EventData ShippedEvent(const std::string& order_id) {
  test::v1::OrderShipped shipped;
  shipped.set_order_id(order_id);
  shipped.set_carrier("post");
  return EventData::From(shipped);
}

// A type no descriptor pool knows: recorded without a descriptor.
EventData MysteryEvent() {
  EventData event;
  event.type = "unknown.v1.Mystery";
  event.payload = std::string("\x08\x2a", 2);
  return event;
}

// What every test of a backend starts from: order-1 (placed, shipped),
// order-2 (placed), invoice-1 (placed).
void Fill(EventStore& store) {
  ASSERT_OK(store.Append("order-1", ExpectedVersion::NoStream(),
                         {PlacedEvent("1", 10), ShippedEvent("1")}));
  ASSERT_OK(store.Append("order-2", ExpectedVersion::NoStream(),
                         {PlacedEvent("2", 20)}));
  ASSERT_OK(store.Append("invoice-1", ExpectedVersion::NoStream(),
                         {PlacedEvent("i1", 30)}));
}

// Checks the rendering of order-1's events (read or tail, jsonl or json).
void ExpectOrder1Rendered(const Value& placed, const Value& shipped) {
  EXPECT_EQ(Str(placed, "stream"), "order-1");
  EXPECT_EQ(Field(placed, "version").number_value(), 1);
  EXPECT_EQ(Str(placed, "type"), kPlaced);
  const Value& data = Field(placed, "data");
  EXPECT_EQ(Str(data, "order_id"), "1");
  EXPECT_EQ(Str(Field(data, "total"), "currency"), "EUR");
  // int64 is a string in proto JSON.
  EXPECT_EQ(Str(Field(data, "total"), "units"), "10");
  EXPECT_EQ(Field(data, "items").list_value().values(0).string_value(), "book");
  // A well-known type from the recorded set, printed as such.
  EXPECT_EQ(Str(data, "placed_at"), "2023-11-14T22:13:20Z");
  EXPECT_EQ(Str(Field(placed, "metadata"), "correlation_id"), "corr-1");
  EXPECT_EQ(Str(Field(placed, "metadata"), "tenant_id"), "acme");
  EXPECT_FALSE(Str(placed, "id").empty());
  EXPECT_FALSE(Str(placed, "recorded_at").empty());
  EXPECT_EQ(Str(shipped, "type"), kShipped);
  EXPECT_EQ(Str(Field(shipped, "data"), "carrier"), "post");
}

// --- SQLite files
// --------------------------------------------------------------

class CliSqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    path_ = dir_->File("events.db");
    url_ = "sqlite://" + path_;
    ASSERT_OK_AND_ASSIGN(store_, OpenEventStore(url_));
    Fill(*store_);
  }

  // Runs `sql` on the file through a connection of its own, behind the
  // store's back (to damage it as a disk or another program would).
  void ExecRaw(const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }

  std::unique_ptr<TempDir> dir_;
  std::string path_;
  std::string url_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(CliSqliteTest, EveryCommandHasHelpWithAnExample) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"info", "--help"},
           {"streams", "--help"},
           {"read", "--help"},
           {"tail", "--help"},
           {"init", "--help"},
           {"verify", "--help"},
           {"checkpoints", "--help"},
           {"checkpoints", "rebuild", "--help"},
           {"dlq", "--help"},
           {"dlq", "list", "--help"},
           {"dlq", "show", "--help"},
           {"dlq", "retry", "--help"},
           {"dlq", "resolve", "--help"},
           {"outbox", "--help"},
           {"outbox", "stats", "--help"},
           {"outbox", "list", "--help"},
           {"outbox", "retry", "--help"}}) {
    const CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << " " << args[1] << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("Example:")) << args[0] << " " << args[1];
    EXPECT_THAT(r.out, HasSubstr("eventstore ")) << args[0] << " " << args[1];
  }
}

TEST_F(CliSqliteTest, UsageErrorsExitWithTwo) {
  EXPECT_EQ(RunCli({}).exit_code, 2);
  EXPECT_EQ(RunCli({"no-such-command"}).exit_code, 2);
  EXPECT_EQ(RunCli({"info", url_, "--format", "xml"}).exit_code, 2);
  EXPECT_EQ(RunCli({"read", url_, "order-1", "--count", "-3"}).exit_code, 2);
  EXPECT_EQ(RunCli({"dlq", url_}).exit_code, 2);
  EXPECT_EQ(RunCli({"dlq", url_, "show", "p", "not-a-uuid"}).exit_code, 2);
  EXPECT_EQ(RunCli({"tail", url_, "--from", "x/y/z"}).exit_code, 2);
  // No URL and no EVENTSTORE_URL.
  const CliResult none = RunCli({"info"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("EVENTSTORE_URL"));
  // A URL of an unknown scheme, and a bad parameter: the part is named.
  const CliResult scheme = RunCli({"info", "mysql://x/y"});
  EXPECT_EQ(scheme.exit_code, 2);
  EXPECT_THAT(scheme.err, HasSubstr("unknown scheme 'mysql'"));
  const CliResult param = RunCli({"info", url_ + "?busy_timeout_ms=soon"});
  EXPECT_EQ(param.exit_code, 2);
  EXPECT_THAT(param.err, HasSubstr("busy_timeout_ms"));
}

TEST_F(CliSqliteTest, InfoTableAndJson) {
  const CliResult table = RunCli({"info", url_});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("backend         sqlite"));
  EXPECT_THAT(table.out, HasSubstr("streams         3"));
  EXPECT_THAT(table.out, HasSubstr("events          4"));
  EXPECT_THAT(table.out, HasSubstr(path_));

  const CliResult json = RunCli({"info", url_, "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Value info = Json(json.out);
  EXPECT_EQ(Str(info, "backend"), "sqlite");
  EXPECT_EQ(Field(info, "streams").number_value(), 3);
  EXPECT_EQ(Field(info, "events").number_value(), 4);
  ASSERT_OK_AND_ASSIGN(Position head, store_->HeadPosition());
  EXPECT_EQ(Str(info, "head"), head.ToString());
  EXPECT_EQ(Field(info, "schema_version").number_value(),
            Field(info, "code_schema_version").number_value());
  EXPECT_GT(Field(info, "size_bytes").number_value(), 0);
  EXPECT_EQ(Field(info, "recorded_types").number_value(), 2);
}

TEST_F(CliSqliteTest, UrlFromEnvironment) {
  const CliResult info = RunCli({"info"}, {{"EVENTSTORE_URL", url_}});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("events          4"));
  // read STREAM without a URL: the one argument is the stream.
  const CliResult read = RunCli({"read", "order-2", "--format", "jsonl"},
                                {{"EVENTSTORE_URL", url_}});
  ASSERT_EQ(read.exit_code, 0) << read.err;
  ASSERT_EQ(Lines(read.out).size(), 1u) << read.out;
  EXPECT_EQ(Str(Json(read.out), "stream"), "order-2");
  // Subcommands of dlq and outbox after no URL.
  const CliResult dlq = RunCli({"dlq", "list"}, {{"EVENTSTORE_URL", url_}});
  EXPECT_EQ(dlq.exit_code, 0) << dlq.err;
  const CliResult outbox =
      RunCli({"outbox", "stats"}, {{"EVENTSTORE_URL", url_}});
  EXPECT_EQ(outbox.exit_code, 0) << outbox.err;
  EXPECT_THAT(outbox.out, HasSubstr("pending"));
  // A URL given wins over the environment.
  const CliResult given = RunCli({"info", url_, "--format", "json"},
                                 {{"EVENTSTORE_URL", "sqlite:///nowhere.db"}});
  EXPECT_EQ(given.exit_code, 0) << given.err;
}

TEST_F(CliSqliteTest, MissingFileIsNotCreatedExceptByInit) {
  const std::string missing = dir_->File("typo.db");
  const CliResult info = RunCli({"info", "sqlite://" + missing});
  EXPECT_EQ(info.exit_code, 1);
  EXPECT_THAT(info.err, HasSubstr("typo.db' does not exist"));
  EXPECT_NE(access(missing.c_str(), F_OK), 0) << "info created the file";

  const CliResult init = RunCli({"init", "sqlite://" + missing});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_THAT(init.out, HasSubstr("schema version"));
  EXPECT_EQ(access(missing.c_str(), F_OK), 0);
  const CliResult again = RunCli({"init", "sqlite://" + missing});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  const CliResult empty = RunCli({"info", "sqlite://" + missing});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_THAT(empty.out, HasSubstr("events          0"));
}

TEST_F(CliSqliteTest, InitRefusesAFileOfAnotherApplication) {
  const std::string foreign = dir_->File("foreign.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const CliResult r = RunCli({"init", "sqlite://" + foreign});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not an eventstore database"));
}

TEST_F(CliSqliteTest, StreamsWithPrefixAndFormats) {
  const CliResult table = RunCli({"streams", url_});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  std::vector<std::string> lines = Lines(table.out);
  ASSERT_EQ(lines.size(), 4u) << table.out;
  EXPECT_THAT(lines[0], HasSubstr("STREAM"));
  EXPECT_THAT(lines[1], HasSubstr("invoice-1"));
  EXPECT_THAT(lines[2], HasSubstr("order-1"));
  EXPECT_THAT(lines[3], HasSubstr("order-2"));

  const CliResult json =
      RunCli({"streams", url_, "--prefix", "order-", "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Value list = Json(json.out);
  ASSERT_EQ(list.list_value().values_size(), 2) << json.out;
  EXPECT_EQ(Str(list.list_value().values(0), "stream"), "order-1");
  EXPECT_EQ(Field(list.list_value().values(0), "version").number_value(), 2);
  EXPECT_EQ(Str(list.list_value().values(1), "stream"), "order-2");

  const CliResult jsonl =
      RunCli({"streams", url_, "--format", "jsonl", "--limit", "2"});
  ASSERT_EQ(jsonl.exit_code, 0) << jsonl.err;
  lines = Lines(jsonl.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Str(Json(lines[1]), "stream"), "order-1");
}

TEST_F(CliSqliteTest, ReadRendersTypesOnlyTheStoreKnows) {
  const CliResult r = RunCli({"read", url_, "order-1", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  ExpectOrder1Rendered(Json(lines[0]), Json(lines[1]));

  const CliResult json = RunCli({"read", url_, "order-1", "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Value list = Json(json.out);
  ASSERT_EQ(list.list_value().values_size(), 2);
  ExpectOrder1Rendered(list.list_value().values(0),
                       list.list_value().values(1));

  const CliResult table = RunCli({"read", url_, "order-1"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("\"carrier\":\"post\""));
}

TEST_F(CliSqliteTest, ReadFromCountBackward) {
  std::vector<EventData> more;
  for (int i = 0; i < 5; ++i) more.push_back(ShippedEvent(absl::StrCat(i)));
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::Exactly(2), more));
  const CliResult forward = RunCli({"read", url_, "order-1", "--from", "3",
                                    "--count", "2", "--format", "jsonl"});
  ASSERT_EQ(forward.exit_code, 0) << forward.err;
  std::vector<std::string> lines = Lines(forward.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Field(Json(lines[0]), "version").number_value(), 3);
  EXPECT_EQ(Field(Json(lines[1]), "version").number_value(), 4);

  const CliResult backward = RunCli({"read", url_, "order-1", "--backward",
                                     "--count", "3", "--format", "jsonl"});
  ASSERT_EQ(backward.exit_code, 0) << backward.err;
  lines = Lines(backward.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(Field(Json(lines[0]), "version").number_value(), 7);
  EXPECT_EQ(Field(Json(lines[2]), "version").number_value(), 5);

  const CliResult absent = RunCli({"read", url_, "order-404"});
  EXPECT_EQ(absent.exit_code, 1);
  EXPECT_THAT(absent.err, HasSubstr("stream 'order-404' does not exist"));
}

TEST_F(CliSqliteTest, UndescribedTypeShowsAsBase64WithItsName) {
  ASSERT_OK(
      store_->Append("odd-1", ExpectedVersion::NoStream(), {MysteryEvent()}));
  const CliResult r = RunCli({"read", url_, "odd-1", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value e = Json(r.out);
  EXPECT_EQ(Str(e, "type"), "unknown.v1.Mystery");
  EXPECT_EQ(Str(e, "data_base64"), "CCo=");
  EXPECT_THAT(Str(e, "data_error"), HasSubstr("unknown.v1.Mystery"));
  EXPECT_FALSE(Field(e, "data").has_struct_value());
  const CliResult table = RunCli({"read", url_, "odd-1"});
  EXPECT_THAT(table.out, HasSubstr("base64:CCo="));
}

TEST_F(CliSqliteTest, TailLastEventsWithFilters) {
  const CliResult last =
      RunCli({"tail", url_, "--count", "2", "--format", "jsonl"});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  std::vector<std::string> lines = Lines(last.out);
  ASSERT_EQ(lines.size(), 2u) << last.out;
  EXPECT_EQ(Str(Json(lines[0]), "stream"), "order-2");
  EXPECT_EQ(Str(Json(lines[1]), "stream"), "invoice-1");

  const CliResult typed =
      RunCli({"tail", url_, "--type", kShipped, "--format", "jsonl"});
  ASSERT_EQ(typed.exit_code, 0) << typed.err;
  lines = Lines(typed.out);
  ASSERT_EQ(lines.size(), 1u) << typed.out;
  EXPECT_EQ(Str(Json(lines[0]), "type"), kShipped);

  const CliResult prefixed =
      RunCli({"tail", url_, "--prefix", "order-", "--format", "jsonl"});
  ASSERT_EQ(prefixed.exit_code, 0) << prefixed.err;
  EXPECT_EQ(Lines(prefixed.out).size(), 3u) << prefixed.out;

  const CliResult from =
      RunCli({"tail", url_, "--from", "2", "--format", "jsonl"});
  ASSERT_EQ(from.exit_code, 0) << from.err;
  EXPECT_EQ(Lines(from.out).size(), 2u) << from.out;
}

TEST_F(CliSqliteTest, TailFollowPrintsNewEventsAndStopsOnSignals) {
  for (int signal : {SIGINT, SIGTERM}) {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<CliProcess> tail,
        CliProcess::Start({"tail", url_, "--follow", "--prefix", "order-",
                           "--count", "0", "--format", "jsonl"}));
    // Once it says it follows, append (one event it must skip).
    ASSERT_TRUE(
        tail->WaitForErrors("following from position", absl::Seconds(60)))
        << tail->Errors();
    const std::string id = absl::StrCat("new-", signal);
    ASSERT_OK(store_->Append("invoice-9", ExpectedVersion::Any(),
                             {PlacedEvent("skip", 1)}));
    ASSERT_OK(store_->Append(absl::StrCat("order-", id),
                             ExpectedVersion::NoStream(),
                             {PlacedEvent(id, 5)}));
    EXPECT_TRUE(tail->WaitForOutput(id, absl::Seconds(20))) << tail->Output();
    ASSERT_OK_AND_ASSIGN(CliResult r, tail->Stop(signal));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::vector<std::string> lines = Lines(r.out);
    ASSERT_EQ(lines.size(), 1u) << r.out;
    EXPECT_EQ(Str(Field(Json(lines[0]), "data"), "order_id"), id);
  }
}

TEST_F(CliSqliteTest, TailFollowRendersATypeFirstAppendedWhileFollowing) {
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<CliProcess> tail,
      CliProcess::Start({"tail", url_, "-f", "-n", "0", "--format", "jsonl"}));
  ASSERT_TRUE(tail->WaitForErrors("following from position", absl::Seconds(60)))
      << tail->Errors();
  test::v1::Tick tick;
  tick.set_writer(7);
  ASSERT_OK(
      store_->Append("ticks", ExpectedVersion::Any(), {EventData::From(tick)}));
  EXPECT_TRUE(tail->WaitForOutput("ticks", absl::Seconds(20)));
  ASSERT_OK_AND_ASSIGN(CliResult r, tail->Stop(SIGINT));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Str(Field(Json(r.out), "data"), "writer"), "7") << r.out;
}

TEST_F(CliSqliteTest, VerifyPassesOnAConsistentStore) {
  const CliResult r = RunCli({"verify", url_, "--payloads"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("no problem found"));
  const CliResult json = RunCli({"verify", url_, "--format", "json"});
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_EQ(Json(json.out).list_value().values_size(), 0);
}

TEST_F(CliSqliteTest, VerifyFindsAVersionGap) {
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::Exactly(2),
                           {ShippedEvent("1")}));
  store_.reset();
  // Corrupt the file behind the store's back: order-1 goes 1, 2, 5.
  ASSERT_NO_FATAL_FAILURE(
      ExecRaw("UPDATE events SET version = 5 "
              "WHERE stream = 'order-1' AND version = 3"));

  const CliResult r = RunCli({"verify", url_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("order-1"));
  EXPECT_THAT(r.out, HasSubstr("version 5"));
  EXPECT_THAT(r.out, HasSubstr("follows version 2 (a gap)"));
  EXPECT_THAT(r.out, HasSubstr("1 problem in "));

  const CliResult jsonl = RunCli({"verify", url_, "--format", "jsonl"});
  EXPECT_EQ(jsonl.exit_code, 1);
  const Value problem = Json(jsonl.out);
  EXPECT_EQ(Str(problem, "check"), "versions");
  EXPECT_EQ(Str(problem, "where"), "order-1");
}

// Rows damaged behind the store's back (issue #9): a changed payload (its
// checksum no longer matches) and metadata that does not parse. verify
// reports both and reads on; read and tail print them as damaged; export
// refuses, naming the position.
TEST_F(CliSqliteTest, VerifyReportsDamagedEventsAndKeepsReading) {
  store_.reset();
  ASSERT_NO_FATAL_FAILURE(
      ExecRaw("UPDATE events SET payload = X'0a0139' "
              "WHERE stream = 'order-1' AND version = 2;"
              "UPDATE events SET metadata = X'0a057265712dff' "
              "WHERE stream = 'order-2' AND version = 1"));

  const CliResult r = RunCli({"verify", url_, "--payloads"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("2 problems in 4 events"));
  EXPECT_THAT(r.out, HasSubstr("at position 2 (stream 'order-1', version 2) "
                               "is damaged: its checksum"));
  EXPECT_THAT(r.out, HasSubstr("at position 3 (stream 'order-2', version 1) "
                               "is damaged: its metadata does not parse"));
  const CliResult jsonl = RunCli({"verify", url_, "--format", "jsonl"});
  EXPECT_EQ(jsonl.exit_code, 1);
  const std::vector<std::string> problems = Lines(jsonl.out);
  ASSERT_EQ(problems.size(), 2u) << jsonl.out;
  EXPECT_EQ(Str(Json(problems[0]), "check"), "damaged");
  EXPECT_EQ(Str(Json(problems[0]), "where"), "order-1");

  CliResult read = RunCli({"read", url_, "order-1"});
  EXPECT_EQ(read.exit_code, 0) << read.err;
  EXPECT_THAT(read.out, HasSubstr("DAMAGED: "));
  EXPECT_THAT(read.out, HasSubstr("order_id"));  // version 1 is intact
  const CliResult tail = RunCli({"tail", url_, "--format", "jsonl"});
  EXPECT_EQ(tail.exit_code, 0) << tail.err;
  const std::vector<std::string> events = Lines(tail.out);
  ASSERT_EQ(events.size(), 4u) << tail.out;
  EXPECT_THAT(Str(Json(events[1]), "damage"), HasSubstr("checksum"));
  EXPECT_EQ(Str(Json(events[3]), "stream"), "invoice-1");

  const CliResult exported =
      RunCli({"export", url_, dir_->File("out.esx"), "-q"});
  EXPECT_NE(exported.exit_code, 0);
  EXPECT_THAT(exported.err, HasSubstr("at position 2"));
  EXPECT_THAT(exported.err, HasSubstr("eventstore verify"));
}

TEST_F(CliSqliteTest, VerifyChecksChecksumsWhateverTheUrlSays) {
  store_.reset();
  ASSERT_NO_FATAL_FAILURE(
      ExecRaw("UPDATE events SET payload = X'0a0139' "
              "WHERE stream = 'order-1' AND version = 2"));
  const std::string unverified = url_ + "?verify_checksums=false";

  // The option reaches the store: `read` trusts the changed payload...
  const CliResult read = RunCli({"read", unverified, "order-1"});
  EXPECT_EQ(read.exit_code, 0) << read.err;
  EXPECT_THAT(read.out, Not(HasSubstr("DAMAGED")));
  // ...but `verify` compares the checksum anyway.
  const CliResult r = RunCli({"verify", unverified});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 problem in 4 events"));
  EXPECT_THAT(r.out, HasSubstr("at position 2 (stream 'order-1', version 2) "
                               "is damaged: its checksum"));
  // So does `export`: a copy must be faithful.
  const CliResult exported =
      RunCli({"export", unverified, dir_->File("out.esx"), "-q"});
  EXPECT_NE(exported.exit_code, 0);
  EXPECT_THAT(exported.err, HasSubstr("at position 2"));
}

TEST_F(CliSqliteTest, VerifyFindsATypeWithoutDescriptor) {
  ASSERT_OK(store_->Append("odd-1", ExpectedVersion::NoStream(),
                           {MysteryEvent(), MysteryEvent()}));
  const CliResult r = RunCli({"verify", url_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("unknown.v1.Mystery"));
  EXPECT_THAT(r.out, HasSubstr("2 events of this type, but no descriptor"));
}

TEST_F(CliSqliteTest, CheckpointsShowLag) {
  ASSERT_OK_AND_ASSIGN(Position head, store_->HeadPosition());
  ASSERT_OK(store_->checkpoints().Save("caught-up", head, 4));
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store_->ReadAll(ReadAllOptions()));
  ASSERT_OK(store_->checkpoints().Save("behind", page.events[0].position, 1));

  const CliResult r = RunCli({"checkpoints", url_, "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(Str(Json(lines[0]), "projection"), "behind");
  EXPECT_EQ(Field(Json(lines[0]), "events_behind").number_value(), 3);
  EXPECT_EQ(Str(Json(lines[1]), "projection"), "caught-up");
  EXPECT_EQ(Field(Json(lines[1]), "events_behind").number_value(), 0);
  // The store does not know a projection's type filter: the output says
  // what the lag counts.
  EXPECT_EQ(Str(Json(lines[0]), "lag_counts"), "all events");

  const CliResult typed =
      RunCli({"checkpoints", url_, "--type", kShipped, "--format", "jsonl"});
  ASSERT_EQ(typed.exit_code, 0) << typed.err;
  EXPECT_EQ(Field(Json(Lines(typed.out)[0]), "events_behind").number_value(),
            1);
  EXPECT_EQ(Str(Json(Lines(typed.out)[0]), "lag_counts"),
            absl::StrCat("events of type ", kShipped));

  const CliResult table = RunCli({"checkpoints", url_});
  EXPECT_THAT(table.out, HasSubstr("EVENTS_BEHIND*"));
  EXPECT_THAT(table.out,
              HasSubstr("* counts all events after the checkpoint, not only "
                        "those a projection's type filter reads: give the "
                        "filter with --type / --prefix\n"));
  const CliResult typed_table =
      RunCli({"checkpoints", url_, "--type", kShipped, "--prefix", "order-"});
  EXPECT_THAT(typed_table.out,
              HasSubstr(absl::StrCat("* counts events of type ", kShipped,
                                     " and in streams starting with 'order-' "
                                     "after the checkpoint\n")));
  EXPECT_EQ(RunCli({"checkpoints", url_, "--max-lag", "3"}).exit_code, 0);
  const CliResult over = RunCli({"checkpoints", url_, "--max-lag", "2"});
  EXPECT_EQ(over.exit_code, 1);
  EXPECT_THAT(over.err, HasSubstr("more than 2 events behind"));
}

TEST_F(CliSqliteTest, CheckpointsRebuildRecordsARequest) {
  ASSERT_OK_AND_ASSIGN(Position head, store_->HeadPosition());
  ASSERT_OK(store_->checkpoints().Save("totals", head, 4));
  ASSERT_OK(store_->checkpoints().Save("other", head, 4));

  // No runner holds the lease: the next one to start rebuilds.
  CliResult r =
      RunCli({"checkpoints", url_, "rebuild", "totals", "--by", "alice"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("rebuild requested: totals by alice at "));
  EXPECT_THAT(r.err, HasSubstr("no runner holds the projection's lease now"));
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       store_->checkpoints().Get("totals"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, "alice");
  EXPECT_TRUE(cp->rebuild_requested_at.has_value());
  EXPECT_EQ(cp->position, head);  // the runner moves it back

  // Asking again keeps the first request, and says whose it is.
  r = RunCli({"checkpoints", url_, "rebuild", "totals", "--by", "bob"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("rebuild requested: totals by alice at "));

  // The listing shows it.
  r = RunCli({"checkpoints", url_, "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(Str(Json(lines[0]), "projection"), "other");
  EXPECT_EQ(Field(Json(lines[0]), "rebuild_requested_at").kind_case(),
            Value::kNullValue);
  EXPECT_EQ(Str(Json(lines[0]), "rebuild_requested_by"), "");
  EXPECT_EQ(Str(Json(lines[1]), "projection"), "totals");
  EXPECT_EQ(Str(Json(lines[1]), "rebuild_requested_by"), "alice");
  EXPECT_FALSE(Str(Json(lines[1]), "rebuild_requested_at").empty());
  r = RunCli({"checkpoints", url_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("REBUILD"));
  EXPECT_THAT(r.out, HasSubstr("requested by alice at "));

  // A runner holding the projection's lease (here, this process) is named.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       store_->TryAcquireLease("projection:fresh"));
  ASSERT_NE(lease, nullptr);
  r = RunCli({"checkpoints", url_, "rebuild", "fresh"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(
                         "the runner holding the projection's lease (pid ",
                         getpid(), ")")));
  // A projection that never ran gets a checkpoint at the start; the
  // default name is the tool's and the user's.
  ASSERT_OK_AND_ASSIGN(cp, store_->checkpoints().Get("fresh"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, Position::Start());
  EXPECT_TRUE(absl::StartsWith(cp->rebuild_requested_by, "eventstore-cli"))
      << cp->rebuild_requested_by;

  // The projection is required; nothing else was written.
  EXPECT_EQ(RunCli({"checkpoints", url_, "rebuild"}).exit_code, 2);
  ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> all,
                       store_->checkpoints().List());
  EXPECT_EQ(all.size(), 3u);
}

TEST_F(CliSqliteTest, DeadLettersListShowRetryResolve) {
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store_->ReadStream("order-1"));
  ASSERT_OK(store_->dead_letters().Add("totals", events[0], "boom: no rate"));
  ASSERT_OK(store_->dead_letters().Add("totals", events[1], "boom again"));
  const std::string id0 = events[0].id.ToString();
  const std::string id1 = events[1].id.ToString();

  CliResult r = RunCli({"dlq", url_, "list", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(Str(Json(lines[0]), "event_id"), id0);
  EXPECT_EQ(Str(Json(lines[0]), "status"), "parked");
  EXPECT_EQ(Str(Json(lines[0]), "error"), "boom: no rate");

  r = RunCli({"dlq", url_, "show", "totals", id0});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value shown = Json(r.out);
  EXPECT_EQ(Str(Field(shown, "dead_letter"), "stream"), "order-1");
  EXPECT_EQ(Str(Field(Field(shown, "event"), "data"), "order_id"), "1");

  r = RunCli({"dlq", url_, "retry", "totals", id0});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> letter,
                       store_->dead_letters().Get("totals", events[0].id));
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(letter->status, DeadLetterStatus::kRetrying);

  r = RunCli({"dlq", url_, "resolve", "totals", id1, "--by", "alice"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_OK_AND_ASSIGN(letter,
                       store_->dead_letters().Get("totals", events[1].id));
  EXPECT_EQ(letter->status, DeadLetterStatus::kResolved);
  EXPECT_EQ(letter->resolved_by, "alice");

  // Unresolved by default; --status picks.
  r = RunCli({"dlq", url_, "list", "--format", "jsonl"});
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  EXPECT_EQ(Str(Json(lines[0]), "status"), "retrying");
  r = RunCli(
      {"dlq", url_, "list", "--status", "resolved", "--format", "jsonl"});
  ASSERT_EQ(Lines(r.out).size(), 1u) << r.out;
  EXPECT_EQ(Str(Json(r.out), "resolved_by"), "alice");

  // retry --all: every parked one of the projection.
  ASSERT_OK(store_->dead_letters().Add("totals", events[0], "again"));
  r = RunCli({"dlq", url_, "retry", "totals", "--all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(id0));

  // An unknown entry is a problem, not a usage error.
  r = RunCli({"dlq", url_, "resolve", "totals",
              "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(RunCli({"dlq", url_, "retry", "totals"}).exit_code, 2);
}

TEST_F(CliSqliteTest, OutboxStatsAndList) {
  OutboxMessage message;
  message.destination = "billing";
  message.key = "order-3";
  message.payload = "invoice";
  message.headers["kind"] = "invoice";
  std::vector<EventData> events = {PlacedEvent("3", 1)};
  AppendRequest request;
  request.stream = "order-3";
  request.expected = ExpectedVersion::NoStream();
  request.events = events;
  request.outbox = {&message, 1};
  ASSERT_OK(store_->Append(request));

  CliResult r = RunCli({"outbox", url_, "stats", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value stats = Json(r.out);
  EXPECT_EQ(Field(stats, "pending").number_value(), 1);
  EXPECT_EQ(Field(stats, "published").number_value(), 0);
  r = RunCli({"outbox", url_, "stats"});
  EXPECT_THAT(r.out, HasSubstr("pending         1"));

  r = RunCli({"outbox", url_, "list", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value entry = Json(r.out);
  EXPECT_EQ(Str(entry, "destination"), "billing");
  EXPECT_EQ(Str(entry, "key"), "order-3");
  EXPECT_EQ(Str(entry, "payload_base64"), "aW52b2ljZQ==");
  EXPECT_EQ(Str(Field(entry, "headers"), "kind"), "invoice");
  r = RunCli({"outbox", url_, "list"});
  EXPECT_THAT(r.out, HasSubstr("billing"));
}

TEST_F(CliSqliteTest, OutboxRetryMakesAFailedMessagePendingAgain) {
  OutboxMessage message;
  message.destination = "billing";
  message.key = "order-3";
  message.payload = "invoice";
  ASSERT_OK(store_->outbox().Enqueue({&message, 1}));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> claimed,
                       store_->outbox().Claim("w", 1, absl::Seconds(60)));
  ASSERT_EQ(claimed.size(), 1u);
  const int64_t id = claimed[0].id;
  ASSERT_OK(store_->outbox().MarkFailed(id, "rejected", 1));

  CliResult r = RunCli({"outbox", url_, "retry", absl::StrCat(id)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("pending again: ", id)));
  ASSERT_OK_AND_ASSIGN(OutboxStats stats, store_->outbox().Stats());
  EXPECT_EQ(stats.pending, 1);
  EXPECT_EQ(stats.failed, 0);

  // Not failed (any more), or no such message: exit 1, saying why.
  r = RunCli({"outbox", url_, "retry", absl::StrCat(id)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("is pending"));
  r = RunCli({"outbox", url_, "retry", absl::StrCat(id + 100)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(id + 100)));
  EXPECT_EQ(RunCli({"outbox", url_, "retry", "x"}).exit_code, 2);
  EXPECT_EQ(RunCli({"outbox", url_, "retry"}).exit_code, 2);
}

// --- PostgreSQL
// ----------------------------------------------------------------

#ifdef EVENTSTORE_TEST_POSTGRES

class CliPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(base_url_, test::SharedPostgresUrl());
    schema_ = test::UniqueSchemaName();
    url_ = absl::StrCat(base_url_, "?schema=", schema_);
    ASSERT_OK_AND_ASSIGN(store_, OpenEventStore(url_));
    Fill(*store_);
  }

  // base_url_ with a password: the test server trusts local connections,
  // so libpq never sends it, but the tool must never print it either.
  std::string UrlWithPassword(const std::string& password) const {
    std::string url = url_;
    const size_t at = url.find('@');
    url.insert(at, ":" + password);
    return url;
  }

  std::string base_url_;
  std::string schema_;
  std::string url_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(CliPostgresTest, InfoStreamsReadAndVerify) {
  CliResult r = RunCli({"info", url_, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value info = Json(r.out);
  EXPECT_EQ(Str(info, "backend"), "postgres");
  EXPECT_THAT(Str(info, "location"), HasSubstr("schema=" + schema_));
  EXPECT_EQ(Field(info, "events").number_value(), 4);
  EXPECT_EQ(Field(info, "streams").number_value(), 3);

  r = RunCli({"streams", url_, "--prefix", "order-", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 2u) << r.out;

  r = RunCli({"read", url_, "order-1", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  ExpectOrder1Rendered(Json(lines[0]), Json(lines[1]));

  r = RunCli({"verify", url_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = RunCli({"tail", url_, "--count", "1", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Str(Json(r.out), "stream"), "invoice-1");
}

TEST_F(CliPostgresTest, VerifyFindsAVersionGap) {
  ASSERT_OK_AND_ASSIGN(auto raw, test::RawPostgres::Connect(base_url_));
  ASSERT_OK(raw->Exec(absl::StrCat(
      "UPDATE \"", schema_,
      "\".events SET version = 9 WHERE stream = 'order-1' AND version = 2")));
  const CliResult r = RunCli({"verify", url_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("version 9"));
}

TEST_F(CliPostgresTest, VerifyReportsADamagedEvent) {
  ASSERT_OK_AND_ASSIGN(auto raw, test::RawPostgres::Connect(base_url_));
  ASSERT_OK(
      raw->Exec(absl::StrCat("UPDATE \"", schema_,
                             "\".events SET payload = '\\x0a0139'::bytea "
                             "WHERE stream = 'order-1' AND version = 2")));
  const CliResult r = RunCli({"verify", url_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("(stream 'order-1', version 2) is damaged: "
                               "its checksum"));
  EXPECT_THAT(r.out, HasSubstr("1 problem in 4 events"));
  const CliResult tail = RunCli({"tail", url_, "--format", "jsonl"});
  EXPECT_EQ(tail.exit_code, 0) << tail.err;
  EXPECT_EQ(Lines(tail.out).size(), 4u) << tail.out;

  // verify_checksums=false: `read` trusts the row, `verify` still checks.
  const std::string unverified = url_ + "&verify_checksums=false";
  const CliResult read = RunCli({"read", unverified, "order-1"});
  EXPECT_EQ(read.exit_code, 0) << read.err;
  EXPECT_THAT(read.out, Not(HasSubstr("DAMAGED")));
  const CliResult forced = RunCli({"verify", unverified});
  EXPECT_EQ(forced.exit_code, 1) << forced.out << forced.err;
  EXPECT_THAT(forced.out, HasSubstr("(stream 'order-1', version 2) is "
                                    "damaged: its checksum"));
}

TEST_F(CliPostgresTest, MissingSchemaIsNotCreatedExceptByInit) {
  const std::string typo = test::UniqueSchemaName();
  const std::string fresh = absl::StrCat(base_url_, "?schema=", typo);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"info", fresh},
                                             {"streams", fresh},
                                             {"verify", fresh},
                                             {"checkpoints", fresh}}) {
    const CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("\"" + typo + "\" holds no eventstore"))
        << args[0];
  }
  ASSERT_OK_AND_ASSIGN(auto raw, test::RawPostgres::Connect(base_url_));
  ASSERT_OK_AND_ASSIGN(
      auto rows,
      raw->Query(absl::StrCat(
          "SELECT count(*) FROM pg_namespace WHERE nspname = '", typo, "'")));
  EXPECT_EQ(rows[0][0], "0") << "a command that only looks created the schema";

  const CliResult init = RunCli({"init", fresh});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  const CliResult info = RunCli({"info", fresh});
  EXPECT_EQ(info.exit_code, 0) << info.err;
}

TEST_F(CliPostgresTest, InitCreatesASchema) {
  const std::string fresh =
      absl::StrCat(base_url_, "?schema=", test::UniqueSchemaName());
  const CliResult r = RunCli({"init", fresh});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("postgres store"));
  EXPECT_THAT(r.out, HasSubstr("0 events"));
}

TEST_F(CliPostgresTest, TailFollowOnPostgres) {
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<CliProcess> tail,
      CliProcess::Start({"tail", url_, "--follow", "--type", kShipped,
                         "--count", "0", "--format", "jsonl"}));
  ASSERT_TRUE(tail->WaitForErrors("following from position", absl::Seconds(60)))
      << tail->Errors();
  ASSERT_OK(store_->Append("order-2", ExpectedVersion::Exactly(1),
                           {PlacedEvent("x", 1), ShippedEvent("2")}));
  EXPECT_TRUE(tail->WaitForOutput("order-2", absl::Seconds(20)))
      << tail->Output();
  ASSERT_OK_AND_ASSIGN(CliResult r, tail->Stop(SIGTERM));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u) << r.out;
  EXPECT_EQ(Str(Json(lines[0]), "type"), kShipped);
}

TEST_F(CliPostgresTest, PasswordNeverPrinted) {
  const std::string password = "s3cr3t-Pa55";
  // Connected (trust authentication ignores it): output shows the URL.
  const std::string url = UrlWithPassword(password);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"info", url},
                                             {"info", url, "--format", "json"},
                                             {"init", url},
                                             {"streams", url},
                                             {"read", url, "order-404"},
                                             {"checkpoints", url},
                                             {"verify", url}}) {
    const CliResult r = RunCli(args);
    EXPECT_THAT(r.out, Not(HasSubstr(password))) << args[0];
    EXPECT_THAT(r.err, Not(HasSubstr(password))) << args[0];
  }
  const CliResult info = RunCli({"info", url});
  EXPECT_THAT(info.out, HasSubstr(":***@"));

  // Errors: a port nothing listens on, a bad parameter, a bad schema, the
  // password as a parameter, and in EVENTSTORE_URL.
  std::string wrong_port = url;
  const size_t colon = wrong_port.rfind(':', wrong_port.find('/', 14));
  wrong_port.replace(colon + 1, wrong_port.find('/', colon) - colon - 1, "1");
  const std::string param_url = absl::StrCat(
      "postgresql://postgres@127.0.0.1:1/postgres?password=", password,
      "&connect_timeout_ms=2000");
  for (const std::pair<std::vector<std::string>, int>& c :
       std::vector<std::pair<std::vector<std::string>, int>>{
           {{"info", wrong_port + "&connect_timeout_ms=2000"}, 1},
           {{"verify", wrong_port + "&connect_timeout_ms=2000"}, 1},
           {{"info", url + "&pool_size=zero"}, 2},
           {{"info", url + "&schema=Bad-Schema"}, 2},
           {{"info", param_url}, 1}}) {
    const CliResult r = RunCli(c.first);
    EXPECT_EQ(r.exit_code, c.second) << c.first[1] << ": " << r.err;
    EXPECT_FALSE(r.err.empty()) << c.first[1];
    EXPECT_THAT(r.out, Not(HasSubstr(password))) << c.first[1];
    EXPECT_THAT(r.err, Not(HasSubstr(password))) << c.first[1];
  }
  const CliResult env = RunCli(
      {"info"}, {{"EVENTSTORE_URL", wrong_port + "&connect_timeout_ms=2000"}});
  EXPECT_EQ(env.exit_code, 1);
  EXPECT_THAT(env.err, HasSubstr("***"));
  EXPECT_THAT(env.err, Not(HasSubstr(password)));
}

#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore
