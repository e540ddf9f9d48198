// Runs the bank example (examples/bank) as a newcomer would, on SQLite in
// memory, twice on one SQLite file, and twice on PostgreSQL (the shared
// throwaway server), and checks what it prints. The binary's path comes
// from EVENTSTORE_BANK_EXAMPLE.

#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore {
namespace {

using ::eventstore::test::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

struct ExampleRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs the example with `url` as its argument. The URL is single-quoted for
// the shell; test URLs hold no quote.
ExampleRun RunExample(const std::string& url) {
  ExampleRun run;
  const std::string command =
      absl::StrCat("'", EVENTSTORE_BANK_EXAMPLE, "' '", url, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    run.output = "popen failed";
    return run;
  }
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    run.output.append(buffer, n);
  }
  const int status = pclose(pipe);
  if (status != -1 && WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  return run;
}

// What every successful run prints.
void ExpectASuccessfulRun(const ExampleRun& run) {
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("refused: insufficient funds"));
  EXPECT_THAT(run.output,
              HasSubstr("the teller's stale save was refused (version 2, "
                        "the stream is at 3)"));
  EXPECT_THAT(run.output, HasSubstr("parked 1,"));
  EXPECT_THAT(run.output, HasSubstr("money moved before the account was "
                                    "opened"));
  EXPECT_THAT(run.output, HasSubstr("replayed the parked deposit: resolved "
                                    "by bank-example"));
  EXPECT_THAT(run.output, HasSubstr("sent to fraud-alerts: alice-"));
  EXPECT_THAT(run.output, HasSubstr("withdrew 600.00, balance after 650.00"));
  EXPECT_THAT(run.output, HasSubstr("behind by 0 events"));
  EXPECT_THAT(run.output, Not(HasSubstr("MISMATCH")));
  EXPECT_THAT(run.output, HasSubstr("bank example: OK"));
}

TEST(BankExampleTest, RunsOnSqliteInMemory) {
  const ExampleRun run = RunExample("sqlite::memory:");
  ExpectASuccessfulRun(run);
  // A fresh database: exactly this run's events, one published alert.
  EXPECT_THAT(run.output, HasSubstr("behind by 11 events"));
  EXPECT_THAT(run.output, HasSubstr("published 1, pending 0"));
}

TEST(BankExampleTest, RunsTwiceOnOneSqliteFile) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const std::string url = absl::StrCat("sqlite://", dir->File("bank.db"));
  ExpectASuccessfulRun(RunExample(url));
  // The second run adds to the first's database and read model.
  const ExampleRun second = RunExample(url);
  ExpectASuccessfulRun(second);
  EXPECT_THAT(second.output, HasSubstr("behind by 11 events"));
}

#ifdef EVENTSTORE_TEST_POSTGRES
TEST(BankExamplePostgresTest, RunsTwiceOnPostgres) {
  ASSERT_OK_AND_ASSIGN(std::string server, test::SharedPostgresUrl());
  const std::string url =
      absl::StrCat(server, absl::StrContains(server, "?") ? "&" : "?",
                   "schema=", test::UniqueSchemaName());
  ExpectASuccessfulRun(RunExample(url));
  const ExampleRun second = RunExample(url);
  ExpectASuccessfulRun(second);
  EXPECT_THAT(second.output, HasSubstr("behind by 11 events"));
}
#endif

}  // namespace
}  // namespace eventstore
