// The PostgreSQL outbox's claims on a table never analysed (a new store,
// then a burst): each reads a bounded range of ids from the oldest
// claimable message, whatever plan the planner picks. Without the bound,
// its guess of a few hundred pending rows made a bitmap scan of every
// pending row and a sort look cheapest, for each claim, so that a backlog
// drained in quadratic time until autovacuum analysed the table.
//
// The plans are those the server ran: auto_explain writes each statement's
// plan, with the rows each node handled, to the server's log.

#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

constexpr int kMessages = 40000;
constexpr int kLimit = 1000;
// The claim reads ids up to this many times the limit past the oldest
// claimable one (backends/postgres/pg_outbox_store.cc).
constexpr int64_t kWindow = 16;

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The plans auto_explain logged for the outbox claims, one string each:
// a log entry starts at a line that does not begin with a tab, and goes on
// over the tab-indented lines after it.
std::vector<std::string> ClaimPlans(const std::string& log) {
  std::vector<std::string> entries;
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '\t' || entries.empty()) {
      entries.push_back(line);
    } else {
      absl::StrAppend(&entries.back(), "\n", line);
    }
  }
  std::vector<std::string> plans;
  for (const std::string& entry : entries) {
    if (entry.find("plan:") != std::string::npos &&
        entry.find(".outbox") != std::string::npos &&
        entry.find("FOR UPDATE SKIP LOCKED") != std::string::npos) {
      plans.push_back(entry);
    }
  }
  return plans;
}

// The most rows a node of `plan` that looks for pending messages handled
// ("actual time=… rows=N" on a node whose conditions name 'pending'; the
// nodes of the mark, which look up the ids given, are not the claim's). A
// node is its line (the first, or one with "->") and the condition lines
// under it.
int64_t MostRowsOfAClaimNode(const std::string& plan) {
  std::vector<std::string> nodes;
  std::istringstream lines(plan);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("->") != std::string::npos || nodes.empty()) {
      nodes.push_back(line);
    } else {
      absl::StrAppend(&nodes.back(), "\n", line);
    }
  }
  int64_t most = -1;
  for (const std::string& node : nodes) {
    if (node.find("'pending'") == std::string::npos) continue;
    const size_t actual = node.find("actual time=");
    if (actual == std::string::npos) continue;
    const size_t rows = node.find(" rows=", actual);
    if (rows == std::string::npos) continue;
    const size_t digits = rows + 6;
    const size_t end = node.find(' ', digits);
    int64_t n = 0;
    if (absl::SimpleAtoi(node.substr(digits, end - digits), &n) && n > most) {
      most = n;
    }
  }
  return most;
}

TEST(PgOutboxClaimTest, ClaimsReadABoundedRangeOnATableNeverAnalysed) {
  PostgresServerOptions server_options;
  server_options.extra_settings = {
      // The table stays as a new store's is: never analysed.
      "autovacuum=off",
      "session_preload_libraries=auto_explain",
      "auto_explain.log_min_duration=0",
      "auto_explain.log_analyze=on",
  };
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start(server_options));
  PostgresOptions options;
  options.conninfo = server->url();
  options.schema = "claims";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       PostgresEventStore::Open(options));
  for (int first = 0; first < kMessages; first += kLimit) {
    std::vector<OutboxMessage> chunk;
    for (int i = first; i < first + kLimit; ++i) {
      OutboxMessage m;
      m.destination = "orders";
      m.key = absl::StrCat("order-", i);
      m.payload = std::string(200, 'x');
      chunk.push_back(std::move(m));
    }
    ASSERT_OK(store->outbox().Enqueue(chunk));
  }

  // A claim, then a mark of what it claimed with the claim of the next
  // batch: each the oldest kLimit messages claimable, in id order.
  ASSERT_OK_AND_ASSIGN(
      std::vector<OutboxEntry> first,
      store->outbox().Claim("claimer", kLimit, absl::Minutes(1)));
  ASSERT_EQ(first.size(), static_cast<size_t>(kLimit));
  std::vector<int64_t> ids;
  for (const OutboxEntry& entry : first) ids.push_back(entry.id);
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_EQ(ids[i], ids[0] + i);
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> second,
                       store->outbox().MarkPublishedAndClaim(
                           ids, "claimer", kLimit, absl::Minutes(1)));
  ASSERT_EQ(second.size(), static_cast<size_t>(kLimit));
  for (size_t i = 0; i < second.size(); ++i) {
    EXPECT_EQ(second[i].id, ids.back() + 1 + static_cast<int64_t>(i));
  }
  store.reset();

  // Both statements ran with plans whose nodes looking for pending messages
  // each handled at most the window's rows, where a scan of every pending
  // row handles kMessages.
  const std::vector<std::string> plans =
      ClaimPlans(ReadWholeFile(server->log_path()));
  ASSERT_EQ(plans.size(), 2u) << server->LogTail(20000);
  for (const std::string& plan : plans) {
    const int64_t most = MostRowsOfAClaimNode(plan);
    EXPECT_GE(most, kLimit) << plan;
    EXPECT_LE(most, kWindow * kLimit) << plan;
  }
}

}  // namespace
}  // namespace eventstore::test
