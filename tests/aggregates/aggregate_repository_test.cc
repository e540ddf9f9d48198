// AggregateRepository<A> on every backend of AllTestBackends(): loading,
// saving with optimistic concurrency, retries, metadata and snapshots.

#include "eventstore/aggregate_repository.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/status_macros.h"
#include "eventstore/test/v1/bank.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/aggregates/bank_account.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::BankAccount;
using ::eventstore::test::FailingSnapshotAccount;
using ::eventstore::test::LenientAccount;
using ::eventstore::test::SnapshotAccount;
using ::eventstore::test::SnapshotAccountV2;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kAuditedType[] = "eventstore.test.v1.AccountAudited";
constexpr char kStateType[] = "eventstore.test.v1.AccountState";

std::vector<std::string> Types(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> types;
  for (const RecordedEvent& e : events) types.push_back(e.type);
  return types;
}

AggregateRepositoryOptions Prefixed(int64_t snapshot_every = 0) {
  AggregateRepositoryOptions options;
  options.stream_prefix = "account-";
  options.snapshot_every = snapshot_every;
  return options;
}

class AggregateRepositoryTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(store_, GetParam().open(nullptr));
  }

  // Saves an opened account `id` and `deposits` more events, one save
  // each, through `repository`: 1 + deposits events.
  template <class A>
  void SaveOneByOne(const AggregateRepository<A>& repository,
                    const std::string& id, int deposits) {
    A account(id);
    ASSERT_OK(account.Open("Ada"));
    ASSERT_OK(repository.Save(account));
    for (int i = 1; i <= deposits; ++i) {
      ASSERT_OK(account.Deposit(i));
      ASSERT_OK(repository.Save(account));
    }
    ASSERT_EQ(account.version(), deposits + 1);
  }

  std::unique_ptr<EventStore> store_;
};

// --- load and save -----------------------------------------------------------

TEST_P(AggregateRepositoryTest, LoadOfAnAbsentStreamIsNotFound) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  EXPECT_THAT(accounts.Load("nobody"), StatusIs(absl::StatusCode::kNotFound,
                                                HasSubstr("account-nobody")));
}

TEST_P(AggregateRepositoryTest, SaveThenLoadRoundTrips) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  EXPECT_EQ(accounts.StreamName("a-1"), "account-a-1");
  BankAccount account("a-1");
  ASSERT_OK(account.Open("Ada"));
  ASSERT_OK(account.Deposit(100));
  ASSERT_OK(account.Withdraw(30));
  ASSERT_OK(accounts.Save(account));
  EXPECT_EQ(account.version(), 3);
  EXPECT_THAT(account.uncommitted_events(), IsEmpty());

  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stored,
                       store_->ReadStream("account-a-1"));
  EXPECT_THAT(Types(stored), ElementsAre("eventstore.test.v1.AccountOpened",
                                         "eventstore.test.v1.Deposited",
                                         "eventstore.test.v1.Withdrawn"));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> loaded,
                       accounts.Load("a-1"));
  EXPECT_EQ(loaded->id(), "a-1");
  EXPECT_EQ(loaded->version(), 3);
  EXPECT_EQ(loaded->applied(), 3);
  EXPECT_THAT(loaded->uncommitted_events(), IsEmpty());
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->state(), account.state()));
  EXPECT_EQ(loaded->state().balance(), 70);
}

