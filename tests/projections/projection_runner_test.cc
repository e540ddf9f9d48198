// ProjectionRunner on every backend of AllTestBackends(): catch-up in
// batches, restarts, filters, following the log, retries and dead letters,
// exactly-once for transactional projections, rebuilds, stopping, leases;
// and, with a second store object on a SQLite file or PostgreSQL, following
// another store's appends and replaying dead letters marked for a retry.
//
// Tests whose names contain "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include "projections/projection_runner.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_store.h"
#include "eventstore/lease.h"
#include "eventstore/open_event_store.h"
#include "eventstore/sql_transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/projections/faulty_store.h"
#include "tests/projections/test_projections.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_backends.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::AppendOrders;
using ::eventstore::test::CountRows;
using ::eventstore::test::FaultyStore;
using ::eventstore::test::kPlaced;
using ::eventstore::test::kShipped;
using ::eventstore::test::RecordingProjection;
using ::eventstore::test::RowCounts;
using ::eventstore::test::RowProjection;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::WaitUntil;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Le;
using ::testing::SizeIs;

// What must happen "at once" may take this long on a loaded machine.
constexpr absl::Duration kPrompt = absl::Seconds(2);
// A bound for work that takes a while (hundreds of events).
constexpr absl::Duration kLong = absl::Seconds(30);

constexpr char kTable[] = "order_rows";

// Waits until the background thread of `runner` has handled `handled`
// events since creation and waits for new ones: an event appended next ends
// that wait.
bool WaitUntilIdleAt(const ProjectionRunner& runner, int64_t handled) {
  return WaitUntil(
      [&] {
        const ProjectionRunnerStats stats = runner.stats();
        return stats.idle && stats.handled == handled;
      },
      kLong);
}

class ProjectionRunnerTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventStore>> opened =
        GetParam().open(nullptr);
    ASSERT_OK(opened);
    store_ = std::make_unique<FaultyStore>(*std::move(opened));
    ASSERT_OK(RowProjection::CreateTable(store(), kTable));
  }

  EventStore& store() { return *store_; }
  FaultyStore& faulty() { return *store_; }

  // Fast backoffs and lease retries, so that tests wait little.
  static ProjectionRunnerOptions FastOptions() {
    ProjectionRunnerOptions options;
    options.batch_size = 10;
    options.idle_wait = absl::Milliseconds(100);
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(5);
    options.lease_retry_interval = absl::Milliseconds(50);
    options.worker_name = "test-worker";
    return options;
  }

  std::unique_ptr<ProjectionRunner> MakeRunner(
      Projection& projection, ProjectionRunnerOptions options = FastOptions()) {
    absl::StatusOr<std::unique_ptr<ProjectionRunner>> runner =
        ProjectionRunner::Create(store(), projection, std::move(options));
    EXPECT_OK(runner);
    return runner.ok() ? *std::move(runner) : nullptr;
  }
  std::unique_ptr<ProjectionRunner> MakeRunner(
      TransactionalProjection& projection,
      ProjectionRunnerOptions options = FastOptions()) {
    absl::StatusOr<std::unique_ptr<ProjectionRunner>> runner =
        ProjectionRunner::Create(store(), projection, std::move(options));
    EXPECT_OK(runner);
    return runner.ok() ? *std::move(runner) : nullptr;
  }

  std::optional<Checkpoint> GetCheckpoint(const std::string& name) {
    absl::StatusOr<std::optional<Checkpoint>> checkpoint =
        store().checkpoints().Get(name);
    EXPECT_OK(checkpoint);
    return checkpoint.ok() ? *checkpoint : std::nullopt;
  }

  int64_t Processed(const std::string& name) {
    std::optional<Checkpoint> checkpoint = GetCheckpoint(name);
    return checkpoint.has_value() ? checkpoint->events_processed : 0;
  }

  RowCounts Rows() {
    absl::StatusOr<RowCounts> counts = CountRows(store(), kTable);
    EXPECT_OK(counts);
    return counts.ok() ? *counts : RowCounts{-1, -1};
  }

  Position Head() {
    absl::StatusOr<Position> head = store().HeadPosition();
    EXPECT_OK(head);
    return head.ok() ? *head : Position::Start();
  }

  std::vector<DeadLetter> Parked(const std::string& name) {
    absl::StatusOr<std::vector<DeadLetter>> parked =
        store().dead_letters().List(name, DeadLetterStatus::kParked, 100);
    EXPECT_OK(parked);
    return parked.ok() ? *parked : std::vector<DeadLetter>();
  }

  std::unique_ptr<FaultyStore> store_;
};

