// FailoverEventStore with a replica (issue 11), reads: during an outage
// they are answered by the replica (with the primary's positions) merged
// with the journal, never partially; Status() reports the replica; with
// replica_read_staleness, reads of covered streams go to the replica while
// the primary is up. The primary is a SQLite store behind a switch; the
// FailoverPostgres* tests stop and start a real PostgreSQL server.

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/store_replica.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/failover/failover_fixture.h"
#include "tests/failover/failover_replica_fixture.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using Mode = FailoverStatus::Mode;

class FailoverReplicaReadsTest : public FailoverReplicaFixture {
 protected:
  // A store with a replica of the "order-" streams and `staleness`, whose
  // replica copied "order-1" = {a1} and was stopped; then a2 was appended
  // to the primary behind the store's back (the primary holds {a1, a2}).
  std::unique_ptr<FailoverEventStore> OpenWithReplicaOneEventBehind(
      absl::Duration staleness) {
    auto store = OpenWithReplica({"order-"}, staleness);
    if (store == nullptr) return nullptr;
    absl::StatusOr<AppendResult> first =
        store->Append("order-1", ExpectedVersion::NoStream(), {Event("a1")});
    EXPECT_OK(first);
    if (!first.ok()) return nullptr;
    CatchUp(*store, first->last_position);
    if (HasFatalFailure()) return nullptr;
    store->replica()->Stop();
    absl::StatusOr<AppendResult> behind = database_->Append(
        "order-1", ExpectedVersion::Exactly(1), {Event("a2")});
    EXPECT_OK(behind);
    return behind.ok() ? std::move(store) : nullptr;
  }
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
  ASSERT_THAT(PayloadsOf(before), ElementsAre("a1", "a2", "a3"));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> absent_before,
                       store->ReadStream("order-9"));
  CatchUp(*store, last.last_position);

  primary_->down = true;
  // Before any append (kPrimary): the primary fails, the replica answers.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("order-1"));
  ExpectSameEvents(events, before);
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkHolding(3));

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
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkHolding(5));

  ReadStreamOptions backward;
  backward.direction = Direction::kBackward;
  backward.max_count = 2;
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("order-1", backward));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("a5", "a4"));
  ReadStreamOptions from;
  from.from_version = 3;
  from.max_count = 2;
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("order-1", from));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("a3", "a4"));
  EXPECT_EQ(events[0].position, before[2].position);

  // A covered stream with nothing pending: the replica alone, as the
  // primary answered before the outage.
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("order-2"));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("b1"));
  EXPECT_EQ(events[0].position, last.last_position);
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("order-9"));
  ExpectSameEvents(events, absent_before);
  EXPECT_THAT(store->StreamVersion("order-9"), IsOkHolding(0));

  EXPECT_THAT(store->EventExists(a1.id), IsOkHolding(true));
  EXPECT_THAT(store->EventExists(a4.id), IsOkHolding(true));
  // With prefixes the event may be in a stream not copied.
  EXPECT_THAT(store->EventExists(Uuid::Generate()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(primary_->appends, 4);

  // Replayed with the versions the reads showed.
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().parked, 0);
  std::vector<RecordedEvent> replayed = PrimaryStream("order-1");
  EXPECT_THAT(PayloadsOf(replayed), ElementsAre("a1", "a2", "a3", "a4", "a5"));
  EXPECT_EQ(replayed[3].id, a4.id);
}

