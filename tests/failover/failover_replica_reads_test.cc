// FailoverEventStore with a replica (issue 11): reads during an outage are
// answered by the replica (with the primary's positions) merged with the
// journal, never partially; expected versions are checked against the
// replica before an append is journaled; Status() reports the replica; with
// replica_read_staleness, reads of covered streams go to the replica while
// the primary is up. The primary is a SQLite store behind a switch
// (failover_fixture.h); the FailoverPostgres* tests stop and start a real
// PostgreSQL server.

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/aggregate_repository.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/errors.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/store_replica.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aggregates/bank_account.h"
#include "tests/failover/failover_fixture.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"
#endif

namespace eventstore::test {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using Mode = FailoverStatus::Mode;

constexpr absl::Duration kCatchUpTimeout = absl::Seconds(30);

// An OK StatusOr holding `value`.
MATCHER_P(IsOkAndHolds, value, "") {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  *result_listener << "holds " << ::testing::PrintToString(*arg);
  return *arg == value;
}

std::vector<std::string> Payloads(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> out;
  for (const RecordedEvent& e : events) out.push_back(e.payload);
  return out;
}

// The payloads of `stream` as `store` reads them; a failure when it cannot.
std::vector<std::string> ReadPayloads(EventStore& store,
                                      const std::string& stream) {
  absl::StatusOr<std::vector<RecordedEvent>> events = store.ReadStream(stream);
  EXPECT_OK(events);
  return events.ok() ? Payloads(*events) : std::vector<std::string>{};
}

std::vector<int64_t> Versions(const std::vector<RecordedEvent>& events) {
  std::vector<int64_t> out;
  for (const RecordedEvent& e : events) out.push_back(e.version);
  return out;
}

std::vector<Uuid> Ids(const std::vector<RecordedEvent>& events) {
  std::vector<Uuid> out;
  for (const RecordedEvent& e : events) out.push_back(e.id);
  return out;
}

// Expects `got` to be `want` as the primary recorded them: ids, streams,
// versions, types, payloads, positions and recorded_at.
void ExpectSameEvents(const std::vector<RecordedEvent>& got,
                      const std::vector<RecordedEvent>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id) << i;
    EXPECT_EQ(got[i].stream, want[i].stream) << i;
    EXPECT_EQ(got[i].version, want[i].version) << i;
    EXPECT_EQ(got[i].type, want[i].type) << i;
    EXPECT_EQ(got[i].payload, want[i].payload) << i;
    EXPECT_EQ(got[i].position, want[i].position) << i;
    EXPECT_EQ(got[i].recorded_at, want[i].recorded_at) << i;
  }
}

// Expects `got` to be journaled events not replayed yet: `payloads` in
// `stream` at `versions`, with empty positions and no journal bookkeeping.
void ExpectJournaled(const std::vector<RecordedEvent>& got,
                     const std::string& stream,
                     const std::vector<std::string>& payloads,
                     const std::vector<int64_t>& versions) {
  EXPECT_THAT(Payloads(got), ElementsAreArray(payloads));
  EXPECT_THAT(Versions(got), ElementsAreArray(versions));
  for (const RecordedEvent& e : got) {
    EXPECT_EQ(e.stream, stream) << e.payload;
    EXPECT_TRUE(e.position.IsStart()) << e.payload;
    EXPECT_TRUE(e.metadata.properties().empty()) << e.payload;
  }
}

struct ReadToEndResult {
  std::vector<RecordedEvent> events;
  // The next_position of the last page.
  Position next;
  // The size of every page, in order.
  std::vector<size_t> pages;
};

// ReadAll pages from `options.from_position` until end_of_log.
absl::StatusOr<ReadToEndResult> ReadToEnd(EventStore& store,
                                          ReadAllOptions options) {
  ReadToEndResult result;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
    if (!page.ok()) return page.status();
    result.pages.push_back(page->events.size());
    for (RecordedEvent& e : page->events) result.events.push_back(std::move(e));
    result.next = page->next_position;
    if (page->end_of_log) return result;
    options.from_position = page->next_position;
  }
  return absl::InternalError("ReadToEnd: no end_of_log after 1000 pages");
}

// The WrongExpectedVersionError details of `status`, or a failure.
WrongExpectedVersionInfo WrongVersion(const absl::Status& status) {
  EXPECT_TRUE(IsWrongExpectedVersion(status)) << status;
  std::optional<WrongExpectedVersionInfo> info =
      GetWrongExpectedVersion(status);
  return info.value_or(WrongExpectedVersionInfo{});
}

