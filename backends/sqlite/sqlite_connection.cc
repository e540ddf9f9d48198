#include "backends/sqlite/sqlite_connection.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {

namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// `path` as a "file:" URI with `query` (SQLITE_OPEN_URI).
std::string FileUri(const std::string& path, const char* query) {
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      absl::StrAppend(
          &uri, "%", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    } else {
      uri.push_back(c);
    }
  }
  absl::StrAppend(&uri, "?", query);
  return uri;
}

absl::StatusOr<sqlite3*> OpenHandle(const std::string& name,
                                    const std::string& path, int flags) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(name.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status =
        SqliteError(rc, db, absl::StrCat("opening '", path, "'"));
    sqlite3_close(db);
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  return db;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteConnection>> SqliteConnection::Open(
    const std::string& path, Mode mode, absl::Duration busy_timeout) {
  int flags = SQLITE_OPEN_NOMUTEX;
  switch (mode) {
    case Mode::kReadOnly:
      flags |= SQLITE_OPEN_READONLY;
      break;
    case Mode::kReadWrite:
      flags |= SQLITE_OPEN_READWRITE;
      break;
    case Mode::kReadWriteCreate:
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
      break;
  }
  ES_ASSIGN_OR_RETURN(sqlite3 * db, OpenHandle(path, path, flags));
  if (mode == Mode::kReadOnly && path != ":memory:") {
    // A WAL database needs its -shm file, which a read-only connection
    // creates when it can. In a directory it may not write, and with no
    // -wal or -shm beside the file (no writer has it open, and everything
    // is in the file), it can only be opened as immutable.
    const int rc =
        sqlite3_exec(db, "PRAGMA schema_version", nullptr, nullptr, nullptr);
    if (((rc & 0xff) == SQLITE_READONLY || (rc & 0xff) == SQLITE_CANTOPEN) &&
        !Exists(path + "-wal") && !Exists(path + "-shm")) {
      sqlite3_close(db);
      ES_ASSIGN_OR_RETURN(db, OpenHandle(FileUri(path, "immutable=1"), path,
                                         flags | SQLITE_OPEN_URI));
    }
  }
  sqlite3_busy_timeout(db, static_cast<int>(std::clamp<int64_t>(
                               absl::ToInt64Milliseconds(busy_timeout), 0,
                               std::numeric_limits<int>::max())));
  return std::unique_ptr<SqliteConnection>(new SqliteConnection(db));
}

SqliteConnection::~SqliteConnection() {
  cache_.clear();  // finalize every statement before closing
  ad_hoc_cache_.clear();
  sqlite3_close(db_);
}

absl::Status SqliteConnection::Exec(std::string_view sql) {
  char* error = nullptr;
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  sqlite3_free(error);
  if (rc != SQLITE_OK) return SqliteError(rc, db_, text);
  return absl::OkStatus();
}

absl::StatusOr<ScopedStatement> SqliteConnection::Cached(std::string_view sql) {
  auto it = cache_.find(absl::string_view(sql.data(), sql.size()));
  if (it == cache_.end()) {
    ES_ASSIGN_OR_RETURN(
        SqliteStatement stmt,
        SqliteStatement::Prepare(db_, sql, /*persistent=*/true));
    it = cache_
             .emplace(std::string(sql),
                      std::make_unique<SqliteStatement>(std::move(stmt)))
             .first;
  }
  return ScopedStatement(it->second.get());
}

absl::StatusOr<ScopedStatement> SqliteConnection::CachedAdHoc(
    std::string_view sql) {
  auto it = ad_hoc_cache_.find(absl::string_view(sql.data(), sql.size()));
  if (it == ad_hoc_cache_.end()) {
    std::string_view tail;
    absl::StatusOr<SqliteStatement> prepared =
        SqliteStatement::Prepare(db_, sql, /*persistent=*/true, &tail);
    if (!prepared.ok()) {
      // SQLite's generic error here is the application's SQL (a syntax
      // error, an unknown table or column).
      if (prepared.status().code() == absl::StatusCode::kInternal) {
        return absl::InvalidArgumentError(prepared.status().message());
      }
      return prepared.status();
    }
    SqliteStatement stmt = *std::move(prepared);
    if (!stmt.has_statement()) {
      return absl::InvalidArgumentError(
          "sqlite: the SQL text holds no statement");
    }
    // Only white space and comments may follow: the rest would be ignored.
    while (!tail.empty()) {
      std::string_view rest;
      ES_ASSIGN_OR_RETURN(
          SqliteStatement next,
          SqliteStatement::Prepare(db_, tail, /*persistent=*/false, &rest));
      if (next.has_statement()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sqlite: the SQL text holds more than one statement; run them "
            "one at a time (from '",
            std::string(tail), "')"));
      }
      if (rest.size() >= tail.size()) break;  // no progress: nothing left
      tail = rest;
    }
    if (ad_hoc_cache_.size() >= kMaxAdHocStatements) ad_hoc_cache_.clear();
    it = ad_hoc_cache_
             .emplace(std::string(sql),
                      std::make_unique<SqliteStatement>(std::move(stmt)))
             .first;
  }
  return ScopedStatement(it->second.get());
}

int64_t SqliteConnection::Changes() const { return sqlite3_changes64(db_); }

int64_t SqliteConnection::LastInsertRowid() const {
  return sqlite3_last_insert_rowid(db_);
}

bool SqliteConnection::InTransaction() const {
  return sqlite3_get_autocommit(db_) == 0;
}

absl::StatusOr<int64_t> SqliteConnection::QueryInt64(std::string_view sql,
                                                     int64_t if_no_row) {
  ES_ASSIGN_OR_RETURN(SqliteStatement stmt,
                      SqliteStatement::Prepare(db_, sql, /*persistent=*/false));
  ES_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row || stmt.ColumnIsNull(0)) return if_no_row;
  return stmt.ColumnInt64(0);
}

absl::StatusOr<std::string> SqliteConnection::QueryText(std::string_view sql) {
  ES_ASSIGN_OR_RETURN(SqliteStatement stmt,
                      SqliteStatement::Prepare(db_, sql, /*persistent=*/false));
  ES_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::string();
  return std::string(stmt.ColumnText(0));
}

absl::StatusOr<SqliteTransaction> SqliteTransaction::Begin(
    SqliteConnection& conn, Mode mode) {
  ES_ASSIGN_OR_RETURN(ScopedStatement begin,
                      conn.Cached(mode == Mode::kImmediate ? "BEGIN IMMEDIATE"
                                                           : "BEGIN DEFERRED"));
  ES_RETURN_IF_ERROR(begin->Run());
  return SqliteTransaction(&conn);
}

SqliteTransaction::~SqliteTransaction() { Rollback(); }

absl::Status SqliteTransaction::Commit() {
  if (!open_) {
    return absl::FailedPreconditionError("sqlite: transaction is not open");
  }
  ES_ASSIGN_OR_RETURN(ScopedStatement commit, conn_->Cached("COMMIT"));
  absl::Status status = commit->Run();
  if (status.ok()) open_ = false;
  return status;  // still open on failure: the destructor rolls back
}

void SqliteTransaction::Rollback() {
  if (!open_) return;
  open_ = false;
  // Errors are ignored: ROLLBACK fails only when SQLite already rolled the
  // transaction back itself, which is the state wanted.
  if (sqlite3_get_autocommit(conn_->handle()) == 0) {
    absl::StatusOr<ScopedStatement> rollback = conn_->Cached("ROLLBACK");
    if (rollback.ok()) (*rollback)->Run().IgnoreError();
  }
}

}  // namespace eventstore::sqlite
