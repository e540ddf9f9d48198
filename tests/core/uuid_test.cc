#include "eventstore/uuid.h"

#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore {
namespace {

using ::eventstore::test::StatusIs;
using ::testing::HasSubstr;

constexpr char kText[] = "0190a3c4-1c2b-7def-8abc-0123456789ab";

TEST(UuidTest, DefaultIsNil) {
  Uuid id;
  EXPECT_TRUE(id.IsNil());
  EXPECT_EQ(id.ToString(), "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(id.bytes(), std::string(16, '\0'));
}

TEST(UuidTest, ParseAndToStringRoundTrip) {
  ASSERT_OK_AND_ASSIGN(Uuid id, Uuid::Parse(kText));
  EXPECT_FALSE(id.IsNil());
  EXPECT_EQ(id.ToString(), kText);
  EXPECT_EQ(id.bytes(), std::string("\x01\x90\xa3\xc4\x1c\x2b\x7d\xef"
                                    "\x8a\xbc\x01\x23\x45\x67\x89\xab",
                                    16));
}

TEST(UuidTest, ParseAcceptsUpperCaseAndPrintsLowerCase) {
  ASSERT_OK_AND_ASSIGN(Uuid upper,
                       Uuid::Parse("0190A3C4-1C2B-7DEF-8ABC-0123456789AB"));
  ASSERT_OK_AND_ASSIGN(Uuid lower, Uuid::Parse(kText));
  EXPECT_EQ(upper, lower);
  EXPECT_EQ(upper.ToString(), kText);
}

TEST(UuidTest, ParseRejectsMalformedText) {
  for (const char* bad : {
           "",
           "0190a3c4-1c2b-7def-8abc-0123456789a",    // 35 characters
           "0190a3c4-1c2b-7def-8abc-0123456789abc",  // 37
           "0190a3c41c2b7def8abc0123456789ab",       // no dashes
           "0190a3c4-1c2b-7def-8abc_0123456789ab",   // '_' for a dash
           "0190a3c4-1c2b-7def8-abc-0123456789ab",   // dash misplaced
           "0190a3c4-1c2b-7def-8abc-0123456789ag",   // 'g'
           "{190a3c4-1c2b-7def-8abc-0123456789ab",
           " 190a3c4-1c2b-7def-8abc-0123456789ab",
           "0190a3c4-1c2b-7def-8abc-0123456789a ",
           "+190a3c4-1c2b-7def-8abc-0123456789ab",
       }) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(Uuid::Parse(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("event id")));
  }
}

TEST(UuidTest, FromBytes) {
  const std::string bytes(
      "\x01\x90\xa3\xc4\x1c\x2b\x7d\xef"
      "\x8a\xbc\x01\x23\x45\x67\x89\xab",
      16);
  ASSERT_OK_AND_ASSIGN(Uuid id, Uuid::FromBytes(bytes));
  EXPECT_EQ(id.ToString(), kText);
  EXPECT_EQ(id.bytes(), bytes);
  EXPECT_THAT(Uuid::FromBytes(bytes.substr(0, 15)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Uuid::FromBytes(bytes + "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Uuid::FromBytes(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(UuidTest, GenerateMakesVersion7WithRfcVariant) {
  for (int i = 0; i < 100; ++i) {
    const Uuid id = Uuid::Generate();
    ASSERT_FALSE(id.IsNil());
    const std::string_view b = id.bytes();
    EXPECT_EQ(static_cast<uint8_t>(b[6]) >> 4, 7) << id;
    EXPECT_EQ(static_cast<uint8_t>(b[8]) >> 6, 2) << id;
    const std::string text = id.ToString();
    EXPECT_EQ(text[14], '7') << text;
    ASSERT_OK_AND_ASSIGN(Uuid parsed, Uuid::Parse(text));
    EXPECT_EQ(parsed, id);
  }
}

TEST(UuidTest, GenerateIsUniqueAndTimeOrderedByMillisecond) {
  std::vector<Uuid> ids;
  for (int i = 0; i < 10000; ++i) ids.push_back(Uuid::Generate());
  absl::flat_hash_set<Uuid> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  // The first 48 bits are a millisecond timestamp: never decreasing along
  // one thread.
  for (size_t i = 1; i < ids.size(); ++i) {
    ASSERT_LE(ids[i - 1].bytes().substr(0, 6), ids[i].bytes().substr(0, 6))
        << ids[i - 1] << " then " << ids[i];
  }
}

TEST(UuidTest, ConcurrentGenerateIsUnique) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<Uuid>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&per_thread, t] {
      for (int i = 0; i < kPerThread; ++i) {
        per_thread[t].push_back(Uuid::Generate());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::flat_hash_set<Uuid> unique;
  for (const auto& ids : per_thread) unique.insert(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(UuidTest, ComparisonAndStreaming) {
  ASSERT_OK_AND_ASSIGN(Uuid a,
                       Uuid::Parse("00000000-0000-0000-0000-000000000001"));
  ASSERT_OK_AND_ASSIGN(Uuid b,
                       Uuid::Parse("00000000-0000-0000-0000-000000000002"));
  ASSERT_OK_AND_ASSIGN(Uuid c,
                       Uuid::Parse("01000000-0000-0000-0000-000000000000"));
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_FALSE(b < a);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, a);
  std::set<Uuid> ordered = {c, a, b};
  EXPECT_THAT(ordered, ::testing::ElementsAre(a, b, c));
  std::ostringstream os;
  os << c;
  EXPECT_EQ(os.str(), "01000000-0000-0000-0000-000000000000");
}

}  // namespace
}  // namespace eventstore
