// The bank account aggregates of the aggregate tests (events in
// tests/proto/eventstore/test/v1/bank.proto).
//
//   BankAccount            no snapshots; counts the events it applies
//   SnapshotAccount        snapshots of AccountState, schema version 1
//   SnapshotAccountV2      the same state, schema version 2
//   LenientAccount         ignores event types it has no handler for
//   FailingSnapshotAccount SnapshotState() fails

#ifndef EVENTSTORE_TESTS_AGGREGATES_BANK_ACCOUNT_H_
#define EVENTSTORE_TESTS_AGGREGATES_BANK_ACCOUNT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "eventstore/aggregate.h"
#include "eventstore/test/v1/bank.pb.h"
#include "google/protobuf/message.h"

namespace eventstore::test {

class BankAccount : public Aggregate {
 public:
  explicit BankAccount(std::string id) : Aggregate(std::move(id)) {
    On<v1::AccountOpened>([this](const v1::AccountOpened& e) {
      ++applied_;
      state_.set_owner(e.owner());
    });
    On<v1::Deposited>([this](const v1::Deposited& e) {
      ++applied_;
      state_.set_balance(state_.balance() + e.amount());
      state_.set_transactions(state_.transactions() + 1);
    });
    // A handler that can fail: a withdrawal never takes the balance below
    // zero, even when raised directly.
    On<v1::Withdrawn>([this](const v1::Withdrawn& e) -> absl::Status {
      if (e.amount() > state_.balance()) {
        return absl::FailedPreconditionError(
            absl::StrCat("insufficient funds: balance ", state_.balance(),
                         ", withdrawal ", e.amount()));
      }
      ++applied_;
      state_.set_balance(state_.balance() - e.amount());
      state_.set_transactions(state_.transactions() + 1);
      return absl::OkStatus();
    });
  }

  // --- commands ---

  absl::Status Open(const std::string& owner) {
    if (!state_.owner().empty()) {
      return absl::FailedPreconditionError("account already open");
    }
    v1::AccountOpened opened;
    opened.set_owner(owner);
    return Raise(opened);
  }
  absl::Status Deposit(int64_t amount) {
    if (amount <= 0) return absl::InvalidArgumentError("amount must be > 0");
    v1::Deposited deposited;
    deposited.set_amount(amount);
    return Raise(deposited);
  }
  absl::Status Withdraw(int64_t amount) {
    if (amount <= 0) return absl::InvalidArgumentError("amount must be > 0");
    v1::Withdrawn withdrawn;
    withdrawn.set_amount(amount);
    return Raise(withdrawn);
  }
  // Raises any event, bypassing the commands' checks.
  absl::Status RaiseEvent(const google::protobuf::Message& event) {
    return Raise(event);
  }
  // Adds an outbox message to be saved with the uncommitted events.
  void EnqueueMessage(OutboxMessage message) { Enqueue(std::move(message)); }

  const v1::AccountState& state() const { return state_; }
  // Events applied through the handlers: raised or replayed.
  int applied() const { return applied_; }
  // True when the state came from a snapshot.
  bool restored() const { return restored_; }

 protected:
  v1::AccountState state_;
  int applied_ = 0;
  bool restored_ = false;
};

class SnapshotAccount : public BankAccount {
 public:
  using BankAccount::BankAccount;

  const google::protobuf::Message* snapshot_prototype() const override {
    return &v1::AccountState::default_instance();
  }
  int32_t snapshot_schema_version() const override { return 1; }
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> SnapshotState()
      const override {
    return std::make_unique<v1::AccountState>(state_);
  }
  absl::Status RestoreSnapshot(
      const google::protobuf::Message& state) override {
    state_.CopyFrom(state);
    restored_ = true;
    return absl::OkStatus();
  }
};

class SnapshotAccountV2 : public SnapshotAccount {
 public:
  using SnapshotAccount::SnapshotAccount;
  int32_t snapshot_schema_version() const override { return 2; }
};

class LenientAccount : public BankAccount {
 public:
  explicit LenientAccount(std::string id) : BankAccount(std::move(id)) {
    IgnoreUnknownEventTypes();
  }
};

class FailingSnapshotAccount : public SnapshotAccount {
 public:
  using SnapshotAccount::SnapshotAccount;
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> SnapshotState()
      const override {
    return absl::InternalError("snapshot refused for the test");
  }
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_AGGREGATES_BANK_ACCOUNT_H_
