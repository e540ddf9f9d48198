// The CheckpointStore contract (checkpoint_store.h), run on every backend of
// AllTestBackends(): projections' positions, processed counts, lag, and
// SaveIn inside a SqlTransaction (the exactly-once building block).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kPlacedType[] = "eventstore.test.v1.OrderPlaced";

// How far a timestamp written by the database may stand from the test's
// own clock (the PostgreSQL server runs on this machine).
constexpr absl::Duration kClockSlack = absl::Seconds(5);

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

EventData Shipped(const std::string& order_id) {
  test::v1::OrderShipped shipped;
  shipped.set_order_id(order_id);
  return EventData::From(shipped);
}

class CheckpointStoreConformanceTest
    : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        GetParam().open(nullptr);
    ASSERT_OK(store);
    store_ = *std::move(store);
  }

  EventStore& store() { return *store_; }
  CheckpointStore& checkpoints() { return store_->checkpoints(); }

  // Appends one event to `stream` and returns it as recorded.
  RecordedEvent AppendOne(const std::string& stream, EventData event) {
    const std::vector<EventData> events = {std::move(event)};
    absl::StatusOr<AppendResult> appended =
        store().Append(stream, ExpectedVersion::Any(), events);
    EXPECT_OK(appended);
    absl::StatusOr<std::vector<RecordedEvent>> read =
        store().ReadStream(stream);
    EXPECT_OK(read);
    if (!appended.ok() || !read.ok() || read->empty()) return RecordedEvent();
    EXPECT_EQ(read->back().id, events[0].id);
    EXPECT_EQ(read->back().position, appended->last_position);
    return read->back();
  }

  std::optional<Checkpoint> MustGet(const std::string& projection) {
    absl::StatusOr<std::optional<Checkpoint>> cp =
        checkpoints().Get(projection);
    EXPECT_OK(cp) << projection;
    return cp.ok() ? *cp : std::nullopt;
  }

  std::unique_ptr<EventStore> store_;
};

TEST_P(CheckpointStoreConformanceTest, GetAbsentIsNullopt) {
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       checkpoints().Get("never-saved"));
  EXPECT_FALSE(cp.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> all, checkpoints().List());
  EXPECT_THAT(all, IsEmpty());
}

TEST_P(CheckpointStoreConformanceTest, SaveThenGet) {
  AppendOne("order-1", Placed("1"));
  const RecordedEvent e2 = AppendOne("order-1", Shipped("1"));
  const absl::Time before = absl::Now();
  ASSERT_OK(checkpoints().Save("totals", e2.position, 2));
  const absl::Time after = absl::Now();

  std::optional<Checkpoint> cp = MustGet("totals");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->projection, "totals");
  EXPECT_EQ(cp->position, e2.position);
  EXPECT_EQ(cp->events_processed, 2);
  EXPECT_GE(cp->updated_at, before - kClockSlack);
  EXPECT_LE(cp->updated_at, after + kClockSlack);
  // Other projections are unaffected.
  EXPECT_FALSE(MustGet("other").has_value());
}

TEST_P(CheckpointStoreConformanceTest, PositionPartsRoundTrip) {
  // A position whose two parts differ (as PostgreSQL's do) is kept exactly.
  const Position p = Position::FromParts(7, 123456789012);
  ASSERT_OK(checkpoints().Save("pairs", p, 1));
  std::optional<Checkpoint> cp = MustGet("pairs");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, p);
  EXPECT_EQ(cp->position.commit(), 7u);
  EXPECT_EQ(cp->position.prepare(), 123456789012u);
}

TEST_P(CheckpointStoreConformanceTest, LastWriteWins) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  const RecordedEvent e2 = AppendOne("s", Placed("2"));
  const RecordedEvent e3 = AppendOne("s", Placed("3"));
  ASSERT_OK(checkpoints().Save("p", e3.position, 1));
  ASSERT_OK(checkpoints().Save("p", e2.position, 1));
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, e2.position);
  // Even backwards: a projection rewound by its owner.
  ASSERT_OK(checkpoints().Save("p", e1.position, 0));
  cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, e1.position);
  ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> all, checkpoints().List());
  EXPECT_THAT(all, SizeIs(1));
}

