// StoreReplica: copying a primary's log into a local SQLite store, resuming,
// following in background, faults (primary down, replica file deleted, a
// primary restored from an older backup), on SQLite and (one group)
// PostgreSQL primaries.

#include "eventstore/store_replica.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/recording_log_sink.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"
#endif

namespace eventstore::test {
namespace {

using ::testing::HasSubstr;

constexpr char kTickType[] = "eventstore.test.v1.Tick";

EventData Tick(std::string payload) {
  EventData e;
  e.id = Uuid::Generate();
  e.type = kTickType;
  e.payload = std::move(payload);
  e.metadata.set_correlation_id(absl::StrCat("corr-", e.payload));
  e.metadata.set_tenant_id("tenant-a");
  return e;
}

// Appends `count` events to `streams` streams named `prefix`N, `per_append`
// events per append, round robin.
absl::Status Fill(EventStore& store, const std::string& prefix, int streams,
                  int count, int per_append = 1) {
  for (int i = 0; i < count; i += per_append) {
    std::vector<EventData> batch;
    for (int j = i; j < i + per_append && j < count; ++j) {
      batch.push_back(Tick(absl::StrCat(prefix, j)));
    }
    absl::StatusOr<AppendResult> r =
        store.Append(absl::StrCat(prefix, (i / per_append) % streams),
                     ExpectedVersion::Any(), batch);
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

std::vector<RecordedEvent> ReadEverything(EventStore& store) {
  std::vector<RecordedEvent> all;
  ReadAllOptions options;
  while (true) {
    absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
    EXPECT_OK(page.status());
    if (!page.ok()) return all;
    for (RecordedEvent& e : page->events) all.push_back(std::move(e));
    if (page->end_of_log) return all;
    options.from_position = page->next_position;
  }
}

std::unique_ptr<EventStore> OpenSqlite(const std::string& path) {
  SqliteOptions options;
  options.path = path;
  absl::StatusOr<std::unique_ptr<EventStore>> store =
      SqliteEventStore::Open(options);
  EXPECT_OK(store.status());
  return store.ok() ? std::move(*store) : nullptr;
}

// The replica holds exactly the primary's events of covered streams, with
// every recorded field, and maps each primary position to its copy.
void ExpectExactCopy(EventStore& primary, EventStore& replica,
                     StoreReplica& component) {
  std::vector<RecordedEvent> expected;
  for (RecordedEvent& e : ReadEverything(primary)) {
    if (component.Covers(e.stream)) expected.push_back(std::move(e));
  }
  std::vector<RecordedEvent> copied = ReadEverything(replica);
  ASSERT_EQ(copied.size(), expected.size());
  for (size_t i = 0; i < copied.size(); ++i) {
    const RecordedEvent& a = expected[i];
    const RecordedEvent& b = copied[i];
    ASSERT_EQ(b.id, a.id) << i;
    EXPECT_EQ(b.stream, a.stream);
    EXPECT_EQ(b.version, a.version);
    EXPECT_EQ(b.type, a.type);
    EXPECT_EQ(b.payload, a.payload);
    EXPECT_EQ(b.metadata.SerializeAsString(), a.metadata.SerializeAsString());
    EXPECT_EQ(b.recorded_at, a.recorded_at);
    EXPECT_EQ(b.checksum, a.checksum);
    if (i % 997 == 0 || i + 1 == copied.size()) {
      ASSERT_OK_AND_ASSIGN(Position translated,
                           component.TranslatePosition(a.position));
      EXPECT_EQ(translated, b.position) << i;
    }
  }
}

// A primary that can be made unreachable: while `down`, reads fail with
// kUnavailable; `reads_before_down` (when >= 0) lets that many ReadAll
// calls through, then goes down.
class FlakyPrimary final : public ForwardingEventStore {
 public:
  explicit FlakyPrimary(EventStore* target) : ForwardingEventStore(target) {}
  std::atomic<bool> down{false};
  std::atomic<int> reads_before_down{-1};

  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override {
    if (reads_before_down.load() == 0) down = true;
    if (down) return Unreachable();
    if (reads_before_down.load() > 0) --reads_before_down;
    return ForwardingEventStore::ReadAll(options);
  }
  absl::StatusOr<Position> HeadPosition() override {
    if (down) return Unreachable();
    return ForwardingEventStore::HeadPosition();
  }
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override {
    if (down) return Unreachable();
    return ForwardingEventStore::ReadStream(stream, options);
  }
  absl::StatusOr<bool> WaitForEvents(Position after,
                                     absl::Duration timeout) override {
    if (down) return Unreachable();
    return ForwardingEventStore::WaitForEvents(after, timeout);
  }

 private:
  static absl::Status Unreachable() {
    return absl::UnavailableError("test primary: connection refused");
  }
};

class StoreReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    database_ = OpenSqlite(":memory:");
    ASSERT_NE(database_, nullptr);
    primary_ = std::make_unique<FlakyPrimary>(database_.get());
    replica_path_ = dir_->File("replica.db");
    replica_ = OpenSqlite(replica_path_);
    ASSERT_NE(replica_, nullptr);
  }

  std::unique_ptr<StoreReplica> Make(ReplicaOptions options = {}) {
    if (options.log_sink == nullptr) options.log_sink = log_;
    absl::StatusOr<std::unique_ptr<StoreReplica>> r =
        StoreReplica::Create(*primary_, *replica_, std::move(options));
    EXPECT_OK(r.status());
    return r.ok() ? std::move(*r) : nullptr;
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<EventStore> database_;
  std::unique_ptr<FlakyPrimary> primary_;
  std::string replica_path_;
  std::unique_ptr<EventStore> replica_;
  std::shared_ptr<RecordingLogSink> log_ = std::make_shared<RecordingLogSink>();
};

TEST_F(StoreReplicaTest, RefusesBadOptions) {
  ReplicaOptions batch;
  batch.batch_size = 0;
  EXPECT_THAT(
      StoreReplica::Create(*primary_, *replica_, batch).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("batch_size")));
  ReplicaOptions prefix;
  prefix.stream_prefixes = {"order-", ""};
  EXPECT_THAT(StoreReplica::Create(*primary_, *replica_, prefix).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("stream_prefixes[1]")));
  ReplicaOptions poll;
  poll.poll_interval = -absl::Seconds(1);
  EXPECT_THAT(
      StoreReplica::Create(*primary_, *replica_, poll).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("poll_interval")));
}

