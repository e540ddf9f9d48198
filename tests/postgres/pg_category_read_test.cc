// ReadAll by category on PostgreSQL (issue 13): a stream prefix
// "<category>-" is read through the index events_by_category (schema
// version 7) in log order, never by a scan of the log and a sort; and it
// returns exactly what the unfiltered log filtered by hand returns, page by
// page, while appends run.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_read_all_sql.h"
#include "backends/postgres/postgres_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

EventData Tick(std::string payload) {
  EventData e;
  e.id = Uuid::Generate();
  e.type = "eventstore.test.v1.Tick";
  e.payload = std::move(payload);
  return e;
}

TEST(PgCategoryOfPrefixTest, OnlyANameAndOneTrailingDashIsACategory) {
  EXPECT_EQ(postgres::CategoryOfPrefix("order-"), "order");
  EXPECT_EQ(postgres::CategoryOfPrefix("a-"), "a");
  EXPECT_EQ(postgres::CategoryOfPrefix(""), std::nullopt);
  EXPECT_EQ(postgres::CategoryOfPrefix("-"), std::nullopt);
  EXPECT_EQ(postgres::CategoryOfPrefix("order"), std::nullopt);
  EXPECT_EQ(postgres::CategoryOfPrefix("order-1"), std::nullopt);
  EXPECT_EQ(postgres::CategoryOfPrefix("order-1-"), std::nullopt);
  EXPECT_EQ(postgres::CategoryOfPrefix("-order-"), std::nullopt);
}

// How the plan reads the events table as ReadAll's alias "e": one entry per
// plan node, "<node type> <index name>" ("Seq Scan " for a scan). Nodes are
// the JSON objects that follow each "Node Type" key in EXPLAIN (FORMAT
// JSON)'s output, which prints a node's own keys before its children.
std::vector<std::string> EventScans(const std::string& plan) {
  std::vector<std::string> scans;
  std::vector<std::string> nodes = absl::StrSplit(plan, "\"Node Type\": \"");
  for (size_t n = 1; n < nodes.size(); ++n) {
    const std::string& node = nodes[n];
    if (!absl::StrContains(node, "\"Relation Name\": \"events\"") ||
        !absl::StrContains(node, "\"Alias\": \"e\"")) {
      continue;
    }
    const std::string type = node.substr(0, node.find('"'));
    std::string index;
    const size_t at = node.find("\"Index Name\": \"");
    if (at != std::string::npos) {
      const size_t from = at + std::string("\"Index Name\": \"").size();
      index = node.substr(from, node.find('"', from) - from);
    }
    scans.push_back(absl::StrCat(type, " ", index));
  }
  return scans;
}

class PgCategoryReadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(url_, SharedPostgresUrl());
    options_.conninfo = url_;
    options_.schema = UniqueSchemaName();
    ASSERT_OK_AND_ASSIGN(store_, PostgresEventStore::Open(options_));
    ASSERT_OK_AND_ASSIGN(raw_, RawPostgres::Connect(url_));
  }
  void TearDown() override {
    store_.reset();
    if (raw_ != nullptr) {
      EXPECT_OK(raw_->Exec(
          absl::StrCat("DROP SCHEMA \"", options_.schema, "\" CASCADE")));
    }
  }

  std::string Quoted() const {
    return absl::StrCat("\"", options_.schema, "\"");
  }

  // The plan of the store's own category statement for `prefix` after the
  // position (commit, prepare), as EXPLAIN (FORMAT JSON) prints it, planned
  // as the statement cache would with `plan_cache_mode` (force_custom_plan:
  // the parameters' values are known; force_generic_plan: they are not, as
  // after a prepared statement's fifth run when the cache keeps a generic
  // plan).
  std::string Plan(const std::string& prefix, const std::string& commit,
                   const std::string& prepare, const char* plan_cache_mode) {
    const std::optional<std::string> category =
        postgres::CategoryOfPrefix(prefix);
    EXPECT_TRUE(category.has_value()) << prefix;
    const std::string sql =
        absl::StrReplaceAll(postgres::ReadAllSql(true), {{"$S", Quoted()}});
    EXPECT_OK(raw_->Exec("DEALLOCATE ALL"));
    EXPECT_OK(
        raw_->Exec(absl::StrCat("SET plan_cache_mode = ", plan_cache_mode)));
    EXPECT_OK(raw_->Exec(absl::StrCat("PREPARE category_read AS ", sql)));
    absl::StatusOr<std::vector<std::vector<std::string>>> rows =
        raw_->Query(absl::StrCat(
            "EXPLAIN (FORMAT JSON) EXECUTE category_read('", commit, "', ",
            prepare, ", '", prefix, "', NULL, NULL, 1000, '", *category, "')"));
    EXPECT_OK(rows);
    if (!rows.ok() || rows->empty()) return "";
    return (*rows)[0][0];
  }

  std::string url_;
  PostgresOptions options_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<RawPostgres> raw_;
};

