// `eventstore serve`: the real binary (EVENTSTORE_CLI) serving a SQLite file
// and (suites whose names contain "Postgres", one ctest group) a PostgreSQL
// schema, queried with httplib::Client: the bearer token, 404 and 405,
// the loopback rule, SIGTERM and SIGINT, /readyz while the database goes
// away, the store-level gauges against known contents, promtool's check,
// and a scrape while 8 threads append. Also the parts on their own:
// ListenAddress, BearerToken, and /readyz of a failover store (an
// in-process ServeServer).

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/prometheus/prometheus_instrumentation.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/prometheus_sample.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_backends.h"
#include "tests/tools/cli_process.h"
#include "tools/serve/bearer_token.h"
#include "tools/serve/listen_address.h"
#include "tools/serve/serve_server.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore {
namespace {

using ::eventstore::test::CliProcess;
using ::eventstore::test::CliResult;
using ::eventstore::test::RunCli;
using ::eventstore::test::Sample;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TempDir;
using ::eventstore::tools::BearerToken;
using ::eventstore::tools::ListenAddress;
using ::eventstore::tools::ParseListenAddress;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPromtool[] = "/usr/bin/promtool";
constexpr char kToken[] = "s3cret-token-0123456789";

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

// Whether every line of `text` is a comment (# HELP / # TYPE), empty, or
// "name[{labels}] value" with a number for value.
bool WellFormed(const std::string& text, std::string* bad_line) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || absl::StartsWith(line, "# HELP ") ||
        absl::StartsWith(line, "# TYPE ")) {
      continue;
    }
    const size_t space = line.rfind(' ');
    double value = 0;
    const bool ok = space != absl::string_view::npos && space > 0 &&
                    absl::StartsWith(line, "eventstore_") &&
                    absl::SimpleAtod(line.substr(space + 1), &value);
    if (!ok) {
      *bad_line = std::string(line);
      return false;
    }
  }
  return true;
}

// `promtool check metrics` on `text`: its output, empty when it passed;
// `*exit_status` its status.
std::string Promtool(const std::string& text, int* exit_status) {
  absl::StatusOr<std::unique_ptr<TempDir>> dir = TempDir::Create();
  if (!dir.ok()) return std::string(dir.status().message());
  const std::string path = (*dir)->File("metrics.txt");
  {
    std::ofstream out(path);
    out << text;
  }
  const std::string command =
      absl::StrCat(kPromtool, " check metrics < '", path, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string output;
  char buffer[512];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, n);
  }
  *exit_status = pclose(pipe);
  return output;
}

// A running `eventstore serve`, and a client of it.
class Served {
 public:
  // Starts `eventstore serve URL --listen 127.0.0.1:0 ARGS...` and waits for
  // its readiness line.
  static std::unique_ptr<Served> Start(const std::string& url,
                                       std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {"serve", url, "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<std::unique_ptr<CliProcess>> process =
        CliProcess::Start(argv);
    EXPECT_OK(process);
    if (!process.ok()) return nullptr;
    // stdout holds only the readiness line: its end is the first newline.
    if (!(*process)->WaitForOutput("\n", absl::Seconds(60))) {
      ADD_FAILURE() << "no readiness line; stderr: " << (*process)->Errors();
      return nullptr;
    }
    const std::string line = (*process)->Output();
    constexpr char kPrefix[] = "listening on http://127.0.0.1:";
    int port = 0;
    if (!absl::StartsWith(line, kPrefix) ||
        !absl::SimpleAtoi(
            absl::StripSuffix(absl::string_view(line).substr(strlen(kPrefix)),
                              "\n"),
            &port)) {
      ADD_FAILURE() << "unexpected readiness line: " << line;
      return nullptr;
    }
    return std::unique_ptr<Served>(new Served(*std::move(process), port));
  }

  int port() const { return port_; }
  CliProcess& process() { return *process_; }

  // A new client (each thread needs its own).
  std::unique_ptr<httplib::Client> Client() const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client->set_connection_timeout(10);
    client->set_read_timeout(60);
    return client;
  }

