// SqliteStatement: an RAII sqlite3_stmt with typed binds and columns.
//
// Internal to the SQLite backend; sqlite3.h stays out of public headers.
//
//   ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectVersion));
//   stmt->BindText(1, stream);
//   ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
//
// Text and blob binds do not copy: the bound bytes must stay alive until the
// statement is reset (a ScopedStatement resets when it goes out of scope).
// A bind that fails is remembered and returned by the next Step().

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_STATEMENT_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_STATEMENT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace eventstore::sqlite {

// The status for SQLite result code `rc` on `db`, with `context` (what was
// being done) and SQLite's own message. SQLITE_BUSY and SQLITE_LOCKED map to
// kUnavailable, SQLITE_NOTADB and SQLITE_CORRUPT to kFailedPrecondition.
absl::Status SqliteError(int rc, sqlite3* db, std::string_view context);

class SqliteStatement {
 public:
  // Prepares `sql` on `db` (kept for the connection's life when
  // `persistent`). When `tail` is given, it receives the text after the
  // first statement; otherwise that text is ignored.
  static absl::StatusOr<SqliteStatement> Prepare(
      sqlite3* db, std::string_view sql, bool persistent,
      std::string_view* tail = nullptr);

  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement();

  // Parameters are 1-based.
  void BindInt64(int index, int64_t value);
  void BindDouble(int index, double value);
  void BindText(int index, std::string_view value);
  void BindBlob(int index, std::string_view value);
  void BindNull(int index);

  // Runs one step: true when a row is ready, false when done.
  absl::StatusOr<bool> Step();
  // Steps until done, for statements that return no rows.
  absl::Status Run();
  // Ready for new binds and steps; clears the bindings.
  void Reset();

  // Parameters the statement takes (the largest index).
  int ParameterCount() const;
  // The name of parameter `index` ("$1", ":a"), or empty when it is
  // anonymous ("?").
  std::string_view ParameterName(int index) const;
  // The index of the parameter called `name`, 0 when there is none.
  int ParameterIndex(const std::string& name) const;

  // False for a statement prepared from text that holds only white space or
  // comments: it does nothing when stepped.
  bool has_statement() const { return stmt_ != nullptr; }

  enum class ColumnType { kNull, kInteger, kFloat, kText, kBlob };

  // Columns are 0-based; views stay valid until the next Step() or Reset().
  int ColumnCount() const;
  ColumnType TypeOfColumn(int column) const;
  bool ColumnIsNull(int column) const;
  int64_t ColumnInt64(int column) const;
  std::string_view ColumnText(int column) const;
  std::string_view ColumnBlob(int column) const;

  // The extended result code of the last failed Step().
  int last_error() const { return last_error_; }

 private:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  void NoteBind(int rc, int index);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status bind_status_;
  int last_error_ = 0;
};

// A cached statement on loan: resets it when it goes out of scope.
class ScopedStatement {
 public:
  explicit ScopedStatement(SqliteStatement* stmt) : stmt_(stmt) {}
  ScopedStatement(ScopedStatement&& other) noexcept : stmt_(other.stmt_) {
    other.stmt_ = nullptr;
  }
  ScopedStatement& operator=(ScopedStatement&&) = delete;
  ScopedStatement(const ScopedStatement&) = delete;
  ~ScopedStatement() {
    if (stmt_ != nullptr) stmt_->Reset();
  }
  SqliteStatement* operator->() const { return stmt_; }
  SqliteStatement& operator*() const { return *stmt_; }

 private:
  SqliteStatement* stmt_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_STATEMENT_H_
