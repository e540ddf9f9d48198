// ProjectionRunner over a log holding a row damaged by hand (issue #9, item
// 0): the damaged event is dead-lettered with its damage as the error,
// never handed to the handler, and the runner goes on to the events after
// it; plain and transactional projections, on SQLite files and PostgreSQL.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/projection_runner.h"
#include "tests/projections/test_projections.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AppendOrders;
using ::eventstore::test::CountRows;
using ::eventstore::test::RawAccessTestBackends;
using ::eventstore::test::RecordingProjection;
using ::eventstore::test::RowCounts;
using ::eventstore::test::RowProjection;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kTable[] = "damage_rows";

class ProjectionDamageTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventStore>> opened =
        GetParam().open(nullptr);
    ASSERT_OK(opened);
    store_ = *std::move(opened);
    ASSERT_OK(RowProjection::CreateTable(*store_, kTable));
    ASSERT_OK_AND_ASSIGN(ids_, AppendOrders(*store_, "order-1", 7));
    // Version 4 (the 4th event) gets a payload its checksum does not match.
    ASSERT_OK(GetParam().overwrite_column(*store_, "order-1", 4, "payload",
                                          std::string("\x0a\x03zzz")));
  }

  static ProjectionRunnerOptions Options() {
    ProjectionRunnerOptions options;
    options.batch_size = 3;  // the damaged event mid-batch
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(2);
    options.max_attempts = 2;
    options.worker_name = "test-worker";
    return options;
  }

  void ExpectParked(const std::string& name) {
    ASSERT_OK_AND_ASSIGN(
        std::vector<DeadLetter> parked,
        store_->dead_letters().List(name, DeadLetterStatus::kParked, 100));
    ASSERT_THAT(parked, SizeIs(1));
    EXPECT_EQ(parked[0].event_id, ids_[3]);
    EXPECT_EQ(parked[0].stream, "order-1");
    EXPECT_EQ(parked[0].version, 4);
    EXPECT_THAT(parked[0].error, HasSubstr("DATA_LOSS"));
    EXPECT_THAT(parked[0].error, HasSubstr("checksum"));
  }

  std::unique_ptr<EventStore> store_;
  std::vector<Uuid> ids_;
};

TEST_P(ProjectionDamageTest, PlainRunnerParksTheDamagedEventAndGoesOn) {
  RecordingProjection projection("plain");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*store_, projection, Options()));
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 6);
  EXPECT_EQ(result.parked, 1);
  EXPECT_THAT(projection.handled(), SizeIs(6));
  EXPECT_THAT(projection.handled(), Not(Contains(ids_[3])));
  EXPECT_EQ(projection.calls(ids_[3]), 0);
  ExpectParked("plain");
  ASSERT_OK_AND_ASSIGN(Position head, store_->HeadPosition());
  EXPECT_EQ(result.position, head);

  // Replaying it while it is still damaged parks it again, unhandled.
  EXPECT_THAT(runner->ReplayParked(ids_[3]),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
  EXPECT_EQ(projection.calls(ids_[3]), 0);
}

TEST_P(ProjectionDamageTest, TransactionalRunnerParksTheDamagedEventAndGoesOn) {
  RowProjection projection("rows", kTable);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*store_, projection, Options()));
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 6);
  EXPECT_EQ(result.parked, 1);
  EXPECT_EQ(projection.calls(ids_[3]), 0);
  ASSERT_OK_AND_ASSIGN(RowCounts rows, CountRows(*store_, kTable));
  EXPECT_EQ(rows.rows, 6);
  EXPECT_EQ(rows.distinct_events, 6);
  ExpectParked("rows");
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> checkpoint,
                       store_->checkpoints().Get("rows"));
  ASSERT_TRUE(checkpoint.has_value());
  ASSERT_OK_AND_ASSIGN(Position head, store_->HeadPosition());
  EXPECT_EQ(checkpoint->position, head);
}

INSTANTIATE_TEST_SUITE_P(RawAccessBackends, ProjectionDamageTest,
                         ::testing::ValuesIn(RawAccessTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
