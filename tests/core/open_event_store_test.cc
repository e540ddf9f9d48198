#include "eventstore/open_event_store.h"

#include <stdlib.h>

#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "eventstore/event_data.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/test/v1/legacy.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore {
namespace {

using ::eventstore::test::StatusIs;
using ::eventstore::test::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

// Sets an environment variable for the scope, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value == nullptr) {
      unsetenv(name);
    } else {
      setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    if (old_.has_value()) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(OpenEventStoreTest, UnknownSchemeIsInvalidArgumentNamingTheUrl) {
  for (const char* url :
       {"mysql://user@host/db", "file:events.db", "sqlite3:events.db"}) {
    SCOPED_TRACE(url);
    EXPECT_THAT(OpenEventStore(url),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("url")));
  }
}

TEST(OpenEventStoreTest, NoSchemeIsInvalidArgument) {
  for (const char* url : {"", "events.db", "/tmp/events.db"}) {
    SCOPED_TRACE(url);
    EXPECT_THAT(OpenEventStore(url),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(OpenEventStoreTest, BarePathSuggestsTheSqliteUrl) {
  EXPECT_THAT(OpenEventStore("events.db"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("sqlite:events.db")));
  // A libpq key=value string may hold a password: never echoed.
  const auto conninfo = OpenEventStore("host=db password=hunter2");
  EXPECT_THAT(conninfo, StatusIs(absl::StatusCode::kInvalidArgument,
                                 Not(HasSubstr("hunter2"))));
}

TEST(OpenEventStoreTest, BadSqliteUrlIsInvalidArgument) {
  EXPECT_THAT(OpenEventStore("sqlite:"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OpenEventStore("sqlite::memory:?no_such_option=1"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no_such_option")));
  EXPECT_THAT(
      OpenEventStore("sqlite::memory:?synchronous=sometimes"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("synchronous")));
}

TEST(OpenEventStoreTest, MemoryUrlOpensAWorkingStore) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore("sqlite::memory:"));
  test::v1::OrderPlaced placed;
  placed.set_order_id("o-1");
  const std::vector<EventData> events = {EventData::From(placed)};
  ASSERT_OK_AND_ASSIGN(
      AppendResult r,
      store->Append("order-1", ExpectedVersion::NoStream(), events));
  EXPECT_EQ(r.next_expected_version, 1);
  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("order-1"));
  EXPECT_EQ(version, 1);
}

TEST(OpenEventStoreTest, WithoutUrlUsesEnvironment) {
  {
    ScopedEnv env("EVENTSTORE_URL", "nosuchscheme://x");
    EXPECT_THAT(OpenEventStore(), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("nosuchscheme")));
  }
  {
    ScopedEnv env("EVENTSTORE_URL", "sqlite::memory:");
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenEventStore());
    ASSERT_OK_AND_ASSIGN(Position head, store->HeadPosition());
    EXPECT_TRUE(head.IsStart());
  }
}

// --- OpenOptions: the same options whatever the URL's backend -------------

// A backend as a URL of a store that does not exist yet.
struct UrlBackend {
  std::string name;
  std::function<absl::StatusOr<std::string>(const TempDir& dir)> new_url;
};

// So that gtest prints a parameter as its name.
void PrintTo(const UrlBackend& backend, std::ostream* os) {
  *os << backend.name;
}

std::vector<UrlBackend> UrlBackends() {
  std::vector<UrlBackend> backends = {
      {"sqlite",
       [](const TempDir& dir) -> absl::StatusOr<std::string> {
         return absl::StrCat("sqlite://", dir.File("events.db"));
       }},
  };
#ifdef EVENTSTORE_TEST_POSTGRES
  backends.push_back(
      {"postgres", [](const TempDir&) -> absl::StatusOr<std::string> {
         absl::StatusOr<std::string> server = test::SharedPostgresUrl();
         if (!server.ok()) return server.status();
         return absl::StrCat(*server,
                             absl::StrContains(*server, "?") ? "&" : "?",
                             "schema=", test::UniqueSchemaName());
       }});
#endif
  return backends;
}

class OpenOptionsTest : public ::testing::TestWithParam<UrlBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    ASSERT_OK_AND_ASSIGN(url_, GetParam().new_url(*dir_));
  }

  std::unique_ptr<TempDir> dir_;
  std::string url_;
};