std::vector<Uuid> Concat(std::vector<Uuid> a, const std::vector<Uuid>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_P(ProjectionRunnerTest, CatchesUpInPagesWithACheckpointPerBatch) {
  std::vector<Uuid> ids;
  for (int s = 0; s < 5; ++s) {
    ASSERT_OK_AND_ASSIGN(std::vector<Uuid> more,
                         AppendOrders(store(), absl::StrCat("order-", s), 50));
    ids = Concat(std::move(ids), more);
  }
  RecordingProjection projection("catch-up");
  // What the checkpoint says while each event is handled.
  std::vector<int64_t> processed_seen;
  projection.OnHandle([&](const RecordedEvent&) {
    processed_seen.push_back(Processed("catch-up"));
  });
  ProjectionRunnerOptions options = FastOptions();
  options.batch_size = 100;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 250);
  EXPECT_EQ(result.parked, 0);
  EXPECT_EQ(result.checkpoints, 3);
  EXPECT_EQ(result.position, Head());
  EXPECT_THAT(projection.handled(), ElementsAreArray(ids));
  ASSERT_THAT(processed_seen, SizeIs(250));
  for (int i = 0; i < 250; ++i) {
    EXPECT_EQ(processed_seen[i], i / 100 * 100) << "event " << i;
  }
  std::optional<Checkpoint> checkpoint = GetCheckpoint("catch-up");
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->position, Head());
  EXPECT_EQ(checkpoint->events_processed, 250);

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult again, runner->RunOnce());
  EXPECT_EQ(again.handled, 0);
  EXPECT_EQ(again.checkpoints, 0);
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, runner->Lag());
  EXPECT_EQ(lag.events_behind, 0);
}

TEST_P(ProjectionRunnerTest, TransactionalCatchUpCommitsRowsWithCheckpoints) {
  ASSERT_OK(AppendOrders(store(), "order-1", 125).status());
  RowProjection projection("rows", kTable);
  ProjectionRunnerOptions options = FastOptions();
  options.batch_size = 50;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 125);
  EXPECT_EQ(result.checkpoints, 3);
  EXPECT_EQ(Rows().rows, 125);
  EXPECT_EQ(Rows().distinct_events, 125);
  EXPECT_EQ(Processed("rows"), 125);
  EXPECT_EQ(GetCheckpoint("rows")->position, Head());
}

TEST_P(ProjectionRunnerTest, TransactionalRunnerResumesWithoutReprocessing) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> first,
                       AppendOrders(store(), "order-1", 30));
  RowProjection projection("rows", kTable);
  {
    std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);
    ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
    EXPECT_EQ(result.handled, 30);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> second,
                       AppendOrders(store(), "order-2", 20));

  // A new runner (as after a restart) starts from the checkpoint.
  RowProjection restarted("rows", kTable);
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(restarted);
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 20);
  for (const Uuid& id : first) EXPECT_EQ(restarted.calls(id), 0);
  for (const Uuid& id : second) EXPECT_EQ(restarted.calls(id), 1);
  EXPECT_EQ(Rows().rows, 50);
  EXPECT_EQ(Rows().distinct_events, 50);
  EXPECT_EQ(Processed("rows"), 50);
}

TEST_P(ProjectionRunnerTest, PlainRunnerResumesFromTheCheckpoint) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> first,
                       AppendOrders(store(), "order-1", 25));
  {
    RecordingProjection projection("plain");
    std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);
    ASSERT_OK(runner->RunOnce().status());
    EXPECT_THAT(projection.handled(), ElementsAreArray(first));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> second,
                       AppendOrders(store(), "order-1", 7));
  RecordingProjection restarted("plain");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(restarted);
  ASSERT_OK(runner->RunOnce().status());
  EXPECT_THAT(restarted.handled(), ElementsAreArray(second));
}

// At-least-once: when the checkpoint of a batch is not saved (here it fails;
// in life, the process dies first), the batch is delivered again.
TEST_P(ProjectionRunnerTest, PlainRunnerRedeliversABatchWhoseCheckpointFailed) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 25));
  RecordingProjection projection("plain");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);
  faulty().fail_checkpoint_saves_after(1);  // batch 1 saved, batch 2 not

  EXPECT_THAT(runner->RunOnce(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected")));
  EXPECT_EQ(projection.handled_count(), 20u);
  EXPECT_EQ(Processed("plain"), 10);

  faulty().heal();
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 15);
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(projection.calls(ids[i]), i >= 10 && i < 20 ? 2 : 1)
        << "event " << i;
  }
  EXPECT_EQ(Processed("plain"), 25);
}

TEST_P(ProjectionRunnerTest, OnlyEventsOfTheProjectionsTypesAreHandled) {
  std::vector<Uuid> shipped;
  for (int round = 0; round < 5; ++round) {
    ASSERT_OK(AppendOrders(store(), "order-1", 6).status());
    ASSERT_OK_AND_ASSIGN(std::vector<Uuid> more,
                         AppendOrders(store(), "order-1", 4, true));
    shipped = Concat(std::move(shipped), more);
  }
  RecordingProjection projection("shipments", {kShipped});
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 20);
  EXPECT_THAT(projection.handled(), ElementsAreArray(shipped));

  // Lag counts only events of the projection's types.
  ASSERT_OK(AppendOrders(store(), "order-2", 7).status());
  ASSERT_OK(AppendOrders(store(), "order-2", 3, true).status());
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, runner->Lag());
  EXPECT_EQ(lag.events_behind, 3);
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_OK_AND_ASSIGN(lag, runner->Lag());
  EXPECT_EQ(lag.events_behind, 0);
  EXPECT_EQ(lag.time_behind, absl::ZeroDuration());
}

TEST_P(ProjectionRunnerTest, LagCountsEventsAfterTheCheckpoint) {
  ASSERT_OK(AppendOrders(store(), "order-1", 10).status());
  RecordingProjection projection("lagging");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, runner->Lag());
  EXPECT_EQ(lag.events_behind, 10);
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_OK(AppendOrders(store(), "order-1", 5).status());
  ASSERT_OK_AND_ASSIGN(lag, runner->Lag());
  EXPECT_EQ(lag.projection, "lagging");
  EXPECT_EQ(lag.events_behind, 5);
  EXPECT_GE(lag.time_behind, absl::ZeroDuration());
}

