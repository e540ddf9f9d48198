// The SqlTransaction contract (sql_transaction.h), run on every backend of
// AllTestBackends(): read-model tables beside the events, $N parameters,
// text results, commit and rollback.
//
// Each test uses its own table names, so that a failure of one (say, a table
// that leaks out of the store) does not spread to the others; the SQL is
// valid on both SQLite and PostgreSQL.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "eventstore/sql_transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::IsOk;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;

class SqlTransactionConformanceTest : public test::StoreTest {
 protected:
  // Creates `table` (name TEXT PRIMARY KEY, n BIGINT NOT NULL) in a
  // committed transaction.
  absl::Status CreateCounts(std::string_view table) {
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store().BeginTransaction();
    if (!tx.ok()) return tx.status();
    absl::Status status = (*tx)->Execute(
        std::string("CREATE TABLE IF NOT EXISTS ") + std::string(table) +
        " (name TEXT PRIMARY KEY, n BIGINT NOT NULL)");
    if (!status.ok()) return status;
    return (*tx)->Commit();
  }

  // All rows of `table`, ordered by name, read in a new transaction.
  absl::StatusOr<SqlRows> ReadCounts(std::string_view table) {
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store().BeginTransaction();
    if (!tx.ok()) return tx.status();
    return (*tx)->Query(std::string("SELECT name, n FROM ") +
                        std::string(table) + " ORDER BY name");
  }
};

TEST_P(SqlTransactionConformanceTest, DialectNamesTheBackend) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                       store().BeginTransaction());
  EXPECT_THAT(std::string(tx->dialect()), AnyOf("sqlite", "postgres"));
  const std::string name = GetParam().name;
  if (name.rfind("sqlite", 0) == 0) {
    EXPECT_EQ(tx->dialect(), "sqlite");
  } else if (name.rfind("postgres", 0) == 0) {
    EXPECT_EQ(tx->dialect(), "postgres");
  }
}

TEST_P(SqlTransactionConformanceTest, CreateInsertQueryCommit) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(
        tx->Execute("CREATE TABLE IF NOT EXISTS rm_counts "
                    "(name TEXT PRIMARY KEY, n BIGINT NOT NULL)"));
    ASSERT_OK(tx->Execute("INSERT INTO rm_counts (name, n) VALUES ($1, $2)",
                          {SqlValue::Text("b"), SqlValue::Int(-7)}));
    ASSERT_OK(tx->Execute("INSERT INTO rm_counts (name, n) VALUES ($1, $2)",
                          {SqlValue::Text("a"), SqlValue::Int(3)}));
    ASSERT_OK(tx->Execute(
        "INSERT INTO rm_counts (name, n) VALUES ($1, $2)",
        {SqlValue::Text("big"), SqlValue::Int(int64_t{9007199254740993})}));
    // The transaction sees its own writes.
    ASSERT_OK_AND_ASSIGN(
        SqlRows rows, tx->Query("SELECT name, n FROM rm_counts ORDER BY name"));
    EXPECT_THAT(rows, ElementsAre(SqlRow{"a", "3"}, SqlRow{"b", "-7"},
                                  SqlRow{"big", "9007199254740993"}));
    ASSERT_OK_AND_ASSIGN(rows,
                         tx->Query("SELECT n FROM rm_counts WHERE name = $1",
                                   {SqlValue::Text("b")}));
    EXPECT_THAT(rows, ElementsAre(SqlRow{"-7"}));
    ASSERT_OK_AND_ASSIGN(
        rows, tx->Query("SELECT name FROM rm_counts WHERE n > $1 ORDER BY n",
                        {SqlValue::Int(0)}));
    EXPECT_THAT(rows, ElementsAre(SqlRow{"a"}, SqlRow{"big"}));
    ASSERT_OK_AND_ASSIGN(rows,
                         tx->Query("SELECT name FROM rm_counts WHERE name = $1",
                                   {SqlValue::Text("absent")}));
    EXPECT_THAT(rows, IsEmpty());
    ASSERT_OK(tx->Commit());
  }
  // Visible from a new transaction.
  ASSERT_OK_AND_ASSIGN(SqlRows rows, ReadCounts("rm_counts"));
  EXPECT_THAT(rows, ElementsAre(SqlRow{"a", "3"}, SqlRow{"b", "-7"},
                                SqlRow{"big", "9007199254740993"}));
  // And updatable there.
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(tx->Execute("UPDATE rm_counts SET n = n + $1 WHERE name = $2",
                          {SqlValue::Int(10), SqlValue::Text("a")}));
    ASSERT_OK(tx->Commit());
  }
  ASSERT_OK_AND_ASSIGN(rows, ReadCounts("rm_counts"));
  EXPECT_THAT(rows, ElementsAre(SqlRow{"a", "13"}, SqlRow{"b", "-7"},
                                SqlRow{"big", "9007199254740993"}));
}

