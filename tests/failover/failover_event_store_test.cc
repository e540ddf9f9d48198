// FailoverEventStore: journaling appends while the primary is unreachable,
// replaying them in order on recovery, parking conflicts, resuming after a
// stop. The primary is a SQLite store behind a switch that makes it
// unreachable; one test takes a real PostgreSQL server down and up.

#include "eventstore/failover_event_store.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/outbox_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/failover/failover_fixture.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#endif

namespace eventstore::test {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using Mode = FailoverStatus::Mode;

// Every event in the journal, in the order journaled.
std::vector<RecordedEvent> JournalEvents(FailoverEventStore& store) {
  ReadAllOptions options;
  options.max_count = 100000;
  absl::StatusOr<ReadAllPage> page = store.journal().ReadAll(options);
  EXPECT_OK(page);
  return page.ok() ? std::move(page->events) : std::vector<RecordedEvent>{};
}

class FailoverEventStoreTest : public FailoverFixture {
 protected:
  // A failover store over database_ (through a switch, kept in primary_)
  // and the journal file; no health-check thread unless `interval` is set.
  std::unique_ptr<FailoverEventStore> Open(
      bool allow_fallback = true,
      absl::Duration interval = absl::ZeroDuration(), int64_t page_size = 500) {
    FailoverOptions options;
    options.allow_fallback = allow_fallback;
    options.health_check_interval = interval;
    options.replay_page_size = page_size;
    return OpenFailover(options);
  }
};

TEST_F(FailoverEventStoreTest, CreateRefusesMissingStoresAndBadOptions) {
  FailoverOptions options;
  EXPECT_THAT(FailoverEventStore::Create(nullptr, nullptr, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("primary: no store given")));
  SqliteOptions memory;
  memory.path = ":memory:";
  ASSERT_OK_AND_ASSIGN(auto primary, SqliteEventStore::Open(memory));
  EXPECT_THAT(FailoverEventStore::Create(std::move(primary), nullptr, options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("journal: no store given")));
  ASSERT_OK_AND_ASSIGN(primary, SqliteEventStore::Open(memory));
  ASSERT_OK_AND_ASSIGN(auto journal, SqliteEventStore::Open(memory));
  options.replay_page_size = 0;
  EXPECT_THAT(FailoverEventStore::Create(std::move(primary), std::move(journal),
                                         options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("replay_page_size: 0 is below 1")));
}

TEST_F(FailoverEventStoreTest,
       CreateRefusesAJournalWithLimitsBelowThePrimarys) {
  SqliteOptions memory;
  memory.path = ":memory:";
  FailoverOptions options;
  // A journal with the default limits cannot hold "failover:" + a stream
  // name of the primary's longest.
  ASSERT_OK_AND_ASSIGN(auto primary, SqliteEventStore::Open(memory));
  ASSERT_OK_AND_ASSIGN(auto journal, SqliteEventStore::Open(memory));
  EXPECT_THAT(
      FailoverEventStore::Create(std::move(primary), std::move(journal),
                                 options),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("max_stream_name_bytes is 255, below the 264"),
                     HasSubstr("JournalLimits"))));
  // Each limit is checked: here only the metadata's falls short.
  SqliteOptions short_metadata = memory;
  short_metadata.limits = FailoverEventStore::JournalLimits(StoreLimits());
  short_metadata.limits.max_metadata_bytes = StoreLimits().max_metadata_bytes;
  ASSERT_OK_AND_ASSIGN(primary, SqliteEventStore::Open(memory));
  ASSERT_OK_AND_ASSIGN(journal, SqliteEventStore::Open(short_metadata));
  EXPECT_THAT(FailoverEventStore::Create(std::move(primary), std::move(journal),
                                         options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_metadata_bytes")));
  // Sized from the primary's limits, it is taken.
  SqliteOptions sized = memory;
  sized.limits = FailoverEventStore::JournalLimits(StoreLimits());
  ASSERT_OK_AND_ASSIGN(primary, SqliteEventStore::Open(memory));
  ASSERT_OK_AND_ASSIGN(journal, SqliteEventStore::Open(sized));
  EXPECT_OK(FailoverEventStore::Create(std::move(primary), std::move(journal),
                                       options));
}

TEST_F(FailoverEventStoreTest, StreamNamesOfThePrimarysLongestAreJournaled) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  const StoreLimits limits;
  for (size_t size : {size_t{247}, limits.max_stream_name_bytes}) {
    const std::string stream(size, 's');
    // Metadata of the largest size the primary takes, before the journal
    // adds its properties.
    EventData event = Event("during the outage");
    std::string& note = (*event.metadata.mutable_properties())["note"];
    note.assign(limits.max_metadata_bytes - 32, 'n');
    while (event.metadata.ByteSizeLong() < limits.max_metadata_bytes) {
      note.push_back('n');
    }
    while (event.metadata.ByteSizeLong() > limits.max_metadata_bytes) {
      note.pop_back();
    }
    SCOPED_TRACE(size);
    ASSERT_OK_AND_ASSIGN(
        AppendResult journaled,
        store->Append(stream, ExpectedVersion::NoStream(), {event}));
    EXPECT_TRUE(journaled.journaled);
  }
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().replayed, 2);
  EXPECT_EQ(store->Status().parked, 0);
  EXPECT_THAT(PrimaryPayloads(std::string(limits.max_stream_name_bytes, 's')),
              ElementsAre("during the outage"));
}