// In kFallback the primary is known to be down: reads of covered streams
// go to the replica without asking it (no connection timeout per read),
// even once it answers again, until the store recovers.
TEST_F(FailoverReplicaReadsTest, InFallbackReadsGoToTheReplicaNotThePrimary) {
  auto store = OpenWithReplica({"order-"});
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(
      AppendResult last,
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("a1")}));
  CatchUp(*store, last.last_position);
  primary_->down = true;
  ASSERT_OK(
      store->Append("order-2", ExpectedVersion::NoStream(), {Event("b1")}));
  ASSERT_EQ(store->Status().mode, Mode::kFallback);
  store->replica()->Stop();
  // The primary answers again (the health check has not noticed yet) and
  // takes a write behind the store's back.
  primary_->down = false;
  ASSERT_OK(
      database_->Append("order-1", ExpectedVersion::Exactly(1), {Event("a2")}));

  EXPECT_THAT(ReadPayloads(*store, "order-1"), ElementsAre("a1"));
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkHolding(1));
  ReadAllOptions orders;
  orders.filter.stream_prefix = "order-";
  ASSERT_OK_AND_ASSIGN(ReadToEndResult page, ReadToEnd(*store, orders));
  EXPECT_THAT(PayloadsOf(page.events), ElementsAre("a1", "b1"));
  EXPECT_EQ(page.next, last.last_position);

  // Recovered: the primary again.
  ASSERT_OK(store->ReplayNow());
  ASSERT_EQ(store->Status().mode, Mode::kPrimary);
  EXPECT_THAT(ReadPayloads(*store, "order-1"), ElementsAre("a1", "a2"));
  ASSERT_OK_AND_ASSIGN(page, ReadToEnd(*store, orders));
  // a2 was written before b1 replayed.
  EXPECT_THAT(PayloadsOf(page.events), ElementsAre("a1", "a2", "b1"));
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
  EXPECT_THAT(store->EventExists(x.id), IsOkHolding(true));
  EXPECT_THAT(store->EventExists(y.id), IsOkHolding(true));
  EXPECT_THAT(store->EventExists(Uuid::Generate()), IsOkHolding(false));
  // Any stream is covered.
  EXPECT_THAT(store->StreamVersion("anything-1"), IsOkHolding(1));
  EXPECT_THAT(store->StreamVersion("never-written"), IsOkHolding(0));
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
  EXPECT_THAT(store->StreamVersion("audit-2"), IsOkHolding(2));
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
  EXPECT_THAT(PayloadsOf(page.events), ElementsAre("o1"));
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
  EXPECT_THAT(PayloadsOf(journaled), ElementsAre("j1", "j2", "j3"));
  EXPECT_THAT(VersionsOf(journaled), ElementsAre(3, 1, 2));
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
  EXPECT_THAT(IdsOf(again.events), ElementsAreArray(IdsOf(journaled)));
  EXPECT_EQ(again.next, during.next);

  // After recovery: the replayed events, with their final positions.
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  ASSERT_EQ(store->Status().mode, Mode::kPrimary);
  EXPECT_EQ(store->Status().parked, 0);
  ASSERT_OK_AND_ASSIGN(ReadToEndResult after, ReadToEnd(*store, resume));
  EXPECT_THAT(IdsOf(after.events), ElementsAreArray(IdsOf(journaled)));
  EXPECT_THAT(VersionsOf(after.events), ElementsAre(3, 1, 2));
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
  EXPECT_THAT(PayloadsOf(only_t.events), ElementsAre("j2"));

  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  ReadAllOptions resume;
  resume.from_position = during.next;
  ASSERT_OK_AND_ASSIGN(ReadToEndResult after, ReadToEnd(*store, resume));
  EXPECT_THAT(IdsOf(after.events), ElementsAre(j1.id, j2.id));
  for (const RecordedEvent& e : after.events) {
    EXPECT_FALSE(e.position.IsStart()) << e.payload;
  }
}

