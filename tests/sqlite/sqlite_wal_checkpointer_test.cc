// SqliteWalCheckpointer (SqliteOptions::background_checkpoint): which
// databases get one, that its thread checkpoints so the writer starts the
// write-ahead log over, that the committing writer checkpoints when the
// thread is held off, that the log stays bounded with and without it, and
// that Scavenge's compaction (a TRUNCATE checkpoint) runs beside it.
//
// The log's size is read from the -wal file: SQLite never shrinks it while
// the database is open (no journal_size_limit), so its size after a write
// is the most the log has held.

#include "backends/sqlite/sqlite_wal_checkpointer.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_database.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "backends/sqlite/sqlite_statement.h"
#include "backends/sqlite/sqlite_stream_lifecycle.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/status_macros.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace eventstore {
namespace {

using ::eventstore::sqlite::SqliteConnection;
using ::eventstore::sqlite::SqliteDatabase;
using ::eventstore::sqlite::SqliteWalCheckpointer;
using ::eventstore::test::TempDir;
using ::eventstore::test::WaitUntil;
using ::testing::Le;

// Rows of the scratch table are this big: 16 of them make a ~1 MiB
// transaction.
constexpr int64_t kRowBytes = 64 * 1024;
constexpr int kRowsPerTransaction = 16;
// A WAL file's header, and each frame's header (before its page).
constexpr int64_t kWalHeaderBytes = 32;
constexpr int64_t kFrameHeaderBytes = 24;
// How long a condition is waited for before the test fails.
constexpr absl::Duration kDeadline = absl::Seconds(60);

class SqliteWalCheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    path_ = dir_->File("events.db");
  }

  // A file store whose commits do not sync: the checkpointer runs.
  SqliteOptions Options() const {
    SqliteOptions options;
    options.path = path_;
    options.synchronous = SqliteOptions::Synchronous::kNormal;
    return options;
  }

  // Opens `options` and creates the scratch table t(b BLOB); reads the
  // page size into page_size_.
  absl::StatusOr<std::unique_ptr<SqliteDatabase>> OpenScratch(
      const SqliteOptions& options) {
    ES_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDatabase> db,
                        SqliteDatabase::Open(options));
    ES_RETURN_IF_ERROR(db->WithWriter([](SqliteConnection& conn) {
      return conn.Exec("CREATE TABLE IF NOT EXISTS t (b BLOB)");
    }));
    ES_ASSIGN_OR_RETURN(
        page_size_,
        db->WithReader([](SqliteConnection& conn) -> absl::StatusOr<int64_t> {
          return conn.QueryInt64("PRAGMA page_size", 0);
        }));
    if (page_size_ <= 0) return absl::InternalError("no page size");
    return db;
  }

  // The size of the -wal file (0 when there is none).
  int64_t WalBytes() const {
    std::error_code error;
    const std::uintmax_t size =
        std::filesystem::file_size(path_ + "-wal", error);
    return error ? 0 : static_cast<int64_t>(size);
  }

  // The size of a -wal file holding `frames` frames.
  int64_t WalBytesFor(int64_t frames) const {
    return kWalHeaderBytes + frames * (page_size_ + kFrameHeaderBytes);
  }

  // The pages of `rows` rows' blobs (their overflow pages).
  int64_t PagesOf(int64_t rows) const { return rows * kRowBytes / page_size_; }

  std::unique_ptr<TempDir> dir_;
  std::string path_;
  int64_t page_size_ = 0;
};