TEST_P(ProjectionRunnerTest, FollowsNewEventsWithinTwoSeconds) {
  ASSERT_OK(AppendOrders(store(), "order-1", 15).status());
  RecordingProjection projection("follower");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(
      WaitUntil([&] { return projection.handled_count() == 15; }, kLong));
  EXPECT_TRUE(runner->stats().running);
  EXPECT_TRUE(runner->stats().holds_lease);

  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(WaitUntilIdleAt(*runner, 15 + i));
    const absl::Time appended_at = absl::Now();
    ASSERT_OK(AppendOrders(store(), "order-2", 1).status());
    ASSERT_TRUE(WaitUntil([&] { return projection.handled_count() == 16u + i; },
                          kPrompt))
        << "new event " << i << " not handled within " << kPrompt;
    EXPECT_LT(absl::Now() - appended_at, kPrompt);
  }
  runner->Stop();
  EXPECT_FALSE(runner->stats().running);
  EXPECT_EQ(Processed("follower"), 18);
}

TEST_P(ProjectionRunnerTest, PoisonedEventIsRetriedWithBackoffThenParked) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 12));
  const Uuid poisoned = ids[3];
  RecordingProjection projection("poisoned");
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == poisoned ? absl::InternalError("cannot apply")
                                : absl::OkStatus();
  });
  std::vector<absl::Duration> waits;
  ProjectionRunnerOptions options = FastOptions();
  options.max_attempts = 4;
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(25);
  options.retry_sleep = [&](absl::Duration d) { waits.push_back(d); };
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 11);
  EXPECT_EQ(result.parked, 1);
  EXPECT_EQ(projection.calls(poisoned), 4);
  // 10, 20 and 25 ms (capped), each jittered down by up to half.
  ASSERT_EQ(waits.size(), 3u);
  EXPECT_THAT(waits[0],
              AllOf(Ge(absl::Milliseconds(5)), Le(absl::Milliseconds(10))));
  EXPECT_THAT(waits[1],
              AllOf(Ge(absl::Milliseconds(10)), Le(absl::Milliseconds(20))));
  EXPECT_THAT(waits[2],
              AllOf(Ge(absl::Microseconds(12500)), Le(absl::Milliseconds(25))));
  // Later events were handled, and the checkpoint passed the parked one.
  std::vector<Uuid> others = ids;
  others.erase(others.begin() + 3);
  EXPECT_THAT(projection.handled(), ElementsAreArray(others));
  EXPECT_EQ(GetCheckpoint("poisoned")->position, Head());
  EXPECT_EQ(Processed("poisoned"), 11);

  ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> letter,
                       store().dead_letters().Get("poisoned", poisoned));
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(letter->status, DeadLetterStatus::kParked);
  EXPECT_EQ(letter->failure_count, 1);
  EXPECT_THAT(letter->error, HasSubstr("cannot apply"));
  EXPECT_EQ(letter->stream, "order-1");
  EXPECT_EQ(letter->version, 4);
  EXPECT_EQ(letter->event_type, kPlaced);
  EXPECT_EQ(runner->stats().parked, 1);
}

TEST_P(ProjectionRunnerTest, RetryWaitsAreJitteredWithinMaxBackoff) {
  ASSERT_OK(AppendOrders(store(), "order-1", 1).status());
  RecordingProjection projection("jittered");
  projection.FailWith([&](const RecordedEvent&, int) {
    return absl::InternalError("cannot apply");
  });
  std::vector<absl::Duration> waits;
  ProjectionRunnerOptions options = FastOptions();
  options.max_attempts = 21;
  options.initial_backoff = absl::Milliseconds(40);
  options.max_backoff = absl::Milliseconds(100);
  options.retry_sleep = [&](absl::Duration d) { waits.push_back(d); };
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.parked, 1);
  ASSERT_EQ(waits.size(), 20u);
  // From the third retry on the exponential delay is capped at 100 ms; the
  // waits spread over 50..100 ms rather than all being 100 ms, so runners
  // that failed together do not retry together.
  std::set<absl::Duration> distinct;
  for (size_t i = 2; i < waits.size(); ++i) {
    EXPECT_THAT(waits[i],
                AllOf(Ge(absl::Milliseconds(50)), Le(absl::Milliseconds(100))))
        << "retry " << i + 1;
    distinct.insert(waits[i]);
  }
  EXPECT_GT(distinct.size(), 10u);
}

TEST_P(ProjectionRunnerTest, TransactionalPoisonedEventIsParkedOthersCommit) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 10));
  const Uuid poisoned = ids[2];  // the 3rd event of the first batch
  RowProjection projection("rows", kTable);
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == poisoned ? absl::InternalError("cannot apply")
                                : absl::OkStatus();
  });
  ProjectionRunnerOptions options = FastOptions();
  options.batch_size = 5;
  options.max_attempts = 3;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 9);
  EXPECT_EQ(result.parked, 1);
  EXPECT_EQ(projection.calls(poisoned), 3);
  // Read model and checkpoint agree: no row of the rolled-back batch, none
  // twice, and one per event the checkpoint counts.
  EXPECT_EQ(Rows().rows, 9);
  EXPECT_EQ(Rows().distinct_events, 9);
  EXPECT_EQ(Processed("rows"), 9);
  EXPECT_EQ(GetCheckpoint("rows")->position, Head());
  EXPECT_THAT(Parked("rows"), SizeIs(1));
}

