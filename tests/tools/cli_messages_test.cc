// What the `eventstore` binary says, run as a process: no password in any
// output of any command whatever the shape or position of the URL, the
// "eventstore COMMAND:" prefix on every line of stderr, messages that name
// what is wrong, --version, counts in words, tables that line up while
// following.

#include <signal.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/version.h"
#include "gmock/gmock.h"
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
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty()) lines.push_back(std::string(line));
  }
  return lines;
}

// The subcommands a help text lists (CLI11: "Subcommands:" then one
// "  name  description" line each).
std::vector<std::string> SubcommandsIn(const std::string& help) {
  std::vector<std::string> names;
  bool in_list = false;
  for (const std::string& line : Lines(help)) {
    if (absl::StartsWith(line, "Subcommands:")) {
      in_list = true;
      continue;
    }
    if (!in_list) continue;
    if (!absl::StartsWith(line, "  ")) break;
    const std::string name(absl::StripLeadingAsciiWhitespace(line));
    names.push_back(name.substr(0, name.find(' ')));
  }
  return names;
}

// Every command path of the tool, read from its own help: {"info"},
// {"dlq"}, {"dlq", "list"}, ...
std::vector<std::vector<std::string>> CommandPaths() {
  std::vector<std::vector<std::string>> paths;
  for (const std::string& command : SubcommandsIn(RunCli({"--help"}).out)) {
    paths.push_back({command});
    for (const std::string& sub :
         SubcommandsIn(RunCli({command, "--help"}).out)) {
      paths.push_back({command, sub});
    }
  }
  return paths;
}

class CliMessagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    path_ = dir_->File("events.db");
    url_ = "sqlite://" + path_;
    ASSERT_OK_AND_ASSIGN(store_, OpenEventStore(url_));
    ASSERT_OK(
        store_->Append("order-1", ExpectedVersion::NoStream(), {Placed("1")}));
  }

  // Every line of `err` carries the "eventstore" prefix.
  static void ExpectPrefixed(const std::string& err, const std::string& what) {
    for (const std::string& line : Lines(err)) {
      EXPECT_THAT(line, StartsWith("eventstore")) << what;
    }
  }

  std::unique_ptr<TempDir> dir_;
  std::string path_;
  std::string url_;
  std::unique_ptr<EventStore> store_;
};

// The secret's distinctive part: none of the URLs below may let it out.
constexpr char kSecretMark[] = "Pw7";

