#include "tests/sinks/publish_cli_support.h"

#include <signal.h>

#include <regex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "eventstore/event_data.h"
#include "eventstore/open_event_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/tracing.h"
#include "gmock/gmock.h"
#include "tests/support/status_matchers.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore::test {

using ::testing::HasSubstr;
using ::testing::Not;

std::string LastProgressLine(const std::string& err) {
  std::string last;
  for (absl::string_view line : absl::StrSplit(err, '\n')) {
    if (absl::StrContains(line, ": published ")) last = std::string(line);
  }
  return last;
}

int64_t Counter(const std::string& line, const std::string& name) {
  std::smatch match;
  const std::regex pattern(name + " ([0-9]+)");
  int64_t value = -1;
  if (std::regex_search(line, match, pattern)) {
    (void)absl::SimpleAtoi(match[1].str(), &value);
  }
  return value;
}

std::vector<std::string> ProcessBackends() {
  return {
      "sqlite_file",
#ifdef EVENTSTORE_TEST_POSTGRES
      "postgres",
#endif
  };
}

std::string BackendParamName(
    const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

PublishCliTest::PublishCliTest(std::string password)
    : password_(std::move(password)) {}

void PublishCliTest::SetUp() {
  ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
  if (GetParam() == "postgres") {
#ifdef EVENTSTORE_TEST_POSTGRES
    ASSERT_OK_AND_ASSIGN(const std::string postgres, SharedPostgresUrl());
    url_ = absl::StrCat(postgres, absl::StrContains(postgres, "?") ? "&" : "?",
                        "schema=", UniqueSchemaName());
#endif
  } else {
    url_ = absl::StrCat("sqlite://", dir_->File("events.db"));
  }
  ASSERT_OK_AND_ASSIGN(store_, OpenEventStore(url_));
}

std::vector<OutboxMessage> PublishCliTest::Messages(int count,
                                                    const std::string& tag,
                                                    size_t padding) const {
  std::vector<OutboxMessage> messages;
  for (int i = 0; i < count; ++i) {
    OutboxMessage m;
    Route(i, &m);
    m.payload = absl::StrCat(tag, "-", i, std::string(padding, '.'));
    m.headers[kCorrelationIdHeader] = absl::StrCat("corr-", tag, "-", i);
    m.headers[kCausationIdHeader] = absl::StrCat("cause-", tag, "-", i);
    m.headers[kEventTypeHeader] = "eventstore.test.v1.Tick";
    m.headers[kTraceparentHeader] =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    messages.push_back(std::move(m));
  }
  return messages;
}

absl::StatusOr<uint64_t> PublishCliTest::EnqueueAloneAndWithAnAppend(
    int round) {
  // Enqueued alone...
  const std::vector<OutboxMessage> alone =
      Messages(100, absl::StrCat("alone", round));
  if (absl::Status s = store_->outbox().Enqueue(alone); !s.ok()) return s;
  // ...and with an append.
  const std::vector<OutboxMessage> with_event =
      Messages(10, absl::StrCat("append", round));
  eventstore::test::v1::Tick tick;
  tick.set_sequence(round);
  const EventData event = EventData::From(tick);
  AppendRequest request;
  request.stream = absl::StrCat("order-", round);
  request.events = absl::MakeConstSpan(&event, 1);
  request.outbox = with_event;
  if (absl::Status s = store_->Append(request).status(); !s.ok()) return s;
  return alone.size() + with_event.size();
}

std::map<int64_t, OutboxEntry> PublishCliTest::Outbox() {
  std::map<int64_t, OutboxEntry> all;
  OutboxListOptions list;
  list.limit = 100000;
  absl::StatusOr<std::vector<OutboxEntry>> entries =
      store_->outbox().List(list);
  EXPECT_OK(entries.status());
  if (!entries.ok()) return all;
  for (OutboxEntry& entry : *entries) all[entry.id] = std::move(entry);
  return all;
}

OutboxStats PublishCliTest::Stats() {
  absl::StatusOr<OutboxStats> stats = store_->outbox().Stats();
  EXPECT_OK(stats.status());
  return stats.ok() ? *stats : OutboxStats();
}

int64_t PublishCliTest::ClaimedBy(const std::string& worker) {
  int64_t claimed = 0;
  for (const auto& [id, entry] : Outbox()) {
    if (entry.status == OutboxStatus::kPending && entry.claimed_by == worker) {
      ++claimed;
    }
  }
  return claimed;
}

void PublishCliTest::ExpectNoPassword(const std::string& out,
                                      const std::string& err) const {
  EXPECT_THAT(out, Not(HasSubstr(password_)));
  EXPECT_THAT(err, Not(HasSubstr(password_)));
}

CliResult PublishCliTest::StopWithSigterm(CliProcess& cli,
                                          absl::Duration within,
                                          absl::Duration* took) const {
  const absl::Time signalled = absl::Now();
  absl::StatusOr<CliResult> r = cli.Stop(SIGTERM, within + absl::Seconds(60));
  const absl::Duration stop_took = absl::Now() - signalled;
  if (took != nullptr) *took = stop_took;
  EXPECT_OK(r);
  if (!r.ok()) return CliResult();
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_LT(stop_took, within) << r->err;
  ExpectNoPassword(r->out, r->err);
  return *std::move(r);
}

}  // namespace eventstore::test
