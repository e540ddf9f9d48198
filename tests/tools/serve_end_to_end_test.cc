// End to end, per backend: an application attaches one
// PrometheusInstrumentation to its store, a projection runner and an outbox
// publisher, serves it with an in-process ServeServer (what `eventstore
// serve` runs), appends, projects and publishes, then scrapes /metrics over
// HTTP and finds the values those operations must give, beside the
// store-level gauges read from the database.

#include <httplib.h>

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/event_store.h"
#include "eventstore/expected_version.h"
#include "eventstore/instrumented_event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/prometheus/prometheus_instrumentation.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/outbox_publisher.h"
#include "projections/projection.h"
#include "projections/projection_runner.h"
#include "tests/support/prometheus_sample.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"
#include "tools/serve/serve_server.h"

namespace eventstore {
namespace {

using ::eventstore::test::Sample;
using ::eventstore::test::StoreTest;
using ::eventstore::test::TestBackend;

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

class CountingProjection final : public Projection {
 public:
  std::string name() const override { return "order-count"; }
  absl::Status Handle(const RecordedEvent& event) override {
    ++handled;
    return absl::OkStatus();
  }
  int handled = 0;
};

class AcceptingSink final : public OutboxSink {
 public:
  absl::Status Send(const OutboxEntry& entry) override {
    ++sent;
    return absl::OkStatus();
  }
  int sent = 0;
};

class ServeEndToEndTest : public StoreTest {};

TEST_P(ServeEndToEndTest, ScrapeShowsWhatTheApplicationDid) {
  const std::string label = GetParam().name;
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<PrometheusInstrumentation> metrics,
                       PrometheusInstrumentation::Create());
  std::unique_ptr<EventStore> store =
      Instrument(std::move(store_), metrics, label);

  // Append: 3 appends that commit (5 events, 3 outbox messages) and one
  // that conflicts.
  ASSERT_OK(store->Append("order-1", ExpectedVersion::NoStream(),
                          {Placed("1"), Placed("1b")}));
  ASSERT_OK(
      store->Append("order-2", ExpectedVersion::NoStream(), {Placed("2")}));
  OutboxMessage message;
  message.destination = "billing";
  message.payload = "invoice";
  std::vector<OutboxMessage> messages(3, message);
  std::vector<EventData> events = {Placed("1c"), Placed("1d")};
  AppendRequest request;
  request.stream = "order-1";
  request.expected = ExpectedVersion::Exactly(2);
  request.events = events;
  request.outbox = messages;
  ASSERT_OK(store->Append(request));
  EXPECT_FALSE(
      store->Append("order-2", ExpectedVersion::NoStream(), {Placed("x")})
          .ok());

  // Project and publish, reporting to the same metrics.
  CountingProjection projection;
  ProjectionRunnerOptions runner_options;
  runner_options.instrumentation = metrics;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<ProjectionRunner> runner,
      ProjectionRunner::Create(*store, projection, runner_options));
  ASSERT_OK(runner->RunOnce().status());
  ASSERT_EQ(projection.handled, 5);

  AcceptingSink sink;
  OutboxPublisherOptions publisher_options;
  publisher_options.instrumentation = metrics;
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<OutboxPublisher> publisher,
      OutboxPublisher::Create(*store, sink, publisher_options));
  ASSERT_OK(publisher->RunOnce().status());
  ASSERT_EQ(sink.sent, 3);

  // Serve and scrape over HTTP.
  tools::ServeOptions options;
  options.listen = {"127.0.0.1", 0};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<tools::ServeServer> server,
                       tools::ServeServer::Create(*store, metrics, options));
  ASSERT_OK_AND_ASSIGN(const int port, server->Bind());
  absl::Status served;
  std::thread serving([&] { served = server->Run(); });
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30);
  httplib::Result r = client.Get("/metrics");
  server->Stop();
  serving.join();
  EXPECT_OK(served);
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  ASSERT_EQ(r->status, 200);
  const std::string& text = r->body;

  const std::string backend = absl::StrCat("backend=\"", label, "\"");
  // The store decorator.
  EXPECT_EQ(Sample(text, absl::StrCat("eventstore_appends_total{", backend,
                                      ",outcome=\"ok\"}")),
            3)
      << text;
  EXPECT_EQ(Sample(text, absl::StrCat("eventstore_appends_total{", backend,
                                      ",outcome=\"wrong_expected_version\"}")),
            1);
  EXPECT_EQ(Sample(text, absl::StrCat("eventstore_appended_events_total{",
                                      backend, "}")),
            5);
  EXPECT_EQ(Sample(text, absl::StrCat("eventstore_outbox_enqueued_total{",
                                      backend, "}")),
            3);
  EXPECT_EQ(Sample(text, absl::StrCat("eventstore_append_duration_seconds_"
                                      "count{",
                                      backend, "}")),
            4);
  // The projection runner.
  EXPECT_EQ(Sample(text,
                   "eventstore_projection_events_total{outcome=\"ok\","
                   "projection=\"order-count\"}"),
            5);
  EXPECT_EQ(
      Sample(text,
             "eventstore_projection_lag_events{projection=\"order-count\"}"),
      0);
  // The outbox publisher.
  EXPECT_EQ(
      Sample(text, "eventstore_outbox_sends_total{outcome=\"published\"}"), 3);
  EXPECT_EQ(Sample(text, "eventstore_outbox_pending_messages"), 0);
  // The store-level gauges, read from the database by the scrape.
  EXPECT_EQ(Sample(text, "eventstore_store_up"), 1);
  EXPECT_EQ(Sample(text, "eventstore_store_events"), 5);
  EXPECT_EQ(Sample(text, "eventstore_store_streams"), 2);
  EXPECT_EQ(
      Sample(text, "eventstore_store_outbox_messages{status=\"published\"}"),
      3);
  EXPECT_EQ(Sample(text,
                   "eventstore_store_projection_lag_events{projection="
                   "\"order-count\"}"),
            0);
}

INSTANTIATE_TEST_SUITE_P(Backends, ServeEndToEndTest,
                         ::testing::ValuesIn(test::RawAccessTestBackends()),
                         test::TestBackendName);

}  // namespace
}  // namespace eventstore
