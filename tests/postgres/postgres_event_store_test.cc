// What is specific to PostgreSQL: URLs, schemas, opening concurrently,
// refusing schemas that are not ours or too new.

#include "backends/postgres/postgres_event_store.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/sql_transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

EventData Tick(std::string payload) {
  EventData e;
  e.id = Uuid::Generate();
  e.type = "eventstore.test.v1.Tick";
  e.payload = std::move(payload);
  return e;
}

TEST(PostgresOptionsTest, FromUrlSplitsOurParametersFromLibpqs) {
  ASSERT_OK_AND_ASSIGN(PostgresOptions o,
                       PostgresOptions::FromUrl(
                           "postgresql://app:secret@127.0.0.1:5433/shop?"
                           "schema=orders&pool_size=3&sslmode=disable&"
                           "connect_timeout_ms=1500&statement_timeout_ms=0"));
  EXPECT_EQ(o.schema, "orders");
  EXPECT_EQ(o.pool_size, 3);
  EXPECT_EQ(o.connect_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(o.statement_timeout, absl::ZeroDuration());
  EXPECT_EQ(o.conninfo,
            "postgresql://app:secret@127.0.0.1:5433/shop?sslmode=disable");
  ASSERT_OK_AND_ASSIGN(PostgresOptions d,
                       PostgresOptions::FromUrl("postgres://h/db"));
  EXPECT_EQ(d.schema, "eventstore");
  EXPECT_EQ(d.pool_size, 8);
}

TEST(PostgresOptionsTest, FromUrlVerifyChecksums) {
  EXPECT_TRUE(PostgresOptions().verify_checksums);
  ASSERT_OK_AND_ASSIGN(PostgresOptions defaults,
                       PostgresOptions::FromUrl("postgresql://h/db"));
  EXPECT_TRUE(defaults.verify_checksums);
  ASSERT_OK_AND_ASSIGN(
      PostgresOptions off,
      PostgresOptions::FromUrl(
          "postgresql://h/db?verify_checksums=false&sslmode=disable"));
  EXPECT_FALSE(off.verify_checksums);
  // Ours: not passed on to libpq.
  EXPECT_EQ(off.conninfo, "postgresql://h/db?sslmode=disable");
  ASSERT_OK_AND_ASSIGN(
      PostgresOptions on,
      PostgresOptions::FromUrl("postgresql://h/db?verify_checksums=true"));
  EXPECT_TRUE(on.verify_checksums);
  absl::StatusOr<PostgresOptions> bad = PostgresOptions::FromUrl(
      "postgresql://u:hunter2@h/db?verify_checksums=sometimes");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr("verify_checksums='sometimes'")));
  EXPECT_THAT(std::string(bad.status().message()), Not(HasSubstr("hunter2")));
}

TEST(PostgresOptionsTest, BadUrlsNameThePartAndNeverThePassword) {
  const struct {
    const char* url;
    const char* names;
  } cases[] = {
      {"mysql://u:hunter2@h/db", "postgresql://"},
      {"postgresql://u:hunter2@h/db?schema=Bad-Name", "schema"},
      {"postgresql://u:hunter2@h/db?pool_size=0", "pool_size"},
      {"postgresql://u:hunter2@h/db?connect_timeout_ms=soon",
       "connect_timeout_ms"},
      {"postgresql://u:hunter2@h/db?nonsense_param=1", "nonsense_param"},
      {"postgresql://u:hunter2@h/db?schema", "schema"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<PostgresOptions> o = PostgresOptions::FromUrl(c.url);
    EXPECT_THAT(
        o, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.names)))
        << c.url;
    EXPECT_THAT(std::string(o.status().message()), Not(HasSubstr("hunter2")))
        << c.url;
  }
}

TEST(PostgresOptionsTest, MaskHidesPasswordsInUserinfoAndParameters) {
  EXPECT_EQ(MaskPostgresUrl("postgresql://u:pw@h:1/db"),
            "postgresql://u:***@h:1/db");
  EXPECT_EQ(MaskPostgresUrl("postgresql://u@h/db?password=pw&x=1"),
            "postgresql://u@h/db?password=***&x=1");
  EXPECT_EQ(MaskPostgresUrl("postgresql://u@h/db"), "postgresql://u@h/db");
}

TEST(PostgresEventStoreTest, UnreachableServerIsUnavailableWithoutPassword) {
  PostgresOptions o;
  // Port 1 on loopback: nothing listens there.
  o.conninfo = "postgresql://u:hunter2@127.0.0.1:1/db";
  o.connect_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<EventStore>> store =
      PostgresEventStore::Open(o);
  EXPECT_THAT(store,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("127.0.0.1")));
  EXPECT_THAT(std::string(store.status().message()), Not(HasSubstr("hunter2")));
}