TEST_P(CheckpointStoreConformanceTest, ProcessedCountsAddUp) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  const RecordedEvent e2 = AppendOne("s", Placed("2"));
  ASSERT_OK(checkpoints().Save("p", e1.position, 3));
  ASSERT_OK(checkpoints().Save("p", e2.position, 4));
  ASSERT_OK(checkpoints().Save("p", e2.position, 0));
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->events_processed, 7);
  EXPECT_EQ(cp->position, e2.position);
}

TEST_P(CheckpointStoreConformanceTest, SaveNonDurableSavesAsSaveDoes) {
  // The same contract as Save once it returns (only durability may differ).
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  const RecordedEvent e2 = AppendOne("s", Placed("2"));
  ASSERT_OK(checkpoints().SaveNonDurable("p", e2.position, 3));
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, e2.position);
  EXPECT_EQ(cp->events_processed, 3);
  ASSERT_OK(checkpoints().SaveNonDurable("p", e1.position, 4));
  ASSERT_OK(checkpoints().Save("p", e2.position, 1));
  cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, e2.position);
  EXPECT_EQ(cp->events_processed, 8);
  EXPECT_EQ(checkpoints().SaveNonDurable("", e1.position, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(checkpoints().SaveNonDurable("p", e1.position, -1).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(CheckpointStoreConformanceTest, ResetRemovesAndRestartsTheCount) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  ASSERT_OK(checkpoints().Save("p", e1.position, 5));
  ASSERT_OK(checkpoints().Save("q", e1.position, 1));
  ASSERT_OK(checkpoints().Reset("p"));
  EXPECT_FALSE(MustGet("p").has_value());
  EXPECT_TRUE(MustGet("q").has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> all, checkpoints().List());
  ASSERT_THAT(all, SizeIs(1));
  EXPECT_EQ(all[0].projection, "q");

  // Counting starts over after a reset.
  ASSERT_OK(checkpoints().Save("p", e1.position, 2));
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->events_processed, 2);
}

TEST_P(CheckpointStoreConformanceTest, ListIsSortedByName) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  const RecordedEvent e2 = AppendOne("s", Placed("2"));
  ASSERT_OK(checkpoints().Save("zeta", e2.position, 2));
  ASSERT_OK(checkpoints().Save("alpha", e1.position, 1));
  ASSERT_OK(checkpoints().Save("mid", e2.position, 9));
  ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> all, checkpoints().List());
  ASSERT_THAT(all, SizeIs(3));
  EXPECT_EQ(all[0].projection, "alpha");
  EXPECT_EQ(all[0].position, e1.position);
  EXPECT_EQ(all[0].events_processed, 1);
  EXPECT_EQ(all[1].projection, "mid");
  EXPECT_EQ(all[1].position, e2.position);
  EXPECT_EQ(all[1].events_processed, 9);
  EXPECT_EQ(all[2].projection, "zeta");
  EXPECT_EQ(all[2].position, e2.position);
  EXPECT_EQ(all[2].events_processed, 2);
}

TEST_P(CheckpointStoreConformanceTest, NoRebuildRequestedByDefault) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  ASSERT_OK(checkpoints().Save("p", e1.position, 1));
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_FALSE(cp->rebuild_requested_at.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, "");
}

TEST_P(CheckpointStoreConformanceTest,
       RequestRebuildWithoutACheckpointCreatesOneAtTheStart) {
  const absl::Time before = absl::Now();
  ASSERT_OK(checkpoints().RequestRebuild("fresh", "alice"));
  const absl::Time after = absl::Now();
  std::optional<Checkpoint> cp = MustGet("fresh");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, Position::Start());
  EXPECT_EQ(cp->events_processed, 0);
  ASSERT_TRUE(cp->rebuild_requested_at.has_value());
  EXPECT_GE(*cp->rebuild_requested_at, before - kClockSlack);
  EXPECT_LE(*cp->rebuild_requested_at, after + kClockSlack);
  EXPECT_EQ(cp->rebuild_requested_by, "alice");
}

