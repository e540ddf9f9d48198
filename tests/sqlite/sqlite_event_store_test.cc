// What is specific to the SQLite backend: the pragmas it sets, locking
// between connections, files that persist or are refused. The EventStore
// contract itself is tested by tests/conformance.
//
// The tests look at the database through their own sqlite3 connections
// (RawDb), the way another process or a tool would.

#include "backends/sqlite/sqlite_event_store.h"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace eventstore {
namespace {

using ::eventstore::test::FileExists;
using ::eventstore::test::ReadFileBytes;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TempDir;
using ::eventstore::test::WriteFileBytes;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using Synchronous = SqliteOptions::Synchronous;

// --- a raw sqlite3 connection ------------------------------------------------

class RawDb {
 public:
  // Opens `path` read-write; never creates it.
  static absl::StatusOr<std::unique_ptr<RawDb>> Open(const std::string& path,
                                                     bool create = false) {
    sqlite3* db = nullptr;
    const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      const std::string message = db != nullptr ? sqlite3_errmsg(db) : "";
      sqlite3_close(db);
      return absl::InternalError(
          absl::StrCat("sqlite3_open_v2(", path, "): ", message));
    }
    return std::unique_ptr<RawDb>(new RawDb(db));
  }

  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  absl::Status Exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    if (rc == SQLITE_OK) return absl::OkStatus();
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    return absl::InternalError(
        absl::StrCat(sql, ": ", message, " (", sqlite3_errstr(rc), ")"));
  }

  // The first column of the first row, as text; an error when there is no
  // row.
  absl::StatusOr<std::string> QueryText(const std::string& sql,
                                        const std::string& bind = "",
                                        int column = 0) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      return absl::InternalError(absl::StrCat(sql, ": ", sqlite3_errmsg(db_)));
    }
    if (!bind.empty()) {
      sqlite3_bind_text(stmt, 1, bind.data(), static_cast<int>(bind.size()),
                        SQLITE_TRANSIENT);
    }
    rc = sqlite3_step(stmt);
    absl::StatusOr<std::string> result;
    if (rc == SQLITE_ROW) {
      const void* data = sqlite3_column_blob(stmt, column);
      const int size = sqlite3_column_bytes(stmt, column);
      result = std::string(static_cast<const char*>(data),
                           static_cast<size_t>(size));
    } else if (rc == SQLITE_DONE) {
      result = absl::NotFoundError(absl::StrCat(sql, ": no row"));
    } else {
      result =
          absl::InternalError(absl::StrCat(sql, ": ", sqlite3_errmsg(db_)));
    }
    sqlite3_finalize(stmt);
    return result;
  }

  absl::StatusOr<int64_t> QueryInt(const std::string& sql,
                                   const std::string& bind = "",
                                   int column = 0) {
    absl::StatusOr<std::string> text = QueryText(sql, bind, column);
    if (!text.ok()) return text.status();
    return std::stoll(*text);
  }

  sqlite3* get() { return db_; }

 private:
  explicit RawDb(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// --- events ------------------------------------------------------------------

EventData Placed(const std::string& order_id, v1::EventMetadata metadata = {}) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  placed.mutable_total()->set_currency("EUR");
  placed.mutable_total()->set_units(4200);
  placed.mutable_placed_at()->set_seconds(1700000000);
  return EventData::From(placed, std::move(metadata));
}

EventData Shipped(const std::string& order_id) {
  test::v1::OrderShipped shipped;
  shipped.set_order_id(order_id);
  shipped.set_carrier("post");
  return EventData::From(shipped);
}

// --- the fixture -------------------------------------------------------------

class SqliteEventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TempDir>> dir = TempDir::Create();
    ASSERT_OK(dir);
    dir_ = *std::move(dir);
    path_ = dir_->File("events.db");
  }

  SqliteOptions Options() const {
    SqliteOptions options;
    options.path = path_;
    options.synchronous = Synchronous::kNormal;
    return options;
  }

  absl::StatusOr<std::unique_ptr<EventStore>> OpenStore() {
    return SqliteEventStore::Open(Options());
  }

  std::unique_ptr<TempDir> dir_;
  std::string path_;
};