// Polls `done` until it holds or `timeout` passes; whether it held.
template <typename Condition>
bool WaitUntil(Condition done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// Options of a failover store with a replica in `replica` copying the
// streams with `prefixes` (none: all), polling often so that tests catch
// up quickly, and no health check (recovery by ReplayNow()).
FailoverOptions ReplicaFailoverOptions(std::shared_ptr<EventStore> replica,
                                       std::vector<std::string> prefixes) {
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  options.replica = std::move(replica);
  options.replica_options.stream_prefixes = std::move(prefixes);
  options.replica_options.poll_interval = absl::Milliseconds(10);
  options.replica_options.max_backoff = absl::Milliseconds(50);
  return options;
}

class FailoverReplicaReadsTest : public FailoverFixture {
 protected:
  // A failover store over the fixture's primary with a SQLite replica
  // (replica.db in dir_) of the streams with `prefixes`.
  std::unique_ptr<FailoverEventStore> OpenWithReplica(
      std::vector<std::string> prefixes,
      absl::Duration staleness = absl::ZeroDuration()) {
    SqliteOptions sqlite;
    sqlite.path = dir_->File("replica.db");
    absl::StatusOr<std::unique_ptr<EventStore>> replica =
        SqliteEventStore::Open(sqlite);
    EXPECT_OK(replica);
    if (!replica.ok()) return nullptr;
    replica_store_ = std::shared_ptr<EventStore>(std::move(*replica));
    FailoverOptions options =
        ReplicaFailoverOptions(replica_store_, std::move(prefixes));
    options.replica_read_staleness = staleness;
    std::unique_ptr<FailoverEventStore> store = OpenFailover(options);
    // Down means the whole primary, its log too (the replica's reads).
    if (primary_ != nullptr) primary_->log_down_too = true;
    return store;
  }

  // Waits until the store's replica holds the primary's events up to
  // `position` (the primary's head when Start()).
  void CatchUp(FailoverEventStore& store,
               Position position = Position::Start()) {
    if (position.IsStart()) {
      ASSERT_OK_AND_ASSIGN(position, database_->HeadPosition());
    }
    ASSERT_NE(store.replica(), nullptr);
    ASSERT_TRUE(store.replica()->WaitForPosition(position, kCatchUpTimeout))
        << "the replica is at "
        << store.replica()->replica_position().ToString() << ", waited for "
        << position.ToString() << ": " << store.replica()->Status().last_error;
  }

  // Events of `stream` in the primary, read directly.
  std::vector<RecordedEvent> PrimaryStream(const std::string& stream) {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        database_->ReadStream(stream);
    EXPECT_OK(events);
    return events.ok() ? std::move(*events) : std::vector<RecordedEvent>{};
  }

  std::shared_ptr<EventStore> replica_store_;
};

// 1. A covered stream during an outage: the replica's copy with the
// primary's positions, then the journaled appends; EventExists for a
// replicated, a journaled and an unknown id.
TEST_F(FailoverReplicaReadsTest,
       CoveredStreamDuringAnOutageIsTheReplicaThenTheJournal) {
  auto store = OpenWithReplica({"order-"});
  ASSERT_NE(store, nullptr);
  EventData a1 = Event("a1");
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::NoStream(), {a1, Event("a2")}));
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::Exactly(2), {Event("a3")}));
  ASSERT_OK(store->Append("audit-1", ExpectedVersion::Any(), {Event("x")}));
  ASSERT_OK_AND_ASSIGN(
      AppendResult last,
      store->Append("order-2", ExpectedVersion::NoStream(), {Event("b1")}));
  ASSERT_FALSE(last.journaled);
  // What the primary answers before the outage.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> before,
                       store->ReadStream("order-1"));
  ASSERT_THAT(Payloads(before), ElementsAre("a1", "a2", "a3"));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> absent_before,
                       store->ReadStream("order-9"));
  CatchUp(*store, last.last_position);

  primary_->down = true;
  // Before any append (kPrimary): the primary fails, the replica answers.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("order-1"));
  ExpectSameEvents(events, before);
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkAndHolds(3));

  EventData a4 = Event("a4");
  ASSERT_OK_AND_ASSIGN(
      AppendResult r4,
      store->Append("order-1", ExpectedVersion::Exactly(3), {a4}));
  EXPECT_TRUE(r4.journaled);
  EXPECT_EQ(r4.next_expected_version, 4);
  ASSERT_EQ(store->Status().mode, Mode::kFallback);
  ASSERT_OK_AND_ASSIGN(
      AppendResult r5,
      store->Append("order-1", ExpectedVersion::Any(), {Event("a5")}));
  EXPECT_TRUE(r5.journaled);
  EXPECT_EQ(r5.next_expected_version, 5);

  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("order-1"));
  ASSERT_THAT(events, SizeIs(5));
  ExpectSameEvents(
      std::vector<RecordedEvent>(events.begin(), events.begin() + 3), before);
  ExpectJournaled(std::vector<RecordedEvent>(events.begin() + 3, events.end()),
                  "order-1", {"a4", "a5"}, {4, 5});
  EXPECT_EQ(events[3].id, a4.id);
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkAndHolds(5));

  ReadStreamOptions backward;
  backward.direction = Direction::kBackward;
  backward.max_count = 2;
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("order-1", backward));
  EXPECT_THAT(Payloads(events), ElementsAre("a5", "a4"));
  ReadStreamOptions from;
  from.from_version = 3;
  from.max_count = 2;
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("order-1", from));
  EXPECT_THAT(Payloads(events), ElementsAre("a3", "a4"));
  EXPECT_EQ(events[0].position, before[2].position);

  // A covered stream with nothing pending: the replica alone, as the
  // primary answered before the outage.
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("order-2"));
  EXPECT_THAT(Payloads(events), ElementsAre("b1"));
  EXPECT_EQ(events[0].position, last.last_position);
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("order-9"));
  ExpectSameEvents(events, absent_before);
  EXPECT_THAT(store->StreamVersion("order-9"), IsOkAndHolds(0));

  EXPECT_THAT(store->EventExists(a1.id), IsOkAndHolds(true));
  EXPECT_THAT(store->EventExists(a4.id), IsOkAndHolds(true));
  // With prefixes the event may be in a stream not copied.
  EXPECT_THAT(store->EventExists(Uuid::Generate()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(primary_->appends, 4);

  // Replayed with the versions the reads showed.
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().parked, 0);
  std::vector<RecordedEvent> replayed = PrimaryStream("order-1");
  EXPECT_THAT(Payloads(replayed), ElementsAre("a1", "a2", "a3", "a4", "a5"));
  EXPECT_EQ(replayed[3].id, a4.id);
}