TEST_F(FailoverEventStoreTest, OffByDefaultAnUnreachablePrimaryFailsTheAppend) {
  auto store = Open(/*allow_fallback=*/false);
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("a")}));
  primary_->down = true;
  EXPECT_THAT(store->Append("s", ExpectedVersion::Exactly(1), {Event("b")}),
              StatusIs(absl::StatusCode::kUnavailable));
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.journaled, 0);
  EXPECT_THAT(JournalEvents(*store), SizeIs(0));
}

TEST_F(FailoverEventStoreTest, PrimaryModePassesEverythingThrough) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(AppendResult result,
                       store->Append("s", ExpectedVersion::NoStream(),
                                     {Event("a"), Event("b")}));
  EXPECT_FALSE(result.journaled);
  EXPECT_EQ(result.next_expected_version, 2);
  EXPECT_THAT(store->Append("s", ExpectedVersion::NoStream(), {Event("c")}),
              StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(PrimaryPayloads("s"), ElementsAre("a", "b"));
  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("s"));
  EXPECT_EQ(version, 2);
  EXPECT_EQ(store->Status().mode, Mode::kPrimary);
  EXPECT_EQ(FailoverModeName(store->Status().mode), "primary");
}

TEST_F(FailoverEventStoreTest, OutageJournalsAppendsAndRecoveryReplaysThem) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("placed")}));
  primary_->down = true;

  v1::EventMetadata metadata;
  metadata.set_correlation_id("corr-7");
  (*metadata.mutable_properties())["k"] = "v";
  EventData paid = Event("paid");
  paid.metadata = metadata;
  const Uuid paid_id = paid.id;
  ASSERT_OK_AND_ASSIGN(
      AppendResult first,
      store->Append("order-1", ExpectedVersion::Exactly(1), {paid}));
  EXPECT_TRUE(first.journaled);
  EXPECT_EQ(first.next_expected_version, 2);
  EXPECT_EQ(first.first_position, Position());

  FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kFallback);
  EXPECT_THAT(status.last_error.message(), HasSubstr("connection refused"));
  const int appends_before = primary_->appends;

  // In fallback, appends go straight to the journal.
  ASSERT_OK_AND_ASSIGN(AppendResult second,
                       store->Append("order-1", ExpectedVersion::Any(),
                                     {Event("shipped"), Event("closed")}));
  EXPECT_EQ(second.next_expected_version, 4);  // known from the first
  ASSERT_OK_AND_ASSIGN(
      AppendResult other,
      store->Append("order-2", ExpectedVersion::Any(), {Event("other")}));
  EXPECT_EQ(other.next_expected_version, -1);  // cannot be known
  EXPECT_EQ(primary_->appends, appends_before);
  status = store->Status();
  EXPECT_EQ(status.journaled, 3);
  EXPECT_EQ(status.pending, 3);
  EXPECT_THAT(store->ReadStream("order-1"),
              StatusIs(absl::StatusCode::kUnavailable));

  // Still down: the replay waits.
  EXPECT_THAT(store->ReplayNow(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(store->Status().mode, Mode::kFallback);
  EXPECT_THAT(PrimaryPayloads("order-1"), ElementsAre("placed"));

  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.replayed, 3);
  EXPECT_EQ(status.pending, 0);
  EXPECT_EQ(status.parked, 0);
  EXPECT_THAT(PrimaryPayloads("order-1"),
              ElementsAre("placed", "paid", "shipped", "closed"));
  EXPECT_THAT(PrimaryPayloads("order-2"), ElementsAre("other"));

  // Ids and metadata as appended; the journal's bookkeeping is gone.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("order-1"));
  EXPECT_EQ(events[1].id, paid_id);
  EXPECT_EQ(events[1].metadata.correlation_id(), "corr-7");
  EXPECT_EQ(events[1].metadata.properties().size(), 1u);
  EXPECT_EQ(events[1].metadata.properties().at("k"), "v");

  // Global order follows the journal.
  ASSERT_OK_AND_ASSIGN(ReadAllPage all, store->ReadAll(ReadAllOptions()));
  EXPECT_THAT(PayloadsOf(all.events),
              ElementsAre("placed", "paid", "shipped", "closed", "other"));

  // Back in primary mode.
  ASSERT_OK_AND_ASSIGN(AppendResult after,
                       store->Append("order-1", ExpectedVersion::Exactly(4),
                                     {Event("archived")}));
  EXPECT_FALSE(after.journaled);
  EXPECT_EQ(after.next_expected_version, 5);
}

