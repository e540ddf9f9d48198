// The web console's side of `eventstore serve` (docs/http-api.md,
// "Console"): its shell served without the token, GET /api/console and
// /api/activity, lease holders in /api/checkpoints, and the writes behind
// --allow-writes with their CSRF, Origin and operator checks. A
// ServeServer runs in process on a free loopback port over each backend a
// test can damage rows of (SQLite files, PostgreSQL), and is read with
// httplib::Client; bodies are parsed with protobuf's JSON parser.

#include <httplib.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/lease.h"
#include "eventstore/outbox_store.h"
#include "eventstore/prometheus/prometheus_instrumentation.h"
#include "eventstore/recorded_event.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"
#include "tests/support/wait_until.h"
#include "tests/tools/json_fields.h"
#include "tests/tools/running_serve_server.h"
#include "tools/serve/bearer_token.h"
#include "tools/serve/serve_server.h"

namespace eventstore {
namespace {

using ::eventstore::test::Field;
using ::eventstore::test::List;
using ::eventstore::test::Num;
using ::eventstore::test::Str;
using ::google::protobuf::ListValue;
using ::google::protobuf::Struct;
using ::google::protobuf::Value;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr char kToken[] = "s3cret-token";
constexpr char kPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'";

struct Reply {
  int status = 0;
  std::string body;
  httplib::Headers headers;
  Struct json;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

class ConsoleApiTest : public test::StoreTest {
 protected:
  // Starts the server over store() with `options`.
  void Serve(tools::ServeOptions options) {
    server_.reset();
    options.listen = {"127.0.0.1", 0};
    options.threads = 4;
    ASSERT_OK_AND_ASSIGN(
        server_, test::RunningServeServer::Start(store(), std::move(options)));
  }
  // A server with writes allowed; csrf_ is its token.
  void ServeWrites() {
    tools::ServeOptions options;
    options.allow_writes = true;
    Serve(std::move(options));
    if (HasFatalFailure()) return;
    const Reply console = Get("/api/console");
    ASSERT_EQ(console.status, 200) << console.body;
    csrf_ = Field(console.json, "csrf_token").string_value();
    ASSERT_EQ(csrf_.size(), 64u) << console.body;
  }

  httplib::Client Client() {
    if (server_ == nullptr) ADD_FAILURE() << "no server";
    httplib::Client client("127.0.0.1",
                           server_ != nullptr ? server_->port() : 1);
    client.set_url_encode(false);
    client.set_read_timeout(30, 0);
    return client;
  }

  static Reply ToReply(const std::string& what, httplib::Result& result,
                       bool json) {
    Reply reply;
    if (!result) {
      ADD_FAILURE() << what << ": " << httplib::to_string(result.error());
      return reply;
    }
    reply.status = result->status;
    reply.body = result->body;
    reply.headers = result->headers;
    if (json) {
      EXPECT_EQ(result->get_header_value("Content-Type"), "application/json")
          << what;
      EXPECT_TRUE(
          google::protobuf::util::JsonStringToMessage(reply.body, &reply.json)
              .ok())
          << what << ": " << reply.body;
    }
    return reply;
  }

  Reply Get(const std::string& path, httplib::Headers headers = {},
            bool json = true) {
    httplib::Client client = Client();
    httplib::Result result = client.Get(path, headers);
    return ToReply("GET " + path, result, json);
  }

  // POST `path` with the form `body`, the server's CSRF token (unless
  // `headers` gives the header) and `headers`.
  Reply Post(const std::string& path, const std::string& body,
             httplib::Headers headers = {}, bool csrf = true) {
    if (csrf) headers.emplace("X-Eventstore-Csrf", csrf_);
    httplib::Client client = Client();
    httplib::Result result =
        client.Post(path, headers, body, "application/x-www-form-urlencoded");
    return ToReply("POST " + path, result, true);
  }

  std::vector<RecordedEvent> AppendOrders(int count) {
    std::vector<EventData> events;
    for (int i = 0; i < count; ++i) events.push_back(Placed(absl::StrCat(i)));
    EXPECT_OK(store().Append("order-1", ExpectedVersion::Any(), events));
    absl::StatusOr<std::vector<RecordedEvent>> read =
        store().ReadStream("order-1");
    EXPECT_OK(read);
    return read.ok() ? *read : std::vector<RecordedEvent>{};
  }

