#include "eventstore/errors.h"

#include <optional>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore {
namespace {

using ::eventstore::test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(ErrorsTest, WrongExpectedVersionErrorIsAbortedAndNamesEverything) {
  const absl::Status status =
      WrongExpectedVersionError("order-1", ExpectedVersion::Exactly(3), 5);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kAborted,
                               AllOf(HasSubstr("order-1"), HasSubstr("3"),
                                     HasSubstr("5"))));
  EXPECT_TRUE(IsWrongExpectedVersion(status));
}

TEST(ErrorsTest, GetWrongExpectedVersionRoundTripsEachKind) {
  for (ExpectedVersion expected :
       {ExpectedVersion::Any(), ExpectedVersion::NoStream(),
        ExpectedVersion::StreamExists(), ExpectedVersion::Exactly(0),
        ExpectedVersion::Exactly(41)}) {
    SCOPED_TRACE(expected.ToString());
    const absl::Status status =
        WrongExpectedVersionError("cart-7", expected, 12);
    std::optional<WrongExpectedVersionInfo> info =
        GetWrongExpectedVersion(status);
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->stream, "cart-7");
    EXPECT_EQ(info->expected, expected);
    EXPECT_EQ(info->actual, 12);
  }
}

TEST(ErrorsTest, ActualZeroMeansAbsent) {
  std::optional<WrongExpectedVersionInfo> info = GetWrongExpectedVersion(
      WrongExpectedVersionError("s", ExpectedVersion::StreamExists(), 0));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->actual, 0);
}

TEST(ErrorsTest, StreamNameWithUnusualBytesSurvives) {
  const std::string stream = "caf\xc3\xa9-1/\"quoted\"";
  std::optional<WrongExpectedVersionInfo> info = GetWrongExpectedVersion(
      WrongExpectedVersionError(stream, ExpectedVersion::Exactly(1), 2));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->stream, stream);
}

TEST(ErrorsTest, OtherStatusesAreNotWrongExpectedVersion) {
  for (const absl::Status& status :
       {absl::OkStatus(), absl::AbortedError("wrong expected version"),
        absl::AlreadyExistsError("dup"), absl::UnavailableError("down")}) {
    SCOPED_TRACE(status.ToString());
    EXPECT_FALSE(IsWrongExpectedVersion(status));
    EXPECT_FALSE(GetWrongExpectedVersion(status).has_value());
  }
}

TEST(ErrorsTest, PayloadOnAnotherCodeIsNotWrongExpectedVersion) {
  const absl::Status original =
      WrongExpectedVersionError("s", ExpectedVersion::Exactly(1), 2);
  // Same payload, another code (e.g. a caller re-wrapping the status).
  absl::Status other(absl::StatusCode::kUnavailable, original.message());
  original.ForEachPayload(
      [&other](absl::string_view url, const absl::Cord& payload) {
        other.SetPayload(url, payload);
      });
  EXPECT_FALSE(IsWrongExpectedVersion(other));
  EXPECT_FALSE(GetWrongExpectedVersion(other).has_value());
}

}  // namespace
}  // namespace eventstore
