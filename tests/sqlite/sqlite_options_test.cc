#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore {
namespace {

using ::eventstore::test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Synchronous = SqliteOptions::Synchronous;

TEST(SqliteOptionsTest, Defaults) {
  const SqliteOptions options;
  EXPECT_EQ(options.path, "");
  EXPECT_EQ(options.synchronous, Synchronous::kFull);
  EXPECT_TRUE(options.wal);
  EXPECT_EQ(options.busy_timeout, absl::Seconds(5));
  EXPECT_EQ(options.max_readers, 4);
  EXPECT_TRUE(options.create_if_missing);
  EXPECT_EQ(options.type_registry, nullptr);
  EXPECT_EQ(options.limits.max_payload_bytes, 4u << 20);
}

TEST(SqliteOptionsTest, FromUrlMemory) {
  ASSERT_OK_AND_ASSIGN(SqliteOptions options,
                       SqliteOptions::FromUrl("sqlite::memory:"));
  EXPECT_EQ(options.path, ":memory:");
  // No parameters: the defaults.
  const SqliteOptions defaults;
  EXPECT_EQ(options.synchronous, defaults.synchronous);
  EXPECT_EQ(options.wal, defaults.wal);
  EXPECT_EQ(options.busy_timeout, defaults.busy_timeout);
  EXPECT_EQ(options.max_readers, defaults.max_readers);
  EXPECT_EQ(options.create_if_missing, defaults.create_if_missing);
}

TEST(SqliteOptionsTest, FromUrlAbsoluteAndRelativePaths) {
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions absolute,
      SqliteOptions::FromUrl("sqlite:///var/lib/app/events.db"));
  EXPECT_EQ(absolute.path, "/var/lib/app/events.db");
  ASSERT_OK_AND_ASSIGN(SqliteOptions relative,
                       SqliteOptions::FromUrl("sqlite:events.db"));
  EXPECT_EQ(relative.path, "events.db");
  ASSERT_OK_AND_ASSIGN(SqliteOptions nested,
                       SqliteOptions::FromUrl("sqlite:data/events.db"));
  EXPECT_EQ(nested.path, "data/events.db");
}

TEST(SqliteOptionsTest, FromUrlParameters) {
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions options,
      SqliteOptions::FromUrl("sqlite:///tmp/e.db?synchronous=normal&wal=false"
                             "&busy_timeout_ms=250&max_readers=2"));
  EXPECT_EQ(options.path, "/tmp/e.db");
  EXPECT_EQ(options.synchronous, Synchronous::kNormal);
  EXPECT_FALSE(options.wal);
  EXPECT_EQ(options.busy_timeout, absl::Milliseconds(250));
  EXPECT_EQ(options.max_readers, 2);

  ASSERT_OK_AND_ASSIGN(SqliteOptions memory,
                       SqliteOptions::FromUrl("sqlite::memory:?wal=true"));
  EXPECT_EQ(memory.path, ":memory:");
  EXPECT_TRUE(memory.wal);
}

TEST(SqliteOptionsTest, FromUrlSynchronousValues) {
  const std::pair<const char*, Synchronous> cases[] = {
      {"off", Synchronous::kOff},
      {"normal", Synchronous::kNormal},
      {"full", Synchronous::kFull},
      {"extra", Synchronous::kExtra},
  };
  for (const auto& [text, value] : cases) {
    SCOPED_TRACE(text);
    ASSERT_OK_AND_ASSIGN(
        SqliteOptions options,
        SqliteOptions::FromUrl(std::string("sqlite:e.db?synchronous=") + text));
    EXPECT_EQ(options.synchronous, value);
  }
}

TEST(SqliteOptionsTest, FromUrlUnknownParameterIsNamed) {
  EXPECT_THAT(
      SqliteOptions::FromUrl("sqlite:e.db?journal=wal"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("journal")));
  EXPECT_THAT(
      SqliteOptions::FromUrl("sqlite:e.db?synchronous=full&cache_size=10"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cache_size")));
}

TEST(SqliteOptionsTest, FromUrlBadValuesAreNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"sqlite:e.db?synchronous=fast", "synchronous"},
      {"sqlite:e.db?synchronous=", "synchronous"},
      {"sqlite:e.db?wal=maybe", "wal"},
      {"sqlite:e.db?busy_timeout_ms=soon", "busy_timeout_ms"},
      {"sqlite:e.db?busy_timeout_ms=-5", "busy_timeout_ms"},
      {"sqlite:e.db?max_readers=many", "max_readers"},
  };
  for (const auto& [url, part] : cases) {
    SCOPED_TRACE(url);
    EXPECT_THAT(SqliteOptions::FromUrl(url),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(part)));
  }
}