TEST_F(FailoverEventStoreTest, LifecycleChangesWaitUntilTheJournalIsReplayed) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("placed")}));
  primary_->down = true;
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::Exactly(1), {Event("paid")}));
  primary_->down = false;
  // Reachable again, but the journaled append has not been replayed: a
  // deletion now would overtake it.
  ASSERT_EQ(store->Status().mode, Mode::kFallback);
  EXPECT_THAT(
      store->DeleteStream("order-1", ExpectedVersion::Any(), DeleteMode::kSoft),
      StatusIs(absl::StatusCode::kUnavailable,
               HasSubstr("1 journaled append(s) are waiting")));
  EXPECT_THAT(store->SetStreamMetadata("order-1", StreamMetadata()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->Scavenge(ScavengeOptions()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(PrimaryPayloads("order-1"), ElementsAre("placed"));

  ASSERT_OK(store->ReplayNow());
  ASSERT_OK_AND_ASSIGN(
      DeleteResult deleted,
      store->DeleteStream("order-1", ExpectedVersion::Exactly(2),
                          DeleteMode::kSoft));
  EXPECT_EQ(deleted.marker_version, 3);
  EXPECT_THAT(PrimaryPayloads("order-1"), IsEmpty());
}

TEST_F(FailoverEventStoreTest, ConflictIsParkedWithItsReasonAndReplayGoesOn) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(),
                          {Event("journaled-1"), Event("journaled-2")}));
  ASSERT_OK(store->Append("t", ExpectedVersion::NoStream(), {Event("t-1")}));
  // Meanwhile another writer reached the primary.
  ASSERT_OK(
      database_->Append("s", ExpectedVersion::NoStream(), {Event("theirs")}));
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());

  EXPECT_THAT(PrimaryPayloads("s"), ElementsAre("theirs"));
  EXPECT_THAT(PrimaryPayloads("t"), ElementsAre("t-1"));
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.parked, 1);
  EXPECT_EQ(status.replayed, 1);

  // Parked, never dropped: both events are in the journal's dead letters.
  ASSERT_OK_AND_ASSIGN(
      std::vector<DeadLetter> parked,
      store->journal().dead_letters().List(FailoverEventStore::kReplayName,
                                           DeadLetterStatus::kParked, 10));
  ASSERT_THAT(parked, SizeIs(2));
  EXPECT_THAT(parked[0].error, HasSubstr("stream 's'"));
  EXPECT_THAT(parked[0].error, HasSubstr("no stream"));
  const std::vector<RecordedEvent> journaled = JournalEvents(*store);
  ASSERT_THAT(journaled, SizeIs(3));
  EXPECT_EQ(journaled[0].stream, "failover:s");
  EXPECT_EQ(parked[0].event_id, journaled[0].id);
  EXPECT_EQ(journaled[0].payload, "journaled-1");
}

