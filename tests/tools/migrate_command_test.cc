// `eventstore migrate`, run as the real binary: SQLite -> PostgreSQL ->
// SQLite with 100,000 events over 1,000 streams, killed part-way and
// resumed; refusal of a foreign target; --verify; exit codes; masked
// passwords; --checkpoints and the read models it protects; re-runs after
// cut-over that must not move the target backwards. The PostgreSQL tests
// (names containing "postgres") start their own server.

#include <signal.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/event_importer.h"
#include "eventstore/open_event_store.h"
#include "eventstore/sql_transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/projection.h"
#include "projections/projection_runner.h"
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

// A transactional projection: the events of each stream counted in a table
// of the store's own database, a read model `migrate` does not copy.
class EventCounts final : public TransactionalProjection {
 public:
  std::string name() const override { return "event-counts"; }
  absl::Status Handle(const RecordedEvent& event, SqlTransaction& tx) override {
    return tx.Execute(
        "INSERT INTO event_counts (stream, n) VALUES ($1, 1) "
        "ON CONFLICT (stream) DO UPDATE SET n = event_counts.n + 1",
        {SqlValue::Text(event.stream)});
  }
  absl::Status Reset(SqlTransaction& tx) override {
    return tx.Execute("DELETE FROM event_counts");
  }
};

class MigrateCommandTest : public test::CliStoreTest {
 protected:
  // Creates EventCounts' table if missing, runs it up to the head of
  // `store`'s log, and returns the events its read model counts.
  int64_t RunEventCounts(EventStore& store) {
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store.BeginTransaction();
    EXPECT_OK(tx);
    if (!tx.ok()) return -1;
    EXPECT_OK((*tx)->Execute(
        "CREATE TABLE IF NOT EXISTS event_counts (stream TEXT PRIMARY KEY, "
        "n BIGINT NOT NULL)"));
    EXPECT_OK((*tx)->Commit());
    EventCounts projection;
    absl::StatusOr<std::unique_ptr<ProjectionRunner>> runner =
        ProjectionRunner::Create(store, projection);
    EXPECT_OK(runner);
    if (!runner.ok()) return -1;
    EXPECT_OK((*runner)->RunOnce());
    tx = store.BeginTransaction();
    EXPECT_OK(tx);
    if (!tx.ok()) return -1;
    absl::StatusOr<SqlRows> rows =
        (*tx)->Query("SELECT coalesce(sum(n), 0) FROM event_counts");
    EXPECT_OK(rows);
    EXPECT_OK((*tx)->Commit());
    if (!rows.ok() || rows->size() != 1 || !(*rows)[0][0].has_value()) {
      return -1;
    }
    return std::stoll(*(*rows)[0][0]);
  }

  // Migrates `from` into `to` (checkpoints carried), then does on the
  // target what a live application does after cut-over (publishes the
  // outbox message, moves the checkpoint on, resolves the dead letter)
  // while the source parks the event again and enqueues a message of its
  // own; migrates again: nothing on the target moved backwards, the new
  // message was added, and the summary says what was skipped.
  void ExpectRerunNeverMovesTheTargetBackwards(const std::string& from,
                                               const std::string& to) {
    std::unique_ptr<EventStore> source = Open(from);
    ASSERT_NE(source, nullptr);
    test::FillStore(*source, 4, 5, 5);
    test::AddOtherRows(*source, 10);
    CliResult r =
        Run({"migrate", "--from", from, "--to", to, "--checkpoints=all"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, Not(HasSubstr("skipped")));

    std::unique_ptr<EventStore> target = Open(to);
    ASSERT_NE(target, nullptr);
    ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> claimed,
                         target->outbox().Claim("live", 10, absl::Minutes(1)));
    ASSERT_EQ(claimed.size(), 1u);
    ASSERT_OK(target->outbox().MarkPublished(claimed[0].id));
    ASSERT_OK_AND_ASSIGN(Position head, target->HeadPosition());
    ASSERT_OK(target->checkpoints().Save("totals", head, 20));
    ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> moved,
                         target->checkpoints().Get("totals"));
    ASSERT_TRUE(moved.has_value());
    ASSERT_OK_AND_ASSIGN(
        std::vector<DeadLetter> letters,
        target->dead_letters().List("totals", std::nullopt, 10));
    ASSERT_EQ(letters.size(), 1u);
    ASSERT_OK(target->dead_letters().MarkResolved("totals", letters[0].event_id,
                                                  "ops"));

