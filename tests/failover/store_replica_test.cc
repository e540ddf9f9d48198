// StoreReplica: copying a primary's log into a local SQLite store, resuming,
// following in background, faults (primary down, replica file deleted, a
// primary restored from an older backup), on SQLite and (one group)
// PostgreSQL primaries.

#include "eventstore/store_replica.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/status_macros.h"
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
using ::testing::IsEmpty;

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

// A second event type, for event_types filters.
EventData Tock(std::string payload) {
  EventData e = Tick(std::move(payload));
  e.type = "eventstore.test.v1.Tock";
  return e;
}

// Doubles the position of every event of a SQLite store: a log with gaps
// (as PostgreSQL's may have), so that a replica's positions (1, 2, 3, ...)
// differ from the primary's. Later appends continue after the last one.
absl::Status SpreadPositions(EventStore& sqlite_store) {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<SqlTransaction> tx,
                      sqlite_store.BeginTransaction());
  ES_RETURN_IF_ERROR(tx->Execute("UPDATE events SET position = -position"));
  ES_RETURN_IF_ERROR(tx->Execute("UPDATE events SET position = -2 * position"));
  return tx->Commit();
}

// `actual` holds the events of `expected`, in the same order, at the same
// (primary) positions.
void ExpectSameEvents(const std::vector<RecordedEvent>& actual,
                      const std::vector<RecordedEvent>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(actual[i].id, expected[i].id);
    EXPECT_EQ(actual[i].stream, expected[i].stream);
    EXPECT_EQ(actual[i].version, expected[i].version);
    EXPECT_EQ(actual[i].type, expected[i].type);
    EXPECT_EQ(actual[i].payload, expected[i].payload);
    EXPECT_EQ(actual[i].position, expected[i].position);
  }
}

// Reads `a` and `b` page by page with the same options from `from` until
// `a` reaches the end of its log, and expects the same pages: events,
// positions, next_position and end_of_log. `b`'s last page may move further
// when it is empty (a replica passing over what it does not copy), not
// beyond `head`. Returns the pages read.
template <typename A, typename B>
int ExpectSamePages(A& a, B& b, ReadAllOptions options, Position head) {
  int pages = 0;
  while (true) {
    absl::StatusOr<ReadAllPage> expected = a.ReadAll(options);
    absl::StatusOr<ReadAllPage> actual = b.ReadAll(options);
    EXPECT_OK(expected.status());
    EXPECT_OK(actual.status());
    if (!expected.ok() || !actual.ok()) return pages;
    SCOPED_TRACE(absl::StrCat("page ", pages, " from ",
                              options.from_position.ToString()));
    ++pages;
    ExpectSameEvents(actual->events, expected->events);
    EXPECT_EQ(actual->end_of_log, expected->end_of_log);
    if (expected->events.empty()) {
      EXPECT_GE(actual->next_position, expected->next_position);
      EXPECT_LE(actual->next_position, std::max(head, options.from_position));
    } else {
      EXPECT_EQ(actual->next_position, expected->next_position);
    }
    if (expected->end_of_log || actual->end_of_log || pages > 10000) {
      return pages;
    }
    options.from_position = expected->next_position;
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

TEST_F(StoreReplicaTest, FollowsDeletionsAndRetention) {
  ASSERT_OK(Fill(*database_, "order-", 3, 30));
  StreamMetadata keep_two;
  keep_two.max_count = 2;
  ASSERT_OK(database_->SetStreamMetadata("order-2", keep_two));
  std::unique_ptr<StoreReplica> replica = Make();
  ASSERT_OK(replica->SyncOnce().status());
  // Retention set before the first sync holds on the replica at once.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> kept,
                       replica->ReadStream("order-2", {}));
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].version, 9);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> before,
                       replica->ReadStream("order-1", {}));
  EXPECT_EQ(before.size(), 10u);

  ASSERT_OK(database_->DeleteStream("order-1", ExpectedVersion::Exactly(10),
                                    DeleteMode::kSoft));
  ASSERT_OK(database_->DeleteStream("order-0", ExpectedVersion::Any(),
                                    DeleteMode::kHard));
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult synced, replica->SyncOnce());
  EXPECT_EQ(synced.events_copied, 2);  // the two markers
  // The replica reads as the primary does: deleted streams are absent, on
  // the replica's own store and through the StoreReplica.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> deleted,
                       replica->ReadStream("order-1", {}));
  EXPECT_THAT(deleted, IsEmpty());
  ASSERT_OK_AND_ASSIGN(deleted, replica_->ReadStream("order-1"));
  EXPECT_THAT(deleted, IsEmpty());
  ASSERT_OK_AND_ASSIGN(int64_t hard_version, replica->StreamVersion("order-0"));
  EXPECT_EQ(hard_version, 0);
  ASSERT_OK_AND_ASSIGN(StreamInfo info, replica_->GetStreamInfo("order-0"));
  EXPECT_EQ(info.state, StreamStatus::kHardDeleted);
  ASSERT_OK_AND_ASSIGN(info, replica_->GetStreamInfo("order-1"));
  EXPECT_EQ(info.state, StreamStatus::kSoftDeleted);
  // ReadAll through the replica shows what the primary's shows: the
  // markers, and no event of the deleted streams.
  std::vector<std::string> primary_ids;
  for (const RecordedEvent& e : ReadEverything(*database_)) {
    primary_ids.push_back(
        absl::StrCat(e.id.ToString(), "@", e.position.ToString()));
  }
  std::vector<std::string> replica_ids;
  ReadAllOptions page_options;
  while (true) {
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, replica->ReadAll(page_options));
    for (const RecordedEvent& e : page.events) {
      replica_ids.push_back(
          absl::StrCat(e.id.ToString(), "@", e.position.ToString()));
    }
    page_options.from_position = page.next_position;
    if (page.end_of_log) break;
  }
  EXPECT_EQ(replica_ids, primary_ids);
  EXPECT_EQ(primary_ids.size(), 2u + 2u);  // two markers; order-2 keeps 2
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
  // Caught up once, at the status's last_sync.
  EXPECT_THAT(instrumentation->replica_caught_up(),
              ::testing::ElementsAre(replica->Status().last_sync));
  primary_->down = true;
  EXPECT_FALSE(replica->SyncOnce().ok());
  EXPECT_EQ(instrumentation->replica_errors(), 1);
}