TEST_F(FailoverEventStoreTest, ReplayCutShortResumesWithoutDuplicates) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  for (int i = 1; i <= 5; ++i) {
    ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(i - 1),
                            {Event(absl::StrCat("e", i))}));
  }
  primary_->down = false;
  primary_->fail_after = 2;
  EXPECT_THAT(store->ReplayNow(), StatusIs(absl::StatusCode::kUnavailable));
  FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kFallback);
  // The batch failed as a whole (AppendEach: kUnavailable), so which of its
  // appends committed is unknown: none counts as replayed, all stay
  // pending, and the two that committed replay again as no-ops.
  EXPECT_EQ(status.replayed, 0);
  EXPECT_EQ(status.pending, 5);
  EXPECT_THAT(PrimaryPayloads("s"), ElementsAre("e1", "e2"));

  // Appended during the outage: behind the rest.
  ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(5), {Event("e6")}));
  primary_->fail_after = -1;
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  EXPECT_THAT(PrimaryPayloads("s"),
              ElementsAre("e1", "e2", "e3", "e4", "e5", "e6"));
  status = store->Status();
  EXPECT_EQ(status.replayed, 6);
  EXPECT_EQ(status.parked, 0);
  EXPECT_EQ(status.pending, 0);
}

TEST_F(FailoverEventStoreTest, AppendCommittedBeforeTheOutageReplaysAsANoOp) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  // The primary commits, then the connection breaks before the answer
  // comes: the outcome is unknown, so the store journals the append, and
  // its replay finds the events already there.
  primary_->commit_then_fail = true;
  EventData event = Event("in-doubt");
  ASSERT_OK_AND_ASSIGN(
      AppendResult result,
      store->Append("s", ExpectedVersion::NoStream(), {event}));
  EXPECT_TRUE(result.journaled);
  EXPECT_EQ(store->Status().mode, Mode::kFallback);
  ASSERT_OK(store->ReplayNow());
  EXPECT_THAT(PrimaryPayloads("s"), ElementsAre("in-doubt"));
  EXPECT_EQ(store->Status().replayed, 1);
  EXPECT_EQ(store->Status().parked, 0);
}

TEST_F(FailoverEventStoreTest, RetriedJournaledAppendIsJournaledOnce) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  const std::vector<EventData> batch = {Event("a"), Event("b")};
  OutboxMessage message;
  message.destination = "billing";
  message.payload = "invoice";
  AppendRequest request;
  request.stream = "s";
  request.expected = ExpectedVersion::NoStream();
  request.events = batch;
  request.outbox = {&message, 1};
  ASSERT_OK(store->Append(request));
  ASSERT_OK(store->Append(request));
  EXPECT_EQ(store->Status().journaled, 1);
  EXPECT_THAT(JournalEvents(*store), SizeIs(3));
  // Reusing an id in another append is refused at once.
  EXPECT_THAT(store->Append("other", ExpectedVersion::Any(), {batch[0]}),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr("journal refused the append to stream 'other' "
                                 "(the primary is unreachable: test primary")));
}

