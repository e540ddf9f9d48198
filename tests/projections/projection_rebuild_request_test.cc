// Rebuilds requested through the store (CheckpointStore::RequestRebuild, what
// `eventstore checkpoints URL rebuild` and the console call): RunOnce and a
// started runner clear the read model, replay from the start and clear the
// request; a request made while no runner runs is started by the next one.
// On every backend of AllTestBackends() through the runner's own store, and
// with a second store object on a SQLite file or PostgreSQL (in production,
// the operator's process) while the runner follows the log.
//
// Tests whose names contain "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/event_store.h"
#include "eventstore/log_sink.h"
#include "eventstore/open_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/projection_runner.h"
#include "tests/projections/test_projections.h"
#include "tests/support/recording_log_sink.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_backends.h"
#include "tests/support/wait_until.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::AppendOrders;
using ::eventstore::test::CountRows;
using ::eventstore::test::RecordingLogSink;
using ::eventstore::test::RecordingProjection;
using ::eventstore::test::RowCounts;
using ::eventstore::test::RowProjection;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::WaitUntil;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// A bound for work that takes a while on a loaded machine.
constexpr absl::Duration kLong = absl::Seconds(30);

constexpr char kTable[] = "rebuilt_rows";

std::vector<Uuid> Twice(const std::vector<Uuid>& ids) {
  std::vector<Uuid> twice = ids;
  twice.insert(twice.end(), ids.begin(), ids.end());
  return twice;
}

// The checkpoint of `projection` in `store` (nullopt on an error, which
// fails the test).
std::optional<Checkpoint> CheckpointOf(EventStore& store,
                                       const std::string& projection) {
  absl::StatusOr<std::optional<Checkpoint>> checkpoint =
      store.checkpoints().Get(projection);
  EXPECT_OK(checkpoint);
  return checkpoint.ok() ? *checkpoint : std::nullopt;
}

bool RequestPending(EventStore& store, const std::string& projection) {
  std::optional<Checkpoint> checkpoint = CheckpointOf(store, projection);
  return checkpoint.has_value() && checkpoint->rebuild_requested_at.has_value();
}

RowCounts Rows(EventStore& store) {
  absl::StatusOr<RowCounts> counts = CountRows(store, kTable);
  EXPECT_OK(counts);
  return counts.ok() ? *counts : RowCounts{-1, -1};
}

// --- through the runner's own store ------------------------------------------

class RebuildRequestTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(store_, GetParam().open(nullptr));
    ASSERT_OK(RowProjection::CreateTable(*store_, kTable));
  }

  static ProjectionRunnerOptions Options() {
    ProjectionRunnerOptions options;
    options.batch_size = 10;
    options.idle_wait = absl::Milliseconds(100);
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(5);
    options.lease_retry_interval = absl::Milliseconds(50);
    // Every batch looks.
    options.rebuild_check_interval = absl::Nanoseconds(1);
    return options;
  }

  EventStore& store() { return *store_; }

  std::unique_ptr<EventStore> store_;
};

TEST_P(RebuildRequestTest, RunOnceStartsARequestedTransactionalRebuild) {
  ASSERT_OK(AppendOrders(store(), "order-1", 23).status());
  RowProjection projection("rows", kTable);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(store(), projection, Options()));
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_EQ(Rows(store()).rows, 23);

  ASSERT_OK(store().checkpoints().RequestRebuild("rows", "alice"));
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_EQ(result.handled, 23);
  // Cleared and replayed once: no duplicate rows.
  EXPECT_EQ(Rows(store()).rows, 23);
  EXPECT_EQ(Rows(store()).distinct_events, 23);
  std::optional<Checkpoint> checkpoint = CheckpointOf(store(), "rows");
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_FALSE(checkpoint->rebuild_requested_at.has_value());
  EXPECT_EQ(checkpoint->rebuild_requested_by, "");
  EXPECT_EQ(checkpoint->events_processed, 23);
  EXPECT_EQ(runner->stats().rebuilds, 1);

  // Done: the next run has nothing to rebuild.
  ASSERT_OK_AND_ASSIGN(result, runner->RunOnce());
  EXPECT_EQ(result.handled, 0);
  EXPECT_EQ(projection.resets(), 1);
}