    ReadAllOptions ten;
    ten.max_count = 10;
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, source->ReadAll(ten));
    ASSERT_OK(source->dead_letters().Add("totals", page.events.back(),
                                         "failed again"));
    OutboxMessage refund;
    refund.destination = "billing";
    refund.key = "order-1";
    refund.payload = "refund";
    ASSERT_OK(source->outbox().Enqueue({&refund, 1}));

    r = Run({"migrate", "--from", from, "--to", to, "--checkpoints=all"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("skipped 1 outbox entry, 1 checkpoint, 1 "
                                 "dead letter that the target holds at or "
                                 "ahead of the source"));
    EXPECT_THAT(r.err, Not(HasSubstr("s3cr3tpw")));

    ASSERT_OK_AND_ASSIGN(OutboxStats stats, target->outbox().Stats());
    EXPECT_EQ(stats.published, 1);
    EXPECT_EQ(stats.pending, 1);
    ASSERT_OK_AND_ASSIGN(claimed,
                         target->outbox().Claim("live", 10, absl::Minutes(1)));
    ASSERT_EQ(claimed.size(), 1u) << "a published message is pending again";
    EXPECT_EQ(claimed[0].message.payload, "refund");
    ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                         target->checkpoints().Get("totals"));
    ASSERT_TRUE(cp.has_value());
    EXPECT_EQ(cp->position, head);
    EXPECT_EQ(cp->events_processed, moved->events_processed);
    ASSERT_OK_AND_ASSIGN(
        std::optional<DeadLetter> dl,
        target->dead_letters().Get("totals", letters[0].event_id));
    ASSERT_TRUE(dl.has_value());
    EXPECT_EQ(dl->status, DeadLetterStatus::kResolved);
    EXPECT_EQ(dl->failure_count, 1);
  }
};

TEST_F(MigrateCommandTest, CopiesEverythingBetweenSqliteFiles) {
  const std::string a = SqliteUrl("a.db");
  const std::string b = SqliteUrl("b.db");
  {
    std::unique_ptr<EventStore> source = Open(a);
    test::FillStore(*source, 20, 10, 5);
    test::AddOtherRows(*source, 50);
  }
  CliResult r = Run(
      {"migrate", "--from", a, "--to", b, "--verify", "--checkpoints", "all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("copied 200 events"));
  EXPECT_THAT(r.err, HasSubstr(", 1 type,"));
  EXPECT_THAT(r.err, HasSubstr("1 checkpoint, 1 dead letter, 1 outbox "
                               "entry, 1 snapshot in"));
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

// The default leaves checkpoints behind, so that a projection whose read
// model lives in the store's database (not copied) rebuilds it on the
// target instead of resuming over an empty one.
TEST_F(MigrateCommandTest, CheckpointsAreLeftBehindUnlessSelected) {
  const std::string a = SqliteUrl("a.db");
  {
    std::unique_ptr<EventStore> source = Open(a);
    test::FillStore(*source, 5, 6, 3);
    EXPECT_EQ(RunEventCounts(*source), 30);
    ASSERT_OK(source->checkpoints().Save("audit", Position::Start(), 0));
  }
  const char kRebuild[] =
      " will rebuild from the start on the target; use --checkpoints=all if "
      "their read models live outside the store's database (or were copied)";

  // Default: no checkpoint carried, loudly; the projection rebuilds its read
  // model on the target, complete.
  const std::string b = SqliteUrl("b.db");
  CliResult r = Run({"migrate", "--from", a, "--to", b});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err,
              HasSubstr(absl::StrCat("warning: 2 checkpoints not carried: "
                                     "projections audit, event-counts",
                                     kRebuild)));
  {
    std::unique_ptr<EventStore> target = Open(b);
    ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> none,
                         target->checkpoints().List());
    EXPECT_TRUE(none.empty());
    EXPECT_EQ(RunEventCounts(*target), 30);
  }
  // Run again after the projection ran on the target: its checkpoint there
  // is its own, not a rebuild.
  r = Run({"migrate", "--from", a, "--to", b});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("1 checkpoint not carried: projection "
                               "event-counts keeps the target's own"));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(
                         "warning: 1 checkpoint not carried: projection audit",
                         kRebuild)));
  // Quiet still warns.
  r = Run({"migrate", "--from", a, "--to", SqliteUrl("b2.db"), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(kRebuild));

  // All: carried (at the head), so the read model left behind stays empty:
  // what the default protects against.
  const std::string c = SqliteUrl("c.db");
  r = Run({"migrate", "--from", a, "--to", c, "--checkpoints=all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("not carried")));
  {
    std::unique_ptr<EventStore> target = Open(c);
    ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> all,
                         target->checkpoints().List());
    EXPECT_EQ(all.size(), 2u);
    ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                         target->checkpoints().Get("event-counts"));
    ASSERT_TRUE(cp.has_value());
    ASSERT_OK_AND_ASSIGN(Position head, target->HeadPosition());
    EXPECT_EQ(cp->position, head);
    EXPECT_EQ(RunEventCounts(*target), 0);
  }

  // A list: only those; a name the source lacks is reported.
  const std::string d = SqliteUrl("d.db");
  r = Run({"migrate", "--from", a, "--to", d, "--checkpoints", "audit,nosuch"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(
                         "1 checkpoint not carried: projection event-counts",
                         kRebuild)));
  EXPECT_THAT(r.err, HasSubstr("--checkpoints names nosuch, which the source "
                               "has no checkpoint of"));
  {
    std::unique_ptr<EventStore> target = Open(d);
    ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> listed,
                         target->checkpoints().List());
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].projection, "audit");
  }

  // A bad list is a usage error before anything is opened.
  r = Run({"migrate", "--from", a, "--to", SqliteUrl("e.db"),
           "--checkpoints=audit,,x"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--checkpoints: 'audit,,x' has an empty "
                               "projection name"));
  EXPECT_FALSE(std::filesystem::exists(dir_->File("e.db")));
}

