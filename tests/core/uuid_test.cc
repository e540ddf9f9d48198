#include "eventstore/uuid.h"

#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
#include "eventstore/internal/uuid_v7_sequence.h"
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

// The first 48 bits, the generation time in Unix milliseconds.
int64_t UnixMillisOf(const Uuid& id) {
  int64_t ms = 0;
  for (int i = 0; i < 6; ++i) {
    ms = ms << 8 | static_cast<uint8_t>(id.bytes()[i]);
  }
  return ms;
}

TEST(UuidTest, GenerateStrictlyIncreasesInATightLoop) {
  // Far more ids than milliseconds pass: most share one with their
  // neighbour, and the counter must still order them.
  constexpr int kIds = 100000;
  std::vector<Uuid> ids;
  ids.reserve(kIds);
  for (int i = 0; i < kIds; ++i) ids.push_back(Uuid::Generate());
  int same_millisecond = 0;
  for (size_t i = 1; i < ids.size(); ++i) {
    ASSERT_LT(ids[i - 1].bytes(), ids[i].bytes())
        << "id " << i << ": " << ids[i - 1] << " then " << ids[i];
    ASSERT_LT(ids[i - 1].ToString(), ids[i].ToString());
    ASSERT_LT(ids[i - 1], ids[i]);
    if (UnixMillisOf(ids[i - 1]) == UnixMillisOf(ids[i])) ++same_millisecond;
  }
  EXPECT_GT(same_millisecond, kIds / 2);
}

TEST(UuidTest, GenerateStampsTheCurrentTime) {
  const int64_t before = absl::ToUnixMillis(absl::Now());
  const Uuid id = Uuid::Generate();
  const int64_t after = absl::ToUnixMillis(absl::Now());
  // The timestamp may run ahead of the clock only by milliseconds borrowed
  // when a counter is spent, which takes 2^41 ids in one millisecond.
  EXPECT_GE(UnixMillisOf(id), before) << id;
  EXPECT_LE(UnixMillisOf(id), after) << id;
}

TEST(UuidTest, ConcurrentGenerateIsUniqueAndIncreasingPerThread) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::vector<Uuid>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&per_thread, t] {
      per_thread[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) {
        per_thread[t].push_back(Uuid::Generate());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::flat_hash_set<Uuid> unique;
  for (const auto& ids : per_thread) {
    unique.insert(ids.begin(), ids.end());
    for (size_t i = 1; i < ids.size(); ++i) {
      ASSERT_LT(ids[i - 1].bytes(), ids[i].bytes())
          << ids[i - 1] << " then " << ids[i];
    }
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));
}

using internal::UuidV7Sequence;

bool Before(const UuidV7Sequence::Stamp& a, const UuidV7Sequence::Stamp& b) {
  return a.unix_ms < b.unix_ms ||
         (a.unix_ms == b.unix_ms && a.counter < b.counter);
}

TEST(UuidV7SequenceTest, ANewMillisecondSeedsTheCounterWithItsTopBitClear) {
  UuidV7Sequence sequence;
  const UuidV7Sequence::Stamp first = sequence.Next(1000, ~uint64_t{0});
  EXPECT_EQ(first.unix_ms, 1000u);
  EXPECT_EQ(first.counter, UuidV7Sequence::kMaxSeed);
  const UuidV7Sequence::Stamp second = sequence.Next(1001, 5);
  EXPECT_EQ(second.unix_ms, 1001u);
  EXPECT_EQ(second.counter, 5u);
}

TEST(UuidV7SequenceTest, TheSameMillisecondCountsOn) {
  UuidV7Sequence sequence;
  const UuidV7Sequence::Stamp first = sequence.Next(1000, 7);
  // The random bits only seed a new millisecond.
  const UuidV7Sequence::Stamp second = sequence.Next(1000, 3);
  const UuidV7Sequence::Stamp third = sequence.Next(1000, 99);
  EXPECT_EQ(first.counter, 7u);
  EXPECT_EQ(second.unix_ms, 1000u);
  EXPECT_EQ(second.counter, 8u);
  EXPECT_EQ(third.counter, 9u);
}

TEST(UuidV7SequenceTest, AClockGoingBackwardsKeepsTheLastTimestamp) {
  UuidV7Sequence sequence;
  UuidV7Sequence::Stamp last = sequence.Next(5000, 10);
  for (uint64_t now : {4999u, 1u, 5000u, 0u}) {
    const UuidV7Sequence::Stamp next = sequence.Next(now, 0);
    EXPECT_EQ(next.unix_ms, 5000u) << "clock at " << now;
    EXPECT_TRUE(Before(last, next)) << "clock at " << now;
    last = next;
  }
  // Once the clock passes the last timestamp, it is followed again.
  const UuidV7Sequence::Stamp caught_up = sequence.Next(5001, 0);
  EXPECT_EQ(caught_up.unix_ms, 5001u);
  EXPECT_EQ(caught_up.counter, 0u);
}

TEST(UuidV7SequenceTest, ASpentCounterBorrowsTheNextMillisecond) {
  // A 4-bit counter: seeds 0..7, spent after 15.
  UuidV7Sequence sequence(4);
  UuidV7Sequence::Stamp last = sequence.Next(42, ~uint64_t{0});
  ASSERT_EQ(last.counter, 7u);
  for (uint64_t expected = 8; expected <= 15; ++expected) {
    last = sequence.Next(42, 0);
    ASSERT_EQ(last.unix_ms, 42u);
    ASSERT_EQ(last.counter, expected);
  }
  UuidV7Sequence::Stamp next = sequence.Next(42, 3);
  EXPECT_EQ(next.unix_ms, 43u);
  EXPECT_EQ(next.counter, 3u);
  EXPECT_TRUE(Before(last, next));
  // The clock then reaching the borrowed millisecond counts on from there.
  last = next;
  next = sequence.Next(43, 0);
  EXPECT_EQ(next.unix_ms, 43u);
  EXPECT_EQ(next.counter, 4u);
}

TEST(UuidV7SequenceTest, StampsStrictlyIncreaseWhateverTheClockDoes) {
  UuidV7Sequence sequence(3);
  std::mt19937_64 random(1);
  uint64_t clock = 1000;
  UuidV7Sequence::Stamp last = sequence.Next(clock, random());
  for (int i = 0; i < 10000; ++i) {
    // Steps of -2..+3 ms: stands still, jumps back, moves on.
    clock = clock + (random() % 6) - 2;
    const UuidV7Sequence::Stamp next = sequence.Next(clock, random());
    ASSERT_TRUE(Before(last, next)) << "step " << i;
    ASSERT_LE(next.counter, 7u);
    last = next;
  }
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