// Inserts `rows` rows of kRowBytes into t in one write transaction.
absl::Status InsertRows(SqliteDatabase& db, int rows) {
  return db.WithWriteTransaction([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(sqlite::ScopedStatement stmt,
                        conn.Cached("INSERT INTO t (b) VALUES (zeroblob(?1))"));
    for (int i = 0; i < rows; ++i) {
      stmt->BindInt64(1, kRowBytes);
      ES_RETURN_IF_ERROR(stmt->Run());
      stmt->Reset();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<int64_t> CountRows(SqliteDatabase& db) {
  return db.WithReader([](SqliteConnection& conn) -> absl::StatusOr<int64_t> {
    return conn.QueryInt64("SELECT count(*) FROM t", -1);
  });
}

TEST_F(SqliteWalCheckpointerTest, FileStoreWithoutSyncedCommitsHasOne) {
  EXPECT_TRUE(SqliteOptions().background_checkpoint);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                       SqliteDatabase::Open(Options()));
  ASSERT_NE(db->checkpointer(), nullptr);
  EXPECT_EQ(db->checkpointer()->thread_checkpoints(), 0);
  EXPECT_EQ(db->checkpointer()->writer_checkpoints(), 0);
  db.reset();
  SqliteOptions off = Options();
  off.synchronous = SqliteOptions::Synchronous::kOff;
  ASSERT_OK_AND_ASSIGN(db, SqliteDatabase::Open(off));
  EXPECT_NE(db->checkpointer(), nullptr);
}

TEST_F(SqliteWalCheckpointerTest, NoCheckpointerWhereCommitsSync) {
  // kFull is the default.
  for (const SqliteOptions::Synchronous level :
       {SqliteOptions().synchronous, SqliteOptions::Synchronous::kFull,
        SqliteOptions::Synchronous::kExtra}) {
    SqliteOptions options = Options();
    options.synchronous = level;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                         SqliteDatabase::Open(options));
    EXPECT_EQ(db->checkpointer(), nullptr);
  }
}

TEST_F(SqliteWalCheckpointerTest, NoCheckpointerForMemoryReadOnlyOrOff) {
  {
    SqliteOptions memory;
    memory.path = ":memory:";
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                         SqliteDatabase::Open(memory));
    EXPECT_EQ(db->checkpointer(), nullptr);
  }
  {
    SqliteOptions off = Options();
    off.background_checkpoint = false;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                         SqliteDatabase::Open(off));
    EXPECT_EQ(db->checkpointer(), nullptr);
  }
  {
    // The store exists now (the open above created it).
    SqliteOptions read_only = Options();
    read_only.read_only = true;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                         SqliteDatabase::Open(read_only));
    EXPECT_EQ(db->checkpointer(), nullptr);
  }
  {
    SqliteOptions rollback_journal = Options();
    rollback_journal.path = dir_->File("journal.db");
    rollback_journal.wal = false;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                         SqliteDatabase::Open(rollback_journal));
    EXPECT_EQ(db->checkpointer(), nullptr);
  }
}

TEST_F(SqliteWalCheckpointerTest, ThreadCheckpointsAndTheWriterStartsOver) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                       OpenScratch(Options()));
  const SqliteWalCheckpointer* checkpointer = db->checkpointer();
  ASSERT_NE(checkpointer, nullptr);
  // Each round is one commit that takes the log past kWakePages (from
  // empty, once the log is started over), so it wakes the thread once;
  // the thread's checkpoint then holds every frame, and the next commit
  // starts the log over: the file does not grow.
  const int rows = static_cast<int>(
      (SqliteWalCheckpointer::kWakePages + 100) * page_size_ / kRowBytes + 1);
  ASSERT_LT(PagesOf(rows) + 200, SqliteWalCheckpointer::kWriterPages);
  int64_t first_round_bytes = 0;
  constexpr int kRounds = 5;
  for (int round = 1; round <= kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ASSERT_OK(InsertRows(*db, rows));
    ASSERT_TRUE(WaitUntil(
        [&] { return checkpointer->thread_checkpoints() >= round; }, kDeadline))
        << "thread checkpoints: " << checkpointer->thread_checkpoints();
    if (round == 1) {
      first_round_bytes = WalBytes();
      EXPECT_GE(first_round_bytes,
                WalBytesFor(SqliteWalCheckpointer::kWakePages));
    } else {
      // Without the thread's checkpoint each round would add ~1,100 frames.
      EXPECT_THAT(WalBytes(), Le(first_round_bytes + WalBytesFor(64)));
    }
  }
  EXPECT_EQ(checkpointer->writer_checkpoints(), 0);
  ASSERT_OK_AND_ASSIGN(int64_t count, CountRows(*db));
  EXPECT_EQ(count, int64_t{kRounds} * rows);
}

TEST_F(SqliteWalCheckpointerTest, ThreadCheckpointsAndTheLogStaysBounded) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                       OpenScratch(Options()));
  const SqliteWalCheckpointer* checkpointer = db->checkpointer();
  ASSERT_NE(checkpointer, nullptr);
  // Three times kWriterPages (~100 MB), written back to back: without any
  // checkpoint the log would hold it all.
  const int64_t transaction_pages = PagesOf(kRowsPerTransaction);
  const int transactions = static_cast<int>(
      3 * SqliteWalCheckpointer::kWriterPages / transaction_pages + 1);
  // With no pause between commits, a checkpoint of the thread's never
  // catches up with the newest commit, so only the writer's own checkpoint
  // at kWriterPages lets the log start over; it waits for one of the
  // thread's under way rather than fail, so the log passes kWriterPages
  // by the commit that reached it at most.
  const int64_t bound =
      WalBytesFor(SqliteWalCheckpointer::kWriterPages + 2 * transaction_pages);
  ASSERT_GT(WalBytesFor(transactions * transaction_pages), bound * 2);
  int64_t most = 0;
  for (int i = 0; i < transactions; ++i) {
    ASSERT_OK(InsertRows(*db, kRowsPerTransaction));
    const int64_t now = WalBytes();
    most = std::max(most, now);
    ASSERT_THAT(now, Le(bound))
        << "after transaction " << i << "; checkpoints: thread "
        << checkpointer->thread_checkpoints() << ", writer "
        << checkpointer->writer_checkpoints();
  }
  ASSERT_TRUE(WaitUntil([&] { return checkpointer->thread_checkpoints() >= 1; },
                        kDeadline));
  ASSERT_OK_AND_ASSIGN(int64_t count, CountRows(*db));
  EXPECT_EQ(count, int64_t{transactions} * kRowsPerTransaction);
  std::cout << "[ wal      ] " << transactions << " transactions; largest log "
            << (most - kWalHeaderBytes) / (page_size_ + kFrameHeaderBytes)
            << " frames; checkpoints: thread "
            << checkpointer->thread_checkpoints() << ", writer "
            << checkpointer->writer_checkpoints() << "\n";
}

