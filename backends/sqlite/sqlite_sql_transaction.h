// SqliteSqlTransaction: a SqlTransaction on a SQLite database's writer
// connection (see eventstore/sql_transaction.h for the contract).
//
// Internal to the SQLite backend. Begin() takes the database's writer lock
// and runs BEGIN IMMEDIATE; the lock is held until the transaction ends
// (Commit, a failed statement, or the destructor, which rolls back). Other
// threads' appends and writes wait for it meanwhile; reads of a file
// database go on, on reader connections, and see only what is committed.
//
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<SqliteSqlTransaction> tx,
//                       SqliteSqlTransaction::Begin(db));
//   ES_RETURN_IF_ERROR(tx->Execute("UPDATE totals SET n = n + $1 WHERE id =
//   $2",
//                                  {SqlValue::Int(1), SqlValue::Text("a")}));
//   ES_RETURN_IF_ERROR(tx->Commit());
//
// Parameters are written $1 .. $N and bound by name; a statement that uses
// another form ("?", ":name"), a $k beyond the values given, or leaves a
// value unused is kInvalidArgument. As on PostgreSQL, a statement that fails
// rolls the whole transaction back: every later call is
// kFailedPrecondition. Statements are cached on the writer connection
// (SqliteConnection::CachedAdHoc).

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_SQL_TRANSACTION_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_SQL_TRANSACTION_H_

#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_database.h"
#include "eventstore/sql_transaction.h"

namespace eventstore::sqlite {

class SqliteSqlTransaction final : public SqlTransaction {
 public:
  // Takes `db`'s writer lock (kFailedPrecondition when this thread holds it
  // already) and begins. kUnavailable when another process holds the
  // database's write lock beyond busy_timeout. `db` must outlive the
  // transaction.
  static absl::StatusOr<std::unique_ptr<SqliteSqlTransaction>> Begin(
      SqliteDatabase* db);

  SqliteSqlTransaction(const SqliteSqlTransaction&) = delete;
  SqliteSqlTransaction& operator=(const SqliteSqlTransaction&) = delete;
  // Rolls back unless committed; releases the writer lock.
  ~SqliteSqlTransaction() override;

  absl::Status Execute(std::string_view sql,
                       absl::Span<const SqlValue> params) override;
  absl::StatusOr<SqlRows> Query(std::string_view sql,
                                absl::Span<const SqlValue> params) override;
  absl::Status Commit() override;
  std::string_view dialect() const override { return "sqlite"; }

  // The database the transaction runs on.
  const SqliteDatabase& database() const { return *db_; }

  // Runs `f(SqliteConnection&)` (returning a Status) on the transaction's
  // connection, for the store's own statements inside it (SaveIn). As with
  // Execute, a failure rolls the transaction back.
  template <typename F>
  absl::Status Run(F&& f);

 private:
  SqliteSqlTransaction(SqliteDatabase* db, SqliteDatabase::WriterLock lock);

  // OK while open; else why it is not.
  absl::Status CheckOpen() const;
  // After a statement ran with `status`: when it failed, or when it ended
  // the transaction itself (COMMIT, ROLLBACK), the transaction ends here.
  absl::Status Finish(absl::Status status);
  // Rolls back (when still open in SQLite) and releases the lock.
  void End();

  SqliteDatabase* const db_;
  // Engaged while the transaction is open.
  std::optional<SqliteDatabase::WriterLock> lock_;
  // Why the transaction is no longer open.
  absl::Status ended_;
};

template <typename F>
absl::Status SqliteSqlTransaction::Run(F&& f) {
  absl::Status open = CheckOpen();
  if (!open.ok()) return open;
  return Finish(f(lock_->connection()));
}

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_SQL_TRANSACTION_H_
