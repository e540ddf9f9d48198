// StoreInspector::Info on PostgreSQL (issue 13): above
// InfoOptions::exact_count_limit the counts come from the planner's
// statistics, marked as estimates, instead of a count of every event; a
// table never analyzed is counted.

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/store_inspector.h"
#include "eventstore/uuid.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

EventData Tick(int i) {
  EventData e;
  e.id = Uuid::Generate();
  e.type = "eventstore.test.v1.Tick";
  e.payload = absl::StrCat("tick ", i);
  return e;
}

class PgStoreInfoTest : public ::testing::Test {
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

  // `streams` new streams of `per_stream` events each.
  void Fill(int streams, int per_stream) {
    for (int s = next_stream_; s < next_stream_ + streams; ++s) {
      std::vector<EventData> events;
      for (int i = 0; i < per_stream; ++i) events.push_back(Tick(i));
      AppendRequest request;
      request.stream = absl::StrCat("order-", s);
      request.events = events;
      ASSERT_OK(store_->Append(request).status());
    }
    next_stream_ += streams;
  }

  std::string url_;
  PostgresOptions options_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<RawPostgres> raw_;
  int next_stream_ = 0;
};

TEST_F(PgStoreInfoTest, EstimatesFromStatisticsAboveTheLimit) {
  Fill(3, 5);
  InfoOptions estimate;
  estimate.exact_count_limit = 1;

  // Never analyzed: no statistics, so the events are counted.
  ASSERT_OK_AND_ASSIGN(StoreInfo before, store_->inspector().Info(estimate));
  EXPECT_FALSE(before.counts_estimated);
  EXPECT_EQ(before.events, 15);
  EXPECT_EQ(before.streams, 3);

  ASSERT_OK(
      raw_->Exec(absl::StrCat("ANALYZE \"", options_.schema, "\".events")));
  // Appended after the ANALYZE: the estimates do not see them.
  Fill(1, 4);
  ASSERT_OK_AND_ASSIGN(StoreInfo info, store_->inspector().Info(estimate));
  EXPECT_TRUE(info.counts_estimated);
  // ANALYZE of a small table reads every row: the statistics are exact as
  // of then.
  EXPECT_EQ(info.events, 15);
  EXPECT_EQ(info.streams, 3);
  EXPECT_EQ(info.schema_version, PostgresEventStore::kSchemaVersion);
  EXPECT_GT(info.size_bytes, 0);
  EXPECT_FALSE(info.head == Position::Start());

  // Below the limit (the default's million), and when asked to: counted.
  ASSERT_OK_AND_ASSIGN(StoreInfo counted, store_->inspector().Info());
  EXPECT_FALSE(counted.counts_estimated);
  EXPECT_EQ(counted.events, 19);
  EXPECT_EQ(counted.streams, 4);
  EXPECT_EQ(counted.head, info.head);
  InfoOptions exact;
  exact.exact_count_limit = std::numeric_limits<int64_t>::max();
  ASSERT_OK_AND_ASSIGN(StoreInfo exactly, store_->inspector().Info(exact));
  EXPECT_FALSE(exactly.counts_estimated);
  EXPECT_EQ(exactly.events, 19);
}

}  // namespace
}  // namespace eventstore::test
