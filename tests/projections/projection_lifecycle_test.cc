// Projections facing the stream lifecycle, on every backend of
// AllTestBackends(): a deletion's StreamDeleted event reaches the handler
// (also through an event-type filter) so that a read model drops the
// stream; a forgotten event (RecordedEvent::forgotten(), crypto-shredding)
// that the projection skips is handled, not parked. Forgotten events are
// made by hand, by a store that marks chosen streams forgotten as it reads
// them, so that no crypto is needed here.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/recorded_event.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/projection.h"
#include "projections/projection_runner.h"
#include "tests/projections/test_projections.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::AppendOrders;
using ::eventstore::test::kPlaced;
using ::eventstore::test::kShipped;
using ::eventstore::test::RecordingProjection;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;

const std::string kDeletedType(kStreamDeletedType);
constexpr char kTable[] = "order_event_rows";

// A read model in the store's database: a row per event of each stream, so
// that it counts events per stream; a deletion drops the stream's rows.
class OrderCounts : public TransactionalProjection {
 public:
  explicit OrderCounts(std::vector<std::string> types = {})
      : types_(std::move(types)) {}

  std::string name() const override { return "order-counts"; }
  std::vector<std::string> event_types() const override { return types_; }

  absl::Status Handle(const RecordedEvent& event, SqlTransaction& tx) override {
    if (std::optional<v1::StreamDeleted> deleted = AsStreamDeleted(event)) {
      return tx.Execute(
          absl::StrCat("DELETE FROM ", kTable, " WHERE stream = $1"),
          {SqlValue::Text(deleted->stream())});
    }
    return tx.Execute(
        absl::StrCat("INSERT INTO ", kTable,
                     " (stream, version) VALUES ($1, $2)"),
        {SqlValue::Text(event.stream), SqlValue::Int(event.version)});
  }

  absl::Status Reset(SqlTransaction& tx) override {
    return tx.Execute(absl::StrCat("DELETE FROM ", kTable));
  }

 private:
  const std::vector<std::string> types_;
};

// Marks every event of the streams named in Forget() as an
// EncryptedEventStore returns those of a forgotten subject: no payload,
// payload_state kForgotten.
class ForgettingStore final : public ForwardingEventStore {
 public:
  explicit ForgettingStore(EventStore* target) : ForwardingEventStore(target) {}

  void Forget(const std::string& stream) {
    std::lock_guard<std::mutex> lock(mu_);
    forgotten_.insert(stream);
  }

  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override {
    absl::StatusOr<ReadAllPage> page = ForwardingEventStore::ReadAll(options);
    if (!page.ok()) return page;
    std::lock_guard<std::mutex> lock(mu_);
    for (RecordedEvent& e : page->events) {
      if (forgotten_.count(e.stream) == 0) continue;
      e.payload.clear();
      e.metadata.set_subject_id("subject-1");
      e.metadata.set_payload_encryption(
          std::string(kPayloadEncryptionXChaCha20));
      e.payload_state = PayloadState::kForgotten;
    }
    return page;
  }

 private:
  std::mutex mu_;
  std::set<std::string> forgotten_;
};

// Decodes every OrderPlaced it gets; skips forgotten events when `skips`.
class PlacedOrders : public Projection {
 public:
  PlacedOrders(std::string name, bool skips)
      : name_(std::move(name)), skips_(skips) {}

  std::string name() const override { return name_; }
  std::vector<std::string> event_types() const override { return {kPlaced}; }

  absl::Status Handle(const RecordedEvent& event) override {
    if (event.forgotten() && skips_) {
      ++skipped;
      return absl::OkStatus();
    }
    if (event.type == kStreamDeletedType) return absl::OkStatus();
    absl::StatusOr<test::v1::OrderPlaced> placed =
        event.As<test::v1::OrderPlaced>();
    if (!placed.ok()) return placed.status();
    orders.push_back(placed->order_id());
    return absl::OkStatus();
  }

  // Touched only by the runner's calls, on the test's thread (RunOnce).
  std::vector<std::string> orders;
  int skipped = 0;

 private:
  const std::string name_;
  const bool skips_;
};

class ProjectionLifecycleTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(store_, GetParam().open(nullptr));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store_->BeginTransaction());
    ASSERT_OK(tx->Execute(absl::StrCat("CREATE TABLE ", kTable,
                                       " (stream TEXT NOT NULL, "
                                       "version BIGINT NOT NULL)")));
    ASSERT_OK(tx->Commit());
  }

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

  // Events per stream in the read model.
  std::map<std::string, int64_t> Counts() {
    std::map<std::string, int64_t> counts;
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store_->BeginTransaction();
    EXPECT_OK(tx);
    if (!tx.ok()) return counts;
    absl::StatusOr<SqlRows> rows = (*tx)->Query(absl::StrCat(
        "SELECT stream, count(*) FROM ", kTable, " GROUP BY stream"));
    EXPECT_OK(rows);
    if (!rows.ok()) return counts;
    for (const SqlRow& row : *rows) {
      if (row.size() == 2 && row[0] && row[1]) {
        counts[*row[0]] = std::stoll(*row[1]);
      }
    }
    return counts;
  }

  // Runs `runner` until it has nothing more to do; what it handled.
  static int64_t RunToEnd(ProjectionRunner& runner) {
    int64_t handled = 0;
    for (int i = 0; i < 100; ++i) {
      absl::StatusOr<ProjectionRunResult> r = runner.RunOnce();
      EXPECT_OK(r);
      if (!r.ok() || (r->handled == 0 && r->parked == 0)) break;
      handled += r->handled;
    }
    return handled;
  }

  std::vector<DeadLetter> Parked(const std::string& name) {
    absl::StatusOr<std::vector<DeadLetter>> parked =
        store_->dead_letters().List(name, DeadLetterStatus::kParked, 100);
    EXPECT_OK(parked);
    return parked.ok() ? *parked : std::vector<DeadLetter>();
  }

  std::unique_ptr<EventStore> store_;
};

