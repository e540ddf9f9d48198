// What FailoverEventStore reports to an Instrumentation and a LogSink: the
// mode at start and at each change, journaled, replayed and parked appends,
// the journal's depth, and log lines for mode changes, replay progress and
// parked appends, with passwords masked. The primary is a SQLite store
// behind a switch; one test takes a real PostgreSQL server down and up.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/failover_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/failover/failover_fixture.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/recording_log_sink.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"
#endif

namespace eventstore::test {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using Mode = FailoverStatus::Mode;

// Log entries of component "failover" at `level`.
std::vector<std::string> Messages(const RecordingLogSink& sink,
                                  LogLevel level) {
  std::vector<std::string> out;
  for (const LogEntry& entry : sink.entries()) {
    if (entry.component == "failover" && entry.level == level) {
      out.push_back(entry.message);
    }
  }
  return out;
}

int64_t Sum(const std::vector<int64_t>& values) {
  int64_t sum = 0;
  for (int64_t v : values) sum += v;
  return sum;
}

class FailoverObservabilityTest : public FailoverFixture {
 protected:
  // A failover store over database_ (through a switch, kept in primary_)
  // and the journal file, reporting to metrics_ and sink_; no health-check
  // thread unless `interval` is set.
  std::unique_ptr<FailoverEventStore> Open(
      absl::Duration interval = absl::ZeroDuration()) {
    FailoverOptions options;
    options.allow_fallback = true;
    options.health_check_interval = interval;
    options.instrumentation = metrics_;
    options.log_sink = sink_;
    return OpenFailover(options);
  }

  std::shared_ptr<RecordingInstrumentation> metrics_ =
      std::make_shared<RecordingInstrumentation>();
  std::shared_ptr<RecordingLogSink> sink_ =
      std::make_shared<RecordingLogSink>();
};

TEST_F(FailoverObservabilityTest, ReportsTheStartingModeAndDepthAtCreate) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(metrics_->failover_modes(), ElementsAre("primary"));
  EXPECT_THAT(metrics_->failover_pending(), ElementsAre(0));
  // Appends that reach the primary report nothing more, and log nothing.
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("a")}));
  EXPECT_THAT(metrics_->failover_modes(), ElementsAre("primary"));
  EXPECT_EQ(metrics_->failover_journaled(), 0);
  EXPECT_THAT(sink_->entries(), IsEmpty());
}

TEST_F(FailoverObservabilityTest, OutageAndRecoveryAreReportedAndLogged) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("a")}));

  primary_->down = true;
  ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(1), {Event("b")}));
  ASSERT_OK(store->Append("t", ExpectedVersion::NoStream(), {Event("c")}));
  EXPECT_THAT(metrics_->failover_modes(), ElementsAre("primary", "fallback"));
  EXPECT_EQ(metrics_->failover_journaled(), 2);
  EXPECT_THAT(metrics_->failover_pending(), ElementsAre(0, 1, 2));
  EXPECT_THAT(
      Messages(*sink_, LogLevel::kWarning),
      ElementsAre(AllOf(HasSubstr("the primary is unreachable"),
                        HasSubstr("mode fallback"),
                        HasSubstr("test primary: connection refused"))));
  // A probe that fails while in fallback changes nothing and logs nothing.
  EXPECT_THAT(store->ReplayNow(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(metrics_->failover_modes(), ElementsAre("primary", "fallback"));
  EXPECT_THAT(Messages(*sink_, LogLevel::kWarning), testing::SizeIs(1));

  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  EXPECT_THAT(metrics_->failover_modes(),
              ElementsAre("primary", "fallback", "recovering", "primary"));
  EXPECT_THAT(metrics_->failover_replayed(), ElementsAre(2));
  // Once per journaled append, then once per replayed batch.
  EXPECT_THAT(metrics_->failover_pending(), ElementsAre(0, 1, 2, 0));
  EXPECT_EQ(metrics_->failover_parked(), 0);
  EXPECT_THAT(
      Messages(*sink_, LogLevel::kInfo),
      ElementsAre(
          HasSubstr("mode recovering: replaying 2 journaled append"),
          HasSubstr("replayed 2 journaled append(s); 0 pending"),
          AllOf(HasSubstr("mode primary"), HasSubstr("2 replayed, 0 parked"))));
  EXPECT_THAT(Messages(*sink_, LogLevel::kError), IsEmpty());
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.journaled, metrics_->failover_journaled());
  EXPECT_EQ(status.replayed, Sum(metrics_->failover_replayed()));
}