TEST_P(AggregateRepositoryTest, VersionFollowsEachSave) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  BankAccount account("a-1");
  // Nothing to save: OK, nothing written.
  ASSERT_OK(accounts.Save(account));
  EXPECT_EQ(account.version(), 0);
  ASSERT_OK_AND_ASSIGN(int64_t stream_version,
                       store_->StreamVersion("account-a-1"));
  EXPECT_EQ(stream_version, 0);

  ASSERT_OK(account.Open("Ada"));
  ASSERT_OK(accounts.Save(account));
  EXPECT_EQ(account.version(), 1);
  ASSERT_OK(account.Deposit(1));
  ASSERT_OK(account.Deposit(2));
  EXPECT_EQ(account.version(), 1);
  ASSERT_OK(accounts.Save(account));
  EXPECT_EQ(account.version(), 3);
  ASSERT_OK(accounts.Save(account));
  EXPECT_EQ(account.version(), 3);
  ASSERT_OK_AND_ASSIGN(stream_version, store_->StreamVersion("account-a-1"));
  EXPECT_EQ(stream_version, 3);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> loaded,
                       accounts.Load("a-1"));
  EXPECT_EQ(loaded->version(), 3);
  ASSERT_OK(loaded->Deposit(3));
  ASSERT_OK(accounts.Save(*loaded));
  EXPECT_EQ(loaded->version(), 4);
}

TEST_P(AggregateRepositoryTest, StreamNameFunctionReplacesThePrefix) {
  AggregateRepositoryOptions options;
  options.stream_prefix = "ignored-";
  options.stream_name = [](std::string_view id) {
    return "bank_" + std::string(id);
  };
  AggregateRepository<BankAccount> accounts(*store_, options);
  BankAccount account("a-1");
  ASSERT_OK(account.Open("Ada"));
  ASSERT_OK(accounts.Save(account));
  ASSERT_OK_AND_ASSIGN(int64_t version, store_->StreamVersion("bank_a-1"));
  EXPECT_EQ(version, 1);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> loaded,
                       accounts.Load("a-1"));
  EXPECT_EQ(loaded->state().owner(), "Ada");
}

// --- concurrency -------------------------------------------------------------

TEST_P(AggregateRepositoryTest, NewAggregateOnAnExistingStreamIsAborted) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  BankAccount first("a-1");
  ASSERT_OK(first.Open("Ada"));
  ASSERT_OK(accounts.Save(first));

  BankAccount second("a-1");
  ASSERT_OK(second.Open("Bob"));
  absl::Status saved = accounts.Save(second);
  EXPECT_THAT(saved, StatusIs(absl::StatusCode::kAborted));
  EXPECT_TRUE(IsWrongExpectedVersion(saved));
  EXPECT_EQ(second.version(), 0);
  EXPECT_THAT(second.uncommitted_events(), SizeIs(1));
}

TEST_P(AggregateRepositoryTest, ConcurrentModificationIsAbortedThenRetried) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  SaveOneByOne(accounts, "a-1", 1);  // opened, deposited 1: version 2

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> mine, accounts.Load("a-1"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> theirs,
                       accounts.Load("a-1"));
  ASSERT_OK(theirs->Deposit(50));
  ASSERT_OK(accounts.Save(*theirs));

  ASSERT_OK(mine->Deposit(7));
  absl::Status saved = accounts.Save(*mine);
  ASSERT_THAT(saved, StatusIs(absl::StatusCode::kAborted));
  ASSERT_TRUE(IsWrongExpectedVersion(saved));
  std::optional<WrongExpectedVersionInfo> info = GetWrongExpectedVersion(saved);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->stream, "account-a-1");
  EXPECT_EQ(info->expected, ExpectedVersion::Exactly(2));
  EXPECT_EQ(info->actual, 3);
  // The losing aggregate is unchanged: still version 2, its event unsaved.
  EXPECT_EQ(mine->version(), 2);
  EXPECT_THAT(mine->uncommitted_events(), SizeIs(1));

  // Reload and run the command again.
  ASSERT_OK_AND_ASSIGN(mine, accounts.Load("a-1"));
  EXPECT_EQ(mine->version(), 3);
  ASSERT_OK(mine->Deposit(7));
  ASSERT_OK(accounts.Save(*mine));
  EXPECT_EQ(mine->version(), 4);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> final_state,
                       accounts.Load("a-1"));
  EXPECT_EQ(final_state->state().balance(), 1 + 50 + 7);
}

