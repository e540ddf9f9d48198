// What the PostgreSQL connection pool reports to an Instrumentation and a
// LogSink: connections in use and idle, waits for a connection, reconnects
// after a terminated session, failures to connect (password masked); and
// that PostgresOptions and OpenOptions carry them to the pool.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/postgres/pg_pool.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/open_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/recording_log_sink.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

using postgres::PgPool;
using postgres::PgPoolReporting;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

MATCHER_P2(Connections, in_use, idle, "") {
  return arg.backend == "postgres" && arg.in_use == in_use && arg.idle == idle;
}

// `url` with one more query parameter.
std::string WithParameter(const std::string& url,
                          const std::string& parameter) {
  return absl::StrCat(url, url.find('?') == std::string::npos ? "?" : "&",
                      parameter);
}

// A connection string whose sessions carry an application_name of their
// own, so that a test terminates only them.
struct NamedUrl {
  std::string url;
  std::string application_name;
};

absl::StatusOr<NamedUrl> UniqueNamedUrl() {
  absl::StatusOr<std::string> url = SharedPostgresUrl();
  if (!url.ok()) return url.status();
  NamedUrl named;
  named.application_name = UniqueSchemaName();
  named.url = WithParameter(
      *url, absl::StrCat("application_name=", named.application_name));
  return named;
}

class PgPoolObservabilityTest : public ::testing::Test {
 protected:
  // A pool of `size` over the shared server, reporting to metrics_ and
  // sink_.
  std::unique_ptr<PgPool> Pool(int size, absl::Duration connect_timeout) {
    absl::StatusOr<NamedUrl> url = UniqueNamedUrl();
    EXPECT_OK(url);
    if (!url.ok()) return nullptr;
    PgPoolReporting reporting;
    reporting.instrumentation = metrics_;
    reporting.log_sink = sink_;
    return std::make_unique<PgPool>(url->url, size, connect_timeout,
                                    absl::Seconds(30), /*read_only=*/false,
                                    std::move(reporting));
  }

  std::shared_ptr<RecordingInstrumentation> metrics_ =
      std::make_shared<RecordingInstrumentation>();
  std::shared_ptr<RecordingLogSink> sink_ =
      std::make_shared<RecordingLogSink>();
};

TEST_F(PgPoolObservabilityTest, ReportsConnectionsInUseAndIdleAsTheyChange) {
  std::unique_ptr<PgPool> pool = Pool(3, absl::Seconds(10));
  ASSERT_NE(pool, nullptr);
  EXPECT_THAT(metrics_->pool_connections(), IsEmpty());
  {
    ASSERT_OK_AND_ASSIGN(PgPool::Lease a, pool->Acquire());
    {
      ASSERT_OK_AND_ASSIGN(PgPool::Lease b, pool->Acquire());
      EXPECT_THAT(metrics_->pool_connections(),
                  ElementsAre(Connections(1, 0), Connections(2, 0)));
    }
    EXPECT_THAT(metrics_->pool_connections().back(), Connections(1, 1));
  }
  EXPECT_THAT(metrics_->pool_connections().back(), Connections(0, 2));
  {
    // An idle connection is lent again: no new one is opened.
    ASSERT_OK_AND_ASSIGN(PgPool::Lease again, pool->Acquire());
    EXPECT_THAT(metrics_->pool_connections().back(), Connections(1, 1));
  }
  EXPECT_THAT(
      metrics_->pool_connections(),
      ElementsAre(Connections(1, 0), Connections(2, 0), Connections(1, 1),
                  Connections(0, 2), Connections(1, 1), Connections(0, 2)));
  EXPECT_THAT(metrics_->pool_waits(), IsEmpty());
  EXPECT_THAT(metrics_->reconnects(), IsEmpty());
  EXPECT_THAT(sink_->entries(), IsEmpty());
}

