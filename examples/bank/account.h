// Account: the bank example's aggregate. Its state changes only through the
// events it raises (commands check first, handlers only apply), and a large
// withdrawal also enqueues an alert in the outbox, saved in the same
// transaction as the event.
//
//   eventstore::AggregateRepository<bank::Account> accounts(*store, options);
//   bank::Account account("alice");
//   ES_RETURN_IF_ERROR(account.Open("Alice"));
//   ES_RETURN_IF_ERROR(accounts.Save(account, context));

#ifndef EVENTSTORE_EXAMPLES_BANK_ACCOUNT_H_
#define EVENTSTORE_EXAMPLES_BANK_ACCOUNT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bank/v1/accounts.pb.h"
#include "eventstore/aggregate.h"
#include "eventstore/outbox_message.h"
#include "google/protobuf/message.h"

namespace bank {

// Withdrawals of at least this much (500.00) raise a fraud alert.
inline constexpr int64_t kLargeWithdrawalCents = 50000;

class Account : public eventstore::Aggregate {
 public:
  explicit Account(std::string id) : Aggregate(std::move(id)) {
    On<v1::AccountOpened>(
        [this](const v1::AccountOpened& e) { state_.set_owner(e.owner()); });
    On<v1::MoneyDeposited>([this](const v1::MoneyDeposited& e) {
      state_.set_balance_cents(state_.balance_cents() + e.amount_cents());
      state_.set_transactions(state_.transactions() + 1);
    });
    On<v1::MoneyWithdrawn>([this](const v1::MoneyWithdrawn& e) {
      state_.set_balance_cents(state_.balance_cents() - e.amount_cents());
      state_.set_transactions(state_.transactions() + 1);
    });
  }

  // --- commands: check, then Raise() ---

  absl::Status Open(const std::string& owner) {
    if (!state_.owner().empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("account ", id(), " is already open"));
    }
    v1::AccountOpened opened;
    opened.set_account_id(id());
    opened.set_owner(owner);
    return Raise(opened);
  }

  absl::Status Deposit(int64_t amount_cents, const std::string& memo) {
    if (amount_cents <= 0) {
      return absl::InvalidArgumentError("a deposit must be positive");
    }
    v1::MoneyDeposited deposited;
    deposited.set_amount_cents(amount_cents);
    deposited.set_memo(memo);
    return Raise(deposited);
  }

  absl::Status Withdraw(int64_t amount_cents, const std::string& memo) {
    if (amount_cents <= 0) {
      return absl::InvalidArgumentError("a withdrawal must be positive");
    }
    if (amount_cents > state_.balance_cents()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "insufficient funds in ", id(), ": balance ", state_.balance_cents(),
          " cents, withdrawal ", amount_cents, " cents"));
    }
    v1::MoneyWithdrawn withdrawn;
    withdrawn.set_amount_cents(amount_cents);
    withdrawn.set_memo(memo);
    absl::Status raised = Raise(withdrawn);
    if (!raised.ok()) return raised;
    if (amount_cents >= kLargeWithdrawalCents) {
      // Saved with the event, in the same transaction: published if and
      // only if the withdrawal commits.
      v1::LargeWithdrawalAlert alert;
      alert.set_account_id(id());
      alert.set_amount_cents(amount_cents);
      alert.set_balance_after_cents(state_.balance_cents());
      eventstore::OutboxMessage message;
      message.destination = "fraud-alerts";
      message.key = id();
      message.payload = alert.SerializeAsString();
      message.headers["type"] = alert.GetDescriptor()->full_name();
      Enqueue(std::move(message));
    }
    return absl::OkStatus();
  }

  const std::string& owner() const { return state_.owner(); }
  int64_t balance_cents() const { return state_.balance_cents(); }
  int64_t transactions() const { return state_.transactions(); }

  // --- snapshots (AggregateRepositoryOptions::snapshot_every) ---

  const google::protobuf::Message* snapshot_prototype() const override {
    return &v1::AccountState::default_instance();
  }
  // Bump when AccountState changes meaning: older snapshots are then
  // ignored and the next load replays the whole stream.
  int32_t snapshot_schema_version() const override { return 1; }
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> SnapshotState()
      const override {
    return std::make_unique<v1::AccountState>(state_);
  }
  absl::Status RestoreSnapshot(
      const google::protobuf::Message& state) override {
    // The repository passes a message of snapshot_prototype()'s type.
    state_.CopyFrom(state);
    return absl::OkStatus();
  }

 private:
  v1::AccountState state_;
};

}  // namespace bank

#endif  // EVENTSTORE_EXAMPLES_BANK_ACCOUNT_H_