TEST_F(FailoverObservabilityTest, ReplayIsReportedPerPage) {
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  options.replay_page_size = 2;
  options.instrumentation = metrics_;
  std::unique_ptr<FailoverEventStore> store = OpenFailover(options);
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(store->Append(
        "s", i == 0 ? ExpectedVersion::NoStream() : ExpectedVersion::Exactly(i),
        {Event(absl::StrCat(i))}));
  }
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  // One event per append, two events per page.
  EXPECT_THAT(metrics_->failover_replayed(), ElementsAre(2, 2, 1));
  EXPECT_EQ(store->Status().replayed, 5);
}

TEST_F(FailoverObservabilityTest, AParkedAppendIsCountedAndLoggedAsAnError) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  const EventData journaled = Event("journaled");
  ASSERT_OK(store->Append("order-7", ExpectedVersion::NoStream(), {journaled}));
  // Meanwhile another writer created the stream on the primary.
  ASSERT_OK(
      database_->Append("order-7", ExpectedVersion::NoStream(), {Event("x")}));
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());

  EXPECT_EQ(metrics_->failover_parked(), 1);
  EXPECT_THAT(metrics_->failover_replayed(), IsEmpty());
  EXPECT_THAT(metrics_->failover_pending(), ElementsAre(0, 1, 0));
  EXPECT_THAT(metrics_->failover_modes(),
              ElementsAre("primary", "fallback", "recovering", "primary"));
  EXPECT_THAT(Messages(*sink_, LogLevel::kError),
              ElementsAre(AllOf(HasSubstr("parked"), HasSubstr("'order-7'"),
                                HasSubstr(journaled.id.ToString()),
                                HasSubstr("failover-replay"))));
  EXPECT_EQ(store->Status().parked, 1);
}

TEST_F(FailoverObservabilityTest, AStoppedReplayIsLoggedOncePerError) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("a")}));
  primary_->down = false;
  primary_->internal_error = true;
  EXPECT_THAT(store->ReplayNow(), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(store->ReplayNow(), StatusIs(absl::StatusCode::kInternal));
  EXPECT_THAT(Messages(*sink_, LogLevel::kWarning),
              ElementsAre(HasSubstr("mode fallback"),
                          AllOf(HasSubstr("the replay stopped (1 pending"),
                                HasSubstr("test primary: disk full"))));
  EXPECT_THAT(metrics_->failover_modes(),
              ElementsAre("primary", "fallback", "recovering"));
  EXPECT_THAT(metrics_->failover_replayed(), IsEmpty());
  EXPECT_EQ(metrics_->failover_parked(), 0);

  primary_->internal_error = false;
  ASSERT_OK(store->ReplayNow());
  EXPECT_THAT(metrics_->failover_replayed(), ElementsAre(1));
  EXPECT_EQ(metrics_->failover_modes().back(), "primary");
}

TEST_F(FailoverObservabilityTest, ThePrimarysErrorIsLoggedWithoutItsPassword) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->set_error(
      "postgres: cannot connect to postgresql://app:hunter2@db.example/shop"
      "?password=hunter2: connection refused");
  primary_->down = true;
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("a")}));
  const std::vector<LogEntry> entries = sink_->entries();
  ASSERT_THAT(entries, Not(IsEmpty()));
  EXPECT_THAT(entries, Contains(Field(&LogEntry::message,
                                      HasSubstr("app:***@db.example"))));
  for (const LogEntry& entry : entries) {
    EXPECT_THAT(entry.message, Not(HasSubstr("hunter2")));
  }
  // Status().last_error is the caller's own, unmasked: not logged.
}

TEST_F(FailoverObservabilityTest, AJournalLeftByAnEarlierRunStartsRecovering) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    primary_->down = true;
    ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("a")}));
  }
  metrics_ = std::make_shared<RecordingInstrumentation>();
  sink_ = std::make_shared<RecordingLogSink>();
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(metrics_->failover_modes(), ElementsAre("recovering"));
  EXPECT_THAT(metrics_->failover_pending(), ElementsAre(1));
  EXPECT_THAT(Messages(*sink_, LogLevel::kInfo),
              ElementsAre(HasSubstr("holds 1 append(s) not replayed yet")));
  ASSERT_OK(store->ReplayNow());
  EXPECT_THAT(metrics_->failover_modes(), ElementsAre("recovering", "primary"));
  EXPECT_THAT(metrics_->failover_replayed(), ElementsAre(1));
  EXPECT_THAT(metrics_->failover_pending(), ElementsAre(1, 0));
}

