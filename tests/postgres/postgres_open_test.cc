// How a PostgreSQL store is opened: option ranges, connection strings libpq
// refuses, read-only, with or without a schema upgrade, and the explicit
// UpgradeSchema. Every refusal leaves the schema as it was.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_schema.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/store_inspector.h"
#include "eventstore/subject_key_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

EventData Tick(std::string payload) {
  EventData e;
  e.id = Uuid::Generate();
  e.type = "eventstore.test.v1.Tick";
  e.payload = std::move(payload);
  return e;
}

// --- options -----------------------------------------------------------------

TEST(PostgresOpenTest, UrlNumbersOutOfRangeNameTheRange) {
  const struct {
    const char* name;
    const char* value;
    const char* range;
  } cases[] = {
      {"pool_size", "0", "from 1 to 1000"},
      {"pool_size", "1001", "from 1 to 1000"},
      {"connect_timeout_ms", "2147483648", "from 0 to 2147483647"},
      {"statement_timeout_ms", "9999999999", "from 0 to 2147483647"},
      {"statement_timeout_ms", "-1", "from 0 to 2147483647"},
  };
  for (const auto& c : cases) {
    const std::string url =
        absl::StrCat("postgresql://u:hunter2@h/db?", c.name, "=", c.value);
    absl::StatusOr<PostgresOptions> o = PostgresOptions::FromUrl(url);
    EXPECT_THAT(o, StatusIs(absl::StatusCode::kInvalidArgument,
                            AllOf(HasSubstr(c.name), HasSubstr(c.range))))
        << url;
    EXPECT_THAT(std::string(o.status().message()), Not(HasSubstr("hunter2")));
  }
  ASSERT_OK_AND_ASSIGN(
      PostgresOptions o,
      PostgresOptions::FromUrl("postgresql://u@h/db?read_only=true&"
                               "upgrade_schema=false&pool_size=1000&"
                               "statement_timeout_ms=2147483647"));
  EXPECT_TRUE(o.read_only);
  EXPECT_FALSE(o.upgrade_schema);
  EXPECT_EQ(o.conninfo, "postgresql://u@h/db");
  EXPECT_THAT(
      PostgresOptions::FromUrl("postgresql://u@h/db?read_only=maybe"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("read_only")));
}

TEST(PostgresOpenTest, OptionsOutOfRangeAreRefusedBeforeConnecting) {
  PostgresOptions o;
  // Nothing listens there: a connection attempt would be kUnavailable.
  o.conninfo = "postgresql://u@127.0.0.1:1/db";
  o.pool_size = PostgresOptions::kMaxPoolSize + 1;
  EXPECT_THAT(PostgresEventStore::Open(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("pool_size: 1001 is not from 1 to 1000")));
  o.pool_size = 4;
  o.statement_timeout = absl::Hours(24 * 30);
  EXPECT_THAT(PostgresEventStore::Open(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("statement_timeout")));
  o.statement_timeout = absl::Seconds(1);
  o.connect_timeout = -absl::Seconds(1);
  EXPECT_THAT(PostgresEventStore::Open(o),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("connect_timeout")));
}

TEST(PostgresOpenTest, ConnectionStringsLibpqRefusesAreInvalidArguments) {
  const struct {
    const char* url;
    const char* names;
  } cases[] = {
      {"postgresql://u:hunter2@127.0.0.1:notaport/db", "port"},
      {"postgresql://u:hunter2@127.0.0.1:1/db?sslmode=bogus", "sslmode"},
      // The '@' is missing: libpq takes the password for the port.
      {"postgresql://u:hunter2/db", "port"},
      {"postgresql://u:hunter2@127.0.0.1:1/db?target_session_attrs=x",
       "target_session_attrs"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<std::unique_ptr<EventStore>> store = OpenEventStore(c.url);
    EXPECT_THAT(
        store, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.names)))
        << c.url;
    EXPECT_THAT(std::string(store.status().message()),
                Not(HasSubstr("hunter2")))
        << c.url;
  }
}

// --- read-only and upgrades
// ---------------------------------------------------

class PostgresOpenServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(url_, SharedPostgresUrl());
    options_.conninfo = url_;
    options_.schema = UniqueSchemaName();
    ASSERT_OK_AND_ASSIGN(raw_, RawPostgres::Connect(url_));
  }

  PostgresOptions ReadOnly() const {
    PostgresOptions o = options_;
    o.read_only = true;
    return o;
  }

  // The schema version and every column of every table in the schema: what
  // a refused open must leave as it was.
  std::vector<std::vector<std::string>> Shape() {
    absl::StatusOr<std::vector<std::vector<std::string>>> rows = raw_->Query(
        absl::StrCat("SELECT table_name, column_name, data_type FROM "
                     "information_schema.columns WHERE table_schema = '",
                     options_.schema, "' ORDER BY table_name, column_name"));
    EXPECT_OK(rows);
    std::vector<std::vector<std::string>> shape =
        rows.ok() ? *rows : std::vector<std::vector<std::string>>{};
    shape.push_back({"version", std::to_string(Version())});
    return shape;
  }

  int64_t Version() {
    absl::StatusOr<std::vector<std::vector<std::string>>> rows =
        raw_->Query(absl::StrCat("SELECT max(version) FROM \"", options_.schema,
                                 "\".eventstore_schema"));
    if (!rows.ok() || rows->empty()) return -1;
    return std::stoll((*rows)[0][0]);
  }

  // A store of the schema before this code's, as the older code made it.
  void MakeOlderStore() {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<postgres::PgConnection> conn,
                         postgres::PgConnection::Connect(
                             url_, absl::Seconds(10), absl::Seconds(30)));
    ASSERT_OK(postgres::CreateSchemaAtVersion(
        *conn, options_.schema, PostgresEventStore::kSchemaVersion - 1));
  }

  std::string url_;
  PostgresOptions options_;
  std::unique_ptr<RawPostgres> raw_;
};

TEST_F(PostgresOpenServerTest, ReadOnlyReadsAndRefusesEveryWrite) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(options_));
    ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), {Tick("a")}));
  }
  const auto shape = Shape();
  ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(ReadOnly()));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("s"));
  EXPECT_THAT(events, SizeIs(1));
  ASSERT_OK_AND_ASSIGN(StoreInfo info, store->inspector().Info());
  EXPECT_EQ(info.events, 1);
  ASSERT_OK(store->checkpoints().List());
  ASSERT_OK(store->outbox().Stats());

  const auto refused = StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("opened read-only"));
  EXPECT_THAT(store->Append("s", ExpectedVersion::Exactly(1), {Tick("b")}),
              refused);
  EXPECT_THAT(store->checkpoints().Save("p", events[0].position, 1), refused);
  ASSERT_OK_AND_ASSIGN(auto count,
                       raw_->Query(absl::StrCat("SELECT count(*) FROM \"",
                                                options_.schema, "\".events")));
  EXPECT_EQ(count[0][0], "1");
  EXPECT_EQ(Shape(), shape);
}

TEST_F(PostgresOpenServerTest, ReadOnlyRefusesSubjectKeyWrites) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(options_));
    ASSERT_OK(store->subject_keys().Insert("user-1", "wrapped", "mk-1"));
  }
  ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(ReadOnly()));
  SubjectKeyStore& keys = store->subject_keys();
  ASSERT_OK_AND_ASSIGN(std::optional<SubjectKeyRecord> found,
                       keys.Find("user-1"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->wrapped_key, "wrapped");
  const auto refused = StatusIs(absl::StatusCode::kFailedPrecondition,
                                HasSubstr("opened read-only"));
  EXPECT_THAT(keys.Insert("user-2", "wrapped", "mk-1"), refused);
  EXPECT_THAT(keys.AddStream("user-1", "order-1"), refused);
  EXPECT_THAT(keys.Forget("user-1"), refused);
  EXPECT_THAT(keys.Rewrap("user-1", "mk-1", "other", "mk-2"), refused);
  SubjectKeyRecord record;
  record.subject = "user-3";
  record.wrapped_key = "wrapped";
  record.master_key_id = "mk-1";
  EXPECT_THAT(keys.Put({record}), refused);
  ASSERT_OK_AND_ASSIGN(auto rows, raw_->Query(absl::StrCat(
                                      "SELECT subject, master_key_id FROM \"",
                                      options_.schema, "\".subject_keys")));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "user-1");
  EXPECT_EQ(rows[0][1], "mk-1");
}

