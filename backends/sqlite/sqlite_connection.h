// SqliteConnection: an RAII sqlite3 handle with a prepared-statement cache,
// and SqliteTransaction, a guard that rolls back unless committed.
//
// A connection is used by one thread at a time (the caller's lock or pool
// guarantees it), so it is opened with SQLITE_OPEN_NOMUTEX.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_CONNECTION_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_CONNECTION_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_statement.h"

struct sqlite3;

namespace eventstore::sqlite {

class SqliteConnection {
 public:
  enum class Mode {
    kReadOnly,         // SQLITE_OPEN_READONLY: the file is never written
    kReadWrite,        // the file must exist
    kReadWriteCreate,  // created when absent
  };

  // Opens `path` (":memory:" for a private in-memory database).
  // busy_timeout is clamped to what SQLite takes (2^31-1 ms); callers
  // validate it first.
  static absl::StatusOr<std::unique_ptr<SqliteConnection>> Open(
      const std::string& path, Mode mode, absl::Duration busy_timeout);

  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;
  // Finalizes the cached statements, then closes the handle.
  ~SqliteConnection();

  // Runs one or more statements that take no parameters (DDL, pragmas).
  absl::Status Exec(std::string_view sql);

  // The statement for `sql`, prepared on first use and kept for the
  // connection's life. `sql` must be built only from constants: its text is
  // the cache key.
  absl::StatusOr<ScopedStatement> Cached(std::string_view sql);

  // The statement for `sql` whose text comes from the application (see
  // SqlTransaction), kept in a cache of its own of at most
  // kMaxAdHocStatements, emptied when full, so that text built at run time
  // cannot grow it without bound. `sql` must hold exactly one statement:
  // anything but white space and comments after it is kInvalidArgument.
  // REQUIRES: no statement of this cache is on loan.
  absl::StatusOr<ScopedStatement> CachedAdHoc(std::string_view sql);
  static constexpr size_t kMaxAdHocStatements = 64;

  // A single integer (the first column of the first row) of a query with
  // no parameters, or `if_no_row` when it returns no row or NULL.
  absl::StatusOr<int64_t> QueryInt64(std::string_view sql, int64_t if_no_row);
  // A single text value, as above.
  absl::StatusOr<std::string> QueryText(std::string_view sql);

  // Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes() const;
  // The rowid of the last row inserted.
  int64_t LastInsertRowid() const;
  // True while a transaction is open (BEGIN ran and did not end).
  bool InTransaction() const;

  sqlite3* handle() const { return db_; }

 private:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}

  sqlite3* db_;
  absl::flat_hash_map<std::string, std::unique_ptr<SqliteStatement>> cache_;
  absl::flat_hash_map<std::string, std::unique_ptr<SqliteStatement>>
      ad_hoc_cache_;
};

// BEGIN IMMEDIATE (or DEFERRED) on construction; ROLLBACK in the destructor
// unless Commit() succeeded.
class SqliteTransaction {
 public:
  enum class Mode { kDeferred, kImmediate };

  static absl::StatusOr<SqliteTransaction> Begin(SqliteConnection& conn,
                                                 Mode mode);
  SqliteTransaction(SqliteTransaction&& other) noexcept
      : conn_(other.conn_), open_(other.open_) {
    other.open_ = false;
  }
  SqliteTransaction& operator=(SqliteTransaction&&) = delete;
  SqliteTransaction(const SqliteTransaction&) = delete;
  ~SqliteTransaction();

  absl::Status Commit();
  // Rolls back now; the destructor then does nothing.
  void Rollback();

 private:
  explicit SqliteTransaction(SqliteConnection* conn)
      : conn_(conn), open_(true) {}

  SqliteConnection* conn_;
  bool open_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_CONNECTION_H_