TEST_F(StoreReplicaTest, CopiesTenThousandEventsWithEveryField) {
  ASSERT_OK(Fill(*database_, "order-", 100, 10000, 10));
  std::unique_ptr<StoreReplica> replica = Make();
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult result, replica->SyncOnce());
  EXPECT_EQ(result.events_copied, 10000);
  EXPECT_TRUE(result.caught_up);
  ExpectExactCopy(*database_, *replica_, *replica);
  ASSERT_OK_AND_ASSIGN(Position head, database_->HeadPosition());
  ReplicaStatus status = replica->Status();
  EXPECT_EQ(status.replica_position, head);
  EXPECT_EQ(replica->replica_position(), head);
  EXPECT_EQ(status.events, 10000);
  EXPECT_EQ(status.lag_events, 0);
  EXPECT_EQ(status.lag_time, absl::ZeroDuration());
  EXPECT_OK(status.last_error);
  EXPECT_NE(status.last_sync, absl::InfinitePast());
  // ReadStream on the replica answers as on the primary.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stream,
                       replica_->ReadStream("order-7"));
  EXPECT_EQ(stream.size(), 100u);
  // A second sync copies nothing.
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult again, replica->SyncOnce());
  EXPECT_EQ(again.events_copied, 0);
}

TEST_F(StoreReplicaTest, CopiesOnlyStreamsWithThePrefixes) {
  ASSERT_OK(Fill(*database_, "order-", 3, 30));
  ASSERT_OK(Fill(*database_, "audit-", 3, 30));
  ASSERT_OK(Fill(*database_, "customer-", 3, 30));
  ASSERT_OK(Fill(*database_, "audit-", 3, 10));

  ReplicaOptions one;
  one.stream_prefixes = {"order-"};
  one.batch_size = 7;
  std::unique_ptr<StoreReplica> orders = Make(one);
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult result, orders->SyncOnce());
  EXPECT_EQ(result.events_copied, 30);
  EXPECT_TRUE(orders->Covers("order-1"));
  EXPECT_FALSE(orders->Covers("audit-1"));
  ExpectExactCopy(*database_, *replica_, *orders);
  EXPECT_EQ(orders->Status().stream_prefixes,
            std::vector<std::string>{"order-"});

  // Two prefixes, into another replica.
  std::unique_ptr<EventStore> second = OpenSqlite(dir_->File("second.db"));
  ReplicaOptions two;
  two.stream_prefixes = {"order-", "customer-"};
  two.batch_size = 7;
  two.log_sink = log_;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StoreReplica> both,
                       StoreReplica::Create(*primary_, *second, two));
  ASSERT_OK_AND_ASSIGN(result, both->SyncOnce());
  EXPECT_EQ(result.events_copied, 60);
  ExpectExactCopy(*database_, *second, *both);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> audit,
                       second->ReadStream("audit-0"));
  EXPECT_TRUE(audit.empty());
  // Passed over the trailing audit events without copying them.
  ASSERT_OK_AND_ASSIGN(Position head, database_->HeadPosition());
  EXPECT_EQ(both->Status().read_position, head);
  EXPECT_LT(both->Status().replica_position, head);
}