  void TearDown() override { server_.reset(); }

  std::unique_ptr<test::RunningServeServer> server_;
  std::string csrf_;
};

TEST_P(ConsoleApiTest, ShellIsServedWithoutTheTokenAndTheApiNeedsIt) {
  tools::ServeOptions options;
  ASSERT_OK_AND_ASSIGN(options.token, tools::BearerToken::FromString(kToken));
  Serve(std::move(options));
  struct File {
    std::string path;
    std::string type;
  };
  for (const File& f : {File{"/", "text/html; charset=utf-8"},
                        File{"/console.js", "text/javascript; charset=utf-8"},
                        File{"/console.css", "text/css; charset=utf-8"}}) {
    SCOPED_TRACE(f.path);
    const Reply r = Get(f.path, {}, /*json=*/false);
    EXPECT_EQ(r.status, 200);
    EXPECT_FALSE(r.body.empty());
    EXPECT_EQ(r.Header("Content-Type"), f.type);
    EXPECT_EQ(r.Header("Content-Security-Policy"), kPolicy);
    EXPECT_EQ(r.Header("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(r.Header("Cache-Control"), "no-cache");
    EXPECT_EQ(r.Header("Referrer-Policy"), "no-referrer");
  }
  // The page loads its script and style.
  EXPECT_THAT(Get("/", {}, false).body, HasSubstr("console.js"));

  // Everything else still needs the token.
  EXPECT_EQ(Get("/api/info").status, 401);
  EXPECT_EQ(Get("/api/console").status, 401);
  EXPECT_EQ(Get("/index.html").status, 401);
  EXPECT_EQ(Get("/metrics", {}, false).status, 401);
  const httplib::Headers bearer = {
      {"Authorization", absl::StrCat("Bearer ", kToken)}};
  EXPECT_EQ(Get("/api/info", bearer).status, 200);
  EXPECT_EQ(Get("/api/console", bearer).status, 200);
}

TEST_P(ConsoleApiTest, ConsoleDescribesAReadOnlyServer) {
  tools::ServeOptions options;
  options.activity_interval = absl::Milliseconds(250);
  options.lag_interval = absl::Seconds(2);
  Serve(std::move(options));
  const Reply r = Get("/api/console");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(Field(r.json, "allow_writes").bool_value());
  EXPECT_EQ(Field(r.json, "csrf_token").kind_case(), Value::kNullValue);
  EXPECT_EQ(Field(r.json, "failover").kind_case(), Value::kNullValue);
  EXPECT_EQ(Field(r.json, "activity_interval_seconds").number_value(), 0.25);
  EXPECT_EQ(Field(r.json, "lag_interval_seconds").number_value(), 2);
}

TEST_P(ConsoleApiTest, ConsoleGivesATokenPerServerWithWrites) {
  ServeWrites();
  EXPECT_THAT(csrf_, MatchesRegex("[0-9a-f]{64}"));
  const Reply r = Get("/api/console");
  EXPECT_TRUE(Field(r.json, "allow_writes").bool_value());
  EXPECT_EQ(Field(r.json, "activity_interval_seconds").number_value(), 1);
  EXPECT_EQ(Field(r.json, "lag_interval_seconds").number_value(), 5);
  const std::string first = csrf_;
  ServeWrites();
  EXPECT_NE(csrf_, first);
}

TEST_P(ConsoleApiTest, WritesAre403WhenReadOnlyAndOtherMethods405) {
  Serve({});
  const std::vector<RecordedEvent> events = AppendOrders(1);
  ASSERT_OK(store().dead_letters().Add("totals", events[0], "boom"));
  const Reply r = Post(absl::StrCat("/api/dead-letters/totals/",
                                    events[0].id.ToString(), "/retry"),
                       "operator=al");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(Field(r.json, "error").string_value(),
            "the server is read-only: start it with --allow-writes");
  ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> letter,
                       store().dead_letters().Get("totals", events[0].id));
  EXPECT_EQ(letter->status, DeadLetterStatus::kParked);
  EXPECT_EQ(Post("/api/projections/totals/reset", "operator=al").status, 403);
  // A POST to any other API path, and other methods, stay 405.
  EXPECT_EQ(Post("/api/info", "operator=al").status, 405);
  httplib::Client client = Client();
  httplib::Result put = client.Put("/api/console", "", "text/plain");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
  httplib::Result root_post = client.Post("/", "", "text/plain");
  ASSERT_TRUE(root_post);
  EXPECT_EQ(root_post->status, 405);
}

TEST_P(ConsoleApiTest, WritesNeedTheCsrfTokenTheOriginAndAnOperator) {
  ServeWrites();
  const std::vector<RecordedEvent> events = AppendOrders(1);
  ASSERT_OK(store().dead_letters().Add("totals", events[0], "boom"));
  const std::string path = absl::StrCat("/api/dead-letters/totals/",
                                        events[0].id.ToString(), "/retry");
  Reply r = Post(path, "operator=al", {}, /*csrf=*/false);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_THAT(Field(r.json, "error").string_value(),
              HasSubstr("missing or wrong X-Eventstore-Csrf header"));
  r = Post(path, "operator=al", {{"X-Eventstore-Csrf", std::string(64, '0')}},
           false);
  EXPECT_EQ(r.status, 403) << r.body;
  r = Post(path, "operator=al", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_THAT(Field(r.json, "error").string_value(),
              HasSubstr("http://evil.example"));
  r = Post(path, "");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Field(r.json, "parameter").string_value(), "operator");
  r = Post(path, "operator=");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Field(r.json, "parameter").string_value(), "operator");
  r = Post(path, "operator=a%0Ab");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Field(r.json, "parameter").string_value(), "operator");
  r = Post(path, absl::StrCat("operator=", std::string(101, 'a')));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Field(r.json, "parameter").string_value(), "operator");
  // None of these wrote.
  ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> letter,
                       store().dead_letters().Get("totals", events[0].id));
  EXPECT_EQ(letter->status, DeadLetterStatus::kParked);

