// The read-only JSON API of `eventstore serve` (tools/serve/json_api.h,
// docs/http-api.md), served in-process by an httplib::Server on a free
// loopback port over each backend that a test can damage rows of, and read
// with httplib::Client. Bodies are parsed with protobuf's JSON parser into
// google.protobuf.Struct.

#include "tools/serve/json_api.h"

#include <httplib.h>

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/recorded_event.h"
#include "eventstore/subject_key_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"
#include "tests/tools/json_fields.h"

namespace eventstore {
namespace {

using ::eventstore::test::Field;
using ::eventstore::test::List;
using ::eventstore::test::Num;
using ::eventstore::test::Str;
using ::google::protobuf::ListValue;
using ::google::protobuf::Struct;
using ::google::protobuf::Value;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kMaxPage = 5;

// A response: its status, body, and the body parsed.
struct Reply {
  int status = 0;
  std::string body;
  Struct json;
};

// A path segment or query value percent-encoded (httplib's encoder).
std::string Encode(const std::string& s) {
  return httplib::detail::encode_query_param(s);
}

EventData Placed(const std::string& order_id,
                 const std::string& correlation = "") {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  v1::EventMetadata meta;
  if (!correlation.empty()) meta.set_correlation_id(correlation);
  return EventData::From(placed, meta);
}

EventData Shipped(const std::string& order_id) {
  test::v1::OrderShipped shipped;
  shipped.set_order_id(order_id);
  return EventData::From(shipped);
}

class JsonApiTest : public test::StoreTest {
 protected:
  void SetUp() override {
    test::StoreTest::SetUp();
    if (HasFatalFailure()) return;
    tools::JsonApiOptions options;
    options.default_page = 2;
    options.max_page = kMaxPage;
    options.max_wait_seconds = 20;
    options.max_concurrent_waits = 1;
    // A waiting long-poll asks this every slice: it tells the test that a
    // request is waiting.
    options.stopping = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      ++stopping_calls_;
      cv_.notify_all();
      return stop_;
    };
    server_ = std::make_unique<httplib::Server>();
    tools::RegisterJsonApi(*server_, store(), options);
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }

  void TearDown() override {
    if (server_ != nullptr) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
      }
      server_->stop();
      if (thread_.joinable()) thread_.join();
    }
  }

  // GET `path` (already encoded); the body parsed as JSON (a failure when
  // it is not).
  Reply Get(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    client.set_url_encode(false);
    client.set_read_timeout(60, 0);
    Reply reply;
    httplib::Result result = client.Get(path);
    if (!result) {
      ADD_FAILURE() << "GET " << path << ": "
                    << httplib::to_string(result.error());
      return reply;
    }
    reply.status = result->status;
    reply.body = result->body;
    EXPECT_EQ(result->get_header_value("Content-Type"), "application/json")
        << path;
    const auto parsed =
        google::protobuf::util::JsonStringToMessage(reply.body, &reply.json);
    EXPECT_TRUE(parsed.ok()) << path << ": " << reply.body;
    return reply;
  }

  // GET `path`, expecting a 400 naming `parameter` with an error holding
  // `text`.
  void ExpectBadParameter(const std::string& path, const std::string& parameter,
                          const std::string& text) {
    SCOPED_TRACE(path);
    const Reply r = Get(path);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(Field(r.json, "parameter").string_value(), parameter) << r.body;
    EXPECT_THAT(Field(r.json, "error").string_value(), HasSubstr(text));
  }

  // Blocks until a long-poll has asked `stopping` at least `calls` times in
  // all (it is waiting), or fails after 30 s.
  void AwaitStoppingCalls(int calls) {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(30), [&] {
      return stopping_calls_ >= calls;
    })) << "no long-poll waited";
  }
  int StoppingCalls() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_calls_;
  }

  std::string Head() {
    absl::StatusOr<Position> head = store().HeadPosition();
    EXPECT_OK(head);
    return head.ok() ? head->ToString() : "";
  }

  // Appends order-1 v1, v2 (OrderPlaced), order-2 v1 (OrderShipped) and
  // order-1 v3, interleaved; returns their positions in log order.
  std::vector<std::string> AppendOrders() {
    std::vector<std::string> positions;
    auto append = [&](const std::string& stream, std::vector<EventData> e) {
      absl::StatusOr<AppendResult> r =
          store().Append(stream, ExpectedVersion::Any(), e);
      EXPECT_OK(r);
      if (!r.ok()) return;
      ReadStreamOptions o;
      o.from_version = r->next_expected_version - e.size() + 1;
      absl::StatusOr<std::vector<RecordedEvent>> read =
          store().ReadStream(stream, o);
      EXPECT_OK(read);
      if (read.ok()) {
        for (const RecordedEvent& x : *read) {
          positions.push_back(x.position.ToString());
        }
      }
    };
    append("order-1", {Placed("o-1", "c-1"), Placed("o-1b", "c-2")});
    append("order-2", {Shipped("o-2")});
    append("order-1", {Placed("o-1c")});
    return positions;
  }

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  int stopping_calls_ = 0;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
};