// Exactly-once: the handler fails once on the 3rd event of a batch; the
// batch rolls back and is redone event by event.
TEST_P(ProjectionRunnerTest, TransactionalBatchFailingHalfwayStaysConsistent) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 10));
  RowProjection projection("rows", kTable);
  projection.FailWith([&](const RecordedEvent& event, int call) {
    return event.id == ids[2] && call == 1 ? absl::InternalError("flaky")
                                           : absl::OkStatus();
  });
  ProjectionRunnerOptions options = FastOptions();
  options.batch_size = 5;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 10);
  EXPECT_EQ(result.parked, 0);
  EXPECT_EQ(projection.calls(ids[2]), 2);
  EXPECT_EQ(Rows().rows, 10);
  EXPECT_EQ(Rows().distinct_events, 10);
  EXPECT_EQ(Processed("rows"), 10);
  EXPECT_THAT(Parked("rows"), IsEmpty());
}

// Exactly-once: a checkpoint or a commit that fails leaves neither rows nor
// checkpoint of that batch; the retry applies each event once.
TEST_P(ProjectionRunnerTest, TransactionalFailedCommitLeavesNoTrace) {
  ASSERT_OK(AppendOrders(store(), "order-1", 30).status());
  RowProjection projection("rows", kTable);
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);

  faulty().fail_checkpoint_saves_after(1);
  EXPECT_THAT(runner->RunOnce(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected")));
  EXPECT_EQ(Rows().rows, 10);
  EXPECT_EQ(Processed("rows"), 10);

  faulty().heal();
  faulty().fail_commits_after(1);
  EXPECT_THAT(runner->RunOnce(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected")));
  EXPECT_EQ(Rows().rows, 20);
  EXPECT_EQ(Processed("rows"), 20);

  faulty().heal();
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 10);
  EXPECT_EQ(Rows().rows, 30);
  EXPECT_EQ(Rows().distinct_events, 30);
  EXPECT_EQ(Processed("rows"), 30);
}

// kUnavailable means "try again later": retried, never parked.
TEST_P(ProjectionRunnerTest, UnavailableHandlerIsNotParked) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 5));
  std::atomic<bool> down{true};
  RecordingProjection projection("downstream");
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == ids[2] && down ? absl::UnavailableError("down")
                                      : absl::OkStatus();
  });
  ProjectionRunnerOptions options = FastOptions();
  options.max_attempts = 2;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);

  EXPECT_THAT(runner->RunOnce(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(projection.calls(ids[2]), 2);
  EXPECT_THAT(Parked("downstream"), IsEmpty());
  EXPECT_EQ(Processed("downstream"), 2);

  down = false;
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 3);
  EXPECT_THAT(projection.handled(), ElementsAreArray(ids));
}

TEST_P(ProjectionRunnerTest, ReplayParkedResolvesTheEventOnceFixed) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 5));
  std::atomic<bool> broken{true};
  RecordingProjection projection("replayed");
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == ids[1] && broken ? absl::InternalError("bug")
                                        : absl::OkStatus();
  });
  ProjectionRunnerOptions options = FastOptions();
  options.max_attempts = 1;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  ASSERT_EQ(result.parked, 1);

  // Still broken: parked again, one more failure.
  EXPECT_THAT(runner->ReplayParked(ids[1]),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("bug")));
  ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> letter,
                       store().dead_letters().Get("replayed", ids[1]));
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(letter->status, DeadLetterStatus::kParked);
  EXPECT_EQ(letter->failure_count, 2);

  broken = false;
  ASSERT_OK(runner->ReplayParked(ids[1]));
  ASSERT_OK_AND_ASSIGN(letter, store().dead_letters().Get("replayed", ids[1]));
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(letter->status, DeadLetterStatus::kResolved);
  EXPECT_EQ(letter->resolved_by, "test-worker");
  EXPECT_EQ(projection.calls(ids[1]), 3);
  EXPECT_THAT(projection.handled(),
              ElementsAre(ids[0], ids[2], ids[3], ids[4], ids[1]));
  EXPECT_THAT(Parked("replayed"), IsEmpty());

  // Resolved: nothing more to do.
  ASSERT_OK(runner->ReplayParked(ids[1]));
  EXPECT_EQ(projection.calls(ids[1]), 3);
  EXPECT_THAT(runner->ReplayParked(ids[0]),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ProjectionRunnerTest, ReplayParkedCommitsATransactionalRow) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 4));
  std::atomic<bool> broken{true};
  RowProjection projection("rows", kTable);
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == ids[2] && broken ? absl::InternalError("bug")
                                        : absl::OkStatus();
  });
  ProjectionRunnerOptions options = FastOptions();
  options.max_attempts = 2;
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);
  ASSERT_OK(runner->RunOnce().status());
  EXPECT_EQ(Rows().rows, 3);

  broken = false;
  ASSERT_OK(runner->ReplayParked(ids[2]));
  EXPECT_EQ(Rows().rows, 4);
  EXPECT_EQ(Rows().distinct_events, 4);
  ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> letter,
                       store().dead_letters().Get("rows", ids[2]));
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(letter->status, DeadLetterStatus::kResolved);
}

