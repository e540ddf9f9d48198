// MasterKey: generation, the hex, file and environment forms, the id, and
// errors that never quote the key text.

#include "eventstore/crypto/master_key.h"

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"

namespace eventstore::crypto {
namespace {

using ::eventstore::test::StatusIs;
using ::eventstore::test::TempDir;
using ::eventstore::test::WriteFileBytes;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// 63 valid digits and a 'g': looks like a key, is not one.
constexpr char kAlmostKey[] =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg";

TEST(MasterKeyTest, GenerateGivesDistinctKeysOf32Bytes) {
  MasterKey a = MasterKey::Generate();
  MasterKey b = MasterKey::Generate();
  EXPECT_EQ(a.bytes().size(), MasterKey::kSize);
  EXPECT_NE(a.ToHex(), b.ToHex());
  EXPECT_NE(a.id(), b.id());
}

TEST(MasterKeyTest, HexRoundTripKeepsBytesAndId) {
  MasterKey key = MasterKey::Generate();
  const std::string hex = key.ToHex();
  EXPECT_EQ(hex.size(), 64u);
  ASSERT_OK_AND_ASSIGN(MasterKey parsed, MasterKey::FromHex(hex));
  EXPECT_EQ(parsed.ToHex(), hex);
  EXPECT_EQ(parsed.id(), key.id());
  ASSERT_OK_AND_ASSIGN(
      MasterKey upper,
      MasterKey::FromHex("  " + absl::AsciiStrToUpper(hex) + "\n"));
  EXPECT_EQ(upper.id(), key.id());
}

TEST(MasterKeyTest, IdIs16HexDigitsAndNotPartOfTheKey) {
  MasterKey key = MasterKey::Generate();
  ASSERT_EQ(key.id().size(), 16u);
  for (char c : key.id()) EXPECT_TRUE(absl::ascii_isxdigit(c)) << key.id();
  EXPECT_THAT(key.ToHex(), Not(HasSubstr(key.id())));
  // A fixed key has a fixed id (stored ids must stay valid across
  // versions).
  ASSERT_OK_AND_ASSIGN(MasterKey zero,
                       MasterKey::FromHex(std::string(64, '0')));
  ASSERT_OK_AND_ASSIGN(MasterKey zero2,
                       MasterKey::FromHex(std::string(64, '0')));
  EXPECT_EQ(zero.id(), zero2.id());
}

TEST(MasterKeyTest, BadHexIsInvalidArgumentWithoutTheText) {
  for (const std::string& bad :
       {std::string(kAlmostKey), std::string(kAlmostKey).substr(0, 62),
        std::string(kAlmostKey).substr(0, 63) + "00", std::string(),
        std::string("00112233 445566778899aabbccddeeff00112233445566778899aabb"
                    "ccddeeff")}) {
    absl::StatusOr<MasterKey> key = MasterKey::FromHex(bad);
    EXPECT_THAT(key, StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    if (!bad.empty()) {
      EXPECT_THAT(key.status().message(), Not(HasSubstr(bad.substr(0, 16))));
    }
  }
}

TEST(MasterKeyTest, FromFileReadsTheHexForm) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  MasterKey key = MasterKey::Generate();
  const std::string path = dir->File("master.key");
  WriteFileBytes(path, key.ToHex() + "\n");
  ASSERT_OK_AND_ASSIGN(MasterKey read, MasterKey::FromFile(path));
  EXPECT_EQ(read.id(), key.id());
}

TEST(MasterKeyTest, FromFileErrorsNameThePathNeverTheContent) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  EXPECT_THAT(MasterKey::FromFile(dir->File("absent.key")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.key")));
  const std::string path = dir->File("bad.key");
  WriteFileBytes(path, kAlmostKey);
  absl::StatusOr<MasterKey> key = MasterKey::FromFile(path);
  EXPECT_THAT(
      key, StatusIs(absl::StatusCode::kInvalidArgument,
                    AllOf(HasSubstr("bad.key"), Not(HasSubstr("0011223344")))));
  // A key followed by more text is not a key either.
  WriteFileBytes(path, MasterKey::Generate().ToHex() + "\nmore");
  EXPECT_THAT(MasterKey::FromFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(MasterKeyTest, FromEnvironment) {
  MasterKey key = MasterKey::Generate();
  ASSERT_EQ(setenv("EVENTSTORE_TEST_MASTER_KEY", key.ToHex().c_str(), 1), 0);
  ASSERT_OK_AND_ASSIGN(
      MasterKey read, MasterKey::FromEnvironment("EVENTSTORE_TEST_MASTER_KEY"));
  EXPECT_EQ(read.id(), key.id());

  ASSERT_EQ(setenv("EVENTSTORE_TEST_MASTER_KEY", kAlmostKey, 1), 0);
  EXPECT_THAT(MasterKey::FromEnvironment("EVENTSTORE_TEST_MASTER_KEY"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("EVENTSTORE_TEST_MASTER_KEY"),
                             Not(HasSubstr("0011223344")))));
  ASSERT_EQ(unsetenv("EVENTSTORE_TEST_MASTER_KEY"), 0);
  EXPECT_THAT(MasterKey::FromEnvironment("EVENTSTORE_TEST_MASTER_KEY"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("EVENTSTORE_TEST_MASTER_KEY")));
}

TEST(MasterKeyTest, CopiesShareTheKey) {
  MasterKey key = MasterKey::Generate();
  const std::string hex = key.ToHex();
  std::optional<MasterKey> copy = key;
  key = MasterKey::Generate();
  EXPECT_EQ(copy->ToHex(), hex);
}

}  // namespace
}  // namespace eventstore::crypto
