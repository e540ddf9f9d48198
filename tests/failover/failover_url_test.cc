// Failover URLs: ParseFailoverUrl's parts and refusals, and OpenEventStore
// opening a FailoverEventStore from one (a SQLite primary; PostgreSQL in
// the FailoverPostgres* group).

#include "eventstore/failover_url.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
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
                       "health_check_interval_ms=250&replay_page_size=50"));
  EXPECT_EQ(parsed.primary_url,
            "postgresql://app:pw@db/shop?schema=events&pool_size=4");
  EXPECT_EQ(parsed.journal_url, "sqlite:/var/lib/app/journal.db");
  EXPECT_TRUE(parsed.options.allow_fallback);
  EXPECT_EQ(parsed.options.health_check_interval, absl::Milliseconds(250));
  EXPECT_EQ(parsed.options.replay_page_size, 50);
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
  EXPECT_THAT(ParseFailoverUrl("failover:sqlite:p.db?journal=sqlite:j.db&"
                               "replica=order-")
                  .status(),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("replica")));
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

}  // namespace
}  // namespace eventstore::test