TEST_P(JsonApiTest, InfoShowsTheStore) {
  AppendOrders();
  const Reply r = Get("/api/info");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string backend = Field(r.json, "backend").string_value();
  EXPECT_TRUE(backend == "sqlite" || backend == "postgres") << backend;
  EXPECT_EQ(Field(r.json, "streams").number_value(), 2);
  EXPECT_EQ(Field(r.json, "events").number_value(), 4);
  EXPECT_EQ(Field(r.json, "head").string_value(), Head());
  EXPECT_EQ(Field(r.json, "recorded_types").number_value(), 2);
  EXPECT_GT(Field(r.json, "schema_version").number_value(), 0);
  EXPECT_EQ(Num(Field(r.json, "api"), "max_page"), kMaxPage);
  EXPECT_EQ(Num(Field(r.json, "api"), "default_page"), 2);
  EXPECT_EQ(Num(Field(r.json, "api"), "max_wait_seconds"), 20);
  // Never a password: the location is the inspector's masked one.
  EXPECT_THAT(r.body, ::testing::Not(HasSubstr("password")));
}

TEST_P(JsonApiTest, StreamsArePagedByName) {
  for (const char* s : {"a-1", "a-2", "a-3", "b-1"}) {
    ASSERT_OK(store().Append(s, ExpectedVersion::NoStream(), {Placed(s)}));
  }
  Reply r = Get("/api/streams");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "streams").values_size(), 2);  // default_page
  EXPECT_EQ(Str(List(r.json, "streams").values(0), "stream"), "a-1");
  EXPECT_EQ(Num(List(r.json, "streams").values(0), "version"), 1);
  EXPECT_EQ(Field(r.json, "next_after").string_value(), "a-2");

  r = Get("/api/streams?after=a-2&limit=5");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "streams").values_size(), 2);
  EXPECT_EQ(Str(List(r.json, "streams").values(0), "stream"), "a-3");
  EXPECT_EQ(Str(List(r.json, "streams").values(1), "stream"), "b-1");
  EXPECT_EQ(Field(r.json, "next_after").kind_case(), Value::kNullValue);

  r = Get("/api/streams?prefix=a-&limit=3");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "streams").values_size(), 3);
  EXPECT_EQ(Field(r.json, "next_after").kind_case(), Value::kNullValue);
}