TEST_P(CheckpointStoreConformanceTest, RequestRebuildKeepsThePosition) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  const RecordedEvent e2 = AppendOne("s", Placed("2"));
  ASSERT_OK(checkpoints().Save("p", e2.position, 2));
  ASSERT_OK(checkpoints().Save("q", e1.position, 1));
  ASSERT_OK(checkpoints().RequestRebuild("p", "bob"));
  // The runner moves the checkpoint back when it starts the rebuild; until
  // then the checkpoint, and other projections, are as they were.
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, e2.position);
  EXPECT_EQ(cp->events_processed, 2);
  EXPECT_TRUE(cp->rebuild_requested_at.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, "bob");
  std::optional<Checkpoint> other = MustGet("q");
  ASSERT_TRUE(other.has_value());
  EXPECT_FALSE(other->rebuild_requested_at.has_value());
}

TEST_P(CheckpointStoreConformanceTest, RequestingAgainKeepsTheFirstRequest) {
  ASSERT_OK(checkpoints().RequestRebuild("p", "first"));
  std::optional<Checkpoint> first = MustGet("p");
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(first->rebuild_requested_at.has_value());
  absl::SleepFor(absl::Milliseconds(5));  // a later time, were it replaced
  ASSERT_OK(checkpoints().RequestRebuild("p", "second"));
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, "first");
  EXPECT_EQ(cp->rebuild_requested_at, first->rebuild_requested_at);
}

TEST_P(CheckpointStoreConformanceTest, SavesKeepARequestUntilReset) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  const RecordedEvent e2 = AppendOne("s", Placed("2"));
  ASSERT_OK(checkpoints().Save("p", e1.position, 1));
  ASSERT_OK(checkpoints().RequestRebuild("p", "carol"));
  // A runner that has not seen the request yet goes on saving.
  ASSERT_OK(checkpoints().Save("p", e2.position, 1));
  ASSERT_OK(checkpoints().SaveNonDurable("p", e2.position, 0));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                       store().BeginTransaction());
  ASSERT_OK(checkpoints().SaveIn(*tx, "p", e2.position, 0));
  ASSERT_OK(tx->Commit());
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, e2.position);
  EXPECT_EQ(cp->rebuild_requested_by, "carol");
  EXPECT_TRUE(cp->rebuild_requested_at.has_value());

  // Reset removes the row, and the request with it.
  ASSERT_OK(checkpoints().Reset("p"));
  EXPECT_FALSE(MustGet("p").has_value());
  ASSERT_OK(checkpoints().Save("p", e1.position, 1));
  cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_FALSE(cp->rebuild_requested_at.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, "");
}

TEST_P(CheckpointStoreConformanceTest, ListShowsRebuildRequests) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  ASSERT_OK(checkpoints().Save("alpha", e1.position, 1));
  ASSERT_OK(checkpoints().Save("beta", e1.position, 1));
  ASSERT_OK(checkpoints().RequestRebuild("beta", "dave"));
  ASSERT_OK(checkpoints().RequestRebuild("gamma", "erin"));
  ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> all, checkpoints().List());
  ASSERT_THAT(all, SizeIs(3));
  EXPECT_EQ(all[0].projection, "alpha");
  EXPECT_FALSE(all[0].rebuild_requested_at.has_value());
  EXPECT_EQ(all[1].projection, "beta");
  EXPECT_TRUE(all[1].rebuild_requested_at.has_value());
  EXPECT_EQ(all[1].rebuild_requested_by, "dave");
  EXPECT_EQ(all[1].position, e1.position);
  EXPECT_EQ(all[2].projection, "gamma");
  EXPECT_TRUE(all[2].rebuild_requested_at.has_value());
  EXPECT_EQ(all[2].rebuild_requested_by, "erin");
  EXPECT_EQ(all[2].position, Position::Start());
}

TEST_P(CheckpointStoreConformanceTest, RequestRebuildNeedsBothNames) {
  EXPECT_EQ(checkpoints().RequestRebuild("p", "").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(checkpoints().RequestRebuild("", "alice").code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing was written.
  EXPECT_FALSE(MustGet("p").has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<Checkpoint> all, checkpoints().List());
  EXPECT_THAT(all, IsEmpty());
}

TEST_P(CheckpointStoreConformanceTest, RequestRebuildKeepsTheNameAsGiven) {
  // An operator's name is text like any other: quotes, non-ASCII, spaces.
  const std::string name = "O'Brien \"ops\" Zoë";
  ASSERT_OK(checkpoints().RequestRebuild("p", name));
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, name);
}

TEST_P(CheckpointStoreConformanceTest, LagOnAnEmptyLog) {
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, checkpoints().Lag("p", {}));
  EXPECT_EQ(lag.projection, "p");
  EXPECT_EQ(lag.checkpoint, Position::Start());
  EXPECT_EQ(lag.events_behind, 0);
  EXPECT_EQ(lag.time_behind, absl::ZeroDuration());
}