// A started runner replays the entries marked kRetrying by itself (here
// through the same store object; ProjectionRunnerRetryingTest below marks
// them through another one).
TEST_P(ProjectionRunnerTest, StartedRunnerReplaysEntriesMarkedRetrying) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 4));
  std::atomic<bool> broken{true};
  RecordingProjection projection("marked");
  projection.FailWith([&](const RecordedEvent& event, int) {
    return (event.id == ids[1] || event.id == ids[2]) && broken
               ? absl::InternalError("bug")
               : absl::OkStatus();
  });
  ProjectionRunnerOptions options = FastOptions();
  options.max_attempts = 1;
  options.retrying_check_interval = absl::Milliseconds(20);
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(WaitUntil([&] { return Parked("marked").size() == 2; }, kLong));

  // Only the entry marked is replayed; the other stays parked.
  broken = false;
  ASSERT_OK(store().dead_letters().MarkRetrying("marked", ids[2]));
  ASSERT_TRUE(
      WaitUntil([&] { return projection.calls(ids[2]) == 2; }, kPrompt));
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<std::optional<DeadLetter>> letter =
            store().dead_letters().Get("marked", ids[2]);
        return letter.ok() && letter->has_value() &&
               (*letter)->status == DeadLetterStatus::kResolved;
      },
      kPrompt));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(projection.calls(ids[1]), 1);
  EXPECT_EQ(projection.calls(ids[2]), 2);
  std::vector<DeadLetter> parked = Parked("marked");
  ASSERT_THAT(parked, SizeIs(1));
  EXPECT_EQ(parked[0].event_id, ids[1]);
  runner->Stop();
}

TEST_P(ProjectionRunnerTest, TransactionalRebuildReplaysFromTheStart) {
  ASSERT_OK(AppendOrders(store(), "order-1", 23).status());
  RowProjection projection("rows", kTable);
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_EQ(Rows().rows, 23);

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult rebuilt, runner->Rebuild());
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_EQ(rebuilt.handled, 23);
  EXPECT_EQ(rebuilt.position, Head());
  EXPECT_EQ(Rows().rows, 23);
  EXPECT_EQ(Rows().distinct_events, 23);
  EXPECT_EQ(Processed("rows"), 23);
}

TEST_P(ProjectionRunnerTest, PlainRebuildReplaysFromTheStart) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 12));
  RecordingProjection projection("plain");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);
  ASSERT_OK(runner->RunOnce().status());

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult rebuilt, runner->Rebuild());
  EXPECT_EQ(rebuilt.handled, 12);
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_THAT(projection.handled(), ElementsAreArray(Concat(ids, ids)));
  EXPECT_EQ(Processed("plain"), 12);
}

TEST_P(ProjectionRunnerTest, StopFromAnotherThreadWhileFollowing) {
  ASSERT_OK(AppendOrders(store(), "order-1", 5).status());
  RecordingProjection projection("stopped");
  ProjectionRunnerOptions options = FastOptions();
  options.idle_wait = ProjectionRunnerOptions().idle_wait;  // the default
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);
  ASSERT_OK(runner->Start());
  EXPECT_THAT(runner->Start(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(runner->RunOnce(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_TRUE(
      WaitUntil([&] { return projection.handled_count() == 5; }, kLong));
  absl::SleepFor(absl::Milliseconds(100));  // following, idle

  absl::Duration took;
  std::thread stopper([&] {
    const absl::Time start = absl::Now();
    runner->Stop();
    took = absl::Now() - start;
  });
  stopper.join();
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_FALSE(runner->stats().running);
  EXPECT_FALSE(runner->stats().holds_lease);
  // The lease was released.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       store().TryAcquireLease("projection:stopped"));
  EXPECT_NE(lease, nullptr);
  lease.reset();

  // It starts again where it stopped.
  ASSERT_OK(AppendOrders(store(), "order-1", 2).status());
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(
      WaitUntil([&] { return projection.handled_count() == 7; }, kPrompt));
  runner->Stop();
  EXPECT_EQ(Processed("stopped"), 7);
}

TEST_P(ProjectionRunnerTest, StopCutsARetryBackoffShort) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 3));
  RecordingProjection projection("failing");
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == ids[1] ? absl::InternalError("bug") : absl::OkStatus();
  });
  ProjectionRunnerOptions options = FastOptions();
  options.initial_backoff = absl::Seconds(30);
  options.max_backoff = absl::Seconds(30);
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection, options);
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(WaitUntil([&] { return projection.calls(ids[1]) == 1; }, kLong));

  const absl::Time start = absl::Now();
  runner->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  // Not parked; the checkpoint stops before it, so it is tried again.
  EXPECT_THAT(Parked("failing"), IsEmpty());
  EXPECT_EQ(Processed("failing"), 1);
  EXPECT_EQ(projection.calls(ids[2]), 0);
}