  // GET `path` with `token` as bearer token (none when empty); status -1
  // when the request failed.
  std::pair<int, std::string> Get(const std::string& path,
                                  const std::string& token = "") const {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result r = Client()->Get(path.c_str(), headers);
    if (!r) return {-1, httplib::to_string(r.error())};
    return {r->status, r->body};
  }

  std::string Metrics(const std::string& token = "") const {
    auto [status, body] = Get("/metrics", token);
    EXPECT_EQ(status, 200) << body;
    return body;
  }

  // Sends SIGTERM and returns how the process ended.
  CliResult Stop(int signal = SIGTERM) {
    absl::StatusOr<CliResult> result = process_->Stop(signal);
    EXPECT_OK(result);
    return result.ok() ? *result : CliResult{};
  }

 private:
  Served(std::unique_ptr<CliProcess> process, int port)
      : process_(std::move(process)), port_(port) {}
  std::unique_ptr<CliProcess> process_;
  int port_;
};

// Known contents: 4 events in 3 streams, two checkpoints, dead letters (two
// parked, one retrying), outbox messages (2 pending, 1 published, 1
// failed).
void FillKnown(EventStore& store) {
  for (const char* stream : {"order-1", "order-2", "invoice-1"}) {
    ASSERT_OK(
        store.Append(stream, ExpectedVersion::NoStream(), {Placed(stream)}));
  }
  OutboxMessage message;
  message.destination = "billing";
  message.payload = "x";
  std::vector<EventData> events = {Placed("order-1b")};
  std::vector<OutboxMessage> messages(4, message);
  AppendRequest request;
  request.stream = "order-1";
  request.expected = ExpectedVersion::Exactly(1);
  request.events = events;
  request.outbox = messages;
  ASSERT_OK(store.Append(request));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> claimed,
                       store.outbox().Claim("test", 2, absl::Minutes(5)));
  ASSERT_EQ(claimed.size(), 2u);
  ASSERT_OK(store.outbox().MarkPublished(claimed[0].id));
  ASSERT_OK(store.outbox().MarkFailed(claimed[1].id, "refused", 1));

  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store.ReadAll({}));
  ASSERT_EQ(page.events.size(), 4u);
  ASSERT_OK(store.checkpoints().Save("caught-up", page.events[3].position, 4));
  ASSERT_OK(store.checkpoints().Save("behind", page.events[0].position, 1));
  ASSERT_OK(store.dead_letters().Add("behind", page.events[1], "boom"));
  ASSERT_OK(store.dead_letters().Add("behind", page.events[2], "boom"));
  ASSERT_OK(store.dead_letters().Add("totals", page.events[3], "boom"));
  ASSERT_OK(store.dead_letters().MarkRetrying("totals", page.events[3].id));
}

// The store-level gauges after FillKnown.
void ExpectKnownGauges(const std::string& text, EventStore& store) {
  ASSERT_OK_AND_ASSIGN(Position head, store.HeadPosition());
  EXPECT_EQ(Sample(text, "eventstore_store_up"), 1) << text;
  EXPECT_EQ(Sample(text, "eventstore_store_events"), 4);
  EXPECT_EQ(Sample(text, "eventstore_store_streams"), 3);
  EXPECT_EQ(Sample(text, "eventstore_store_head_position"),
            static_cast<double>(head.commit()));
  const std::optional<double> size =
      Sample(text, "eventstore_store_size_bytes");
  ASSERT_TRUE(size.has_value());
  EXPECT_GT(*size, 0);
  EXPECT_EQ(Sample(text,
                   "eventstore_store_projection_checkpoint_position{"
                   "projection=\"caught-up\"}"),
            static_cast<double>(head.commit()));
  EXPECT_EQ(Sample(text,
                   "eventstore_store_projection_lag_events{projection=\"caught-"
                   "up\"}"),
            0);
  EXPECT_EQ(Sample(text,
                   "eventstore_store_projection_lag_events{projection="
                   "\"behind\"}"),
            3);
  EXPECT_EQ(Sample(text,
                   "eventstore_store_dead_letters{projection=\"behind\","
                   "status=\"parked\"}"),
            2);
  EXPECT_EQ(Sample(text,
                   "eventstore_store_dead_letters{projection=\"behind\","
                   "status=\"retrying\"}"),
            0);
  EXPECT_EQ(Sample(text,
                   "eventstore_store_dead_letters{projection=\"totals\","
                   "status=\"retrying\"}"),
            1);
  EXPECT_EQ(Sample(text,
                   "eventstore_store_dead_letters{projection=\"caught-up\","
                   "status=\"parked\"}"),
            0);
  EXPECT_EQ(
      Sample(text, "eventstore_store_outbox_messages{status=\"pending\"}"), 2);
  EXPECT_EQ(
      Sample(text, "eventstore_store_outbox_messages{status=\"published\"}"),
      1);
  EXPECT_EQ(Sample(text, "eventstore_store_outbox_messages{status=\"failed\"}"),
            1);
  const std::optional<double> age =
      Sample(text, "eventstore_store_outbox_oldest_pending_age_seconds");
  ASSERT_TRUE(age.has_value());
  EXPECT_GE(*age, 0);
  EXPECT_LT(*age, 3600);
}