TEST_P(JsonApiTest, StreamEventsRenderThroughRecordedDescriptors) {
  const std::vector<std::string> positions = AppendOrders();
  ASSERT_EQ(positions.size(), 4u);
  Reply r = Get("/api/streams/order-1/events?limit=5");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Field(r.json, "stream").string_value(), "order-1");
  EXPECT_EQ(Field(r.json, "version").number_value(), 3);
  EXPECT_EQ(Field(r.json, "direction").string_value(), "forward");
  const ListValue& events = List(r.json, "events");
  ASSERT_EQ(events.values_size(), 3);
  const Value& first = events.values(0);
  EXPECT_EQ(Str(first, "stream"), "order-1");
  EXPECT_EQ(Num(first, "version"), 1);
  // Positions are strings: 64-bit safe in JavaScript.
  EXPECT_EQ(Field(first, "position").kind_case(), Value::kStringValue);
  EXPECT_EQ(Str(first, "position"), positions[0]);
  EXPECT_EQ(Str(first, "type"), "eventstore.test.v1.OrderPlaced");
  EXPECT_EQ(Str(Field(first, "data"), "order_id"), "o-1");
  EXPECT_EQ(Str(Field(first, "metadata"), "correlation_id"), "c-1");
  EXPECT_EQ(Str(events.values(2), "position"), positions[3]);
  EXPECT_EQ(Field(r.json, "next_from").kind_case(), Value::kNullValue);
}

TEST_P(JsonApiTest, StreamEventsPageForwardAndBackward) {
  std::vector<EventData> five;
  for (int i = 1; i <= 5; ++i) five.push_back(Placed(absl::StrCat("o-", i)));
  ASSERT_OK(store().Append("order-9", ExpectedVersion::NoStream(), five));
  Reply r = Get("/api/streams/order-9/events");  // default_page: 2
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "events").values_size(), 2);
  EXPECT_EQ(Field(r.json, "next_from").number_value(), 3);
  r = Get("/api/streams/order-9/events?from=3&limit=3");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "events").values_size(), 3);
  EXPECT_EQ(Num(List(r.json, "events").values(2), "version"), 5);
  EXPECT_EQ(Field(r.json, "next_from").kind_case(), Value::kNullValue);

  r = Get("/api/streams/order-9/events?direction=backward");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "events").values_size(), 2);
  EXPECT_EQ(Num(List(r.json, "events").values(0), "version"), 5);
  EXPECT_EQ(Num(List(r.json, "events").values(1), "version"), 4);
  EXPECT_EQ(Field(r.json, "next_from").number_value(), 3);
  r = Get("/api/streams/order-9/events?direction=backward&from=2&limit=2");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "events").values_size(), 2);
  EXPECT_EQ(Num(List(r.json, "events").values(1), "version"), 1);
  EXPECT_EQ(Field(r.json, "next_from").kind_case(), Value::kNullValue);
}

TEST_P(JsonApiTest, StreamNamesAreUrlDecodedAndValidated) {
  const std::vector<std::string> names = {
      "orders/eu/1", "commande-\xc3\xa9t\xc3\xa9", "x/events"};
  for (const std::string& name : names) {
    ASSERT_OK(
        store().Append(name, ExpectedVersion::NoStream(), {Placed(name)}));
  }
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    const Reply r = Get(absl::StrCat("/api/streams/", Encode(name), "/events"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Field(r.json, "stream").string_value(), name);
    ASSERT_EQ(List(r.json, "events").values_size(), 1);
    EXPECT_EQ(Str(Field(List(r.json, "events").values(0), "data"), "order_id"),
              name);
  }
  // White space and control characters are not in stream names.
  ExpectBadParameter("/api/streams/a%20b/events", "stream", "stream");
  ExpectBadParameter("/api/streams/a%0Ab/events", "stream", "stream");
  ExpectBadParameter("/api/streams/a%FFb/events", "stream", "UTF-8");
  ExpectBadParameter(
      absl::StrCat("/api/streams/", std::string(300, 'x'), "/events"), "stream",
      "255");
  // A valid name of no stream.
  const Reply r = Get("/api/streams/nobody/events");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_THAT(Field(r.json, "error").string_value(),
              HasSubstr("does not exist"));
}