TEST_P(ProjectionLifecycleTest, ReadModelDropsADeletedStream) {
  ASSERT_OK(AppendOrders(*store_, "order-1", 3).status());
  ASSERT_OK(AppendOrders(*store_, "order-2", 2).status());
  OrderCounts projection;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*store_, projection, FastOptions()));
  EXPECT_EQ(RunToEnd(*runner), 5);
  EXPECT_THAT(Counts(), ElementsAre(Pair("order-1", 3), Pair("order-2", 2)));

  ASSERT_OK(store_->DeleteStream("order-1", ExpectedVersion::Exactly(3),
                                 DeleteMode::kSoft));
  EXPECT_EQ(RunToEnd(*runner), 1);
  EXPECT_THAT(Counts(), ElementsAre(Pair("order-2", 2)));

  // Written again after the deletion: counted afresh.
  ASSERT_OK(AppendOrders(*store_, "order-1", 1).status());
  ASSERT_OK(store_->DeleteStream("order-2", ExpectedVersion::Any(),
                                 DeleteMode::kHard));
  EXPECT_EQ(RunToEnd(*runner), 2);
  EXPECT_THAT(Counts(), ElementsAre(Pair("order-1", 1)));
  EXPECT_THAT(Parked("order-counts"), IsEmpty());

  // A rebuild from the start replays the markers too: same read model.
  ASSERT_OK(runner->Rebuild().status());
  RunToEnd(*runner);
  EXPECT_THAT(Counts(), ElementsAre(Pair("order-1", 1)));
}

TEST_P(ProjectionLifecycleTest, TypeFilteredProjectionReceivesDeletions) {
  ASSERT_OK(AppendOrders(*store_, "order-1", 2).status());
  ASSERT_OK(AppendOrders(*store_, "order-1", 1, /*shipped=*/true).status());
  ASSERT_OK(AppendOrders(*store_, "order-2", 1).status());
  // Only OrderPlaced: the shipped event is not read, the marker is.
  OrderCounts projection({kPlaced});
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*store_, projection, FastOptions()));
  EXPECT_EQ(RunToEnd(*runner), 3);
  EXPECT_THAT(Counts(), ElementsAre(Pair("order-1", 2), Pair("order-2", 1)));
  ASSERT_OK(store_->DeleteStream("order-1", ExpectedVersion::Exactly(3),
                                 DeleteMode::kSoft));
  EXPECT_EQ(RunToEnd(*runner), 1);
  EXPECT_THAT(Counts(), ElementsAre(Pair("order-2", 1)));

  RecordingProjection recording("recording", {kPlaced, kShipped});
  std::vector<std::string> types;
  recording.OnHandle(
      [&types](const RecordedEvent& e) { types.push_back(e.type); });
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> recorder,
      ProjectionRunner::Create(*store_, recording, FastOptions()));
  RunToEnd(*recorder);
  // order-1's events are hidden now; order-2's event, then the marker.
  EXPECT_THAT(types, ElementsAre(kPlaced, kDeletedType));
  ASSERT_THAT(recording.handled(), SizeIs(2));
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag, recorder->Lag());
  EXPECT_EQ(lag.events_behind, 0);
}

TEST_P(ProjectionLifecycleTest, ForgottenEventThatIsSkippedIsNotParked) {
  ASSERT_OK(AppendOrders(*store_, "order-1", 2).status());
  ASSERT_OK(AppendOrders(*store_, "order-2", 1).status());
  ForgettingStore forgetting(store_.get());
  forgetting.Forget("order-1");

  PlacedOrders skipping("skipping", /*skips=*/true);
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(forgetting, skipping, FastOptions()));
  EXPECT_EQ(RunToEnd(*runner), 3);
  EXPECT_EQ(skipping.skipped, 2);
  EXPECT_THAT(skipping.orders, ElementsAre("order-2/0"));
  EXPECT_THAT(Parked("skipping"), IsEmpty());

  // A projection that decodes it anyway gets kFailedPrecondition, which is
  // retried and then parked: why projections check forgotten().
  PlacedOrders naive("naive", /*skips=*/false);
  ProjectionRunnerOptions options = FastOptions();
  options.max_attempts = 2;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ProjectionRunner> naive_runner,
                       ProjectionRunner::Create(forgetting, naive, options));
  RunToEnd(*naive_runner);
  const std::vector<DeadLetter> parked = Parked("naive");
  ASSERT_THAT(parked, SizeIs(2));
  EXPECT_EQ(parked[0].stream, "order-1");
  EXPECT_THAT(naive.orders, ElementsAre("order-2/0"));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ProjectionLifecycleTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