// 8 threads append 25 single-event batches each through the library while
// the test scrapes: every scrape is well-formed, eventstore_store_events
// never goes down, and the last scrape counts every event.
void ScrapeWhileEightThreadsAppend(const std::string& url) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store, OpenEventStore(url));
  ASSERT_OK(store->Append("seed", ExpectedVersion::NoStream(), {Placed("0")}));
  std::unique_ptr<Served> served = Served::Start(url);
  ASSERT_NE(served, nullptr);
  constexpr int kThreads = 8;
  constexpr int kAppends = 25;
  std::atomic<int> failures{0};
  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        if (!store
                 ->Append(absl::StrCat("writer-", t), ExpectedVersion::Any(),
                          {Placed(absl::StrCat(t, "-", i))})
                 .ok()) {
          ++failures;
        }
      }
      ++done;
    });
  }
  double last = 0;
  int scrapes = 0;
  bool finished = false;
  while (!finished) {
    finished = done.load() == kThreads;  // one more scrape after the end
    const std::string text = served->Metrics();
    std::string bad;
    ASSERT_TRUE(WellFormed(text, &bad)) << "bad line: " << bad;
    const std::optional<double> events =
        Sample(text, "eventstore_store_events");
    ASSERT_TRUE(events.has_value()) << text;
    EXPECT_GE(*events, last);
    last = *events;
    ++scrapes;
  }
  for (std::thread& w : writers) w.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(scrapes, 2);
  EXPECT_EQ(last, 1 + kThreads * kAppends);
  EXPECT_EQ(served->Stop().exit_code, 0);
}

// --- the parts on their own ----------------------------------------------

TEST(ListenAddressTest, ParsesHostAndPort) {
  ASSERT_OK_AND_ASSIGN(ListenAddress a, ParseListenAddress("127.0.0.1:8113"));
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 8113);
  ASSERT_OK_AND_ASSIGN(a, ParseListenAddress("[::1]:0"));
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 0);
  EXPECT_EQ(a.ToString(), "[::1]:0");
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":8113", "host.example:80",
                          "127.0.0.1:65536", "127.0.0.1:-1", "::1:80",
                          "[::1:80", "127.0.0.1:+80"}) {
    EXPECT_THAT(
        ParseListenAddress(bad),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--listen")))
        << bad;
  }
}

TEST(ListenAddressTest, OnlyLoopbackAddressesAreLoopback) {
  for (const char* local : {"127.0.0.1:1", "127.8.9.10:1", "[::1]:1",
                            "localhost:1", "[::ffff:127.0.0.1]:1"}) {
    ASSERT_OK_AND_ASSIGN(ListenAddress a, ParseListenAddress(local));
    EXPECT_TRUE(a.IsLoopback()) << local;
  }
  for (const char* open :
       {"0.0.0.0:1", "[::]:1", "10.1.2.3:1", "192.168.0.1:1", "[fe80::1]:1"}) {
    ASSERT_OK_AND_ASSIGN(ListenAddress a, ParseListenAddress(open));
    EXPECT_FALSE(a.IsLoopback()) << open;
  }
}

