// EventStore::AppendEach, run on every backend of AllTestBackendsAndFailover():
// each append of a batch behaves exactly as if made alone with Append (its
// own expected version, idempotency by id and outbox), in request order, and
// one that fails is undone alone. The native batches (SQLite, PostgreSQL)
// also commit as one: a ReadAll reader sees all of a batch or none of it;
// the default AppendEach (the failover decorator) commits append by append.
//
// Tests whose names start with "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackendsAndFailover;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackendName;
using ::testing::ElementsAre;
using ::testing::SizeIs;

using Results = std::vector<absl::StatusOr<AppendResult>>;

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  EventData event = EventData::From(placed);
  event.id = Uuid::Generate();
  return event;
}

std::vector<std::string> OrderIds(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> ids;
  for (const RecordedEvent& event : events) {
    test::v1::OrderPlaced placed;
    if (placed.ParseFromString(event.payload)) {
      ids.push_back(placed.order_id());
    }
  }
  return ids;
}

class AppendEachConformanceTest : public test::StoreTest {
 protected:
  // The native batches commit as one; the default AppendEach does not.
  bool Atomic() const { return !absl::StartsWith(GetParam().name, "failover"); }

  std::vector<RecordedEvent> MustReadStream(const std::string& stream) {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        store().ReadStream(stream);
    EXPECT_OK(events);
    return events.ok() ? *std::move(events) : std::vector<RecordedEvent>();
  }

  std::vector<RecordedEvent> MustReadAll() {
    ReadAllOptions options;
    options.max_count = 100000;
    absl::StatusOr<ReadAllPage> page = store().ReadAll(options);
    EXPECT_OK(page);
    return page.ok() ? std::move(page->events) : std::vector<RecordedEvent>();
  }
};

