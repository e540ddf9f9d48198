// Failover URLs: ParseFailoverUrl's parts and refusals, and OpenEventStore
// opening a FailoverEventStore from one (a SQLite primary; PostgreSQL in
// the FailoverPostgres* group).

#include "eventstore/failover_url.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/event_importer.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/open_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/failover/failover_fixture.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace eventstore::test {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseFailoverUrlTest, SplitsThePrimaryFromTheFailoverParameters) {
  ASSERT_OK_AND_ASSIGN(
      FailoverUrl parsed,
      ParseFailoverUrl("failover:postgresql://app:pw@db/shop?schema=events&"
                       "journal=sqlite:/var/lib/app/journal.db&pool_size=4&"
                       "health_check_interval_ms=250&replay_page_size=50&"
                       "recovering_append_wait_ms=750"));
  EXPECT_EQ(parsed.primary_url,
            "postgresql://app:pw@db/shop?schema=events&pool_size=4");
  EXPECT_EQ(parsed.journal_url, "sqlite:/var/lib/app/journal.db");
  EXPECT_TRUE(parsed.options.allow_fallback);
  EXPECT_EQ(parsed.options.health_check_interval, absl::Milliseconds(250));
  EXPECT_EQ(parsed.options.replay_page_size, 50);
  EXPECT_EQ(parsed.options.recovering_append_wait, absl::Milliseconds(750));
}

TEST(ParseFailoverUrlTest, DefaultsAndAPrimaryWithoutAQueryOfItsOwn) {
  ASSERT_OK_AND_ASSIGN(
      FailoverUrl parsed,
      ParseFailoverUrl("failover:sqlite:primary.db?journal=sqlite:j.db&"
                       "allow_fallback=false"));
  EXPECT_EQ(parsed.primary_url, "sqlite:primary.db");
  EXPECT_EQ(parsed.journal_url, "sqlite:j.db");
  EXPECT_FALSE(parsed.options.allow_fallback);
  const FailoverOptions defaults;
  EXPECT_EQ(parsed.options.health_check_interval,
            defaults.health_check_interval);
  EXPECT_EQ(parsed.options.replay_page_size, defaults.replay_page_size);
}

TEST(ParseFailoverUrlTest, RefusesWhatIsWrongNamingItButNotThePassword) {
  struct Case {
    std::string url;
    std::string named;
  };
  const std::vector<Case> cases = {
      {"postgresql://app:hunter2@db/x?journal=sqlite:j.db", "failover:"},
      {"failover:", "no primary URL"},
      {"failover:postgresql://app:hunter2@db/x", "journal= is required"},
      {"failover:postgresql://app:hunter2@db/x?schema=s",
       "journal= is required"},
      {"failover:postgresql://app:hunter2@db/x?journal=postgresql://h/j",
       "must be a SQLite URL"},
      {"failover:postgresql://app:hunter2@db/x?journal=sqlite:j.db?mode=x",
       "query of its own"},
      {"failover:failover:sqlite:p.db?journal=sqlite:j.db",
       "another failover URL"},
      {"failover:postgresql://app:hunter2@db/x?journal=sqlite:j.db&"
       "allow_fallback=maybe",
       "allow_fallback='maybe'"},
      {"failover:postgresql://app:hunter2@db/x?journal=sqlite:j.db&"
       "health_check_interval_ms=-1",
       "health_check_interval_ms='-1'"},
      {"failover:postgresql://app:hunter2@db/x?journal=sqlite:j.db&"
       "recovering_append_wait_ms=soon",
       "recovering_append_wait_ms='soon'"},
      {"failover:postgresql://app:hunter2@db/x?journal=sqlite:j.db&"
       "replay_page_size=0",
       "replay_page_size='0'"},
      {"failover:postgresql://app:hunter2@db/x?journal=sqlite:j.db&"
       "read_only=true",
       "read_only=true"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<FailoverUrl> parsed = ParseFailoverUrl(c.url);
    EXPECT_THAT(parsed.status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr(c.named), Not(HasSubstr("hunter2")))))
        << c.url;
  }
}