TEST(BearerTokenTest, AuthorizesOnlyTheToken) {
  ASSERT_OK_AND_ASSIGN(BearerToken token, BearerToken::FromString(" abc123\n"));
  EXPECT_TRUE(token.Authorizes("Bearer abc123"));
  EXPECT_TRUE(token.Authorizes("bearer abc123"));
  EXPECT_FALSE(token.Authorizes("Bearer abc1234"));
  EXPECT_FALSE(token.Authorizes("Bearer abc12"));
  EXPECT_FALSE(token.Authorizes("Basic abc123"));
  EXPECT_FALSE(token.Authorizes("abc123"));
  EXPECT_FALSE(token.Authorizes(""));
  EXPECT_THAT(BearerToken::FromString(" \n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(BearerToken::FromString("two words"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BearerTokenTest, FileErrorsNameTheOptionButNotTheContent) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  EXPECT_THAT(
      BearerToken::FromFile(dir->File("missing")),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--token-file")));
  const std::string path = dir->File("token");
  std::ofstream(path) << "pass word\n";
  const absl::StatusOr<BearerToken> token = BearerToken::FromFile(path);
  EXPECT_THAT(token, StatusIs(absl::StatusCode::kInvalidArgument,
                              HasSubstr("--token-file")));
  EXPECT_THAT(std::string(token.status().message()),
              Not(HasSubstr("pass word")));
}

// A primary that can be switched off (kUnavailable).
class SwitchablePrimary final : public ForwardingEventStore {
 public:
  explicit SwitchablePrimary(std::unique_ptr<EventStore> target)
      : ForwardingEventStore(target.get()), owned_(std::move(target)) {}
  std::atomic<bool> down{false};

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    if (down) return absl::UnavailableError("primary down");
    return ForwardingEventStore::Append(request);
  }
  absl::StatusOr<Position> HeadPosition() override {
    if (down) return absl::UnavailableError("primary down");
    return ForwardingEventStore::HeadPosition();
  }

 private:
  std::unique_ptr<EventStore> owned_;
};

// /readyz of a failover store, over HTTP from an in-process ServeServer:
// 200 "ready" in primary mode, 503 when the primary does not answer before
// any append went to the journal, 200 "degraded" with the mode and the
// journal depth in fallback mode.
TEST(ServeReadinessTest, FailoverStoreReportsModeAndJournalDepth) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  SqliteOptions primary_options;
  primary_options.path = ":memory:";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> database,
                       SqliteEventStore::Open(primary_options));
  auto primary = std::make_unique<SwitchablePrimary>(std::move(database));
  SwitchablePrimary* switchable = primary.get();
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EventStore> journal,
      test::OpenFailoverJournal(dir->File("journal.db"), StoreLimits()));
  FailoverOptions failover_options;
  failover_options.allow_fallback = true;
  failover_options.health_check_interval = absl::ZeroDuration();
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<FailoverEventStore> store,
      FailoverEventStore::Create(std::move(primary), std::move(journal),
                                 failover_options));

  ASSERT_OK_AND_ASSIGN(std::shared_ptr<PrometheusInstrumentation> metrics,
                       PrometheusInstrumentation::Create());
  tools::ServeOptions options;
  options.listen = {"127.0.0.1", 0};
  options.failover = store.get();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<tools::ServeServer> server,
                       tools::ServeServer::Create(*store, metrics, options));
  ASSERT_OK_AND_ASSIGN(int port, server->Bind());
  absl::Status served;
  std::thread runner([&] { served = server->Run(); });
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30);

  httplib::Result r = client.Get("/readyz");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("\"status\":\"ready\""));
  EXPECT_THAT(r->body, HasSubstr("\"mode\":\"primary\""));

  switchable->down = true;
  r = client.Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_THAT(r->body, HasSubstr("\"status\":\"unavailable\""));

  ASSERT_OK_AND_ASSIGN(
      AppendResult journaled,
      store->Append("order-1", ExpectedVersion::NoStream(), {Placed("1")}));
  ASSERT_TRUE(journaled.journaled);
  r = client.Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("\"status\":\"degraded\""));
  EXPECT_THAT(r->body, HasSubstr("\"mode\":\"fallback\""));
  EXPECT_THAT(r->body, HasSubstr("\"journal_pending\":1"));

  server->Stop();
  runner.join();
  EXPECT_OK(served);
}

