// The web console of `eventstore serve` (docs/console.md) in a real headless
// Chromium, once per backend. This GoogleTest is the driver: it seeds a
// store, serves it, keeps appending to it, and runs the browser script
// tests/browser/console.test.mjs (puppeteer-core over Debian's chromium)
// under node; the script asserts what the pages show and saves a
// screenshot of each page. The test passes when the script exits 0 and
// every screenshot exists.
//
// What the driver seeds (the same on both backends; the counts are exact):
//   order-1        45 events: OrderPlaced{order_id "o-1", items}, then 44
//                  OrderShipped{order_id "o-1", carrier "carrier-N"}, each
//                  with a correlation id in its metadata; their types'
//                  descriptors are recorded, so the JSON API renders `data`
//   order-2..25    one OrderPlaced{order_id "o-N"} each
//   legacy-1       one event of type "acme.legacy.v1.CustomerImported", whose
//                  descriptor the store never recorded: shown as hex
//   checkpoints    "order-totals" 12 events behind the head;
//                  "search-index" at the head, its lease
//                  "projection:search-index" held by this process
//                  (EventStore::TryAcquireLease) until the test ends
//   dead letter    order-3's event parked for "order-totals"
//   outbox         4 messages to "billing": one claimed and failed for good
//                  (MarkFailed with max_attempts 1), three pending
// The store: a SQLite file in a temporary directory, or a new schema on the
// tests' throwaway PostgreSQL server (SharedPostgresUrl), opened by a URL
// with a password added that the console must mask (facts: url_secret).
// Then, while the script runs, a writer thread appends one
// eventstore.test.v1.Tick to "ticker-1" every 100 ms (so every lag grows
// with it), and ServeServers serve the store on 127.0.0.1 (free ports),
// each sampling activity every 200 ms and lag every 200 ms: one read-only,
// one with allow_writes, one read-only that requires a bearer token
// (ServeOptions::token). On PostgreSQL, two more serve FailoverEventStores
// ("failover:URL&journal=sqlite:PATH", read-only, ServeOptions::failover
// set, as `eventstore serve` does for a store it opened as one): one over
// the seeded store, in primary mode, and one over a private PostgreSQL
// server that the test stops before the script runs (the shared one must
// stay up), then appends one event through, so that it is in fallback
// mode with one append in its journal.
//
// The script gets, in its environment:
//   CONSOLE_READONLY_URL  "http://127.0.0.1:PORT" of the read-only server
//   CONSOLE_WRITES_URL    the same of the server with allow_writes (the same
//                         store: what the script changes there, it sees on
//                         the read-only one too)
//   CONSOLE_TOKEN_URL     the same of the read-only server with a token
//   CONSOLE_TOKEN         that server's token
//   CONSOLE_FAILOVER_URL  the primary-mode failover store's server, and
//   CONSOLE_FALLBACK_URL  the fallback-mode one's (PostgreSQL only; not set
//                         on SQLite, which has no failover store here)
//   CONSOLE_BACKEND       "sqlite" or "postgres"
//   CONSOLE_OUT           the folder for its screenshots (and Chromium's
//                         --user-data-dir), emptied before each run and kept
//                         after it: <build>/browser-output/<backend>/
//   CONSOLE_FACTS         a JSON file of what was seeded (WriteFacts below
//                         names every field)
//   CONSOLE_CHROMIUM      the browser's path (/usr/bin/chromium)
// Its stdout and stderr are printed when it fails, and kept as
// CONSOLE_OUT/node-output.txt either way. CONSOLE_TEST_SCRIPT, when set in
// the test's own environment, names another script to run instead (a
// stand-in, or a copy being changed).
//
// A screenshot is expected for each page of the console: a PNG in
// CONSOLE_OUT whose name is the page's key, alone or followed by '-', '_'
// or '.' (overview.png, dead-letters-writes.png): overview, streams,
// stream, tail, projections, dead-letters, outbox.
//
// Run one backend: ctest -R browser_console_sqlite --output-on-failure.