// A pending rebuild request asked the source's runners: the checkpoint is
// carried without it (a re-run would otherwise rebuild the live target's
// projection again), and the summary says so.
TEST_F(MigrateCommandTest, ARebuildRequestIsNotCarriedAndSaysSo) {
  const std::string a = SqliteUrl("a.db");
  {
    std::unique_ptr<EventStore> source = Open(a);
    test::FillStore(*source, 2, 3, 3);
    EXPECT_EQ(RunEventCounts(*source), 6);
    ASSERT_OK(source->checkpoints().RequestRebuild("event-counts", "alice"));
  }
  const std::string b = SqliteUrl("b.db");
  CliResult r = Run({"migrate", "--from", a, "--to", b, "--checkpoints=all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: the rebuild requested for "
                               "event-counts (requested by alice) was not "
                               "carried"));
  std::unique_ptr<EventStore> target = Open(b);
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       target->checkpoints().Get("event-counts"));
  ASSERT_TRUE(cp.has_value());
  ASSERT_OK_AND_ASSIGN(Position head, target->HeadPosition());
  EXPECT_EQ(cp->position, head);
  EXPECT_FALSE(cp->rebuild_requested_at.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, "");
}

TEST_F(MigrateCommandTest, ARerunNeverMovesTheTargetBackwards) {
  ExpectRerunNeverMovesTheTargetBackwards(SqliteUrl("a.db"), SqliteUrl("b.db"));
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

  CliResult r = Run({"migrate", "--from", a, "--to", pg, "--checkpoints=all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resuming after"));
  EXPECT_THAT(r.err, Not(HasSubstr("s3cr3tpw")));

  // And back to SQLite, verified.
  r = Run(
      {"migrate", "--from", pg, "--to", c, "--verify", "--checkpoints=all"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("verified: 1,000 streams, 100,000 events"));
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

TEST_F(MigratePgTest, postgres_ARerunNeverMovesTheTargetBackwards) {
  ASSERT_NE(server_, nullptr);
  ExpectRerunNeverMovesTheTargetBackwards(SqliteUrl("a.db"), PgUrl());
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