TEST_P(OpenOptionsTest, LimitsApplyToAppends) {
  OpenOptions options;
  options.limits.max_stream_name_bytes = 8;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore(url_, options));
  test::v1::OrderPlaced placed;
  const std::vector<EventData> events = {EventData::From(placed)};
  EXPECT_THAT(
      store->Append("order-123", ExpectedVersion::Any(), events),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream")));
  ASSERT_OK(store->Append("order-12", ExpectedVersion::Any(), events).status());
}

TEST_P(OpenOptionsTest, TypeRegistryUpcastsReads) {
  auto registry = std::make_shared<TypeRegistry>();
  registry->Register<test::v1::NewName>();
  registry->AddRename("eventstore.test.v1.OldName",
                      "eventstore.test.v1.NewName");
  OpenOptions options;
  options.type_registry = registry;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore(url_, options));
  test::v1::OldName old;
  old.set_value("v");
  const std::vector<EventData> events = {EventData::From(old)};
  ASSERT_OK(store->Append("s-1", ExpectedVersion::NoStream(), events).status());
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       store->ReadStream("s-1"));
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].type, "eventstore.test.v1.NewName");
  ASSERT_OK_AND_ASSIGN(test::v1::NewName renamed,
                       registry->Decode<test::v1::NewName>(read[0]));
  EXPECT_EQ(renamed.value(), "v");
}

TEST_P(OpenOptionsTest, CreateIfMissingFalseCreatesNothing) {
  OpenOptions options;
  options.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<EventStore>> absent =
      OpenEventStore(url_, options);
  EXPECT_THAT(absent, StatusIs(absl::StatusCode::kNotFound));
  // Still absent: opening it with the default creates it, empty.
  options.create_if_missing = true;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore(url_, options));
  ASSERT_OK_AND_ASSIGN(Position head, store->HeadPosition());
  EXPECT_TRUE(head.IsStart());
}

TEST_P(OpenOptionsTest, ReadOnlyFromTheUrlCombinesWithTheOptions) {
  const std::string read_only = absl::StrCat(
      url_, absl::StrContains(url_, "?") ? "&" : "?", "read_only=true");
  OpenOptions options;
  options.limits.max_stream_name_bytes = 8;
  EXPECT_THAT(OpenEventStore(read_only, options),
              StatusIs(absl::StatusCode::kNotFound));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> writer,
                         OpenEventStore(url_, options));
    test::v1::OrderPlaced placed;
    const std::vector<EventData> events = {EventData::From(placed)};
    ASSERT_OK(writer->Append("o-1", ExpectedVersion::NoStream(), events));
  }
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore(read_only, options));
  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("o-1"));
  EXPECT_EQ(version, 1);
  test::v1::OrderPlaced placed;
  const std::vector<EventData> events = {EventData::From(placed)};
  // The limits still apply first; a valid append is refused as read-only.
  EXPECT_THAT(store->Append("order-123", ExpectedVersion::Any(), events),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      store->Append("o-1", ExpectedVersion::Any(), events),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("read-only")));
}

TEST_P(OpenOptionsTest, WithoutUrlUsesEnvironmentWithTheOptions) {
  ScopedEnv env("EVENTSTORE_URL", url_.c_str());
  OpenOptions options;
  options.limits.max_payload_bytes = 4;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore(options));
  EventData event;
  event.type = "eventstore.test.v1.OrderPlaced";
  event.payload = "12345";
  const std::vector<EventData> events = {event};
  EXPECT_THAT(
      store->Append("s-1", ExpectedVersion::Any(), events),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("payload")));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, OpenOptionsTest,
                         ::testing::ValuesIn(UrlBackends()),
                         [](const ::testing::TestParamInfo<UrlBackend>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace eventstore
