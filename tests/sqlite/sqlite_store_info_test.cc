// StoreInspector::Info on SQLite (issue 13): above
// InfoOptions::exact_count_limit the events are estimated by the positions
// they span (an upper bound once events were removed) and the streams are
// counted by one index seek per stream, instead of reading every event.

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/store_inspector.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/uuid.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore::sqlite {
namespace {

EventData Tick(int i) {
  EventData e;
  e.id = Uuid::Generate();
  e.type = "eventstore.test.v1.Tick";
  e.payload = absl::StrCat("tick ", i);
  return e;
}

void Fill(EventStore& store, const std::string& stream, int events) {
  std::vector<EventData> batch;
  for (int i = 0; i < events; ++i) batch.push_back(Tick(i));
  AppendRequest request;
  request.stream = stream;
  request.events = batch;
  ASSERT_OK(store.Append(request).status());
}

TEST(SqliteStoreInfoTest, EstimatesAboveTheLimitAndCountsBelowIt) {
  SqliteOptions options;
  options.path = ":memory:";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(options));
  InfoOptions estimate;
  estimate.exact_count_limit = 1;

  // Empty: nothing to estimate.
  ASSERT_OK_AND_ASSIGN(StoreInfo empty, store->inspector().Info(estimate));
  EXPECT_FALSE(empty.counts_estimated);
  EXPECT_EQ(empty.events, 0);
  EXPECT_EQ(empty.streams, 0);

  for (const char* stream : {"b-1", "a-1", "c-1", "a-2"}) {
    Fill(*store, stream, 5);
  }
  ASSERT_OK_AND_ASSIGN(StoreInfo info, store->inspector().Info(estimate));
  EXPECT_TRUE(info.counts_estimated);
  EXPECT_EQ(info.events, 20);
  EXPECT_EQ(info.streams, 4);
  EXPECT_EQ(info.head, Position::At(20));
  ASSERT_OK_AND_ASSIGN(StoreInfo counted, store->inspector().Info());
  EXPECT_FALSE(counted.counts_estimated);
  EXPECT_EQ(counted.events, 20);
  EXPECT_EQ(counted.streams, 4);

  // Removed events in the middle of the log: the estimate is an upper
  // bound (it counts their positions); the stream count stays exact.
  ASSERT_OK(
      store->DeleteStream("c-1", ExpectedVersion::Exactly(5), DeleteMode::kHard)
          .status());
  ASSERT_OK(store->Scavenge(ScavengeOptions()).status());
  Fill(*store, "d-1", 1);
  ASSERT_OK_AND_ASSIGN(StoreInfo after, store->inspector().Info(estimate));
  InfoOptions exact;
  exact.exact_count_limit = std::numeric_limits<int64_t>::max();
  ASSERT_OK_AND_ASSIGN(StoreInfo exactly, store->inspector().Info(exact));
  EXPECT_TRUE(after.counts_estimated);
  EXPECT_FALSE(exactly.counts_estimated);
  EXPECT_LT(exactly.events, 22);  // c-1's five events are gone
  EXPECT_GE(after.events, exactly.events);
  EXPECT_EQ(after.streams, exactly.streams);
  EXPECT_EQ(after.head, exactly.head);
}

}  // namespace
}  // namespace eventstore::sqlite