TEST_F(StoreReplicaTest, ReadsCarryThePrimarysPositions) {
  ASSERT_OK(Fill(*database_, "order-", 5, 50, 2));
  ASSERT_OK(SpreadPositions(*database_));
  ASSERT_OK(Fill(*database_, "customer-", 3, 30));
  ASSERT_OK(Fill(*database_, "order-", 5, 20));
  ReplicaOptions options;
  options.batch_size = 9;
  std::unique_ptr<StoreReplica> replica = Make(options);
  ASSERT_OK(replica->SyncOnce().status());
  ASSERT_OK_AND_ASSIGN(Position head, database_->HeadPosition());

  // The copy's own positions differ from the primary's...
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> own,
                       replica_->ReadStream("order-2"));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> primary,
                       database_->ReadStream("order-2"));
  ASSERT_EQ(own.size(), 14u);
  EXPECT_NE(own[0].position, primary[0].position);
  // ...the replica's reads answer with the primary's.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       replica->ReadStream("order-2", {}));
  ExpectSameEvents(read, primary);
  // Again (the positions are remembered now), and in part.
  ASSERT_OK_AND_ASSIGN(read, replica->ReadStream("order-2", {}));
  ExpectSameEvents(read, primary);
  ReadStreamOptions part;
  part.from_version = 4;
  part.max_count = 3;
  ASSERT_OK_AND_ASSIGN(read, replica->ReadStream("order-2", part));
  ExpectSameEvents(read, {primary.begin() + 3, primary.begin() + 6});
  ReadStreamOptions backward;
  backward.direction = Direction::kBackward;
  backward.from_version = 8;
  backward.max_count = 5;
  ASSERT_OK_AND_ASSIGN(read, replica->ReadStream("customer-1", backward));
  ASSERT_OK_AND_ASSIGN(primary, database_->ReadStream("customer-1", backward));
  ExpectSameEvents(read, primary);
  ASSERT_OK_AND_ASSIGN(read, replica->ReadStream("order-9", {}));
  EXPECT_TRUE(read.empty());

  // The whole log, page by page, as the primary pages it.
  ReadAllOptions all;
  all.max_count = 7;
  EXPECT_EQ(ExpectSamePages(*database_, *replica, all, head), 15);
  ReadAllOptions customers;
  customers.filter.stream_prefix = "customer-";
  customers.max_count = 4;
  EXPECT_EQ(ExpectSamePages(*database_, *replica, customers, head), 8);

  ASSERT_OK_AND_ASSIGN(int64_t version, replica->StreamVersion("order-2"));
  EXPECT_EQ(version, 14);
  ASSERT_OK_AND_ASSIGN(version, replica->StreamVersion("order-9"));
  EXPECT_EQ(version, 0);
  ASSERT_OK_AND_ASSIGN(bool exists, replica->EventExists(primary[0].id));
  EXPECT_TRUE(exists);
  ASSERT_OK_AND_ASSIGN(exists, replica->EventExists(Uuid::Generate()));
  EXPECT_FALSE(exists);
}

