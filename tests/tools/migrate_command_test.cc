// `eventstore migrate`, run as the real binary: SQLite -> PostgreSQL ->
// SQLite with 100,000 events over 1,000 streams, killed part-way and
// resumed; refusal of a foreign target; --verify; exit codes; masked
// passwords. The PostgreSQL tests (names containing "postgres") start their
// own server.

#include <signal.h>

#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/event_importer.h"
#include "eventstore/open_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/cli_process.h"
#include "tests/tools/cli_store_test.h"
#include "tests/tools/fill_store.h"
#include "tools/migrator.h"

namespace eventstore {
namespace {

using ::eventstore::test::CliResult;
using ::testing::HasSubstr;
using ::testing::Not;

class MigrateCommandTest : public test::CliStoreTest {};

TEST_F(MigrateCommandTest, CopiesEverythingBetweenSqliteFiles) {
  const std::string a = SqliteUrl("a.db");
  const std::string b = SqliteUrl("b.db");
  {
    std::unique_ptr<EventStore> source = Open(a);
    test::FillStore(*source, 20, 10, 5);
    test::AddOtherRows(*source, 50);
  }
  CliResult r = Run({"migrate", "--from", a, "--to", b, "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("copied 200 events"));
  EXPECT_THAT(r.err, HasSubstr(", 1 types,"));
  EXPECT_THAT(r.err, HasSubstr("1 checkpoints, 1 dead letters, 1 outbox "
                               "entries, 1 snapshots"));
  EXPECT_THAT(r.out, HasSubstr("verified: 20 streams, 200 events"));
  std::unique_ptr<EventStore> source = Open(a);
  std::unique_ptr<EventStore> target = Open(b);
  EXPECT_TRUE(Same(*source, *target));
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       target->checkpoints().Get("totals"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->events_processed, 50);
  ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> letters,
                       target->dead_letters().List("", std::nullopt, 10));
  EXPECT_EQ(letters.size(), 1u);
  ASSERT_OK_AND_ASSIGN(OutboxStats stats, target->outbox().Stats());
  EXPECT_EQ(stats.pending, 1);

  // Run again: nothing new to copy, nothing duplicated.
  r = Run({"migrate", "--from", a, "--to", b, "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resuming after 200 events"));
  EXPECT_THAT(r.err, HasSubstr("copied 0 events"));
  // New events in the source: only they are copied.
  test::FillStore(*source, 2, 3, 3);
  r = Run({"migrate", "--from", a, "--to", b, "--events-only", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(Same(*source, *target));
}

TEST_F(MigrateCommandTest, RefusesAForeignTargetUnlessForced) {
  const std::string a = SqliteUrl("a.db");
  const std::string b = SqliteUrl("b.db");
  {
    std::unique_ptr<EventStore> source = Open(a);
    test::FillStore(*source, 3, 2, 2);
    std::unique_ptr<EventStore> target = Open(b);
    test::FillStore(*target, 1, 1, 1);  // "order-0" exists in both
  }
  CliResult r = Run({"migrate", "--from", a, "--to", b});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("already holds events"));
  EXPECT_THAT(r.err, HasSubstr("--force"));
  {
    std::unique_ptr<EventStore> target = Open(b);
    ASSERT_OK_AND_ASSIGN(Position head, target->HeadPosition());
    EXPECT_EQ(head, Position::At(1));
  }
  // Forced: the clash on order-0 is named; nothing of that batch written.
  r = Run({"migrate", "--from", a, "--to", b, "--force"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("order-0"));
}

TEST_F(MigrateCommandTest, VerifyReportsDifferencesWithExitCodeOne) {
  const std::string a = SqliteUrl("a.db");
  const std::string b = SqliteUrl("b.db");
  {
    std::unique_ptr<EventStore> source = Open(a);
    test::FillStore(*source, 3, 2, 2);
    std::unique_ptr<EventStore> target = Open(b);
    std::vector<EventData> one = {EventData::From(test::v1::Tick())};
    ASSERT_OK(target->Append("other-1", ExpectedVersion::Any(), one));
  }
  CliResult r = Run({"migrate", "--from", a, "--to", b, "--force", "--verify"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("stream 'other-1': only in the target"));
  EXPECT_THAT(r.out, HasSubstr("1 of 4 streams differ"));
}

TEST_F(MigrateCommandTest, ExitCodes) {
  const std::string a = SqliteUrl("a.db");
  { std::unique_ptr<EventStore> source = Open(a); }
  EXPECT_EQ(Run({"migrate", "--from", a}).exit_code, 2);  // no --to
  CliResult r = Run({"migrate", "--from", a, "--to", "nosuch:x"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = Run(
      {"migrate", "--from", a, "--to", SqliteUrl("b.db"), "--batch-size", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // The same store on both sides.
  r = Run({"migrate", "--from", a, "--to", a});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("same store"));
  // A source that does not exist.
  r = Run({"migrate", "--from", SqliteUrl("missing.db"), "--to",
           SqliteUrl("b.db")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(Run({"migrate", "--help"}).exit_code, 0);
}

TEST_F(MigrateCommandTest, PlainProgressLinesWhenNotATerminal) {
  const std::string a = SqliteUrl("a.db");
  {
    std::unique_ptr<EventStore> source = Open(a);
    test::FillStore(*source, 10, 100, 100);
  }
  CliResult r = Run({"migrate", "--from", a, "--to", SqliteUrl("b.db"),
                     "--batch-size", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("\r")));
  EXPECT_THAT(r.err, HasSubstr("copied 1,000 events"));
}

// --- PostgreSQL --------------------------------------------------------------

class MigratePgTest : public MigrateCommandTest {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<test::PostgresServer>> server =
        test::PostgresServer::Start({});
    ASSERT_OK(server);
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  // A URL of a new schema, with a password that must never be printed
  // (the server trusts every local connection, so it is not checked).
  std::string PgUrl() const {
    std::string url = server_->url();
    url.replace(url.find("postgres@"), 9, "postgres:s3cr3tpw@");
    return absl::StrCat(url, "?schema=", test::UniqueSchemaName());
  }

  static test::PostgresServer* server_;
};

test::PostgresServer* MigratePgTest::server_ = nullptr;

TEST_F(MigratePgTest, postgres_SqliteToPostgresToSqliteKilledAndResumed) {
  ASSERT_NE(server_, nullptr);
  const std::string a = SqliteUrl("a.db");
  const std::string pg = PgUrl();
  const std::string c = SqliteUrl("c.db");
  std::string source_id;
  {
    std::unique_ptr<EventStore> source = Open(a);
    test::FillStore(*source, 1000, 100, 25);  // 100,000 events
    test::AddOtherRows(*source, 54321);
    ASSERT_OK_AND_ASSIGN(source_id, source->importer().StoreId());
  }
  // Killed part-way.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<test::CliProcess> killed,
                       test::CliProcess::Start({"migrate", "--from", a, "--to",
                                                pg, "--batch-size", "500"}));
  std::unique_ptr<EventStore> target;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  int64_t copied = 0;
  while (absl::Now() < deadline) {
    if (target == nullptr) {
      absl::StatusOr<std::unique_ptr<EventStore>> t = OpenEventStore(pg);
      if (t.ok()) target = *std::move(t);
    }
    if (target != nullptr) {
      absl::StatusOr<std::optional<MigrationState>> state =
          target->importer().GetMigration(source_id);
      if (state.ok() && state->has_value() && (*state)->events >= 20000) {
        copied = (*state)->events;
        break;
      }
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_OK_AND_ASSIGN(CliResult k, killed->Stop(SIGKILL));
  EXPECT_EQ(k.exit_code, 128 + SIGKILL) << k.err;
  ASSERT_GE(copied, 20000);
  ASSERT_LT(copied, 100000) << "the migration ended before it was killed";

  CliResult r = Run({"migrate", "--from", a, "--to", pg});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resuming after"));
  EXPECT_THAT(r.err, Not(HasSubstr("s3cr3tpw")));

  // And back to SQLite, verified.
  r = Run({"migrate", "--from", pg, "--to", c, "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("verified: 1000 streams, 100000 events"));
  EXPECT_THAT(r.err, Not(HasSubstr("s3cr3tpw")));

  std::unique_ptr<EventStore> source = Open(a);
  std::unique_ptr<EventStore> back = Open(c);
  EXPECT_TRUE(Same(*source, *target));
  EXPECT_TRUE(Same(*source, *back));
  // The global order and recorded_at survive both hops.
  ReadAllOptions options;
  options.max_count = 100000;
  ASSERT_OK_AND_ASSIGN(ReadAllPage original, source->ReadAll(options));
  ASSERT_OK_AND_ASSIGN(ReadAllPage copy, back->ReadAll(options));
  ASSERT_EQ(original.events.size(), copy.events.size());
  for (size_t i = 0; i < copy.events.size(); ++i) {
    ASSERT_EQ(original.events[i].id, copy.events[i].id) << i;
    ASSERT_EQ(original.events[i].recorded_at, copy.events[i].recorded_at) << i;
  }
  // The checkpoint stands on the copy of the same event on each side.
  const RecordedEvent& at = original.events[54320];
  for (EventStore* store : {target.get(), back.get()}) {
    ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                         store->checkpoints().Get("totals"));
    ASSERT_TRUE(cp.has_value());
    ReadAllOptions one;
    one.max_count = 1;
    ASSERT_OK_AND_ASSIGN(
        std::vector<RecordedEvent> event,
        store->ReadStream(
            at.stream, ReadStreamOptions{at.version, 1, Direction::kForward}));
    ASSERT_EQ(event.size(), 1u);
    EXPECT_EQ(cp->position, event[0].position);
    ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> dl,
                         store->dead_letters().Get("totals", at.id));
    ASSERT_TRUE(dl.has_value());
    EXPECT_EQ(dl->position, event[0].position);
  }
}

TEST_F(MigratePgTest, postgres_PasswordsAreMaskedInErrors) {
  ASSERT_NE(server_, nullptr);
  const std::string a = SqliteUrl("a.db");
  const std::string pg = PgUrl();
  {
    std::unique_ptr<EventStore> source = Open(a);
    test::FillStore(*source, 2, 2, 2);
    std::unique_ptr<EventStore> target = Open(pg);
    test::FillStore(*target, 1, 1, 1);
  }
  CliResult r = Run({"migrate", "--from", a, "--to", pg});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("already holds events"));
  EXPECT_THAT(r.err, HasSubstr("postgres:***@"));
  EXPECT_THAT(r.err, Not(HasSubstr("s3cr3tpw")));
  // An unreachable server, named without its password.
  std::string down = pg;
  down.replace(down.find("127.0.0.1:") + 10, 1, "1");
  r = Run({"migrate", "--from", down, "--to", a});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, Not(HasSubstr("s3cr3tpw")));
}

}  // namespace
}  // namespace eventstore