// 200,000 events in 100 transactions, the scale benchmark's shape
// (bench/scale_store.h: 1% "audit-", 10% "customer-", 89% "order-"),
// ANALYZE'd. The category statement, planned with and without the
// parameters' values, walks events_by_category: no scan of the log, no
// sort. Before schema version 7 the same read planned a scan of the whole
// table and a sort per page (issue 13: 2.26 s a page at 10M events).
TEST_F(PgCategoryReadTest, CategoryReadWalksTheCategoryIndexInLogOrder) {
  for (int t = 0; t < 100; ++t) {
    ASSERT_OK(raw_->Exec(absl::StrCat(
        "INSERT INTO ", Quoted(),
        ".events (id, stream, version, type, payload)"
        " SELECT gen_random_uuid(), s.name, ",
        t,
        " * 20 + g % 20, 'eventstore.test.v1.Tick', '\\x00'::bytea"
        " FROM generate_series(0, 1999) AS g,"
        " LATERAL (SELECT CASE WHEN g / 20 % 100 = 0 THEN 'audit-'"
        "                      WHEN g / 20 % 100 >= 90 THEN 'customer-'"
        "                      ELSE 'order-' END || (g / 20) AS name) AS s")));
  }
  ASSERT_OK(raw_->Exec(absl::StrCat("ANALYZE ", Quoted(), ".events")));
  ASSERT_OK_AND_ASSIGN(auto middle,
                       raw_->Query(absl::StrCat(
                           "SELECT transaction_id, position FROM ", Quoted(),
                           ".events ORDER BY transaction_id, position "
                           "OFFSET 100000 LIMIT 1")));
  ASSERT_EQ(middle.size(), 1u);
  const struct {
    std::string prefix, commit, prepare;
  } reads[] = {{"audit-", "0", "0"},
               {"audit-", middle[0][0], middle[0][1]},
               {"customer-", "0", "0"},
               {"customer-", middle[0][0], middle[0][1]}};
  for (const auto& read : reads) {
    for (const char* mode : {"force_custom_plan", "force_generic_plan"}) {
      const std::string plan =
          Plan(read.prefix, read.commit, read.prepare, mode);
      EXPECT_THAT(plan, Not(HasSubstr("Sort"))) << plan;
      EXPECT_EQ(EventScans(plan),
                std::vector<std::string>{"Index Scan events_by_category"})
          << read.prefix << " after " << read.commit << "/" << read.prepare
          << " with " << mode;
    }
  }

  // The store itself runs that statement for a category prefix: the index's
  // scan count grows (statistics reach the view within seconds).
  const std::string scans_sql = absl::StrCat(
      "SELECT idx_scan FROM pg_stat_user_indexes WHERE schemaname = '",
      options_.schema, "' AND indexrelname = 'events_by_category'");
  ASSERT_OK_AND_ASSIGN(auto before, raw_->Query(scans_sql));
  ASSERT_EQ(before.size(), 1u);
  ReadAllOptions o;
  o.filter.stream_prefix = "audit-";
  int64_t read = 0;
  for (bool end = false; !end;) {
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, store_->ReadAll(o));
    read += static_cast<int64_t>(page.events.size());
    o.from_position = page.next_position;
    end = page.end_of_log;
  }
  EXPECT_EQ(read, 2000);
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::string after = before[0][0];
  while (after == before[0][0] && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));  // polling the statistics view
    ASSERT_OK_AND_ASSIGN(auto rows, raw_->Query(scans_sql));
    after = rows[0][0];
  }
  EXPECT_GT(std::stoll(after), std::stoll(before[0][0]));
}

