// The DeadLetterStore contract (dead_letter_store.h), run on every backend
// of AllTestBackends(): parking, re-parking, listing, retrying, resolving,
// counting and cleaning up the events projections could not handle.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kPlacedType[] = "eventstore.test.v1.OrderPlaced";

// How far a timestamp written by the database may stand from the test's
// own clock (the PostgreSQL server runs on this machine).
constexpr absl::Duration kClockSlack = absl::Seconds(5);

// Between two Adds whose order a test checks: timestamps have microsecond
// precision, so this makes them differ.
void Tick() { absl::SleepFor(absl::Milliseconds(3)); }

std::vector<Uuid> EventIds(const std::vector<DeadLetter>& letters) {
  std::vector<Uuid> ids;
  for (const DeadLetter& d : letters) ids.push_back(d.event_id);
  return ids;
}

std::vector<std::string> Projections(const std::vector<DeadLetter>& letters) {
  std::vector<std::string> names;
  for (const DeadLetter& d : letters) names.push_back(d.projection);
  return names;
}

class DeadLetterStoreConformanceTest : public test::StoreTest {
 protected:
  void SetUp() override {
    test::StoreTest::SetUp();
    if (HasFatalFailure()) return;
    // Five recorded events, e_[0..4], on two streams.
    for (int i = 0; i < 5; ++i) {
      test::v1::OrderPlaced placed;
      placed.set_order_id(absl::StrCat("o", i));
      const std::vector<EventData> events = {EventData::From(placed)};
      ASSERT_OK(store_->Append(absl::StrCat("order-", i % 2),
                               ExpectedVersion::Any(), events));
    }
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, store_->ReadAll({}));
    ASSERT_THAT(page.events, SizeIs(5));
    e_ = page.events;
  }

  DeadLetterStore& letters() { return store_->dead_letters(); }

  std::optional<DeadLetter> MustGet(const std::string& projection,
                                    const Uuid& id) {
    absl::StatusOr<std::optional<DeadLetter>> d = letters().Get(projection, id);
    EXPECT_OK(d);
    return d.ok() ? *d : std::nullopt;
  }

  std::vector<DeadLetter> MustList(const std::string& projection,
                                   std::optional<DeadLetterStatus> status,
                                   int limit) {
    absl::StatusOr<std::vector<DeadLetter>> list =
        letters().List(projection, status, limit);
    EXPECT_OK(list);
    return list.ok() ? *std::move(list) : std::vector<DeadLetter>();
  }

  std::vector<RecordedEvent> e_;
};

TEST_P(DeadLetterStoreConformanceTest, GetAbsentIsNullopt) {
  EXPECT_FALSE(MustGet("p", e_[0].id).has_value());
  EXPECT_THAT(MustList("", std::nullopt, 100), IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<DeadLetterCount> counts, letters().Counts());
  EXPECT_THAT(counts, IsEmpty());
}

TEST_P(DeadLetterStoreConformanceTest, AddParksTheEvent) {
  const absl::Time before = absl::Now();
  ASSERT_OK(letters().Add("totals", e_[2], "handler said no"));
  const absl::Time after = absl::Now();

  std::optional<DeadLetter> d = MustGet("totals", e_[2].id);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->projection, "totals");
  EXPECT_EQ(d->event_id, e_[2].id);
  EXPECT_EQ(d->stream, e_[2].stream);
  EXPECT_EQ(d->version, e_[2].version);
  EXPECT_EQ(d->position, e_[2].position);
  EXPECT_EQ(d->event_type, kPlacedType);
  EXPECT_EQ(d->status, DeadLetterStatus::kParked);
  EXPECT_EQ(d->error, "handler said no");
  EXPECT_EQ(d->failure_count, 1);
  EXPECT_EQ(d->first_failed_at, d->last_failed_at);
  EXPECT_GE(d->first_failed_at, before - kClockSlack);
  EXPECT_LE(d->first_failed_at, after + kClockSlack);
  EXPECT_EQ(d->resolved_by, "");
  EXPECT_EQ(d->resolved_at, absl::InfinitePast());
  // Per projection: the same event is not parked for another one.
  EXPECT_FALSE(MustGet("other", e_[2].id).has_value());
  EXPECT_FALSE(MustGet("totals", e_[1].id).has_value());
}