absl::StatusOr<std::vector<RecordedEvent>> ReadWholeLog(EventStore& store) {
  std::vector<RecordedEvent> out;
  ReadAllOptions options;
  options.max_count = 1000;
  while (true) {
    absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
    if (!page.ok()) return page.status();
    for (RecordedEvent& e : page->events) out.push_back(std::move(e));
    if (page->end_of_log) return out;
    options.from_position = page->next_position;
  }
}

// --- pragmas -----------------------------------------------------------------

TEST_F(SqliteEventStoreTest, WalModeIsSetOnTheFile) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenStore());
  ASSERT_OK(store->Append("s", ExpectedVersion::Any(), {Placed("o-1")}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> raw, RawDb::Open(path_));
  ASSERT_OK_AND_ASSIGN(std::string mode, raw->QueryText("PRAGMA journal_mode"));
  EXPECT_EQ(mode, "wal");
}

TEST_F(SqliteEventStoreTest, WalOffUsesTheRollbackJournal) {
  SqliteOptions options = Options();
  options.wal = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(options));
  ASSERT_OK(store->Append("s", ExpectedVersion::Any(), {Placed("o-1")}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> raw, RawDb::Open(path_));
  ASSERT_OK_AND_ASSIGN(std::string mode, raw->QueryText("PRAGMA journal_mode"));
  EXPECT_EQ(mode, "delete");
  EXPECT_FALSE(FileExists(path_ + "-wal"));
}

// Records every sqlite3 connection the process opens (sqlite3_auto_extension)
// and forgets it when it closes (SQLITE_TRACE_CLOSE), so a test can look at
// the store's own connections.
class ConnectionSpy {
 public:
  ConnectionSpy() {
    Instance() = this;
    sqlite3_auto_extension(reinterpret_cast<void (*)(void)>(&OnOpen));
  }
  ~ConnectionSpy() {
    sqlite3_cancel_auto_extension(reinterpret_cast<void (*)(void)>(&OnOpen));
    Instance() = nullptr;
  }

  // The open connections that have written rows.
  std::vector<sqlite3*> Writers() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<sqlite3*> writers;
    for (sqlite3* db : open_) {
      if (sqlite3_total_changes(db) > 0) writers.push_back(db);
    }
    return writers;
  }

 private:
  static ConnectionSpy*& Instance() {
    static ConnectionSpy* instance = nullptr;
    return instance;
  }
  static int OnOpen(sqlite3* db, const char** /*error*/,
                    const sqlite3_api_routines* /*api*/) {
    ConnectionSpy* spy = Instance();
    if (spy == nullptr) return SQLITE_OK;
    {
      std::lock_guard<std::mutex> lock(spy->mu_);
      spy->open_.insert(db);
    }
    sqlite3_trace_v2(db, SQLITE_TRACE_CLOSE, &OnTrace, spy);
    return SQLITE_OK;
  }
  static int OnTrace(unsigned type, void* context, void* p, void* /*x*/) {
    if (type == SQLITE_TRACE_CLOSE) {
      auto* spy = static_cast<ConnectionSpy*>(context);
      std::lock_guard<std::mutex> lock(spy->mu_);
      spy->open_.erase(static_cast<sqlite3*>(p));
    }
    return 0;
  }

  std::mutex mu_;
  std::set<sqlite3*> open_;
};