#include <httplib.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/lease.h"
#include "eventstore/open_event_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/prometheus/prometheus_instrumentation.h"
#include "eventstore/store_inspector.h"
#include "eventstore/test/v1/events.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"
#include "tests/tools/cli_process.h"
#include "tests/tools/running_serve_server.h"
#include "tools/serve/bearer_token.h"
#include "tools/serve/serve_server.h"

#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif

namespace eventstore {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;

constexpr int kOrderStreams = 25;
constexpr int kOrderOneEvents = 45;
constexpr int kProjectionBehind = 12;
constexpr int kOutboxPending = 3;
constexpr char kUnknownType[] = "acme.legacy.v1.CustomerImported";
// The token server's token: distinctive, so that the script can tell it
// never appears in a page.
constexpr char kToken[] = "console-t0ken-5d1e8a";
// The pages a screenshot must exist for (see the file comment).
constexpr const char* kPages[] = {"overview", "streams",     "stream",
                                  "tail",     "projections", "dead-letters",
                                  "outbox"};

Value StringValue(const std::string& s) {
  Value v;
  v.set_string_value(s);
  return v;
}
Value NumberValue(int64_t n) {
  Value v;
  v.set_number_value(static_cast<double>(n));
  return v;
}

// What Seed() made, for the script (CONSOLE_FACTS) and the driver.
struct Seeded {
  int64_t events = 0;
  int64_t streams = 0;
  std::string head;
  std::string projection_checkpoint;
  std::string dead_letter_event_id;
  std::string dead_letter_error;
  int64_t outbox_failed_id = 0;
  std::unique_ptr<Lease> search_index_lease;
};

// Appends `events` to `stream`, which must not exist yet.
void AppendNew(EventStore& store, const std::string& stream,
               const std::vector<EventData>& events) {
  ASSERT_OK(store.Append(stream, ExpectedVersion::NoStream(), events));
}

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  placed.add_items("book");
  placed.add_items("pen");
  v1::EventMetadata meta;
  meta.set_correlation_id(absl::StrCat("checkout-", order_id));
  return EventData::From(placed, meta);
}

EventData Shipped(const std::string& order_id, int n) {
  test::v1::OrderShipped shipped;
  shipped.set_order_id(order_id);
  shipped.set_carrier(absl::StrCat("carrier-", n));
  v1::EventMetadata meta;
  meta.set_correlation_id(absl::StrCat("checkout-", order_id));
  return EventData::From(shipped, meta);
}