TEST_P(JsonApiTest, GlobalLogIsPagedAndFiltered) {
  const std::vector<std::string> positions = AppendOrders();
  ASSERT_EQ(positions.size(), 4u);
  Reply r = Get("/api/events");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "events").values_size(), 2);
  EXPECT_EQ(Str(List(r.json, "events").values(0), "position"), positions[0]);
  EXPECT_EQ(Field(r.json, "next_from").string_value(), positions[1]);
  EXPECT_EQ(Field(r.json, "head").string_value(), positions[3]);
  EXPECT_FALSE(Field(r.json, "end_of_log").bool_value());

  r = Get(absl::StrCat("/api/events?limit=5&from=", Encode(positions[1])));
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "events").values_size(), 2);
  EXPECT_EQ(Str(List(r.json, "events").values(0), "stream"), "order-2");
  EXPECT_EQ(Str(List(r.json, "events").values(1), "position"), positions[3]);
  EXPECT_EQ(Field(r.json, "next_from").string_value(), positions[3]);
  EXPECT_TRUE(Field(r.json, "end_of_log").bool_value());

  r = Get("/api/events?type=eventstore.test.v1.OrderShipped&limit=5");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "events").values_size(), 1);
  EXPECT_EQ(Str(Field(List(r.json, "events").values(0), "data"), "order_id"),
            "o-2");

  r = Get("/api/events?prefix=order-1&limit=5");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(List(r.json, "events").values_size(), 3);

  // The last events, as `tail` shows them.
  r = Get("/api/events?last=2");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "events").values_size(), 2);
  EXPECT_EQ(Str(List(r.json, "events").values(0), "position"), positions[2]);
  EXPECT_EQ(Str(List(r.json, "events").values(1), "position"), positions[3]);
  EXPECT_EQ(Field(r.json, "from").string_value(), positions[1]);
}

TEST_P(JsonApiTest, LongPollReturnsWhenAnEventIsAppended) {
  AppendOrders();
  const std::string head = Head();
  Reply reply;
  absl::Duration took;
  std::thread poller([&] {
    const absl::Time start = absl::Now();
    reply = Get(absl::StrCat("/api/events?wait=20&from=", Encode(head)));
    took = absl::Now() - start;
  });
  // The request waits (it asks `stopping` between slices), then the append
  // wakes it.
  AwaitStoppingCalls(1);
  ASSERT_OK(
      store().Append("order-3", ExpectedVersion::NoStream(), {Placed("o-3")}));
  poller.join();
  ASSERT_EQ(reply.status, 200) << reply.body;
  ASSERT_EQ(List(reply.json, "events").values_size(), 1);
  EXPECT_EQ(Str(List(reply.json, "events").values(0), "stream"), "order-3");
  EXPECT_EQ(Field(reply.json, "next_from").string_value(), Head());
  EXPECT_LT(took, absl::Seconds(15));
}

TEST_P(JsonApiTest, LongPollIgnoresEventsTheFilterLeavesOut) {
  AppendOrders();
  const std::string head = Head();
  Reply reply;
  std::thread poller([&] {
    reply = Get(absl::StrCat("/api/events?wait=20&prefix=invoice-&from=",
                             Encode(head)));
  });
  AwaitStoppingCalls(1);
  // An event the filter leaves out does not end the wait...
  ASSERT_OK(
      store().Append("order-3", ExpectedVersion::NoStream(), {Placed("o-3")}));
  const int calls = StoppingCalls();
  AwaitStoppingCalls(calls + 2);
  // ...one it passes does.
  ASSERT_OK(store().Append("invoice-1", ExpectedVersion::NoStream(),
                           {Placed("i-1")}));
  poller.join();
  ASSERT_EQ(reply.status, 200) << reply.body;
  ASSERT_EQ(List(reply.json, "events").values_size(), 1);
  EXPECT_EQ(Str(List(reply.json, "events").values(0), "stream"), "invoice-1");
}