// The health-check thread replays on its own; what it reports arrives from
// that thread (run under ThreadSanitizer in CI).
TEST_F(FailoverObservabilityTest, ConcurrentHealthCheckRecoveryIsReported) {
  auto store = Open(absl::Milliseconds(2));
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("a")}));
  ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(1), {Event("b")}));
  primary_->down = false;
  ASSERT_TRUE(sink_->WaitFor(LogLevel::kInfo, "failover", "mode primary",
                             absl::Seconds(30)));
  EXPECT_EQ(metrics_->failover_journaled(), 2);
  EXPECT_EQ(Sum(metrics_->failover_replayed()), 2);
  EXPECT_EQ(metrics_->failover_modes().back(), "primary");
  EXPECT_EQ(metrics_->failover_pending().back(), 0);
}

#ifdef EVENTSTORE_TEST_POSTGRES
// A real outage, with the pool reporting too: the server stops, appends go
// to the journal, the server starts again, the journal replays and the
// pool reconnects. The URL carries a password (the server trusts local
// connections and ignores it): no log line shows it.
TEST(FailoverPostgresObservabilityTest, ServerStoppedAndStartedAgain) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start({}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  auto pool_metrics = std::make_shared<RecordingInstrumentation>();
  auto metrics = std::make_shared<RecordingInstrumentation>();
  auto sink = std::make_shared<RecordingLogSink>();
  PostgresOptions pg;
  pg.conninfo = absl::StrCat(
      "postgresql://postgres:hunter2@127.0.0.1:", server->port(), "/postgres");
  pg.connect_timeout = absl::Seconds(2);
  pg.instrumentation = pool_metrics;
  pg.log_sink = sink;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> primary,
                       PostgresEventStore::Open(pg));
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  options.instrumentation = metrics;
  options.log_sink = sink;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<FailoverEventStore> store,
      CreateFailoverOver(std::move(primary), dir->File("journal.db"), options));
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("placed")}));

  ASSERT_OK(server->Stop());
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::Exactly(1), {Event("paid")}));
  ASSERT_OK(store->Append("order-1", ExpectedVersion::Exactly(2),
                          {Event("shipped")}));
  EXPECT_THAT(metrics->failover_modes(), ElementsAre("primary", "fallback"));
  EXPECT_EQ(metrics->failover_journaled(), 2);
  EXPECT_THAT(metrics->failover_pending(), ElementsAre(0, 1, 2));
  EXPECT_TRUE(sink->WaitFor(LogLevel::kWarning, "failover", "mode fallback",
                            absl::ZeroDuration()));
  // The pool lost its connection and could not open another.
  EXPECT_TRUE(sink->WaitFor(LogLevel::kWarning, "postgres_pool",
                            "connection was lost", absl::ZeroDuration()));
  EXPECT_TRUE(sink->WaitFor(LogLevel::kWarning, "postgres_pool",
                            "cannot connect", absl::ZeroDuration()));

  ASSERT_OK(server->StartAgain());
  ASSERT_OK(store->ReplayNow());
  EXPECT_THAT(metrics->failover_modes(),
              ElementsAre("primary", "fallback", "recovering", "primary"));
  EXPECT_THAT(metrics->failover_replayed(), ElementsAre(2));
  EXPECT_EQ(metrics->failover_pending().back(), 0);
  EXPECT_EQ(store->Status().replayed, 2);
  // The pool replaced the lost connection once, and has it idle again.
  EXPECT_THAT(pool_metrics->reconnects(), ElementsAre("postgres"));
  EXPECT_TRUE(sink->WaitFor(LogLevel::kWarning, "postgres_pool", "reconnected",
                            absl::ZeroDuration()));
  ASSERT_FALSE(pool_metrics->pool_connections().empty());
  EXPECT_EQ(pool_metrics->pool_connections().back().in_use, 0);
  EXPECT_EQ(pool_metrics->pool_connections().back().idle, 1);

  for (const LogEntry& entry : sink->entries()) {
    EXPECT_THAT(entry.message, Not(HasSubstr("hunter2")));
  }
}
#endif

}  // namespace
}  // namespace eventstore::test