// Seeds `store` as the file comment says.
void Seed(EventStore& store, Seeded* seeded) {
  std::vector<EventData> order_one = {Placed("o-1")};
  for (int n = 2; n <= kOrderOneEvents; ++n) {
    order_one.push_back(Shipped("o-1", n));
  }
  ASSERT_NO_FATAL_FAILURE(AppendNew(store, "order-1", order_one));
  for (int i = 2; i <= kOrderStreams; ++i) {
    ASSERT_NO_FATAL_FAILURE(AppendNew(store, absl::StrCat("order-", i),
                                      {Placed(absl::StrCat("o-", i))}));
  }
  EventData unknown;
  unknown.type = kUnknownType;
  unknown.payload = std::string("\x0a\x04\x61\x63\x6d\x65\x10\x96\x01", 9);
  ASSERT_NO_FATAL_FAILURE(AppendNew(store, "legacy-1", {unknown}));
  seeded->events = kOrderOneEvents + (kOrderStreams - 1) + 1;
  seeded->streams = kOrderStreams + 1;

  // The whole log (small), to place the checkpoints.
  ReadAllOptions all;
  all.max_count = seeded->events + 1;
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store.ReadAll(all));
  ASSERT_EQ(page.events.size(), static_cast<size_t>(seeded->events));
  seeded->head = page.events.back().position.ToString();
  const RecordedEvent& at =
      page.events[page.events.size() - 1 - kProjectionBehind];
  seeded->projection_checkpoint = at.position.ToString();
  ASSERT_OK(store.checkpoints().Save("order-totals", at.position,
                                     seeded->events - kProjectionBehind));
  ASSERT_OK_AND_ASSIGN(ProjectionLag lag,
                       store.checkpoints().Lag("order-totals", {}));
  ASSERT_EQ(lag.events_behind, kProjectionBehind);
  ASSERT_OK(store.checkpoints().Save(
      "search-index", page.events.back().position, seeded->events));

  // A dead letter of order-totals: order-3's event.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> order_three,
                       store.ReadStream("order-3"));
  ASSERT_EQ(order_three.size(), 1u);
  seeded->dead_letter_event_id = order_three[0].id.ToString();
  seeded->dead_letter_error = "order-totals: no price list for order o-3";
  ASSERT_OK(store.dead_letters().Add("order-totals", order_three[0],
                                     seeded->dead_letter_error));

  // The outbox: the first message given up, the others pending.
  std::vector<OutboxMessage> messages(1 + kOutboxPending);
  for (size_t i = 0; i < messages.size(); ++i) {
    messages[i].destination = "billing";
    messages[i].key = absl::StrCat("invoice-", i + 1);
    messages[i].payload = absl::StrCat("{\"invoice\":", i + 1, "}");
    messages[i].headers["content-type"] = "application/json";
  }
  ASSERT_OK(store.outbox().Enqueue(messages));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> claimed,
                       store.outbox().Claim("driver", 1, absl::Minutes(5)));
  ASSERT_EQ(claimed.size(), 1u);
  seeded->outbox_failed_id = claimed[0].id;
  ASSERT_OK(store.outbox().MarkFailed(claimed[0].id,
                                      "billing rejected invoice-1: 422", 1));

  // search-index "runs": this process holds its runner's lease.
  ASSERT_OK_AND_ASSIGN(seeded->search_index_lease,
                       store.TryAcquireLease("projection:search-index"));
  ASSERT_NE(seeded->search_index_lease, nullptr);
}

// Writes CONSOLE_FACTS: the JSON object the script reads. Counts are as
// seeded, before the ticker started; the ticker adds events to the log,
// to "ticker-1" and to every projection's lag.
void WriteFacts(const std::string& path, const std::string& backend,
                const std::string& url_secret, EventStore& store,
                const Seeded& seeded) {
  Struct facts;
  auto& f = *facts.mutable_fields();
  f["backend"] = StringValue(backend);
  f["events"] = NumberValue(seeded.events);
  f["streams"] = NumberValue(seeded.streams);
  f["head"] = StringValue(seeded.head);
  f["order_stream"] = StringValue("order-1");
  f["order_stream_events"] = NumberValue(kOrderOneEvents);
  f["order_stream_prefix"] = StringValue("order-");
  f["order_streams"] = NumberValue(kOrderStreams);
  // The JSON API renders proto field names as they are: data.order_id.
  f["order_field"] = StringValue("order_id");
  f["order_value"] = StringValue("o-1");
  f["order_type"] = StringValue("eventstore.test.v1.OrderPlaced");
  f["unknown_stream"] = StringValue("legacy-1");
  f["unknown_type"] = StringValue(kUnknownType);
  f["projection"] = StringValue("order-totals");
  f["projection_events_behind"] = NumberValue(kProjectionBehind);
  f["projection_checkpoint"] = StringValue(seeded.projection_checkpoint);
  f["running_projection"] = StringValue("search-index");
  f["driver_pid"] = NumberValue(::getpid());
  // The pid the store reports for the lease (PostgreSQL: the server
  // process of the lease's connection), null when it cannot tell.
  absl::StatusOr<std::optional<LeaseHolder>> holder =
      store.inspector().FindLeaseHolder("projection:search-index");
  if (holder.ok() && holder->has_value()) {
    f["lease_holder_pid"] = NumberValue((*holder)->pid);
  } else {
    f["lease_holder_pid"].set_null_value(google::protobuf::NULL_VALUE);
  }
  Struct dead_letter;
  (*dead_letter.mutable_fields())["projection"] = StringValue("order-totals");
  (*dead_letter.mutable_fields())["event_id"] =
      StringValue(seeded.dead_letter_event_id);
  (*dead_letter.mutable_fields())["stream"] = StringValue("order-3");
  (*dead_letter.mutable_fields())["error"] =
      StringValue(seeded.dead_letter_error);
  *f["dead_letter"].mutable_struct_value() = dead_letter;
  f["outbox_failed_id"] = NumberValue(seeded.outbox_failed_id);
  f["outbox_pending"] = NumberValue(kOutboxPending);
  f["ticker_stream"] = StringValue("ticker-1");
  f["ticker_type"] = StringValue("eventstore.test.v1.Tick");
  // A password put in the store's URL (PostgreSQL): no page may show it.
  if (url_secret.empty()) {
    f["url_secret"].set_null_value(google::protobuf::NULL_VALUE);
  } else {
    f["url_secret"] = StringValue(url_secret);
  }
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  ASSERT_TRUE(
      google::protobuf::util::MessageToJsonString(facts, &json, options).ok());
  test::WriteFileBytes(path, json);
}