TEST_F(FailoverReplicaReadsTest,
       WithoutPrefixesAnUnknownIdDoesNotExistDuringAnOutage) {
  auto store = OpenWithReplica({});
  ASSERT_NE(store, nullptr);
  EventData x = Event("x");
  ASSERT_OK(store->Append("anything-1", ExpectedVersion::NoStream(), {x}));
  CatchUp(*store);
  primary_->down = true;
  EventData y = Event("y");
  ASSERT_OK_AND_ASSIGN(
      AppendResult r, store->Append("other", ExpectedVersion::NoStream(), {y}));
  ASSERT_TRUE(r.journaled);
  EXPECT_THAT(store->EventExists(x.id), IsOkAndHolds(true));
  EXPECT_THAT(store->EventExists(y.id), IsOkAndHolds(true));
  EXPECT_THAT(store->EventExists(Uuid::Generate()), IsOkAndHolds(false));
  // Any stream is covered.
  EXPECT_THAT(store->StreamVersion("anything-1"), IsOkAndHolds(1));
  EXPECT_THAT(store->StreamVersion("never-written"), IsOkAndHolds(0));
}

// 2. What the replica does not copy is kUnavailable, never a partial
// answer.
TEST_F(FailoverReplicaReadsTest, UncoveredReadsAreUnavailableNeverPartial) {
  auto store = OpenWithReplica({"order-"});
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Append("audit-1", ExpectedVersion::NoStream(),
                          {Event("x1"), Event("x2")}));
  ASSERT_OK(
      store->Append("audit-2", ExpectedVersion::NoStream(), {Event("y1")}));
  ASSERT_OK_AND_ASSIGN(
      AppendResult last,
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("o1")}));
  CatchUp(*store, last.last_position);
  primary_->down = true;

  // Nothing pending: the replica does not copy it, and says so.
  EXPECT_THAT(store->ReadStream("audit-1"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("order-")));
  EXPECT_THAT(store->StreamVersion("audit-1"),
              StatusIs(absl::StatusCode::kUnavailable));

  // Pending appends of unknown base (Any): neither the events nor the
  // version are known; never the journaled events alone.
  ASSERT_OK_AND_ASSIGN(
      AppendResult any,
      store->Append("audit-1", ExpectedVersion::Any(), {Event("x3")}));
  ASSERT_TRUE(any.journaled);
  EXPECT_THAT(store->ReadStream("audit-1"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->StreamVersion("audit-1"),
              StatusIs(absl::StatusCode::kUnavailable));
  // Exactly(1): the version is known from the journal, the events are not.
  ASSERT_OK(
      store->Append("audit-2", ExpectedVersion::Exactly(1), {Event("y2")}));
  EXPECT_THAT(store->StreamVersion("audit-2"), IsOkAndHolds(2));
  EXPECT_THAT(store->ReadStream("audit-2"),
              StatusIs(absl::StatusCode::kUnavailable));

  // ReadAll: an uncovered prefix, a shorter one, or none at all.
  for (const char* prefix : {"audit-", "ord", ""}) {
    ReadAllOptions options;
    options.filter.stream_prefix = prefix;
    EXPECT_THAT(store->ReadAll(options),
                StatusIs(absl::StatusCode::kUnavailable))
        << "prefix '" << prefix << "'";
  }
  // A prefix inside a covered one is covered.
  ReadAllOptions narrower;
  narrower.filter.stream_prefix = "order-1";
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store->ReadAll(narrower));
  EXPECT_THAT(Payloads(page.events), ElementsAre("o1"));
  EXPECT_THAT(store->HeadPosition(), StatusIs(absl::StatusCode::kUnavailable));
}