TEST_P(DeadLetterStoreConformanceTest, AddAgainCountsAnotherFailure) {
  ASSERT_OK(letters().Add("totals", e_[0], "first error"));
  std::optional<DeadLetter> first = MustGet("totals", e_[0].id);
  ASSERT_TRUE(first.has_value());
  Tick();
  ASSERT_OK(letters().Add("totals", e_[0], "second error"));

  std::optional<DeadLetter> d = MustGet("totals", e_[0].id);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->failure_count, 2);
  EXPECT_EQ(d->error, "second error");
  EXPECT_EQ(d->status, DeadLetterStatus::kParked);
  EXPECT_EQ(d->first_failed_at, first->first_failed_at);
  EXPECT_GT(d->last_failed_at, first->last_failed_at);
  EXPECT_THAT(MustList("totals", std::nullopt, 100), SizeIs(1));
}

TEST_P(DeadLetterStoreConformanceTest, AddAgainWhileRetryingParksAgain) {
  ASSERT_OK(letters().Add("totals", e_[0], "first error"));
  ASSERT_OK(letters().MarkRetrying("totals", e_[0].id));
  Tick();
  ASSERT_OK(letters().Add("totals", e_[0], "still broken"));
  std::optional<DeadLetter> d = MustGet("totals", e_[0].id);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->status, DeadLetterStatus::kParked);
  EXPECT_EQ(d->failure_count, 2);
  EXPECT_EQ(d->error, "still broken");
}

TEST_P(DeadLetterStoreConformanceTest, ListByProjectionAndStatusOldestFirst) {
  // Parked in the order 3, 1, 4, 0 for "a"; 2 for "b".
  for (int i : {3, 1, 4, 0}) {
    ASSERT_OK(letters().Add("a", e_[i], absl::StrCat("error ", i)));
    Tick();
  }
  ASSERT_OK(letters().Add("b", e_[2], "error b"));

  EXPECT_THAT(EventIds(MustList("a", DeadLetterStatus::kParked, 100)),
              ElementsAre(e_[3].id, e_[1].id, e_[4].id, e_[0].id));
  EXPECT_THAT(EventIds(MustList("a", DeadLetterStatus::kParked, 2)),
              ElementsAre(e_[3].id, e_[1].id));
  EXPECT_THAT(EventIds(MustList("a", std::nullopt, 3)),
              ElementsAre(e_[3].id, e_[1].id, e_[4].id));
  EXPECT_THAT(EventIds(MustList("b", std::nullopt, 100)),
              ElementsAre(e_[2].id));
  EXPECT_THAT(MustList("c", std::nullopt, 100), IsEmpty());

  ASSERT_OK(letters().MarkRetrying("a", e_[4].id));
  ASSERT_OK(letters().MarkResolved("a", e_[1].id, "ops"));
  EXPECT_THAT(EventIds(MustList("a", DeadLetterStatus::kParked, 100)),
              ElementsAre(e_[3].id, e_[0].id));
  EXPECT_THAT(EventIds(MustList("a", DeadLetterStatus::kRetrying, 100)),
              ElementsAre(e_[4].id));
  EXPECT_THAT(EventIds(MustList("a", DeadLetterStatus::kResolved, 100)),
              ElementsAre(e_[1].id));
  EXPECT_THAT(EventIds(MustList("a", std::nullopt, 100)),
              ElementsAre(e_[3].id, e_[1].id, e_[4].id, e_[0].id));
  EXPECT_THAT(MustList("b", DeadLetterStatus::kRetrying, 100), IsEmpty());
}

TEST_P(DeadLetterStoreConformanceTest, EmptyProjectionListsAllProjections) {
  ASSERT_OK(letters().Add("b", e_[0], "x"));
  Tick();
  ASSERT_OK(letters().Add("a", e_[1], "x"));
  Tick();
  ASSERT_OK(letters().Add("b", e_[2], "x"));
  Tick();
  ASSERT_OK(letters().Add("c", e_[0], "x"));

  std::vector<DeadLetter> all = MustList("", std::nullopt, 100);
  EXPECT_THAT(Projections(all), ElementsAre("b", "a", "b", "c"));
  EXPECT_THAT(EventIds(all),
              ElementsAre(e_[0].id, e_[1].id, e_[2].id, e_[0].id));
  EXPECT_THAT(Projections(MustList("", DeadLetterStatus::kParked, 2)),
              ElementsAre("b", "a"));
}