TEST(ParseFailoverUrlTest, AReplicaOfSomePrefixesNextToTheJournal) {
  ASSERT_OK_AND_ASSIGN(
      FailoverUrl parsed,
      ParseFailoverUrl("failover:postgresql://app:hunter2@db/shop?schema=s&"
                       "journal=sqlite:/var/lib/app/journal.db&"
                       "replica=order-,customer%2Dx,a%2Cb"));
  EXPECT_EQ(parsed.primary_url, "postgresql://app:hunter2@db/shop?schema=s");
  EXPECT_EQ(parsed.replica_url, "sqlite:/var/lib/app/journal.db.replica");
  EXPECT_EQ(parsed.options.replica_options.stream_prefixes,
            (std::vector<std::string>{"order-", "customer-x", "a,b"}));
  const ReplicaOptions defaults;
  EXPECT_EQ(parsed.options.replica_options.batch_size, defaults.batch_size);
  EXPECT_EQ(parsed.options.replica_read_staleness, absl::ZeroDuration());
  EXPECT_EQ(parsed.options.replica, nullptr);
  const std::string& description =
      parsed.options.replica_options.primary_description;
  EXPECT_THAT(description, HasSubstr("@db/shop?schema=s"));
#ifdef EVENTSTORE_TEST_POSTGRES
  EXPECT_EQ(description, "postgresql://app:***@db/shop?schema=s");
#endif
}

TEST(ParseFailoverUrlTest, AReplicaOfEveryStreamWithItsOptions) {
  ASSERT_OK_AND_ASSIGN(
      FailoverUrl parsed,
      ParseFailoverUrl("failover:sqlite:p.db?replica_url=sqlite:///tmp/r.db&"
                       "journal=sqlite:j.db&replica=*&"
                       "replica_staleness_ms=500&replica_batch_size=200&"
                       "wal=true"));
  EXPECT_EQ(parsed.primary_url, "sqlite:p.db?wal=true");
  EXPECT_EQ(parsed.replica_url, "sqlite:///tmp/r.db");
  EXPECT_TRUE(parsed.options.replica_options.stream_prefixes.empty());
  EXPECT_EQ(parsed.options.replica_options.batch_size, 200);
  EXPECT_EQ(parsed.options.replica_read_staleness, absl::Milliseconds(500));
  EXPECT_EQ(parsed.options.replica_options.primary_description,
            "sqlite:p.db?wal=true");

  // A journal in memory: the replica is in memory too.
  ASSERT_OK_AND_ASSIGN(
      parsed,
      ParseFailoverUrl(
          "failover:sqlite::memory:?journal=sqlite::memory:&replica=order-"));
  EXPECT_EQ(parsed.replica_url, "sqlite::memory:");
  // Without replica=: none.
  ASSERT_OK_AND_ASSIGN(parsed,
                       ParseFailoverUrl("failover:sqlite:p.db?journal=sqlite:"
                                        "j.db"));
  EXPECT_EQ(parsed.replica_url, "");
  EXPECT_TRUE(parsed.options.replica_options.stream_prefixes.empty());
  EXPECT_EQ(parsed.options.replica_read_staleness, absl::ZeroDuration());
}

TEST(ParseFailoverUrlTest, RefusesBadReplicaParametersNamingThem) {
  struct Case {
    std::string query;
    std::string named;
  };
  const std::vector<Case> cases = {
      {"replica=", "replica= is empty"},
      {"replica=order-,,x", "prefix 2 is empty"},
      {"replica=order-,", "prefix 2 is empty"},
      {"replica=order-,*", "* stands alone"},
      {"replica=order%zz", "% not followed by two hex digits"},
      {"replica=x&replica_url=postgresql://app:hunter2@db/r",
       "replica_url= must be a SQLite URL"},
      {"replica=x&replica_url=sqlite:r.db?mode=ro", "query of its own"},
      {"replica=x&replica_url=sqlite://host/r.db", "replica_url=: "},
      {"replica=x&replica_url=sqlite:./dir/../j.db",
       "names the journal's file"},
      {"replica=x&replica_staleness_ms=-1", "replica_staleness_ms='-1'"},
      {"replica=x&replica_staleness_ms=3600001",
       "replica_staleness_ms='3600001'"},
      {"replica=x&replica_staleness_ms=soon", "replica_staleness_ms='soon'"},
      {"replica=x&replica_batch_size=0", "replica_batch_size='0'"},
      {"replica=x&replica_batch_size=100001", "replica_batch_size='100001'"},
      {"replica_url=sqlite:r.db", "replica_url= needs replica="},
      {"replica_staleness_ms=10", "replica_staleness_ms= needs replica="},
      {"replica_batch_size=10", "replica_batch_size= needs replica="},
  };
  for (const Case& c : cases) {
    const std::string url = absl::StrCat(
        "failover:postgresql://app:hunter2@db/x?journal=sqlite:", "j.db&",
        c.query);
    EXPECT_THAT(ParseFailoverUrl(url).status(),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr(c.named), Not(HasSubstr("hunter2")))))
        << c.query;
  }
  // A SQLite primary's own file.
  EXPECT_THAT(ParseFailoverUrl("failover:sqlite:p.db?journal=sqlite:j.db&"
                               "replica=*&replica_url=sqlite:p.db")
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("names the primary's file")));
}