TEST_P(ProjectionRunnerTest, RunOnceNeedsTheLease) {
  ASSERT_OK(AppendOrders(store(), "order-1", 3).status());
  RecordingProjection projection("leased");
  std::unique_ptr<ProjectionRunner> runner = MakeRunner(projection);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       store().TryAcquireLease("projection:leased"));
  ASSERT_NE(lease, nullptr);
  EXPECT_THAT(runner->RunOnce(), StatusIs(absl::StatusCode::kUnavailable,
                                          HasSubstr("another runner")));
  EXPECT_THAT(runner->Rebuild(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(projection.handled_count(), 0u);
  lease.reset();
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 3);
}

// Two runners of one projection, appends from several threads: one runner
// is active, every event lands once, and the standby takes over when the
// active one stops.
TEST_P(ProjectionRunnerTest, ConcurrentRunnersHandleEachEventOnce) {
  RowProjection first("rows", kTable);
  RowProjection second("rows", kTable);
  std::unique_ptr<ProjectionRunner> a = MakeRunner(first);
  std::unique_ptr<ProjectionRunner> b = MakeRunner(second);
  ASSERT_OK(a->Start());
  ASSERT_OK(b->Start());

  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 5; ++i) {
        EXPECT_OK(AppendOrders(store(), absl::StrCat("order-", w, "-", i), 10)
                      .status());
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  ASSERT_TRUE(WaitUntil([&] { return Processed("rows") == 200; }, kLong))
      << Processed("rows");
  EXPECT_EQ(Rows().rows, 200);
  EXPECT_EQ(Rows().distinct_events, 200);
  ASSERT_TRUE(WaitUntil(
      [&] { return a->stats().holds_lease != b->stats().holds_lease; },
      kPrompt));
  ProjectionRunner& active = a->stats().holds_lease ? *a : *b;
  ProjectionRunner& standby = a->stats().holds_lease ? *b : *a;
  EXPECT_EQ(standby.stats().handled, 0);

  active.Stop();
  ASSERT_OK(AppendOrders(store(), "order-late", 20).status());
  ASSERT_TRUE(WaitUntil([&] { return Processed("rows") == 220; }, kPrompt));
  EXPECT_TRUE(standby.stats().holds_lease);
  // The runner counts a batch in its stats just after saving its
  // checkpoint: wait for the count too.
  EXPECT_TRUE(WaitUntil([&] { return standby.stats().handled == 20; }, kPrompt))
      << standby.stats().handled;
  EXPECT_EQ(Rows().rows, 220);
  EXPECT_EQ(Rows().distinct_events, 220);
  standby.Stop();
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ProjectionRunnerTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

// Options are checked when the runner is made; nothing touches the store.
TEST(ProjectionRunnerOptionsTest, BadOptionsAreInvalidArgument) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       AllTestBackends().front().open(nullptr));
  RecordingProjection projection("p");
  const auto create = [&](ProjectionRunnerOptions options) {
    return ProjectionRunner::Create(*store, projection, std::move(options))
        .status();
  };
  ProjectionRunnerOptions options;
  options.batch_size = 0;
  EXPECT_THAT(create(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("batch_size")));
  options = ProjectionRunnerOptions();
  options.max_attempts = 0;
  EXPECT_THAT(create(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("max_attempts")));
  options = ProjectionRunnerOptions();
  options.max_backoff = absl::Milliseconds(1);
  EXPECT_THAT(create(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("max_backoff")));
  options = ProjectionRunnerOptions();
  options.idle_wait = absl::ZeroDuration();
  EXPECT_THAT(create(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("idle_wait")));
  options = ProjectionRunnerOptions();
  options.retrying_check_interval = absl::ZeroDuration();
  EXPECT_THAT(create(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("retrying_check_interval")));
  RecordingProjection unnamed("");
  EXPECT_THAT(ProjectionRunner::Create(*store, unnamed).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("projection name")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProjectionRunner> runner,
                       ProjectionRunner::Create(*store, projection));
  EXPECT_EQ(runner->name(), "p");
}

// --- following appends made by another store object -------------------------

// A runner follows appends made through another store object on the same
// database (in production, another process), which the reader's store is
// not told about: on a SQLite file by polling the head; on PostgreSQL by
// LISTEN/NOTIFY when the appender notifies (notify_on_append), else by the
// polling fallback. The runner's own idle_wait is longer than the bound, so
// only the store's wake-ups can deliver in time.
class CrossStoreFollowTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite_file") {
      ASSERT_OK_AND_ASSIGN(dir_, test::TempDir::Create());
      url_ = absl::StrCat("sqlite://", dir_->File("events.db"));
      return;
    }
#ifdef EVENTSTORE_TEST_POSTGRES
    ASSERT_OK_AND_ASSIGN(std::string server, test::SharedPostgresUrl());
    url_ = absl::StrCat(server, absl::StrContains(server, "?") ? "&" : "?",
                        "schema=", test::UniqueSchemaName());
#endif
  }

  // Appends one event at a time through `writer`; each must be handled
  // within kPrompt.
  void ExpectFollowed(EventStore& writer, const ProjectionRunner& runner,
                      RecordingProjection& projection, int events) {
    for (int i = 0; i < events; ++i) {
      const size_t before = projection.handled_count();
      ASSERT_TRUE(WaitUntilIdleAt(runner, static_cast<int64_t>(before)));
      ASSERT_OK(AppendOrders(writer, "order-x", 1).status());
      EXPECT_TRUE(WaitUntil(
          [&] { return projection.handled_count() == before + 1; }, kPrompt))
          << "append " << i << " not followed within " << kPrompt;
    }
  }

  std::unique_ptr<test::TempDir> dir_;
  std::string url_;
};