TEST_P(RebuildRequestTest, RunOnceStartsARequestedPlainRebuild) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 12));
  RecordingProjection projection("plain");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(store(), projection, Options()));
  ASSERT_OK(runner->RunOnce().status());

  ASSERT_OK(store().checkpoints().RequestRebuild("plain", "bob"));
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 12);
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_THAT(projection.handled(), ElementsAreArray(Twice(ids)));
  EXPECT_FALSE(RequestPending(store(), "plain"));
  EXPECT_EQ(runner->stats().rebuilds, 1);
}

TEST_P(RebuildRequestTest, ARequestMadeWhileNoRunnerRunsIsStartedOnStart) {
  ASSERT_OK(AppendOrders(store(), "order-1", 15).status());
  RowProjection projection("rows", kTable);
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<ProjectionRunner> first,
        ProjectionRunner::Create(store(), projection, Options()));
    ASSERT_OK(first->RunOnce().status());
  }
  ASSERT_EQ(Rows(store()).rows, 15);
  // No runner runs now; the next one to start rebuilds.
  ASSERT_OK(store().checkpoints().RequestRebuild("rows", "carol"));
  auto log = std::make_shared<RecordingLogSink>();
  ProjectionRunnerOptions options = Options();
  options.rebuild_check_interval = absl::Hours(1);  // only the start looks
  options.log_sink = log;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProjectionRunner> next,
                       ProjectionRunner::Create(store(), projection, options));
  ASSERT_OK(next->Start());
  EXPECT_TRUE(log->WaitFor(LogLevel::kInfo, "projection_runner",
                           "rebuilding, as 'carol' requested at", kLong));
  EXPECT_TRUE(WaitUntil(
      [&] {
        const ProjectionRunnerStats stats = next->stats();
        return stats.rebuilds == 1 && stats.idle && stats.handled == 15;
      },
      kLong));
  next->Stop();
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_EQ(Rows(store()).rows, 15);
  EXPECT_EQ(Rows(store()).distinct_events, 15);
  EXPECT_FALSE(RequestPending(store(), "rows"));
}

TEST_P(RebuildRequestTest, ARequestForANewProjectionRunsItFromTheStart) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 7));
  // The request creates the checkpoint (at the start) of a projection that
  // never ran.
  ASSERT_OK(store().checkpoints().RequestRebuild("fresh", "dave"));
  RecordingProjection projection("fresh");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(store(), projection, Options()));
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 7);
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_THAT(projection.handled(), ElementsAreArray(ids));
  EXPECT_FALSE(RequestPending(store(), "fresh"));
}

TEST_P(RebuildRequestTest, RequestingTwiceKeepsTheFirstAndRebuildsOnce) {
  ASSERT_OK(AppendOrders(store(), "order-1", 5).status());
  RecordingProjection projection("plain");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(store(), projection, Options()));
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_OK(store().checkpoints().RequestRebuild("plain", "first"));
  ASSERT_OK(store().checkpoints().RequestRebuild("plain", "second"));
  std::optional<Checkpoint> checkpoint = CheckpointOf(store(), "plain");
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->rebuild_requested_by, "first");

  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 5);
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_EQ(runner->stats().rebuilds, 1);
  EXPECT_FALSE(RequestPending(store(), "plain"));
}

TEST_P(RebuildRequestTest, ARequestWithoutAnOperatorNameIsRefused) {
  ASSERT_OK(AppendOrders(store(), "order-1", 5).status());
  RecordingProjection projection("plain");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(store(), projection, Options()));
  ASSERT_OK(runner->RunOnce().status());
  EXPECT_THAT(
      store().checkpoints().RequestRebuild("plain", ""),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("requested_by")));
  EXPECT_FALSE(RequestPending(store(), "plain"));
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(result.handled, 0);
  EXPECT_EQ(projection.resets(), 0);
}

