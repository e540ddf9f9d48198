// The status assertions themselves: they pass on OK and fail otherwise,
// printing the status.

#include "tests/support/status_matchers.h"

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace eventstore::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<int> Seven() { return 7; }
absl::StatusOr<int> Broken() { return absl::NotFoundError("no seven here"); }

TEST(StatusMatchersTest, ExpectOkPassesOnOk) {
  EXPECT_OK(absl::OkStatus());
  EXPECT_OK(Seven());
  ASSERT_OK(absl::OkStatus());
  ASSERT_OK(Seven());
}

TEST(StatusMatchersTest, ExpectOkFailsAndPrintsTheStatus) {
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(absl::InternalError("boom")), "boom");
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(Broken()), "no seven here");
  EXPECT_FATAL_FAILURE(ASSERT_OK(absl::InternalError("bang")), "bang");
  EXPECT_FATAL_FAILURE(ASSERT_OK(Broken()), "NOT_FOUND");
}

TEST(StatusMatchersTest, AssertOkAndAssign) {
  ASSERT_OK_AND_ASSIGN(int seven, Seven());
  EXPECT_EQ(seven, 7);
  std::string text;
  ASSERT_OK_AND_ASSIGN(text, absl::StatusOr<std::string>("moved"));
  EXPECT_EQ(text, "moved");
}

void AssignBroken() {
  ASSERT_OK_AND_ASSIGN(int value, Broken());
  (void)value;
  ADD_FAILURE() << "not reached";
}

TEST(StatusMatchersTest, AssertOkAndAssignFailsAndReturns) {
  EXPECT_FATAL_FAILURE(AssignBroken(), "no seven here");
}

TEST(StatusMatchersTest, StatusIsAndIsOk) {
  EXPECT_THAT(Broken(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Broken(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("seven")));
  EXPECT_THAT(Broken(), Not(StatusIs(absl::StatusCode::kInternal)));
  EXPECT_THAT(Broken(),
              Not(StatusIs(absl::StatusCode::kNotFound, HasSubstr("eight"))));
  EXPECT_THAT(absl::AbortedError("x"),
              StatusIs(absl::StatusCode::kAborted, "x"));
  EXPECT_THAT(Seven(), IsOk());
  EXPECT_THAT(absl::OkStatus(), IsOk());
  EXPECT_THAT(Broken(), Not(IsOk()));
  EXPECT_NONFATAL_FAILURE(
      EXPECT_THAT(Broken(), StatusIs(absl::StatusCode::kAborted)),
      "no seven here");
}

}  // namespace
}  // namespace eventstore::test
