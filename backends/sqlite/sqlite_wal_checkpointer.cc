#include "backends/sqlite/sqlite_wal_checkpointer.h"

#include <utility>

namespace eventstore::sqlite {
std::unique_ptr<SqliteWalCheckpointer> SqliteWalCheckpointer::Start(
    std::unique_ptr<SqliteConnection> own, SqliteConnection& writer) {
  std::unique_ptr<SqliteWalCheckpointer> checkpointer(
      new SqliteWalCheckpointer(writer, std::move(own)));
  // Replaces SQLite's automatic checkpoint on the writer.
  sqlite3_wal_hook(writer.handle(), &SqliteWalCheckpointer::OnCommit,
                   checkpointer.get());
  return checkpointer;
}

SqliteWalCheckpointer::SqliteWalCheckpointer(
    SqliteConnection& writer, std::unique_ptr<SqliteConnection> own)
    : writer_(writer), own_(std::move(own)), thread_([this] { Run(); }) {}

SqliteWalCheckpointer::~SqliteWalCheckpointer() {
  // Back to SQLite's automatic checkpoint (which also removes the hook).
  sqlite3_wal_autocheckpoint(writer_.handle(), kWakePages);
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

int SqliteWalCheckpointer::OnCommit(void* self, sqlite3* db, const char* schema,
                                    int pages) {
  auto* checkpointer = static_cast<SqliteWalCheckpointer*>(self);
  if (pages >= kWriterPages) {
    // The thread fell behind: this commit checkpoints, as SQLite's own
    // automatic checkpoint would have (PASSIVE; a failure, such as a
    // checkpoint already under way, leaves it to the next commit).
    if (sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE,
                                  nullptr, nullptr) == SQLITE_OK) {
      std::lock_guard<std::mutex> lock(checkpointer->mu_);
      ++checkpointer->writer_checkpoints_;
    }
    return SQLITE_OK;
  }
  if (pages >= kWakePages) {
    {
      std::lock_guard<std::mutex> lock(checkpointer->mu_);
      checkpointer->due_ = true;
    }
    checkpointer->wake_.notify_one();
  }
  return SQLITE_OK;
}

void SqliteWalCheckpointer::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return quit_ || due_; });
    if (quit_) return;
    due_ = false;
    lock.unlock();
    // SQLITE_BUSY (another connection or process is checkpointing) or an
    // I/O error leaves the log to the next checkpoint: the writer's
    // fallback bounds it meanwhile.
    {
      std::lock_guard<std::mutex> running(run_mu_);
      const int rc = sqlite3_wal_checkpoint_v2(
          own_->handle(), "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      // Counted before run_mu_ goes: once Pause() returns, the count
      // holds every checkpoint the thread ran.
      if (rc == SQLITE_OK) {
        std::lock_guard<std::mutex> counting(mu_);
        ++thread_checkpoints_;
      }
    }
    lock.lock();
  }
}

int64_t SqliteWalCheckpointer::thread_checkpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  return thread_checkpoints_;
}

int64_t SqliteWalCheckpointer::writer_checkpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  return writer_checkpoints_;
}

}  // namespace eventstore::sqlite