// Four events recorded at least 30 ms apart: Placed, Shipped, Placed,
// Shipped.
class CheckpointLagTest : public CheckpointStoreConformanceTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(CheckpointStoreConformanceTest::SetUp());
    for (int i = 0; i < 4; ++i) {
      if (i > 0) absl::SleepFor(absl::Milliseconds(30));
      const std::string id = absl::StrCat(i);
      events_.push_back(
          AppendOne("order-" + id, i % 2 == 0 ? Placed(id) : Shipped(id)));
    }
    ASSERT_FALSE(HasFailure());
    for (int i = 1; i < 4; ++i) {
      ASSERT_GT(events_[i].position, events_[i - 1].position);
      ASSERT_GT(events_[i].recorded_at, events_[i - 1].recorded_at)
          << "events appended 30 ms apart share a recorded_at";
    }
  }

  std::vector<RecordedEvent> events_;
};

TEST_P(CheckpointLagTest, NoCheckpointCountsTheWholeLog) {
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, checkpoints().Lag("p", {}));
  EXPECT_EQ(lag.projection, "p");
  EXPECT_EQ(lag.checkpoint, Position::Start());
  EXPECT_EQ(lag.events_behind, 4);
  // Newest minus oldest.
  EXPECT_EQ(lag.time_behind, events_[3].recorded_at - events_[0].recorded_at);
  EXPECT_GE(lag.time_behind, absl::Milliseconds(80));
}

TEST_P(CheckpointLagTest, MidWay) {
  ASSERT_OK(checkpoints().Save("p", events_[1].position, 2));
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, checkpoints().Lag("p", {}));
  EXPECT_EQ(lag.checkpoint, events_[1].position);
  EXPECT_EQ(lag.events_behind, 2);
  EXPECT_EQ(lag.time_behind, events_[3].recorded_at - events_[1].recorded_at);
}

TEST_P(CheckpointLagTest, CaughtUpIsZero) {
  ASSERT_OK(checkpoints().Save("p", events_[3].position, 4));
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, checkpoints().Lag("p", {}));
  EXPECT_EQ(lag.checkpoint, events_[3].position);
  EXPECT_EQ(lag.events_behind, 0);
  EXPECT_EQ(lag.time_behind, absl::ZeroDuration());
}

TEST_P(CheckpointLagTest, HonoursAnEventTypeFilter) {
  ReadAllFilter placed_only;
  placed_only.event_types = {kPlacedType};

  // No checkpoint: events 0 and 2 pass.
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, checkpoints().Lag("p", placed_only));
  EXPECT_EQ(lag.events_behind, 2);
  EXPECT_EQ(lag.time_behind, events_[2].recorded_at - events_[0].recorded_at);

  // At event 0: only event 2 is behind (event 3 is a Shipped).
  ASSERT_OK(checkpoints().Save("p", events_[0].position, 1));
  ASSERT_OK_AND_ASSIGN(lag, checkpoints().Lag("p", placed_only));
  EXPECT_EQ(lag.checkpoint, events_[0].position);
  EXPECT_EQ(lag.events_behind, 1);
  EXPECT_EQ(lag.time_behind, events_[2].recorded_at - events_[0].recorded_at);

  // At event 2: caught up, although event 3 follows (it does not pass).
  ASSERT_OK(checkpoints().Save("p", events_[2].position, 1));
  ASSERT_OK_AND_ASSIGN(lag, checkpoints().Lag("p", placed_only));
  EXPECT_EQ(lag.events_behind, 0);
  EXPECT_EQ(lag.time_behind, absl::ZeroDuration());
  // Unfiltered, event 3 is behind.
  ASSERT_OK_AND_ASSIGN(lag, checkpoints().Lag("p", {}));
  EXPECT_EQ(lag.events_behind, 1);
  EXPECT_EQ(lag.time_behind, events_[3].recorded_at - events_[2].recorded_at);
}

