// AppendEach on PostgreSQL when its connection is lost in the middle of a
// batch: the call is kUnavailable, and retrying the same batch leaves each
// event stored exactly once.

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/event_store.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

using Results = std::vector<absl::StatusOr<AppendResult>>;

EventData Tick(const std::string& payload) {
  EventData event;
  event.id = Uuid::Generate();
  event.type = "eventstore.test.v1.Tick";
  event.payload = payload;
  return event;
}

TEST(PostgresFaultTest, AppendEachConnectionKilledMidBatchThenRetried) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions options;
  options.conninfo = url;
  options.schema = UniqueSchemaName();
  options.pool_size = 2;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       PostgresEventStore::Open(options));
  const std::string events_table =
      absl::StrCat("\"", options.schema, "\".events");

  // Another session holds version 1 of "blocker" uncommitted: the batch's
  // third append waits for it, after the first two were written.
  ASSERT_OK_AND_ASSIGN(auto holder, RawPostgres::Connect(url));
  ASSERT_OK(holder->Exec(absl::StrCat(
      "BEGIN; INSERT INTO ", events_table,
      " (id, stream, version, type, payload) VALUES (gen_random_uuid(), "
      "'blocker', 1, 'eventstore.test.v1.Tick', ''::bytea)")));

  const std::vector<std::vector<EventData>> events = {
      {Tick("a1"), Tick("a2")}, {Tick("b1")}, {Tick("c1")}, {Tick("d1")}};
  const std::vector<AppendRequest> requests = {
      {"kill-a", ExpectedVersion::NoStream(), events[0]},
      {"kill-b", ExpectedVersion::Any(), events[1]},
      {"blocker", ExpectedVersion::NoStream(), events[2]},
      {"kill-a", ExpectedVersion::Exactly(2), events[3]}};
  absl::StatusOr<Results> killed_batch;
  std::thread batch([&] { killed_batch = store->AppendEach(requests); });

  // Terminates the store's session once it waits for the holder's row.
  ASSERT_OK_AND_ASSIGN(auto killer, RawPostgres::Connect(url));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  int terminated = 0;
  while (terminated == 0 && absl::Now() < deadline) {
    ASSERT_OK_AND_ASSIGN(
        auto rows,
        killer->Query("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) "
                      "AS t FROM pg_stat_activity WHERE application_name = "
                      "'eventstore' AND wait_event_type = 'Lock') k WHERE t"));
    terminated = std::stoi(rows[0][0]);
    if (terminated == 0) absl::SleepFor(absl::Milliseconds(10));
  }
  batch.join();
  ASSERT_EQ(terminated, 1) << "the batch never waited for the held row";
  EXPECT_THAT(killed_batch, StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(holder->Exec("ROLLBACK"));

  // The same batch again: everything is written once.
  ASSERT_OK_AND_ASSIGN(Results retried, store->AppendEach(requests));
  ASSERT_EQ(retried.size(), 4u);
  for (const auto& result : retried) ASSERT_OK(result);
  EXPECT_EQ(retried[0]->next_expected_version, 2);
  EXPECT_EQ(retried[2]->next_expected_version, 1);
  EXPECT_EQ(retried[3]->next_expected_version, 3);
  // And once more: every append is a retry of the committed one.
  ASSERT_OK_AND_ASSIGN(Results again, store->AppendEach(requests));
  ASSERT_EQ(again.size(), 4u);
  for (size_t i = 0; i < again.size(); ++i) {
    ASSERT_OK(again[i]);
    EXPECT_TRUE(again[i]->idempotent_retry);
    EXPECT_EQ(*again[i], *retried[i]);
  }

  ASSERT_OK_AND_ASSIGN(
      auto rows, killer->Query(absl::StrCat(
                     "SELECT count(*), count(DISTINCT id), "
                     "string_agg(stream || ':' || version || ':' || "
                     "convert_from(payload, 'UTF8'), ',' ORDER BY position) "
                     "FROM ",
                     events_table)));
  EXPECT_EQ(rows[0][0], "5");
  EXPECT_EQ(rows[0][1], "5");
  EXPECT_EQ(rows[0][2],
            "kill-a:1:a1,kill-a:2:a2,kill-b:1:b1,blocker:1:c1,kill-a:3:d1");
}

}  // namespace
}  // namespace eventstore::test