TEST_P(JsonApiTest, LongPollsAreBoundedAndEndWhenStopping) {
  Reply first;
  std::thread poller([&] { first = Get("/api/events?wait=20"); });
  AwaitStoppingCalls(1);
  // max_concurrent_waits is 1: a second long-poll is refused at once.
  const Reply second = Get("/api/events?wait=20");
  EXPECT_EQ(second.status, 503) << second.body;
  EXPECT_THAT(Field(second.json, "error").string_value(),
              HasSubstr("too many long-polls"));
  // A read without wait is served meanwhile.
  EXPECT_EQ(Get("/api/events").status, 200);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  poller.join();
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(List(first.json, "events").values_size(), 0);
  EXPECT_TRUE(Field(first.json, "end_of_log").bool_value());
}

TEST_P(JsonApiTest, BadParametersAre400NamingThem) {
  AppendOrders();
  ExpectBadParameter("/api/events?limit=abc", "limit", "not a whole number");
  ExpectBadParameter("/api/events?limit=-1", "limit", "must not be negative");
  ExpectBadParameter("/api/events?limit=6", "limit", "at most 5");
  ExpectBadParameter("/api/events?limit=0", "limit", "at least 1");
  ExpectBadParameter("/api/events?limit=99999999999999999999", "limit",
                     "at most 5");
  ExpectBadParameter("/api/events?limit=1&limit=2", "limit", "given 2 times");
  ExpectBadParameter("/api/events?from=abc", "from", "not a position");
  ExpectBadParameter("/api/events?from=-3", "from", "not a position");
  ExpectBadParameter("/api/events?from=1&last=2", "last", "not both");
  ExpectBadParameter("/api/events?wait=21", "wait", "at most 20");
  ExpectBadParameter("/api/events?wait=1.5", "wait", "not a whole number");
  ExpectBadParameter("/api/events?type=a%27%3B%20DROP", "type",
                     "not a protobuf type name");
  ExpectBadParameter("/api/events?prefix=a%01", "prefix", "control character");
  ExpectBadParameter("/api/events?limt=2", "limt", "unknown parameter");
  ExpectBadParameter("/api/streams?limit=x", "limit", "not a whole number");
  ExpectBadParameter("/api/info?verbose=1", "verbose", "takes no parameter");
  ExpectBadParameter("/api/streams/order-1/events?from=0", "from",
                     "at least 1");
  ExpectBadParameter("/api/streams/order-1/events?direction=up", "direction",
                     "forward, backward");
  ExpectBadParameter("/api/dead-letters?status=lost", "status", "unresolved");
  ExpectBadParameter("/api/dead-letters?cursor=-5", "cursor",
                     "not a next_cursor");
  ExpectBadParameter("/api/dead-letters?cursor=MTIz", "cursor",
                     "not a next_cursor");
  ExpectBadParameter("/api/outbox/messages?cursor=x", "cursor",
                     "not a whole number");
  ExpectBadParameter("/api/outbox/messages?limit=9", "limit", "at most 5");
  ExpectBadParameter("/api/checkpoints?type=%20", "type",
                     "not a protobuf type name");
  // Nothing was written by any of them.
  EXPECT_EQ(Field(Get("/api/info").json, "events").number_value(), 4);
}