// Appends one Tick to "ticker-1" every 100 ms until destroyed.
class Ticker {
 public:
  explicit Ticker(EventStore& store)
      : store_(store), thread_([this] { Run(); }) {}
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  ~Ticker() { Stop(); }

  void Stop() {
    if (!stop_.HasBeenNotified()) stop_.Notify();
    if (thread_.joinable()) thread_.join();
  }
  int64_t appended() const { return appended_.load(); }
  // The first failed append's status (OK when none failed).
  absl::Status error() {
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  void Run() {
    // The wait paces the writer; the test synchronises on the script's
    // exit, never on this interval.
    while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(100))) {
      test::v1::Tick tick;
      tick.set_writer(1);
      tick.set_sequence(appended_.load() + 1);
      absl::StatusOr<AppendResult> r = store_.Append(
          "ticker-1", ExpectedVersion::Any(), {EventData::From(tick)});
      if (r.ok()) {
        ++appended_;
      } else {
        absl::MutexLock lock(&mu_);
        if (error_.ok()) error_ = r.status();
      }
    }
  }

  EventStore& store_;
  absl::Notification stop_;
  std::atomic<int64_t> appended_{0};
  absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// The options of every server here: the store opened from `url`, on a free
// loopback port, sampling often (the charts draw within the test's time).
tools::ServeOptions ConsoleOptions(const std::string& url, bool allow_writes) {
  tools::ServeOptions options;
  options.listen = {"127.0.0.1", 0};
  options.url = url;
  options.allow_writes = allow_writes;
  options.activity_interval = absl::Milliseconds(200);
  options.lag_interval = absl::Milliseconds(200);
  return options;
}

// The PNG files in `dir`, by name.
std::vector<std::string> Screenshots(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && absl::EndsWith(name, ".png") &&
        entry.file_size() > 0) {
      names.push_back(name);
    }
  }
  return names;
}

// Whether `name` is a screenshot of `page`: "page.png", "page-....png",
// "page_....png" or "page.....png" ("stream-x.png" is not "streams").
bool IsScreenshotOf(const std::string& name, const std::string& page) {
  if (!absl::StartsWith(name, page)) return false;
  const char next = name[page.size()];
  return next == '.' || next == '-' || next == '_';
}

// A FailoverEventStore for RunConsole to serve (not owned), the URL it was
// opened from, and the variable that gives the script its server's URL.
struct ServedFailover {
  std::string env;
  std::string url;
  FailoverEventStore* store = nullptr;
};

class ConsoleBrowserTest : public ::testing::Test {
 protected:
  // Seeds the store at `url` (`url_secret`: the password in it, if any),
  // serves it and runs the browser script against it. Each of
  // `failovers` is served too, read-only, with ServeOptions::failover.
  void RunConsole(const std::string& backend, const std::string& url,
                  const std::string& url_secret,
                  const std::vector<ServedFailover>& failovers = {}) {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                         OpenEventStore(url));
    Seeded seeded;
    ASSERT_NO_FATAL_FAILURE(Seed(*store, &seeded));