TEST_F(CliMessagesTest, NoCommandEverPrintsAPassword) {
  // Nothing listens on port 1 of the loopback: connecting fails at once.
  const std::vector<std::string> urls = {
      // well formed, the password %-encoded (Pw7-Secret!x)
      "postgresql://app:Pw7-Secret%21x@127.0.0.1:1/db?connect_timeout_ms=500",
      // mistyped: one slash, no slash, no colon after the scheme
      "postgres:/app:Pw7-Secret@127.0.0.1:1/db",
      "postgresql:app:Pw7-Secret@127.0.0.1:1/db",
      "postgresql//app:Pw7-Secret@127.0.0.1:1/db",
      // the '@' forgotten: libpq would take the password for a port
      "postgresql://app:Pw7-Secret127.0.0.1:1/db",
      // a password= parameter
      "postgresql://app@127.0.0.1:1/db?password=Pw7-Secret&"
      "connect_timeout_ms=500",
  };
  const std::string extra = dir_->File("extra");
  const std::vector<std::vector<std::string>> paths = CommandPaths();
  ASSERT_GE(paths.size(), 18u) << "the help lists fewer commands than known";
  int runs = 0;
  const auto check = [&](const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env) {
    const CliResult r = RunCli(args, env, absl::Seconds(60));
    const std::string what = absl::StrJoin(args, " ");
    EXPECT_THAT(r.out, Not(HasSubstr(kSecretMark))) << what;
    EXPECT_THAT(r.err, Not(HasSubstr(kSecretMark))) << what;
    EXPECT_NE(r.exit_code, 0) << what;
    EXPECT_FALSE(r.err.empty()) << what;
    ExpectPrefixed(r.err, what);
    ++runs;
  };
  // Every URL shape with every command in the usual place. Where the URL
  // sits otherwise, and EVENTSTORE_URL, go through the same masking of
  // every argument (OutputMasking in main): each command gets one shape
  // there, rotating, so each position still meets every shape across the
  // commands. (The whole cross product ran ~1,100 processes, a minute of
  // CI for the same code paths.)
  size_t turn = 0;
  for (const std::vector<std::string>& path : paths) {
    for (const std::string& url : urls) {
      std::vector<std::string> args = {path[0], url};
      args.insert(args.end(), path.begin() + 1, path.end());
      check(args, {});
    }
    const auto next_url = [&]() -> const std::string& {
      return urls[turn++ % urls.size()];
    };
    // After the whole path, followed by an unexpected argument, after one,
    // after an unknown option.
    std::vector<std::string> args = path;
    if (path.size() > 1) {
      args.push_back(next_url());
      check(args, {});
    }
    args = path;
    args.push_back(next_url());
    args.push_back(extra);
    check(args, {});
    args = path;
    args.push_back(extra);
    args.push_back(next_url());
    check(args, {});
    args = path;
    args.push_back("--bogus");
    args.push_back(next_url());
    check(args, {});
    // No URL on the command line: EVENTSTORE_URL.
    check(path, {{"EVENTSTORE_URL", next_url()}});
  }
  for (const std::string& url : urls) {
    // Options that take URLs.
    check({"migrate", "--from", url, "--to", "sqlite::memory:"}, {});
    check({"migrate", "--from", url_, "--to", url}, {});
    check({"migrate", "--to", url}, {{"EVENTSTORE_URL", url}});
    check({"migrate", "--from=" + url, "--to", url}, {});
    check({"export", url, "-"}, {});
    check({"import", dir_->File("nosuch.esx"), url}, {});
  }
  EXPECT_GT(runs, 300);
}

TEST_F(CliMessagesTest, ParseErrorsAreMaskedAndPrefixed) {
  const std::string url =
      "postgresql://app:Pw7-Secret%21x@127.0.0.1:1/db?connect_timeout_ms=500";
  CliResult r = RunCli({"outbox", "stats", url});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("eventstore outbox stats: unexpected argument "
                                "'postgresql://app:***@127.0.0.1:1/db"));
  EXPECT_THAT(r.err, HasSubstr("the URL goes before the subcommand: "
                               "eventstore outbox URL stats"));
  r = RunCli({"dlq", "list", url});
  EXPECT_THAT(r.err, StartsWith("eventstore dlq list: unexpected argument"));
  EXPECT_THAT(r.err, Not(HasSubstr(kSecretMark)));
  r = RunCli({"info", "postgres:/app:hunter2@127.0.0.1:5432/db"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(StartsWith("eventstore info: "),
                           HasSubstr("postgres:/app:***@127.0.0.1"),
                           Not(HasSubstr("hunter2"))));
  r = RunCli({"info", "postgresql://app:hunter2/db?connect_timeout_ms=500"});
  EXPECT_THAT(
      r.err, AllOf(StartsWith("eventstore info: "), Not(HasSubstr("hunter2"))));
}