TEST(PostgresEventStoreTest, OpenEventStoreTakesPostgresUrls) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  const std::string schema = UniqueSchemaName();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore(absl::StrCat(url, "?schema=", schema)));
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Tick("x")}));
  ASSERT_OK_AND_ASSIGN(auto raw, RawPostgres::Connect(url));
  ASSERT_OK_AND_ASSIGN(
      auto rows,
      raw->Query(absl::StrCat("SELECT count(*) FROM \"", schema, "\".events")));
  EXPECT_EQ(rows[0][0], "1");
}

TEST(PostgresEventStoreTest, SessionsRunWithoutJitAndWithTheStatementTimeout) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EventStore> store,
      OpenEventStore(absl::StrCat(url, "?schema=", UniqueSchemaName(),
                                  "&statement_timeout_ms=4321")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                       store->BeginTransaction());
  ASSERT_OK_AND_ASSIGN(SqlRows rows,
                       tx->Query("SELECT current_setting('jit'), "
                                 "current_setting('statement_timeout')"));
  ASSERT_OK(tx->Commit());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "off");
  EXPECT_EQ(rows[0][1], "4321ms");
}

TEST(PostgresEventStoreTest, SchemasIsolateStoresInOneDatabase) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions a;
  a.conninfo = url;
  a.schema = UniqueSchemaName();
  PostgresOptions b = a;
  b.schema = UniqueSchemaName();
  ASSERT_OK_AND_ASSIGN(auto store_a, PostgresEventStore::Open(a));
  ASSERT_OK_AND_ASSIGN(auto store_b, PostgresEventStore::Open(b));
  ASSERT_OK(store_a->Append("s", ExpectedVersion::NoStream(), {Tick("a")}));
  ASSERT_OK_AND_ASSIGN(int64_t version_b, store_b->StreamVersion("s"));
  EXPECT_EQ(version_b, 0);
  ASSERT_OK(store_b->Append("s", ExpectedVersion::NoStream(), {Tick("b")}));
  ASSERT_OK_AND_ASSIGN(auto events, store_a->ReadStream("s"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload, "a");
}

TEST(PostgresEventStoreTest, ConcurrentOpensOfANewSchemaAllSucceed) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions o;
  o.conninfo = url;
  o.schema = UniqueSchemaName();
  std::vector<std::thread> threads;
  std::vector<absl::Status> results(6);
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::unique_ptr<EventStore>> s =
          PostgresEventStore::Open(o);
      results[i] = s.status();
      if (s.ok()) {
        results[i] = (*s)->Append(absl::StrCat("s", i),
                                  ExpectedVersion::NoStream(), {Tick("x")})
                         .status();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : results) EXPECT_OK(s);
  ASSERT_OK_AND_ASSIGN(auto raw, RawPostgres::Connect(url));
  ASSERT_OK_AND_ASSIGN(auto rows, raw->Query(absl::StrCat(
                                      "SELECT count(*), max(version) FROM \"",
                                      o.schema, "\".eventstore_schema")));
  EXPECT_EQ(rows[0][0], "1");
  EXPECT_EQ(rows[0][1], absl::StrCat(PostgresEventStore::kSchemaVersion));
}

TEST(PostgresEventStoreTest, WithoutCreateIfMissingAnEmptySchemaIsNotFound) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions o;
  o.conninfo = url;
  o.schema = UniqueSchemaName();
  o.create_if_missing = false;
  EXPECT_THAT(PostgresEventStore::Open(o),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr(absl::StrCat("schema \"", o.schema,
                                              "\" holds no eventstore"))));
  ASSERT_OK_AND_ASSIGN(auto raw, RawPostgres::Connect(url));
  const std::string exists = absl::StrCat(
      "SELECT count(*) FROM pg_namespace WHERE nspname = '", o.schema, "'");
  ASSERT_OK_AND_ASSIGN(auto rows, raw->Query(exists));
  EXPECT_EQ(rows[0][0], "0") << "the schema was created";

  // An existing store opens the same way.
  o.create_if_missing = true;
  {
    ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(o));
    ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Tick("x")}));
  }
  o.create_if_missing = false;
  ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(o));
  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("s"));
  EXPECT_EQ(version, 1);
}

TEST(PostgresEventStoreTest, NewerSchemaIsRefusedUntouched) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions o;
  o.conninfo = url;
  o.schema = UniqueSchemaName();
  { ASSERT_OK(PostgresEventStore::Open(o).status()); }
  ASSERT_OK_AND_ASSIGN(auto raw, RawPostgres::Connect(url));
  const std::string q = absl::StrCat("\"", o.schema, "\"");
  ASSERT_OK(
      raw->Exec(absl::StrCat("UPDATE ", q, ".eventstore_schema SET version = ",
                             PostgresEventStore::kSchemaVersion + 1)));
  EXPECT_THAT(PostgresEventStore::Open(o),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("newer than this code")));
  ASSERT_OK_AND_ASSIGN(auto rows,
                       raw->Query(absl::StrCat("SELECT version FROM ", q,
                                               ".eventstore_schema")));
  EXPECT_EQ(rows[0][0], absl::StrCat(PostgresEventStore::kSchemaVersion + 1));
}