TEST_P(AggregateRepositoryTest, UpdateRetriesAfterAConcurrentChange) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  SaveOneByOne(accounts, "a-1", 0);

  int attempts = 0;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<BankAccount> updated,
      accounts.Update("a-1", [&](BankAccount& account) -> absl::Status {
        ++attempts;
        if (attempts == 1) {
          // Another writer gets in between this load and its save.
          absl::StatusOr<std::unique_ptr<BankAccount>> other =
              accounts.Load("a-1");
          if (!other.ok()) return other.status();
          absl::Status deposited = (*other)->Deposit(100);
          if (!deposited.ok()) return deposited;
          absl::Status saved = accounts.Save(**other);
          if (!saved.ok()) return saved;
        }
        return account.Deposit(5);
      }));
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(updated->version(), 3);
  EXPECT_EQ(updated->state().balance(), 105);
  EXPECT_THAT(updated->uncommitted_events(), IsEmpty());
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stored,
                       store_->ReadStream("account-a-1"));
  EXPECT_THAT(stored, SizeIs(3));
}

TEST_P(AggregateRepositoryTest, UpdateGivesUpAfterMaxAttempts) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  SaveOneByOne(accounts, "a-1", 0);

  int attempts = 0;
  absl::StatusOr<std::unique_ptr<BankAccount>> updated = accounts.Update(
      "a-1",
      [&](BankAccount& account) -> absl::Status {
        ++attempts;
        // Someone else always wins.
        BankAccount other("a-1");
        other.MarkCommitted(account.version());
        absl::Status deposited = other.Deposit(1);
        if (!deposited.ok()) return deposited;
        absl::Status saved = accounts.Save(other);
        if (!saved.ok()) return saved;
        return account.Deposit(5);
      },
      /*max_attempts=*/2);
  EXPECT_THAT(updated, StatusIs(absl::StatusCode::kAborted));
  EXPECT_TRUE(IsWrongExpectedVersion(updated.status()));
  EXPECT_EQ(attempts, 2);
}

TEST_P(AggregateRepositoryTest, UpdateReturnsTheCommandsErrorWithoutRetrying) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  SaveOneByOne(accounts, "a-1", 0);
  int attempts = 0;
  EXPECT_THAT(accounts.Update("a-1",
                              [&](BankAccount& account) {
                                ++attempts;
                                return account.Withdraw(1000);
                              }),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("insufficient funds")));
  EXPECT_EQ(attempts, 1);
  ASSERT_OK_AND_ASSIGN(int64_t version, store_->StreamVersion("account-a-1"));
  EXPECT_EQ(version, 1);
}

TEST_P(AggregateRepositoryTest, UpdateOfAnAbsentStreamIsNotFound) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  int attempts = 0;
  auto command = [&](BankAccount&) {
    ++attempts;
    return absl::OkStatus();
  };
  EXPECT_THAT(accounts.Update("nobody", command),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(attempts, 0);
  EXPECT_THAT(accounts.Update("nobody", command, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- load or create ---------------------------------------------------------

TEST_P(AggregateRepositoryTest, LoadOrCreateOfAnAbsentStreamIsANewAggregate) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> account,
                       accounts.LoadOrCreate("a-1"));
  EXPECT_EQ(account->id(), "a-1");
  EXPECT_EQ(account->version(), 0);
  EXPECT_EQ(account->applied(), 0);
  EXPECT_THAT(account->uncommitted_events(), IsEmpty());
  // Loading wrote nothing.
  ASSERT_OK_AND_ASSIGN(int64_t version, store_->StreamVersion("account-a-1"));
  EXPECT_EQ(version, 0);

  ASSERT_OK(account->Open("Ada"));
  ASSERT_OK(account->Deposit(40));
  ASSERT_OK(accounts.Save(*account));
  EXPECT_EQ(account->version(), 2);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> loaded,
                       accounts.Load("a-1"));
  EXPECT_EQ(loaded->state().owner(), "Ada");
  EXPECT_EQ(loaded->state().balance(), 40);
}