TEST_P(RebuildRequestTest, RebuildClearsAPendingRequest) {
  ASSERT_OK(AppendOrders(store(), "order-1", 9).status());
  RowProjection projection("rows", kTable);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(store(), projection, Options()));
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_OK(store().checkpoints().RequestRebuild("rows", "erin"));
  // The application's own Rebuild serves the request.
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult rebuilt, runner->Rebuild());
  EXPECT_EQ(rebuilt.handled, 9);
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_FALSE(RequestPending(store(), "rows"));
  EXPECT_EQ(runner->stats().rebuilds, 1);
  ASSERT_OK(runner->RunOnce().status());
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_EQ(Rows(store()).rows, 9);
}

TEST_P(RebuildRequestTest, ARequestBetweenBatchesOfRunOnceStartsOver) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(store(), "order-1", 30));
  RecordingProjection projection("plain");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(store(), projection, Options()));
  // Requested while the first batch (10 events) is handled.
  std::atomic<bool> requested{false};
  projection.OnHandle([&](const RecordedEvent& event) {
    if (event.id == ids[4] && !requested.exchange(true)) {
      EXPECT_OK(store().checkpoints().RequestRebuild("plain", "frank"));
    }
  });
  ASSERT_OK_AND_ASSIGN(ProjectionRunResult result, runner->RunOnce());
  EXPECT_EQ(projection.resets(), 1);
  // The first batch, then the whole log again.
  std::vector<Uuid> expected(ids.begin(), ids.begin() + 10);
  expected.insert(expected.end(), ids.begin(), ids.end());
  EXPECT_THAT(projection.handled(), ElementsAreArray(expected));
  EXPECT_EQ(result.handled, 40);
  EXPECT_FALSE(RequestPending(store(), "plain"));
  std::optional<Checkpoint> checkpoint = CheckpointOf(store(), "plain");
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->events_processed, 30);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, RebuildRequestTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

TEST(RebuildRequestOptionsTest, ACheckIntervalMustBePositive) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore("sqlite::memory:"));
  RecordingProjection projection("plain");
  for (absl::Duration interval : {absl::ZeroDuration(), absl::Seconds(-1)}) {
    ProjectionRunnerOptions options;
    options.rebuild_check_interval = interval;
    EXPECT_THAT(ProjectionRunner::Create(*store, projection, options),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("rebuild_check_interval")));
  }
}

// --- from another store object, while the runner follows the log -------------

// The operator's store object requests; the worker's runner, started, does
// the rebuild. The runner's idle_wait is longer than the bound, so only the
// rebuild_check_interval can deliver in time.
class RebuildRequestFromOutsideTest
    : public ::testing::TestWithParam<std::string> {
 protected:
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
    ASSERT_OK(RowProjection::CreateTable(*worker_store_, kTable));
  }

  static ProjectionRunnerOptions Options() {
    ProjectionRunnerOptions options;
    options.batch_size = 10;
    options.idle_wait = absl::Seconds(10);
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(5);
    options.lease_retry_interval = absl::Milliseconds(50);
    options.rebuild_check_interval = absl::Milliseconds(50);
    return options;
  }

  std::unique_ptr<test::TempDir> dir_;
  std::string url_;
  // Declared after dir_: closed before the directory is removed.
  std::unique_ptr<EventStore> worker_store_;
  std::unique_ptr<EventStore> operator_store_;
};

TEST_P(RebuildRequestFromOutsideTest, AStartedRunnerRebuildsOnRequest) {
  ASSERT_OK(AppendOrders(*worker_store_, "order-1", 23).status());
  RowProjection projection("rows", kTable);
  auto log = std::make_shared<RecordingLogSink>();
  ProjectionRunnerOptions options = Options();
  options.log_sink = log;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*worker_store_, projection, options));
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(WaitUntil(
      [&] {
        const ProjectionRunnerStats stats = runner->stats();
        return stats.idle && stats.handled == 23;
      },
      kLong));
  ASSERT_EQ(projection.resets(), 0);

  ASSERT_OK(operator_store_->checkpoints().RequestRebuild("rows", "alice"));
  EXPECT_TRUE(WaitUntil(
      [&] {
        const ProjectionRunnerStats stats = runner->stats();
        return stats.rebuilds == 1 && stats.idle && stats.handled == 46;
      },
      kLong));
  EXPECT_TRUE(log->WaitFor(LogLevel::kInfo, "projection_runner",
                           "rebuilding, as 'alice' requested at", kLong));
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_FALSE(RequestPending(*operator_store_, "rows"));
  const RowCounts rows = Rows(*operator_store_);
  EXPECT_EQ(rows.rows, 23);
  EXPECT_EQ(rows.distinct_events, 23);
  std::optional<Checkpoint> checkpoint = CheckpointOf(*operator_store_, "rows");
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->events_processed, 23);
  runner->Stop();
}