// A pool of 2 and a third borrower while both are lent: it waits for the
// whole connect_timeout, fails, and the wait is reported with its length.
TEST_F(PgPoolObservabilityTest, ABorrowerBeyondThePoolSizeWaitIsReported) {
  const absl::Duration timeout = absl::Milliseconds(300);
  std::unique_ptr<PgPool> pool = Pool(2, timeout);
  ASSERT_NE(pool, nullptr);
  std::optional<PgPool::Lease> a;
  {
    ASSERT_OK_AND_ASSIGN(PgPool::Lease lease, pool->Acquire());
    a.emplace(std::move(lease));
  }
  ASSERT_OK_AND_ASSIGN(PgPool::Lease b, pool->Acquire());
  EXPECT_THAT(metrics_->pool_waits(), IsEmpty());
  EXPECT_THAT(pool->Acquire(), StatusIs(absl::StatusCode::kUnavailable,
                                        HasSubstr("stayed busy")));
  std::vector<RecordedPoolWait> waits = metrics_->pool_waits();
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_EQ(waits[0].backend, "postgres");
  EXPECT_GE(waits[0].waited, timeout);
  EXPECT_LT(waits[0].waited, absl::Seconds(30));
  // Still both lent: the failed wait changed nothing.
  EXPECT_THAT(metrics_->pool_connections().back(), Connections(2, 0));

  // With one returned, the next borrower does not wait.
  a.reset();
  ASSERT_OK_AND_ASSIGN(PgPool::Lease c, pool->Acquire());
  EXPECT_THAT(metrics_->pool_waits(), testing::SizeIs(1));
  EXPECT_THAT(metrics_->pool_connections().back(), Connections(2, 0));
}

// N + 1 borrowers of a pool of N: the one that finds every connection lent
// waits until one is returned, gets it, and the wait is reported. Whether
// the extra borrower reaches the pool before or after the return is up to
// the scheduler, so rounds repeat until one waited (with a deadline).
TEST_F(PgPoolObservabilityTest,
       ConcurrentBorrowersBeyondThePoolSizeWaitForAReturnedConnection) {
  constexpr int kSize = 2;
  std::unique_ptr<PgPool> pool = Pool(kSize, absl::Seconds(30));
  ASSERT_NE(pool, nullptr);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int rounds = 0;
  while (metrics_->pool_waits().empty() && absl::Now() < deadline) {
    ++rounds;
    std::vector<PgPool::Lease> held;
    for (int i = 0; i < kSize; ++i) {
      absl::StatusOr<PgPool::Lease> lease = pool->Acquire();
      ASSERT_OK(lease);
      held.push_back(*std::move(lease));
    }
    std::atomic<bool> started{false};
    absl::Status extra;
    std::thread borrower([&] {
      started = true;
      extra = pool->Acquire().status();
    });
    while (!started) std::this_thread::yield();
    held.pop_back();  // returns one connection
    borrower.join();
    ASSERT_OK(extra);
  }
  std::vector<RecordedPoolWait> waits = metrics_->pool_waits();
  ASSERT_EQ(waits.size(), 1u)
      << "no borrower waited in " << rounds << " rounds";
  EXPECT_EQ(waits[0].backend, "postgres");
  EXPECT_GT(waits[0].waited, absl::ZeroDuration());
  EXPECT_LT(waits[0].waited, absl::Seconds(30));
  // Every connection is back.
  EXPECT_THAT(metrics_->pool_connections().back(), Connections(0, kSize));
}

