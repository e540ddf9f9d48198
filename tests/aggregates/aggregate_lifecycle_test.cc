// Aggregates and deciders facing the stream lifecycle, on every backend of
// AllTestBackends(): deleted streams (stream_lifecycle.h) and forgotten
// events (RecordedEvent::forgotten(), crypto-shredding). Forgotten events
// are made by hand here, by a store that marks chosen versions forgotten
// as it reads them, so that the aggregate side is tested without the
// crypto library.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/aggregate.h"
#include "eventstore/aggregate_repository.h"
#include "eventstore/decider.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/recorded_event.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/test/v1/bank.pb.h"
#include "eventstore/type_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aggregates/bank_account.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::BankAccount;
using ::eventstore::test::SnapshotAccount;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr char kStream[] = "account-a-1";

// Reads events of the chosen versions of kStream as an EncryptedEventStore
// returns those of a forgotten subject: no payload, payload_state
// kForgotten. With `sealed`, as a store without the master key returns an
// encrypted payload instead.
class ForgettingStore final : public ForwardingEventStore {
 public:
  explicit ForgettingStore(EventStore* target) : ForwardingEventStore(target) {}

  void Forget(int64_t version) { forgotten_.insert(version); }
  void Seal(int64_t version) { sealed_.insert(version); }

  using EventStore::ReadStream;
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        ForwardingEventStore::ReadStream(stream, options);
    if (!events.ok()) return events;
    for (RecordedEvent& e : *events) {
      if (e.stream != kStream) continue;
      if (forgotten_.contains(e.version)) {
        e.payload.clear();
        e.metadata.set_subject_id("subject-1");
        e.metadata.set_payload_encryption(
            std::string(kPayloadEncryptionXChaCha20));
        e.payload_state = PayloadState::kForgotten;
      } else if (sealed_.contains(e.version)) {
        e.payload = "ciphertext";
        e.metadata.set_subject_id("subject-1");
        e.metadata.set_payload_encryption(
            std::string(kPayloadEncryptionXChaCha20));
      }
    }
    return events;
  }

 private:
  absl::flat_hash_set<int64_t> forgotten_;
  absl::flat_hash_set<int64_t> sealed_;
};

// Marks its state when it meets a forgotten event, or refuses it.
class ErasureAwareAccount : public BankAccount {
 public:
  using BankAccount::BankAccount;

  absl::Status OnForgotten(const RecordedEvent& event) override {
    if (refuse) return absl::FailedPreconditionError("personal data erased");
    erased_versions.push_back(event.version);
    erased_subject = event.metadata.subject_id();
    return absl::OkStatus();
  }

  inline static bool refuse = false;
  std::vector<int64_t> erased_versions;
  std::string erased_subject;
};

class AggregateLifecycleTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(store_, GetParam().open(nullptr));
    forgetting_ = std::make_unique<ForgettingStore>(store_.get());
    ErasureAwareAccount::refuse = false;
  }

  // Opens account a-1 and deposits 10, 20 and 30 (versions 1 to 4).
  void OpenAccount(EventStore& store) {
    AggregateRepository<BankAccount> accounts(store, Options());
    BankAccount account("a-1");
    ASSERT_OK(account.Open("Ada"));
    for (int64_t amount : {10, 20, 30}) ASSERT_OK(account.Deposit(amount));
    ASSERT_OK(accounts.Save(account));
    ASSERT_EQ(account.version(), 4);
  }

  static AggregateRepositoryOptions Options(int64_t snapshot_every = 0) {
    AggregateRepositoryOptions options;
    options.stream_prefix = "account-";
    options.snapshot_every = snapshot_every;
    return options;
  }

  std::unique_ptr<EventStore> store_;
  std::unique_ptr<ForgettingStore> forgetting_;
};

// --- deleted streams
// -----------------------------------------------------------