TEST_P(RebuildRequestFromOutsideTest, AStartedPlainRunnerRebuildsOnRequest) {
  ASSERT_OK_AND_ASSIGN(std::vector<Uuid> ids,
                       AppendOrders(*worker_store_, "order-1", 12));
  RecordingProjection projection("plain");
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*worker_store_, projection, Options()));
  ASSERT_OK(runner->Start());
  ASSERT_TRUE(WaitUntil(
      [&] {
        const ProjectionRunnerStats stats = runner->stats();
        return stats.idle && stats.handled == 12;
      },
      kLong));
  ASSERT_OK(operator_store_->checkpoints().RequestRebuild("plain", "bob"));
  EXPECT_TRUE(WaitUntil(
      [&] {
        const ProjectionRunnerStats stats = runner->stats();
        return stats.rebuilds == 1 && stats.idle && stats.handled == 24;
      },
      kLong));
  runner->Stop();
  EXPECT_EQ(projection.resets(), 1);
  EXPECT_THAT(projection.handled(), ElementsAreArray(Twice(ids)));
  EXPECT_FALSE(RequestPending(*operator_store_, "plain"));
}

// A writer appends while the operator requests rebuilds from another thread
// (and another store object): whatever the interleaving, once all is
// handled the read model holds each event once and no request is pending.
TEST_P(RebuildRequestFromOutsideTest,
       ConcurrentRequestsWhileTheRunnerHandlesAppends) {
  RowProjection projection("rows", kTable);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*worker_store_, projection, Options()));
  ASSERT_OK(runner->Start());
  constexpr int kBatches = 20;
  constexpr int kPerBatch = 5;
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int i = 0; i < kBatches; ++i) {
      EXPECT_OK(
          AppendOrders(*worker_store_, absl::StrCat("order-", i), kPerBatch)
              .status());
    }
    writing = false;
  });
  std::thread requester([&] {
    // Two requests while the writer writes (or just after), each waited
    // for, so that both are rebuilds of their own.
    for (int i = 0; i < 2; ++i) {
      EXPECT_OK(operator_store_->checkpoints().RequestRebuild(
          "rows", absl::StrCat("operator-", i)));
      EXPECT_TRUE(
          WaitUntil([&] { return runner->stats().rebuilds > i; }, kLong));
    }
  });
  writer.join();
  requester.join();
  EXPECT_FALSE(writing);
  constexpr int kEvents = kBatches * kPerBatch;
  EXPECT_TRUE(WaitUntil(
      [&] {
        if (!runner->stats().idle) return false;
        absl::StatusOr<ProjectionLag> lag = runner->Lag();
        return lag.ok() && lag->events_behind == 0;
      },
      kLong));
  runner->Stop();
  EXPECT_EQ(runner->stats().rebuilds, 2);
  EXPECT_EQ(projection.resets(), 2);
  EXPECT_FALSE(RequestPending(*operator_store_, "rows"));
  const RowCounts rows = Rows(*operator_store_);
  EXPECT_EQ(rows.rows, kEvents);
  EXPECT_EQ(rows.distinct_events, kEvents);
  std::optional<Checkpoint> checkpoint = CheckpointOf(*operator_store_, "rows");
  ASSERT_TRUE(checkpoint.has_value());
  EXPECT_EQ(checkpoint->events_processed, kEvents);
}

std::vector<std::string> SharedDatabaseBackends() {
  return {
      "sqlite_file",
#ifdef EVENTSTORE_TEST_POSTGRES
      "postgres",
#endif
  };
}

INSTANTIATE_TEST_SUITE_P(AllBackends, RebuildRequestFromOutsideTest,
                         ::testing::ValuesIn(SharedDatabaseBackends()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace eventstore