TEST_P(CheckpointLagTest, HonoursAStreamPrefixFilter) {
  AppendOne("invoice-1", Placed("i1"));
  ReadAllFilter orders;
  orders.stream_prefix = "order-";
  ASSERT_OK(checkpoints().Save("p", events_[1].position, 2));
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, checkpoints().Lag("p", orders));
  EXPECT_EQ(lag.events_behind, 2);
  EXPECT_EQ(lag.time_behind, events_[3].recorded_at - events_[1].recorded_at);
  ASSERT_OK_AND_ASSIGN(lag, checkpoints().Lag("p", {}));
  EXPECT_EQ(lag.events_behind, 3);
}

// --- SaveIn: the checkpoint commits with the read model ----------------------

// Creates the read-model table in its own committed transaction.
absl::Status CreateReadModel(EventStore& store) {
  absl::StatusOr<std::unique_ptr<SqlTransaction>> tx = store.BeginTransaction();
  if (!tx.ok()) return tx.status();
  absl::Status status = (*tx)->Execute(
      "CREATE TABLE IF NOT EXISTS rm_checkpointed "
      "(name TEXT PRIMARY KEY, n BIGINT NOT NULL)");
  if (!status.ok()) return status;
  return (*tx)->Commit();
}

absl::StatusOr<SqlRows> ReadModelRows(EventStore& store) {
  absl::StatusOr<std::unique_ptr<SqlTransaction>> tx = store.BeginTransaction();
  if (!tx.ok()) return tx.status();
  return (*tx)->Query("SELECT name, n FROM rm_checkpointed ORDER BY name");
}

TEST_P(CheckpointStoreConformanceTest, SaveInCommittedTransactionIsVisible) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  const RecordedEvent e2 = AppendOne("s", Placed("2"));
  ASSERT_OK(CreateReadModel(store()));
  ASSERT_OK(checkpoints().Save("p", e1.position, 1));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(
        tx->Execute("INSERT INTO rm_checkpointed (name, n) "
                    "VALUES ($1, $2)",
                    {SqlValue::Text("a"), SqlValue::Int(1)}));
    ASSERT_OK(checkpoints().SaveIn(*tx, "p", e2.position, 1));
    ASSERT_OK(tx->Commit());
  }
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, e2.position);
  EXPECT_EQ(cp->events_processed, 2);
  ASSERT_OK_AND_ASSIGN(SqlRows rows, ReadModelRows(store()));
  EXPECT_THAT(rows, ElementsAre(SqlRow{"a", "1"}));
}

TEST_P(CheckpointStoreConformanceTest, SaveInOnANewProjectionCreatesIt) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(checkpoints().SaveIn(*tx, "fresh", e1.position, 3));
    ASSERT_OK(tx->Commit());
  }
  std::optional<Checkpoint> cp = MustGet("fresh");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, e1.position);
  EXPECT_EQ(cp->events_processed, 3);
}

TEST_P(CheckpointStoreConformanceTest, SaveInRolledBackTransactionIsNot) {
  const RecordedEvent e1 = AppendOne("s", Placed("1"));
  const RecordedEvent e2 = AppendOne("s", Placed("2"));
  ASSERT_OK(CreateReadModel(store()));
  ASSERT_OK(checkpoints().Save("p", e1.position, 1));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(
        tx->Execute("INSERT INTO rm_checkpointed (name, n) "
                    "VALUES ($1, $2)",
                    {SqlValue::Text("a"), SqlValue::Int(1)}));
    ASSERT_OK(checkpoints().SaveIn(*tx, "p", e2.position, 1));
    ASSERT_OK(checkpoints().SaveIn(*tx, "new", e2.position, 1));
    // Destroyed without Commit: both writes roll back.
  }
  std::optional<Checkpoint> cp = MustGet("p");
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, e1.position);
  EXPECT_EQ(cp->events_processed, 1);
  EXPECT_FALSE(MustGet("new").has_value());
  ASSERT_OK_AND_ASSIGN(SqlRows rows, ReadModelRows(store()));
  EXPECT_THAT(rows, IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, CheckpointStoreConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);
INSTANTIATE_TEST_SUITE_P(AllBackends, CheckpointLagTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