TEST_P(CrossStoreFollowTest, RunnerFollowsAnotherStoresAppends) {
  ASSERT_FALSE(url_.empty());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> reader,
                       OpenEventStore(url_));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> writer,
                       OpenEventStore(url_));
  RecordingProjection projection("follower");
  ProjectionRunnerOptions options;
  options.idle_wait = absl::Seconds(3);
  options.lease_retry_interval = absl::Milliseconds(50);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProjectionRunner> runner,
                       ProjectionRunner::Create(*reader, projection, options));
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(WaitUntil([&] { return runner->stats().holds_lease; }, kLong));

  // Polling: the writer sends no wake-up (NOTIFY is off by default).
  ExpectFollowed(*writer, *runner, projection, 3);

  if (GetParam() == "postgres") {
    // LISTEN/NOTIFY: the waiting reader listens on a connection of its own,
    // and an appender with notify_on_append wakes it.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         reader->BeginTransaction());
    ASSERT_OK_AND_ASSIGN(SqlRows listening,
                         tx->Query("SELECT count(*) FROM pg_stat_activity"
                                   " WHERE datname = current_database()"
                                   " AND query = 'LISTEN eventstore'"));
    ASSERT_OK(tx->Commit());
    ASSERT_THAT(listening, SizeIs(1));
    EXPECT_NE(listening[0][0].value_or("0"), "0");
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<EventStore> notifier,
        OpenEventStore(absl::StrCat(url_, "&notify_on_append=true")));
    ExpectFollowed(*notifier, *runner, projection, 3);
  }
  runner->Stop();
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> checkpoint,
                       reader->checkpoints().Get("follower"));
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->events_processed,
            static_cast<int64_t>(projection.handled_count()));
}

std::vector<std::string> CrossStoreBackends() {
  return {
      "sqlite_file",
#ifdef EVENTSTORE_TEST_POSTGRES
      "postgres",
#endif
  };
}

INSTANTIATE_TEST_SUITE_P(AllBackends, CrossStoreFollowTest,
                         ::testing::ValuesIn(CrossStoreBackends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// --- dead letters marked for a retry from outside ----------------------------

// An operator marks a dead letter kRetrying (`eventstore dlq URL retry`)
// through another store object on the same database (in production, the
// command-line tool's process); the running runner replays it by itself.
// The runner's idle_wait is longer than the bound, so only the
// retrying_check_interval can deliver in time.
class ProjectionRunnerRetryingTest
    : public ::testing::TestWithParam<std::string> {
 protected:
  static constexpr absl::Duration kCheckInterval = absl::Milliseconds(50);

  void SetUp() override {
    if (GetParam() == "sqlite_file") {
      ASSERT_OK_AND_ASSIGN(dir_, test::TempDir::Create());
      url_ = absl::StrCat("sqlite://", dir_->File("events.db"));
    } else {
#ifdef EVENTSTORE_TEST_POSTGRES
      ASSERT_OK_AND_ASSIGN(std::string server, test::SharedPostgresUrl());
      url_ = absl::StrCat(server, absl::StrContains(server, "?") ? "&" : "?",
                          "schema=", test::UniqueSchemaName());
#endif
    }
    ASSERT_FALSE(url_.empty());
    ASSERT_OK_AND_ASSIGN(worker_store_, OpenEventStore(url_));
    ASSERT_OK_AND_ASSIGN(operator_store_, OpenEventStore(url_));
  }

  static ProjectionRunnerOptions Options() {
    ProjectionRunnerOptions options;
    options.idle_wait = absl::Seconds(3);
    options.max_attempts = 1;
    options.lease_retry_interval = absl::Milliseconds(50);
    options.retrying_check_interval = kCheckInterval;
    options.worker_name = "test-worker";
    return options;
  }

  // The dead letter as the operator's store sees it.
  std::optional<DeadLetter> Letter(const std::string& projection,
                                   const Uuid& id) {
    absl::StatusOr<std::optional<DeadLetter>> letter =
        operator_store_->dead_letters().Get(projection, id);
    EXPECT_OK(letter);
    return letter.ok() ? *letter : std::nullopt;
  }

  DeadLetterStatus StatusOf(const std::string& projection, const Uuid& id) {
    std::optional<DeadLetter> letter = Letter(projection, id);
    return letter.has_value() ? letter->status : DeadLetterStatus::kResolved;
  }

  std::unique_ptr<test::TempDir> dir_;
  std::string url_;
  // Declared after dir_: closed before the directory is removed.
  std::unique_ptr<EventStore> worker_store_;
  std::unique_ptr<EventStore> operator_store_;
};

TEST_P(ProjectionRunnerRetryingTest, MarkedEntryIsReplayedAndResolved) {
  ASSERT_OK(RowProjection::CreateTable(*worker_store_, kTable));
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(*worker_store_, "order-1", 5));
  std::atomic<bool> broken{true};
  RowProjection projection("rows", kTable);
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == ids[2] && broken ? absl::InternalError("bug")
                                        : absl::OkStatus();
  });
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*worker_store_, projection, Options()));
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(WaitUntil([&] { return runner->stats().handled == 4; }, kLong));
  ASSERT_EQ(StatusOf("rows", ids[2]), DeadLetterStatus::kParked);
  // Past its first look for entries marked kRetrying (made at start).
  ASSERT_TRUE(WaitUntilIdleAt(*runner, 4));

  // The handler is fixed and deployed; the operator asks for a retry.
  broken = false;
  ASSERT_OK(operator_store_->dead_letters().MarkRetrying("rows", ids[2]));
  ASSERT_TRUE(WaitUntil(
      [&] { return StatusOf("rows", ids[2]) == DeadLetterStatus::kResolved; },
      kPrompt))
      << "not replayed within " << kPrompt;
  std::optional<DeadLetter> letter = Letter("rows", ids[2]);
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(letter->resolved_by, "test-worker");
  EXPECT_EQ(letter->failure_count, 1);
  EXPECT_EQ(projection.calls(ids[2]), 2);
  EXPECT_EQ(runner->stats().handled, 5);
  EXPECT_OK(runner->stats().last_error);
  runner->Stop();
  ASSERT_OK_AND_ASSIGN(RowCounts rows, CountRows(*operator_store_, kTable));
  EXPECT_EQ(rows.rows, 5);
  EXPECT_EQ(rows.distinct_events, 5);
}