TEST_P(JsonApiTest, UnknownPathsAre404AndWritesAre405) {
  for (const char* path :
       {"/api", "/api/", "/api/nope", "/api/streams/order-1",
        "/api/streams/order-1/events/x", "/api/outbox/nope"}) {
    SCOPED_TRACE(path);
    const Reply r = Get(path);
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_THAT(Field(r.json, "error").string_value(),
                HasSubstr("no such API path"));
  }
  httplib::Client client("127.0.0.1", port_);
  httplib::Result post = client.Post("/api/events", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
  httplib::Result options = client.Options("/api/events");
  ASSERT_TRUE(options);
  EXPECT_EQ(options->status, 405);
  httplib::Result head = client.Head("/api/info");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
}

TEST_P(JsonApiTest, DamagedAndUndescribedEventsAreShownNotFailed) {
  AppendOrders();
  EventData unknown;
  unknown.type = "acme.v1.NotCompiledIn";
  unknown.payload = std::string("\x08\x96\x01", 3);
  ASSERT_OK(store().Append("order-1", ExpectedVersion::Exactly(3), {unknown}));
  ASSERT_OK(GetParam().overwrite_column(store(), "order-1", 2, "metadata",
                                        std::string("\x0a\x05req-\xff")));
  const Reply r = Get("/api/streams/order-1/events?limit=5");
  ASSERT_EQ(r.status, 200) << r.body;
  const ListValue& events = List(r.json, "events");
  ASSERT_EQ(events.values_size(), 4);
  EXPECT_EQ(Str(Field(events.values(0), "data"), "order_id"), "o-1");
  const Value& damaged = events.values(1);
  EXPECT_THAT(Str(damaged, "damage"), HasSubstr("version 2"));
  EXPECT_EQ(Field(damaged, "metadata").kind_case(), Value::KIND_NOT_SET);
  EXPECT_FALSE(Str(damaged, "data_base64").empty());
  const Value& undescribed = events.values(3);
  EXPECT_EQ(Str(undescribed, "type"), "acme.v1.NotCompiledIn");
  EXPECT_EQ(Str(undescribed, "data_base64"),
            absl::Base64Escape(unknown.payload));
  EXPECT_THAT(Str(undescribed, "data_error"), HasSubstr("no descriptor"));
  // The global log shows them the same way.
  const Reply all = Get("/api/events?limit=5");
  ASSERT_EQ(all.status, 200) << all.body;
  ASSERT_EQ(List(all.json, "events").values_size(), 5);
  EXPECT_THAT(Str(List(all.json, "events").values(1), "damage"),
              HasSubstr("version 2"));
}

TEST_P(JsonApiTest, SealedAndForgottenEventsShowNoPayload) {
  AppendOrders();
  // As EncryptedEventStore stores them: the subject and the cipher in the
  // metadata, an opaque payload.
  const std::string ciphertext(48, '\xA7');
  EventData sealed = Placed("o-secret", "c-9");
  sealed.metadata.set_subject_id("u-1");
  sealed.metadata.set_payload_encryption(
      std::string(kPayloadEncryptionXChaCha20));
  sealed.payload = ciphertext;
  ASSERT_OK(store().Append("user-1", ExpectedVersion::NoStream(), {sealed}));

  Reply r = Get("/api/streams/user-1/events");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "events").values_size(), 1);
  const Value encrypted = List(r.json, "events").values(0);
  EXPECT_EQ(Str(encrypted, "payload_state"), "encrypted");
  EXPECT_EQ(Field(encrypted, "data").kind_case(), Value::KIND_NOT_SET);
  EXPECT_EQ(Str(encrypted, "data_base64"), "");
  EXPECT_EQ(Str(Field(encrypted, "metadata"), "subject_id"), "u-1");
  EXPECT_THAT(r.body, Not(HasSubstr(absl::Base64Escape(ciphertext))));

  ASSERT_OK(store().subject_keys().Forget("u-1").status());
  r = Get("/api/streams/user-1/events");
  ASSERT_EQ(r.status, 200) << r.body;
  const Value forgotten = List(r.json, "events").values(0);
  EXPECT_EQ(Str(forgotten, "payload_state"), "forgotten");
  EXPECT_EQ(Field(forgotten, "data").kind_case(), Value::KIND_NOT_SET);
  EXPECT_EQ(Str(forgotten, "data_error"), "");
  // The global log shows it the same way; plain events are unchanged.
  r = Get("/api/events?limit=5");
  ASSERT_EQ(r.status, 200) << r.body;
  const ListValue& all = List(r.json, "events");
  ASSERT_EQ(all.values_size(), 5);
  EXPECT_EQ(Str(all.values(4), "payload_state"), "forgotten");
  EXPECT_EQ(Str(all.values(0), "payload_state"), "");
  EXPECT_EQ(Str(Field(all.values(0), "data"), "order_id"), "o-1");
}