TEST_F(StoreReplicaTest, ResumesAfterBeingDestroyedMidCopy) {
  ASSERT_OK(Fill(*database_, "order-", 10, 100));
  ReplicaOptions options;
  options.batch_size = 7;
  {
    std::unique_ptr<StoreReplica> first = Make(options);
    ASSERT_OK_AND_ASSIGN(ReplicaSyncResult r, first->SyncOnce(30));
    EXPECT_EQ(r.events_copied, 30);
    EXPECT_FALSE(r.caught_up);
  }
  // The replica's file reopened, as after a restart.
  replica_.reset();
  replica_ = OpenSqlite(replica_path_);
  std::unique_ptr<StoreReplica> second = Make(options);
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult r, second->SyncOnce());
  EXPECT_EQ(r.events_copied, 70);
  EXPECT_EQ(second->Status().events, 100);
  ExpectExactCopy(*database_, *replica_, *second);
}

TEST_F(StoreReplicaTest, ResumesAfterTheProcessIsKilledMidCopy) {
  const std::string primary_path = dir_->File("primary.db");
  {
    std::unique_ptr<EventStore> file = OpenSqlite(primary_path);
    ASSERT_OK(Fill(*file, "order-", 50, 20000, 20));
  }
  replica_.reset();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child copies in small batches (one fsync each) until killed.
    SqliteOptions options;
    options.path = primary_path;
    absl::StatusOr<std::unique_ptr<EventStore>> primary =
        SqliteEventStore::Open(options);
    options.path = replica_path_;
    absl::StatusOr<std::unique_ptr<EventStore>> local =
        SqliteEventStore::Open(options);
    if (!primary.ok() || !local.ok()) _exit(2);
    ReplicaOptions replica_options;
    replica_options.batch_size = 50;
    absl::StatusOr<std::unique_ptr<StoreReplica>> replica =
        StoreReplica::Create(**primary, **local, replica_options);
    if (!replica.ok()) _exit(3);
    _exit((*replica)->SyncOnce().ok() ? 0 : 4);
  }
  // Kill it once a few batches are in (the replica file may not exist yet).
  int64_t seen = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (seen < 500 && absl::Now() < deadline) {
    if (std::filesystem::exists(replica_path_)) {
      std::unique_ptr<EventStore> probe = OpenSqlite(replica_path_);
      absl::StatusOr<Position> head =
          probe != nullptr ? probe->HeadPosition() : Position::Start();
      if (head.ok()) seen = static_cast<int64_t>(head->commit());
    }
    absl::SleepFor(absl::Milliseconds(5));  // polling a condition
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  ASSERT_GE(seen, 500) << "the child copied nothing within 60 s";
  const bool killed =
      WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL;
  RecordProperty("killed_mid_copy", killed ? "yes" : "no (it finished)");

  std::unique_ptr<EventStore> file = OpenSqlite(primary_path);
  replica_ = OpenSqlite(replica_path_);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StoreReplica> replica,
                       StoreReplica::Create(*file, *replica_, {}));
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult r, replica->SyncOnce());
  EXPECT_TRUE(r.caught_up);
  EXPECT_EQ(replica->Status().events, 20000);
  if (killed) {
    EXPECT_GT(r.events_copied, 0);
  }
  ExpectExactCopy(*file, *replica_, *replica);
}

