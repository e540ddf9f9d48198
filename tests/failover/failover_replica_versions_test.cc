// FailoverEventStore with a replica (issue 11), expected versions through
// an outage: an append to be journaled is checked against the replica's
// version of its stream and refused at once when the replica already
// contradicts it; anything else is journaled, and replay parks (never
// drops) what conflicts with writes the replica had not seen. The
// FailoverPostgres* test saves aggregates through a real PostgreSQL
// server's outage.

#include <memory>
#include <string>
#include <vector>

#include "eventstore/aggregate_repository.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/errors.h"
#include "eventstore/failover_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aggregates/bank_account.h"
#include "tests/failover/failover_fixture.h"
#include "tests/failover/failover_replica_fixture.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using Mode = FailoverStatus::Mode;

class FailoverReplicaVersionsTest : public FailoverReplicaFixture {};

// 4. Expected versions through an outage: an aggregate loaded from the
// replica and the journal is saved; an expected version the replica
// already contradicts is refused at once, nothing journaled.
TEST_F(FailoverReplicaVersionsTest,
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
TEST_F(FailoverReplicaVersionsTest,
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
  EXPECT_THAT(PayloadsOf(PrimaryStream("order-1")), ElementsAre("placed"));
  EXPECT_THAT(PayloadsOf(PrimaryStream("order-2")), ElementsAre("p1", "p2"));
  EXPECT_THAT(PayloadsOf(PrimaryStream("order-3")), ElementsAre("q1", "q2"));
}

// A pending append bound to be parked (its expected version is above the
// replica's, and no later write is known) is left out of reads; an append
// at the version read is then taken, and replays while the other parks.
TEST_F(FailoverReplicaVersionsTest,
       PendingAppendsBoundToBeParkedAreLeftOutOfReads) {
  auto store = OpenWithReplica({"order-"});
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(AppendResult last,
                       store->Append("order-2", ExpectedVersion::NoStream(),
                                     {Event("p1"), Event("p2")}));
  CatchUp(*store, last.last_position);
  primary_->down = true;

  ASSERT_OK_AND_ASSIGN(
      AppendResult ahead,
      store->Append("order-2", ExpectedVersion::Exactly(4), {Event("p5")}));
  EXPECT_TRUE(ahead.journaled);
  EXPECT_THAT(ReadPayloads(*store, "order-2"), ElementsAre("p1", "p2"));
  EXPECT_THAT(store->StreamVersion("order-2"), IsOkHolding(2));

  ASSERT_OK_AND_ASSIGN(
      AppendResult at_read,
      store->Append("order-2", ExpectedVersion::Exactly(2), {Event("p3")}));
  EXPECT_TRUE(at_read.journaled);
  EXPECT_EQ(at_read.next_expected_version, 3);
  EXPECT_THAT(ReadPayloads(*store, "order-2"), ElementsAre("p1", "p2", "p3"));
  EXPECT_THAT(store->StreamVersion("order-2"), IsOkHolding(3));
  absl::StatusOr<AppendResult> stale =
      store->Append("order-2", ExpectedVersion::Exactly(2), {Event("stale")});
  ASSERT_THAT(stale, StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(WrongVersion(stale.status()).actual, 3);

  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.parked, 1);
  EXPECT_EQ(status.replayed, 1);
  EXPECT_THAT(PayloadsOf(PrimaryStream("order-2")),
              ElementsAre("p1", "p2", "p3"));
}

#ifdef EVENTSTORE_TEST_POSTGRES
class FailoverPostgresReplicaVersionsTest
    : public FailoverPostgresReplicaFixture {};

// The end-to-end test: aggregates loaded, changed and saved
// through an outage. Another writer changed one of them on the primary
// after the replica's last sync, before the outage: that save is parked on
// replay, never dropped; the others replay.
TEST_F(FailoverPostgresReplicaVersionsTest,
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
  EXPECT_THAT(store->StreamVersion("account-own"), IsOkHolding(2));
  EXPECT_THAT(store->EventExists(journaled_id), IsOkHolding(true));
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
#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore::test