TEST(PostgresEventStoreTest, ForeignEventsTableIsRefusedUntouched) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  const std::string schema = UniqueSchemaName();
  ASSERT_OK_AND_ASSIGN(auto raw, RawPostgres::Connect(url));
  ASSERT_OK(raw->Exec(absl::StrCat("CREATE SCHEMA ", schema, "; CREATE TABLE ",
                                   schema, ".events (x int); INSERT INTO ",
                                   schema, ".events VALUES (7)")));
  PostgresOptions o;
  o.conninfo = url;
  o.schema = schema;
  EXPECT_THAT(PostgresEventStore::Open(o),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not eventstore's")));
  ASSERT_OK_AND_ASSIGN(
      auto rows, raw->Query(absl::StrCat("SELECT x, to_regclass('", schema,
                                         ".eventstore_schema') IS NULL FROM ",
                                         schema, ".events")));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "7");
  EXPECT_EQ(rows[0][1], "t");
}

TEST(PostgresEventStoreTest, RecordsTheDescriptorOfAnAppendedType) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions o;
  o.conninfo = url;
  o.schema = UniqueSchemaName();
  ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(o));
  v1::EventMetadata message;  // any generated message will do
  message.set_actor("someone");
  ASSERT_OK(
      store->Append("s", ExpectedVersion::Any(), {EventData::From(message)}));
  ASSERT_OK_AND_ASSIGN(auto raw, RawPostgres::Connect(url));
  ASSERT_OK_AND_ASSIGN(
      auto rows,
      raw->Query(absl::StrCat("SELECT type, length(descriptor) > 0 FROM \"",
                              o.schema, "\".event_types")));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "eventstore.v1.EventMetadata");
  EXPECT_EQ(rows[0][1], "t");
}

// One event without outbox messages uses a statement of plain values:
// es_append_exact_one for Exactly and NoStream, es_append_one for Any and
// StreamExists; the array statement only for batches.
TEST(PostgresEventStoreTest, OneEventAppendsUseTheSingleEventStatements) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions o;
  o.conninfo = url;
  o.schema = UniqueSchemaName();
  o.pool_size = 1;  // so that the transaction below is on the same session
  ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(o));
  auto prepared = [&]() -> std::vector<std::string> {
    absl::StatusOr<std::unique_ptr<SqlTransaction>> tx =
        store->BeginTransaction();
    EXPECT_OK(tx);
    if (!tx.ok()) return {};
    absl::StatusOr<SqlRows> rows = (*tx)->Query(
        "SELECT name FROM pg_prepared_statements WHERE name IN "
        "('es_append', 'es_append_one', 'es_append_exact_one') ORDER BY name");
    EXPECT_OK(rows);
    std::vector<std::string> names;
    if (rows.ok()) {
      for (const auto& row : *rows) names.push_back(*row[0]);
    }
    return names;
  };
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Tick("a")}));
  ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(1), {Tick("b")}));
  EXPECT_THAT(prepared(), ElementsAre("es_append_exact_one"));
  ASSERT_OK(store->Append("s", ExpectedVersion::Any(), {Tick("c")}));
  ASSERT_OK(store->Append("s", ExpectedVersion::StreamExists(), {Tick("d")}));
  EXPECT_THAT(prepared(), ElementsAre("es_append_exact_one", "es_append_one"));
  ASSERT_OK_AND_ASSIGN(auto events, store->ReadStream("s"));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[3].version, 4);
}

TEST(PostgresEventStoreTest, NonDurableCheckpointSaveLeavesTheSessionAlone) {
  ASSERT_OK_AND_ASSIGN(std::string url, SharedPostgresUrl());
  PostgresOptions o;
  o.conninfo = url;
  o.schema = UniqueSchemaName();
  o.pool_size = 1;  // so that every call below is on the same session
  ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(o));
  {
    // A session-level setting (a plain SET persists after the commit) that
    // differs from both the server's and the save's ("off").
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store->BeginTransaction());
    ASSERT_OK(tx->Execute("SET synchronous_commit = local"));
    ASSERT_OK(tx->Commit());
  }
  ASSERT_OK(
      store->checkpoints().SaveNonDurable("p", Position::FromParts(1, 2), 3));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SqlTransaction> tx,
                         store->BeginTransaction());
    ASSERT_OK_AND_ASSIGN(
        SqlRows rows, tx->Query("SELECT current_setting('synchronous_commit'),"
                                " (SELECT count(*) FROM pg_prepared_statements"
                                "  WHERE name = 'es_cp_save_non_durable')"));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0][0], "local");  // set_config(..., true) was undone
    EXPECT_EQ(rows[0][1], "1");
    ASSERT_OK(tx->Commit());
  }
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       store->checkpoints().Get("p"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, Position::FromParts(1, 2));
  EXPECT_EQ(cp->events_processed, 3);
}

}  // namespace
}  // namespace eventstore::test