TEST_P(SqlTransactionConformanceTest, NullsAndTextRoundTrip) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(
        tx->Execute("CREATE TABLE IF NOT EXISTS rm_notes "
                    "(id BIGINT PRIMARY KEY, note TEXT)"));
    ASSERT_OK(tx->Execute("INSERT INTO rm_notes (id, note) VALUES ($1, $2)",
                          {SqlValue::Int(1), SqlValue::Null()}));
    ASSERT_OK(tx->Execute("INSERT INTO rm_notes (id, note) VALUES ($1, $2)",
                          {SqlValue::Int(2), SqlValue::Text("")}));
    // Quotes and a semicolon in a parameter are data, not SQL.
    ASSERT_OK(tx->Execute(
        "INSERT INTO rm_notes (id, note) VALUES ($1, $2)",
        {SqlValue::Int(3), SqlValue::Text("it's; DROP TABLE rm_notes; --")}));
    ASSERT_OK(tx->Execute("INSERT INTO rm_notes (id, note) VALUES ($1, $2)",
                          {SqlValue::Int(4), SqlValue::Text("grüße ✓")}));
    ASSERT_OK(tx->Commit());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                       store().BeginTransaction());
  ASSERT_OK_AND_ASSIGN(SqlRows rows,
                       tx->Query("SELECT id, note FROM rm_notes ORDER BY id"));
  EXPECT_THAT(rows, ElementsAre(SqlRow{"1", std::nullopt}, SqlRow{"2", ""},
                                SqlRow{"3", "it's; DROP TABLE rm_notes; --"},
                                SqlRow{"4", "grüße ✓"}));
  ASSERT_OK_AND_ASSIGN(rows,
                       tx->Query("SELECT id FROM rm_notes WHERE note IS NULL"));
  EXPECT_THAT(rows, ElementsAre(SqlRow{"1"}));
}

TEST_P(SqlTransactionConformanceTest, BlobsInTheDialectsTextForm) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                       store().BeginTransaction());
  const bool postgres = tx->dialect() == "postgres";
  ASSERT_OK(tx->Execute(postgres ? "CREATE TABLE rm_blobs (b BYTEA NOT NULL)"
                                 : "CREATE TABLE rm_blobs (b BLOB NOT NULL)"));
  ASSERT_OK(tx->Execute("INSERT INTO rm_blobs (b) VALUES ($1)",
                        {SqlValue::Blob(std::string("\x00\xff\x41", 3))}));
  ASSERT_OK_AND_ASSIGN(SqlRows rows, tx->Query("SELECT b FROM rm_blobs"));
  ASSERT_THAT(rows, ElementsAre(::testing::SizeIs(1)));
  ASSERT_TRUE(rows[0][0].has_value());
  if (postgres) {
    EXPECT_EQ(*rows[0][0], "\\x00ff41");
  } else {
    EXPECT_EQ(*rows[0][0], std::string("\x00\xff\x41", 3));
  }
}

