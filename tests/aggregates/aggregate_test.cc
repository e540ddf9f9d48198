// Aggregate and CommandContext on their own, without a store.

#include "eventstore/aggregate.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "eventstore/command_context.h"
#include "eventstore/recorded_event.h"
#include "eventstore/test/v1/bank.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/dynamic_message.h"
#include "gtest/gtest.h"
#include "tests/aggregates/bank_account.h"
#include "tests/support/status_matchers.h"

namespace eventstore {
namespace {

using ::eventstore::test::BankAccount;
using ::eventstore::test::LenientAccount;
using ::eventstore::test::SnapshotAccount;
using ::eventstore::test::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

constexpr char kOpenedType[] = "eventstore.test.v1.AccountOpened";
constexpr char kDepositedType[] = "eventstore.test.v1.Deposited";
constexpr char kAuditedType[] = "eventstore.test.v1.AccountAudited";

// A stored event of `message`, as a store would return it.
RecordedEvent Stored(const google::protobuf::Message& message,
                     int64_t version) {
  RecordedEvent event;
  event.id = Uuid::Generate();
  event.type = message.GetDescriptor()->full_name();
  event.payload = message.SerializeAsString();
  event.stream = "account-a-1";
  event.version = version;
  return event;
}

test::v1::AccountOpened Opened(const std::string& owner) {
  test::v1::AccountOpened opened;
  opened.set_owner(owner);
  return opened;
}

test::v1::Deposited Deposited(int64_t amount) {
  test::v1::Deposited deposited;
  deposited.set_amount(amount);
  return deposited;
}

std::vector<std::string> Types(const std::vector<EventData>& events) {
  std::vector<std::string> types;
  for (const EventData& e : events) types.push_back(e.type);
  return types;
}

// --- Raise -------------------------------------------------------------------

TEST(AggregateTest, NewAggregateIsEmpty) {
  BankAccount account("a-1");
  EXPECT_EQ(account.id(), "a-1");
  EXPECT_EQ(account.version(), 0);
  EXPECT_THAT(account.uncommitted_events(), IsEmpty());
  EXPECT_EQ(account.applied(), 0);
}

TEST(AggregateTest, RaiseAppliesAndRecordsTheEvent) {
  BankAccount account("a-1");
  ASSERT_OK(account.Open("Ada"));
  ASSERT_OK(account.Deposit(100));
  ASSERT_OK(account.Withdraw(30));

  EXPECT_EQ(account.state().owner(), "Ada");
  EXPECT_EQ(account.state().balance(), 70);
  EXPECT_EQ(account.applied(), 3);
  // Raising does not move the committed version.
  EXPECT_EQ(account.version(), 0);
  ASSERT_THAT(account.uncommitted_events(), SizeIs(3));
  EXPECT_THAT(
      Types(account.uncommitted_events()),
      ElementsAre(kOpenedType, kDepositedType, "eventstore.test.v1.Withdrawn"));
  const EventData& deposit = account.uncommitted_events()[1];
  EXPECT_FALSE(deposit.id.IsNil());
  EXPECT_NE(deposit.id, account.uncommitted_events()[0].id);
  EXPECT_EQ(deposit.payload, Deposited(100).SerializeAsString());
  EXPECT_EQ(deposit.descriptor, test::v1::Deposited::descriptor());
}

TEST(AggregateTest, RaiseWithoutHandlerIsNotFoundAndRecordsNothing) {
  BankAccount account("a-1");
  test::v1::AccountAudited audited;
  EXPECT_THAT(account.RaiseEvent(audited),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr(kAuditedType), HasSubstr("a-1"))));
  EXPECT_THAT(account.uncommitted_events(), IsEmpty());
}

TEST(AggregateTest, RaiseWhoseHandlerFailsRecordsNothing) {
  BankAccount account("a-1");
  ASSERT_OK(account.Deposit(10));
  test::v1::Withdrawn withdrawn;
  withdrawn.set_amount(11);
  EXPECT_THAT(account.RaiseEvent(withdrawn),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("insufficient funds")));
  EXPECT_THAT(account.uncommitted_events(), SizeIs(1));
  EXPECT_EQ(account.state().balance(), 10);
}