// OpenEventStore opens a working FailoverEventStore from a failover URL:
// appends reach the primary file, the journal file is created.
TEST(FailoverUrlOpenTest, OpensAFailoverStoreOverTheUrlsStores) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const std::string primary_url =
      absl::StrCat("sqlite:", dir->File("primary.db"));
  const std::string url = absl::StrCat(
      "failover:", primary_url, "?journal=sqlite:", dir->File("journal.db"),
      "&health_check_interval_ms=0");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         OpenEventStore(url));
    auto* failover = dynamic_cast<FailoverEventStore*>(store.get());
    ASSERT_NE(failover, nullptr);
    EXPECT_EQ(failover->Status().mode, FailoverStatus::Mode::kPrimary);
    ASSERT_OK_AND_ASSIGN(
        AppendResult appended,
        store->Append("order-1", ExpectedVersion::NoStream(), {Event("a")}));
    EXPECT_FALSE(appended.journaled);
  }
  EXPECT_TRUE(FileExists(dir->File("journal.db")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> primary,
                       OpenEventStore(primary_url));
  ASSERT_OK_AND_ASSIGN(const int64_t version,
                       primary->StreamVersion("order-1"));
  EXPECT_EQ(version, 1);
}

// replica=: the store follows the primary into a file next to the
// journal (journal.db.replica), copying only the streams of its prefixes.
TEST(FailoverUrlOpenTest, OpensAReplicaNextToTheJournal) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const std::string url = absl::StrCat(
      "failover:sqlite:", dir->File("primary.db"),
      "?journal=sqlite:", dir->File("journal.db"),
      "&health_check_interval_ms=0&replica=order-&replica_staleness_ms=1000&"
      "replica_batch_size=10");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         OpenEventStore(url));
    auto* failover = dynamic_cast<FailoverEventStore*>(store.get());
    ASSERT_NE(failover, nullptr);
    ASSERT_NE(failover->replica(), nullptr);
    ASSERT_OK(
        store->Append("customer-1", ExpectedVersion::NoStream(), {Event("c")}));
    ASSERT_OK_AND_ASSIGN(
        AppendResult appended,
        store->Append("order-1", ExpectedVersion::NoStream(), {Event("a")}));
    EXPECT_TRUE(failover->replica()->WaitForPosition(appended.last_position,
                                                     absl::Seconds(30)));
    const FailoverStatus status = failover->Status();
    ASSERT_TRUE(status.replica.has_value());
    EXPECT_EQ(status.replica->stream_prefixes,
              std::vector<std::string>{"order-"});
    EXPECT_TRUE(failover->replica()->Covers("order-2"));
    EXPECT_FALSE(failover->replica()->Covers("customer-1"));
  }
  ASSERT_TRUE(FileExists(dir->File("journal.db.replica")));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EventStore> replica,
      OpenEventStore(absl::StrCat("sqlite:", dir->File("journal.db.replica"))));
  ASSERT_OK_AND_ASSIGN(const int64_t order, replica->StreamVersion("order-1"));
  EXPECT_EQ(order, 1);
  ASSERT_OK_AND_ASSIGN(const int64_t customer,
                       replica->StreamVersion("customer-1"));
  EXPECT_EQ(customer, 0);
}