TEST_F(FailoverEventStoreTest, OutboxMessagesAreJournaledAndEnqueuedOnReplay) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  const std::vector<EventData> events = {Event("placed")};
  std::vector<OutboxMessage> messages(2);
  messages[0].destination = "billing";
  messages[0].key = "order-1";
  messages[0].payload = "invoice";
  messages[0].headers["trace"] = "t-1";
  messages[1].destination = "mail";
  messages[1].payload = "hello";
  AppendRequest request;
  request.stream = "order-1";
  request.expected = ExpectedVersion::NoStream();
  request.events = events;
  request.outbox = messages;
  ASSERT_OK(store->Append(request));
  ASSERT_OK_AND_ASSIGN(OutboxStats before, database_->outbox().Stats());
  EXPECT_EQ(before.pending, 0);

  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       database_->outbox().Pending(10));
  ASSERT_THAT(pending, SizeIs(2));
  EXPECT_EQ(pending[0].message.destination, "billing");
  EXPECT_EQ(pending[0].message.key, "order-1");
  EXPECT_EQ(pending[0].message.payload, "invoice");
  EXPECT_EQ(pending[0].message.headers.at("trace"), "t-1");
  EXPECT_EQ(pending[1].message.destination, "mail");
  EXPECT_THAT(PrimaryPayloads("order-1"), ElementsAre("placed"));
}

TEST_F(FailoverEventStoreTest, BadAppendsAreRefusedNotJournaled) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  ASSERT_OK(store->Append("s", ExpectedVersion::Any(), {Event("a")}));
  EXPECT_THAT(store->Append("s", ExpectedVersion::Any(), {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store->Append("bad stream", ExpectedVersion::Any(), {Event("x")}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EventData no_type = Event("x");
  no_type.type.clear();
  EXPECT_THAT(store->Append("s", ExpectedVersion::Any(), {no_type}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(store->Status().journaled, 1);
  EXPECT_THAT(JournalEvents(*store), SizeIs(1));
}

TEST_F(FailoverEventStoreTest, AppendLargerThanAReplayPageReplaysWhole) {
  auto store = Open(true, absl::ZeroDuration(), /*page_size=*/3);
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  std::vector<EventData> big;
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) {
    big.push_back(Event(absl::StrCat("big-", i)));
    expected.push_back(absl::StrCat("big-", i));
  }
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), big));
  ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(10), {Event("next")}));
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  expected.push_back("next");
  EXPECT_EQ(PrimaryPayloads("s"), expected);
  EXPECT_EQ(store->Status().replayed, 2);
}

TEST_F(FailoverEventStoreTest, JournalLeftByAnEarlierRunIsReplayedFirst) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    primary_->down = true;
    ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("1")}));
    ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(1), {Event("2")}));
  }
  // A new process; fallback not even allowed: the journal still replays,
  // and until then appends queue behind it.
  auto store = Open(/*allow_fallback=*/false);
  ASSERT_NE(store, nullptr);
  FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kRecovering);
  EXPECT_EQ(status.pending, 2);
  ASSERT_OK_AND_ASSIGN(
      AppendResult queued,
      store->Append("s", ExpectedVersion::Exactly(2), {Event("3")}));
  EXPECT_TRUE(queued.journaled);
  EXPECT_THAT(PrimaryPayloads("s"), IsEmpty());
  ASSERT_OK(store->ReplayNow());
  EXPECT_THAT(PrimaryPayloads("s"), ElementsAre("1", "2", "3"));
  status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.replayed, 3);
  EXPECT_EQ(status.pending, 0);
  // The checkpoint is in the journal: a third run has nothing to do.
  store.reset();
  store = Open(false);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Status().mode, Mode::kPrimary);
  EXPECT_EQ(store->Status().pending, 0);
}

TEST_F(FailoverEventStoreTest, HealthCheckRecoversByItself) {
  auto store = Open(true, absl::Milliseconds(10));
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Event("a")}));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(store->Status().mode, Mode::kFallback);
  primary_->down = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (store->Status().mode != Mode::kPrimary && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(store->Status().mode, Mode::kPrimary);
  EXPECT_THAT(PrimaryPayloads("s"), ElementsAre("a"));
}