// 3. ReadAll during the outage, by a covered prefix: the primary's log up
// to the replica's position, then the journaled events; paged; the reader
// resumes after recovery and reads the replayed events with real
// positions.
TEST_F(FailoverReplicaReadsTest,
       ReadAllOfACoveredPrefixIsThePrimarysLogThenTheJournal) {
  auto store = OpenWithReplica({"order-"});
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 7; ++i) {
    ASSERT_OK(store->Append(absl::StrCat("order-", i % 3),
                            ExpectedVersion::Any(),
                            {Event(absl::StrCat("o", i))}));
    ASSERT_OK(store->Append("audit-1", ExpectedVersion::Any(),
                            {Event(absl::StrCat("x", i))}));
  }
  ReadAllOptions orders;
  orders.filter.stream_prefix = "order-";
  ASSERT_OK_AND_ASSIGN(ReadToEndResult before, ReadToEnd(*store, orders));
  ASSERT_THAT(before.events, SizeIs(7));
  CatchUp(*store, before.events.back().position);

  primary_->down = true;
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::Exactly(2), {Event("j1")}));
  ASSERT_OK(store->Append("audit-1", ExpectedVersion::Any(), {Event("jx")}));
  ASSERT_OK(store->Append("order-new", ExpectedVersion::NoStream(),
                          {Event("j2"), Event("j3")}));
  ASSERT_EQ(store->Status().mode, Mode::kFallback);

  ReadAllOptions paged = orders;
  paged.max_count = 3;
  ASSERT_OK_AND_ASSIGN(ReadToEndResult during, ReadToEnd(*store, paged));
  ASSERT_THAT(during.events, SizeIs(10));
  ExpectSameEvents(std::vector<RecordedEvent>(during.events.begin(),
                                              during.events.begin() + 7),
                   before.events);
  std::vector<RecordedEvent> journaled(during.events.begin() + 7,
                                       during.events.end());
  EXPECT_THAT(Payloads(journaled), ElementsAre("j1", "j2", "j3"));
  EXPECT_THAT(Versions(journaled), ElementsAre(3, 1, 2));
  for (const RecordedEvent& e : journaled) {
    EXPECT_TRUE(e.position.IsStart()) << e.payload;
  }
  ASSERT_GE(during.pages.size(), 3u);
  for (size_t i = 0; i + 1 < during.pages.size(); ++i) {
    EXPECT_LE(during.pages[i], 3u) << "page " << i;
  }
  // The last page's next_position: the replica's last primary position.
  EXPECT_EQ(during.next, before.events.back().position);
  ASSERT_TRUE(store->Status().replica.has_value());
  EXPECT_EQ(during.next, store->Status().replica->replica_position);

  // Resuming from there during the outage: the journaled events again.
  ReadAllOptions resume = orders;
  resume.from_position = during.next;
  ASSERT_OK_AND_ASSIGN(ReadToEndResult again, ReadToEnd(*store, resume));
  EXPECT_THAT(Ids(again.events), ElementsAreArray(Ids(journaled)));
  EXPECT_EQ(again.next, during.next);

  // After recovery: the replayed events, with their final positions.
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  ASSERT_EQ(store->Status().mode, Mode::kPrimary);
  EXPECT_EQ(store->Status().parked, 0);
  ASSERT_OK_AND_ASSIGN(ReadToEndResult after, ReadToEnd(*store, resume));
  EXPECT_THAT(Ids(after.events), ElementsAreArray(Ids(journaled)));
  EXPECT_THAT(Versions(after.events), ElementsAre(3, 1, 2));
  for (const RecordedEvent& e : after.events) {
    EXPECT_GT(e.position, during.next) << e.payload;
  }
}

// 3. Unfiltered ReadAll with a replica of every stream.
TEST_F(FailoverReplicaReadsTest,
       ReadAllWithoutPrefixesIsThePrimarysLogThenTheJournal) {
  auto store = OpenWithReplica({});
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(store->Append(absl::StrCat("s-", i % 2), ExpectedVersion::Any(),
                            {Event(absl::StrCat("e", i))}));
  }
  ASSERT_OK_AND_ASSIGN(ReadToEndResult before,
                       ReadToEnd(*store, ReadAllOptions()));
  ASSERT_THAT(before.events, SizeIs(5));
  CatchUp(*store);

  primary_->down = true;
  EventData j1 = Event("j1");
  EventData j2 = Event("j2");
  ASSERT_OK(store->Append("s-0", ExpectedVersion::Exactly(3), {j1}));
  ASSERT_OK(store->Append("t-0", ExpectedVersion::NoStream(), {j2}));

  ReadAllOptions paged;
  paged.max_count = 2;
  ASSERT_OK_AND_ASSIGN(ReadToEndResult during, ReadToEnd(*store, paged));
  ASSERT_THAT(during.events, SizeIs(7));
  ExpectSameEvents(std::vector<RecordedEvent>(during.events.begin(),
                                              during.events.begin() + 5),
                   before.events);
  EXPECT_EQ(during.events[5].id, j1.id);
  EXPECT_EQ(during.events[5].version, 4);
  EXPECT_EQ(during.events[6].id, j2.id);
  EXPECT_EQ(during.events[6].stream, "t-0");
  EXPECT_EQ(during.next, before.events.back().position);

  // Any prefix is covered.
  ReadAllOptions t;
  t.filter.stream_prefix = "t-";
  ASSERT_OK_AND_ASSIGN(ReadToEndResult only_t, ReadToEnd(*store, t));
  EXPECT_THAT(Payloads(only_t.events), ElementsAre("j2"));

  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  ReadAllOptions resume;
  resume.from_position = during.next;
  ASSERT_OK_AND_ASSIGN(ReadToEndResult after, ReadToEnd(*store, resume));
  EXPECT_THAT(Ids(after.events), ElementsAre(j1.id, j2.id));
  for (const RecordedEvent& e : after.events) {
    EXPECT_FALSE(e.position.IsStart()) << e.payload;
  }
}