TEST_P(AggregateLifecycleTest, SoftDeletedStreamLoadsAsNewAndSaveContinues) {
  ASSERT_NO_FATAL_FAILURE(OpenAccount(*store_));
  AggregateRepository<SnapshotAccount> accounts(*store_, Options(2));
  {
    // Takes a snapshot (at version 6), which the deletion removes.
    ASSERT_OK_AND_ASSIGN(auto account, accounts.Load("a-1"));
    ASSERT_OK(account->Deposit(1));
    ASSERT_OK(account->Deposit(2));
    ASSERT_OK(accounts.Save(*account));
    ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> snapshot,
                         store_->snapshots().Load(kStream, 1));
    ASSERT_TRUE(snapshot.has_value());
  }
  ASSERT_OK_AND_ASSIGN(
      DeleteResult deleted,
      store_->DeleteStream(kStream, ExpectedVersion::Exactly(6),
                           DeleteMode::kSoft));
  EXPECT_EQ(deleted.marker_version, 7);
  EXPECT_EQ(deleted.snapshots_removed, 1);

  EXPECT_THAT(accounts.Load("a-1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(
      accounts.Update("a-1", [](SnapshotAccount& a) { return a.Deposit(1); }),
      StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto fresh, accounts.LoadOrCreate("a-1"));
  EXPECT_EQ(fresh->version(), 0);
  EXPECT_FALSE(fresh->restored());
  EXPECT_EQ(fresh->state().balance(), 0);
  EXPECT_EQ(fresh->state().owner(), "");
  ASSERT_OK(fresh->Open("Grace"));
  ASSERT_OK(fresh->Deposit(5));
  ASSERT_OK(accounts.Save(*fresh));
  // Numbered on after the marker.
  EXPECT_EQ(fresh->version(), 9);

  ASSERT_OK_AND_ASSIGN(auto loaded, accounts.Load("a-1"));
  EXPECT_EQ(loaded->version(), 9);
  EXPECT_EQ(loaded->state().owner(), "Grace");
  EXPECT_EQ(loaded->state().balance(), 5);
  ASSERT_OK_AND_ASSIGN(
      auto updated,
      accounts.Update("a-1", [](SnapshotAccount& a) { return a.Deposit(7); }));
  EXPECT_EQ(updated->version(), 10);
  ASSERT_OK_AND_ASSIGN(auto reloaded, accounts.Load("a-1"));
  EXPECT_EQ(reloaded->state().balance(), 12);
  EXPECT_EQ(reloaded->version(), 10);
}

TEST_P(AggregateLifecycleTest, UpdateOrCreateRevivesASoftDeletedStream) {
  ASSERT_NO_FATAL_FAILURE(OpenAccount(*store_));
  ASSERT_OK(
      store_->DeleteStream(kStream, ExpectedVersion::Any(), DeleteMode::kSoft));
  AggregateRepository<BankAccount> accounts(*store_, Options());
  ASSERT_OK_AND_ASSIGN(
      auto account, accounts.UpdateOrCreate(
                        "a-1", [](BankAccount& a) { return a.Open("Lin"); }));
  EXPECT_EQ(account->version(), 6);
  EXPECT_EQ(account->applied(), 1);
}