TEST_P(AggregateRepositoryTest, LoadOrCreateOfAnExistingStreamLoadsIt) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  SaveOneByOne(accounts, "a-1", 2);  // opened, deposited 1 and 2
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> account,
                       accounts.LoadOrCreate("a-1"));
  EXPECT_EQ(account->version(), 3);
  EXPECT_EQ(account->state().balance(), 3);
  ASSERT_OK(account->Deposit(4));
  ASSERT_OK(accounts.Save(*account));
  EXPECT_EQ(account->version(), 4);
}

TEST_P(AggregateRepositoryTest, LoadOrCreateFromASnapshot) {
  AggregateRepository<SnapshotAccount> accounts(*store_, Prefixed(2));
  SaveOneByOne(accounts, "a-1", 2);  // a snapshot at version 2
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SnapshotAccount> account,
                       accounts.LoadOrCreate("a-1"));
  EXPECT_TRUE(account->restored());
  EXPECT_EQ(account->version(), 3);
  EXPECT_EQ(account->state().balance(), 3);
}

TEST_P(AggregateRepositoryTest, LoadOrCreateRaceIsAbortedForTheLoser) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> first,
                       accounts.LoadOrCreate("a-1"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> second,
                       accounts.LoadOrCreate("a-1"));
  ASSERT_OK(first->Open("Ada"));
  ASSERT_OK(second->Open("Bob"));
  ASSERT_OK(accounts.Save(*first));
  absl::Status saved = accounts.Save(*second);
  EXPECT_THAT(saved, StatusIs(absl::StatusCode::kAborted));
  ASSERT_TRUE(IsWrongExpectedVersion(saved));
  EXPECT_EQ(GetWrongExpectedVersion(saved)->expected,
            ExpectedVersion::NoStream());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> loaded,
                       accounts.Load("a-1"));
  EXPECT_EQ(loaded->state().owner(), "Ada");
}

TEST_P(AggregateRepositoryTest, LoadOrCreateKeepsOtherNotFoundErrors) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  test::v1::AccountAudited audited;
  audited.set_note("checked");
  std::vector<EventData> events = {EventData::From(audited)};
  ASSERT_OK(store_->Append("account-a-1", ExpectedVersion::NoStream(), events)
                .status());
  // The stream exists, with an event BankAccount has no handler for.
  EXPECT_THAT(accounts.LoadOrCreate("a-1"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(kAuditedType)));
}

TEST_P(AggregateRepositoryTest, UpdateOrCreateCreatesThenUpdates) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  auto deposit = [](BankAccount& account) -> absl::Status {
    if (account.version() == 0) ES_RETURN_IF_ERROR(account.Open("Ada"));
    return account.Deposit(10);
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> created,
                       accounts.UpdateOrCreate("a-1", deposit));
  EXPECT_EQ(created->version(), 2);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> updated,
                       accounts.UpdateOrCreate("a-1", deposit));
  EXPECT_EQ(updated->version(), 3);
  EXPECT_EQ(updated->state().balance(), 20);
  EXPECT_THAT(accounts.UpdateOrCreate("a-2", deposit, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(AggregateRepositoryTest, UpdateOrCreateRetriesWhenAnotherCreatesFirst) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  int attempts = 0;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<BankAccount> updated,
      accounts.UpdateOrCreate("a-1", [&](BankAccount& account) -> absl::Status {
        ++attempts;
        if (attempts == 1) {
          EXPECT_EQ(account.version(), 0);
          // Another writer creates the account between this load and save.
          BankAccount other("a-1");
          ES_RETURN_IF_ERROR(other.Open("Bob"));
          ES_RETURN_IF_ERROR(accounts.Save(other));
        }
        if (account.version() == 0) ES_RETURN_IF_ERROR(account.Open("Ada"));
        return account.Deposit(5);
      }));
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(updated->version(), 2);
  EXPECT_EQ(updated->state().owner(), "Bob");
  EXPECT_EQ(updated->state().balance(), 5);
}