// 4. Expected versions through an outage: an aggregate loaded from the
// replica and the journal is saved; an expected version the replica
// already contradicts is refused at once, nothing journaled.
TEST_F(FailoverReplicaReadsTest,
       ExpectedVersionsThroughAnOutageAreCheckedAgainstTheReplica) {
  auto store = OpenWithReplica({"account-"});
  ASSERT_NE(store, nullptr);
  AggregateRepositoryOptions repo_options;
  repo_options.stream_prefix = "account-";
  AggregateRepository<BankAccount> accounts(*store, repo_options);
  {
    BankAccount opened("a-1");
    ASSERT_OK(opened.Open("Ada"));
    ASSERT_OK(opened.Deposit(100));
    ASSERT_OK(opened.Deposit(20));
    ASSERT_OK(accounts.Save(opened));
    EXPECT_EQ(opened.version(), 3);
  }
  CatchUp(*store);
  primary_->down = true;

  // Stale: below the replica's version. Refused with the replica's
  // version, nothing journaled.
  absl::StatusOr<AppendResult> stale = store->Append(
      "account-a-1", ExpectedVersion::Exactly(1), {Event("stale")});
  ASSERT_THAT(stale, StatusIs(absl::StatusCode::kAborted));
  WrongExpectedVersionInfo info = WrongVersion(stale.status());
  EXPECT_EQ(info.stream, "account-a-1");
  EXPECT_EQ(info.expected, ExpectedVersion::Exactly(1));
  EXPECT_EQ(info.actual, 3);
  absl::StatusOr<AppendResult> created = store->Append(
      "account-a-1", ExpectedVersion::NoStream(), {Event("again")});
  ASSERT_THAT(created, StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(WrongVersion(created.status()).actual, 3);
  EXPECT_EQ(store->Status().journaled, 0);
  EXPECT_EQ(store->Status().pending, 0);

  // The aggregate flow: load (replica), change, save (journaled).
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> account,
                       accounts.Load("a-1"));
  EXPECT_EQ(account->version(), 3);
  EXPECT_EQ(account->state().balance(), 120);
  ASSERT_OK(account->Withdraw(50));
  ASSERT_OK(accounts.Save(*account));
  EXPECT_EQ(account->version(), 4);
  EXPECT_EQ(store->Status().journaled, 1);
  // Loaded again: the replica's events and the journaled one.
  ASSERT_OK_AND_ASSIGN(account, accounts.Load("a-1"));
  EXPECT_EQ(account->version(), 4);
  EXPECT_EQ(account->state().balance(), 70);
  ASSERT_OK(account->Deposit(5));
  ASSERT_OK(accounts.Save(*account));
  EXPECT_EQ(account->version(), 5);

  // Stale against the pending appends: their version in the error.
  absl::StatusOr<AppendResult> behind = store->Append(
      "account-a-1", ExpectedVersion::Exactly(3), {Event("behind")});
  ASSERT_THAT(behind, StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(WrongVersion(behind.status()).actual, 5);
  EXPECT_EQ(store->Status().journaled, 2);

  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.replayed, 2);
  EXPECT_EQ(status.parked, 0);
  ASSERT_OK_AND_ASSIGN(account, accounts.Load("a-1"));
  EXPECT_EQ(account->version(), 5);
  EXPECT_EQ(account->state().balance(), 75);
}

// 4. Versions the replica does not contradict are journaled (it may lag
// the primary), and so is a retry of an append the replica copied.
TEST_F(FailoverReplicaReadsTest,
       VersionsTheReplicaDoesNotContradictAreJournaled) {
  auto store = OpenWithReplica({"order-"});
  ASSERT_NE(store, nullptr);
  EventData placed = Event("placed");
  ASSERT_OK(store->Append("order-1", ExpectedVersion::NoStream(), {placed}));
  ASSERT_OK(store->Append("order-2", ExpectedVersion::NoStream(),
                          {Event("p1"), Event("p2")}));
  ASSERT_OK(store->Append("audit-1", ExpectedVersion::NoStream(),
                          {Event("x1"), Event("x2")}));
  ASSERT_OK_AND_ASSIGN(
      AppendResult last,
      store->Append("order-3", ExpectedVersion::NoStream(), {Event("q1")}));
  CatchUp(*store, last.last_position);
  primary_->down = true;

  // A retry of the append the replica copied: no conflict (replays as a
  // no-op).
  ASSERT_OK_AND_ASSIGN(
      AppendResult retry,
      store->Append("order-1", ExpectedVersion::NoStream(), {placed}));
  EXPECT_TRUE(retry.journaled);
  // Above the replica's version: the primary may hold more.
  ASSERT_OK_AND_ASSIGN(
      AppendResult ahead,
      store->Append("order-2", ExpectedVersion::Exactly(4), {Event("p5")}));
  EXPECT_TRUE(ahead.journaled);
  EXPECT_EQ(ahead.next_expected_version, 5);
  // A stream the replica does not copy: nothing to check against.
  ASSERT_OK_AND_ASSIGN(
      AppendResult uncovered,
      store->Append("audit-1", ExpectedVersion::Exactly(1), {Event("x9")}));
  EXPECT_TRUE(uncovered.journaled);
  // Equal to the replica's version.
  ASSERT_OK_AND_ASSIGN(
      AppendResult equal,
      store->Append("order-3", ExpectedVersion::Exactly(1), {Event("q2")}));
  EXPECT_TRUE(equal.journaled);
  EXPECT_EQ(store->Status().journaled, 4);

  // On replay: the retry is a no-op, the two contradicted by the primary
  // are parked, the last one replays.
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.parked, 2);
  EXPECT_EQ(status.replayed, 2);
  EXPECT_THAT(Payloads(PrimaryStream("order-1")), ElementsAre("placed"));
  EXPECT_THAT(Payloads(PrimaryStream("order-2")), ElementsAre("p1", "p2"));
  EXPECT_THAT(Payloads(PrimaryStream("order-3")), ElementsAre("q1", "q2"));
}