// ReadAll's other filter fields (event types, tenant) apply to the
// replica's events and to the journaled ones alike.
TEST_F(FailoverReplicaReadsTest, ReadAllFiltersApplyToTheJournalToo) {
  auto store = OpenWithReplica({});
  ASSERT_NE(store, nullptr);
  auto make = [](std::string payload, std::string type, std::string tenant) {
    EventData e = Event(std::move(payload));
    e.type = std::move(type);
    e.metadata.set_tenant_id(std::move(tenant));
    return e;
  };
  constexpr char kTock[] = "eventstore.test.v1.Tock";
  ASSERT_OK(store->Append("s-1", ExpectedVersion::NoStream(),
                          {make("a", kTickType, "t1"), make("b", kTock, "t2"),
                           make("c", kTock, "t1")}));
  CatchUp(*store);
  primary_->down = true;
  ASSERT_OK(
      store->Append("s-1", ExpectedVersion::Exactly(3),
                    {make("d", kTickType, "t2"), make("e", kTock, "t1")}));
  ASSERT_OK(store->Append("s-2", ExpectedVersion::NoStream(),
                          {make("f", kTock, "t2")}));

  ReadAllOptions tocks;
  tocks.filter.event_types = {kTock};
  ASSERT_OK_AND_ASSIGN(ReadToEndResult read, ReadToEnd(*store, tocks));
  EXPECT_THAT(PayloadsOf(read.events), ElementsAre("b", "c", "e", "f"));
  ReadAllOptions t1;
  t1.filter.tenant_id = "t1";
  ASSERT_OK_AND_ASSIGN(read, ReadToEnd(*store, t1));
  EXPECT_THAT(PayloadsOf(read.events), ElementsAre("a", "c", "e"));
  ReadAllOptions both;
  both.filter.stream_prefix = "s-2";
  both.filter.event_types = {kTock};
  both.filter.tenant_id = "t2";
  ASSERT_OK_AND_ASSIGN(read, ReadToEnd(*store, both));
  EXPECT_THAT(PayloadsOf(read.events), ElementsAre("f"));
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
  ASSERT_TRUE(PollUntil(
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
      PollUntil([&] { return !store->Status().replica->last_error.ok(); },
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
  ASSERT_TRUE(PollUntil(
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
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkHolding(1));
  ReadAllOptions orders;
  orders.filter.stream_prefix = "order-";
  ASSERT_OK_AND_ASSIGN(ReadToEndResult page, ReadToEnd(*store, orders));
  EXPECT_THAT(PayloadsOf(page.events), ElementsAre("a1"));
  // Not covered: the primary.
  EXPECT_THAT(ReadPayloads(*store, "audit-1"), ElementsAre("x1", "x2"));

  ASSERT_OK(store->replica()->SyncOnce());
  EXPECT_THAT(ReadPayloads(*store, "order-1"), ElementsAre("a1", "a2"));
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkHolding(2));
  ASSERT_OK_AND_ASSIGN(page, ReadToEnd(*store, orders));
  EXPECT_THAT(PayloadsOf(page.events), ElementsAre("a1", "a2"));
}

// 7. A replica that last caught up longer ago than the bound is not read.
TEST_F(FailoverReplicaReadsTest, AReplicaStalerThanTheBoundIsNotRead) {
  const absl::Duration bound = absl::Milliseconds(200);
  auto store = OpenWithReplicaOneEventBehind(bound);
  ASSERT_NE(store, nullptr);
  const absl::Time last_sync = store->Status().replica->last_sync;
  ASSERT_TRUE(PollUntil([&] { return absl::Now() > last_sync + bound; },
                        absl::Seconds(10)));
  EXPECT_THAT(ReadPayloads(*store, "order-1"), ElementsAre("a1", "a2"));
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkHolding(2));
}

// 7. Without a bound (the default), reads go to the primary while it is up.
TEST_F(FailoverReplicaReadsTest, WithoutAStalenessBoundReadsUseThePrimary) {
  auto store = OpenWithReplicaOneEventBehind(absl::ZeroDuration());
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(ReadPayloads(*store, "order-1"), ElementsAre("a1", "a2"));
  EXPECT_THAT(store->StreamVersion("order-1"), IsOkHolding(2));
  ReadAllOptions orders;
  orders.filter.stream_prefix = "order-";
  ASSERT_OK_AND_ASSIGN(ReadToEndResult page, ReadToEnd(*store, orders));
  EXPECT_THAT(PayloadsOf(page.events), ElementsAre("a1", "a2"));
}

#ifdef EVENTSTORE_TEST_POSTGRES
class FailoverPostgresReplicaReadsTest : public FailoverPostgresReplicaFixture {
};

TEST_F(FailoverPostgresReplicaReadsTest,
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
  ASSERT_TRUE(PollUntil(
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
  EXPECT_THAT(store->StreamVersion("account-x"), IsOkHolding(3));
  EXPECT_THAT(store->EventExists(before[0].id), IsOkHolding(true));
  EXPECT_THAT(store->EventExists(x3.id), IsOkHolding(true));
  EXPECT_THAT(store->EventExists(Uuid::Generate()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->ReadStream("other-1"),
              StatusIs(absl::StatusCode::kUnavailable));

  ASSERT_OK(server_->StartAgain());
  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().mode, Mode::kPrimary);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> primary,
                       rival_->ReadStream("account-x"));
  ASSERT_THAT(PayloadsOf(primary), ElementsAre("x1", "x2", "x3"));
  ASSERT_TRUE(store->replica()->WaitForPosition(primary.back().position,
                                                kCatchUpTimeout))
      << store->replica()->Status().last_error;
  EXPECT_GT(primary.back().position, head);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> copy,
                       store->replica()->ReadStream("account-x", {}));
  ExpectSameEvents(copy, primary);
  EXPECT_TRUE(
      PollUntil([&] { return store->Status().replica->last_error.ok(); },
                kCatchUpTimeout))
      << store->Status().replica->last_error;
}
#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore::test