// The store's sessions are terminated behind its back: the next append
// finds its connection lost, the pool opens a new one, reports the
// reconnect and logs it.
TEST_F(PgPoolObservabilityTest, ATerminatedSessionIsReplacedAndReported) {
  ASSERT_OK_AND_ASSIGN(NamedUrl url, UniqueNamedUrl());
  PostgresOptions options;
  options.conninfo = url.url;
  options.schema = UniqueSchemaName();
  options.pool_size = 2;
  options.instrumentation = metrics_;
  options.log_sink = sink_;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       PostgresEventStore::Open(options));
  EventData event;
  event.id = Uuid::Generate();
  event.type = "eventstore.test.v1.Tick";
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {event}));
  EXPECT_THAT(metrics_->pool_connections().back(), Connections(0, 1));
  EXPECT_THAT(metrics_->reconnects(), IsEmpty());

  ASSERT_OK_AND_ASSIGN(std::string shared, SharedPostgresUrl());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawPostgres> raw,
                       RawPostgres::Connect(shared));
  const std::string sessions =
      absl::StrCat("FROM pg_stat_activity WHERE application_name = '",
                   url.application_name, "'");
  ASSERT_OK_AND_ASSIGN(
      auto killed, raw->Query(absl::StrCat("SELECT count(*) FROM (SELECT "
                                           "pg_terminate_backend(pid) AS t ",
                                           sessions, ") k WHERE t")));
  ASSERT_EQ(killed[0][0], "1");
  // Wait until the session is gone on the server.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::string left = "1";
  while (left != "0" && absl::Now() < deadline) {
    ASSERT_OK_AND_ASSIGN(
        auto rows, raw->Query(absl::StrCat("SELECT count(*) ", sessions)));
    left = rows[0][0];
  }
  ASSERT_EQ(left, "0");

  event.id = Uuid::Generate();
  ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(1), {event}));
  EXPECT_THAT(metrics_->reconnects(), ElementsAre("postgres"));
  EXPECT_THAT(metrics_->pool_connections().back(), Connections(0, 1));
  EXPECT_TRUE(sink_->WaitFor(LogLevel::kWarning, "postgres_pool",
                             "connection was lost", absl::ZeroDuration()));
  EXPECT_TRUE(sink_->WaitFor(LogLevel::kWarning, "postgres_pool", "reconnected",
                             absl::ZeroDuration()));
  EXPECT_THAT(metrics_->pool_waits(), IsEmpty());
}

TEST_F(PgPoolObservabilityTest, AFailedConnectionIsLoggedWithoutThePassword) {
  PgPoolReporting reporting;
  reporting.instrumentation = metrics_;
  reporting.log_sink = sink_;
  // Nothing listens on port 1: the connection is refused at once.
  PgPool pool("postgresql://app:hunter2@127.0.0.1:1/shop?password=hunter2", 2,
              absl::Seconds(2), absl::Seconds(30), /*read_only=*/false,
              std::move(reporting));
  EXPECT_THAT(pool.Acquire(), StatusIs(absl::StatusCode::kUnavailable));
  const std::vector<LogEntry> entries = sink_->entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].level, LogLevel::kWarning);
  EXPECT_EQ(entries[0].component, "postgres_pool");
  EXPECT_THAT(entries[0].message,
              AllOf(HasSubstr("cannot connect"), HasSubstr("app:***@"),
                    Not(HasSubstr("hunter2"))));
  // Nothing was lent, nothing reconnected.
  EXPECT_THAT(metrics_->pool_connections(), IsEmpty());
  EXPECT_THAT(metrics_->reconnects(), IsEmpty());
}

TEST_F(PgPoolObservabilityTest, OpenEventStoreCarriesThemToThePool) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  OpenOptions options;
  options.instrumentation = metrics_;
  options.log_sink = sink_;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EventStore> store,
      OpenEventStore(
          WithParameter(url, absl::StrCat("schema=", UniqueSchemaName())),
          options));
  // Open borrowed a connection to create the schema, and returned it.
  EXPECT_THAT(metrics_->pool_connections(),
              ElementsAre(Connections(1, 0), Connections(0, 1)));
  ASSERT_OK(store->HeadPosition());
  EXPECT_THAT(metrics_->pool_connections().back(), Connections(0, 1));
}

}  // namespace
}  // namespace eventstore::test