// In kRecovering, an append to a stream with journaled appends pending
// waits for the replay to take them (recovering_append_wait), then goes to
// the primary; an append to another stream does not wait. Held mid-replay,
// the wait runs out and the append is journaled behind the pending ones.
TEST_F(FailoverEventStoreTest, RecoveringAppendWaitsForItsStreamsReplay) {
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::Milliseconds(5);
  options.replay_page_size = 5;
  options.recovering_append_wait = absl::Seconds(3);
  auto store = OpenFailover(options);
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  int64_t version = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(AppendResult r,
                         store->Append("s", ExpectedVersion::Exactly(version),
                                       {Event(absl::StrCat(i))}));
    ASSERT_TRUE(r.journaled);
    version = r.next_expected_version;
  }
  // The replay starts and is held inside its first batch.
  primary_->stall_append_each = true;
  primary_->down = false;
  ASSERT_TRUE(PollUntil([&] { return primary_->stalled_append_each > 0; },
                        absl::Seconds(30)));
  EXPECT_EQ(store->Status().mode, Mode::kRecovering);

  // Another stream: straight to the primary.
  ASSERT_OK_AND_ASSIGN(
      AppendResult other,
      store->Append("t", ExpectedVersion::NoStream(), {Event("t0")}));
  EXPECT_FALSE(other.journaled);

  // "s" still has pending appends and the replay cannot take them: the
  // wait runs out, then the append is journaled behind them.
  absl::Time began = absl::Now();
  ASSERT_OK_AND_ASSIGN(
      AppendResult held,
      store->Append("s", ExpectedVersion::Exactly(version), {Event("20")}));
  EXPECT_GE(absl::Now() - began, absl::Seconds(3));
  EXPECT_TRUE(held.journaled);
  version = held.next_expected_version;
  EXPECT_EQ(version, 21);

  // Released, the replay takes them; an append to "s" waits for that,
  // then goes to the primary, in order.
  primary_->stall_append_each = false;
  ASSERT_OK_AND_ASSIGN(
      AppendResult after,
      store->Append("s", ExpectedVersion::Exactly(version), {Event("21")}));
  EXPECT_FALSE(after.journaled);
  EXPECT_EQ(after.next_expected_version, 22);
  ASSERT_TRUE(PollUntil([&] { return store->Status().mode == Mode::kPrimary; },
                        absl::Seconds(30)));
  std::vector<std::string> expected;
  for (int i = 0; i < 22; ++i) expected.push_back(absl::StrCat(i));
  EXPECT_EQ(PrimaryPayloads("s"), expected);
  EXPECT_EQ(store->Status().parked, 0);
}

// Writers that append to their streams at full speed through a recovery do
// not keep the store in kRecovering: with the wait, the journal stops
// growing and the replay drains it while they go on writing.
TEST_F(FailoverEventStoreTest,
       ConcurrentWritersDuringRecoveryLetTheReplayFinish) {
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::Milliseconds(5);
  options.replay_page_size = 20;
  options.recovering_append_wait = absl::Seconds(60);
  auto store = OpenFailover(options);
  ASSERT_NE(store, nullptr);
  constexpr int kWriters = 3;
  primary_->down = true;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> appends{0};
  std::vector<std::vector<std::string>> errors(kWriters);
  std::vector<int> written(kWriters, 0);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::string stream = absl::StrCat("writer-", w);
      int64_t version = 0;
      for (int i = 0; !stop; ++i) {
        absl::StatusOr<AppendResult> r =
            store->Append(stream, ExpectedVersion::Exactly(version),
                          {Event(absl::StrCat(i))});
        if (!r.ok()) {
          errors[w].push_back(r.status().ToString());
          return;
        }
        version = r->next_expected_version;
        written[w] = i + 1;
        ++appends;
      }
    });
  }
  // Journaled while the primary is down, then recovering under the same
  // load: kPrimary comes back while they write.
  ASSERT_TRUE(PollUntil([&] { return store->Status().pending >= 300; },
                        absl::Seconds(60)));
  primary_->down = false;
  const bool back =
      PollUntil([&] { return store->Status().mode == Mode::kPrimary; },
                absl::Seconds(60));
  const int64_t at_primary = appends;
  // They go on writing straight to the primary.
  EXPECT_TRUE(PollUntil([&] { return appends >= at_primary + 100; },
                        absl::Seconds(60)));
  stop = true;
  for (std::thread& t : writers) t.join();
  ASSERT_TRUE(back) << "still " << store->Status().pending << " pending";
  EXPECT_EQ(store->Status().parked, 0);
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_THAT(errors[w], IsEmpty());
    std::vector<std::string> expected;
    for (int i = 0; i < written[w]; ++i) expected.push_back(absl::StrCat(i));
    EXPECT_EQ(PrimaryPayloads(absl::StrCat("writer-", w)), expected)
        << "writer " << w;
  }
}