// --- outbox ------------------------------------------------------------------

OutboxMessage Notice(const std::string& key) {
  OutboxMessage message;
  message.destination = "notices";
  message.key = key;
  message.payload = "payload of " + key;
  return message;
}

std::vector<std::string> PendingKeys(EventStore& store) {
  absl::StatusOr<std::vector<OutboxEntry>> pending =
      store.outbox().Pending(100);
  EXPECT_OK(pending);
  std::vector<std::string> keys;
  if (!pending.ok()) return keys;
  for (const OutboxEntry& entry : *pending) keys.push_back(entry.message.key);
  return keys;
}

TEST_P(AggregateRepositoryTest, SaveEnqueuesOutboxMessagesWithTheEvents) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  BankAccount account("a-1");
  ASSERT_OK(account.Open("Ada"));
  account.EnqueueMessage(Notice("opened"));
  ASSERT_OK(account.Deposit(10));
  account.EnqueueMessage(Notice("deposited"));
  EXPECT_THAT(account.uncommitted_outbox(), SizeIs(2));
  ASSERT_OK(accounts.Save(account));
  EXPECT_THAT(account.uncommitted_outbox(), IsEmpty());
  EXPECT_THAT(PendingKeys(*store_), ElementsAre("opened", "deposited"));

  // Saving again with nothing new enqueues nothing.
  ASSERT_OK(accounts.Save(account));
  EXPECT_THAT(PendingKeys(*store_), SizeIs(2));

  // Messages without events are refused, and ClearUncommitted drops them.
  account.EnqueueMessage(Notice("alone"));
  EXPECT_THAT(
      accounts.Save(account),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no events")));
  account.ClearUncommitted();
  EXPECT_THAT(account.uncommitted_outbox(), IsEmpty());
  EXPECT_THAT(PendingKeys(*store_), SizeIs(2));
}

// A save that loses to a concurrent change enqueues nothing; Update's retry
// enqueues the message of the attempt that commits, once.
TEST_P(AggregateRepositoryTest, AbortedSaveEnqueuesNothing) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  SaveOneByOne(accounts, "a-1", 0);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> mine, accounts.Load("a-1"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> theirs,
                       accounts.Load("a-1"));
  ASSERT_OK(theirs->Deposit(50));
  ASSERT_OK(accounts.Save(*theirs));

  ASSERT_OK(mine->Deposit(7));
  mine->EnqueueMessage(Notice("lost"));
  EXPECT_THAT(accounts.Save(*mine), StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(mine->uncommitted_outbox(), SizeIs(1));
  EXPECT_THAT(PendingKeys(*store_), IsEmpty());

  int attempts = 0;
  ASSERT_OK(accounts
                .Update("a-1",
                        [&](BankAccount& account) -> absl::Status {
                          if (++attempts == 1) {
                            // Another writer gets in first.
                            EXPECT_OK(theirs->Deposit(1));
                            EXPECT_OK(accounts.Save(*theirs));
                          }
                          ES_RETURN_IF_ERROR(account.Deposit(7));
                          account.EnqueueMessage(
                              Notice(absl::StrCat("attempt-", attempts)));
                          return absl::OkStatus();
                        })
                .status());
  EXPECT_EQ(attempts, 2);
  EXPECT_THAT(PendingKeys(*store_), ElementsAre("attempt-2"));
}

// --- metadata ----------------------------------------------------------------