TEST_F(StoreReplicaTest, ReadsWithPrefixesCarryThePrimarysPositions) {
  for (int round = 0; round < 4; ++round) {
    ASSERT_OK(Fill(*database_, "order-", 3, 12, 3));
    ASSERT_OK(Fill(*database_, "audit-", 3, 9));
    ASSERT_OK(Fill(*database_, "customer-", 2, 4));
  }
  ReplicaOptions options;
  options.stream_prefixes = {"order-", "customer-"};
  options.batch_size = 5;
  std::unique_ptr<StoreReplica> replica = Make(options);
  ASSERT_OK(replica->SyncOnce().status());
  ASSERT_OK_AND_ASSIGN(Position head, database_->HeadPosition());

  for (const char* stream : {"order-0", "order-2", "customer-1"}) {
    SCOPED_TRACE(stream);
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                         replica->ReadStream(stream, {}));
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> primary,
                         database_->ReadStream(stream));
    EXPECT_FALSE(read.empty());
    ExpectSameEvents(read, primary);
  }
  // The copy's own positions differ from the primary's (audit- events are
  // not copied).
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> own,
                       replica_->ReadStream("customer-1"));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> primary,
                       database_->ReadStream("customer-1"));
  EXPECT_NE(own.back().position, primary.back().position);

  for (const char* prefix : {"order-", "customer-", "order-1"}) {
    SCOPED_TRACE(prefix);
    ReadAllOptions read;
    read.filter.stream_prefix = prefix;
    read.max_count = 5;
    EXPECT_GT(ExpectSamePages(*database_, *replica, read, head), 1);
  }
}

TEST_F(StoreReplicaTest, ReadAllFromAPrimaryPositionContinuesAsThePrimary) {
  for (int round = 0; round < 5; ++round) {
    ASSERT_OK(Fill(*database_, "order-", 4, 20, 2));
    ASSERT_OK(Fill(*database_, "audit-", 2, 7));
  }
  ASSERT_OK(SpreadPositions(*database_));
  ASSERT_OK(Fill(*database_, "order-", 4, 10));
  ASSERT_OK(Fill(*database_, "audit-", 2, 6));  // trailing, not copied
  // Two prefixes: the replica reads the whole log, passing over audit-.
  ReplicaOptions options;
  options.stream_prefixes = {"order-", "customer-"};
  options.batch_size = 11;
  std::unique_ptr<StoreReplica> replica = Make(options);
  ASSERT_OK(replica->SyncOnce().status());
  ASSERT_OK_AND_ASSIGN(Position head, database_->HeadPosition());

  // From the start, from events copied and from events passed over, from
  // between two positions (a gap), and from the head.
  const std::vector<RecordedEvent> log = ReadEverything(*database_);
  ASSERT_EQ(log.size(), 151u);
  std::vector<Position> froms = {Position::Start(), head};
  for (size_t i : {0, 1, 20, 21, 25, 77, 101, 134, 135, 144, 145, 150}) {
    froms.push_back(log[i].position);
  }
  froms.push_back(Position::At(log[60].position.commit() - 1));
  for (const Position& from : froms) {
    for (int max_count : {1, 6, 1000}) {
      SCOPED_TRACE(
          absl::StrCat("from ", from.ToString(), ", max_count ", max_count));
      ReadAllOptions read;
      read.from_position = from;
      read.max_count = max_count;
      read.filter.stream_prefix = "order-";
      ExpectSamePages(*database_, *replica, read, head);
    }
  }

  // At the end of its copy, an empty page moves the reader past the
  // trailing events the replica passed over, to where it read up to.
  ReadAllOptions end;
  end.filter.stream_prefix = "order-";
  end.from_position = log[144].position;  // the last order- event
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, replica->ReadAll(end));
  EXPECT_TRUE(page.events.empty());
  EXPECT_TRUE(page.end_of_log);
  EXPECT_EQ(page.next_position, head);
  EXPECT_EQ(replica->Status().read_position, head);
}