    // Kept after the test for people to look at; emptied first, so that an
    // earlier run's screenshots cannot stand in for this run's.
    const std::string out =
        absl::StrCat(EVENTSTORE_BROWSER_OUTPUT_DIR, "/", backend);
    std::error_code error;
    std::filesystem::remove_all(out, error);
    ASSERT_TRUE(std::filesystem::create_directories(out, error))
        << out << ": " << error.message();
    const std::string facts = absl::StrCat(out, "/facts.json");
    ASSERT_NO_FATAL_FAILURE(
        WriteFacts(facts, backend, url_secret, *store, seeded));

    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<test::RunningServeServer> readonly,
        test::RunningServeServer::Start(*store, ConsoleOptions(url, false)));
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<test::RunningServeServer> writes,
        test::RunningServeServer::Start(*store, ConsoleOptions(url, true)));
    tools::ServeOptions token_options = ConsoleOptions(url, false);
    ASSERT_OK_AND_ASSIGN(token_options.token,
                         tools::BearerToken::FromString(kToken));
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<test::RunningServeServer> with_token,
        test::RunningServeServer::Start(*store, std::move(token_options)));
    std::map<std::string, std::string> env = {
        {"CONSOLE_READONLY_URL", readonly->base_url()},
        {"CONSOLE_WRITES_URL", writes->base_url()},
        {"CONSOLE_TOKEN_URL", with_token->base_url()},
        {"CONSOLE_TOKEN", kToken},
        {"CONSOLE_BACKEND", backend},
        {"CONSOLE_OUT", out},
        {"CONSOLE_FACTS", facts},
        {"CONSOLE_CHROMIUM", EVENTSTORE_CHROMIUM}};
    std::vector<std::unique_ptr<test::RunningServeServer>> failover_servers;
    for (const ServedFailover& failover : failovers) {
      tools::ServeOptions options = ConsoleOptions(failover.url, false);
      options.failover = failover.store;
      ASSERT_OK_AND_ASSIGN(
          std::unique_ptr<test::RunningServeServer> server,
          test::RunningServeServer::Start(*failover.store, std::move(options)));
      env[failover.env] = server->base_url();
      failover_servers.push_back(std::move(server));
    }
    Ticker ticker(*store);

    const char* other_script = std::getenv("CONSOLE_TEST_SCRIPT");
    const std::string script =
        other_script != nullptr && other_script[0] != '\0'
            ? std::string(other_script)
            : absl::StrCat(EVENTSTORE_SOURCE_DIR,
                           "/tests/browser/console.test.mjs");
    ASSERT_TRUE(test::FileExists(script)) << script;
    // cli_process.cc runs the binary EVENTSTORE_CLI names: for this test,
    // node (see tests/browser/CMakeLists.txt).
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<test::CliProcess> node,
                         test::CliProcess::Start({script}, env));
    // Below ctest's timeout (300 s), so that a hung script still reports
    // what it printed.
    absl::StatusOr<test::CliResult> result = node->Stop(0, absl::Seconds(240));
    const std::string output = absl::StrCat("--- stdout\n", node->Output(),
                                            "--- stderr\n", node->Errors());
    test::WriteFileBytes(absl::StrCat(out, "/node-output.txt"), output);
    ticker.Stop();
    EXPECT_OK(readonly->Stop());
    EXPECT_OK(writes->Stop());
    EXPECT_OK(with_token->Stop());
    for (const auto& server : failover_servers) EXPECT_OK(server->Stop());

    ASSERT_OK(result) << output;
    EXPECT_EQ(result->exit_code, 0)
        << "node " << script << " failed (output kept in " << out
        << "/node-output.txt):\n"
        << output;
    EXPECT_OK(ticker.error());
    EXPECT_GT(ticker.appended(), 0);
    const std::vector<std::string> shots = Screenshots(out);
    for (const char* page : kPages) {
      bool found = false;
      for (const std::string& name : shots) found |= IsScreenshotOf(name, page);
      EXPECT_TRUE(found) << "no screenshot of the " << page << " page in "
                         << out << " (PNGs: " << absl::StrJoin(shots, ", ")
                         << ")";
    }
  }
};