TEST_P(AppendEachConformanceTest, EmptyBatchIsInvalidArgument) {
  EXPECT_THAT(store().AppendEach({}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MustReadAll(), SizeIs(0));
}

TEST_P(AppendEachConformanceTest, ReturnsOneResultPerAppendInOrder) {
  const std::vector<EventData> a = {Placed("a1"), Placed("a2")};
  const std::vector<EventData> b = {Placed("b1")};
  const std::vector<EventData> c = {Placed("c1"), Placed("c2"), Placed("c3")};
  const std::vector<AppendRequest> requests = {
      {"order-a", ExpectedVersion::NoStream(), a},
      {"order-b", ExpectedVersion::Any(), b},
      {"order-c", ExpectedVersion::Any(), c}};
  ASSERT_OK_AND_ASSIGN(Results results, store().AppendEach(requests));
  ASSERT_THAT(results, SizeIs(3));
  for (const auto& result : results) ASSERT_OK(result);
  EXPECT_EQ(results[0]->next_expected_version, 2);
  EXPECT_EQ(results[1]->next_expected_version, 1);
  EXPECT_EQ(results[2]->next_expected_version, 3);
  EXPECT_FALSE(results[0]->idempotent_retry);
  // Positions follow the requests' order, as ReadAll returns them.
  EXPECT_LT(results[0]->first_position, results[0]->last_position);
  EXPECT_LT(results[0]->last_position, results[1]->first_position);
  EXPECT_LT(results[1]->last_position, results[2]->first_position);
  const std::vector<RecordedEvent> all = MustReadAll();
  EXPECT_THAT(OrderIds(all), ElementsAre("a1", "a2", "b1", "c1", "c2", "c3"));
  ASSERT_THAT(all, SizeIs(6));
  EXPECT_EQ(all[0].position, results[0]->first_position);
  EXPECT_EQ(all[2].position, results[1]->first_position);
  EXPECT_EQ(all[5].position, results[2]->last_position);
  // Each append's result is what Append would have returned.
  EXPECT_EQ(MustReadStream("order-c")[2].position, results[2]->last_position);
}

TEST_P(AppendEachConformanceTest, LaterAppendsSeeEarlierOnesOfTheBatch) {
  const std::vector<EventData> first = {Placed("s1")};
  const std::vector<EventData> second = {Placed("s2"), Placed("s3")};
  const std::vector<EventData> stale = {Placed("stale")};
  const std::vector<EventData> third = {Placed("s4")};
  const std::vector<AppendRequest> requests = {
      {"chain-1", ExpectedVersion::NoStream(), first},
      {"chain-1", ExpectedVersion::Exactly(1), second},
      {"chain-1", ExpectedVersion::Exactly(1), stale},
      {"chain-1", ExpectedVersion::StreamExists(), third}};
  ASSERT_OK_AND_ASSIGN(Results results, store().AppendEach(requests));
  ASSERT_THAT(results, SizeIs(4));
  ASSERT_OK(results[0]);
  ASSERT_OK(results[1]);
  EXPECT_EQ(results[1]->next_expected_version, 3);
  ASSERT_TRUE(IsWrongExpectedVersion(results[2].status()))
      << results[2].status();
  ASSERT_OK(results[3]);
  EXPECT_EQ(results[3]->next_expected_version, 4);
  const std::vector<RecordedEvent> events = MustReadStream("chain-1");
  EXPECT_THAT(OrderIds(events), ElementsAre("s1", "s2", "s3", "s4"));
  for (int v = 0; v < static_cast<int>(events.size()); ++v) {
    EXPECT_EQ(events[v].version, v + 1);
  }
}

TEST_P(AppendEachConformanceTest, FailuresAreUndoneAloneAndOthersCommit) {
  // Already stored: an append to retry exactly, and an id to reuse.
  const std::vector<EventData> earlier = {Placed("earlier")};
  ASSERT_OK_AND_ASSIGN(
      AppendResult original,
      store().Append("mixed-retried", ExpectedVersion::Any(), earlier));
  const std::vector<EventData> ok1 = {Placed("ok1")};
  const std::vector<EventData> conflict = {Placed("conflict")};
  EventData reused = Placed("reused");
  reused.id = earlier[0].id;
  const std::vector<EventData> duplicate = {Placed("fresh"), reused};
  const std::vector<EventData> no_events;
  const std::vector<EventData> bad_name = {Placed("bad")};
  const std::vector<EventData> ok2 = {Placed("ok2")};
  const std::vector<AppendRequest> requests = {
      {"mixed-a", ExpectedVersion::NoStream(), ok1},
      {"mixed-b", ExpectedVersion::Exactly(5), conflict},
      {"mixed-c", ExpectedVersion::Any(), duplicate},
      {"mixed-retried", ExpectedVersion::Any(), earlier},
      {"mixed-d", ExpectedVersion::Any(), no_events},
      {"bad name", ExpectedVersion::Any(), bad_name},
      {"mixed-a", ExpectedVersion::Exactly(1), ok2}};
  ASSERT_OK_AND_ASSIGN(Results results, store().AppendEach(requests));
  ASSERT_THAT(results, SizeIs(7));
  ASSERT_OK(results[0]);
  EXPECT_TRUE(IsWrongExpectedVersion(results[1].status()))
      << results[1].status();
  EXPECT_THAT(results[2], StatusIs(absl::StatusCode::kAlreadyExists));
  ASSERT_OK(results[3]);
  EXPECT_TRUE(results[3]->idempotent_retry);
  EXPECT_EQ(*results[3], original);
  EXPECT_THAT(results[4], StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(results[5], StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(results[6]);
  EXPECT_EQ(results[6]->next_expected_version, 2);

  EXPECT_THAT(OrderIds(MustReadStream("mixed-a")), ElementsAre("ok1", "ok2"));
  EXPECT_THAT(MustReadStream("mixed-b"), SizeIs(0));
  // The duplicate's other event was undone with it.
  EXPECT_THAT(MustReadStream("mixed-c"), SizeIs(0));
  ASSERT_OK_AND_ASSIGN(bool fresh_stored, store().EventExists(duplicate[0].id));
  EXPECT_FALSE(fresh_stored);
  EXPECT_THAT(OrderIds(MustReadStream("mixed-retried")),
              ElementsAre("earlier"));
  EXPECT_THAT(OrderIds(MustReadAll()), ElementsAre("earlier", "ok1", "ok2"));
}

TEST_P(AppendEachConformanceTest, RetryingABatchIsIdempotent) {
  const std::vector<EventData> a = {Placed("a1"), Placed("a2")};
  const std::vector<EventData> b = {Placed("b1")};
  const std::vector<AppendRequest> requests = {
      {"retry-a", ExpectedVersion::NoStream(), a},
      {"retry-b", ExpectedVersion::NoStream(), b},
      {"retry-a", ExpectedVersion::Exactly(2), b}};
  ASSERT_OK_AND_ASSIGN(Results first, store().AppendEach(requests));
  ASSERT_THAT(first, SizeIs(3));
  ASSERT_OK(first[0]);
  ASSERT_OK(first[1]);
  // The same events again in the same batch: another stream's ids.
  EXPECT_THAT(first[2], StatusIs(absl::StatusCode::kAlreadyExists));

  ASSERT_OK_AND_ASSIGN(Results again, store().AppendEach(requests));
  ASSERT_THAT(again, SizeIs(3));
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK(again[i]);
    EXPECT_TRUE(again[i]->idempotent_retry);
    EXPECT_EQ(*again[i], *first[i]);
  }
  EXPECT_THAT(again[2], StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(OrderIds(MustReadAll()), ElementsAre("a1", "a2", "b1"));
}

TEST_P(AppendEachConformanceTest, AnAppendRepeatedInTheBatchIsARetry) {
  const std::vector<EventData> a = {Placed("once")};
  const std::vector<AppendRequest> requests = {
      {"twice", ExpectedVersion::NoStream(), a},
      {"twice", ExpectedVersion::NoStream(), a}};
  ASSERT_OK_AND_ASSIGN(Results results, store().AppendEach(requests));
  ASSERT_THAT(results, SizeIs(2));
  ASSERT_OK(results[0]);
  ASSERT_OK(results[1]);
  EXPECT_FALSE(results[0]->idempotent_retry);
  EXPECT_TRUE(results[1]->idempotent_retry);
  EXPECT_EQ(*results[1], *results[0]);
  EXPECT_THAT(OrderIds(MustReadStream("twice")), ElementsAre("once"));
}

TEST_P(AppendEachConformanceTest, OutboxOfEachAppendCommitsWithIt) {
  auto message = [](const std::string& key) {
    OutboxMessage m;
    m.destination = "topic";
    m.key = key;
    m.payload = absl::StrCat("payload ", key);
    return m;
  };
  const std::vector<EventData> a = {Placed("a")};
  const std::vector<EventData> b = {Placed("b")};
  const std::vector<EventData> c = {Placed("c")};
  const std::vector<OutboxMessage> kept = {message("kept-0"),
                                           message("kept-1")};
  const std::vector<OutboxMessage> lost = {message("lost")};
  const std::vector<OutboxMessage> also = {message("also")};
  const std::vector<AppendRequest> requests = {
      {"obx-a", ExpectedVersion::NoStream(), a, kept},
      {"obx-b", ExpectedVersion::Exactly(3), b, lost},
      {"obx-c", ExpectedVersion::Any(), c, also}};
  ASSERT_OK_AND_ASSIGN(Results results, store().AppendEach(requests));
  ASSERT_THAT(results, SizeIs(3));
  ASSERT_OK(results[0]);
  EXPECT_TRUE(IsWrongExpectedVersion(results[1].status()));
  ASSERT_OK(results[2]);
  // A retry of the batch enqueues nothing again.
  ASSERT_OK_AND_ASSIGN(Results again, store().AppendEach(requests));
  ASSERT_THAT(again, SizeIs(3));
  ASSERT_OK(again[0]);
  EXPECT_TRUE(again[0]->idempotent_retry);

  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store().outbox().Pending(100));
  std::vector<std::string> keys;
  for (const OutboxEntry& entry : pending) keys.push_back(entry.message.key);
  EXPECT_THAT(keys, ElementsAre("kept-0", "kept-1", "also"));
}

// Writers append batches of appends to streams of their own while a reader
// follows the log: it skips nothing, and (native batches) never sees part of
// a batch.
TEST_P(AppendEachConformanceTest,
       ConcurrentReaderSeesBatchesWholeAndSkipsNone) {
  constexpr int kWriters = 3;
  constexpr int kBatches = 15;
  constexpr int kPerBatch = 5;
  constexpr int kTotal = kWriters * kBatches * kPerBatch;
  std::atomic<int> writers_done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<std::vector<EventData>> events(kPerBatch);
        std::vector<AppendRequest> requests;
        std::vector<std::string> streams;
        for (int k = 0; k < kPerBatch; ++k) {
          streams.push_back(absl::StrCat("w", w, "-", k));
        }
        for (int k = 0; k < kPerBatch; ++k) {
          events[k] = {Placed(absl::StrCat("w", w, "-b", b, "-", k))};
          requests.push_back(
              {streams[k], ExpectedVersion::Exactly(b), events[k]});
        }
        absl::StatusOr<Results> results = store().AppendEach(requests);
        EXPECT_OK(results);
        if (!results.ok()) break;
        for (const auto& result : *results) EXPECT_OK(result);
      }
      writers_done++;
    });
  }
  std::vector<std::string> seen;
  absl::flat_hash_map<std::string, int> per_batch;
  int torn = 0;
  Position from;
  while (true) {
    const bool writers_finished = writers_done.load() == kWriters;
    ReadAllOptions options;
    options.from_position = from;
    options.max_count = 2 * kTotal;
    absl::StatusOr<ReadAllPage> page = store().ReadAll(options);
    ASSERT_OK(page);
    for (const RecordedEvent& event : page->events) {
      const std::vector<std::string> ids = OrderIds({event});
      ASSERT_THAT(ids, SizeIs(1));
      seen.push_back(ids[0]);
      per_batch[ids[0].substr(0, ids[0].rfind('-'))]++;
    }
    from = page->next_position;
    ASSERT_TRUE(page->end_of_log);
    for (const auto& [batch, count] : per_batch) {
      if (count != kPerBatch) ++torn;
    }
    if (writers_finished) break;
  }
  for (std::thread& t : writers) t.join();
  ASSERT_THAT(seen, SizeIs(kTotal));
  // Nothing skipped: what the reader followed is the whole log.
  EXPECT_EQ(seen, OrderIds(MustReadAll()));
  if (Atomic()) {
    EXPECT_EQ(torn, 0);
  }
}