TEST_F(SqliteEventStoreTest, SynchronousOptionReachesTheWriter) {
  const std::pair<Synchronous, int64_t> cases[] = {
      {Synchronous::kOff, 0},
      {Synchronous::kNormal, 1},
      {Synchronous::kFull, 2},
      {Synchronous::kExtra, 3},
  };
  for (const auto& [synchronous, pragma_value] : cases) {
    SCOPED_TRACE(pragma_value);
    ConnectionSpy spy;
    SqliteOptions options = Options();
    options.path = dir_->File(absl::StrCat("sync-", pragma_value, ".db"));
    options.synchronous = synchronous;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         SqliteEventStore::Open(options));
    ASSERT_OK(store->Append("s", ExpectedVersion::Any(), {Placed("o-1")}));
    const std::vector<sqlite3*> writers = spy.Writers();
    ASSERT_THAT(writers, ::testing::Not(IsEmpty()));
    for (sqlite3* db : writers) {
      sqlite3_stmt* stmt = nullptr;
      ASSERT_EQ(
          sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &stmt, nullptr),
          SQLITE_OK);
      ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
      EXPECT_EQ(sqlite3_column_int64(stmt, 0), pragma_value);
      sqlite3_finalize(stmt);
    }
  }
}

// --- locking between connections ---------------------------------------------

TEST_F(SqliteEventStoreTest, BusyTimeoutThenUnavailable) {
  SqliteOptions options = Options();
  options.busy_timeout = absl::Milliseconds(200);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(options));
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Placed("o-1")}));

  // Another "process" holds the write lock.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> other, RawDb::Open(path_));
  ASSERT_OK(other->Exec("BEGIN IMMEDIATE"));

  const std::vector<EventData> batch = {Placed("o-2")};
  const absl::Time start = absl::Now();
  absl::StatusOr<AppendResult> blocked =
      store->Append("s", ExpectedVersion::Exactly(1), batch);
  const absl::Duration waited = absl::Now() - start;
  EXPECT_THAT(blocked, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_GE(waited, absl::Milliseconds(150)) << "did not wait busy_timeout";
  EXPECT_LE(waited, absl::Seconds(3));
  // Reads still work, and nothing was written.
  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("s"));
  EXPECT_EQ(version, 1);

  ASSERT_OK(other->Exec("COMMIT"));
  // The failed append is retried as it was, and now succeeds.
  ASSERT_OK_AND_ASSIGN(AppendResult r,
                       store->Append("s", ExpectedVersion::Exactly(1), batch));
  EXPECT_EQ(r.next_expected_version, 2);
  ASSERT_OK_AND_ASSIGN(version, store->StreamVersion("s"));
  EXPECT_EQ(version, 2);
}

TEST_F(SqliteEventStoreTest, ConcurrentAppendWaitsForAnotherConnectionsLock) {
  SqliteOptions options = Options();
  options.busy_timeout = absl::Seconds(10);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(options));
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Placed("o-1")}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> other, RawDb::Open(path_));
  ASSERT_OK(other->Exec("BEGIN IMMEDIATE"));

  absl::StatusOr<AppendResult> result = absl::UnknownError("not run");
  absl::Time finished_at;
  std::atomic<bool> started{false};
  std::thread appender([&] {
    started.store(true);
    result = store->Append("s", ExpectedVersion::Exactly(1), {Placed("o-2")});
    finished_at = absl::Now();
  });
  while (!started.load()) std::this_thread::yield();
  // While the other connection holds the lock the append cannot finish,
  // however long the appender takes to get to it (under load too).
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time committed_at = absl::Now();
  ASSERT_OK(other->Exec("COMMIT"));
  appender.join();
  ASSERT_OK(result);
  EXPECT_EQ(result->next_expected_version, 2);
  EXPECT_GE(finished_at, committed_at) << "appended through a held lock";
}