// Stop() before Run() makes Run() return at once instead of serving.
TEST(ServeReadinessTest, StopBeforeRunReturns) {
  SqliteOptions memory;
  memory.path = ":memory:";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       SqliteEventStore::Open(memory));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<PrometheusInstrumentation> metrics,
                       PrometheusInstrumentation::Create());
  tools::ServeOptions options;
  options.listen = {"127.0.0.1", 0};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<tools::ServeServer> server,
                       tools::ServeServer::Create(*store, metrics, options));
  ASSERT_OK(server->Bind().status());
  server->Stop();
  EXPECT_OK(server->Run());
}

// --- the binary on a SQLite file -------------------------------------------

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    url_ = absl::StrCat("sqlite://", dir_->File("events.db"));
    ASSERT_OK_AND_ASSIGN(store_, OpenEventStore(url_));
    token_file_ = dir_->File("token");
    std::ofstream(token_file_) << "  " << kToken << "\n";
  }

  std::unique_ptr<TempDir> dir_;
  std::string url_;
  std::string token_file_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(ServeTest, TokenRequiredOnEveryPathButHealthz) {
  ASSERT_OK(
      store_->Append("order-1", ExpectedVersion::NoStream(), {Placed("1")}));
  std::unique_ptr<Served> served =
      Served::Start(url_, {"--token-file", token_file_});
  ASSERT_NE(served, nullptr);
  for (const char* path : {"/metrics", "/readyz", "/api/streams",
                           "/api/console", "/no-such-path", "/index.html"}) {
    for (const std::string& token :
         {std::string(), std::string("wrong"), std::string(kToken) + "x"}) {
      auto [status, body] = served->Get(path, token);
      EXPECT_EQ(status, 401) << path << " token '" << token << "'";
      EXPECT_EQ(body, "{\"error\":\"unauthorized\"}\n");
    }
  }
  auto [status, body] = served->Get("/healthz");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "ok\n");
  // The web console's shell too: a browser opening the page cannot send
  // the token (tests/tools/console_api_test.cc checks the three files).
  std::tie(status, body) = served->Get("/");
  EXPECT_EQ(status, 200);
  EXPECT_THAT(body, HasSubstr("console.js"));
  std::tie(status, body) = served->Get("/readyz", kToken);
  EXPECT_EQ(status, 200) << body;
  EXPECT_THAT(body, HasSubstr("\"status\":\"ready\""));
  std::tie(status, body) = served->Get("/metrics", kToken);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(Sample(body, "eventstore_store_events"), 1);
  // A method other than GET without the token is 401 too: nothing is
  // learnt before authenticating.
  httplib::Result r = served->Client()->Post("/metrics", "", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(served->Stop().exit_code, 0);
}