TEST_P(SqlTransactionConformanceTest, DestroyedWithoutCommitRollsBack) {
  ASSERT_OK(CreateCounts("rm_rollback"));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(tx->Execute("INSERT INTO rm_rollback (name, n) VALUES ($1, $2)",
                          {SqlValue::Text("kept"), SqlValue::Int(1)}));
    ASSERT_OK(tx->Commit());
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(tx->Execute("INSERT INTO rm_rollback (name, n) VALUES ($1, $2)",
                          {SqlValue::Text("lost"), SqlValue::Int(2)}));
    ASSERT_OK(tx->Execute("UPDATE rm_rollback SET n = $1 WHERE name = $2",
                          {SqlValue::Int(99), SqlValue::Text("kept")}));
    ASSERT_OK_AND_ASSIGN(SqlRows inside,
                         tx->Query("SELECT name, n FROM rm_rollback "
                                   "ORDER BY name"));
    EXPECT_THAT(inside, ElementsAre(SqlRow{"kept", "99"}, SqlRow{"lost", "2"}));
    // No Commit.
  }
  ASSERT_OK_AND_ASSIGN(SqlRows rows, ReadCounts("rm_rollback"));
  EXPECT_THAT(rows, ElementsAre(SqlRow{"kept", "1"}));
}

TEST_P(SqlTransactionConformanceTest, CreateTableRollsBackToo) {
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(tx->Execute("CREATE TABLE rm_never (name TEXT PRIMARY KEY)"));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                       store().BeginTransaction());
  EXPECT_THAT(tx->Query("SELECT name FROM rm_never"), Not(IsOk()));
}

TEST_P(SqlTransactionConformanceTest, BadStatementIsAnError) {
  ASSERT_OK(CreateCounts("rm_errors"));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    EXPECT_THAT(tx->Execute("THIS IS NOT SQL"), Not(IsOk()));
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    EXPECT_THAT(tx->Query("SELECT nothing FROM rm_no_such_table"), Not(IsOk()));
  }
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(tx->Execute("INSERT INTO rm_errors (name, n) VALUES ($1, $2)",
                          {SqlValue::Text("a"), SqlValue::Int(1)}));
    // A constraint violation.
    EXPECT_THAT(tx->Execute("INSERT INTO rm_errors (name, n) VALUES ($1, $2)",
                            {SqlValue::Text("a"), SqlValue::Int(2)}),
                Not(IsOk()));
    EXPECT_THAT(tx->Execute("INSERT INTO rm_errors (name, n) VALUES ($1, $2)",
                            {SqlValue::Text("b"), SqlValue::Null()}),
                Not(IsOk()));
  }
  // The store is still usable, and the failed transaction left nothing.
  ASSERT_OK_AND_ASSIGN(SqlRows rows, ReadCounts("rm_errors"));
  EXPECT_THAT(rows, IsEmpty());
}

// Read-model tables live with the store ("beside the events"): a table
// created through one store is not seen through another, fresh one (on
// PostgreSQL, another schema).
TEST_P(SqlTransactionConformanceTest, ReadModelTablesBelongToTheStore) {
  ASSERT_OK(CreateCounts("rm_shared_name"));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store().BeginTransaction());
    ASSERT_OK(
        tx->Execute("INSERT INTO rm_shared_name (name, n) "
                    "VALUES ($1, $2)",
                    {SqlValue::Text("first store"), SqlValue::Int(1)}));
    ASSERT_OK(tx->Commit());
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> other,
                       GetParam().open(nullptr));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         other->BeginTransaction());
    ASSERT_OK(
        tx->Execute("CREATE TABLE IF NOT EXISTS rm_shared_name "
                    "(name TEXT PRIMARY KEY, n BIGINT NOT NULL)"));
    ASSERT_OK_AND_ASSIGN(SqlRows rows,
                         tx->Query("SELECT name, n FROM rm_shared_name"));
    EXPECT_THAT(rows, IsEmpty());
  }
  ASSERT_OK_AND_ASSIGN(SqlRows rows, ReadCounts("rm_shared_name"));
  EXPECT_THAT(rows, ElementsAre(SqlRow{"first store", "1"}));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, SqlTransactionConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