TEST_F(SqliteWalCheckpointerTest, WriterCheckpointsWhenTheThreadIsHeldOff) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                       OpenScratch(Options()));
  const SqliteWalCheckpointer* checkpointer = db->checkpointer();
  ASSERT_NE(checkpointer, nullptr);
  const int64_t transaction_pages = PagesOf(kRowsPerTransaction);
  const int transactions = static_cast<int>(
      SqliteWalCheckpointer::kWriterPages * 3 / 2 / transaction_pages + 1);
  const int64_t bound =
      WalBytesFor(SqliteWalCheckpointer::kWriterPages + 2 * transaction_pages);
  {
    // Held before the log reaches kWakePages: no checkpoint of the thread's
    // is under way or counted yet.
    SqliteWalCheckpointer::Paused paused = checkpointer->Pause();
    ASSERT_EQ(checkpointer->thread_checkpoints(), 0);
    for (int i = 0; i < transactions; ++i) {
      ASSERT_OK(InsertRows(*db, kRowsPerTransaction));
      ASSERT_THAT(WalBytes(), Le(bound)) << "after transaction " << i;
    }
    EXPECT_GE(checkpointer->writer_checkpoints(), 1);
    EXPECT_EQ(checkpointer->thread_checkpoints(), 0);
  }
  // Released, the thread runs the checkpoint it was woken for.
  EXPECT_TRUE(WaitUntil([&] { return checkpointer->thread_checkpoints() >= 1; },
                        kDeadline));
  ASSERT_OK_AND_ASSIGN(int64_t count, CountRows(*db));
  EXPECT_EQ(count, int64_t{transactions} * kRowsPerTransaction);
  // Unhooks the writer and joins the thread.
  db.reset();
}

TEST_F(SqliteWalCheckpointerTest, WithoutBackgroundCheckpointTheLogIsBounded) {
  SqliteOptions options = Options();
  options.background_checkpoint = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                       OpenScratch(options));
  ASSERT_EQ(db->checkpointer(), nullptr);
  // ~30 MiB: SQLite's own automatic checkpoint (at 1,000 pages) keeps the
  // log to about 1,000 pages and one transaction.
  const int64_t transaction_pages = PagesOf(kRowsPerTransaction);
  constexpr int kTransactions = 30;
  const int64_t bound = WalBytesFor(2000 + transaction_pages);
  ASSERT_GT(WalBytesFor(kTransactions * transaction_pages), 3 * bound);
  for (int i = 0; i < kTransactions; ++i) {
    ASSERT_OK(InsertRows(*db, kRowsPerTransaction));
    ASSERT_THAT(WalBytes(), Le(bound)) << "after transaction " << i;
  }
  ASSERT_OK_AND_ASSIGN(int64_t count, CountRows(*db));
  EXPECT_EQ(count, int64_t{kTransactions} * kRowsPerTransaction);
}

