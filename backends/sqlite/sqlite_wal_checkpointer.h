// SqliteWalCheckpointer: runs a WAL database's checkpoints on a thread of its
// own rather than inside commits (SqliteOptions::background_checkpoint).
//
// Internal to the SQLite backend. SQLite's automatic checkpoint runs inside
// the commit that takes the write-ahead log past 1,000 pages: that commit
// copies the log into the database file and waits for its fsync, and every
// write queued behind it waits too. The checkpointer replaces it: a WAL hook
// on the writer connection (sqlite3_wal_hook, which also turns the automatic
// checkpoint off) wakes the thread when the log reaches kWakePages, and the
// thread checkpoints on a connection of its own (PASSIVE: it never blocks
// the writer or a reader). A PASSIVE checkpoint copies the pages the log
// held when it began; the writer starts the log over at its next
// transaction only once every page is copied (and no reader needs the old
// ones), which, while commits keep coming, the thread's checkpoints do not
// achieve. So under continuous writes the log grows until kWriterPages, and
// the commit that takes it there checkpoints itself, as SQLite would: by
// then the thread has copied nearly everything, so that commit copies
// little and mostly waits for one fsync, and the log starts over. Should
// the thread be checkpointing at that moment, the writer waits for it to
// finish first (SQLite would refuse a second checkpoint), so the log never
// goes far past kWriterPages.
//
//   std::unique_ptr<SqliteWalCheckpointer> checkpointer =
//       SqliteWalCheckpointer::Start(std::move(own_connection), *writer);
//   ...  // destroy it before `writer`
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_WAL_CHECKPOINTER_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_WAL_CHECKPOINTER_H_

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "backends/sqlite/sqlite_connection.h"

namespace eventstore::sqlite {

class SqliteWalCheckpointer {
 public:
  // The log's size, in pages, that wakes the thread: SQLite's own
  // automatic checkpoint threshold.
  static constexpr int kWakePages = 1000;
  // The log's size at which the committing writer checkpoints itself.
  static constexpr int kWriterPages = 8 * kWakePages;

  // Starts the thread, which checkpoints on `own`, and hooks `writer` (the
  // one connection that writes). `own` must be a read-write connection to
  // the same WAL file database, with the writer's synchronous level (a
  // checkpoint syncs the files as its connection's level says); `writer`
  // must outlive the checkpointer.
  static std::unique_ptr<SqliteWalCheckpointer> Start(
      std::unique_ptr<SqliteConnection> own, SqliteConnection& writer);

  SqliteWalCheckpointer(const SqliteWalCheckpointer&) = delete;
  SqliteWalCheckpointer& operator=(const SqliteWalCheckpointer&) = delete;
  // Unhooks the writer and joins the thread (a checkpoint under way
  // finishes first). REQUIRES: no write is under way on the writer.
  ~SqliteWalCheckpointer();

  // Holds the thread's checkpoints off while it lives (one under way
  // finishes first). Movable.
  class Paused {
   public:
    Paused(Paused&& other) noexcept
        : checkpointer_(std::exchange(other.checkpointer_, nullptr)) {}
    Paused& operator=(Paused&&) = delete;
    ~Paused();

   private:
    friend class SqliteWalCheckpointer;
    explicit Paused(const SqliteWalCheckpointer* checkpointer)
        : checkpointer_(checkpointer) {}
    const SqliteWalCheckpointer* checkpointer_;
  };
  // For a checkpoint of the caller's own, which SQLite would refuse
  // (SQLITE_BUSY) while another one runs: returns once the thread is not
  // checkpointing, and keeps it from starting until the Paused is gone.
  // Only this database's thread waits: another process's checkpoint on
  // the same file may still be under way.
  Paused Pause() const;

  // Checkpoints the thread has run, and those the writer ran itself
  // because the log reached kWriterPages. For tests and monitoring.
  int64_t thread_checkpoints() const;
  int64_t writer_checkpoints() const;

 private:
  SqliteWalCheckpointer(SqliteConnection& writer,
                        std::unique_ptr<SqliteConnection> own);
  // The WAL hook: called by SQLite on the writer's thread after each
  // commit, with the log's size in pages.
  static int OnCommit(void* self, sqlite3* db, const char* schema, int pages);
  void Run();

  SqliteConnection& writer_;
  const std::unique_ptr<SqliteConnection> own_;

  // std::mutex and std::condition_variable, not internal::Mutex: see
  // docs/architecture.md (ThreadSanitizer).
  mutable std::mutex mu_;
  // Notified when due_, quit_, paused_ or running_ changes.
  mutable std::condition_variable changed_;
  bool due_ = false;   // guarded by mu_
  bool quit_ = false;  // guarded by mu_
  // Pause() calls whose Paused lives.
  mutable int paused_ = 0;  // guarded by mu_
  // A checkpoint is under way, the thread's or the writer's.
  bool running_ = false;            // guarded by mu_
  int64_t thread_checkpoints_ = 0;  // guarded by mu_
  int64_t writer_checkpoints_ = 0;  // guarded by mu_
  std::thread thread_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_WAL_CHECKPOINTER_H_