TEST_P(AggregateRepositoryTest, ContextIsCopiedIntoEachEventsMetadata) {
  AggregateRepositoryOptions options = Prefixed();
  options.context.tenant_id = "acme";
  options.context.actor = "service";
  options.context.properties["source"] = "repository";
  AggregateRepository<BankAccount> accounts(*store_, options);

  BankAccount account("a-1");
  ASSERT_OK(account.Open("Ada"));
  ASSERT_OK(account.Deposit(10));
  CommandContext context;
  context.correlation_id = "corr-1";
  context.causation_id = "cmd-1";
  context.actor = "user:7";  // wins over the repository's
  ASSERT_OK(accounts.Save(account, context));

  // The aggregate's own context wins over both.
  CommandContext own;
  own.causation_id = "cmd-2-own";
  account.set_context(own);
  ASSERT_OK(account.Deposit(20));
  context.causation_id = "cmd-2";
  ASSERT_OK(accounts.Save(account, context));

  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stored,
                       store_->ReadStream("account-a-1"));
  ASSERT_THAT(stored, SizeIs(3));
  for (const RecordedEvent& event : stored) {
    SCOPED_TRACE(event.version);
    EXPECT_EQ(event.metadata.correlation_id(), "corr-1");
    EXPECT_EQ(event.metadata.actor(), "user:7");
    EXPECT_EQ(event.metadata.tenant_id(), "acme");
    EXPECT_EQ(event.metadata.properties().at("source"), "repository");
  }
  EXPECT_EQ(stored[0].metadata.causation_id(), "cmd-1");
  EXPECT_EQ(stored[1].metadata.causation_id(), "cmd-1");
  EXPECT_EQ(stored[2].metadata.causation_id(), "cmd-2-own");

  // Update passes its context to Save.
  context.causation_id = "cmd-3";
  ASSERT_OK(accounts
                .Update(
                    "a-1", [](BankAccount& a) { return a.Deposit(1); },
                    AggregateRepository<BankAccount>::kDefaultAttempts, context)
                .status());
  ASSERT_OK_AND_ASSIGN(stored, store_->ReadStream("account-a-1"));
  ASSERT_THAT(stored, SizeIs(4));
  EXPECT_EQ(stored[3].metadata.causation_id(), "cmd-3");
  EXPECT_EQ(stored[3].metadata.correlation_id(), "corr-1");
  EXPECT_EQ(stored[3].metadata.tenant_id(), "acme");
}

// --- unknown event types -----------------------------------------------------

TEST_P(AggregateRepositoryTest, StoredEventWithoutHandlerIsNotFound) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed());
  SaveOneByOne(accounts, "a-1", 1);
  test::v1::AccountAudited audited;
  audited.set_note("checked");
  std::vector<EventData> events = {EventData::From(audited)};
  ASSERT_OK(store_->Append("account-a-1", ExpectedVersion::Exactly(2), events)
                .status());

  EXPECT_THAT(accounts.Load("a-1"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(kAuditedType)));

  AggregateRepository<LenientAccount> lenient(*store_, Prefixed());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<LenientAccount> loaded,
                       lenient.Load("a-1"));
  EXPECT_EQ(loaded->version(), 3);
  EXPECT_EQ(loaded->applied(), 2);
  ASSERT_OK(loaded->Deposit(1));
  ASSERT_OK(lenient.Save(*loaded));
  EXPECT_EQ(loaded->version(), 4);
}

// --- snapshots ---------------------------------------------------------------

