// `eventstore export` / `eventstore import`, run as the real binary: a round
// trip through a file and through a pipe; truncated, bit-flipped and foreign
// files refused with the target untouched; import resumes like migrate.

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/open_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/cli_process.h"
#include "tests/tools/cli_store_test.h"
#include "tests/tools/fill_store.h"
#include "tools/migrator.h"

namespace eventstore {
namespace {

using ::eventstore::test::CliResult;
using ::testing::HasSubstr;

class TransferCommandsTest : public test::CliStoreTest {
 protected:
  void SetUp() override {
    test::CliStoreTest::SetUp();
    source_url_ = SqliteUrl("source.db");
    std::unique_ptr<EventStore> source = Open(source_url_);
    ASSERT_NE(source, nullptr);
    test::FillStore(*source, 50, 40, 10);  // 2,000 events
    test::AddOtherRows(*source, 777);
  }

  void ExpectSameAsSource(const std::string& url) {
    std::unique_ptr<EventStore> source = Open(source_url_);
    std::unique_ptr<EventStore> target = Open(url);
    ASSERT_NE(source, nullptr);
    ASSERT_NE(target, nullptr);
    EXPECT_TRUE(Same(*source, *target));
  }

  std::string Export() {
    const std::string file = dir_->File("events.esx");
    CliResult r = Run({"export", source_url_, file});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("wrote 2,000 events"));
    return file;
  }

  // Expects `file` to be refused with `reason`, and the target untouched.
  void ExpectRefused(const std::string& file, const std::string& reason) {
    const std::string target =
        SqliteUrl(absl::StrCat("refusing-", ++refused_, ".db"));
    {
      std::unique_ptr<EventStore> t = Open(target);
      test::FillStore(*t, 1, 1, 1);
    }
    CliResult r = Run({"import", file, target});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr(reason));
    EXPECT_THAT(r.err, HasSubstr(file));
    EXPECT_THAT(r.err, HasSubstr("nothing was imported"));
    std::unique_ptr<EventStore> t = Open(target);
    ASSERT_OK_AND_ASSIGN(Position head, t->HeadPosition());
    EXPECT_EQ(head, Position::At(1));
  }

  std::string source_url_;
  int refused_ = 0;
};

TEST_F(TransferCommandsTest, RoundTripThroughAFile) {
  const std::string file = Export();
  const std::string target = SqliteUrl("target.db");
  CliResult r = Run({"import", file, target, "--checkpoints=all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("copied 2,000 events"));
  ExpectSameAsSource(target);
  std::unique_ptr<EventStore> t = Open(target);
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       t->checkpoints().Get("totals"));
  ASSERT_TRUE(cp.has_value());
  EXPECT_EQ(cp->events_processed, 777);
  ASSERT_OK_AND_ASSIGN(OutboxStats stats, t->outbox().Stats());
  EXPECT_EQ(stats.pending, 1);

  // Importing again copies nothing twice.
  r = Run({"import", file, target});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("copied 0 events"));
  ExpectSameAsSource(target);
}

// Each event's checksum travels in the file and is checked and kept by the
// import (issue #9, item 0b).
TEST_F(TransferCommandsTest, RoundTripKeepsEveryEventsChecksum) {
  const std::string file = dir_->File("sums.esx");
  CliResult r = Run({"export", source_url_, file, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string target = SqliteUrl("sums.db");
  r = Run({"import", file, target, "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::unique_ptr<EventStore> source = Open(source_url_);
  std::unique_ptr<EventStore> copy = Open(target);
  ASSERT_NE(source, nullptr);
  ASSERT_NE(copy, nullptr);
  ReadAllOptions all;
  all.max_count = 5000;
  ASSERT_OK_AND_ASSIGN(ReadAllPage from, source->ReadAll(all));
  ASSERT_OK_AND_ASSIGN(ReadAllPage to, copy->ReadAll(all));
  ASSERT_EQ(from.events.size(), 2000u);
  ASSERT_EQ(to.events.size(), from.events.size());
  for (size_t i = 0; i < from.events.size(); ++i) {
    ASSERT_TRUE(from.events[i].checksum.has_value()) << i;
    EXPECT_EQ(to.events[i].checksum, from.events[i].checksum) << i;
    EXPECT_FALSE(to.events[i].damaged()) << to.events[i].damage;
  }
}

TEST_F(TransferCommandsTest, RoundTripThroughAPipe) {
  const std::string target = SqliteUrl("piped.db");
  const std::string cli = EVENTSTORE_CLI;
  const int code = test::RunShell(
      absl::StrCat("'", cli, "' export -q '", source_url_, "' - | '", cli,
                   "' import -q - '", target, "' 2>", dir_->File("pipe.err")));
  ASSERT_EQ(code, 0) << test::ReadWholeFile(dir_->File("pipe.err"));
  ExpectSameAsSource(target);
}

TEST_F(TransferCommandsTest, DefaultsToEventstoreUrl) {
  const std::string file = dir_->File("env.esx");
  CliResult r = test::RunCli(
      {"export", file}, {{"EVENTSTORE_URL", source_url_}}, absl::Minutes(5));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("wrote 2,000 events"));
}

TEST_F(TransferCommandsTest, RefusesATruncatedFile) {
  const std::string file = Export();
  const auto size = std::filesystem::file_size(file);
  std::filesystem::resize_file(file, size - 100);
  ExpectRefused(file, "truncated");
  std::filesystem::resize_file(file, size / 2);
  ExpectRefused(file, "truncated");
}

TEST_F(TransferCommandsTest, RefusesABitFlippedFile) {
  const std::string file = Export();
  std::string bytes = test::ReadWholeFile(file);
  // A bit in an event's payload: the record still parses.
  const size_t at = bytes.find("order-7/3");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 6] ^= 0x02;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  ExpectRefused(file, "checksum");
}

TEST_F(TransferCommandsTest, RefusesAFileThatIsNotAnExport) {
  const std::string file = dir_->File("not-an-export");
  std::ofstream(file) << "hello, world\n";
  ExpectRefused(file, file);
  CliResult r = Run({"import", dir_->File("missing.esx"), SqliteUrl("t.db")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.esx"));
}

TEST_F(TransferCommandsTest, UsageErrors) {
  EXPECT_EQ(Run({"import"}).exit_code, 2);
  EXPECT_EQ(Run({"export", "--nosuchflag"}).exit_code, 2);
  EXPECT_EQ(Run({"export", "--help"}).exit_code, 0);
  EXPECT_EQ(Run({"import", "--help"}).exit_code, 0);
}

}  // namespace
}  // namespace eventstore