// The backends' own AppendEach (not the default): the events of the whole
// batch are held to StoreLimits::max_batch_events.
class NativeAppendEachTest : public AppendEachConformanceTest {};

TEST_P(NativeAppendEachTest, BatchOverMaxBatchEventsIsRefusedWhole) {
  const size_t limit = store().limits().max_batch_events;
  std::vector<EventData> half(limit / 2 + 1);
  for (EventData& event : half) event = Placed("x");
  std::vector<EventData> other(limit / 2 + 1);
  for (EventData& event : other) event = Placed("y");
  const std::vector<AppendRequest> requests = {
      {"limit-a", ExpectedVersion::Any(), half},
      {"limit-b", ExpectedVersion::Any(), other}};
  EXPECT_THAT(store().AppendEach(requests),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("max_batch_events")));
  EXPECT_THAT(MustReadAll(), SizeIs(0));
  // Each alone is within the limit.
  ASSERT_OK_AND_ASSIGN(
      Results results,
      store().AppendEach(absl::MakeConstSpan(requests).subspan(0, 1)));
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_OK(results[0]);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, AppendEachConformanceTest,
                         ::testing::ValuesIn(AllTestBackendsAndFailover()),
                         TestBackendName);
INSTANTIATE_TEST_SUITE_P(AllBackends, NativeAppendEachTest,
                         ::testing::ValuesIn(test::AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