TEST(AggregateTest, RaiseAcceptsADynamicMessageOfAHandledType) {
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> dynamic(
      factory.GetPrototype(test::v1::Deposited::descriptor())->New());
  ASSERT_TRUE(dynamic->ParseFromString(Deposited(42).SerializeAsString()));
  BankAccount account("a-1");
  ASSERT_OK(account.RaiseEvent(*dynamic));
  EXPECT_EQ(account.state().balance(), 42);
  ASSERT_THAT(account.uncommitted_events(), SizeIs(1));
  EXPECT_EQ(account.uncommitted_events()[0].type, kDepositedType);
}

TEST(AggregateTest, RaiseWritesTheContextIntoTheMetadata) {
  BankAccount account("a-1");
  CommandContext context;
  context.correlation_id = "corr-1";
  context.causation_id = "cmd-1";
  context.actor = "user:7";
  context.tenant_id = "acme";
  context.properties["channel"] = "web";
  account.set_context(context);
  ASSERT_OK(account.Deposit(5));
  const eventstore::v1::EventMetadata& metadata =
      account.uncommitted_events()[0].metadata;
  EXPECT_EQ(metadata.correlation_id(), "corr-1");
  EXPECT_EQ(metadata.causation_id(), "cmd-1");
  EXPECT_EQ(metadata.actor(), "user:7");
  EXPECT_EQ(metadata.tenant_id(), "acme");
  EXPECT_THAT(metadata.properties(), ElementsAre(Pair("channel", "web")));
  EXPECT_EQ(account.context().correlation_id, "corr-1");
}

// --- version bookkeeping -----------------------------------------------------

TEST(AggregateTest, MarkCommittedClearsAndSetsTheVersion) {
  BankAccount account("a-1");
  ASSERT_OK(account.Open("Ada"));
  ASSERT_OK(account.Deposit(1));
  account.MarkCommitted(2);
  EXPECT_EQ(account.version(), 2);
  EXPECT_THAT(account.uncommitted_events(), IsEmpty());
  EXPECT_EQ(account.state().balance(), 1);
}

TEST(AggregateTest, ClearUncommittedKeepsVersionAndState) {
  BankAccount account("a-1");
  ASSERT_OK(account.ApplyStored(Stored(Opened("Ada"), 1)));
  ASSERT_OK(account.Deposit(7));
  account.ClearUncommitted();
  EXPECT_THAT(account.uncommitted_events(), IsEmpty());
  EXPECT_EQ(account.version(), 1);
  // The in-memory state still includes the discarded event.
  EXPECT_EQ(account.state().balance(), 7);
}

// --- ApplyStored
// ---------------------------------------------------------------

TEST(AggregateTest, ApplyStoredRunsTheHandlerAndSetsTheVersion) {
  BankAccount account("a-1");
  ASSERT_OK(account.ApplyStored(Stored(Opened("Ada"), 1)));
  ASSERT_OK(account.ApplyStored(Stored(Deposited(100), 2)));
  EXPECT_EQ(account.version(), 2);
  EXPECT_EQ(account.state().owner(), "Ada");
  EXPECT_EQ(account.state().balance(), 100);
  EXPECT_EQ(account.applied(), 2);
  EXPECT_THAT(account.uncommitted_events(), IsEmpty());
}

TEST(AggregateTest, ApplyStoredOfAnUnknownTypeIsNotFound) {
  BankAccount account("a-1");
  ASSERT_OK(account.ApplyStored(Stored(Opened("Ada"), 1)));
  test::v1::AccountAudited audited;
  EXPECT_THAT(account.ApplyStored(Stored(audited, 2)),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr(kAuditedType), HasSubstr("version 2"),
                             HasSubstr("account-a-1"))));
  EXPECT_EQ(account.version(), 1);
}

