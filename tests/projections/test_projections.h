// Projections, sinks and helpers for the projection and outbox tests.
//
//   RecordingProjection plain("orders");             // remembers what it got
//   RowProjection rows("orders", "orders_rm");        // a row per event
//   plain.FailWith([](const RecordedEvent& e, int call) {
//     return call < 3 ? absl::InternalError("flaky") : absl::OkStatus();
//   });
//
// Everything here is thread-safe: the runner's thread calls the handlers
// while the test reads what they recorded.

#ifndef EVENTSTORE_TESTS_PROJECTIONS_TEST_PROJECTIONS_H_
#define EVENTSTORE_TESTS_PROJECTIONS_TEST_PROJECTIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/uuid.h"
#include "projections/projection.h"
#include "tests/support/wait_until.h"

namespace eventstore::test {

inline constexpr char kPlaced[] = "eventstore.test.v1.OrderPlaced";
inline constexpr char kShipped[] = "eventstore.test.v1.OrderShipped";

// Appends `n` events to `stream` (OrderPlaced, or OrderShipped when
// `shipped`), in appends of at most 50; returns their ids in order.
inline absl::StatusOr<std::vector<Uuid>> AppendOrders(EventStore& store,
                                                      const std::string& stream,
                                                      int n,
                                                      bool shipped = false) {
  std::vector<Uuid> ids;
  for (int first = 0; first < n; first += 50) {
    std::vector<EventData> batch;
    for (int i = first; i < n && i < first + 50; ++i) {
      if (shipped) {
        v1::OrderShipped event;
        event.set_order_id(absl::StrCat(stream, "/", i));
        batch.push_back(EventData::From(event));
      } else {
        v1::OrderPlaced event;
        event.set_order_id(absl::StrCat(stream, "/", i));
        batch.push_back(EventData::From(event));
      }
      ids.push_back(batch.back().id);
    }
    absl::StatusOr<AppendResult> appended =
        store.Append(stream, ExpectedVersion::Any(), batch);
    if (!appended.ok()) return appended.status();
  }
  return ids;
}

// Decides whether a handler call fails: `call` counts this event's calls,
// from 1.
using FailureRule =
    std::function<absl::Status(const RecordedEvent& event, int call)>;

// Counts calls per event and applies a FailureRule.
class CallCounter {
 public:
  void FailWith(FailureRule rule) {
    std::lock_guard<std::mutex> lock(mu_);
    rule_ = std::move(rule);
  }
  // Counts the call; the rule's verdict.
  absl::Status Call(const RecordedEvent& event) {
    std::lock_guard<std::mutex> lock(mu_);
    const int call = ++calls_[event.id];
    return rule_ ? rule_(event, call) : absl::OkStatus();
  }
  int calls(const Uuid& id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(id);
    return it == calls_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<Uuid, int> calls_;
  FailureRule rule_;
};

// A plain Projection that records the ids of the events it handled.
class RecordingProjection : public Projection {
 public:
  explicit RecordingProjection(std::string name,
                               std::vector<std::string> types = {})
      : name_(std::move(name)), types_(std::move(types)) {}

  std::string name() const override { return name_; }
  std::vector<std::string> event_types() const override { return types_; }

  absl::Status Handle(const RecordedEvent& event) override {
    absl::Status verdict = counter_.Call(event);
    if (!verdict.ok()) return verdict;
    std::function<void(const RecordedEvent&)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      handled_.push_back(event.id);
      hook = on_handle_;
    }
    if (hook) hook(event);
    return absl::OkStatus();
  }

  absl::Status Reset() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++resets_;
    return absl::OkStatus();
  }

  void FailWith(FailureRule rule) { counter_.FailWith(std::move(rule)); }
  // Called after each successful Handle, on the handler's thread.
  void OnHandle(std::function<void(const RecordedEvent&)> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    on_handle_ = std::move(hook);
  }