TEST_F(StoreReplicaTest, ReadAllFiltersApplyAsOnAnyStore) {
  for (int i = 0; i < 30; ++i) {
    const std::string stream = absl::StrCat("order-", i % 3);
    EventData e = i % 3 == 1 ? Tock(absl::StrCat(i)) : Tick(absl::StrCat(i));
    e.metadata.set_tenant_id(i % 2 == 0 ? "tenant-a" : "tenant-b");
    ASSERT_OK(database_->Append(stream, ExpectedVersion::Any(), {e}).status());
    ASSERT_OK(Fill(*database_, "audit-", 1, 1));
  }
  ReplicaOptions options;
  options.stream_prefixes = {"order-"};
  std::unique_ptr<StoreReplica> replica = Make(options);
  ASSERT_OK(replica->SyncOnce().status());
  ASSERT_OK_AND_ASSIGN(Position head, database_->HeadPosition());

  ReadAllOptions tocks;
  tocks.filter.stream_prefix = "order-";
  tocks.filter.event_types = {"eventstore.test.v1.Tock"};
  tocks.max_count = 3;
  EXPECT_EQ(ExpectSamePages(*database_, *replica, tocks, head), 4);
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, replica->ReadAll(tocks));
  ASSERT_EQ(page.events.size(), 3u);
  for (const RecordedEvent& e : page.events) {
    EXPECT_EQ(e.type, "eventstore.test.v1.Tock");
  }
  ReadAllOptions tenant;
  tenant.filter.stream_prefix = "order-2";
  tenant.filter.tenant_id = "tenant-b";
  tenant.filter.event_types = {kTickType};
  tenant.max_count = 2;
  EXPECT_EQ(ExpectSamePages(*database_, *replica, tenant, head), 3);
}

TEST_F(StoreReplicaTest, ReadsOutsideThePrefixesAreUnavailable) {
  ASSERT_OK(Fill(*database_, "order-", 2, 6));
  ASSERT_OK(Fill(*database_, "audit-", 2, 6));
  ReplicaOptions options;
  options.stream_prefixes = {"order-", "customer-"};
  std::unique_ptr<StoreReplica> replica = Make(options);
  ASSERT_OK(replica->SyncOnce().status());

  const auto unavailable = [](const std::string& what) {
    return StatusIs(
        absl::StatusCode::kUnavailable,
        AllOf(HasSubstr(what), HasSubstr("copies only streams starting with "
                                         "order-, customer-")));
  };
  EXPECT_THAT(replica->ReadStream("audit-1", {}),
              unavailable("stream 'audit-1'"));
  EXPECT_THAT(replica->StreamVersion("audit-1"),
              unavailable("stream 'audit-1'"));
  EXPECT_THAT(replica->ReadStream("order", {}), unavailable("stream 'order'"));
  ReadAllOptions whole;
  EXPECT_THAT(replica->ReadAll(whole), unavailable("the whole log"));
  ReadAllOptions ord;
  ord.filter.stream_prefix = "ord";
  EXPECT_THAT(replica->ReadAll(ord), unavailable("stream prefix 'ord'"));
  ReadAllOptions audit;
  audit.filter.stream_prefix = "audit-";
  EXPECT_THAT(replica->ReadAll(audit), unavailable("stream prefix 'audit-'"));
  // Narrower prefixes are covered; an event of a stream not copied is not
  // in the copy.
  ReadAllOptions one;
  one.filter.stream_prefix = "order-1";
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, replica->ReadAll(one));
  EXPECT_EQ(page.events.size(), 3u);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> audit_events,
                       database_->ReadStream("audit-0"));
  ASSERT_OK_AND_ASSIGN(bool exists, replica->EventExists(audit_events[0].id));
  EXPECT_FALSE(exists);
}

TEST_F(StoreReplicaTest, ReadsBeforeTheFirstSyncAreFailedPrecondition) {
  ASSERT_OK(Fill(*database_, "order-", 2, 6));
  std::unique_ptr<StoreReplica> replica = Make();
  const auto not_yet = StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("not reached the primary yet"));
  EXPECT_THAT(replica->ReadStream("order-1", {}), not_yet);
  EXPECT_THAT(replica->ReadAll({}), not_yet);
  EXPECT_THAT(replica->StreamVersion("order-1"), not_yet);
  EXPECT_THAT(replica->EventExists(Uuid::Generate()), not_yet);
  EXPECT_THAT(replica->TranslatePosition(Position::Start()), not_yet);

  // Once a sync attached, the copy answers, also while the primary is
  // down.
  ASSERT_OK(replica->SyncOnce().status());
  primary_->down = true;
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       replica->ReadStream("order-1", {}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> primary,
                       database_->ReadStream("order-1"));
  ExpectSameEvents(read, primary);
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, replica->ReadAll({}));
  EXPECT_EQ(page.events.size(), 6u);
}

