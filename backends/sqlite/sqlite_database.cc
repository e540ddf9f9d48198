#include "backends/sqlite/sqlite_database.h"

#include <algorithm>
#include <chrono>
#include <fstream>
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

namespace {

absl::Status ValidateOptions(const SqliteOptions& options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError(
        "path: empty; give a file name or \":memory:\"");
  }
  if (options.path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("path: holds a NUL byte");
  }
  if (options.max_readers < 1 ||
      options.max_readers > SqliteOptions::kMaxReaders) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_readers: ", options.max_readers, " is not from 1 to ",
                     SqliteOptions::kMaxReaders));
  }
  if (options.busy_timeout < absl::ZeroDuration() ||
      options.busy_timeout >
          absl::Milliseconds(SqliteOptions::kMaxBusyTimeoutMs)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "busy_timeout: ", absl::FormatDuration(options.busy_timeout),
        " is not from 0 to ", SqliteOptions::kMaxBusyTimeoutMs, " ms"));
  }
  if (options.cache_size_mb < 1 ||
      options.cache_size_mb > SqliteOptions::kMaxCacheSizeMb) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache_size_mb: ", options.cache_size_mb,
                     " is not from 1 to ", SqliteOptions::kMaxCacheSizeMb));
  }
  if (options.mmap_size_mb < 0 ||
      options.mmap_size_mb > SqliteOptions::kMaxMmapSizeMb) {
    return absl::InvalidArgumentError(
        absl::StrCat("mmap_size_mb: ", options.mmap_size_mb,
                     " is not from 0 to ", SqliteOptions::kMaxMmapSizeMb));
  }
  if (options.read_only && options.path == ":memory:") {
    return absl::InvalidArgumentError(
        "read_only: a private in-memory database cannot be opened read-only");
  }
  return absl::OkStatus();
}

// Sets the page cache and the memory map of `conn` (each connection has
// its own): run on the writer and on every reader when it is opened.
absl::Status ApplyCacheOptions(SqliteConnection& conn,
                               const SqliteOptions& options) {
  // A negative cache_size is in KiB rather than pages.
  return conn.Exec(absl::StrCat(
      "PRAGMA cache_size = ", -int64_t{options.cache_size_mb} * 1024,
      "; PRAGMA mmap_size = ", int64_t{options.mmap_size_mb} * 1024 * 1024));
}