TEST_F(PostgresOpenServerTest, ReadOnlyCreatesNothing) {
  EXPECT_THAT(
      PostgresEventStore::Open(ReadOnly()),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr("holds no eventstore")));
  ASSERT_OK_AND_ASSIGN(
      auto rows, raw_->Query(absl::StrCat(
                     "SELECT count(*) FROM pg_namespace WHERE nspname = '",
                     options_.schema, "'")));
  EXPECT_EQ(rows[0][0], "0") << "the schema was created";
}

TEST_F(PostgresOpenServerTest, AnOlderSchemaIsRefusedUntouchedWithoutUpgrade) {
  MakeOlderStore();
  const auto shape = Shape();
  ASSERT_EQ(Version(), PostgresEventStore::kSchemaVersion - 1);
  PostgresOptions no_upgrade = options_;
  no_upgrade.upgrade_schema = false;
  for (const PostgresOptions& o : {no_upgrade, ReadOnly()}) {
    EXPECT_THAT(PostgresEventStore::Open(o),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr("older than this code"),
                               HasSubstr("eventstore upgrade"))));
    EXPECT_EQ(Shape(), shape);
  }
}

TEST_F(PostgresOpenServerTest, TheDefaultOpenUpgradesAnOlderSchema) {
  MakeOlderStore();
  ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(options_));
  EXPECT_EQ(Version(), PostgresEventStore::kSchemaVersion);
  EXPECT_OK(store->Append("s", ExpectedVersion::NoStream(), {Tick("a")}));
}

TEST_F(PostgresOpenServerTest, UpgradeSchemaReportsTheVersionsAndIsIdempotent) {
  EXPECT_THAT(PostgresEventStore::UpgradeSchema(options_),
              StatusIs(absl::StatusCode::kNotFound));
  MakeOlderStore();
  ASSERT_OK_AND_ASSIGN(SchemaUpgrade first,
                       PostgresEventStore::UpgradeSchema(options_));
  EXPECT_EQ(first.from_version, PostgresEventStore::kSchemaVersion - 1);
  EXPECT_EQ(first.to_version, PostgresEventStore::kSchemaVersion);
  EXPECT_EQ(Version(), PostgresEventStore::kSchemaVersion);
  const auto shape = Shape();
  ASSERT_OK_AND_ASSIGN(SchemaUpgrade second,
                       PostgresEventStore::UpgradeSchema(options_));
  EXPECT_FALSE(second.upgraded());
  EXPECT_EQ(Shape(), shape);
  EXPECT_OK(PostgresEventStore::Open(ReadOnly()));
}

TEST_F(PostgresOpenServerTest,
       AVersion7StoreKeepsItsCheckpointsAndTakesRebuilds) {
  // Version 8 of the schema adds the rebuild request to checkpoints.
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<postgres::PgConnection> conn,
                         postgres::PgConnection::Connect(
                             url_, absl::Seconds(10), absl::Seconds(30)));
    ASSERT_OK(postgres::CreateSchemaAtVersion(*conn, options_.schema, 7));
    // A checkpoint as version 7 stored it.
    ASSERT_OK(conn->Exec(absl::StrCat(
                             "INSERT INTO \"", options_.schema,
                             "\".checkpoints (projection, position_commit,"
                             " position_prepare, events_processed, updated_at)"
                             " VALUES ('totals', 3, 42, 7, now())"))
                  .status());
  }
  ASSERT_OK_AND_ASSIGN(SchemaUpgrade upgrade,
                       PostgresEventStore::UpgradeSchema(options_));
  EXPECT_EQ(upgrade.from_version, 7);
  EXPECT_EQ(upgrade.to_version, PostgresEventStore::kSchemaVersion);
  ASSERT_OK_AND_ASSIGN(auto store, PostgresEventStore::Open(options_));
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       store->checkpoints().Get("totals"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->position, Position::FromParts(3, 42));
  EXPECT_EQ(cp->events_processed, 7);
  EXPECT_FALSE(cp->rebuild_requested_at.has_value());
  ASSERT_OK(store->checkpoints().RequestRebuild("totals", "alice"));
  ASSERT_OK_AND_ASSIGN(cp, store->checkpoints().Get("totals"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, "alice");
  EXPECT_EQ(cp->position, Position::FromParts(3, 42));
}

}  // namespace
}  // namespace eventstore::test