// Writers keep appending while the primary goes down and up under them and
// the health check replays: every acknowledged append ends up in the
// primary exactly once, each stream in the order it was written.
TEST_F(FailoverEventStoreTest, ConcurrentAppendsThroughOutagesLoseNothing) {
  auto store = Open(true, absl::Milliseconds(2));
  ASSERT_NE(store, nullptr);
  constexpr int kWriters = 4;
  constexpr int kAppendsEach = 150;
  std::atomic<bool> done{false};
  std::thread flipper([&] {
    while (!done) {
      primary_->down = !primary_->down;
      absl::SleepFor(absl::Milliseconds(7));
    }
    primary_->down = false;
  });
  // Writers go on past kAppendsEach until an append was journaled (on a
  // loaded machine they may finish before the flipper first runs), up to
  // kMaxAppends each.
  constexpr int kMaxAppends = 20000;
  std::vector<std::vector<std::string>> errors(kWriters);
  std::vector<int> appended(kWriters, 0);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      const std::string stream = absl::StrCat("writer-", w);
      int64_t version = 0;
      for (int i = 0; i < kMaxAppends &&
                      (i < kAppendsEach || store->Status().journaled == 0);
           ++i, appended[w] = i) {
        absl::StatusOr<AppendResult> r =
            store->Append(stream, ExpectedVersion::Exactly(version),
                          {Event(absl::StrCat(i))});
        if (!r.ok()) {
          errors[w].push_back(r.status().ToString());
          return;
        }
        version = r->next_expected_version;
      }
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  flipper.join();
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (store->Status().mode != Mode::kPrimary && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_GT(status.journaled, 0) << "no outage was seen";
  EXPECT_EQ(status.replayed, status.journaled);
  EXPECT_EQ(status.parked, 0) << status.last_error;
  EXPECT_EQ(status.pending, 0);
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_THAT(errors[w], IsEmpty());
    std::vector<std::string> expected;
    for (int i = 0; i < appended[w]; ++i) expected.push_back(absl::StrCat(i));
    EXPECT_EQ(PrimaryPayloads(absl::StrCat("writer-", w)), expected)
        << "writer " << w;
  }
}

#ifdef EVENTSTORE_TEST_POSTGRES
// A real outage: the PostgreSQL server stops, appends go to the journal,
// the server starts again, the journal replays.
TEST(FailoverPostgresTest, ServerStoppedAndStartedAgain) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start({}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> primary,
                       OpenPostgresPrimary(*server));
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<FailoverEventStore> store,
      CreateFailoverOver(std::move(primary), dir->File("journal.db"), options));
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("placed")}));

  ASSERT_OK(server->Stop());
  ASSERT_OK_AND_ASSIGN(
      AppendResult journaled,
      store->Append("order-1", ExpectedVersion::Exactly(1), {Event("paid")}));
  EXPECT_TRUE(journaled.journaled);
  ASSERT_OK(store->Append("order-1", ExpectedVersion::Exactly(2),
                          {Event("shipped")}));
  EXPECT_EQ(store->Status().mode, Mode::kFallback);
  EXPECT_THAT(store->ReplayNow(), StatusIs(absl::StatusCode::kUnavailable));

  ASSERT_OK(server->StartAgain());
  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().mode, Mode::kPrimary);
  EXPECT_EQ(store->Status().replayed, 2);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("order-1"));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("placed", "paid", "shipped"));
}
#endif

}  // namespace
}  // namespace eventstore::test