TEST_P(JsonApiTest, CheckpointsShowPositionAndLag) {
  const std::vector<std::string> positions = AppendOrders();
  ASSERT_OK_AND_ASSIGN(Position at, Position::Parse(positions[0]));
  ASSERT_OK(store().checkpoints().Save("totals", at, 1));
  Reply r = Get("/api/checkpoints");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "checkpoints").values_size(), 1);
  const Value& cp = List(r.json, "checkpoints").values(0);
  EXPECT_EQ(Str(cp, "projection"), "totals");
  EXPECT_EQ(Str(cp, "position"), positions[0]);
  EXPECT_EQ(Num(cp, "events_processed"), 1);
  EXPECT_EQ(Num(cp, "events_behind"), 3);
  EXPECT_EQ(Str(cp, "lag_counts"), "all events");
  r = Get("/api/checkpoints?type=eventstore.test.v1.OrderShipped");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Num(List(r.json, "checkpoints").values(0), "events_behind"), 1);
}

TEST_P(JsonApiTest, DeadLettersAreListedPagedAndShown) {
  AppendOrders();
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store().ReadStream("order-1"));
  ASSERT_EQ(events.size(), 3u);
  ASSERT_OK(store().dead_letters().Add("totals", events[0], "boom 1"));
  ASSERT_OK(store().dead_letters().Add("totals", events[1], "boom 2"));
  ASSERT_OK(store().dead_letters().Add("eu/totals", events[2], "boom 3"));
  ASSERT_OK(store().dead_letters().MarkResolved("totals", events[1].id, "al"));

  Reply r = Get("/api/dead-letters?limit=1");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "dead_letters").values_size(), 1);
  EXPECT_EQ(Str(List(r.json, "dead_letters").values(0), "error"), "boom 1");
  EXPECT_EQ(Str(List(r.json, "dead_letters").values(0), "status"), "parked");
  const std::string cursor = Field(r.json, "next_cursor").string_value();
  ASSERT_FALSE(cursor.empty()) << r.body;
  // A status change between two pages moves nothing.
  ASSERT_OK(store().dead_letters().MarkRetrying("totals", events[0].id));
  r = Get(absl::StrCat("/api/dead-letters?limit=1&cursor=", Encode(cursor)));
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "dead_letters").values_size(), 1);
  EXPECT_EQ(Str(List(r.json, "dead_letters").values(0), "projection"),
            "eu/totals");
  EXPECT_EQ(Field(r.json, "next_cursor").kind_case(), Value::kNullValue);

  r = Get("/api/dead-letters?status=resolved");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "dead_letters").values_size(), 1);
  EXPECT_EQ(Str(List(r.json, "dead_letters").values(0), "resolved_by"), "al");
  r = Get("/api/dead-letters?status=all&projection=totals&limit=5");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(List(r.json, "dead_letters").values_size(), 2);

  r = Get(absl::StrCat("/api/dead-letters/", Encode("eu/totals"), "/",
                       events[2].id.ToString()));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Str(Field(r.json, "dead_letter"), "error"), "boom 3");
  EXPECT_EQ(Str(Field(r.json, "dead_letter"), "position"),
            events[2].position.ToString());
  EXPECT_EQ(Str(Field(Field(r.json, "event"), "data"), "order_id"), "o-1c");

  r = Get(absl::StrCat("/api/dead-letters/totals/", events[2].id.ToString()));
  EXPECT_EQ(r.status, 404) << r.body;
  ExpectBadParameter("/api/dead-letters/totals/not-a-uuid", "event_id",
                     "not a UUID");
}