TEST(FailoverUrlOpenTest, AReplicaThatCannotBeOpenedIsNamed) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const absl::Status status =
      OpenEventStore(
          absl::StrCat("failover:sqlite:", dir->File("p.db"),
                       "?journal=sqlite:", dir->File("j.db"),
                       "&health_check_interval_ms=0&replica=*&",
                       "replica_url=sqlite:", dir->File("none/r.db")))
          .status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(),
              HasSubstr(absl::StrCat(
                  "failover: replica sqlite:", dir->File("none/r.db"), ": ")));
}

TEST(FailoverUrlOpenTest, ABadPrimaryOrJournalIsRefused) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  // The primary's own parameter errors come through.
  EXPECT_THAT(
      OpenEventStore(absl::StrCat("failover:sqlite:", dir->File("p.db"),
                                  "?synchronous=sometimes&journal=sqlite:",
                                  dir->File("j.db")))
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("synchronous")));
  // A journal in a directory that does not exist.
  EXPECT_FALSE(
      OpenEventStore(absl::StrCat("failover:sqlite:", dir->File("p.db"),
                                  "?journal=sqlite:", dir->File("none/j.db")))
          .ok());
}

TEST(FailoverPostgresUrlTest, OpensOverAPostgresPrimary) {
  ASSERT_OK_AND_ASSIGN(std::string server_url, SharedPostgresUrl());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const std::string schema = UniqueSchemaName();
  const std::string url =
      absl::StrCat("failover:", server_url, "?schema=", schema,
                   "&journal=sqlite:", dir->File("journal.db"),
                   "&health_check_interval_ms=0");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenEventStore(url));
  ASSERT_NE(dynamic_cast<FailoverEventStore*>(store.get()), nullptr);
  ASSERT_OK(
      store->Append("order-1", ExpectedVersion::NoStream(), {Event("a")}));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EventStore> primary,
      OpenEventStore(absl::StrCat(server_url, "?schema=", schema)));
  ASSERT_OK_AND_ASSIGN(const int64_t version,
                       primary->StreamVersion("order-1"));
  EXPECT_EQ(version, 1);
}

// A replica of a PostgreSQL primary given with a password: the replica
// records the primary's URL masked.
TEST(FailoverPostgresUrlTest, OpensAReplicaOfAPostgresPrimary) {
  ASSERT_OK_AND_ASSIGN(std::string server_url, SharedPostgresUrl());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const std::string schema = UniqueSchemaName();
  // The test server trusts local connections: libpq never sends it.
  std::string with_password = server_url;
  with_password.insert(with_password.find('@'), ":s3cr3t-pw");
  const std::string url =
      absl::StrCat("failover:", with_password, "?schema=", schema,
                   "&journal=sqlite:", dir->File("journal.db"),
                   "&health_check_interval_ms=0&replica=*&replica_url=sqlite:",
                   dir->File("replica.db"));
  AppendResult appended;
  std::string store_id;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         OpenEventStore(url));
    auto* failover = dynamic_cast<FailoverEventStore*>(store.get());
    ASSERT_NE(failover, nullptr);
    ASSERT_NE(failover->replica(), nullptr);
    ASSERT_OK_AND_ASSIGN(appended,
                         store->Append("order-1", ExpectedVersion::NoStream(),
                                       {Event("a"), Event("b")}));
    ASSERT_TRUE(failover->replica()->WaitForPosition(appended.last_position,
                                                     absl::Seconds(30)));
    ASSERT_OK_AND_ASSIGN(store_id, failover->primary().importer().StoreId());
  }
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EventStore> replica,
      OpenEventStore(absl::StrCat("sqlite:", dir->File("replica.db"))));
  ASSERT_OK_AND_ASSIGN(std::optional<MigrationState> state,
                       replica->importer().GetMigration(store_id));
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->events, 2);
  EXPECT_EQ(state->last_source_position, appended.last_position);
  EXPECT_THAT(state->source, HasSubstr(":***@"));
  EXPECT_THAT(state->source, Not(HasSubstr("s3cr3t-pw")));
}

}  // namespace
}  // namespace eventstore::test