TEST_F(StoreReplicaTest, ConcurrentReadsDuringSyncSkipNothing) {
  // Two prefixes: the replica reads the whole log, passing over audit-, and
  // empty pages move readers to where it read up to.
  ReplicaOptions options;
  options.stream_prefixes = {"order-", "customer-"};
  options.batch_size = 13;
  options.poll_interval = absl::Milliseconds(10);
  std::unique_ptr<StoreReplica> replica = Make(options);
  ASSERT_OK(Fill(*database_, "order-", 2, 4));
  ASSERT_OK(replica->SyncOnce().status());
  ASSERT_OK(replica->Start());

  // A writer appends to copied and uncopied streams while a reader pages
  // through the replica, following next_position.
  std::atomic<bool> written{false};
  std::thread writer([&] {
    for (int i = 0; i < 60; ++i) {
      EXPECT_OK(Fill(*database_, "order-", 5, 7, 7));
      EXPECT_OK(Fill(*database_, "audit-", 3, 5));
    }
    written = true;
  });
  ReadAllOptions primary_read;
  primary_read.filter.stream_prefix = "order-";
  primary_read.max_count = 100000;
  std::vector<RecordedEvent> seen;
  ReadAllOptions read;
  read.filter.stream_prefix = "order-";
  read.max_count = 17;
  bool finished = false;
  bool done = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!done && absl::Now() < deadline) {
    if (!finished && written.load()) {
      // Every event written is in the replica before the last pages.
      finished = true;
      ASSERT_OK_AND_ASSIGN(ReadAllPage all, database_->ReadAll(primary_read));
      ASSERT_TRUE(replica->WaitForPosition(all.events.back().position,
                                           absl::Seconds(30)));
    }
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, replica->ReadAll(read));
    for (RecordedEvent& e : page.events) seen.push_back(std::move(e));
    EXPECT_GE(page.next_position, read.from_position);
    read.from_position = page.next_position;
    done = finished && page.end_of_log;
  }
  writer.join();
  replica->Stop();
  ASSERT_TRUE(done) << "the reader did not reach the end within 60 s";
  ASSERT_OK_AND_ASSIGN(ReadAllPage expected, database_->ReadAll(primary_read));
  ASSERT_EQ(expected.events.size(), 4u + 60 * 7);
  ExpectSameEvents(seen, expected.events);
}

#ifdef EVENTSTORE_TEST_POSTGRES

// A real PostgreSQL server (stopped and started by the tests), a primary
// store on it, and an empty SQLite store (replica.db in a temp dir) for the
// replica.
class ReplicaPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, PostgresServer::Start({}));
    PostgresOptions pg;
    pg.conninfo = server_->url();
    pg.connect_timeout = absl::Seconds(2);
    ASSERT_OK_AND_ASSIGN(primary_, PostgresEventStore::Open(pg));
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    local_ = OpenSqlite(dir_->File("replica.db"));
    ASSERT_NE(local_, nullptr);
  }

  std::unique_ptr<PostgresServer> server_;
  std::unique_ptr<EventStore> primary_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<EventStore> local_;
};

TEST_F(ReplicaPostgresTest, CopiesAndFollowsThroughAnOutage) {
  ASSERT_OK(Fill(*primary_, "order-", 100, 10000, 50));
  ASSERT_OK(Fill(*primary_, "audit-", 10, 500, 50));

  auto log = std::make_shared<RecordingLogSink>();
  ReplicaOptions options;
  options.stream_prefixes = {"order-"};
  options.poll_interval = absl::Milliseconds(100);
  options.max_backoff = absl::Milliseconds(300);
  options.log_sink = log;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StoreReplica> replica,
                       StoreReplica::Create(*primary_, *local_, options));
  ASSERT_OK_AND_ASSIGN(ReplicaSyncResult r, replica->SyncOnce());
  EXPECT_EQ(r.events_copied, 10000);
  ExpectExactCopy(*primary_, *local_, *replica);

  ASSERT_OK(replica->Start());
  ASSERT_OK(server_->Stop());
  ASSERT_TRUE(
      log->WaitFor(LogLevel::kWarning, "replica", "failed", absl::Seconds(30)));
  EXPECT_EQ(replica->Status().last_error.code(),
            absl::StatusCode::kUnavailable);
  // Reads of the replica go on during the outage.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stream,
                       local_->ReadStream("order-3"));
  EXPECT_EQ(stream.size(), 100u);

  ASSERT_OK(server_->StartAgain());
  ASSERT_OK(Fill(*primary_, "order-", 10, 200, 20));
  ASSERT_OK_AND_ASSIGN(Position head, primary_->HeadPosition());
  ASSERT_TRUE(replica->WaitForPosition(head, absl::Seconds(30)));
  ASSERT_TRUE(log->WaitFor(LogLevel::kInfo, "replica", "works again",
                           absl::Seconds(5)));
  replica->Stop();
  EXPECT_EQ(replica->Status().events, 10200);
  ExpectExactCopy(*primary_, *local_, *replica);
}