  // The page's own origin passes.
  r = Post(path, "operator=al",
           {{"Origin", absl::StrCat("http://127.0.0.1:", server_->port())}});
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_P(ConsoleApiTest, DeadLettersAreRetriedAndResolvedByTheOperator) {
  ServeWrites();
  const std::vector<RecordedEvent> events = AppendOrders(2);
  ASSERT_OK(store().dead_letters().Add("eu/totals", events[0], "boom"));
  const std::string base =
      absl::StrCat("/api/dead-letters/eu%2Ftotals/", events[0].id.ToString());
  ::testing::internal::CaptureStderr();
  Reply r = Post(base + "/retry", "operator=Ada+L%C3%B6w");
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Str(Field(r.json, "dead_letter"), "status"), "retrying");
  EXPECT_EQ(Str(Field(r.json, "dead_letter"), "event_id"),
            events[0].id.ToString());
  EXPECT_THAT(log, HasSubstr("operator \"Ada Löw\": retry dead letter "
                             "\"eu/totals\" "));

  r = Post(base + "/resolve", "operator=Ada+L%C3%B6w");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Str(Field(r.json, "dead_letter"), "status"), "resolved");
  EXPECT_EQ(Str(Field(r.json, "dead_letter"), "resolved_by"), "Ada Löw");
  ASSERT_OK_AND_ASSIGN(std::optional<DeadLetter> letter,
                       store().dead_letters().Get("eu/totals", events[0].id));
  ASSERT_TRUE(letter.has_value());
  EXPECT_EQ(letter->status, DeadLetterStatus::kResolved);

  // No such dead letter; not a UUID.
  r = Post(absl::StrCat("/api/dead-letters/totals/", events[1].id.ToString(),
                        "/retry"),
           "operator=al");
  EXPECT_EQ(r.status, 404) << r.body;
  r = Post("/api/dead-letters/totals/not-a-uuid/resolve", "operator=al");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Field(r.json, "parameter").string_value(), "event_id");
}