TEST_P(JsonApiTest, OutboxStatsAndMessagesByStatus) {
  std::vector<OutboxMessage> messages(4);
  for (int i = 0; i < 4; ++i) {
    messages[i].destination = "orders";
    messages[i].key = absl::StrCat("k", i);
    messages[i].payload = absl::StrCat("p", i);
    messages[i].headers["h"] = absl::StrCat("v", i);
  }
  ASSERT_OK(store().outbox().Enqueue(messages));
  // k0 failed for good; k1, k2, k3 pending.
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> claimed,
                       store().outbox().Claim("w", 1, absl::Minutes(5)));
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_OK(store().outbox().MarkFailed(claimed[0].id, "rejected", 1));
  Reply r = Get("/api/outbox");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Field(r.json, "pending").number_value(), 3);
  EXPECT_EQ(Field(r.json, "published").number_value(), 0);
  EXPECT_EQ(Field(r.json, "failed").number_value(), 1);

  r = Get("/api/outbox/messages");  // pending, default_page 2
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "messages").values_size(), 2);
  const Value& first = List(r.json, "messages").values(0);
  EXPECT_EQ(Str(first, "key"), "k1");
  EXPECT_EQ(Str(first, "status"), "pending");
  EXPECT_EQ(Str(Field(first, "headers"), "h"), "v1");
  EXPECT_EQ(Str(first, "payload_base64"), absl::Base64Escape("p1"));
  const std::string cursor = Field(r.json, "next_cursor").string_value();
  EXPECT_EQ(cursor, absl::StrCat(static_cast<int64_t>(
                        Num(List(r.json, "messages").values(1), "id"))));
  r = Get(absl::StrCat("/api/outbox/messages?cursor=", cursor));
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "messages").values_size(), 1);
  EXPECT_EQ(Str(List(r.json, "messages").values(0), "key"), "k3");
  EXPECT_EQ(Field(r.json, "next_cursor").kind_case(), Value::kNullValue);

  r = Get("/api/outbox/messages?status=failed");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(List(r.json, "messages").values_size(), 1);
  EXPECT_EQ(Str(List(r.json, "messages").values(0), "key"), "k0");
  EXPECT_EQ(Str(List(r.json, "messages").values(0), "last_error"), "rejected");
  r = Get("/api/outbox/messages?status=all&limit=5");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(List(r.json, "messages").values_size(), 4);
  ExpectBadParameter("/api/outbox/messages?status=lost", "status",
                     "pending, published, failed, all");
}

// A store whose database fails: HeadPosition is out of reach, StreamVersion
// fails otherwise; both messages hold a credential.
class FailingStore final : public ForwardingEventStore {
 public:
  explicit FailingStore(EventStore* target) : ForwardingEventStore(target) {}
  absl::StatusOr<Position> HeadPosition() override {
    return absl::UnavailableError(
        "connection to postgresql://app:s3cret@db:5432/shop lost");
  }
  absl::StatusOr<int64_t> StreamVersion(std::string_view) override {
    return absl::InternalError("query failed (password=hunter2)");
  }
};

TEST(JsonApiStoreErrorsTest, StoreErrorsAre503Or500WithSecretsMasked) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> inner,
                       OpenEventStore("sqlite::memory:"));
  FailingStore store(inner.get());
  httplib::Server server;
  tools::RegisterJsonApi(server, store);
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread thread([&] { server.listen_after_bind(); });
  httplib::Client client("127.0.0.1", port);
  httplib::Result unavailable = client.Get("/api/events");
  httplib::Result failed = client.Get("/api/streams/order-1/events");
  server.stop();
  thread.join();

  ASSERT_TRUE(unavailable);
  EXPECT_EQ(unavailable->status, 503);
  EXPECT_EQ(unavailable->get_header_value("Retry-After"), "1");
  Struct json;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(unavailable->body, &json)
          .ok());
  EXPECT_THAT(Field(json, "error").string_value(),
              AllOf(HasSubstr("connection to postgresql://app:***@db"),
                    ::testing::Not(HasSubstr("s3cret"))));
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, 500);
  EXPECT_THAT(failed->body, AllOf(HasSubstr("query failed"),
                                  ::testing::Not(HasSubstr("hunter2"))));
}

INSTANTIATE_TEST_SUITE_P(Backends, JsonApiTest,
                         ::testing::ValuesIn(test::RawAccessTestBackends()),
                         test::TestBackendName);

}  // namespace
}  // namespace eventstore
