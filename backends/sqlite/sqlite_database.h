// SqliteDatabase: the connections of one SQLite database, shared by the
// store and its repositories.
//
// Internal to the SQLite backend. It owns the options, the one writer
// connection behind its mutex, the pool of reader connections (a file
// database only) and the condition variable that tells waiters an append
// committed.
//
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDatabase> db,
//                       SqliteDatabase::Open(options));
//   absl::StatusOr<int64_t> n = db->WithReader(
//       [&](SqliteConnection& conn) -> absl::StatusOr<int64_t> { ... });
//   absl::Status s = db->WithWriteTransaction(
//       [&](SqliteConnection& conn) -> absl::Status { ... });
//
// Thread-safe. Writers are serialised by the writer mutex, so threads of one
// process never meet SQLITE_BUSY from each other; another process is waited
// for up to busy_timeout. The writer mutex is not recursive: a thread that
// holds it (through a SqlTransaction) and asks for it again gets
// kFailedPrecondition rather than a deadlock.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_DATABASE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_DATABASE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "backends/sqlite/sqlite_wal_checkpointer.h"
#include "eventstore/internal/mutex.h"

namespace eventstore::sqlite {

class SqliteDatabase {
 public:
  // Exclusive use of the writer connection: the writer mutex is held from
  // LockWriter() until this is destroyed. Movable; used by one thread.
  class WriterLock {
   public:
    WriterLock(WriterLock&& other) noexcept = default;
    WriterLock& operator=(WriterLock&&) = delete;
    WriterLock(const WriterLock&) = delete;
    ~WriterLock();

    SqliteConnection& connection() const { return *db_->writer_; }
    SqliteDatabase& database() const { return *db_; }

   private:
    friend class SqliteDatabase;
    WriterLock(SqliteDatabase* db, std::unique_lock<internal::Mutex> lock)
        : db_(db), lock_(std::move(lock)) {}

    SqliteDatabase* db_;
    std::unique_lock<internal::Mutex> lock_;
  };

  // Opens the database (creating or migrating its schema as the options
  // allow) and sets its journal mode and synchronous level; read-only, it
  // only inspects the schema. kInvalidArgument for options out of range.
  static absl::StatusOr<std::unique_ptr<SqliteDatabase>> Open(
      const SqliteOptions& options);

  // SqliteEventStore::UpgradeSchema.
  static absl::StatusOr<SchemaUpgrade> UpgradeSchema(
      const SqliteOptions& options);

  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  const SqliteOptions& options() const { return options_; }
  // True for ":memory:": the writer is the only connection.
  bool in_memory() const { return memory_; }

  // Takes the writer mutex, waiting for another thread that holds it.
  // kFailedPrecondition when this thread holds it already, or when the
  // database was opened read-only (every write comes through here).
  absl::StatusOr<WriterLock> LockWriter();

  // Runs `f(SqliteConnection&)` on the writer connection under the writer
  // mutex; each statement `f` runs is its own transaction unless it begins
  // one. Returns what `f` returns (a Status or StatusOr).
  template <typename F>
  auto WithWriter(F&& f) -> decltype(f(std::declval<SqliteConnection&>()));

  // As WithWriter, inside BEGIN IMMEDIATE: commits when `f` returns OK,
  // rolls back otherwise.
  template <typename F>
  auto WithWriteTransaction(F&& f)
      -> decltype(f(std::declval<SqliteConnection&>()));

  // Runs `f(SqliteConnection&)` on a reader connection: a pooled one for a
  // file database (it sees what is committed), the writer under its mutex
  // for an in-memory one (from the thread that holds the writer, that
  // thread's connection, which sees its open transaction).
  template <typename F>
  auto WithReader(F&& f) -> decltype(f(std::declval<SqliteConnection&>()));

  // Append notifications, for WaitForEvents. AppendCount() increases each
  // time NotifyAppend() is called (after an append commits).
  uint64_t AppendCount();
  void NotifyAppend();
  // Returns when AppendCount() differs from `seen`, or after `timeout`.
  void WaitForAppend(uint64_t seen, absl::Duration timeout);

  // The background checkpointer (SqliteOptions::background_checkpoint), or
  // null when there is none.
  const SqliteWalCheckpointer* checkpointer() const {
    return checkpointer_.get();
  }

 private:
  SqliteDatabase(SqliteOptions options,
                 std::unique_ptr<SqliteConnection> writer,
                 std::unique_ptr<SqliteConnection> checkpoint_connection);

  absl::StatusOr<std::unique_ptr<SqliteConnection>> AcquireReader();
  void ReleaseReader(std::unique_ptr<SqliteConnection> conn);
  bool ThisThreadHoldsWriter() const {
    return writer_owner_.load(std::memory_order_relaxed) ==
           std::this_thread::get_id();
  }

  const SqliteOptions options_;
  const bool memory_;

  internal::Mutex writer_mu_;
  const std::unique_ptr<SqliteConnection> writer_
      ABSL_PT_GUARDED_BY(writer_mu_);
  // Hooks writer_: declared after it, so destroyed before it.
  const std::unique_ptr<SqliteWalCheckpointer> checkpointer_;
  // The thread holding writer_mu_ (through a WriterLock), else a default id.
  std::atomic<std::thread::id> writer_owner_{};

  internal::Mutex pool_mu_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_
      ABSL_GUARDED_BY(pool_mu_);

  // std::mutex and std::condition_variable, not internal::Mutex: see
  // docs/architecture.md (ThreadSanitizer).
  std::mutex append_mu_;
  std::condition_variable append_cv_;
  uint64_t append_count_ = 0;  // guarded by append_mu_
};

// --- templates ---------------------------------------------------------------

template <typename F>
auto SqliteDatabase::WithWriter(F&& f)
    -> decltype(f(std::declval<SqliteConnection&>())) {
  absl::StatusOr<WriterLock> lock = LockWriter();
  if (!lock.ok()) return lock.status();
  return f(lock->connection());
}

template <typename F>
auto SqliteDatabase::WithWriteTransaction(F&& f)
    -> decltype(f(std::declval<SqliteConnection&>())) {
  absl::StatusOr<WriterLock> lock = LockWriter();
  if (!lock.ok()) return lock.status();
  SqliteConnection& conn = lock->connection();
  absl::StatusOr<SqliteTransaction> txn =
      SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kImmediate);
  if (!txn.ok()) return txn.status();
  auto result = f(conn);
  if (!result.ok()) return result;  // txn rolls back
  absl::Status committed = txn->Commit();
  if (!committed.ok()) return committed;
  return result;
}

template <typename F>
auto SqliteDatabase::WithReader(F&& f)
    -> decltype(f(std::declval<SqliteConnection&>())) {
  if (memory_) {
    // The thread of an open SqlTransaction reads on its own connection.
    if (ThisThreadHoldsWriter()) return f(*writer_);
    return WithWriter(std::forward<F>(f));
  }
  absl::StatusOr<std::unique_ptr<SqliteConnection>> conn = AcquireReader();
  if (!conn.ok()) return conn.status();
  auto result = f(**conn);
  ReleaseReader(*std::move(conn));
  return result;
}

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_DATABASE_H_