  // Handled events' ids, in the order handled (repeats included).
  std::vector<Uuid> handled() const {
    std::lock_guard<std::mutex> lock(mu_);
    return handled_;
  }
  std::size_t handled_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return handled_.size();
  }
  int calls(const Uuid& id) const { return counter_.calls(id); }
  int resets() const {
    std::lock_guard<std::mutex> lock(mu_);
    return resets_;
  }

 private:
  const std::string name_;
  const std::vector<std::string> types_;
  CallCounter counter_;
  mutable std::mutex mu_;
  std::vector<Uuid> handled_;
  std::function<void(const RecordedEvent&)> on_handle_;
  int resets_ = 0;
};

// A TransactionalProjection that inserts a row (event_id, stream, version)
// per event into `table` (see CreateTable). No unique constraint: a
// duplicate shows up as count(*) > count(DISTINCT event_id).
class RowProjection : public TransactionalProjection {
 public:
  RowProjection(std::string name, std::string table,
                std::vector<std::string> types = {})
      : name_(std::move(name)),
        table_(std::move(table)),
        types_(std::move(types)) {}

  std::string name() const override { return name_; }
  std::vector<std::string> event_types() const override { return types_; }

  absl::Status Handle(const RecordedEvent& event, SqlTransaction& tx) override {
    absl::Status verdict = counter_.Call(event);
    if (!verdict.ok()) return verdict;
    return tx.Execute(
        absl::StrCat("INSERT INTO ", table_,
                     " (event_id, stream, version) "
                     "VALUES ($1, $2, $3)"),
        {SqlValue::Text(event.id.ToString()), SqlValue::Text(event.stream),
         SqlValue::Int(event.version)});
  }

  absl::Status Reset(SqlTransaction& tx) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++resets_;
    }
    return tx.Execute(absl::StrCat("DELETE FROM ", table_));
  }

  void FailWith(FailureRule rule) { counter_.FailWith(std::move(rule)); }
  int calls(const Uuid& id) const { return counter_.calls(id); }
  int resets() const {
    std::lock_guard<std::mutex> lock(mu_);
    return resets_;
  }

  // Creates the table (when absent) in a transaction of its own.
  static absl::Status CreateTable(EventStore& store, const std::string& table) {
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store.BeginTransaction();
    if (!tx.ok()) return tx.status();
    absl::Status created = (*tx)->Execute(absl::StrCat(
        "CREATE TABLE IF NOT EXISTS ", table,
        " (event_id TEXT NOT NULL, stream TEXT NOT NULL, version BIGINT NOT "
        "NULL)"));
    if (!created.ok()) return created;
    return (*tx)->Commit();
  }

 private:
  const std::string name_;
  const std::string table_;
  const std::vector<std::string> types_;
  CallCounter counter_;
  mutable std::mutex mu_;
  int resets_ = 0;
};

struct RowCounts {
  int64_t rows = 0;
  int64_t distinct_events = 0;
};

// Rows and distinct event ids in `table`, read in a transaction of their
// own.
inline absl::StatusOr<RowCounts> CountRows(EventStore& store,
                                           const std::string& table) {
  absl::StatusOr<std::unique_ptr<SqlTransaction>> tx = store.BeginTransaction();
  if (!tx.ok()) return tx.status();
  absl::StatusOr<SqlRows> rows = (*tx)->Query(
      absl::StrCat("SELECT count(*), count(DISTINCT event_id) FROM ", table));
  if (!rows.ok()) return rows.status();
  if (rows->size() != 1 || (*rows)[0].size() != 2 || !(*rows)[0][0] ||
      !(*rows)[0][1]) {
    return absl::InternalError("unexpected count result");
  }
  RowCounts counts;
  counts.rows = std::stoll(*(*rows)[0][0]);
  counts.distinct_events = std::stoll(*(*rows)[0][1]);
  return counts;
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_PROJECTIONS_TEST_PROJECTIONS_H_