TEST_F(ConsoleBrowserTest, Sqlite) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<test::TempDir> dir,
                       test::TempDir::Create());
  RunConsole("sqlite", absl::StrCat("sqlite://", dir->File("console.db")), "");
}

#ifdef EVENTSTORE_TEST_POSTGRES
// The user part of a postgresql:// URL with `password` added when it has
// none (the throwaway server trusts loopback and never asks for it), so
// that the console must mask it; `*added` tells whether it was.
std::string WithPassword(const std::string& url, const std::string& password,
                         bool* added) {
  *added = false;
  const std::string scheme = "postgresql://";
  const size_t at = url.find('@');
  if (!absl::StartsWith(url, scheme) || at == std::string::npos) return url;
  const std::string user = url.substr(scheme.size(), at - scheme.size());
  if (absl::StrContains(user, ':')) return url;
  *added = true;
  return absl::StrCat(scheme, user, ":", password, url.substr(at));
}

TEST_F(ConsoleBrowserTest, Postgres) {
  ASSERT_OK_AND_ASSIGN(std::string server_url, test::SharedPostgresUrl());
  const std::string schema = absl::StrCat("console_", ::getpid());
  const std::string secret = "console-s3cret";
  bool added = false;
  std::string url = WithPassword(server_url, secret, &added);
  absl::StrAppend(&url, absl::StrContains(url, '?') ? "&" : "?",
                  "schema=", schema);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<test::TempDir> dir,
                       test::TempDir::Create());
  // The same store through a FailoverEventStore in primary mode, its
  // journal a SQLite file of the test's (failover_url.h: the parameters
  // ride in the primary's query).
  const std::string failover_url = absl::StrCat(
      "failover:", url, "&journal=sqlite:", dir->File("journal.db"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> failover,
                       OpenEventStore(failover_url));
  auto* primary_mode = dynamic_cast<FailoverEventStore*>(failover.get());
  ASSERT_NE(primary_mode, nullptr) << "OpenEventStore(" << failover_url
                                   << ") did not open a FailoverEventStore";
  ASSERT_EQ(primary_mode->Status().mode, FailoverStatus::Mode::kPrimary);
  // And one in fallback mode: a failover store over a private server
  // (stopping the shared one would break the other tests), which is then
  // stopped, so that an append goes to the journal.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<test::PostgresServer> private_server,
                       test::PostgresServer::Start({}));
  const std::string private_url = private_server->url();
  const std::string fallback_url = absl::StrCat(
      "failover:", private_url, absl::StrContains(private_url, '?') ? "&" : "?",
      "journal=sqlite:", dir->File("fallback-journal.db"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> fallback,
                       OpenEventStore(fallback_url));
  auto* fallback_mode = dynamic_cast<FailoverEventStore*>(fallback.get());
  ASSERT_NE(fallback_mode, nullptr);
  ASSERT_OK(private_server->Stop());
  test::v1::Tick tick;
  tick.set_writer(2);
  tick.set_sequence(1);
  ASSERT_OK_AND_ASSIGN(AppendResult journaled,
                       fallback->Append("ticker-2", ExpectedVersion::Any(),
                                        {EventData::From(tick)}));
  ASSERT_TRUE(journaled.journaled);
  ASSERT_EQ(fallback_mode->Status().mode, FailoverStatus::Mode::kFallback);
  ASSERT_EQ(fallback_mode->Status().pending, 1);

  RunConsole("postgres", url, added ? secret : "",
             {{"CONSOLE_FAILOVER_URL", failover_url, primary_mode},
              {"CONSOLE_FALLBACK_URL", fallback_url, fallback_mode}});
  // Their connections closed before the schema is dropped.
  failover.reset();
  fallback.reset();
  // The shared server may be one the test did not start
  // (EVENTSTORE_TEST_PG_URL): leave nothing behind in it.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<test::RawPostgres> raw,
                       test::RawPostgres::Connect(server_url));
  EXPECT_OK(
      raw->Exec(absl::StrCat("DROP SCHEMA IF EXISTS ", schema, " CASCADE")));
}
#endif

}  // namespace
}  // namespace eventstore