TEST_F(SqliteWalCheckpointerTest, ConcurrentCompactWhileTheCheckpointerRuns) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqliteDatabase> db,
                       OpenScratch(Options()));
  const SqliteWalCheckpointer* checkpointer = db->checkpointer();
  ASSERT_NE(checkpointer, nullptr);
  // ~6 MiB (more than kWakePages): each compaction's VACUUM commits the
  // whole file into the log, which wakes the thread just before the
  // TRUNCATE checkpoint.
  constexpr int kKeptRows = 96;
  ASSERT_GT(PagesOf(kKeptRows), SqliteWalCheckpointer::kWakePages);
  ASSERT_OK(InsertRows(*db, kKeptRows));

  // Writes 1 MiB transactions, deleting the oldest rows so the table
  // stays at about kKeptRows, until told to stop.
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  // Set by the writer before it returns on an error; read after the join.
  absl::Status write_error;
  std::atomic<bool> write_failed{false};
  std::thread writer([&] {
    while (!stop.load()) {
      absl::Status s = InsertRows(*db, kRowsPerTransaction);
      if (s.ok()) {
        s = db->WithWriter([](SqliteConnection& conn) {
          return conn.Exec(absl::StrCat(
              "DELETE FROM t WHERE rowid <= (SELECT max(rowid) FROM t) - ",
              kKeptRows));
        });
      }
      if (!s.ok()) {
        write_error = s;
        write_failed = true;
        return;
      }
      ++writes;
    }
  });

  sqlite::SqliteStreamLifecycle lifecycle(db.get());
  ScavengeOptions compact;
  compact.compact = true;
  constexpr int kCompactions = 8;
  const int64_t thread_before = checkpointer->thread_checkpoints();
  for (int i = 0; i < kCompactions; ++i) {
    SCOPED_TRACE(absl::StrCat("compaction ", i));
    // Some writes between compactions.
    const int seen = writes.load();
    // Not ASSERT: the writer must be stopped and joined.
    if (!WaitUntil(
            [&] { return writes.load() >= seen + 2 || write_failed.load(); },
            kDeadline)) {
      ADD_FAILURE() << "no writes";
      break;
    }
    if (write_failed.load()) break;
    absl::StatusOr<ScavengeResult> result = lifecycle.Scavenge(compact);
    EXPECT_OK(result.status());
    if (result.ok()) {
      EXPECT_TRUE(result->compacted);
    }
  }
  stop = true;
  writer.join();
  ASSERT_OK(write_error);
  // The thread was at work meanwhile (else the test shows nothing).
  EXPECT_TRUE(WaitUntil(
      [&] { return checkpointer->thread_checkpoints() > thread_before; },
      kDeadline));
  ASSERT_OK_AND_ASSIGN(int64_t count, CountRows(*db));
  EXPECT_EQ(count, kKeptRows);
}

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

// Events of ~32 KiB each.
std::vector<EventData> BigBatch(int n, const std::string& tag) {
  std::vector<EventData> events;
  for (int i = 0; i < n; ++i) {
    events.push_back(
        Placed(absl::StrCat(tag, "-", i, "-", std::string(32 * 1024, 'x'))));
  }
  return events;
}

absl::Status AppendTo(EventStore& store, const std::string& stream,
                      std::vector<EventData> events) {
  AppendRequest request;
  request.stream = stream;
  request.expected = ExpectedVersion::Any();
  request.events = std::move(events);
  return store.Append(request).status();
}

TEST_F(SqliteWalCheckpointerTest, ConcurrentScavengeCompactWhileAppending) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(Options()));
  // ~6 MiB of events before the first compaction (its VACUUM wakes the
  // thread), half of them in a stream deleted for Scavenge to remove.
  for (int i = 0; i < 12; ++i) {
    ASSERT_OK(AppendTo(*store, "kept", BigBatch(8, absl::StrCat("k", i))));
    ASSERT_OK(AppendTo(*store, "doomed", BigBatch(8, absl::StrCat("d", i))));
  }
  ASSERT_OK(
      store->DeleteStream("doomed", ExpectedVersion::Any(), DeleteMode::kHard));

  std::atomic<bool> stop{false};
  std::atomic<int> appends{0};
  // Set by the appender before it returns on an error; read after the join.
  absl::Status append_error;
  std::atomic<bool> append_failed{false};
  std::thread appender([&] {
    while (!stop.load() && appends.load() < 200) {
      absl::Status s = AppendTo(*store, "live",
                                BigBatch(8, absl::StrCat("l", appends.load())));
      if (!s.ok()) {
        append_error = s;
        append_failed = true;
        return;
      }
      ++appends;
    }
  });
  ScavengeOptions options;
  options.compact = true;
  constexpr int kCompactions = 6;
  for (int i = 0; i < kCompactions; ++i) {
    SCOPED_TRACE(absl::StrCat("compaction ", i));
    const int seen = appends.load();
    // Not ASSERT: the appender must be stopped and joined.
    if (!WaitUntil(
            [&] {
              return appends.load() >= std::min(seen + 2, 200) ||
                     append_failed.load();
            },
            kDeadline)) {
      ADD_FAILURE() << "no appends";
      break;
    }
    if (append_failed.load()) break;
    absl::StatusOr<ScavengeResult> result = store->Scavenge(options);
    EXPECT_OK(result.status());
    if (result.ok()) {
      EXPECT_TRUE(result->compacted);
      if (i == 0) {
        EXPECT_EQ(result->events_removed, 12 * 8);
      }
    }
  }
  stop = true;
  appender.join();
  ASSERT_OK(append_error);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> live,
                       store->ReadStream("live"));
  EXPECT_EQ(static_cast<int64_t>(live.size()), int64_t{appends.load()} * 8);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> kept,
                       store->ReadStream("kept"));
  EXPECT_EQ(kept.size(), 12u * 8);
}

}  // namespace
}  // namespace eventstore