TEST_P(AggregateRepositoryTest, SnapshotEveryNEventsShortensTheReplay) {
  AggregateRepository<SnapshotAccount> accounts(*store_, Prefixed(10));
  SaveOneByOne(accounts, "a-1", 24);  // 25 events

  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> snapshot,
                       store_->snapshots().Load("account-a-1", 1));
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->stream, "account-a-1");
  EXPECT_EQ(snapshot->version, 20);
  EXPECT_EQ(snapshot->type, kStateType);
  EXPECT_EQ(snapshot->schema_version, 1);
  test::v1::AccountState at_20;
  ASSERT_TRUE(at_20.ParseFromString(snapshot->state));
  EXPECT_EQ(at_20.owner(), "Ada");
  EXPECT_EQ(at_20.transactions(), 19);
  EXPECT_EQ(at_20.balance(), 19 * 20 / 2);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SnapshotAccount> loaded,
                       accounts.Load("a-1"));
  EXPECT_TRUE(loaded->restored());
  EXPECT_EQ(loaded->applied(), 5);
  EXPECT_EQ(loaded->version(), 25);

  // The same state as replaying every event.
  AggregateRepository<SnapshotAccount> no_snapshots(*store_, Prefixed(0));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SnapshotAccount> replayed,
                       no_snapshots.Load("a-1"));
  EXPECT_FALSE(replayed->restored());
  EXPECT_EQ(replayed->applied(), 25);
  EXPECT_EQ(replayed->version(), 25);
  EXPECT_TRUE(MessageDifferencer::Equals(loaded->state(), replayed->state()));
  EXPECT_EQ(loaded->state().balance(), 24 * 25 / 2);

  // Saving from the snapshot-loaded aggregate continues the stream.
  ASSERT_OK(loaded->Deposit(1000));
  ASSERT_OK(accounts.Save(*loaded));
  EXPECT_EQ(loaded->version(), 26);
}

TEST_P(AggregateRepositoryTest, SnapshotWhenABatchPassesAMultipleOfN) {
  AggregateRepository<SnapshotAccount> accounts(*store_, Prefixed(10));
  SnapshotAccount account("a-1");
  ASSERT_OK(account.Open("Ada"));
  ASSERT_OK(account.Deposit(1));
  ASSERT_OK(account.Deposit(1));
  ASSERT_OK(accounts.Save(account));  // 3
  for (int batch = 0; batch < 3; ++batch) {
    for (int i = 0; i < 3; ++i) ASSERT_OK(account.Deposit(1));
    ASSERT_OK(accounts.Save(account));  // 6, 9, 12
  }
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> snapshot,
                       store_->snapshots().Load("account-a-1", 1));
  ASSERT_TRUE(snapshot.has_value());
  EXPECT_EQ(snapshot->version, 12);

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SnapshotAccount> loaded,
                       accounts.Load("a-1"));
  EXPECT_EQ(loaded->applied(), 0);
  EXPECT_EQ(loaded->version(), 12);
  EXPECT_EQ(loaded->state().balance(), 11);
}

TEST_P(AggregateRepositoryTest, BumpedSchemaVersionIgnoresOldSnapshots) {
  AggregateRepository<SnapshotAccount> v1_accounts(*store_, Prefixed(10));
  SaveOneByOne(v1_accounts, "a-1", 24);

  AggregateRepository<SnapshotAccountV2> v2_accounts(*store_, Prefixed(10));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SnapshotAccountV2> loaded,
                       v2_accounts.Load("a-1"));
  EXPECT_FALSE(loaded->restored());
  EXPECT_EQ(loaded->applied(), 25);
  EXPECT_EQ(loaded->version(), 25);
  EXPECT_EQ(loaded->state().balance(), 24 * 25 / 2);

  // Saving past 30 takes a schema-2 snapshot; the schema-1 one stays at 20.
  for (int i = 0; i < 5; ++i) ASSERT_OK(loaded->Deposit(1));
  ASSERT_OK(v2_accounts.Save(*loaded));
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> v2,
                       store_->snapshots().Load("account-a-1", 2));
  ASSERT_TRUE(v2.has_value());
  EXPECT_EQ(v2->version, 30);
  EXPECT_EQ(v2->schema_version, 2);
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> v1,
                       store_->snapshots().Load("account-a-1", 1));
  ASSERT_TRUE(v1.has_value());
  EXPECT_EQ(v1->version, 20);

  ASSERT_OK_AND_ASSIGN(loaded, v2_accounts.Load("a-1"));
  EXPECT_TRUE(loaded->restored());
  EXPECT_EQ(loaded->applied(), 0);
  EXPECT_EQ(loaded->version(), 30);
}

