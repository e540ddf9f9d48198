// The decider (decider.h) on every backend of AllTestBackends().

#include "eventstore/decider.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/test/v1/bank.pb.h"
#include "eventstore/type_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kStream[] = "account-d-1";

struct Account {
  bool open = false;
  std::string owner;
  int64_t balance = 0;
  // Events evolved into this state.
  int events = 0;
};

struct Command {
  enum class Kind { kOpen, kDeposit, kWithdraw, kNothing };
  Kind kind = Kind::kNothing;
  std::string owner;
  int64_t amount = 0;
};

Command Open(std::string owner) {
  return {Command::Kind::kOpen, std::move(owner), 0};
}
Command Deposit(int64_t amount) {
  return {Command::Kind::kDeposit, "", amount};
}
Command Withdraw(int64_t amount) {
  return {Command::Kind::kWithdraw, "", amount};
}

Decider<Account, Command> BankDecider() {
  Decider<Account, Command> decider;
  decider.decide = [](const Command& command,
                      const Account& state) -> absl::StatusOr<DecidedEvents> {
    switch (command.kind) {
      case Command::Kind::kOpen: {
        if (state.open) {
          return absl::FailedPreconditionError("account already open");
        }
        test::v1::AccountOpened opened;
        opened.set_owner(command.owner);
        return MakeEvents(std::move(opened));
      }
      case Command::Kind::kDeposit: {
        if (!state.open) return absl::FailedPreconditionError("not open");
        test::v1::Deposited deposited;
        deposited.set_amount(command.amount);
        return MakeEvents(deposited);
      }
      case Command::Kind::kWithdraw: {
        if (command.amount > state.balance) {
          return absl::FailedPreconditionError("insufficient funds");
        }
        test::v1::Withdrawn withdrawn;
        withdrawn.set_amount(command.amount);
        return MakeEvents(withdrawn);
      }
      case Command::Kind::kNothing:
        break;
    }
    return DecidedEvents();
  };
  decider.evolve = [](Account state, const google::protobuf::Message& event) {
    ++state.events;
    if (auto* opened = dynamic_cast<const test::v1::AccountOpened*>(&event)) {
      state.open = true;
      state.owner = opened->owner();
    } else if (auto* d = dynamic_cast<const test::v1::Deposited*>(&event)) {
      state.balance += d->amount();
    } else if (auto* w = dynamic_cast<const test::v1::Withdrawn*>(&event)) {
      state.balance -= w->amount();
    }
    return state;
  };
  return decider;
}

class DeciderTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    registry_.Register<test::v1::AccountOpened>();
    registry_.Register<test::v1::Deposited>();
    registry_.Register<test::v1::Withdrawn>();
    ASSERT_OK_AND_ASSIGN(store_, GetParam().open(nullptr));
  }

  absl::StatusOr<Decision<Account>> Handle(const Command& command,
                                           const DecideOptions& options = {}) {
    return HandleCommand(*store_, registry_, kStream, decider_, command,
                         options);
  }

  int64_t StreamVersion() {
    absl::StatusOr<int64_t> version = store_->StreamVersion(kStream);
    EXPECT_OK(version);
    return version.ok() ? *version : -1;
  }

  TypeRegistry registry_;
  Decider<Account, Command> decider_ = BankDecider();
  std::unique_ptr<EventStore> store_;
};

TEST_P(DeciderTest, DecideAndEvolveRoundTrip) {
  ASSERT_OK_AND_ASSIGN(StreamState<Account> empty,
                       LoadState(*store_, registry_, kStream, decider_));
  EXPECT_EQ(empty.version, 0);
  EXPECT_FALSE(empty.state.open);

  DecideOptions options;
  options.context.correlation_id = "corr-1";
  options.context.causation_id = "cmd-1";
  ASSERT_OK_AND_ASSIGN(Decision<Account> opened, Handle(Open("Ada"), options));
  EXPECT_EQ(opened.version, 1);
  EXPECT_TRUE(opened.state.open);
  EXPECT_EQ(opened.state.owner, "Ada");
  ASSERT_THAT(opened.events, SizeIs(1));
  EXPECT_EQ(opened.events[0].type, "eventstore.test.v1.AccountOpened");
  EXPECT_FALSE(opened.events[0].id.IsNil());

  ASSERT_OK_AND_ASSIGN(Decision<Account> deposited, Handle(Deposit(100)));
  EXPECT_EQ(deposited.version, 2);
  EXPECT_EQ(deposited.state.balance, 100);
  ASSERT_OK_AND_ASSIGN(Decision<Account> withdrawn, Handle(Withdraw(40)));
  EXPECT_EQ(withdrawn.version, 3);
  EXPECT_EQ(withdrawn.state.balance, 60);
  EXPECT_EQ(withdrawn.state.events, 3);

  ASSERT_OK_AND_ASSIGN(StreamState<Account> loaded,
                       LoadState(*store_, registry_, kStream, decider_));
  EXPECT_EQ(loaded.version, 3);
  EXPECT_EQ(loaded.state.balance, 60);
  EXPECT_EQ(loaded.state.events, 3);
  EXPECT_EQ(loaded.state.owner, "Ada");

  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> stored,
                       store_->ReadStream(kStream));
  ASSERT_THAT(stored, SizeIs(3));
  EXPECT_EQ(stored[0].id, opened.events[0].id);
  EXPECT_EQ(stored[0].metadata.correlation_id(), "corr-1");
  EXPECT_EQ(stored[0].metadata.causation_id(), "cmd-1");
  EXPECT_EQ(stored[1].metadata.correlation_id(), "");
}

