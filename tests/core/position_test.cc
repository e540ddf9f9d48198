#include "eventstore/position.h"

#include <cstdint>
#include <limits>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore {
namespace {

using ::eventstore::test::StatusIs;
using ::testing::HasSubstr;

TEST(PositionTest, StartIsDefaultAndZero) {
  constexpr Position start = Position::Start();
  EXPECT_TRUE(start.IsStart());
  EXPECT_EQ(start, Position());
  EXPECT_EQ(start.commit(), 0u);
  EXPECT_EQ(start.prepare(), 0u);
  EXPECT_EQ(start.ToString(), "0");
  EXPECT_FALSE(Position::At(1).IsStart());
  EXPECT_FALSE(Position::FromParts(0, 1).IsStart());
}

TEST(PositionTest, AtSetsBothParts) {
  const Position p = Position::At(42);
  EXPECT_EQ(p.commit(), 42u);
  EXPECT_EQ(p.prepare(), 42u);
  EXPECT_EQ(p, Position::FromParts(42, 42));
  EXPECT_EQ(p.ToString(), "42");
}

TEST(PositionTest, ToStringOfDistinctParts) {
  EXPECT_EQ(Position::FromParts(7, 3).ToString(), "7/3");
  EXPECT_EQ(Position::FromParts(0, 5).ToString(), "0/5");
  std::ostringstream os;
  os << Position::FromParts(7, 3) << " " << Position::At(9);
  EXPECT_EQ(os.str(), "7/3 9");
}

TEST(PositionTest, OrderedCommitFirst) {
  EXPECT_LT(Position::Start(), Position::At(1));
  EXPECT_LT(Position::At(1), Position::At(2));
  EXPECT_LT(Position::FromParts(1, 9), Position::FromParts(2, 0));
  EXPECT_LT(Position::FromParts(2, 0), Position::FromParts(2, 1));
  EXPECT_GT(Position::FromParts(3, 0), Position::FromParts(2, 100));
  EXPECT_LE(Position::At(2), Position::At(2));
  EXPECT_GE(Position::At(2), Position::At(2));
  EXPECT_FALSE(Position::At(2) < Position::At(2));
  EXPECT_NE(Position::FromParts(1, 2), Position::FromParts(2, 1));
}

TEST(PositionTest, ParseRoundTrips) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  for (const Position p :
       {Position::Start(), Position::At(1), Position::At(123456789),
        Position::FromParts(5, 2), Position::FromParts(0, 7),
        Position::At(kMax), Position::FromParts(kMax, 1)}) {
    SCOPED_TRACE(p.ToString());
    ASSERT_OK_AND_ASSIGN(Position parsed, Position::Parse(p.ToString()));
    EXPECT_EQ(parsed, p);
  }
  ASSERT_OK_AND_ASSIGN(Position same_parts, Position::Parse("4/4"));
  EXPECT_EQ(same_parts, Position::At(4));
}

TEST(PositionTest, ParseRejectsWhatToStringNeverWrites) {
  for (const char* bad : {"", "/", "1/", "/1", "x", "1x", "-1", "+1", "1/2/3",
                          "1.5", "1/-2", "18446744073709551616"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(
        Position::Parse(bad),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("position")));
  }
}

// Only the exact forms ToString() writes: a checkpoint that was edited or
// damaged (a sign, white space) is refused rather than read as another
// position.
TEST(PositionTest, ParseRejectsSignsAndWhiteSpaceInEitherPart) {
  for (const char* bad :
       {" 1", "1 ", "\t1", "1\n", "1/ 2", "1 /2", "1/2 ", "1/+2", "+1/2"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(
        Position::Parse(bad),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("position")));
  }
}

TEST(PositionTest, Hashable) {
  absl::flat_hash_set<Position> set = {Position::At(1), Position::At(1),
                                       Position::FromParts(1, 2)};
  EXPECT_EQ(set.size(), 2u);
  EXPECT_TRUE(set.contains(Position::FromParts(1, 2)));
}

}  // namespace
}  // namespace eventstore
