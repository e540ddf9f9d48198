// PgSqlTransaction: a SqlTransaction on a PostgreSQL store's database
// (eventstore/sql_transaction.h has the contract).
//
// Internal to the PostgreSQL backend. It holds one pooled connection from
// BEGIN until it commits or is destroyed (which rolls back). Its
// search_path is the store's schema, then public: read-model tables created
// without a schema name live beside the events, one set per store.
// Statements are sent unprepared, with parameters in text format (their
// types inferred by the server) except blobs, sent as binary bytea;
// results come back as text, bytea as "\x..." hex.
//
// PostgreSQL aborts a transaction at its first failed statement: every
// later call, and Commit, then fails with kAborted, and the transaction can
// only roll back.
//
// Used by one thread at a time.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_SQL_TRANSACTION_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_SQL_TRANSACTION_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "backends/postgres/pg_pool.h"
#include "eventstore/sql_transaction.h"

namespace eventstore::postgres {

class PgSqlTransaction final : public SqlTransaction {
 public:
  // Takes a pooled connection of `db` (which must outlive the transaction)
  // and begins a transaction on it.
  static absl::StatusOr<std::unique_ptr<SqlTransaction>> Begin(PgDatabase* db);

  PgSqlTransaction(const PgSqlTransaction&) = delete;
  PgSqlTransaction& operator=(const PgSqlTransaction&) = delete;
  // Rolls back unless committed; waits for the server at most
  // connect_timeout, then abandons the connection.
  ~PgSqlTransaction() override;

  absl::Status Execute(std::string_view sql,
                       absl::Span<const SqlValue> params) override;
  absl::StatusOr<SqlRows> Query(std::string_view sql,
                                absl::Span<const SqlValue> params) override;
  // kAborted when an earlier statement failed (the transaction is rolled
  // back); kUnavailable when the connection was lost during the commit,
  // whose outcome is then unknown.
  absl::Status Commit() override;
  std::string_view dialect() const override { return "postgres"; }

  // Runs a prepared statement of `db` inside this transaction, for
  // repositories that write with the read model (CheckpointStore::SaveIn).
  // kInvalidArgument when the transaction belongs to another database
  // object, kFailedPrecondition when it has ended.
  absl::StatusOr<PgResult> ExecutePrepared(const PgDatabase* db,
                                           const PgStatement& stmt,
                                           const PgParams& params);

 private:
  enum class State { kOpen, kFailed, kEnded };

  PgSqlTransaction(PgDatabase* db, PgPool::Lease conn)
      : db_(db), conn_(std::move(conn)) {}

  // OK while statements may run; kAborted after a failure, and
  // kFailedPrecondition once ended.
  absl::Status CheckOpen() const;
  // Notes a failed statement: PostgreSQL has aborted the transaction.
  void Failed(const absl::Status& status);
  absl::StatusOr<PgResult> Run(std::string_view sql,
                               absl::Span<const SqlValue> params);

  PgDatabase* const db_;
  PgPool::Lease conn_;
  State state_ = State::kOpen;
  // The first failure, for the messages of the calls after it.
  std::string failure_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_SQL_TRANSACTION_H_