TEST_F(CliMessagesTest, MessagesNameWhatIsWrong) {
  // A missing stream is not a missing URL.
  CliResult r = RunCli({"read", url_});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("eventstore read: STREAM is missing"));
  EXPECT_THAT(r.err, Not(HasSubstr("EVENTSTORE_URL")));
  r = RunCli({"export", url_});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("eventstore export: FILE is missing"));

  // An unknown word is named, with the words that would do.
  r = RunCli({"nosuch"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("eventstore: unknown command 'nosuch'; "
                                "commands: info, streams"));
  r = RunCli({"dlq", url_, "lsit"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("eventstore dlq: unknown subcommand 'lsit'; "
                                "subcommands: list, show, retry or resolve"));
  r = RunCli({"outbox", url_});
  EXPECT_THAT(r.err, StartsWith("eventstore outbox: a subcommand is "
                                "required: stats, list, retry or publish"));
  r = RunCli({"info", url_, "--bogus"});
  EXPECT_THAT(r.err, StartsWith("eventstore info: unknown option '--bogus'"));

  // Bounds in words, not a 300-digit number.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"read", url_, "order-1", "--count", "-3"},
           {"streams", url_, "--limit", "abc"},
           {"tail", url_, "-n", "-1"},
           {"checkpoints", url_, "--max-lag", "-5"},
           {"dlq", url_, "list", "--limit", "0"},
           {"dlq", url_, "list", "--limit", "99999999999"},
           {"migrate", "--to", "sqlite::memory:", "--batch-size", "0"}}) {
    r = RunCli(args);
    const std::string what = absl::StrJoin(args, " ");
    EXPECT_EQ(r.exit_code, 2) << what;
    EXPECT_THAT(r.err, HasSubstr("must be a whole number")) << what;
    EXPECT_LT(r.err.size(), 200u) << what << ": " << r.err;
    ExpectPrefixed(r.err, what);
  }

  // A bare path: the SQLite URL is suggested.
  r = RunCli({"info", "events.db"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("sqlite:events.db"));
  EXPECT_THAT(r.err, Not(HasSubstr("(none)")));

  // The OS says why a file cannot be read.
  r = RunCli({"import", dir_->File("nosuch.esx"), "sqlite::memory:"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("No such file or directory"));
}

TEST_F(CliMessagesTest, VersionFlag) {
  const CliResult r = RunCli({"--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            absl::StrCat("eventstore ", EVENTSTORE_VERSION_STRING, "\n"));
}

TEST_F(CliMessagesTest, CountsAreInWordsAndGrouped) {
  CliResult r = RunCli({"init", url_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 event in 1 stream"));
  r = RunCli({"verify", url_});
  EXPECT_THAT(r.out, HasSubstr("ok: 1 event in 1 stream, 1 recorded type;"));

  std::vector<EventData> many;
  for (int i = 0; i < 1200; ++i) many.push_back(Placed(absl::StrCat(i)));
  ASSERT_OK(store_->Append("order-2", ExpectedVersion::NoStream(), many));
  r = RunCli({"info", url_});
  EXPECT_THAT(r.out, HasSubstr("events          1,201\n"));
  r = RunCli({"verify", url_});
  EXPECT_THAT(r.out, HasSubstr("ok: 1,201 events in 2 streams"));
}

TEST_F(CliMessagesTest, MaxLagNamesTheProjectionsBehind) {
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store_->ReadAll(ReadAllOptions()));
  ASSERT_OK(store_->checkpoints().Save("behind", Position::Start(), 0));
  ASSERT_OK(
      store_->checkpoints().Save("caught-up", page.events[0].position, 1));
  const CliResult r = RunCli({"checkpoints", url_, "--max-lag", "0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("eventstore checkpoints: projection behind (1) "
                               "is more than 0 events behind"));
  EXPECT_THAT(r.err, Not(HasSubstr("caught-up")));
}

TEST_F(CliMessagesTest, DeadLetterColumnCountsParkings) {
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store_->ReadStream("order-1"));
  // Parked twice (each parking follows the runner's max_attempts calls).
  ASSERT_OK(store_->dead_letters().Add("totals", events[0], "boom"));
  ASSERT_OK(store_->dead_letters().Add("totals", events[0], "boom again"));
  const CliResult r = RunCli({"dlq", url_, "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  const size_t column = lines[0].find("TIMES_PARKED");
  ASSERT_NE(column, std::string::npos) << r.out;
  EXPECT_EQ(lines[1].substr(column, 2), "2 ") << r.out;
}

// The start column of each cell of a table line (cells are separated by
// two spaces or more).
std::vector<size_t> ColumnStarts(const std::string& line, size_t columns) {
  std::vector<size_t> starts = {0};
  for (size_t i = 2; i < line.size() && starts.size() < columns; ++i) {
    if (line[i] != ' ' && line[i - 1] == ' ' && line[i - 2] == ' ') {
      starts.push_back(i);
    }
  }
  return starts;
}

TEST_F(CliMessagesTest, TailFollowSaysWhenItFollowsAndAlignsItsTable) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<CliProcess> tail,
                       CliProcess::Start({"tail", url_, "-f"}));
  ASSERT_TRUE(tail->WaitForErrors("following from position", absl::Seconds(60)))
      << tail->Errors();
  EXPECT_THAT(tail->Errors(), StartsWith("eventstore tail: following from "
                                         "position "));
  ASSERT_OK(store_->Append("o-2", ExpectedVersion::NoStream(), {Placed("2")}));
  ASSERT_OK(store_->Append("a-longer-stream-9", ExpectedVersion::NoStream(),
                           {Placed("3")}));
  ASSERT_TRUE(tail->WaitForOutput("a-longer-stream-9", absl::Seconds(20)))
      << tail->Output();
  ASSERT_OK_AND_ASSIGN(CliResult r, tail->Stop(SIGINT));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;  // header, order-1, o-2, the long one
  // POSITION STREAM VERSION TYPE RECORDED_AT: where DATA starts too.
  const std::vector<size_t> header = ColumnStarts(lines[0], 6);
  for (const std::string& line : lines) {
    EXPECT_EQ(ColumnStarts(line, 6), header) << r.out;
  }

  // --quiet: no such line.
  ASSERT_OK_AND_ASSIGN(tail, CliProcess::Start({"tail", url_, "-f", "-q"}));
  ASSERT_TRUE(tail->WaitForOutput("order-1", absl::Seconds(60)));
  ASSERT_OK_AND_ASSIGN(r, tail->Stop(SIGTERM));
  EXPECT_EQ(r.err, "");
}

#ifdef EVENTSTORE_TEST_POSTGRES

// Against a server that lets the tool in (the test server trusts local
// connections, so the password in the URL is never checked): commands that
// succeed print the store's location, summaries and copies, never the
// password.
TEST(CliMessagesPostgresTest, ConnectedCommandsNeverPrintThePassword) {
  ASSERT_OK_AND_ASSIGN(const std::string base, test::SharedPostgresUrl());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const std::string plain =
      absl::StrCat(base, "?schema=", test::UniqueSchemaName());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore(plain));
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::NoStream(), {Placed("1")}));
  const auto with_password = [](std::string u) {
    u.insert(u.find('@'), ":Pw7-Secret%21x");
    return u;
  };
  const std::string url = with_password(plain);
  const std::string file = dir->File("events.esx");
  const std::vector<std::vector<std::string>> commands = {
      {"info", url},
      {"info", url, "--format", "json"},
      {"streams", url},
      {"read", url, "order-1"},
      {"tail", url},
      {"init", url},
      {"upgrade", url},
      {"verify", url},
      {"checkpoints", url},
      {"dlq", url, "list"},
      {"outbox", url, "stats"},
      {"outbox", url, "list"},
      {"migrate", "--from", url, "--to", "sqlite://" + dir->File("copy.db"),
       "--verify"},
      {"export", url, file},
      {"import", file,
       with_password(absl::StrCat(base, "?schema=", test::UniqueSchemaName()))},
      {"read", url, "order-404"},
      {"outbox", "stats", url},
      {"info", url, "unexpected"},
  };
  for (const std::vector<std::string>& args : commands) {
    const CliResult r = RunCli(args, {}, absl::Seconds(120));
    const std::string what = absl::StrJoin(args, " ");
    EXPECT_THAT(r.out, Not(HasSubstr(kSecretMark))) << what;
    EXPECT_THAT(r.err, Not(HasSubstr(kSecretMark))) << what;
    for (const std::string& line : Lines(r.err)) {
      EXPECT_THAT(line, StartsWith("eventstore")) << what;
    }
  }
  // What a successful command shows: the masked location.
  const CliResult info = RunCli({"info", url});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr(":***@"));
}

#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore
