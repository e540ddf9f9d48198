// No reader ever skips an event: many writers commit out of position order,
// some transactions roll back (burning positions), some stay open for long,
// while a reader tails ReadAll. At the end the reader has seen every
// committed event exactly once, in the order a fresh full read gives.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/event_store.h"
#include "eventstore/internal/mutex.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

EventData MakeEvent(int i) {
  EventData e;
  e.id = Uuid::Generate();
  e.type = "eventstore.test.v1.Tick";
  e.payload = absl::StrCat("tick-", i);
  return e;
}

// The id of a raw row inserted behind the store's back, as SQL text.
std::string SqlUuid(const Uuid& id) {
  return absl::StrCat("'", id.ToString(), "'");
}

TEST(PostgresOrderingTest, ConcurrentWritersWithRollbacksNeverSkipAnEvent) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions options;
  options.conninfo = url;
  options.schema = UniqueSchemaName();
  options.pool_size = 16;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       PostgresEventStore::Open(options));
  const std::string events_table =
      absl::StrCat("\"", options.schema, "\".events");

  constexpr int kWriters = 8;
  constexpr int kAppendsPerWriter = 150;
  std::atomic<int> writers_left{kWriters + 2};
  internal::Mutex mu;
  absl::flat_hash_set<Uuid> committed ABSL_GUARDED_BY(mu);
  std::atomic<int> failures{0};

  std::vector<std::thread> threads;
  // Writers through the store: own streams, batches of 1-4, plus a shared
  // stream appended with Any(), plus duplicate-id appends that fail and
  // roll back after taking positions.
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      absl::BitGen gen;
      for (int i = 0; i < kAppendsPerWriter; ++i) {
        std::vector<EventData> batch;
        const int n = absl::Uniform(gen, 1, 5);
        for (int k = 0; k < n; ++k) batch.push_back(MakeEvent(i));
        const bool shared = absl::Bernoulli(gen, 0.2);
        const std::string stream =
            shared ? "shared-1" : absl::StrCat("writer-", w, "-", i % 10);
        absl::StatusOr<AppendResult> r =
            store->Append(stream, ExpectedVersion::Any(), batch);
        if (!r.ok()) {
          failures++;
          ADD_FAILURE() << r.status();
          continue;
        }
        {
          internal::MutexLock lock(&mu);
          for (const EventData& e : batch) committed.insert(e.id);
        }
        if (absl::Bernoulli(gen, 0.1)) {
          // A batch whose second event reuses a committed id: rejected
          // after the first row took a position.
          std::vector<EventData> bad = {MakeEvent(i), batch[0]};
          absl::StatusOr<AppendResult> dup = store->Append(
              absl::StrCat("dup-", w), ExpectedVersion::Any(), bad);
          if (dup.status().code() != absl::StatusCode::kAlreadyExists) {
            failures++;
            ADD_FAILURE() << "expected kAlreadyExists, got " << dup.status();
          }
        }
      }
      writers_left--;
    });
  }
  // Behind the store's back: transactions that insert and roll back, and
  // long transactions that commit late with positions taken early.
  threads.emplace_back([&] {
    auto raw = RawPostgres::Connect(url);
    ASSERT_OK(raw);
    absl::BitGen gen;
    for (int i = 0; i < 60; ++i) {
      ASSERT_OK((*raw)->Exec(
          absl::StrCat("BEGIN; INSERT INTO ", events_table,
                       " (id, stream, version, type, payload) VALUES (",
                       SqlUuid(Uuid::Generate()), ", 'rolled-back-", i,
                       "', 1, 'eventstore.test.v1.Tick', '\\x00')")));
      absl::SleepFor(absl::Milliseconds(absl::Uniform(gen, 0, 15)));
      ASSERT_OK((*raw)->Exec("ROLLBACK"));
    }
    writers_left--;
  });
  threads.emplace_back([&] {
    auto raw = RawPostgres::Connect(url);
    ASSERT_OK(raw);
    absl::BitGen gen;
    for (int i = 0; i < 8; ++i) {
      const Uuid id = Uuid::Generate();
      ASSERT_OK((*raw)->Exec(absl::StrCat(
          "BEGIN; INSERT INTO ", events_table,
          " (id, stream, version, type, payload) VALUES (", SqlUuid(id),
          ", 'long-", i, "', 1, 'eventstore.test.v1.Tick', '\\x01')")));
      absl::SleepFor(absl::Milliseconds(absl::Uniform(gen, 100, 300)));
      ASSERT_OK((*raw)->Exec("COMMIT"));
      internal::MutexLock lock(&mu);
      committed.insert(id);
    }
    writers_left--;
  });

  // The reader tails the log in small pages while all of that runs.
  std::vector<RecordedEvent> seen;
  Position from = Position::Start();
  bool writers_done_and_caught_up = false;
  while (!writers_done_and_caught_up) {
    const bool writers_done = writers_left.load() == 0;
    ReadAllOptions read;
    read.from_position = from;
    read.max_count = 50;
    absl::StatusOr<ReadAllPage> page = store->ReadAll(read);
    ASSERT_OK(page);
    for (RecordedEvent& e : page->events) {
      ASSERT_LT(from, e.position) << "positions must increase";
      from = e.position;
      seen.push_back(std::move(e));
    }
    EXPECT_EQ(page->next_position, from);
    writers_done_and_caught_up = writers_done && page->end_of_log;
    if (page->end_of_log && !writers_done)
      absl::SleepFor(absl::Milliseconds(2));
  }
  for (std::thread& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);

  // Exactly once: every committed id, nothing else, no repeats.
  absl::flat_hash_set<Uuid> seen_ids;
  for (const RecordedEvent& e : seen) {
    EXPECT_TRUE(seen_ids.insert(e.id).second) << "seen twice: " << e.id;
  }
  {
    internal::MutexLock lock(&mu);
    EXPECT_EQ(seen_ids.size(), committed.size());
    for (const Uuid& id : committed) {
      EXPECT_TRUE(seen_ids.contains(id)) << "skipped: " << id;
    }
  }
  ASSERT_OK_AND_ASSIGN(
      auto count, RawPostgres::Connect(url).value()->Query(
                      absl::StrCat("SELECT count(*) FROM ", events_table)));
  EXPECT_EQ(count[0][0], absl::StrCat(seen.size()));

  // Stable order: a fresh read of the whole log gives the same sequence.
  std::vector<Uuid> again;
  Position p = Position::Start();
  while (true) {
    ReadAllOptions read;
    read.from_position = p;
    read.max_count = 500;
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, store->ReadAll(read));
    for (const RecordedEvent& e : page.events) again.push_back(e.id);
    p = page.next_position;
    if (page.end_of_log) break;
  }
  ASSERT_EQ(again.size(), seen.size());
  for (size_t i = 0; i < seen.size(); ++i) {
    ASSERT_EQ(again[i], seen[i].id) << "order differs at " << i;
  }
}