TEST_P(ConsoleApiTest, FailedOutboxMessagesAreRetried) {
  ServeWrites();
  std::vector<OutboxMessage> messages(2);
  for (int i = 0; i < 2; ++i) {
    messages[i].destination = "orders";
    messages[i].key = absl::StrCat("k", i);
    messages[i].payload = "p";
  }
  ASSERT_OK(store().outbox().Enqueue(messages));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> claimed,
                       store().outbox().Claim("w", 1, absl::Minutes(5)));
  ASSERT_EQ(claimed.size(), 1u);
  const int64_t failed = claimed[0].id;
  ASSERT_OK(store().outbox().MarkFailed(failed, "rejected", 1));

  Reply r = Post(absl::StrCat("/api/outbox/messages/", failed, "/retry"),
                 "operator=al");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Field(Field(r.json, "message"), "id").number_value(), failed);
  EXPECT_EQ(Str(Field(r.json, "message"), "status"), "pending");
  EXPECT_EQ(Field(Field(r.json, "message"), "attempts").number_value(), 0);
  EXPECT_EQ(Str(Field(r.json, "message"), "last_error"), "rejected");
  ASSERT_OK_AND_ASSIGN(OutboxStats stats, store().outbox().Stats());
  EXPECT_EQ(stats.failed, 0);
  EXPECT_EQ(stats.pending, 2);

  // Pending now: not failed, 409; no such id, 404; not an id, 400.
  r = Post(absl::StrCat("/api/outbox/messages/", failed, "/retry"),
           "operator=al");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_THAT(Field(r.json, "error").string_value(), HasSubstr("pending"));
  r = Post(absl::StrCat("/api/outbox/messages/", failed + 100, "/retry"),
           "operator=al");
  EXPECT_EQ(r.status, 404) << r.body;
  r = Post("/api/outbox/messages/abc/retry", "operator=al");
  EXPECT_EQ(r.status, 400) << r.body;
}

TEST_P(ConsoleApiTest, ProjectionResetWaitsForItsLease) {
  ServeWrites();
  const std::vector<RecordedEvent> events = AppendOrders(3);
  ASSERT_OK(store().checkpoints().Save("order-totals", events[1].position, 2));

  {
    // The projection runs: its runner holds the lease.
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                         store().TryAcquireLease("projection:order-totals"));
    ASSERT_NE(lease, nullptr);
    Reply r = Post("/api/projections/order-totals/reset", "operator=al");
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_THAT(Field(r.json, "error").string_value(),
                HasSubstr("projection \"order-totals\" is running: its lease "
                          "is held by"));
    ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> kept,
                         store().checkpoints().Get("order-totals"));
    EXPECT_TRUE(kept.has_value());

    // /api/checkpoints names the holder.
    r = Get("/api/checkpoints");
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(List(r.json, "checkpoints").values_size(), 1);
    const Value& holder =
        Field(List(r.json, "checkpoints").values(0), "lease_holder");
    ASSERT_EQ(holder.kind_case(), Value::kStructValue) << r.body;
    EXPECT_GT(Field(holder, "pid").number_value(), 0);
    if (GetParam().name.find("sqlite") != std::string::npos) {
      EXPECT_EQ(Field(holder, "pid").number_value(), getpid());
    }
  }

  Reply r = Get("/api/checkpoints");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      Field(List(r.json, "checkpoints").values(0), "lease_holder").kind_case(),
      Value::kNullValue)
      << r.body;

  r = Post("/api/projections/order-totals/reset", "operator=al");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Field(r.json, "projection").string_value(), "order-totals");
  EXPECT_TRUE(Field(r.json, "reset").bool_value());
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> gone,
                       store().checkpoints().Get("order-totals"));
  EXPECT_FALSE(gone.has_value());
  // The lease was given back: a runner can start.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       store().TryAcquireLease("projection:order-totals"));
  EXPECT_NE(lease, nullptr);
  lease.reset();
  // Nothing left to reset.
  r = Post("/api/projections/order-totals/reset", "operator=al");
  EXPECT_EQ(r.status, 404) << r.body;
}

