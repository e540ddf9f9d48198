#include "eventstore/expected_version.h"

#include <cstdint>
#include <sstream>

#include "gtest/gtest.h"

namespace eventstore {
namespace {

using Kind = ExpectedVersion::Kind;

TEST(ExpectedVersionTest, Kinds) {
  EXPECT_EQ(ExpectedVersion::Any().kind(), Kind::kAny);
  EXPECT_EQ(ExpectedVersion::NoStream().kind(), Kind::kNoStream);
  EXPECT_EQ(ExpectedVersion::StreamExists().kind(), Kind::kStreamExists);
  EXPECT_EQ(ExpectedVersion::Exactly(3).kind(), Kind::kExactly);
  EXPECT_EQ(ExpectedVersion::Exactly(3).version(), 3);
}

TEST(ExpectedVersionTest, AnyMatchesEverything) {
  for (int64_t v : {0, 1, 2, 1000}) {
    EXPECT_TRUE(ExpectedVersion::Any().Matches(v)) << v;
  }
}

TEST(ExpectedVersionTest, NoStreamMatchesOnlyZero) {
  EXPECT_TRUE(ExpectedVersion::NoStream().Matches(0));
  EXPECT_FALSE(ExpectedVersion::NoStream().Matches(1));
  EXPECT_FALSE(ExpectedVersion::NoStream().Matches(7));
}

TEST(ExpectedVersionTest, StreamExistsMatchesAnyPositiveVersion) {
  EXPECT_FALSE(ExpectedVersion::StreamExists().Matches(0));
  EXPECT_TRUE(ExpectedVersion::StreamExists().Matches(1));
  EXPECT_TRUE(ExpectedVersion::StreamExists().Matches(99));
}

TEST(ExpectedVersionTest, ExactlyMatchesOnlyItsVersion) {
  EXPECT_TRUE(ExpectedVersion::Exactly(3).Matches(3));
  EXPECT_FALSE(ExpectedVersion::Exactly(3).Matches(2));
  EXPECT_FALSE(ExpectedVersion::Exactly(3).Matches(4));
  EXPECT_FALSE(ExpectedVersion::Exactly(3).Matches(0));
  // Exactly(0) is the NoStream condition.
  EXPECT_TRUE(ExpectedVersion::Exactly(0).Matches(0));
  EXPECT_FALSE(ExpectedVersion::Exactly(0).Matches(1));
}

TEST(ExpectedVersionTest, WireForm) {
  EXPECT_EQ(ExpectedVersion::Any().ToWire(), -1);
  EXPECT_EQ(ExpectedVersion::NoStream().ToWire(), -2);
  EXPECT_EQ(ExpectedVersion::StreamExists().ToWire(), -3);
  EXPECT_EQ(ExpectedVersion::Exactly(0).ToWire(), 0);
  EXPECT_EQ(ExpectedVersion::Exactly(17).ToWire(), 17);
  for (ExpectedVersion v :
       {ExpectedVersion::Any(), ExpectedVersion::NoStream(),
        ExpectedVersion::StreamExists(), ExpectedVersion::Exactly(0),
        ExpectedVersion::Exactly(1), ExpectedVersion::Exactly(1234567)}) {
    EXPECT_EQ(ExpectedVersion::FromWire(v.ToWire()), v) << v;
  }
  EXPECT_EQ(ExpectedVersion::FromWire(-4), ExpectedVersion::Any());
  EXPECT_EQ(ExpectedVersion::FromWire(-1000), ExpectedVersion::Any());
}

TEST(ExpectedVersionTest, ToString) {
  EXPECT_EQ(ExpectedVersion::Any().ToString(), "any");
  EXPECT_EQ(ExpectedVersion::NoStream().ToString(), "no stream");
  EXPECT_EQ(ExpectedVersion::StreamExists().ToString(), "stream exists");
  EXPECT_EQ(ExpectedVersion::Exactly(12).ToString(), "12");
  std::ostringstream os;
  os << ExpectedVersion::Exactly(5);
  EXPECT_EQ(os.str(), "5");
}

TEST(ExpectedVersionTest, Equality) {
  EXPECT_EQ(ExpectedVersion::Exactly(2), ExpectedVersion::Exactly(2));
  EXPECT_NE(ExpectedVersion::Exactly(2), ExpectedVersion::Exactly(3));
  EXPECT_NE(ExpectedVersion::Any(), ExpectedVersion::NoStream());
  EXPECT_NE(ExpectedVersion::NoStream(), ExpectedVersion::StreamExists());
}

}  // namespace
}  // namespace eventstore