TEST_F(ServeTest, UnknownPathsAre404AndOtherMethods405) {
  std::unique_ptr<Served> served = Served::Start(url_);
  ASSERT_NE(served, nullptr);
  auto [status, body] = served->Get("/no-such-path");
  EXPECT_EQ(status, 404);
  EXPECT_EQ(body, "{\"error\":\"not found\"}\n");
  std::tie(status, body) = served->Get("/metrics/extra");
  EXPECT_EQ(status, 404);
  std::unique_ptr<httplib::Client> client = served->Client();
  httplib::Result r = client->Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "GET, HEAD");
  EXPECT_THAT(r->body, HasSubstr("\"error\":"));
  r = client->Delete("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  r = client->Put("/api/streams", "x", "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  r = client->Head("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(served->Stop().exit_code, 0);
}

// --allow-writes opens the store writable and lets the console's POSTs
// write (tests/tools/console_api_test.cc has the checks in detail); without
// it they are 403 and the store is opened read-only.
TEST_F(ServeTest, AllowWritesLetsTheConsoleWrite) {
  OutboxMessage message;
  message.destination = "billing";
  message.payload = "x";
  ASSERT_OK(store_->outbox().Enqueue({message}));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> claimed,
                       store_->outbox().Claim("w", 1, absl::Minutes(5)));
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_OK(store_->outbox().MarkFailed(claimed[0].id, "rejected", 1));
  const std::string retry =
      absl::StrCat("/api/outbox/messages/", claimed[0].id, "/retry");

  std::unique_ptr<Served> served = Served::Start(url_);
  ASSERT_NE(served, nullptr);
  auto [status, body] = served->Get("/api/console");
  EXPECT_THAT(body, HasSubstr("\"allow_writes\":false"));
  httplib::Result r = served->Client()->Post(
      retry.c_str(), {{"X-Eventstore-Csrf", std::string(64, '0')}},
      "operator=ci", "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_EQ(served->Stop().exit_code, 0);

  served = Served::Start(url_, {"--allow-writes"});
  ASSERT_NE(served, nullptr);
  std::tie(status, body) = served->Get("/api/console");
  EXPECT_THAT(body, HasSubstr("\"allow_writes\":true"));
  const size_t at = body.find("\"csrf_token\":\"");
  ASSERT_NE(at, std::string::npos) << body;
  const std::string csrf = body.substr(at + 14, 64);
  r = served->Client()->Post(retry.c_str(), {{"X-Eventstore-Csrf", csrf}},
                             "operator=ci",
                             "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->body, HasSubstr("\"status\":\"pending\""));
  const CliResult stopped = served->Stop();
  EXPECT_EQ(stopped.exit_code, 0);
  EXPECT_THAT(stopped.err,
              HasSubstr(absl::StrCat("operator \"ci\": retry outbox message ",
                                     claimed[0].id, ": done")));
}

TEST_F(ServeTest, NonLoopbackAddressNeedsATokenOrInsecure) {
  CliResult r = RunCli({"serve", url_, "--listen", "0.0.0.0:0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not a loopback address"));
  EXPECT_THAT(r.err, HasSubstr("--token-file"));
  EXPECT_EQ(r.out, "");
  r = RunCli({"serve", url_, "--listen", "[::]:0"});
  EXPECT_EQ(r.exit_code, 2);
  r = RunCli({"serve", url_, "--listen", "example.com:80"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--listen"));
  r = RunCli({"serve", url_, "--listen", "0.0.0.0:0", "--token-file",
              dir_->File("no-such-file")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--token-file"));

  // With --insecure (or a token) it serves.
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--insecure"},
        std::vector<std::string>{"--token-file", token_file_}}) {
    std::vector<std::string> args = {"serve", url_, "--listen", "0.0.0.0:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<CliProcess> p,
                         CliProcess::Start(args));
    ASSERT_TRUE(p->WaitForOutput("\n", absl::Seconds(60))) << p->Errors();
    EXPECT_THAT(p->Output(), HasSubstr("listening on http://0.0.0.0:"));
    ASSERT_OK_AND_ASSIGN(CliResult stopped, p->Stop(SIGTERM));
    EXPECT_EQ(stopped.exit_code, 0) << stopped.err;
  }
}

TEST_F(ServeTest, StopsCleanlyOnSigtermAndSigint) {
  for (const int signal : {SIGTERM, SIGINT}) {
    std::unique_ptr<Served> served = Served::Start(url_);
    ASSERT_NE(served, nullptr);
    EXPECT_EQ(served->Get("/healthz").first, 200);
    const CliResult r = served->Stop(signal);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("stopped"));
    // The port is closed.
    EXPECT_EQ(served->Get("/healthz").first, -1);
  }
}

// SIGTERM does not wait for long polls: a request waiting 30 s for events
// is answered at once, and the process exits long before the wait would
// have ended. With --threads 2 one long poll may wait at a time, so a
// probe answered 503 at once proves the poller is waiting.
TEST_F(ServeTest, SigtermEndsALongPollAtOnce) {
  std::unique_ptr<Served> served = Served::Start(url_, {"--threads", "2"});
  ASSERT_NE(served, nullptr);
  std::pair<int, std::string> waited;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  // The poller retries while a probe holds the one waiting slot; a probe
  // waits 1 s at most.
  std::thread poller([&] {
    do {
      waited = served->Get("/api/events?wait=30");
    } while (waited.first == 503 && absl::Now() < deadline);
  });
  int second = 0;
  while (absl::Now() < deadline) {
    second = served->Get("/api/events?wait=1").first;
    if (second == 503) break;
  }
  ASSERT_EQ(second, 503) << "the first long poll never started waiting";
  const absl::Time stopping = absl::Now();
  const CliResult r = served->Stop(SIGTERM);
  poller.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(15));
  EXPECT_EQ(waited.first, 200) << waited.second;
  EXPECT_THAT(waited.second, HasSubstr("\"events\":[]"));
}

