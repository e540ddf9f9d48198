// Connection faults: sessions terminated mid-run, and the server stopped and
// started again. No committed event is lost or duplicated, and the store
// recovers without being reopened.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/event_store.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

std::vector<EventData> Batch(int writer, int i) {
  std::vector<EventData> batch(2);
  for (int k = 0; k < 2; ++k) {
    batch[k].id = Uuid::Generate();
    batch[k].type = "eventstore.test.v1.Tick";
    batch[k].payload = absl::StrCat(writer, "/", i, "/", k);
  }
  return batch;
}

TEST(PostgresFaultTest, TerminatedSessionsLoseNothingAndDuplicateNothing) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions options;
  options.conninfo = url;
  options.schema = UniqueSchemaName();
  options.pool_size = 6;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       PostgresEventStore::Open(options));

  // Each writer appends at least kAppends batches, and goes on (up to
  // kMaxAppends) until the killer has terminated kMinTerminated sessions:
  // on a fast or a loaded machine alike, the appends meet the faults.
  constexpr int kWriters = 4;
  constexpr int kAppends = 60;
  constexpr int kMaxAppends = 3000;
  constexpr int kMinTerminated = 6;
  std::atomic<bool> done{false};
  std::atomic<int> terminated{0};
  std::atomic<int> unavailable{0};
  std::atomic<int> other_errors{0};
  // Appends that went through: the killer waits for one between its
  // rounds, so that on a loaded machine (a reconnect and an append slower
  // than its 40 ms period) the writers still make progress between kills.
  std::atomic<int64_t> succeeded{0};
  std::vector<int> appended(kWriters, 0);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::string stream = absl::StrCat("fault-", w);
      for (int i = 0; i < kMaxAppends &&
                      (i < kAppends || terminated.load() < kMinTerminated);
           ++i) {
        // The same events and expected version until it succeeds: a retry
        // after an unknown outcome must return the original result.
        const std::vector<EventData> batch = Batch(w, i);
        for (int attempt = 0;; ++attempt) {
          absl::StatusOr<AppendResult> r =
              store->Append(stream, ExpectedVersion::Exactly(2 * i), batch);
          if (r.ok()) {
            EXPECT_EQ(r->next_expected_version, 2 * i + 2);
            appended[w] = i + 1;
            ++succeeded;
            break;
          }
          if (r.status().code() == absl::StatusCode::kUnavailable &&
              attempt < 200) {
            unavailable++;
            absl::SleepFor(absl::Milliseconds(5));
            continue;
          }
          other_errors++;
          ADD_FAILURE() << stream << " append " << i << ": " << r.status();
          return;
        }
      }
    });
  }
  std::thread killer([&] {
    auto raw = RawPostgres::Connect(url);
    ASSERT_OK(raw);
    int64_t seen = -1;
    while (!done.load()) {
      if (succeeded.load() == seen) {
        absl::SleepFor(absl::Milliseconds(1));  // poll: an append went through
        continue;
      }
      seen = succeeded.load();
      absl::StatusOr<std::vector<std::vector<std::string>>> killed =
          (*raw)->Query(
              "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS t "
              "FROM pg_stat_activity WHERE application_name = 'eventstore' "
              "AND pid <> pg_backend_pid()) k WHERE t");
      ASSERT_OK(killed);
      terminated += std::stoi((*killed)[0][0]);
      absl::SleepFor(absl::Milliseconds(40));
    }
  });
  for (std::thread& t : writers) t.join();
  done = true;
  killer.join();
  EXPECT_EQ(other_errors.load(), 0);

  // Every stream holds exactly its events, versions 1..2n, nothing twice.
  for (int w = 0; w < kWriters; ++w) {
    const std::string stream = absl::StrCat("fault-", w);
    absl::StatusOr<std::vector<RecordedEvent>> events =
        store->ReadStream(stream);
    for (int attempt = 0; !events.ok() && attempt < 5; ++attempt) {
      events = store->ReadStream(stream);
    }
    ASSERT_OK(events);
    ASSERT_EQ(events->size(), static_cast<size_t>(2 * appended[w])) << stream;
    for (int v = 0; v < 2 * appended[w]; ++v) {
      EXPECT_EQ((*events)[v].version, v + 1);
      EXPECT_EQ((*events)[v].payload, absl::StrCat(w, "/", v / 2, "/", v % 2));
    }
  }
  ASSERT_OK_AND_ASSIGN(auto raw, RawPostgres::Connect(url));
  ASSERT_OK_AND_ASSIGN(
      auto rows, raw->Query(absl::StrCat("SELECT count(*), count(DISTINCT id) "
                                         "FROM \"",
                                         options.schema, "\".events")));
  int total = 0;
  for (int n : appended) total += 2 * n;
  EXPECT_EQ(rows[0][0], absl::StrCat(total));
  EXPECT_EQ(rows[0][1], rows[0][0]);
  // The terminations did hit the store's sessions: a run that never
  // faulted would prove nothing.
  EXPECT_GE(terminated.load(), kMinTerminated);
}

TEST(PostgresFaultTest, ServerStoppedAndStartedAgainStoreRecovers) {
  PostgresServerOptions server_options;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start(server_options));
  PostgresOptions options;
  options.conninfo = server->url();
  options.schema = "outage";
  options.connect_timeout = absl::Seconds(2);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       PostgresEventStore::Open(options));
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), Batch(0, 0)));

  ASSERT_OK(server->Stop());
  const std::vector<EventData> pending = Batch(0, 1);
  absl::StatusOr<AppendResult> down =
      store->Append("s", ExpectedVersion::Exactly(2), pending);
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable)
      << down.status();
  EXPECT_EQ(store->ReadStream("s").status().code(),
            absl::StatusCode::kUnavailable);

  ASSERT_OK(server->StartAgain());
  // The same store, the same events: the append goes through once.
  ASSERT_OK_AND_ASSIGN(
      AppendResult r, store->Append("s", ExpectedVersion::Exactly(2), pending));
  EXPECT_EQ(r.next_expected_version, 4);
  ASSERT_OK_AND_ASSIGN(
      AppendResult again,
      store->Append("s", ExpectedVersion::Exactly(2), pending));
  EXPECT_EQ(again, r);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("s"));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].id, pending[0].id);
  EXPECT_EQ(events[3].id, pending[1].id);
}

}  // namespace
}  // namespace eventstore::test
