// SqliteOptions::cache_size_mb and mmap_size_mb: parsing from the URL,
// validation by Open, and that the writer and every reader connection run
// with them (issue 13).

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_database.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace eventstore {
namespace {

using ::eventstore::test::StatusIs;
using ::eventstore::test::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int64_t kMiB = 1024 * 1024;

// The value of `pragma` (e.g. "PRAGMA cache_size") on the store's writer
// connection, read through a SqlTransaction.
absl::StatusOr<int64_t> WriterPragma(EventStore& store,
                                     const std::string& pragma) {
  absl::StatusOr<std::unique_ptr<SqlTransaction>> txn =
      store.BeginTransaction();
  if (!txn.ok()) return txn.status();
  absl::StatusOr<SqlRows> rows = (*txn)->Query(pragma);
  if (!rows.ok()) return rows.status();
  if (rows->size() != 1 || rows->front().empty() ||
      !rows->front().front().has_value()) {
    return absl::InternalError(absl::StrCat(pragma, ": not one value"));
  }
  int64_t value;
  if (!absl::SimpleAtoi(*rows->front().front(), &value)) {
    return absl::InternalError(absl::StrCat(pragma, ": not a number"));
  }
  ES_RETURN_IF_ERROR((*txn)->Commit());
  return value;
}

void ExpectWriterPragma(EventStore& store, const std::string& pragma,
                        int64_t want) {
  SCOPED_TRACE(pragma);
  ASSERT_OK_AND_ASSIGN(int64_t got, WriterPragma(store, pragma));
  EXPECT_EQ(got, want);
}

void ExpectPragma(sqlite::SqliteConnection& conn, const std::string& pragma,
                  int64_t want) {
  SCOPED_TRACE(pragma);
  ASSERT_OK_AND_ASSIGN(int64_t got, conn.QueryInt64(pragma, -1));
  EXPECT_EQ(got, want);
}

// Holds `depth` reader connections of `db` at once (each WithReader call
// takes another while the outer ones are out) and checks the settings on
// each; returns how many it checked.
absl::StatusOr<int> CheckNestedReaders(sqlite::SqliteDatabase& db, int depth,
                                       int64_t cache_kib, int64_t mmap_bytes) {
  if (depth == 0) return 0;
  return db.WithReader(
      [&](sqlite::SqliteConnection& conn) -> absl::StatusOr<int> {
        ExpectPragma(conn, "PRAGMA cache_size", cache_kib);
        ExpectPragma(conn, "PRAGMA mmap_size", mmap_bytes);
        ES_ASSIGN_OR_RETURN(
            int inner,
            CheckNestedReaders(db, depth - 1, cache_kib, mmap_bytes));
        return inner + 1;
      });
}

TEST(SqliteCacheOptionsTest, Defaults) {
  const SqliteOptions options;
  EXPECT_EQ(options.cache_size_mb, 16);
  EXPECT_EQ(options.mmap_size_mb, 0);
  ASSERT_OK_AND_ASSIGN(SqliteOptions from_url,
                       SqliteOptions::FromUrl("sqlite:e.db"));
  EXPECT_EQ(from_url.cache_size_mb, 16);
  EXPECT_EQ(from_url.mmap_size_mb, 0);
}

TEST(SqliteCacheOptionsTest, FromUrlParsesBoth) {
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions options,
      SqliteOptions::FromUrl("sqlite:e.db?cache_size_mb=1&mmap_size_mb=0"));
  EXPECT_EQ(options.cache_size_mb, 1);
  EXPECT_EQ(options.mmap_size_mb, 0);
  ASSERT_OK_AND_ASSIGN(
      options, SqliteOptions::FromUrl(
                   "sqlite::memory:?cache_size_mb=65536&mmap_size_mb=1048576"));
  EXPECT_EQ(options.cache_size_mb, SqliteOptions::kMaxCacheSizeMb);
  EXPECT_EQ(options.mmap_size_mb, SqliteOptions::kMaxMmapSizeMb);
}

TEST(SqliteCacheOptionsTest, FromUrlOutOfRangeNamesOptionAndRange) {
  for (const char* value : {"0", "-1", "65537", "4294967297"}) {
    SCOPED_TRACE(value);
    EXPECT_THAT(
        SqliteOptions::FromUrl(
            absl::StrCat("sqlite:e.db?cache_size_mb=", value)),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 AllOf(HasSubstr(absl::StrCat("cache_size_mb='", value, "'")),
                       HasSubstr("from 1 to 65536"))));
  }
  for (const char* value : {"-1", "1048577", "99999999999"}) {
    SCOPED_TRACE(value);
    EXPECT_THAT(
        SqliteOptions::FromUrl(
            absl::StrCat("sqlite:e.db?mmap_size_mb=", value)),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 AllOf(HasSubstr(absl::StrCat("mmap_size_mb='", value, "'")),
                       HasSubstr("from 0 to 1048576"))));
  }
}