// While a transaction holds its position open, ReadAll stops below it (the
// cost of the technique); once it commits, the reader gets it, then the
// later ones.
TEST(PostgresOrderingTest, ReadAllWaitsForAnOlderOpenTransaction) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions options;
  options.conninfo = url;
  options.schema = UniqueSchemaName();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       PostgresEventStore::Open(options));
  const std::string table = absl::StrCat("\"", options.schema, "\".events");
  ASSERT_OK(store->Append("a", ExpectedVersion::NoStream(), {MakeEvent(1)}));

  ASSERT_OK_AND_ASSIGN(auto raw, RawPostgres::Connect(url));
  const Uuid late = Uuid::Generate();
  ASSERT_OK(raw->Exec(absl::StrCat(
      "BEGIN; INSERT INTO ", table,
      " (id, stream, version, type, payload) VALUES (", SqlUuid(late),
      ", 'late', 1, 'eventstore.test.v1.Tick', '\\x02')")));
  ASSERT_OK(store->Append("b", ExpectedVersion::NoStream(), {MakeEvent(2)}));

  ASSERT_OK_AND_ASSIGN(ReadAllPage before, store->ReadAll({}));
  ASSERT_EQ(before.events.size(), 1u);
  EXPECT_EQ(before.events[0].stream, "a");

  ASSERT_OK(raw->Exec("COMMIT"));
  ReadAllOptions resume;
  resume.from_position = before.next_position;
  ASSERT_OK_AND_ASSIGN(ReadAllPage after, store->ReadAll(resume));
  ASSERT_EQ(after.events.size(), 2u);
  EXPECT_EQ(after.events[0].id, late);
  EXPECT_EQ(after.events[1].stream, "b");
}

}  // namespace
}  // namespace eventstore::test
