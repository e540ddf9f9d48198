// CliStoreTest: the fixture of the tests that run the `eventstore` binary
// on SQLite files in a temporary directory of their own.

#ifndef EVENTSTORE_TESTS_TOOLS_CLI_STORE_TEST_H_
#define EVENTSTORE_TESTS_TOOLS_CLI_STORE_TEST_H_

#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/cli_process.h"
#include "tools/migrator.h"

namespace eventstore::test {

class CliStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TempDir>> dir = TempDir::Create();
    ASSERT_OK(dir);
    dir_ = *std::move(dir);
  }

  // A SQLite URL of `name` in the test's directory.
  std::string SqliteUrl(const std::string& name) const {
    return absl::StrCat("sqlite://", dir_->File(name), "?synchronous=normal");
  }

  std::unique_ptr<EventStore> Open(const std::string& url) {
    absl::StatusOr<std::unique_ptr<EventStore>> store = OpenEventStore(url);
    EXPECT_OK(store);
    return store.ok() ? *std::move(store) : nullptr;
  }

  CliResult Run(const std::vector<std::string>& args) {
    return RunCli(args, {}, absl::Minutes(5));
  }

  // Whether `b` holds the same streams and events as `a`
  // (tools::VerifyCopy); what differs goes into the failure message.
  bool Same(EventStore& a, EventStore& b) {
    std::ostringstream out;
    absl::StatusOr<bool> same = tools::VerifyCopy(a, b, out);
    EXPECT_OK(same);
    EXPECT_TRUE(same.ok() && *same) << out.str();
    return same.ok() && *same;
  }

  std::unique_ptr<TempDir> dir_;
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_TOOLS_CLI_STORE_TEST_H_