TEST(SqliteCacheOptionsTest, FromUrlNotANumberIsNamed) {
  for (const char* key : {"cache_size_mb", "mmap_size_mb"}) {
    for (const char* value : {"", "big", "1.5", "2MB", "0x10"}) {
      SCOPED_TRACE(absl::StrCat(key, "=", value));
      EXPECT_THAT(
          SqliteOptions::FromUrl(absl::StrCat("sqlite:e.db?", key, "=", value)),
          StatusIs(absl::StatusCode::kInvalidArgument,
                   AllOf(HasSubstr(key), HasSubstr("whole number of MiB"))));
    }
  }
}

TEST(SqliteCacheOptionsTest, UnknownParameterListsTheNewOnes) {
  EXPECT_THAT(
      SqliteOptions::FromUrl("sqlite:e.db?page_cache=1"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("cache_size_mb"), HasSubstr("mmap_size_mb"))));
}

TEST(SqliteCacheOptionsTest, OpenRefusesOutOfRangeFields) {
  SqliteOptions options;
  options.path = ":memory:";
  options.cache_size_mb = 0;
  EXPECT_THAT(SqliteEventStore::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("cache_size_mb"),
                             HasSubstr("from 1 to 65536"))));
  options.cache_size_mb = 8;
  options.mmap_size_mb = -1;
  EXPECT_THAT(SqliteEventStore::Open(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("mmap_size_mb"),
                             HasSubstr("from 0 to 1048576"))));
}

TEST(SqliteCacheOptionsTest, FileStoreWriterRunsWithTheSettings) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EventStore> store,
      OpenEventStore(absl::StrCat("sqlite://", dir->File("e.db"),
                                  "?cache_size_mb=48&mmap_size_mb=32")));
  // A negative cache_size is KiB.
  ExpectWriterPragma(*store, "PRAGMA cache_size", -48 * 1024);
  ExpectWriterPragma(*store, "PRAGMA mmap_size", 32 * kMiB);
}

TEST(SqliteCacheOptionsTest, FileStoreDefaultsReachTheWriter) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EventStore> store,
      OpenEventStore(absl::StrCat("sqlite://", dir->File("e.db"))));
  ExpectWriterPragma(*store, "PRAGMA cache_size", -16 * 1024);
  ExpectWriterPragma(*store, "PRAGMA mmap_size", 0);
}

TEST(SqliteCacheOptionsTest, MemoryStoreWriterRunsWithTheCacheSize) {
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EventStore> store,
      OpenEventStore("sqlite::memory:?cache_size_mb=3&mmap_size_mb=16"));
  ExpectWriterPragma(*store, "PRAGMA cache_size", -3 * 1024);
  // SQLite has no map for an in-memory database: PRAGMA mmap_size answers
  // no row there, and setting it (as Open did) is accepted and ignored.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> txn,
                       store->BeginTransaction());
  ASSERT_OK_AND_ASSIGN(SqlRows rows, txn->Query("PRAGMA mmap_size"));
  EXPECT_TRUE(rows.empty());
  ASSERT_OK(txn->Commit());
}

TEST(SqliteCacheOptionsTest, EveryReaderRunsWithTheSettings) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  SqliteOptions options;
  options.path = dir->File("e.db");
  options.cache_size_mb = 24;
  options.mmap_size_mb = 8;
  options.max_readers = 2;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<sqlite::SqliteDatabase> db,
                       sqlite::SqliteDatabase::Open(options));
  // Three at once: two go back to the pool, the third is closed. Then
  // again: the pooled ones, and a newly opened one.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    ASSERT_OK_AND_ASSIGN(int checked,
                         CheckNestedReaders(*db, 3, -24 * 1024, 8 * kMiB));
    EXPECT_EQ(checked, 3);
  }
  ASSERT_OK(db->WithWriter([](sqlite::SqliteConnection& conn) {
    ExpectPragma(conn, "PRAGMA cache_size", -24 * 1024);
    ExpectPragma(conn, "PRAGMA mmap_size", 8 * kMiB);
    return absl::OkStatus();
  }));
}

TEST(SqliteCacheOptionsTest, ReadOnlyStoreRunsWithTheSettings) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const std::string path = dir->File("e.db");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> created,
                         OpenEventStore(absl::StrCat("sqlite://", path)));
  }
  SqliteOptions options;
  options.path = path;
  options.read_only = true;
  options.cache_size_mb = 5;
  options.mmap_size_mb = 0;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<sqlite::SqliteDatabase> db,
                       sqlite::SqliteDatabase::Open(options));
  ASSERT_OK_AND_ASSIGN(int checked, CheckNestedReaders(*db, 2, -5 * 1024, 0));
  EXPECT_EQ(checked, 2);
}

}  // namespace
}  // namespace eventstore