// Two stores on one file behave like two processes: their writers contend
// through SQLite's lock and busy_timeout, never with an error.
TEST_F(SqliteEventStoreTest, ConcurrentStoresOnOneFile) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> a, OpenStore());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> b, OpenStore());
  constexpr int kThreads = 4;
  constexpr int kWinsEach = 10;
  std::vector<std::vector<std::string>> errors(kThreads);
  std::vector<int> wins(kThreads, 0);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      EventStore& store = t % 2 == 0 ? *a : *b;
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int attempt = 0; wins[t] < kWinsEach && attempt < 5000; ++attempt) {
        absl::StatusOr<int64_t> version = store.StreamVersion("shared");
        if (!version.ok()) {
          errors[t].push_back(version.status().ToString());
          return;
        }
        absl::StatusOr<AppendResult> r =
            store.Append("shared", ExpectedVersion::Exactly(*version),
                         {Placed(absl::StrCat(t, "-", attempt))});
        if (r.ok()) {
          ++wins[t];
        } else if (!IsWrongExpectedVersion(r.status())) {
          errors[t].push_back(r.status().ToString());
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_THAT(errors[t], IsEmpty()) << "thread " << t;
    EXPECT_EQ(wins[t], kWinsEach) << "thread " << t;
  }
  for (EventStore* store : {a.get(), b.get()}) {
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                         store->ReadStream("shared"));
    ASSERT_THAT(events, SizeIs(kThreads * kWinsEach));
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].version, static_cast<int64_t>(i + 1));
    }
  }
}

// Several processes opening the same new file at once: one creates the
// schema, and every one of them opens it.
TEST_F(SqliteEventStoreTest, ConcurrentOpensOfOneNewFile) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 5;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    SqliteOptions options = Options();
    options.path = dir_->File(absl::StrCat("new-", round, ".db"));
    std::vector<absl::StatusOr<std::unique_ptr<EventStore>>> stores(kThreads);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        stores[t] = SqliteEventStore::Open(options);
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_OK(stores[t]) << "thread " << t;
    }
    ASSERT_OK((*stores[0])
                  ->Append("s", ExpectedVersion::NoStream(), {Placed("o-1")}));
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_OK_AND_ASSIGN(int64_t version, (*stores[t])->StreamVersion("s"));
      EXPECT_EQ(version, 1) << "store " << t;
    }
  }
}

// --- persistence -------------------------------------------------------------

TEST_F(SqliteEventStoreTest, ReopenKeepsEverything) {
  v1::EventMetadata metadata;
  metadata.set_correlation_id("corr");
  metadata.set_causation_id("cause");
  metadata.set_tenant_id("tenant");
  metadata.set_actor("actor");
  (*metadata.mutable_properties())["k"] = "v";
  const std::vector<EventData> first = {Placed("a", metadata), Shipped("a")};
  std::vector<RecordedEvent> before;
  AppendResult first_result;
  Position head_before;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenStore());
    ASSERT_OK_AND_ASSIGN(
        first_result,
        store->Append("order-a", ExpectedVersion::NoStream(), first));
    ASSERT_OK(
        store->Append("order-b", ExpectedVersion::NoStream(), {Placed("b")}));
    ASSERT_OK(
        store->Append("order-a", ExpectedVersion::Exactly(2), {Shipped("a2")}));
    ASSERT_OK_AND_ASSIGN(before, ReadWholeLog(*store));
    ASSERT_OK_AND_ASSIGN(head_before, store->HeadPosition());
  }
  ASSERT_THAT(before, SizeIs(4));

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenStore());
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> after, ReadWholeLog(*store));
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(after[i].id, before[i].id);
    EXPECT_EQ(after[i].type, before[i].type);
    EXPECT_EQ(after[i].payload, before[i].payload);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        after[i].metadata, before[i].metadata));
    EXPECT_EQ(after[i].stream, before[i].stream);
    EXPECT_EQ(after[i].version, before[i].version);
    EXPECT_EQ(after[i].position, before[i].position);
    EXPECT_EQ(after[i].recorded_at, before[i].recorded_at);
  }
  EXPECT_EQ(after[0].metadata.properties().at("k"), "v");
  ASSERT_OK_AND_ASSIGN(Position head, store->HeadPosition());
  EXPECT_EQ(head, head_before);
  ASSERT_OK_AND_ASSIGN(int64_t version_a, store->StreamVersion("order-a"));
  EXPECT_EQ(version_a, 3);
  ASSERT_OK_AND_ASSIGN(int64_t version_b, store->StreamVersion("order-b"));
  EXPECT_EQ(version_b, 1);
  ASSERT_OK_AND_ASSIGN(bool exists, store->EventExists(first[1].id));
  EXPECT_TRUE(exists);

  // Versions, ids and positions carry on from where they were.
  EXPECT_TRUE(IsWrongExpectedVersion(
      store->Append("order-b", ExpectedVersion::NoStream(), {Placed("x")})
          .status()));
  ASSERT_OK_AND_ASSIGN(
      AppendResult retried,
      store->Append("order-a", ExpectedVersion::NoStream(), first));
  EXPECT_EQ(retried, first_result);
  ASSERT_OK_AND_ASSIGN(
      AppendResult next,
      store->Append("order-a", ExpectedVersion::Exactly(3), {Placed("c")}));
  EXPECT_EQ(next.next_expected_version, 4);
  EXPECT_GT(next.first_position, head_before);
}