TEST_F(StoreReplicaTest, ReadsProgressAgainAfterAnotherWriterImported) {
  ASSERT_OK(Fill(*database_, "order-", 2, 10));
  std::unique_ptr<StoreReplica> late = Make();
  ASSERT_OK(late->SyncOnce(0).status());  // attached at the start
  std::unique_ptr<StoreReplica> other = Make();
  ASSERT_OK(other->SyncOnce().status());
  ASSERT_OK(Fill(*database_, "order-", 2, 5));
  // Its batch fails whole (the replica's streams moved on)...
  EXPECT_THAT(late->SyncOnce(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("nothing of this batch was written")));
  // ...and the next sync starts from the replica's own progress.
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult r, late->SyncOnce());
  EXPECT_EQ(r.events_copied, 5);
  EXPECT_EQ(late->Status().events, 15);
  ExpectExactCopy(*database_, *replica_, *late);
}

TEST_F(StoreReplicaTest, FollowsTheLogInBackground) {
  ReplicaOptions options;
  options.poll_interval = absl::Milliseconds(50);
  std::unique_ptr<StoreReplica> replica = Make(options);
  ASSERT_OK(replica->Start());
  EXPECT_TRUE(replica->Status().running);
  EXPECT_THAT(replica->Start(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK(Fill(*primary_, absl::StrCat("r", round, "-"), 4, 40));
    ASSERT_OK_AND_ASSIGN(Position head, database_->HeadPosition());
    ASSERT_TRUE(replica->WaitForPosition(head, absl::Seconds(20))) << round;
  }
  replica->Stop();
  EXPECT_FALSE(replica->Status().running);
  ExpectExactCopy(*database_, *replica_, *replica);
}

TEST_F(StoreReplicaTest, PrimaryDownMidSyncLeavesWholeBatchesAndRetries) {
  ASSERT_OK(Fill(*database_, "order-", 5, 50));
  ReplicaOptions options;
  options.batch_size = 10;
  options.poll_interval = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(100);
  std::unique_ptr<StoreReplica> replica = Make(options);
  primary_->reads_before_down = 2;
  EXPECT_THAT(replica->SyncOnce(), StatusIs(absl::StatusCode::kUnavailable));
  ReplicaStatus status = replica->Status();
  EXPECT_THAT(status.last_error, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(status.events, 20);
  EXPECT_EQ(ReadEverything(*replica_).size(), 20u);
  std::vector<RecordedEvent> primary_events = ReadEverything(*database_);
  EXPECT_EQ(status.replica_position, primary_events[19].position);
  EXPECT_TRUE(log_->WaitFor(LogLevel::kWarning, "replica", "connection refused",
                            absl::Seconds(1)));

  // Background retries until the primary answers again.
  ASSERT_OK(replica->Start());
  primary_->reads_before_down = -1;
  primary_->down = false;
  ASSERT_TRUE(replica->WaitForPosition(primary_events.back().position,
                                       absl::Seconds(20)));
  EXPECT_TRUE(log_->WaitFor(LogLevel::kInfo, "replica", "works again",
                            absl::Seconds(5)));
  replica->Stop();
  EXPECT_OK(replica->Status().last_error);
  ExpectExactCopy(*database_, *replica_, *replica);
}

TEST_F(StoreReplicaTest, DeletedReplicaFileIsRebuiltWithAWarning) {
  ASSERT_OK(Fill(*database_, "order-", 5, 40));
  {
    std::unique_ptr<StoreReplica> replica = Make();
    ASSERT_OK(replica->SyncOnce().status());
  }
  replica_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(replica_path_ + suffix);
  }
  replica_ = OpenSqlite(replica_path_);
  std::unique_ptr<StoreReplica> rebuilt = Make();
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult r, rebuilt->SyncOnce());
  EXPECT_EQ(r.events_copied, 40);
  EXPECT_TRUE(log_->WaitFor(LogLevel::kWarning, "replica", "copying primary",
                            absl::ZeroDuration()));
  ExpectExactCopy(*database_, *replica_, *rebuilt);
}