// 6. Status() reports the replica.
TEST_F(FailoverReplicaReadsTest, StatusReportsTheReplica) {
  auto store = OpenWithReplica({"order-", "customer-"});
  ASSERT_NE(store, nullptr);
  ASSERT_OK(
      store->Append("audit-1", ExpectedVersion::NoStream(), {Event("x")}));
  ASSERT_OK_AND_ASSIGN(
      AppendResult last,
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("o")}));
  const absl::Time before_sync = absl::Now();
  CatchUp(*store, last.last_position);
  ASSERT_TRUE(WaitUntil(
      [&] {
        const std::optional<ReplicaStatus> replica = store->Status().replica;
        return replica.has_value() && replica->last_sync >= before_sync;
      },
      kCatchUpTimeout));
  const FailoverStatus status = store->Status();
  ASSERT_TRUE(status.replica.has_value());
  EXPECT_THAT(status.replica->stream_prefixes,
              ElementsAre("order-", "customer-"));
  EXPECT_EQ(status.replica->replica_position, last.last_position);
  EXPECT_EQ(status.replica->events, 1);
  EXPECT_LE(status.replica->last_sync, absl::Now());
  EXPECT_TRUE(status.replica->running);
  ASSERT_NE(store->replica(), nullptr);
  EXPECT_TRUE(store->replica()->Covers("customer-7"));
  EXPECT_FALSE(store->replica()->Covers("audit-1"));

  // During an outage: as of the last sync, with the error.
  primary_->down = true;
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::Exactly(1), {Event("o2")}));
  ASSERT_TRUE(
      WaitUntil([&] { return !store->Status().replica->last_error.ok(); },
                kCatchUpTimeout));
  const FailoverStatus down = store->Status();
  EXPECT_EQ(down.mode, Mode::kFallback);
  EXPECT_EQ(down.replica->replica_position, last.last_position);
  EXPECT_EQ(down.replica->last_error.code(), absl::StatusCode::kUnavailable);
}

TEST_F(FailoverReplicaReadsTest, WithoutAReplicaStatusHasNone) {
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  auto store = OpenFailover(options);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->Status().replica.has_value());
  EXPECT_EQ(store->replica(), nullptr);
}

// 7. With a staleness bound, reads of covered streams go to the replica
// while the primary is up: a write made behind the store's back is not
// seen until the replica syncs.
TEST_F(FailoverReplicaReadsTest, WithAStalenessBoundCoveredReadsUseTheReplica) {
  auto store = OpenWithReplica({"order-"}, absl::Hours(1));
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(
      AppendResult first,
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("a1")}));
  ASSERT_OK(
      store->Append("audit-1", ExpectedVersion::NoStream(), {Event("x1")}));
  CatchUp(*store, first.last_position);
  // Synced once at least (caught up); no further syncs until SyncOnce.
  ASSERT_TRUE(WaitUntil(
      [&] { return store->Status().replica->last_sync > absl::InfinitePast(); },
      kCatchUpTimeout));
  store->replica()->Stop();

  // Behind the failover store's back.
  ASSERT_OK(
      database_->Append("order-1", ExpectedVersion::Exactly(1), {Event("a2")}));
  ASSERT_OK(
      database_->Append("audit-1", ExpectedVersion::Exactly(1), {Event("x2")}));

  ASSERT_EQ(store->Status().mode, Mode::kPrimary);
  EXPECT_THAT(ReadPayloads(*store, "order-1"), ElementsAre("a1"));
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkAndHolds(1));
  ReadAllOptions orders;
  orders.filter.stream_prefix = "order-";
  ASSERT_OK_AND_ASSIGN(ReadToEndResult page, ReadToEnd(*store, orders));
  EXPECT_THAT(Payloads(page.events), ElementsAre("a1"));
  // Not covered: the primary.
  EXPECT_THAT(ReadPayloads(*store, "audit-1"), ElementsAre("x1", "x2"));

  ASSERT_OK(store->replica()->SyncOnce());
  EXPECT_THAT(ReadPayloads(*store, "order-1"), ElementsAre("a1", "a2"));
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkAndHolds(2));
  ASSERT_OK_AND_ASSIGN(page, ReadToEnd(*store, orders));
  EXPECT_THAT(Payloads(page.events), ElementsAre("a1", "a2"));
}

// 7. A replica that last caught up longer ago than the bound is not read.
TEST_F(FailoverReplicaReadsTest, AReplicaStalerThanTheBoundIsNotRead) {
  const absl::Duration bound = absl::Milliseconds(200);
  auto store = OpenWithReplica({"order-"}, bound);
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(
      AppendResult first,
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("a1")}));
  CatchUp(*store, first.last_position);
  store->replica()->Stop();
  ASSERT_OK(
      database_->Append("order-1", ExpectedVersion::Exactly(1), {Event("a2")}));
  const absl::Time last_sync = store->Status().replica->last_sync;
  ASSERT_TRUE(WaitUntil([&] { return absl::Now() > last_sync + bound; },
                        absl::Seconds(10)));
  EXPECT_THAT(ReadPayloads(*store, "order-1"), ElementsAre("a1", "a2"));
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkAndHolds(2));
}