TEST_F(SqliteEventStoreTest, MemoryStoreIsEmptyAfterReopen) {
  SqliteOptions options;
  options.path = ":memory:";
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         SqliteEventStore::Open(options));
    ASSERT_OK(store->Append("s", ExpectedVersion::Any(), {Placed("o-1")}));
    ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("s"));
    ASSERT_EQ(version, 1);
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(options));
  ASSERT_OK_AND_ASSIGN(Position head, store->HeadPosition());
  EXPECT_TRUE(head.IsStart());
  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("s"));
  EXPECT_EQ(version, 0);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> all, ReadWholeLog(*store));
  EXPECT_THAT(all, IsEmpty());
  EXPECT_FALSE(FileExists(":memory:"));
}

TEST_F(SqliteEventStoreTest, MemoryStoresArePrivate) {
  SqliteOptions options;
  options.path = ":memory:";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> a,
                       SqliteEventStore::Open(options));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> b,
                       SqliteEventStore::Open(options));
  ASSERT_OK(a->Append("s", ExpectedVersion::NoStream(), {Placed("o-1")}));
  ASSERT_OK_AND_ASSIGN(int64_t version_b, b->StreamVersion("s"));
  EXPECT_EQ(version_b, 0);
  ASSERT_OK(b->Append("s", ExpectedVersion::NoStream(), {Placed("o-2")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read_a, a->ReadStream("s"));
  EXPECT_THAT(read_a, SizeIs(1));
}

TEST_F(SqliteEventStoreTest, MissingFileWithoutCreateIfMissingFails) {
  SqliteOptions options = Options();
  options.create_if_missing = false;
  EXPECT_FALSE(SqliteEventStore::Open(options).ok());
  EXPECT_FALSE(FileExists(path_));
}

TEST_F(SqliteEventStoreTest, ExistingFileWithoutCreateIfMissingOpens) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenStore());
    ASSERT_OK(store->Append("s", ExpectedVersion::Any(), {Placed("o-1")}));
  }
  SqliteOptions options = Options();
  options.create_if_missing = false;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(options));
  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("s"));
  EXPECT_EQ(version, 1);
}

TEST_F(SqliteEventStoreTest, MissingDirectoryFails) {
  SqliteOptions options = Options();
  options.path = dir_->File("no/such/dir/events.db");
  EXPECT_FALSE(SqliteEventStore::Open(options).ok());
}

// --- files that are not ours -------------------------------------------------