TEST_P(DeciderTest, RefusedCommandAppendsNothing) {
  ASSERT_OK(Handle(Open("Ada")).status());
  EXPECT_THAT(Handle(Withdraw(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("insufficient funds")));
  EXPECT_THAT(Handle(Open("Bob")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(StreamVersion(), 1);
}

TEST_P(DeciderTest, NoEventsAppendsNothing) {
  ASSERT_OK(Handle(Open("Ada")).status());
  ASSERT_OK_AND_ASSIGN(Decision<Account> nothing, Handle(Command()));
  EXPECT_EQ(nothing.version, 1);
  EXPECT_THAT(nothing.events, IsEmpty());
  EXPECT_TRUE(nothing.state.open);
  EXPECT_EQ(StreamVersion(), 1);
}

TEST_P(DeciderTest, ConcurrentAppendIsAbortedOrRetried) {
  ASSERT_OK(Handle(Open("Ada")).status());

  // A decide() that lets another writer in on its first call.
  int calls = 0;
  auto inner = decider_.decide;
  decider_.decide = [&, inner](
                        const Command& command,
                        const Account& state) -> absl::StatusOr<DecidedEvents> {
    if (++calls == 1) {
      test::v1::Deposited other;
      other.set_amount(1000);
      std::vector<EventData> events = {EventData::From(other)};
      absl::StatusOr<AppendResult> appended =
          store_->Append(kStream, ExpectedVersion::Any(), events);
      if (!appended.ok()) return appended.status();
    }
    return inner(command, state);
  };

  absl::StatusOr<Decision<Account>> lost = Handle(Deposit(5));
  EXPECT_THAT(lost, StatusIs(absl::StatusCode::kAborted));
  std::optional<WrongExpectedVersionInfo> info =
      GetWrongExpectedVersion(lost.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->expected, ExpectedVersion::Exactly(1));
  EXPECT_EQ(info->actual, 2);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(StreamVersion(), 2);  // only the other writer's event

  calls = 0;
  DecideOptions retry;
  retry.max_attempts = 3;
  ASSERT_OK_AND_ASSIGN(Decision<Account> won, Handle(Deposit(5), retry));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(won.version, 4);
  EXPECT_EQ(won.state.balance, 1000 + 1000 + 5);
  EXPECT_EQ(StreamVersion(), 4);
}

TEST_P(DeciderTest, CreatingAStreamSomeoneElseCreatedIsAborted) {
  // decide() saw the stream absent; another writer creates it before the
  // append, which expects NoStream().
  auto inner = decider_.decide;
  decider_.decide = [&, inner](
                        const Command& command,
                        const Account& state) -> absl::StatusOr<DecidedEvents> {
    std::vector<EventData> events = {
        EventData::From(test::v1::AccountOpened())};
    absl::StatusOr<AppendResult> appended =
        store_->Append(kStream, ExpectedVersion::Any(), events);
    if (!appended.ok()) return appended.status();
    return inner(command, state);
  };
  absl::StatusOr<Decision<Account>> lost = Handle(Open("Ada"));
  ASSERT_THAT(lost, StatusIs(absl::StatusCode::kAborted));
  std::optional<WrongExpectedVersionInfo> info =
      GetWrongExpectedVersion(lost.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->stream, kStream);
  EXPECT_EQ(info->expected, ExpectedVersion::NoStream());
  EXPECT_EQ(info->actual, 1);
}

TEST_P(DeciderTest, UnregisteredEventTypeIsNotFound) {
  ASSERT_OK(Handle(Open("Ada")).status());
  std::vector<EventData> events = {EventData::From(test::v1::AccountAudited())};
  ASSERT_OK(
      store_->Append(kStream, ExpectedVersion::Exactly(1), events).status());
  EXPECT_THAT(LoadState(*store_, registry_, kStream, decider_),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("eventstore.test.v1.AccountAudited")));
  EXPECT_THAT(Handle(Deposit(1)), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(StreamVersion(), 2);
}

TEST_P(DeciderTest, BadDecidersAreInvalidArguments) {
  Decider<Account, Command> nulls = BankDecider();
  nulls.decide = [](const Command&,
                    const Account&) -> absl::StatusOr<DecidedEvents> {
    DecidedEvents events;
    events.push_back(nullptr);
    return events;
  };
  EXPECT_THAT(HandleCommand(*store_, registry_, kStream, nulls, Command()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("null")));
  EXPECT_EQ(StreamVersion(), 0);

  Decider<Account, Command> no_decide = BankDecider();
  no_decide.decide = nullptr;
  EXPECT_THAT(HandleCommand(*store_, registry_, kStream, no_decide, Command()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  Decider<Account, Command> no_evolve = BankDecider();
  no_evolve.evolve = nullptr;
  EXPECT_THAT(LoadState(*store_, registry_, kStream, no_evolve),
              StatusIs(absl::StatusCode::kInvalidArgument));
  DecideOptions zero;
  zero.max_attempts = 0;
  EXPECT_THAT(Handle(Command(), zero),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MakeEventsTest, MovesOrCopiesEachMessage) {
  test::v1::Deposited deposited;
  deposited.set_amount(3);
  test::v1::Withdrawn withdrawn;
  withdrawn.set_amount(2);
  DecidedEvents events = MakeEvents(deposited, std::move(withdrawn));
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0]->GetDescriptor(), test::v1::Deposited::descriptor());
  EXPECT_EQ(static_cast<const test::v1::Deposited&>(*events[0]).amount(), 3);
  EXPECT_EQ(static_cast<const test::v1::Withdrawn&>(*events[1]).amount(), 2);
  EXPECT_EQ(deposited.amount(), 3);
  EXPECT_THAT(MakeEvents(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, DeciderTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