TEST_P(AggregateLifecycleTest, HardDeletedStreamRefusesTheSave) {
  ASSERT_NO_FATAL_FAILURE(OpenAccount(*store_));
  ASSERT_OK(store_->DeleteStream(kStream, ExpectedVersion::Exactly(4),
                                 DeleteMode::kHard));
  AggregateRepository<BankAccount> accounts(*store_, Options());
  EXPECT_THAT(accounts.Load("a-1"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto account, accounts.LoadOrCreate("a-1"));
  EXPECT_EQ(account->version(), 0);
  ASSERT_OK(account->Open("Ada"));
  const absl::Status saved = accounts.Save(*account);
  EXPECT_TRUE(IsHardDeletedStream(saved)) << saved;
  EXPECT_THAT(saved, StatusIs(absl::StatusCode::kFailedPrecondition,
                              HasSubstr(kStream)));
  // Unchanged: the events are still to be saved.
  EXPECT_EQ(account->version(), 0);
  EXPECT_THAT(account->uncommitted_events(), SizeIs(1));
  // Update does not retry it.
  const auto updated = accounts.UpdateOrCreate(
      "a-1", [](BankAccount& a) { return a.Open("Ada"); }, 5);
  EXPECT_TRUE(IsHardDeletedStream(updated.status())) << updated.status();
}

// --- forgotten events
// ----------------------------------------------------------

TEST_P(AggregateLifecycleTest, ForgottenEventsAreSkippedByDefault) {
  ASSERT_NO_FATAL_FAILURE(OpenAccount(*store_));
  forgetting_->Forget(3);  // the deposit of 20
  AggregateRepository<BankAccount> accounts(*forgetting_, Options());
  ASSERT_OK_AND_ASSIGN(auto account, accounts.Load("a-1"));
  EXPECT_EQ(account->version(), 4);
  EXPECT_EQ(account->forgotten_events(), 1);
  EXPECT_EQ(account->applied(), 3);
  EXPECT_EQ(account->state().balance(), 40);
  // Saving goes on after the forgotten event.
  ASSERT_OK(account->Deposit(1));
  ASSERT_OK(accounts.Save(*account));
  EXPECT_EQ(account->version(), 5);
}

TEST_P(AggregateLifecycleTest, OnForgottenSeesTheEventAndMayChangeState) {
  ASSERT_NO_FATAL_FAILURE(OpenAccount(*store_));
  forgetting_->Forget(1);
  forgetting_->Forget(4);
  AggregateRepository<ErasureAwareAccount> accounts(*forgetting_, Options());
  ASSERT_OK_AND_ASSIGN(auto account, accounts.Load("a-1"));
  EXPECT_THAT(account->erased_versions, ElementsAre(1, 4));
  EXPECT_EQ(account->erased_subject, "subject-1");
  EXPECT_EQ(account->forgotten_events(), 2);
  EXPECT_EQ(account->version(), 4);
  EXPECT_EQ(account->state().owner(), "");
  EXPECT_EQ(account->state().balance(), 30);
}

TEST_P(AggregateLifecycleTest, OnForgottenErrorFailsTheLoad) {
  ASSERT_NO_FATAL_FAILURE(OpenAccount(*store_));
  forgetting_->Forget(2);
  ErasureAwareAccount::refuse = true;
  AggregateRepository<ErasureAwareAccount> accounts(*forgetting_, Options());
  EXPECT_THAT(accounts.Load("a-1"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("personal data erased"),
                             HasSubstr("version 2"), HasSubstr(kStream))));
}

// A sealed event (encrypted, read without the master key) is not a
// forgotten one: skipping it would build a wrong state silently.
TEST_P(AggregateLifecycleTest, SealedEventFailsTheLoad) {
  ASSERT_NO_FATAL_FAILURE(OpenAccount(*store_));
  forgetting_->Seal(2);
  AggregateRepository<BankAccount> accounts(*forgetting_, Options());
  EXPECT_THAT(accounts.Load("a-1"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_P(AggregateLifecycleTest, ApplyStoredOfAForgottenEvent) {
  RecordedEvent event;
  event.type = "eventstore.test.v1.Deposited";
  event.stream = kStream;
  event.version = 1;
  event.payload_state = PayloadState::kForgotten;
  BankAccount account("a-1");
  ASSERT_OK(account.ApplyStored(event));
  EXPECT_EQ(account.version(), 1);
  EXPECT_EQ(account.forgotten_events(), 1);
  EXPECT_EQ(account.applied(), 0);
  // A type without a handler stays an error, forgotten or not.
  event.type = "eventstore.test.v1.AccountAudited";
  event.version = 2;
  EXPECT_THAT(account.ApplyStored(event),
              StatusIs(absl::StatusCode::kNotFound));
  // A damaged event stays an error, forgotten or not.
  event.type = "eventstore.test.v1.Deposited";
  event.damage = absl::DataLossError("checksum mismatch");
  EXPECT_THAT(account.ApplyStored(event),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(account.forgotten_events(), 1);
}

TEST_P(AggregateLifecycleTest, DeciderSkipsForgottenEvents) {
  ASSERT_NO_FATAL_FAILURE(OpenAccount(*store_));
  forgetting_->Forget(2);
  TypeRegistry registry;
  registry.Register<test::v1::AccountOpened>();
  registry.Register<test::v1::Deposited>();
  struct Balance {
    int64_t cents = 0;
    int events = 0;
  };
  Decider<Balance, int> decider;
  decider.evolve = [](Balance s, const google::protobuf::Message& e) {
    ++s.events;
    if (auto* d = dynamic_cast<const test::v1::Deposited*>(&e)) {
      s.cents += d->amount();
    }
    return s;
  };
  ASSERT_OK_AND_ASSIGN(StreamState<Balance> state,
                       LoadState(*forgetting_, registry, kStream, decider));
  EXPECT_EQ(state.version, 4);
  EXPECT_EQ(state.state.events, 3);
  EXPECT_EQ(state.state.cents, 50);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, AggregateLifecycleTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