TEST_F(SqliteEventStoreTest, ForeignSqliteDatabaseIsRefusedUntouched) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> raw,
                         RawDb::Open(path_, /*create=*/true));
    ASSERT_OK(
        raw->Exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                  "INSERT INTO customers (name) VALUES ('Ada'), ('Grace');"));
  }
  const std::string bytes = ReadFileBytes(path_);
  ASSERT_FALSE(bytes.empty());

  EXPECT_THAT(OpenStore(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
  EXPECT_FALSE(FileExists(path_ + "-wal"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> raw, RawDb::Open(path_));
  ASSERT_OK_AND_ASSIGN(std::string mode, raw->QueryText("PRAGMA journal_mode"));
  EXPECT_EQ(mode, "delete");
  ASSERT_OK_AND_ASSIGN(int64_t rows,
                       raw->QueryInt("SELECT count(*) FROM customers"));
  EXPECT_EQ(rows, 2);
}

TEST_F(SqliteEventStoreTest, ForeignSqliteDatabaseInWalModeIsRefusedUntouched) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> raw,
                         RawDb::Open(path_, /*create=*/true));
    ASSERT_OK(
        raw->Exec("PRAGMA journal_mode = WAL;"
                  "CREATE TABLE events (id INTEGER PRIMARY KEY, x TEXT);"
                  "INSERT INTO events (x) VALUES ('theirs');"));
  }
  const std::string bytes = ReadFileBytes(path_);
  EXPECT_THAT(OpenStore(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
}

TEST_F(SqliteEventStoreTest, NonSqliteFileIsRefusedUntouched) {
  std::string text;
  for (int i = 0; i < 200; ++i) {
    absl::StrAppend(&text, "line ", i, ": this is not a database\n");
  }
  WriteFileBytes(path_, text);
  ASSERT_EQ(ReadFileBytes(path_), text);
  EXPECT_THAT(OpenStore(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_TRUE(ReadFileBytes(path_) == text) << "the file was modified";
  EXPECT_FALSE(FileExists(path_ + "-wal"));
  EXPECT_FALSE(FileExists(path_ + "-journal"));
}

TEST_F(SqliteEventStoreTest, NewerSchemaIsRefusedUntouched) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenStore());
    ASSERT_OK(store->Append("s", ExpectedVersion::Any(), {Placed("o-1")}));
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> raw, RawDb::Open(path_));
    ASSERT_OK_AND_ASSIGN(
        int64_t version,
        raw->QueryInt("SELECT version FROM eventstore_schema"));
    ASSERT_EQ(version, SqliteEventStore::kSchemaVersion);
    ASSERT_OK(raw->Exec(absl::StrCat("UPDATE eventstore_schema SET version = ",
                                     SqliteEventStore::kSchemaVersion + 1)));
  }
  const std::string bytes = ReadFileBytes(path_);
  EXPECT_THAT(
      OpenStore(),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               HasSubstr(absl::StrCat(SqliteEventStore::kSchemaVersion + 1))));
  EXPECT_TRUE(ReadFileBytes(path_) == bytes) << "the file was modified";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> raw, RawDb::Open(path_));
  ASSERT_OK_AND_ASSIGN(int64_t version,
                       raw->QueryInt("SELECT version FROM eventstore_schema"));
  EXPECT_EQ(version, SqliteEventStore::kSchemaVersion + 1);
  ASSERT_OK_AND_ASSIGN(int64_t events,
                       raw->QueryInt("SELECT count(*) FROM events"));
  EXPECT_EQ(events, 1);
}

// --- type descriptors --------------------------------------------------------