TEST(SqliteOptionsTest, FromUrlNumbersOutOfRangeNameTheRange) {
  // 2^31 ms would have been cast to a negative int (appends then failed at
  // once); 9999999999 ms silently became 16 days.
  for (const char* value : {"2147483648", "9999999999", "99999999999999999"}) {
    SCOPED_TRACE(value);
    EXPECT_THAT(SqliteOptions::FromUrl(
                    absl::StrCat("sqlite:e.db?busy_timeout_ms=", value)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("busy_timeout_ms"),
                               HasSubstr("from 0 to 2147483647"))));
  }
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions options,
      SqliteOptions::FromUrl("sqlite:e.db?busy_timeout_ms=2147483647"));
  EXPECT_EQ(options.busy_timeout, absl::Milliseconds(2147483647));
  for (const char* value : {"0", "1025", "4294967297"}) {
    SCOPED_TRACE(value);
    EXPECT_THAT(
        SqliteOptions::FromUrl(absl::StrCat("sqlite:e.db?max_readers=", value)),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 AllOf(HasSubstr("max_readers"), HasSubstr("from 1 to 1024"))));
  }
}

TEST(SqliteOptionsTest, FromUrlReadOnlyAndUpgradeSchema) {
  const SqliteOptions defaults;
  EXPECT_FALSE(defaults.read_only);
  EXPECT_TRUE(defaults.upgrade_schema);
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions options,
      SqliteOptions::FromUrl("sqlite:e.db?read_only=true&upgrade_schema=off"));
  EXPECT_TRUE(options.read_only);
  EXPECT_FALSE(options.upgrade_schema);
  EXPECT_THAT(
      SqliteOptions::FromUrl("sqlite:e.db?read_only=perhaps"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("read_only")));
}

TEST(SqliteOptionsTest, FromUrlVerifyChecksums) {
  EXPECT_TRUE(SqliteOptions().verify_checksums);
  ASSERT_OK_AND_ASSIGN(SqliteOptions defaults,
                       SqliteOptions::FromUrl("sqlite:e.db"));
  EXPECT_TRUE(defaults.verify_checksums);
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions off,
      SqliteOptions::FromUrl("sqlite:e.db?verify_checksums=false"));
  EXPECT_FALSE(off.verify_checksums);
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions on,
      SqliteOptions::FromUrl("sqlite:e.db?verify_checksums=true"));
  EXPECT_TRUE(on.verify_checksums);
  EXPECT_THAT(SqliteOptions::FromUrl("sqlite:e.db?verify_checksums=sometimes"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("verify_checksums='sometimes'"),
                             HasSubstr("not true or false"))));
}

TEST(SqliteOptionsTest, FromUrlBackgroundCheckpoint) {
  EXPECT_TRUE(SqliteOptions().background_checkpoint);
  ASSERT_OK_AND_ASSIGN(SqliteOptions defaults,
                       SqliteOptions::FromUrl("sqlite:e.db"));
  EXPECT_TRUE(defaults.background_checkpoint);
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions off,
      SqliteOptions::FromUrl("sqlite:e.db?background_checkpoint=false"));
  EXPECT_FALSE(off.background_checkpoint);
  // Only its own field: the other booleans keep their defaults.
  EXPECT_TRUE(off.wal);
  EXPECT_FALSE(off.read_only);
  EXPECT_TRUE(off.upgrade_schema);
  EXPECT_TRUE(off.verify_checksums);
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions on,
      SqliteOptions::FromUrl("sqlite:e.db?background_checkpoint=true"));
  EXPECT_TRUE(on.background_checkpoint);
  // And the other booleans do not set it.
  ASSERT_OK_AND_ASSIGN(
      SqliteOptions others,
      SqliteOptions::FromUrl("sqlite:e.db?verify_checksums=false&wal=false"
                             "&upgrade_schema=false"));
  EXPECT_TRUE(others.background_checkpoint);
  EXPECT_THAT(SqliteOptions::FromUrl("sqlite:e.db?background_checkpoint=maybe"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("background_checkpoint='maybe'"),
                             HasSubstr("not true or false"))));
}

TEST(SqliteOptionsTest, FromUrlUnknownParameterListsBackgroundCheckpoint) {
  EXPECT_THAT(SqliteOptions::FromUrl("sqlite:e.db?checkpoint=off"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("unknown parameter 'checkpoint'"),
                             HasSubstr("background_checkpoint"))));
}

TEST(SqliteOptionsTest, FromUrlRefusesANulByte) {
  // SQLite would open the file named by the part before the NUL.
  const std::string url("sqlite:a\0b.db", 13);
  EXPECT_THAT(SqliteOptions::FromUrl(url),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
}

TEST(SqliteOptionsTest, FromUrlEmptyPathIsNamed) {
  for (const char* url : {"sqlite:", "sqlite:?synchronous=full", "sqlite://"}) {
    SCOPED_TRACE(url);
    EXPECT_THAT(
        SqliteOptions::FromUrl(url),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("path")));
  }
}

TEST(SqliteOptionsTest, FromUrlOtherSchemesAreInvalid) {
  for (const char* url :
       {"postgresql://u@h/db", "sqlite3:e.db", "file:e.db", "e.db", ""}) {
    SCOPED_TRACE(url);
    EXPECT_THAT(SqliteOptions::FromUrl(url),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

}  // namespace
}  // namespace eventstore
