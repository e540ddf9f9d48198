#include "eventstore/open_event_store.h"

#include <stdlib.h>

#include <memory>
#include <optional>
#include <string>

#include "eventstore/event_data.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore {
namespace {

using ::eventstore::test::StatusIs;
using ::testing::HasSubstr;

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

}  // namespace
}  // namespace eventstore