// 7. Without a bound (the default), reads go to the primary while it is up.
TEST_F(FailoverReplicaReadsTest, WithoutAStalenessBoundReadsUseThePrimary) {
  auto store = OpenWithReplica({"order-"});
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(
      AppendResult first,
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("a1")}));
  CatchUp(*store, first.last_position);
  store->replica()->Stop();
  ASSERT_OK(
      database_->Append("order-1", ExpectedVersion::Exactly(1), {Event("a2")}));
  EXPECT_THAT(ReadPayloads(*store, "order-1"), ElementsAre("a1", "a2"));
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkAndHolds(2));
  ReadAllOptions orders;
  orders.filter.stream_prefix = "order-";
  ASSERT_OK_AND_ASSIGN(ReadToEndResult page, ReadToEnd(*store, orders));
  EXPECT_THAT(Payloads(page.events), ElementsAre("a1", "a2"));
}

#ifdef EVENTSTORE_TEST_POSTGRES
// 5. On a real PostgreSQL server stopped and started again, with a SQLite
// replica of the accounts.
class FailoverPostgresReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, PostgresServer::Start({}));
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    ASSERT_OK_AND_ASSIGN(rival_, OpenPrimary());
  }

  absl::StatusOr<std::unique_ptr<EventStore>> OpenPrimary() {
    PostgresOptions pg;
    pg.conninfo = server_->url();
    pg.connect_timeout = absl::Seconds(2);
    return PostgresEventStore::Open(pg);
  }

  std::unique_ptr<FailoverEventStore> OpenFailover() {
    absl::StatusOr<std::unique_ptr<EventStore>> primary = OpenPrimary();
    EXPECT_OK(primary);
    if (!primary.ok()) return nullptr;
    SqliteOptions sqlite;
    sqlite.path = dir_->File("replica.db");
    absl::StatusOr<std::unique_ptr<EventStore>> replica =
        SqliteEventStore::Open(sqlite);
    EXPECT_OK(replica);
    if (!replica.ok()) return nullptr;
    FailoverOptions options = ReplicaFailoverOptions(
        std::shared_ptr<EventStore>(std::move(*replica)), {"account-"});
    absl::StatusOr<std::unique_ptr<FailoverEventStore>> store =
        CreateFailoverOver(std::move(*primary), dir_->File("journal.db"),
                           options);
    EXPECT_OK(store);
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::unique_ptr<PostgresServer> server_;
  std::unique_ptr<TempDir> dir_;
  // Another writer on the primary; also reads it directly.
  std::unique_ptr<EventStore> rival_;
};

// The end-to-end test: aggregates loaded, changed and saved
// through an outage. Another writer changed one of them on the primary
// after the replica's last sync, before the outage: that save is parked on
// replay, never dropped; the others replay.
TEST_F(FailoverPostgresReplicaTest,
       AggregatesSavedThroughAnOutageReplayOrParkNeverDrop) {
  auto store = OpenFailover();
  ASSERT_NE(store, nullptr);
  AggregateRepositoryOptions repo_options;
  repo_options.stream_prefix = "account-";
  AggregateRepository<BankAccount> accounts(*store, repo_options);
  AggregateRepository<BankAccount> rival_accounts(*rival_, repo_options);
  {
    BankAccount shared("shared");
    ASSERT_OK(shared.Open("Ada"));
    ASSERT_OK(shared.Deposit(100));
    ASSERT_OK(accounts.Save(shared));
    BankAccount own("own");
    ASSERT_OK(own.Open("Bob"));
    ASSERT_OK(accounts.Save(own));
  }
  ASSERT_OK_AND_ASSIGN(Position head, rival_->HeadPosition());
  ASSERT_TRUE(store->replica()->WaitForPosition(head, kCatchUpTimeout))
      << store->replica()->Status().last_error;
  // The replica's last sync; then the rival writes, then the outage.
  store->replica()->Stop();
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> theirs,
                         rival_accounts.Load("shared"));
    ASSERT_OK(theirs->Withdraw(30));
    ASSERT_OK(rival_accounts.Save(*theirs));
    EXPECT_EQ(theirs->version(), 3);
  }
  ASSERT_OK(server_->Stop());

  // Loaded from the replica (the rival's change is not in it), changed,
  // saved: journaled.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> shared,
                       accounts.Load("shared"));
  EXPECT_EQ(shared->version(), 2);
  EXPECT_EQ(shared->state().balance(), 100);
  ASSERT_OK(shared->Deposit(50));
  ASSERT_OK(accounts.Save(*shared));
  EXPECT_EQ(shared->version(), 3);
  EXPECT_EQ(store->Status().mode, Mode::kFallback);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> own, accounts.Load("own"));
  EXPECT_EQ(own->version(), 1);
  ASSERT_OK(own->Deposit(10));
  ASSERT_OK(accounts.Save(*own));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> fresh,
                       accounts.LoadOrCreate("fresh"));
  EXPECT_EQ(fresh->version(), 0);
  ASSERT_OK(fresh->Open("Cy"));
  ASSERT_OK(accounts.Save(*fresh));
  EXPECT_EQ(store->Status().journaled, 3);

  // Own journaled writes are read during the outage.
  ASSERT_OK_AND_ASSIGN(own, accounts.Load("own"));
  EXPECT_EQ(own->version(), 2);
  EXPECT_EQ(own->state().balance(), 10);
  ASSERT_OK_AND_ASSIGN(fresh, accounts.Load("fresh"));
  EXPECT_EQ(fresh->version(), 1);
  EXPECT_EQ(fresh->state().owner(), "Cy");
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("account-shared"));
  ASSERT_THAT(events, SizeIs(3));
  EXPECT_FALSE(events[1].position.IsStart());
  EXPECT_TRUE(events[2].position.IsStart());
  const Uuid journaled_id = events[2].id;
  EXPECT_THAT(store->StreamVersion("account-own"), IsOkAndHolds(2));
  EXPECT_THAT(store->EventExists(journaled_id), IsOkAndHolds(true));
  ReadAllOptions all_accounts;
  all_accounts.filter.stream_prefix = "account-";
  ASSERT_OK_AND_ASSIGN(ReadToEndResult during, ReadToEnd(*store, all_accounts));
  ASSERT_THAT(during.events, SizeIs(6));
  EXPECT_EQ(during.events[3].id, journaled_id);

  ASSERT_OK(server_->StartAgain());
  ASSERT_OK(store->ReplayNow());
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.replayed, 2);
  EXPECT_EQ(status.parked, 1);
  EXPECT_EQ(status.pending, 0);

  // Parked, not dropped: in the journal's dead letters.
  ASSERT_OK_AND_ASSIGN(
      std::vector<DeadLetter> parked,
      store->journal().dead_letters().List(FailoverEventStore::kReplayName,
                                           DeadLetterStatus::kParked, 10));
  ASSERT_THAT(parked, SizeIs(1));
  EXPECT_EQ(parked[0].event_id, journaled_id);
  EXPECT_THAT(parked[0].error, HasSubstr("account-shared"));

  // The primary: the rival's change, and the other saves replayed.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> on_primary,
                       rival_accounts.Load("shared"));
  EXPECT_EQ(on_primary->version(), 3);
  EXPECT_EQ(on_primary->state().balance(), 70);
  ASSERT_OK_AND_ASSIGN(on_primary, rival_accounts.Load("own"));
  EXPECT_EQ(on_primary->version(), 2);
  EXPECT_EQ(on_primary->state().balance(), 10);
  ASSERT_OK_AND_ASSIGN(on_primary, rival_accounts.Load("fresh"));
  EXPECT_EQ(on_primary->state().owner(), "Cy");
  // Read again through the store, resumed where the outage's read ended.
  ReadAllOptions resume = all_accounts;
  resume.from_position = during.next;
  ASSERT_OK_AND_ASSIGN(ReadToEndResult after, ReadToEnd(*store, resume));
  std::vector<std::string> streams;
  for (const RecordedEvent& e : after.events) streams.push_back(e.stream);
  EXPECT_THAT(streams,
              ElementsAre("account-shared", "account-own", "account-fresh"));
  ASSERT_THAT(after.events, SizeIs(3));
  EXPECT_NE(after.events[0].id, journaled_id);  // the rival's
}

