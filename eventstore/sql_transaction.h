// SqlTransaction: a transaction on the store's own database, for read models
// kept beside the events.
//
// A projection whose read model lives in the same database writes it and
// saves its checkpoint in one SqlTransaction, so that both commit or neither
// does (exactly-once; see projections/projection_runner.h).
//
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<SqlTransaction> tx,
//                       store->BeginTransaction());
//   ES_RETURN_IF_ERROR(tx->Execute(
//       "UPDATE order_totals SET total = total + $1 WHERE id = $2",
//       {SqlValue::Int(amount), SqlValue::Text(order_id)}));
//   ES_RETURN_IF_ERROR(store->checkpoints().SaveIn(*tx, "totals", pos, 1));
//   ES_RETURN_IF_ERROR(tx->Commit());
//
// Parameters are written $1, $2, ... on every backend. The destructor rolls
// back a transaction that was not committed. A transaction is used by one
// thread. On SQLite it holds the store's write lock until it ends: do not
// append through the store from the thread that holds one.

#ifndef EVENTSTORE_SQL_TRANSACTION_H_
#define EVENTSTORE_SQL_TRANSACTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace eventstore {

// A statement parameter.
class SqlValue {
 public:
  enum class Kind { kNull, kInt, kDouble, kText, kBlob };

  static SqlValue Null() { return SqlValue(Kind::kNull); }
  static SqlValue Int(int64_t v) {
    SqlValue s(Kind::kInt);
    s.int_ = v;
    return s;
  }
  static SqlValue Double(double v) {
    SqlValue s(Kind::kDouble);
    s.double_ = v;
    return s;
  }
  static SqlValue Text(std::string v) {
    SqlValue s(Kind::kText);
    s.bytes_ = std::move(v);
    return s;
  }
  static SqlValue Blob(std::string v) {
    SqlValue s(Kind::kBlob);
    s.bytes_ = std::move(v);
    return s;
  }

  Kind kind() const { return kind_; }
  int64_t int_value() const { return int_; }
  double double_value() const { return double_; }
  // Text or blob bytes.
  const std::string& bytes() const { return bytes_; }

 private:
  explicit SqlValue(Kind kind) : kind_(kind) {}
  Kind kind_;
  int64_t int_ = 0;
  double double_ = 0;
  std::string bytes_;
};

// Query results: rows of columns in text form; nullopt for NULL. (Integers
// as decimal text; blobs as their bytes on SQLite, as bytea hex text on
// PostgreSQL.)
using SqlRow = std::vector<std::optional<std::string>>;
using SqlRows = std::vector<SqlRow>;

class SqlTransaction {
 public:
  virtual ~SqlTransaction() = default;

  // Runs one statement that returns no rows.
  virtual absl::Status Execute(std::string_view sql,
                               absl::Span<const SqlValue> params = {}) = 0;
  // Runs one query.
  virtual absl::StatusOr<SqlRows> Query(
      std::string_view sql, absl::Span<const SqlValue> params = {}) = 0;
  // Commits; after an error the transaction is rolled back.
  virtual absl::Status Commit() = 0;
  // "sqlite" or "postgres": for read models that need dialect-specific SQL.
  virtual std::string_view dialect() const = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_SQL_TRANSACTION_H_