// A replica store that keeps no source positions beside its events (a
// PostgreSQL schema) maps them with SourcePositions, and remembers them: a
// second read of the stream gives the same positions.
TEST_F(ReplicaPostgresTest, AReplicaStoreWithoutSourcePositionsLooksThemUp) {
  ASSERT_OK(Fill(*primary_, "order-", 5, 100, 3));
  ASSERT_OK(Fill(*primary_, "audit-", 2, 20));
  PostgresOptions pg;
  pg.conninfo = server_->url();
  pg.schema = "replica";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> copy,
                       PostgresEventStore::Open(pg));
  ReplicaOptions options;
  options.stream_prefixes = {"order-"};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StoreReplica> replica,
                       StoreReplica::Create(*primary_, *copy, options));
  ASSERT_OK(replica->SyncOnce().status());
  for (int read = 0; read < 2; ++read) {
    for (int s = 0; s < 5; ++s) {
      const std::string stream = absl::StrCat("order-", s);
      ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> want,
                           primary_->ReadStream(stream));
      ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> got,
                           replica->ReadStream(stream, ReadStreamOptions()));
      ASSERT_EQ(got.size(), want.size()) << stream;
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].id, want[i].id);
        EXPECT_EQ(got[i].position, want[i].position) << stream << " " << i;
      }
    }
  }
}

TEST_F(ReplicaPostgresTest, ReadsCarryThePrimarysPositionsThroughAnOutage) {
  for (int round = 0; round < 3; ++round) {
    ASSERT_OK(Fill(*primary_, "order-", 10, 300, 3));
    ASSERT_OK(Fill(*primary_, "audit-", 4, 40));
  }
  ReplicaOptions options;
  options.stream_prefixes = {"order-"};
  options.batch_size = 250;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<StoreReplica> replica,
                       StoreReplica::Create(*primary_, *local_, options));
  ASSERT_OK(replica->SyncOnce().status());
  ASSERT_OK_AND_ASSIGN(Position head, primary_->HeadPosition());

  // ReadAll from the start and from the middle of the log (an event copied,
  // an event passed over), page by page as the primary pages it.
  const std::vector<RecordedEvent> log = ReadEverything(*primary_);
  ASSERT_EQ(log.size(), 1020u);
  ASSERT_EQ(log[500].stream.substr(0, 6), "order-");
  ASSERT_EQ(log[650].stream.substr(0, 6), "audit-");
  for (const Position& from :
       {Position::Start(), log[500].position, log[650].position}) {
    ReadAllOptions read;
    read.from_position = from;
    read.filter.stream_prefix = "order-";
    read.max_count = 97;
    EXPECT_GT(ExpectSamePages(*primary_, *replica, read, head), 1);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> expected,
                       primary_->ReadStream("order-3"));
  ASSERT_EQ(expected.size(), 90u);

  // During an outage the replica answers as the primary did.
  ASSERT_OK(server_->Stop());
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       replica->ReadStream("order-3", {}));
  ExpectSameEvents(read, expected);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> own,
                       local_->ReadStream("order-3"));
  EXPECT_NE(own[0].position, expected[0].position);
  ReadAllOptions from_middle;
  from_middle.from_position = log[500].position;
  from_middle.filter.stream_prefix = "order-3";
  from_middle.max_count = 1000;
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, replica->ReadAll(from_middle));
  std::vector<RecordedEvent> later;
  for (const RecordedEvent& e : expected) {
    if (e.position > log[500].position) later.push_back(e);
  }
  EXPECT_FALSE(later.empty());
  ExpectSameEvents(page.events, later);
  EXPECT_TRUE(page.end_of_log);
}

#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore::test