TEST(AggregateTest, IgnoreUnknownEventTypesSkipsThemButMovesTheVersion) {
  LenientAccount account("a-1");
  ASSERT_OK(account.ApplyStored(Stored(Opened("Ada"), 1)));
  test::v1::AccountAudited audited;
  ASSERT_OK(account.ApplyStored(Stored(audited, 2)));
  EXPECT_EQ(account.version(), 2);
  EXPECT_EQ(account.applied(), 1);
  // Raise still refuses a type without a handler.
  EXPECT_THAT(account.RaiseEvent(audited),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(AggregateTest, ApplyStoredOfADamagedEventIsItsDamageWhateverItsType) {
  LenientAccount account("a-1");
  ASSERT_OK(account.ApplyStored(Stored(Opened("Ada"), 1)));
  RecordedEvent damaged = Stored(test::v1::AccountAudited(), 2);
  damaged.damage = absl::DataLossError("event at position 2 is damaged");
  // Even of a type the aggregate ignores: never skipped silently.
  EXPECT_THAT(account.ApplyStored(damaged),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("damaged")));
  EXPECT_EQ(account.version(), 1);
}

TEST(AggregateTest, ApplyStoredOfABadPayloadIsDataLoss) {
  BankAccount account("a-1");
  RecordedEvent event = Stored(Deposited(1), 1);
  event.payload = "\xff\xff\xff";
  EXPECT_THAT(account.ApplyStored(event),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(account.version(), 0);
}

TEST(AggregateTest, ApplyStoredReportsTheHandlersErrorWithWhere) {
  BankAccount account("a-1");
  test::v1::Withdrawn withdrawn;
  withdrawn.set_amount(5);
  EXPECT_THAT(
      account.ApplyStored(Stored(withdrawn, 1)),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               AllOf(HasSubstr("insufficient funds"), HasSubstr("version 1"),
                     HasSubstr("account-a-1"))));
  EXPECT_EQ(account.version(), 0);
}

TEST(AggregateTest, ApplyStoredRefusesWithUncommittedEvents) {
  BankAccount account("a-1");
  ASSERT_OK(account.Deposit(1));
  EXPECT_THAT(account.ApplyStored(Stored(Opened("Ada"), 1)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("uncommitted")));
}

TEST(AggregateTest, ApplyStoredRefusesAnOlderVersion) {
  BankAccount account("a-1");
  account.MarkCommitted(5);
  EXPECT_THAT(
      account.ApplyStored(Stored(Deposited(1), 4)),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("version 5")));
}

// --- snapshot hooks ----------------------------------------------------------

TEST(AggregateTest, DefaultsTakeNoSnapshots) {
  BankAccount account("a-1");
  EXPECT_EQ(account.snapshot_prototype(), nullptr);
  EXPECT_EQ(account.snapshot_schema_version(), 1);
  EXPECT_THAT(account.SnapshotState(),
              StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(account.RestoreSnapshot(test::v1::AccountState()),
              StatusIs(absl::StatusCode::kUnimplemented));
}

TEST(AggregateTest, SnapshotHooksRoundTripTheState) {
  SnapshotAccount account("a-1");
  ASSERT_OK(account.Open("Ada"));
  ASSERT_OK(account.Deposit(9));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<google::protobuf::Message> state,
                       account.SnapshotState());
  SnapshotAccount copy("a-1");
  ASSERT_OK(copy.RestoreSnapshot(*state));
  EXPECT_EQ(copy.state().owner(), "Ada");
  EXPECT_EQ(copy.state().balance(), 9);
}

// --- CommandContext ----------------------------------------------------------

TEST(CommandContextTest, FillInKeepsWhatTheMetadataAlreadySays) {
  eventstore::v1::EventMetadata metadata;
  metadata.set_correlation_id("own");
  (*metadata.mutable_properties())["k"] = "own";
  CommandContext context;
  context.correlation_id = "ctx";
  context.causation_id = "cause";
  context.properties["k"] = "ctx";
  context.properties["other"] = "ctx";
  context.FillIn(metadata);
  EXPECT_EQ(metadata.correlation_id(), "own");
  EXPECT_EQ(metadata.causation_id(), "cause");
  EXPECT_EQ(metadata.actor(), "");
  EXPECT_EQ(metadata.tenant_id(), "");
  EXPECT_THAT(metadata.properties(),
              UnorderedElementsAre(Pair("k", "own"), Pair("other", "ctx")));
}

TEST(CommandContextTest, EmptyContextMakesEmptyMetadata) {
  EXPECT_EQ(CommandContext().ToMetadata().ByteSizeLong(), 0u);
}

}  // namespace
}  // namespace eventstore