// The events of `prefix` in `log`, in its order.
std::vector<std::string> IdsWithPrefix(const std::vector<RecordedEvent>& log,
                                       const std::string& prefix) {
  std::vector<std::string> ids;
  for (const RecordedEvent& e : log) {
    if (absl::StartsWith(e.stream, prefix)) ids.push_back(e.id.ToString());
  }
  return ids;
}

// Pages of `page_size` of `prefix` from the start until a page ends the log
// after `done` was seen set before the read began.
std::vector<std::string> ReadPaged(EventStore& store, const std::string& prefix,
                                   int64_t page_size,
                                   const std::atomic<bool>& done) {
  std::vector<std::string> ids;
  ReadAllOptions o;
  o.max_count = page_size;
  o.filter.stream_prefix = prefix;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (absl::Now() < deadline) {
    const bool writers_done = done.load();
    absl::StatusOr<ReadAllPage> page = store.ReadAll(o);
    EXPECT_OK(page);
    if (!page.ok()) break;
    for (const RecordedEvent& e : page->events) {
      EXPECT_TRUE(absl::StartsWith(e.stream, prefix)) << e.stream;
      ids.push_back(e.id.ToString());
    }
    o.from_position = page->next_position;
    if (page->end_of_log && writers_done) return ids;
  }
  ADD_FAILURE() << "reading " << prefix << " did not reach the end in time";
  return ids;
}

// Category reads ("order-", "audit-") and prefixes that are not categories
// ("ord", "order-1", "audit-7-") page through the log while writers append
// to streams whose names test the category rule ("order" and "orders-1"
// share the category or the start, "audit-7-x" has a second '-'). Each
// read returns exactly the whole log's events with the prefix, in order:
// nothing skipped, nothing twice.
TEST_F(PgCategoryReadTest, CategoryReadsMatchTheLogFilteredByHand) {
  const std::vector<std::string> streams = {
      "order-1",   "order-2",   "order",      "orders-1", "audit-7",
      "audit-7-x", "auditor-1", "customer-3", "order-10", "audit-"};
  std::atomic<bool> done{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 60; ++i) {
        const std::string& stream = streams[(w * 7 + i) % streams.size()];
        std::vector<EventData> batch;
        for (int k = 0; k <= i % 3; ++k) {
          batch.push_back(Tick(absl::StrCat(w, "/", i, "/", k)));
        }
        EXPECT_OK(
            store_->Append(stream, ExpectedVersion::Any(), std::move(batch)));
      }
    });
  }
  std::vector<std::thread> readers;
  const std::vector<std::string> prefixes = {"order-", "audit-", "ord",
                                             "order-1", "audit-7-"};
  std::vector<std::vector<std::string>> read(prefixes.size());
  for (size_t p = 0; p < prefixes.size(); ++p) {
    readers.emplace_back([&, p] {
      read[p] =
          ReadPaged(*store_, prefixes[p], 3 + static_cast<int64_t>(p), done);
    });
  }
  for (std::thread& t : writers) t.join();
  done.store(true);
  for (std::thread& t : readers) t.join();

  std::vector<RecordedEvent> log;
  ReadAllOptions o;
  o.max_count = 100000;
  ASSERT_OK_AND_ASSIGN(ReadAllPage all, store_->ReadAll(o));
  ASSERT_TRUE(all.end_of_log);
  log = std::move(all.events);
  for (size_t p = 0; p < prefixes.size(); ++p) {
    const std::vector<std::string> expected = IdsWithPrefix(log, prefixes[p]);
    EXPECT_FALSE(expected.empty()) << prefixes[p];
    EXPECT_EQ(read[p], expected) << prefixes[p];
  }
}

}  // namespace
}  // namespace eventstore::test