TEST_F(ServeTest, PortInUseIsExitCode1) {
  std::unique_ptr<Served> served = Served::Start(url_);
  ASSERT_NE(served, nullptr);
  const CliResult r = RunCli(
      {"serve", url_, "--listen", absl::StrCat("127.0.0.1:", served->port())});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot listen on 127.0.0.1:"));
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(served->Stop().exit_code, 0);
}

TEST_F(ServeTest, MissingStoreIsAnErrorNotAnEmptyStore) {
  const CliResult r =
      RunCli({"serve", absl::StrCat("sqlite://", dir_->File("absent.db")),
              "--listen", "127.0.0.1:0"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
  EXPECT_EQ(r.out, "");
}

TEST_F(ServeTest, StoreGaugesEqualKnownValues) {
  FillKnown(*store_);
  std::unique_ptr<Served> served = Served::Start(url_);
  ASSERT_NE(served, nullptr);
  httplib::Result r = served->Client()->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  ExpectKnownGauges(r->body, *store_);
  // Resetting a checkpoint removes its series from the next scrape.
  ASSERT_OK(store_->checkpoints().Reset("caught-up"));
  const std::string after = served->Metrics();
  EXPECT_EQ(Sample(after,
                   "eventstore_store_projection_lag_events{"
                   "projection=\"caught-up\"}"),
            std::nullopt);
  EXPECT_EQ(served->Stop().exit_code, 0);
}

// The process's own calls are measured: the JSON API's reads go through
// the instrumented store.
TEST_F(ServeTest, ProcessMetricsCountItsOwnReads) {
  ASSERT_OK(
      store_->Append("order-1", ExpectedVersion::NoStream(), {Placed("1")}));
  std::unique_ptr<Served> served = Served::Start(url_);
  ASSERT_NE(served, nullptr);
  EXPECT_EQ(served->Get("/api/streams/order-1/events").first, 200);
  const std::string text = served->Metrics();
  EXPECT_THAT(text, HasSubstr("eventstore_reads_total{backend=\"sqlite\""));
  EXPECT_EQ(served->Stop().exit_code, 0);
}

TEST_F(ServeTest, PromtoolAcceptsTheScrape) {
  ASSERT_TRUE(std::ifstream(kPromtool).good())
      << kPromtool << " is missing: run scripts/install-deps (package "
      << "prometheus)";
  FillKnown(*store_);
  std::unique_ptr<Served> served = Served::Start(url_);
  ASSERT_NE(served, nullptr);
  int status = -1;
  const std::string output = Promtool(served->Metrics(), &status);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "");
  EXPECT_EQ(served->Stop().exit_code, 0);
}

TEST_F(ServeTest, ScrapeWhileEightThreadsAppend) {
  ScrapeWhileEightThreadsAppend(url_);
}

// Clients that open connections and send half a request hold a worker only
// until the read timeout (5 s): with both workers taken by them, a request
// still gets through once the timeout frees one.
TEST_F(ServeTest, StalledClientsDoNotBlockOthersForever) {
  std::unique_ptr<Served> served = Served::Start(url_, {"--threads", "2"});
  ASSERT_NE(served, nullptr);
  std::vector<int> stalled;
  for (int i = 0; i < 2; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(served->port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(
        connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    const std::string half = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    ASSERT_EQ(write(fd, half.data(), half.size()),
              static_cast<ssize_t>(half.size()));
    stalled.push_back(fd);
  }
  auto [status, body] = served->Get("/healthz");
  EXPECT_EQ(status, 200) << body;
  for (const int fd : stalled) close(fd);
  EXPECT_EQ(served->Stop().exit_code, 0);
}

// --- the binary on PostgreSQL ----------------------------------------------

#ifdef EVENTSTORE_TEST_POSTGRES

class ServePostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(base_url_, test::SharedPostgresUrl());
    url_ = absl::StrCat(base_url_, "?schema=", test::UniqueSchemaName());
    ASSERT_OK_AND_ASSIGN(store_, OpenEventStore(url_));
  }

  std::string base_url_;
  std::string url_;
  std::unique_ptr<EventStore> store_;
};

TEST_F(ServePostgresTest, StoreGaugesEqualKnownValuesAndPassPromtool) {
  FillKnown(*store_);
  // A password in the URL (the test server trusts local connections, so
  // libpq never sends it) is never printed.
  std::string with_password = url_;
  with_password.insert(with_password.find('@'), ":hunter2pw");
  std::unique_ptr<Served> served = Served::Start(with_password);
  ASSERT_NE(served, nullptr);
  const std::string text = served->Metrics();
  ExpectKnownGauges(text, *store_);
  // The connection pool reports to the same metrics.
  EXPECT_THAT(text,
              HasSubstr("eventstore_pool_connections{backend=\"postgres\""));
  int status = -1;
  const std::string output = Promtool(text, &status);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "");
  auto [ready, body] = served->Get("/readyz");
  EXPECT_EQ(ready, 200) << body;
  const CliResult r = served->Stop();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out + r.err, Not(HasSubstr("hunter2pw")));
  EXPECT_THAT(r.err, HasSubstr("***"));
}

