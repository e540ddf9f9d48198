#include "backends/sqlite/sqlite_sql_transaction.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {
namespace {

constexpr char kBegin[] = "BEGIN IMMEDIATE";
constexpr char kCommit[] = "COMMIT";
constexpr char kRollback[] = "ROLLBACK";

// k for a parameter named "$k" (k >= 1, no leading zero); 0 otherwise.
size_t DollarNumber(std::string_view name) {
  if (name.size() < 2 || name.size() > 10 || name[0] != '$' || name[1] == '0') {
    return 0;
  }
  size_t k = 0;
  for (char c : name.substr(1)) {
    if (c < '0' || c > '9') return 0;
    k = k * 10 + static_cast<size_t>(c - '0');
  }
  return k;
}

// Binds params[k - 1] to "$k", after checking that the statement's
// parameters are exactly $1 .. $N.
absl::Status BindParameters(SqliteStatement& stmt,
                            absl::Span<const SqlValue> params) {
  const int count = stmt.ParameterCount();
  for (int i = 1; i <= count; ++i) {
    const std::string_view name = stmt.ParameterName(i);
    const size_t k = DollarNumber(name);
    if (k == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sql: parameter '", name.empty() ? "?" : std::string(name),
          "' is not allowed; write parameters as $1, $2, ..."));
    }
    if (k > params.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sql: the statement uses ", std::string(name), " but ",
                       params.size(), " parameters were given"));
    }
  }
  for (size_t k = 1; k <= params.size(); ++k) {
    const int index = stmt.ParameterIndex(absl::StrCat("$", k));
    if (index == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("sql: parameter $", k,
                       " was given but the statement does not use "
                       "it"));
    }
    const SqlValue& value = params[k - 1];
    switch (value.kind()) {
      case SqlValue::Kind::kNull:
        stmt.BindNull(index);
        break;
      case SqlValue::Kind::kInt:
        stmt.BindInt64(index, value.int_value());
        break;
      case SqlValue::Kind::kDouble:
        stmt.BindDouble(index, value.double_value());
        break;
      case SqlValue::Kind::kText:
        stmt.BindText(index, value.bytes());
        break;
      case SqlValue::Kind::kBlob:
        stmt.BindBlob(index, value.bytes());
        break;
    }
  }
  return absl::OkStatus();
}

// The current row of `stmt` in text form.
SqlRow RowAsText(const SqliteStatement& stmt) {
  const int columns = stmt.ColumnCount();
  SqlRow row(static_cast<size_t>(columns));
  for (int c = 0; c < columns; ++c) {
    switch (stmt.TypeOfColumn(c)) {
      case SqliteStatement::ColumnType::kNull:
        break;
      case SqliteStatement::ColumnType::kInteger:
        row[c] = absl::StrCat(stmt.ColumnInt64(c));
        break;
      case SqliteStatement::ColumnType::kBlob:
        row[c] = std::string(stmt.ColumnBlob(c));
        break;
      case SqliteStatement::ColumnType::kFloat:  // SQLite's "%!.15g"
      case SqliteStatement::ColumnType::kText:
        row[c] = std::string(stmt.ColumnText(c));
        break;
    }
  }
  return row;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteSqlTransaction>>
SqliteSqlTransaction::Begin(SqliteDatabase* db) {
  ES_ASSIGN_OR_RETURN(SqliteDatabase::WriterLock lock, db->LockWriter());
  {
    ES_ASSIGN_OR_RETURN(ScopedStatement begin,
                        lock.connection().Cached(kBegin));
    absl::Status status = begin->Run();
    if (!status.ok()) {
      return absl::Status(
          status.code(), absl::StrCat("begin transaction: ", status.message()));
    }
  }
  return std::unique_ptr<SqliteSqlTransaction>(
      new SqliteSqlTransaction(db, std::move(lock)));
}

SqliteSqlTransaction::SqliteSqlTransaction(SqliteDatabase* db,
                                           SqliteDatabase::WriterLock lock)
    : db_(db), lock_(std::move(lock)) {}

SqliteSqlTransaction::~SqliteSqlTransaction() { End(); }

absl::Status SqliteSqlTransaction::CheckOpen() const {
  if (lock_.has_value()) return absl::OkStatus();
  return ended_;
}

void SqliteSqlTransaction::End() {
  if (!lock_.has_value()) return;
  SqliteConnection& conn = lock_->connection();
  if (conn.InTransaction()) {
    // ROLLBACK fails only when SQLite already rolled back by itself, which
    // is the state wanted.
    absl::StatusOr<ScopedStatement> rollback = conn.Cached(kRollback);
    if (rollback.ok()) (*rollback)->Run().IgnoreError();
  }
  lock_.reset();
}

absl::Status SqliteSqlTransaction::Finish(absl::Status status) {
  if (!status.ok()) {
    ended_ = absl::FailedPreconditionError(absl::StrCat(
        "sql transaction: rolled back after an error: ", status.ToString()));
    End();
    return status;
  }
  if (!lock_->connection().InTransaction()) {
    ended_ = absl::FailedPreconditionError(
        "sql transaction: ended by a statement of its own");
    End();
    return absl::FailedPreconditionError(
        "sql transaction: a statement ended the transaction (COMMIT, "
        "ROLLBACK or END are not allowed in a SqlTransaction; call "
        "Commit()); later calls fail");
  }
  return absl::OkStatus();
}

absl::Status SqliteSqlTransaction::Execute(std::string_view sql,
                                           absl::Span<const SqlValue> params) {
  return Run([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.CachedAdHoc(sql));
    ES_RETURN_IF_ERROR(BindParameters(*stmt, params));
    return stmt->Run();
  });
}

absl::StatusOr<SqlRows> SqliteSqlTransaction::Query(
    std::string_view sql, absl::Span<const SqlValue> params) {
  SqlRows rows;
  ES_RETURN_IF_ERROR(Run([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.CachedAdHoc(sql));
    ES_RETURN_IF_ERROR(BindParameters(*stmt, params));
    while (true) {
      ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) return absl::OkStatus();
      rows.push_back(RowAsText(*stmt));
    }
  }));
  return rows;
}

absl::Status SqliteSqlTransaction::Commit() {
  ES_RETURN_IF_ERROR(CheckOpen());
  absl::Status status;
  {
    absl::StatusOr<ScopedStatement> commit =
        lock_->connection().Cached(kCommit);
    status = commit.ok() ? (*commit)->Run() : commit.status();
  }
  if (status.ok()) {
    ended_ =
        absl::FailedPreconditionError("sql transaction: already committed");
    lock_.reset();
    return absl::OkStatus();
  }
  ended_ = absl::FailedPreconditionError(absl::StrCat(
      "sql transaction: rolled back after COMMIT failed: ", status.ToString()));
  End();
  return absl::Status(status.code(),
                      absl::StrCat("sql transaction: commit failed, rolled "
                                   "back: ",
                                   status.message()));
}

}  // namespace eventstore::sqlite