// A rebuild is a request the projection's runner acts on, so unlike a
// reset it is taken while the runner holds its lease; it passes the same
// checks as every write, and /api/checkpoints shows it until a runner
// starts it.
TEST_P(ConsoleApiTest, ProjectionRebuildIsRequestedWhileItsRunnerRuns) {
  const std::vector<RecordedEvent> events = AppendOrders(3);
  ASSERT_OK(store().checkpoints().Save("order-totals", events[1].position, 2));
  ASSERT_OK(store().checkpoints().Save("search-index", events[2].position, 3));
  const std::string path = "/api/projections/order-totals/rebuild";
  const auto pending = [&](const std::string& projection) {
    absl::StatusOr<std::optional<Checkpoint>> cp =
        store().checkpoints().Get(projection);
    EXPECT_OK(cp);
    return cp.ok() && cp->has_value() &&
           (*cp)->rebuild_requested_at.has_value();
  };

  // Read-only: refused.
  Serve({});
  Reply r = Post(path, "operator=al");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(Field(r.json, "error").string_value(),
            "the server is read-only: start it with --allow-writes");
  EXPECT_FALSE(pending("order-totals"));

  // Without the CSRF header, from another origin, without an operator.
  ServeWrites();
  r = Post(path, "operator=al", {}, /*csrf=*/false);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_THAT(Field(r.json, "error").string_value(),
              HasSubstr("X-Eventstore-Csrf"));
  r = Post(path, "operator=al", {{"Origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 403) << r.body;
  r = Post(path, "");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Field(r.json, "parameter").string_value(), "operator");
  EXPECT_FALSE(pending("order-totals"));

  // The projection runs: its runner holds the lease. The request is taken
  // (202), recorded with the operator, and logged.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Lease> lease,
                       store().TryAcquireLease("projection:order-totals"));
  ASSERT_NE(lease, nullptr);
  const absl::Time before = absl::Now();
  ::testing::internal::CaptureStderr();
  r = Post(path, "operator=Ada+L%C3%B6w",
           {{"Origin", absl::StrCat("http://127.0.0.1:", server_->port())}});
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Field(r.json, "projection").string_value(), "order-totals");
  EXPECT_EQ(Field(r.json, "rebuild_requested_by").string_value(), "Ada Löw");
  EXPECT_THAT(Field(r.json, "rebuild_requested_at").string_value(),
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"));
  const Value& holder = Field(r.json, "lease_holder");
  ASSERT_EQ(holder.kind_case(), Value::kStructValue) << r.body;
  EXPECT_GT(Field(holder, "pid").number_value(), 0);
  EXPECT_THAT(log, HasSubstr("operator \"Ada Löw\": request rebuild of "
                             "projection \"order-totals\": requested"));
  ASSERT_OK_AND_ASSIGN(std::optional<Checkpoint> cp,
                       store().checkpoints().Get("order-totals"));
  ASSERT_TRUE(cp.has_value());
  ASSERT_TRUE(cp->rebuild_requested_at.has_value());
  EXPECT_EQ(cp->rebuild_requested_by, "Ada Löw");
  // (Both clocks: the store's may be the database server's.)
  EXPECT_LT(absl::AbsDuration(*cp->rebuild_requested_at - before),
            absl::Minutes(5));
  // The lease is still the runner's, and the checkpoint did not move.
  EXPECT_EQ(cp->position, events[1].position);

  // /api/checkpoints shows the request; null for the other projection.
  r = Get("/api/checkpoints");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "checkpoints").values_size(), 2) << r.body;
  const Value& requested = List(r.json, "checkpoints").values(0);
  ASSERT_EQ(Str(requested, "projection"), "order-totals");
  EXPECT_EQ(Str(requested, "rebuild_requested_by"), "Ada Löw");
  EXPECT_THAT(Str(requested, "rebuild_requested_at"),
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"));
  EXPECT_EQ(Field(requested, "lease_holder").kind_case(), Value::kStructValue);
  const Value& idle = List(r.json, "checkpoints").values(1);
  ASSERT_EQ(Str(idle, "projection"), "search-index");
  EXPECT_EQ(Field(idle, "rebuild_requested_at").kind_case(), Value::kNullValue)
      << r.body;
  EXPECT_EQ(Field(idle, "rebuild_requested_by").kind_case(),
            Value::kStringValue)
      << r.body;
  EXPECT_EQ(Str(idle, "rebuild_requested_by"), "");

  // Asked again, by someone else: the first request stands.
  const std::string first_at = Str(requested, "rebuild_requested_at");
  r = Post(path, "operator=bob");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Field(r.json, "rebuild_requested_by").string_value(), "Ada Löw");
  EXPECT_EQ(Field(r.json, "rebuild_requested_at").string_value(), first_at);
  lease.reset();

  // A projection with no checkpoint yet: the request makes its row, for
  // the first runner to start; nobody runs it.
  r = Post("/api/projections/eu%2Fnew/rebuild", "operator=al");
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(Field(r.json, "projection").string_value(), "eu/new");
  EXPECT_EQ(Field(r.json, "rebuild_requested_by").string_value(), "al");
  EXPECT_EQ(Field(r.json, "lease_holder").kind_case(), Value::kNullValue);
  EXPECT_TRUE(pending("eu/new"));
  r = Get("/api/checkpoints");
  bool listed = false;
  for (const Value& c : List(r.json, "checkpoints").values()) {
    if (Str(c, "projection") != "eu/new") continue;
    listed = true;
    EXPECT_EQ(Str(c, "rebuild_requested_by"), "al");
  }
  EXPECT_TRUE(listed) << r.body;

  // A bad name is a 400 naming the projection.
  r = Post("/api/projections/a%01b/rebuild", "operator=al");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(Field(r.json, "parameter").string_value(), "projection");
}