// The replica keeps following through the outage: it serves the reads
// meanwhile (with the journaled writes), fails its syncs, and after the
// restart catches up, replayed events included, at the primary's
// positions.
TEST_F(FailoverPostgresReplicaTest,
       ReplicaServesTheOutageAndCopiesTheReplayAfterwards) {
  auto store = OpenFailover();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Append("account-x", ExpectedVersion::NoStream(),
                          {Event("x1"), Event("x2")}));
  ASSERT_OK(
      store->Append("other-1", ExpectedVersion::NoStream(), {Event("o1")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> before,
                       store->ReadStream("account-x"));
  ASSERT_OK_AND_ASSIGN(Position head, rival_->HeadPosition());
  ASSERT_TRUE(store->replica()->WaitForPosition(before.back().position,
                                                kCatchUpTimeout))
      << store->replica()->Status().last_error;

  ASSERT_OK(server_->Stop());
  ASSERT_TRUE(WaitUntil(
      [&] { return absl::IsUnavailable(store->Status().replica->last_error); },
      kCatchUpTimeout));
  EventData x3 = Event("x3");
  ASSERT_OK_AND_ASSIGN(
      AppendResult journaled,
      store->Append("account-x", ExpectedVersion::Exactly(2), {x3}));
  EXPECT_TRUE(journaled.journaled);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> during,
                       store->ReadStream("account-x"));
  ASSERT_THAT(during, SizeIs(3));
  ExpectSameEvents(
      std::vector<RecordedEvent>(during.begin(), during.begin() + 2), before);
  ExpectJournaled(std::vector<RecordedEvent>(during.begin() + 2, during.end()),
                  "account-x", {"x3"}, {3});
  EXPECT_THAT(store->StreamVersion("account-x"), IsOkAndHolds(3));
  EXPECT_THAT(store->EventExists(before[0].id), IsOkAndHolds(true));
  EXPECT_THAT(store->EventExists(x3.id), IsOkAndHolds(true));
  EXPECT_THAT(store->EventExists(Uuid::Generate()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->ReadStream("other-1"),
              StatusIs(absl::StatusCode::kUnavailable));

  ASSERT_OK(server_->StartAgain());
  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().mode, Mode::kPrimary);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> primary,
                       rival_->ReadStream("account-x"));
  ASSERT_THAT(Payloads(primary), ElementsAre("x1", "x2", "x3"));
  ASSERT_TRUE(store->replica()->WaitForPosition(primary.back().position,
                                                kCatchUpTimeout))
      << store->replica()->Status().last_error;
  EXPECT_GT(primary.back().position, head);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> copy,
                       store->replica()->ReadStream("account-x", {}));
  ExpectSameEvents(copy, primary);
  EXPECT_TRUE(
      WaitUntil([&] { return store->Status().replica->last_error.ok(); },
                kCatchUpTimeout))
      << store->Status().replica->last_error;
}
#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore::test