TEST_P(AggregateRepositoryTest, AggregateWithoutPrototypeTakesNoSnapshots) {
  AggregateRepository<BankAccount> accounts(*store_, Prefixed(10));
  SaveOneByOne(accounts, "a-1", 24);
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> snapshot,
                       store_->snapshots().Load("account-a-1", 1));
  EXPECT_FALSE(snapshot.has_value());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<BankAccount> loaded,
                       accounts.Load("a-1"));
  EXPECT_EQ(loaded->applied(), 25);
}

TEST_P(AggregateRepositoryTest, SnapshotEveryZeroNeitherTakesNorReads) {
  AggregateRepository<SnapshotAccount> accounts(*store_, Prefixed(0));
  SaveOneByOne(accounts, "a-1", 24);
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> snapshot,
                       store_->snapshots().Load("account-a-1", 1));
  EXPECT_FALSE(snapshot.has_value());
}

TEST_P(AggregateRepositoryTest, FailedSnapshotDoesNotFailTheSave) {
  std::vector<std::pair<std::string, absl::Status>> errors;
  AggregateRepositoryOptions options = Prefixed(10);
  options.on_snapshot_error = [&](std::string_view stream,
                                  const absl::Status& error) {
    errors.emplace_back(std::string(stream), error);
  };
  AggregateRepository<FailingSnapshotAccount> accounts(*store_, options);
  SaveOneByOne(accounts, "a-1", 11);  // 12 events: one snapshot attempt

  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].first, "account-a-1");
  EXPECT_THAT(errors[0].second, StatusIs(absl::StatusCode::kInternal,
                                         HasSubstr("snapshot refused")));
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> snapshot,
                       store_->snapshots().Load("account-a-1", 1));
  EXPECT_FALSE(snapshot.has_value());
  ASSERT_OK_AND_ASSIGN(int64_t version, store_->StreamVersion("account-a-1"));
  EXPECT_EQ(version, 12);

  // Without a callback the failure is silent.
  AggregateRepository<FailingSnapshotAccount> silent(*store_, Prefixed(10));
  SaveOneByOne(silent, "a-2", 11);
}

TEST_P(AggregateRepositoryTest, UnusableSnapshotFallsBackToAFullReplay) {
  std::vector<absl::Status> errors;
  AggregateRepositoryOptions options = Prefixed(10);
  options.on_snapshot_error = [&](std::string_view, const absl::Status& error) {
    errors.push_back(error);
  };
  AggregateRepository<SnapshotAccount> accounts(*store_, options);
  SaveOneByOne(accounts, "a-1", 14);  // 15 events, a snapshot at 10

  // A snapshot whose bytes do not parse.
  Snapshot corrupt;
  corrupt.stream = "account-a-1";
  corrupt.version = 15;
  corrupt.type = kStateType;
  corrupt.state = "\xff\xff\xff\xff";
  corrupt.schema_version = 1;
  ASSERT_OK(store_->snapshots().Save(corrupt));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SnapshotAccount> loaded,
                       accounts.Load("a-1"));
  EXPECT_FALSE(loaded->restored());
  EXPECT_EQ(loaded->applied(), 15);
  EXPECT_EQ(loaded->version(), 15);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0], StatusIs(absl::StatusCode::kDataLoss));

  // A snapshot of another type under the same schema version.
  ASSERT_OK(store_->snapshots().Delete("account-a-1"));
  Snapshot foreign = corrupt;
  foreign.type = "eventstore.test.v1.Deposited";
  foreign.state = "";
  ASSERT_OK(store_->snapshots().Save(foreign));
  ASSERT_OK_AND_ASSIGN(loaded, accounts.Load("a-1"));
  EXPECT_FALSE(loaded->restored());
  EXPECT_EQ(loaded->applied(), 15);
  ASSERT_THAT(errors, SizeIs(2));
  EXPECT_THAT(errors[1],
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("eventstore.test.v1.Deposited"),
                             HasSubstr(kStateType))));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, AggregateRepositoryTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
