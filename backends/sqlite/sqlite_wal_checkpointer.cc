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
  changed_.notify_all();
  thread_.join();
}

SqliteWalCheckpointer::Paused SqliteWalCheckpointer::Pause() const {
  std::unique_lock<std::mutex> lock(mu_);
  ++paused_;
  changed_.wait(lock, [this] { return !running_; });
  return Paused(this);
}

SqliteWalCheckpointer::Paused::~Paused() {
  if (checkpointer_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(checkpointer_->mu_);
    --checkpointer_->paused_;
  }
  checkpointer_->changed_.notify_all();
}

int SqliteWalCheckpointer::OnCommit(void* self, sqlite3* db, const char* schema,
                                    int pages) {
  auto* checkpointer = static_cast<SqliteWalCheckpointer*>(self);
  if (pages >= kWriterPages) {
    // The log did not start over (commits kept coming while the thread
    // checkpointed): this commit checkpoints what is left, as SQLite's own
    // automatic checkpoint would have, after the thread's checkpoint under
    // way if any (SQLite refuses two at once). PASSIVE; a failure leaves
    // it to the next commit.
    {
      std::unique_lock<std::mutex> lock(checkpointer->mu_);
      checkpointer->changed_.wait(
          lock, [checkpointer] { return !checkpointer->running_; });
      checkpointer->running_ = true;
    }
    const int rc = sqlite3_wal_checkpoint_v2(
        db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    {
      std::lock_guard<std::mutex> lock(checkpointer->mu_);
      checkpointer->running_ = false;
      if (rc == SQLITE_OK) ++checkpointer->writer_checkpoints_;
    }
    checkpointer->changed_.notify_all();
    return SQLITE_OK;
  }
  if (pages >= kWakePages) {
    {
      std::lock_guard<std::mutex> lock(checkpointer->mu_);
      checkpointer->due_ = true;
    }
    checkpointer->changed_.notify_all();
  }
  return SQLITE_OK;
}

void SqliteWalCheckpointer::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    changed_.wait(
        lock, [this] { return quit_ || (due_ && paused_ == 0 && !running_); });
    if (quit_) return;
    due_ = false;
    running_ = true;
    lock.unlock();
    // SQLITE_BUSY (another process is checkpointing) or an I/O error
    // leaves the log to the next checkpoint: the writer's own at
    // kWriterPages bounds it meanwhile.
    const int rc = sqlite3_wal_checkpoint_v2(
        own_->handle(), "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    lock.lock();
    running_ = false;
    if (rc == SQLITE_OK) ++thread_checkpoints_;
    changed_.notify_all();
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