// Opens `path` in `mode`. A file that does not exist, when `mode` may not
// create it, is kNotFound (SQLite says "unable to open database file",
// which would read as kUnavailable: "retry").
absl::StatusOr<std::unique_ptr<SqliteConnection>> OpenExisting(
    const SqliteOptions& options, SqliteConnection::Mode mode) {
  absl::StatusOr<std::unique_ptr<SqliteConnection>> conn =
      SqliteConnection::Open(options.path, mode, options.busy_timeout);
  if (!conn.ok() && mode != SqliteConnection::Mode::kReadWriteCreate &&
      options.path != ":memory:" && !std::ifstream(options.path)) {
    return absl::NotFoundError(
        absl::StrCat("sqlite: '", options.path,
                     "' does not exist, and this open may not create it"));
  }
  return conn;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(
    const SqliteOptions& options) {
  ES_RETURN_IF_ERROR(ValidateOptions(options));
  const SqliteConnection::Mode mode =
      options.read_only           ? SqliteConnection::Mode::kReadOnly
      : options.create_if_missing ? SqliteConnection::Mode::kReadWriteCreate
                                  : SqliteConnection::Mode::kReadWrite;
  ES_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> writer,
                      OpenExisting(options, mode));
  SchemaPolicy policy;
  policy.create = !options.read_only;
  policy.upgrade = !options.read_only && options.upgrade_schema;
  ES_RETURN_IF_ERROR(EnsureSchema(*writer, options.path, policy).status());
  // After EnsureSchema: the pragmas read the file's header, and a file that
  // is not a store must be refused by EnsureSchema's own message.
  ES_RETURN_IF_ERROR(ApplyCacheOptions(*writer, options));
  if (options.read_only) {
    // The journal mode is the file's, and synchronous matters only to
    // writes: nothing to set.
    return std::unique_ptr<SqliteDatabase>(
        new SqliteDatabase(options, std::move(writer), nullptr));
  }
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
  const std::string synchronous = absl::StrCat(
      "PRAGMA synchronous = ", SynchronousName(options.synchronous));
  ES_RETURN_IF_ERROR(writer->Exec(synchronous));
  std::unique_ptr<SqliteConnection> checkpoint_connection;
  // Only where commits do not sync: with kFull and kExtra each commit syncs
  // the log anyway, and a checkpoint writing the database file beside them
  // made those syncs slower than the checkpoints they replaced (W1 at 0.5
  // of raw SQLite instead of 1.0: docs/sqlite.md, "Checkpoints").
  const bool commits_sync =
      options.synchronous == SqliteOptions::Synchronous::kFull ||
      options.synchronous == SqliteOptions::Synchronous::kExtra;
  if (options.background_checkpoint && !commits_sync && options.wal &&
      options.path != ":memory:") {
    ES_ASSIGN_OR_RETURN(
        checkpoint_connection,
        SqliteConnection::Open(options.path, SqliteConnection::Mode::kReadWrite,
                               options.busy_timeout));
    // A checkpoint syncs as its own connection's level says.
    ES_RETURN_IF_ERROR(checkpoint_connection->Exec(synchronous));
    // A connection that never read the database has not opened its WAL,
    // and a checkpoint on it does nothing: read the header once.
    ES_RETURN_IF_ERROR(
        checkpoint_connection->QueryInt64("PRAGMA schema_version", -1)
            .status());
  }
  return std::unique_ptr<SqliteDatabase>(new SqliteDatabase(
      options, std::move(writer), std::move(checkpoint_connection)));
}

absl::StatusOr<SchemaUpgrade> SqliteDatabase::UpgradeSchema(
    const SqliteOptions& options) {
  ES_RETURN_IF_ERROR(ValidateOptions(options));
  absl::StatusOr<std::unique_ptr<SqliteConnection>> conn =
      OpenExisting(options, SqliteConnection::Mode::kReadWrite);
  if (!conn.ok()) return conn.status();
  SchemaPolicy policy;
  policy.create = false;
  policy.upgrade = true;
  ES_ASSIGN_OR_RETURN(int64_t from, EnsureSchema(**conn, options.path, policy));
  SchemaUpgrade upgrade;
  upgrade.from_version = static_cast<int>(from);
  upgrade.to_version = SqliteEventStore::kSchemaVersion;
  return upgrade;
}

SqliteDatabase::SqliteDatabase(
    SqliteOptions options, std::unique_ptr<SqliteConnection> writer,
    std::unique_ptr<SqliteConnection> checkpoint_connection)
    : options_(std::move(options)),
      memory_(options_.path == ":memory:"),
      writer_(std::move(writer)),
      checkpointer_(checkpoint_connection == nullptr
                        ? nullptr
                        : SqliteWalCheckpointer::Start(
                              std::move(checkpoint_connection), *writer_)) {}

absl::StatusOr<SqliteDatabase::WriterLock> SqliteDatabase::LockWriter() {
  if (options_.read_only) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sqlite: '", options_.path,
        "' was opened read-only: it takes no writes (open it without "
        "read_only to write)"));
  }
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
  ES_ASSIGN_OR_RETURN(
      std::unique_ptr<SqliteConnection> conn,
      SqliteConnection::Open(options_.path,
                             options_.read_only
                                 ? SqliteConnection::Mode::kReadOnly
                                 : SqliteConnection::Mode::kReadWrite,
                             options_.busy_timeout));
  ES_RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 1"));
  ES_RETURN_IF_ERROR(ApplyCacheOptions(*conn, options_));
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