TEST_F(SqliteEventStoreTest, DescriptorOfAppendedTypeIsRecorded) {
  const EventData placed = Placed("o-77");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenStore());
    ASSERT_OK(store->Append("order-77", ExpectedVersion::NoStream(),
                            {placed, Shipped("o-77")}));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> raw, RawDb::Open(path_));
  for (const char* type :
       {"eventstore.test.v1.OrderPlaced", "eventstore.test.v1.OrderShipped"}) {
    SCOPED_TRACE(type);
    ASSERT_OK_AND_ASSIGN(
        std::string blob,
        raw->QueryText("SELECT descriptor FROM event_types WHERE type = ?",
                       type));
    google::protobuf::FileDescriptorSet set;
    ASSERT_TRUE(set.ParseFromString(blob));
    // Dependencies first: each file builds from those before it.
    google::protobuf::DescriptorPool pool;
    std::vector<std::string> files;
    for (const google::protobuf::FileDescriptorProto& file : set.file()) {
      files.push_back(file.name());
      ASSERT_NE(pool.BuildFile(file), nullptr) << file.name();
    }
    EXPECT_THAT(files,
                ::testing::IsSupersetOf({"eventstore/test/v1/common.proto",
                                         "google/protobuf/timestamp.proto",
                                         "eventstore/test/v1/events.proto"}));
    const google::protobuf::Descriptor* descriptor =
        pool.FindMessageTypeByName(type);
    EXPECT_NE(descriptor, nullptr);
  }

  // A tool decodes the stored payload with the recorded descriptor alone.
  ASSERT_OK_AND_ASSIGN(
      std::string blob,
      raw->QueryText("SELECT descriptor FROM event_types WHERE type = ?",
                     "eventstore.test.v1.OrderPlaced"));
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(blob));
  google::protobuf::DescriptorPool pool;
  for (const google::protobuf::FileDescriptorProto& file : set.file()) {
    ASSERT_NE(pool.BuildFile(file), nullptr);
  }
  const google::protobuf::Descriptor* descriptor =
      pool.FindMessageTypeByName("eventstore.test.v1.OrderPlaced");
  ASSERT_NE(descriptor, nullptr);
  ASSERT_NE(descriptor->FindFieldByName("total"), nullptr);
  EXPECT_EQ(descriptor->FindFieldByName("total")->message_type()->full_name(),
            "eventstore.test.v1.Money");
  EXPECT_EQ(
      descriptor->FindFieldByName("placed_at")->message_type()->full_name(),
      "google.protobuf.Timestamp");
  google::protobuf::DynamicMessageFactory factory(&pool);
  std::unique_ptr<google::protobuf::Message> message(
      factory.GetPrototype(descriptor)->New());
  ASSERT_OK_AND_ASSIGN(
      std::string payload,
      raw->QueryText("SELECT payload FROM events WHERE stream = ? "
                     "AND version = 1",
                     "order-77"));
  ASSERT_TRUE(message->ParseFromString(payload));
  EXPECT_EQ(message->GetReflection()->GetString(
                *message, descriptor->FindFieldByName("order_id")),
            "o-77");
}

TEST_F(SqliteEventStoreTest, DescriptorIsRecordedOncePerType) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenStore());
  ASSERT_OK(store->Append("a", ExpectedVersion::Any(), {Placed("1")}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawDb> raw, RawDb::Open(path_));
  ASSERT_OK_AND_ASSIGN(
      std::string first_recorded_at,
      raw->QueryText("SELECT recorded_at FROM event_types WHERE type = ?",
                     "eventstore.test.v1.OrderPlaced"));
  absl::SleepFor(absl::Milliseconds(5));
  ASSERT_OK(
      store->Append("b", ExpectedVersion::Any(), {Placed("2"), Placed("3")}));
  ASSERT_OK(store->Append("a", ExpectedVersion::Any(), {Placed("4")}));
  ASSERT_OK_AND_ASSIGN(
      int64_t rows,
      raw->QueryInt("SELECT count(*) FROM event_types WHERE type = ?",
                    "eventstore.test.v1.OrderPlaced"));
  EXPECT_EQ(rows, 1);
  ASSERT_OK_AND_ASSIGN(
      std::string recorded_at,
      raw->QueryText("SELECT recorded_at FROM event_types WHERE type = ?",
                     "eventstore.test.v1.OrderPlaced"));
  EXPECT_EQ(recorded_at, first_recorded_at);
}

}  // namespace
}  // namespace eventstore
