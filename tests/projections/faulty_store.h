// FaultyStore: an EventStore decorator (over ForwardingEventStore) whose
// checkpoint saves and transaction commits fail on demand, to test what the
// projection runner leaves behind when they do.
//
//   FaultyStore store(std::move(real_store));
//   store.fail_checkpoint_saves_after(1);  // the 2nd save on fails
//   store.fail_commits_after(0);           // every commit fails
//   store.heal();

#ifndef EVENTSTORE_TESTS_PROJECTIONS_FAULTY_STORE_H_
#define EVENTSTORE_TESTS_PROJECTIONS_FAULTY_STORE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/lease.h"
#include "eventstore/sql_transaction.h"

namespace eventstore::test {

class FaultyStore final : public ForwardingEventStore {
 public:
  explicit FaultyStore(std::unique_ptr<EventStore> store)
      : ForwardingEventStore(store.get()),
        store_(std::move(store)),
        checkpoints_(this) {}

  // Saves (Save and SaveIn) succeed `n` more times, then fail.
  void fail_checkpoint_saves_after(int n) { saves_left_ = n; }
  // Commits succeed `n` more times, then fail (rolling back).
  void fail_commits_after(int n) { commits_left_ = n; }
  // Everything succeeds again.
  void heal() {
    saves_left_ = kNoFault;
    commits_left_ = kNoFault;
  }

  CheckpointStore& checkpoints() override { return checkpoints_; }
  absl::StatusOr<std::unique_ptr<SqlTransaction>> BeginTransaction() override {
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store_->BeginTransaction();
    if (!tx.ok()) return tx.status();
    return std::unique_ptr<SqlTransaction>(
        new Transaction(this, *std::move(tx)));
  }

 private:
  static constexpr int kNoFault = 1 << 30;

  // True when the fault counted by `left` strikes now.
  static bool Strikes(std::atomic<int>& left) { return left.fetch_sub(1) <= 0; }

  class Transaction final : public SqlTransaction {
   public:
    Transaction(FaultyStore* store, std::unique_ptr<SqlTransaction> tx)
        : store_(store), tx_(std::move(tx)) {}
    absl::Status Execute(std::string_view sql,
                         absl::Span<const SqlValue> params) override {
      return tx_->Execute(sql, params);
    }
    absl::StatusOr<SqlRows> Query(std::string_view sql,
                                  absl::Span<const SqlValue> params) override {
      return tx_->Query(sql, params);
    }
    absl::Status Commit() override {
      if (Strikes(store_->commits_left_)) {
        tx_.reset();  // rolls back
        return absl::UnavailableError("injected commit failure");
      }
      return tx_->Commit();
    }
    std::string_view dialect() const override { return tx_->dialect(); }
    SqlTransaction& inner() { return *tx_; }

   private:
    FaultyStore* const store_;
    std::unique_ptr<SqlTransaction> tx_;
  };

  class Checkpoints final : public CheckpointStore {
   public:
    explicit Checkpoints(FaultyStore* store) : store_(store) {}
    absl::StatusOr<std::optional<Checkpoint>> Get(
        std::string_view projection) override {
      return real().Get(projection);
    }
    absl::Status Save(std::string_view projection, Position position,
                      int64_t processed) override {
      if (Strikes(store_->saves_left_)) return Injected();
      return real().Save(projection, position, processed);
    }
    absl::Status SaveIn(SqlTransaction& tx, std::string_view projection,
                        Position position, int64_t processed) override {
      if (Strikes(store_->saves_left_)) return Injected();
      // The real store needs its own transaction object.
      return real().SaveIn(static_cast<Transaction&>(tx).inner(), projection,
                           position, processed);
    }
    absl::Status Reset(std::string_view projection) override {
      return real().Reset(projection);
    }
    absl::Status RequestRebuild(std::string_view projection,
                                std::string_view requested_by) override {
      return real().RequestRebuild(projection, requested_by);
    }
    absl::StatusOr<std::vector<Checkpoint>> List() override {
      return real().List();
    }
    absl::StatusOr<ProjectionLag> Lag(std::string_view projection,
                                      const ReadAllFilter& filter) override {
      return real().Lag(projection, filter);
    }

   private:
    static absl::Status Injected() {
      return absl::UnavailableError("injected checkpoint save failure");
    }
    CheckpointStore& real() { return store_->store_->checkpoints(); }
    FaultyStore* const store_;
  };

  std::unique_ptr<EventStore> store_;
  Checkpoints checkpoints_;
  std::atomic<int> saves_left_{kNoFault};
  std::atomic<int> commits_left_{kNoFault};
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_PROJECTIONS_FAULTY_STORE_H_