TEST_F(StoreReplicaTest, RefusesAReplicaOfAnotherStore) {
  ASSERT_OK(Fill(*replica_, "local-", 1, 3));
  ASSERT_OK(Fill(*database_, "order-", 1, 3));
  std::unique_ptr<StoreReplica> replica = Make();
  EXPECT_THAT(replica->SyncOnce(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not copies of primary")));
  EXPECT_EQ(ReadEverything(*replica_).size(), 3u);
}

TEST_F(StoreReplicaTest, RefusesAPrimaryRestoredFromAnOlderBackup) {
  // A file primary, backed up after 10 events.
  const std::string primary_path = dir_->File("primary.db");
  const std::string backup_path = dir_->File("backup.db");
  std::unique_ptr<EventStore> file = OpenSqlite(primary_path);
  ASSERT_OK(Fill(*file, "order-", 2, 10));
  file.reset();
  std::filesystem::copy_file(primary_path, backup_path);
  file = OpenSqlite(primary_path);
  ASSERT_OK(Fill(*file, "order-", 2, 10));
  ASSERT_OK_AND_ASSIGN(Position head, file->HeadPosition());
  ASSERT_EQ(head, Position::At(20));
  {
    ReplicaOptions options;
    options.log_sink = log_;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<StoreReplica> replica,
                         StoreReplica::Create(*file, *replica_, options));
    ASSERT_OK(replica->SyncOnce().status());
  }
  // Restored from the backup: its head (10) is behind the replica (20).
  file.reset();
  for (const char* suffix : {"-wal", "-shm"}) {
    std::filesystem::remove(primary_path + suffix);
  }
  std::filesystem::copy_file(backup_path, primary_path,
                             std::filesystem::copy_options::overwrite_existing);
  file = OpenSqlite(primary_path);
  ReplicaOptions options;
  options.log_sink = log_;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StoreReplica> replica,
                       StoreReplica::Create(*file, *replica_, options));
  EXPECT_THAT(
      replica->SyncOnce(),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               AllOf(HasSubstr("position 20"), HasSubstr("head is 10"))));
  EXPECT_TRUE(log_->WaitFor(LogLevel::kError, "replica", "older backup",
                            absl::ZeroDuration()));
  // New writes move the head past the replica's position: the event there
  // is another one.
  ASSERT_OK(Fill(*file, "order-", 2, 15));
  EXPECT_THAT(replica->SyncOnce(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("primary position 20"),
                             HasSubstr("older backup"))));
  EXPECT_EQ(ReadEverything(*replica_).size(), 20u);
  EXPECT_EQ(replica->replica_position(), Position::At(20));
}