TEST_P(DeadLetterStoreConformanceTest, MarkRetryingAndResolved) {
  ASSERT_OK(letters().Add("p", e_[0], "boom"));
  ASSERT_OK(letters().MarkRetrying("p", e_[0].id));
  std::optional<DeadLetter> d = MustGet("p", e_[0].id);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->status, DeadLetterStatus::kRetrying);
  EXPECT_EQ(d->failure_count, 1);
  EXPECT_EQ(d->error, "boom");
  EXPECT_EQ(d->resolved_at, absl::InfinitePast());

  const absl::Time before = absl::Now();
  ASSERT_OK(letters().MarkResolved("p", e_[0].id, "alice"));
  const absl::Time after = absl::Now();
  d = MustGet("p", e_[0].id);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->status, DeadLetterStatus::kResolved);
  EXPECT_EQ(d->resolved_by, "alice");
  EXPECT_GE(d->resolved_at, before - kClockSlack);
  EXPECT_LE(d->resolved_at, after + kClockSlack);
  EXPECT_GE(d->resolved_at, d->first_failed_at);
  // The failure's record is kept.
  EXPECT_EQ(d->failure_count, 1);
  EXPECT_EQ(d->error, "boom");
  EXPECT_EQ(d->position, e_[0].position);
}

TEST_P(DeadLetterStoreConformanceTest, MarkRetryingUnknownIsNotFound) {
  EXPECT_THAT(letters().MarkRetrying("p", e_[0].id),
              StatusIs(absl::StatusCode::kNotFound));
  // Parked for another projection only.
  ASSERT_OK(letters().Add("q", e_[0], "x"));
  EXPECT_THAT(letters().MarkRetrying("p", e_[0].id),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(letters().MarkRetrying("q", Uuid::Generate()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_FALSE(MustGet("p", e_[0].id).has_value());
  std::optional<DeadLetter> q = MustGet("q", e_[0].id);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->status, DeadLetterStatus::kParked);
}

TEST_P(DeadLetterStoreConformanceTest, CountsPerProjectionExcludeResolved) {
  ASSERT_OK(letters().Add("zeta", e_[0], "x"));
  ASSERT_OK(letters().Add("alpha", e_[0], "x"));
  ASSERT_OK(letters().Add("alpha", e_[1], "x"));
  ASSERT_OK(letters().Add("alpha", e_[2], "x"));
  ASSERT_OK(letters().Add("alpha", e_[3], "x"));
  ASSERT_OK(letters().Add("mid", e_[4], "x"));
  ASSERT_OK(letters().Add("mid", e_[3], "x"));
  ASSERT_OK(letters().MarkRetrying("alpha", e_[1].id));
  ASSERT_OK(letters().MarkResolved("alpha", e_[2].id, "ops"));
  ASSERT_OK(letters().MarkResolved("mid", e_[3].id, "ops"));
  ASSERT_OK(letters().MarkRetrying("zeta", e_[0].id));

  ASSERT_OK_AND_ASSIGN(std::vector<DeadLetterCount> counts, letters().Counts());
  ASSERT_THAT(counts, SizeIs(3));
  EXPECT_EQ(counts[0].projection, "alpha");
  EXPECT_EQ(counts[0].parked, 2);
  EXPECT_EQ(counts[0].retrying, 1);
  EXPECT_EQ(counts[1].projection, "mid");
  EXPECT_EQ(counts[1].parked, 1);
  EXPECT_EQ(counts[1].retrying, 0);
  EXPECT_EQ(counts[2].projection, "zeta");
  EXPECT_EQ(counts[2].parked, 0);
  EXPECT_EQ(counts[2].retrying, 1);
}

TEST_P(DeadLetterStoreConformanceTest, DeleteResolvedOlderThan) {
  ASSERT_OK(letters().Add("p", e_[0], "x"));
  ASSERT_OK(letters().Add("p", e_[1], "x"));
  ASSERT_OK(letters().Add("p", e_[2], "x"));
  ASSERT_OK(letters().Add("q", e_[0], "x"));
  ASSERT_OK(letters().MarkResolved("p", e_[0].id, "ops"));
  ASSERT_OK(letters().MarkResolved("q", e_[0].id, "ops"));
  ASSERT_OK(letters().MarkRetrying("p", e_[1].id));

  // Resolved just now: not older than an hour.
  ASSERT_OK_AND_ASSIGN(int64_t deleted,
                       letters().DeleteResolvedOlderThan(absl::Hours(1)));
  EXPECT_EQ(deleted, 0);
  EXPECT_THAT(MustList("", std::nullopt, 100), SizeIs(4));

  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_OK_AND_ASSIGN(
      deleted, letters().DeleteResolvedOlderThan(absl::Milliseconds(1)));
  EXPECT_EQ(deleted, 2);
  EXPECT_FALSE(MustGet("p", e_[0].id).has_value());
  EXPECT_FALSE(MustGet("q", e_[0].id).has_value());
  // Unresolved ones stay, whatever their age.
  std::optional<DeadLetter> retrying = MustGet("p", e_[1].id);
  ASSERT_TRUE(retrying.has_value());
  EXPECT_EQ(retrying->status, DeadLetterStatus::kRetrying);
  std::optional<DeadLetter> parked = MustGet("p", e_[2].id);
  ASSERT_TRUE(parked.has_value());
  EXPECT_EQ(parked->status, DeadLetterStatus::kParked);
  EXPECT_THAT(MustList("", std::nullopt, 100), SizeIs(2));

  ASSERT_OK_AND_ASSIGN(deleted,
                       letters().DeleteResolvedOlderThan(absl::ZeroDuration()));
  EXPECT_EQ(deleted, 0);
}

TEST_P(DeadLetterStoreConformanceTest, ListPagePagesByKeyInListOrder) {
  // p and q park e_[0] at about the same time: position, then projection,
  // order entries whose first failures share a timestamp.
  ASSERT_OK(letters().Add("q", e_[0], "x"));
  ASSERT_OK(letters().Add("p", e_[0], "x"));
  Tick();
  ASSERT_OK(letters().Add("p", e_[1], "x"));
  Tick();
  ASSERT_OK(letters().Add("p/eu", e_[2], "x"));
  Tick();
  ASSERT_OK(letters().Add("p", e_[3], "x"));
  ASSERT_OK(letters().MarkResolved("p", e_[1].id, "al"));
  ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> all,
                       letters().List("", std::nullopt, 100));
  ASSERT_THAT(all, SizeIs(5));

  // Pages of two, each after the last key of the one before, list what
  // List lists, in its order.
  DeadLetterListOptions options;
  options.limit = 2;
  std::vector<DeadLetter> paged;
  for (int pages = 0; pages < 5; ++pages) {
    ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> page,
                         letters().ListPage(options));
    for (DeadLetter& d : page) paged.push_back(std::move(d));
    if (page.size() < 2) break;
    options.after = DeadLetterKey::Of(paged.back());
    if (pages == 0) {
      // A status change between two pages moves nothing.
      ASSERT_OK(letters().MarkRetrying("p", e_[3].id));
    }
  }
  ASSERT_THAT(paged, SizeIs(5));
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(paged[i].projection, all[i].projection) << i;
    EXPECT_EQ(paged[i].event_id, all[i].event_id) << i;
  }

  // Filters: a projection, a set of statuses.
  DeadLetterListOptions parked;
  parked.projection = "p";
  parked.statuses = {DeadLetterStatus::kParked, DeadLetterStatus::kRetrying};
  ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> unresolved,
                       letters().ListPage(parked));
  EXPECT_THAT(EventIds(unresolved), ElementsAre(e_[0].id, e_[3].id));
  parked.projection.clear();
  parked.statuses = {DeadLetterStatus::kResolved};
  ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> resolved,
                       letters().ListPage(parked));
  EXPECT_THAT(EventIds(resolved), ElementsAre(e_[1].id));

  parked.limit = -1;
  EXPECT_THAT(letters().ListPage(parked),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, DeadLetterStoreConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