TEST_F(ServePostgresTest, ScrapeWhileEightThreadsAppend) {
  ScrapeWhileEightThreadsAppend(url_);
}

// /readyz is 503 once the database server is gone (and /metrics still
// answers, with eventstore_store_up 0), and 200 again when it is back.
TEST(ServePostgresServerTest, ReadyzFollowsTheDatabase) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<test::PostgresServer> server,
                       test::PostgresServer::Start({}));
  const std::string url =
      absl::StrCat(server->url(), "?schema=events&connect_timeout_ms=2000");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         OpenEventStore(url));
    ASSERT_OK(
        store->Append("order-1", ExpectedVersion::NoStream(), {Placed("1")}));
  }
  std::unique_ptr<Served> served = Served::Start(url);
  ASSERT_NE(served, nullptr);
  auto [status, body] = served->Get("/readyz");
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(Sample(served->Metrics(), "eventstore_store_up"), 1);

  ASSERT_OK(server->Stop());
  // The first query after the stop may meet a dead pooled connection and
  // fail; every answer now must be 503 until the server is back.
  std::tie(status, body) = served->Get("/readyz");
  EXPECT_EQ(status, 503) << body;
  EXPECT_THAT(body, HasSubstr("\"status\":\"unavailable\""));
  std::tie(status, body) = served->Get("/readyz");
  EXPECT_EQ(status, 503) << body;
  // The gauges keep the values of the last read that worked.
  const std::string text = served->Metrics();
  EXPECT_EQ(Sample(text, "eventstore_store_up"), 0) << text;
  EXPECT_EQ(Sample(text, "eventstore_store_events"), 1);
  EXPECT_EQ(served->Get("/healthz").first, 200);

  ASSERT_OK(server->StartAgain());
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  do {
    std::tie(status, body) = served->Get("/readyz");
  } while (status != 200 && absl::Now() < deadline);
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(Sample(served->Metrics(), "eventstore_store_up"), 1);
  const CliResult r = served->Stop();
  EXPECT_EQ(r.exit_code, 0);
  // stderr tells when the gauges could not be read, and when they could
  // again (once each, not on every scrape).
  EXPECT_THAT(r.err, HasSubstr("cannot read the store's gauges"));
  EXPECT_THAT(r.err, HasSubstr("the store answers again"));
}

#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace
}  // namespace eventstore
