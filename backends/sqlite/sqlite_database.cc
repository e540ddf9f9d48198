#include "backends/sqlite/sqlite_database.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_schema.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {
namespace {

const char* SynchronousName(SqliteOptions::Synchronous s) {
  switch (s) {
    case SqliteOptions::Synchronous::kOff:
      return "OFF";
    case SqliteOptions::Synchronous::kNormal:
      return "NORMAL";
    case SqliteOptions::Synchronous::kFull:
      return "FULL";
    case SqliteOptions::Synchronous::kExtra:
      return "EXTRA";
  }
  return "FULL";
}

// Switching the journal mode needs the file's exclusive lock. When another
// connection holds a shared lock and waits for the same upgrade (several
// processes opening one new file), SQLite reports SQLITE_BUSY at once
// rather than calling the busy handler, to avoid a deadlock; so the switch
// is retried here until busy_timeout has passed.
absl::StatusOr<std::string> SetJournalMode(SqliteConnection& conn,
                                           const char* mode,
                                           absl::Duration busy_timeout) {
  const std::string sql = absl::StrCat("PRAGMA journal_mode = ", mode);
  const absl::Time deadline = absl::Now() + busy_timeout;
  absl::Duration pause = absl::Milliseconds(1);
  while (true) {
    absl::StatusOr<std::string> result = conn.QueryText(sql);
    if (result.ok() ||
        result.status().code() != absl::StatusCode::kUnavailable ||
        absl::Now() >= deadline) {
      return result;
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
}

}  // namespace

SqliteDatabase::WriterLock::~WriterLock() {
  if (lock_.owns_lock()) {
    db_->writer_owner_.store(std::thread::id(), std::memory_order_relaxed);
  }
}

absl::StatusOr<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(
    const SqliteOptions& options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError(
        "path: empty; give a file name or \":memory:\"");
  }
  if (options.max_readers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_readers: ", options.max_readers, " is below 1"));
  }
  ES_ASSIGN_OR_RETURN(
      std::unique_ptr<SqliteConnection> writer,
      SqliteConnection::Open(options.path, options.create_if_missing,
                             options.busy_timeout));
  ES_RETURN_IF_ERROR(EnsureSchema(*writer, options.path));
  if (options.path != ":memory:") {
    ES_ASSIGN_OR_RETURN(std::string mode,
                        SetJournalMode(*writer, options.wal ? "WAL" : "DELETE",
                                       options.busy_timeout));
    const std::string want = options.wal ? "wal" : "delete";
    if (mode != want) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite: '", options.path, "': could not set journal_mode ", want,
          " (it is ", mode, ")"));
    }
  }
  ES_RETURN_IF_ERROR(writer->Exec(absl::StrCat(
      "PRAGMA synchronous = ", SynchronousName(options.synchronous))));
  return std::unique_ptr<SqliteDatabase>(
      new SqliteDatabase(options, std::move(writer)));
}

SqliteDatabase::SqliteDatabase(SqliteOptions options,
                               std::unique_ptr<SqliteConnection> writer)
    : options_(std::move(options)),
      memory_(options_.path == ":memory:"),
      writer_(std::move(writer)) {}

absl::StatusOr<SqliteDatabase::WriterLock> SqliteDatabase::LockWriter() {
  if (ThisThreadHoldsWriter()) {
    return absl::FailedPreconditionError(
        "sqlite: this thread holds the store's write lock (an open "
        "SqlTransaction): write through the transaction, or commit it first");
  }
  std::unique_lock<internal::Mutex> lock(writer_mu_);
  writer_owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  return WriterLock(this, std::move(lock));
}

absl::StatusOr<std::unique_ptr<SqliteConnection>>
SqliteDatabase::AcquireReader() {
  {
    internal::MutexLock lock(&pool_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<SqliteConnection> conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return conn;
    }
  }
  ES_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> conn,
                      SqliteConnection::Open(options_.path,
                                             /*create_if_missing=*/false,
                                             options_.busy_timeout));
  ES_RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 1"));
  return conn;
}

void SqliteDatabase::ReleaseReader(std::unique_ptr<SqliteConnection> conn) {
  internal::MutexLock lock(&pool_mu_);
  if (idle_readers_.size() < static_cast<size_t>(options_.max_readers)) {
    idle_readers_.push_back(std::move(conn));
  }
}

uint64_t SqliteDatabase::AppendCount() {
  std::lock_guard<std::mutex> lock(append_mu_);
  return append_count_;
}

void SqliteDatabase::NotifyAppend() {
  {
    std::lock_guard<std::mutex> lock(append_mu_);
    ++append_count_;
  }
  append_cv_.notify_all();
}

void SqliteDatabase::WaitForAppend(uint64_t seen, absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) return;
  // Bounded, so that the deadline computed inside wait_for cannot overflow.
  timeout = std::min(timeout, absl::Hours(1));
  std::unique_lock<std::mutex> lock(append_mu_);
  append_cv_.wait_for(lock, absl::ToChronoMicroseconds(timeout),
                      [&] { return append_count_ != seen; });
}

}  // namespace eventstore::sqlite