TEST_F(StoreReplicaTest, StatusReportsLagAfterKnownOperations) {
  ASSERT_OK(Fill(*database_, "order-", 2, 10));
  ReplicaOptions options;
  options.batch_size = 4;
  std::unique_ptr<StoreReplica> replica = Make(options);
  ReplicaStatus before = replica->Status();
  EXPECT_EQ(before.last_sync, absl::InfinitePast());
  EXPECT_EQ(before.replica_position, Position::Start());

  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult r, replica->SyncOnce(4));
  EXPECT_FALSE(r.caught_up);
  ReplicaStatus partial = replica->Status();
  EXPECT_EQ(partial.replica_position, Position::At(4));
  EXPECT_EQ(partial.primary_head, Position::At(10));
  EXPECT_EQ(partial.lag_events, 6);
  EXPECT_GE(partial.lag_time, absl::ZeroDuration());
  EXPECT_LE(partial.lag_time, absl::Now() - start + absl::Seconds(60));
  EXPECT_EQ(partial.last_sync, absl::InfinitePast());
  EXPECT_GE(partial.last_contact, start);

  ASSERT_OK_AND_ASSIGN(r, replica->SyncOnce());
  EXPECT_TRUE(r.caught_up);
  ReplicaStatus caught = replica->Status();
  EXPECT_EQ(caught.lag_events, 0);
  EXPECT_EQ(caught.lag_time, absl::ZeroDuration());
  EXPECT_GE(caught.last_sync, start);

  // Three more: the status keeps the last contact's figures until a sync.
  ASSERT_OK(Fill(*database_, "order-", 2, 3));
  EXPECT_EQ(replica->Status().lag_events, 0);
  ASSERT_OK(replica->SyncOnce(1).status());
  EXPECT_EQ(replica->Status().lag_events, 2);
  EXPECT_EQ(replica->Status().replica_position, Position::At(11));

  // The primary unreachable: the figures stay as last reachable.
  primary_->down = true;
  EXPECT_THAT(replica->SyncOnce(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(replica->Status().lag_events, 2);
  EXPECT_THAT(replica->Status().last_error,
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(StoreReplicaTest, ReportsBatchesAndErrorsToInstrumentation) {
  ASSERT_OK(Fill(*database_, "order-", 2, 12));
  auto instrumentation = std::make_shared<RecordingInstrumentation>();
  ReplicaOptions options;
  options.batch_size = 5;
  options.instrumentation = instrumentation;
  std::unique_ptr<StoreReplica> replica = Make(options);
  ASSERT_OK(replica->SyncOnce().status());
  std::vector<RecordedReplicaBatch> batches =
      instrumentation->replica_batches();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].events, 5);
  EXPECT_EQ(batches[0].lag_events, 7);
  EXPECT_EQ(batches[1].events, 5);
  EXPECT_EQ(batches[1].lag_events, 2);
  EXPECT_EQ(batches[2].events, 2);
  EXPECT_EQ(batches[2].lag_events, 0);
  EXPECT_EQ(batches[2].lag_time, absl::ZeroDuration());
  EXPECT_EQ(instrumentation->replica_errors(), 0);
  primary_->down = true;
  EXPECT_FALSE(replica->SyncOnce().ok());
  EXPECT_EQ(instrumentation->replica_errors(), 1);
}

#ifdef EVENTSTORE_TEST_POSTGRES

absl::StatusOr<std::unique_ptr<EventStore>> OpenPostgres(
    const PostgresServer& server) {
  PostgresOptions pg;
  pg.conninfo = server.url();
  pg.connect_timeout = absl::Seconds(2);
  return PostgresEventStore::Open(pg);
}

TEST(ReplicaPostgresTest, CopiesAndFollowsThroughAnOutage) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start({}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> primary,
                       OpenPostgres(*server));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  std::unique_ptr<EventStore> local = OpenSqlite(dir->File("replica.db"));
  ASSERT_OK(Fill(*primary, "order-", 100, 10000, 50));
  ASSERT_OK(Fill(*primary, "audit-", 10, 500, 50));

  auto log = std::make_shared<RecordingLogSink>();
  ReplicaOptions options;
  options.stream_prefixes = {"order-"};
  options.poll_interval = absl::Milliseconds(100);
  options.max_backoff = absl::Milliseconds(300);
  options.log_sink = log;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StoreReplica> replica,
                       StoreReplica::Create(*primary, *local, options));
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult r, replica->SyncOnce());
  EXPECT_EQ(r.events_copied, 10000);
  ExpectExactCopy(*primary, *local, *replica);

  ASSERT_OK(replica->Start());
  ASSERT_OK(server->Stop());
  ASSERT_TRUE(
      log->WaitFor(LogLevel::kWarning, "replica", "failed", absl::Seconds(30)));
  EXPECT_EQ(replica->Status().last_error.code(),
            absl::StatusCode::kUnavailable);
  // Reads of the replica go on during the outage.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stream,
                       local->ReadStream("order-3"));
  EXPECT_EQ(stream.size(), 100u);

  ASSERT_OK(server->StartAgain());
  ASSERT_OK(Fill(*primary, "order-", 10, 200, 20));
  ASSERT_OK_AND_ASSIGN(Position head, primary->HeadPosition());
  ASSERT_TRUE(replica->WaitForPosition(head, absl::Seconds(30)));
  ASSERT_TRUE(log->WaitFor(LogLevel::kInfo, "replica", "works again",
                           absl::Seconds(5)));
  replica->Stop();
  EXPECT_EQ(replica->Status().events, 10200);
  ExpectExactCopy(*primary, *local, *replica);
}

#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore::test