TEST_P(ProjectionRunnerRetryingTest, StillFailingEntryIsParkedAgainOnce) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(*worker_store_, "order-1", 3));
  std::atomic<bool> broken{true};
  RecordingProjection projection("plain");
  projection.FailWith([&](const RecordedEvent& event, int call) {
    return event.id == ids[1] && broken
               ? absl::InternalError(absl::StrCat("bug in call ", call))
               : absl::OkStatus();
  });
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*worker_store_, projection, Options()));
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(
      WaitUntil([&] { return projection.handled_count() == 2; }, kLong));
  ASSERT_EQ(StatusOf("plain", ids[1]), DeadLetterStatus::kParked);

  // Marked for a retry before the fix: replayed, fails, parked again with
  // one more failure and the new error.
  ASSERT_OK(operator_store_->dead_letters().MarkRetrying("plain", ids[1]));
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::optional<DeadLetter> letter = Letter("plain", ids[1]);
        return letter.has_value() &&
               letter->status == DeadLetterStatus::kParked &&
               letter->failure_count == 2;
      },
      kPrompt))
      << "not replayed within " << kPrompt;
  std::optional<DeadLetter> letter = Letter("plain", ids[1]);
  ASSERT_TRUE(letter.has_value());
  EXPECT_THAT(letter->error, HasSubstr("bug in call 2"));
  EXPECT_EQ(projection.calls(ids[1]), 2);

  // Not tried again until it is marked again: no loop.
  absl::SleepFor(kCheckInterval * 6);
  EXPECT_EQ(projection.calls(ids[1]), 2);
  letter = Letter("plain", ids[1]);
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(letter->status, DeadLetterStatus::kParked);
  EXPECT_EQ(letter->failure_count, 2);
  EXPECT_OK(runner->stats().last_error);

  // Fixed, marked again: resolved.
  broken = false;
  ASSERT_OK(operator_store_->dead_letters().MarkRetrying("plain", ids[1]));
  ASSERT_TRUE(WaitUntil(
      [&] { return StatusOf("plain", ids[1]) == DeadLetterStatus::kResolved; },
      kPrompt));
  EXPECT_EQ(projection.calls(ids[1]), 3);
  EXPECT_THAT(projection.handled(), ElementsAre(ids[0], ids[2], ids[1]));
  runner->Stop();
}

TEST_P(ProjectionRunnerRetryingTest, NotReplayedWhenTurnedOff) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(*worker_store_, "order-1", 3));
  std::atomic<bool> broken{true};
  RecordingProjection projection("manual");
  projection.FailWith([&](const RecordedEvent& event, int) {
    return event.id == ids[1] && broken ? absl::InternalError("bug")
                                        : absl::OkStatus();
  });
  ProjectionRunnerOptions options = Options();
  options.replay_retrying = false;
  // Short idle waits: the loop goes round many times while nothing happens.
  options.idle_wait = kCheckInterval;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*worker_store_, projection, options));
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(
      WaitUntil([&] { return projection.handled_count() == 2; }, kLong));

  broken = false;
  ASSERT_OK(operator_store_->dead_letters().MarkRetrying("manual", ids[1]));
  // The runner goes on following the log (a new event is handled), and
  // leaves the marked entry to the application.
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> more,
                       AppendOrders(*operator_store_, "order-2", 1));
  ASSERT_TRUE(
      WaitUntil([&] { return projection.handled_count() == 3; }, kPrompt));
  absl::SleepFor(kCheckInterval * 6);
  EXPECT_EQ(projection.calls(ids[1]), 1);
  EXPECT_EQ(StatusOf("manual", ids[1]), DeadLetterStatus::kRetrying);

  ASSERT_OK(runner->ReplayParked(ids[1]));
  EXPECT_EQ(StatusOf("manual", ids[1]), DeadLetterStatus::kResolved);
  EXPECT_THAT(projection.handled(),
              ElementsAre(ids[0], ids[2], more[0], ids[1]));
  runner->Stop();
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ProjectionRunnerRetryingTest,
                         ::testing::ValuesIn(CrossStoreBackends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace eventstore