TEST_P(ConsoleApiTest, ActivityCountsAppendedEventsAndSamplesLag) {
  ASSERT_OK(store().Append("order-0", ExpectedVersion::Any(), {Placed("0")}));
  ASSERT_OK_AND_ASSIGN(Position head, store().HeadPosition());
  ASSERT_OK(store().checkpoints().Save("order-totals", head, 1));
  tools::ServeOptions options;
  options.activity_interval = absl::Milliseconds(50);
  options.lag_interval = absl::Milliseconds(100);
  Serve(std::move(options));

  // The first count's base is the head at start: wait for a sample.
  ASSERT_TRUE(test::WaitUntil(
      [&] {
        return List(Get("/api/activity").json, "appended").values_size() > 0;
      },
      absl::Seconds(30)))
      << Get("/api/activity").body;
  AppendOrders(5);

  // Every appended event lands in one sample or another.
  Reply r;
  const auto appended = [&] {
    r = Get("/api/activity");
    double sum = 0;
    for (const Value& s : List(r.json, "appended").values()) {
      sum += Field(s, "events").number_value();
    }
    return sum;
  };
  ASSERT_TRUE(
      test::WaitUntil([&] { return appended() == 5; }, absl::Seconds(30)))
      << r.body;
  EXPECT_EQ(Field(r.json, "interval_seconds").number_value(), 0.05);
  EXPECT_EQ(Field(r.json, "lag_interval_seconds").number_value(), 0.1);
  EXPECT_EQ(Field(r.json, "appended_error").kind_case(), Value::kNullValue);
  const Value& first = List(r.json, "appended").values(0);
  EXPECT_THAT(Str(first, "at"),
              MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"));

  // order-totals is 5 behind in the latest lag sample.
  const auto behind = [&] {
    r = Get("/api/activity");
    for (const Value& p : List(r.json, "projections").values()) {
      if (Str(p, "projection") != "order-totals") continue;
      const ListValue& samples = Field(p, "samples").list_value();
      if (samples.values_size() == 0) return -1.0;
      return Field(samples.values(samples.values_size() - 1), "events_behind")
          .number_value();
    }
    return -1.0;
  };
  ASSERT_TRUE(test::WaitUntil([&] { return behind() == 5; }, absl::Seconds(30)))
      << r.body;
}

// A failover store's mode is in /api/console.
TEST(ConsoleApiFailoverTest, ConsoleShowsTheFailoverMode) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       test::FailoverTestBackend().open(nullptr));
  auto* failover = dynamic_cast<FailoverEventStore*>(store.get());
  ASSERT_NE(failover, nullptr);
  tools::ServeOptions options;
  options.failover = failover;
  options.listen = {"127.0.0.1", 0};
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<test::RunningServeServer> server,
      test::RunningServeServer::Start(*store, std::move(options)));
  httplib::Client client("127.0.0.1", server->port());
  httplib::Result result = client.Get("/api/console");
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  Struct json;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(result->body, &json).ok());
  EXPECT_EQ(Str(Field(json, "failover"), "mode"), "primary");
  EXPECT_EQ(Field(Field(json, "failover"), "journal_pending").number_value(),
            0);
}

INSTANTIATE_TEST_SUITE_P(Backends, ConsoleApiTest,
                         ::testing::ValuesIn(test::RawAccessTestBackends()),
                         test::TestBackendName);

}  // namespace
}  // namespace eventstore
