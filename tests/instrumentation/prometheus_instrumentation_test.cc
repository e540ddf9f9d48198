// PrometheusInstrumentation (prometheus/prometheus_instrumentation.h): the
// values rendered after known operations through the store decorator on
// every backend, the names, labels and buckets, and the exposition checked
// by promtool.

#include "eventstore/prometheus/prometheus_instrumentation.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/instrumented_event_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "tests/support/prometheus_sample.h"
#include "tests/support/report_every_call.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::Sample;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::SizeIs;

constexpr char kPromtool[] = "/usr/bin/promtool";

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

std::shared_ptr<PrometheusInstrumentation> NewMetrics() {
  absl::StatusOr<std::shared_ptr<PrometheusInstrumentation>> metrics =
      PrometheusInstrumentation::Create();
  EXPECT_OK(metrics);
  return metrics.ok() ? *std::move(metrics) : nullptr;
}

class PrometheusStoreTest : public ::testing::TestWithParam<TestBackend> {};

TEST_P(PrometheusStoreTest, ValuesAfterKnownOperations) {
  std::shared_ptr<PrometheusInstrumentation> metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> opened,
                       GetParam().open(nullptr));
  std::unique_ptr<EventStore> store =
      Instrument(std::move(opened), metrics, GetParam().name);

  const std::vector<EventData> events = {Placed("a"), Placed("b"), Placed("c")};
  int64_t bytes = 0;
  for (const EventData& event : events) bytes += event.payload.size();
  ASSERT_OK(store->Append("order-1", ExpectedVersion::NoStream(), events));
  ASSERT_OK(store->Append("order-1", ExpectedVersion::NoStream(), events));
  EXPECT_THAT(
      store->Append("order-1", ExpectedVersion::NoStream(), {Placed("d")}),
      StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK(store->ReadStream("order-1"));
  ASSERT_OK(store->ReadAll(ReadAllOptions()));

  const std::string text = metrics->Render();
  const std::string b = absl::StrCat("backend=\"", GetParam().name, "\"");
  auto series = [&](const std::string& name, const std::string& labels) {
    return Sample(text, absl::StrCat(name, "{", labels, "}"));
  };
  EXPECT_EQ(series("eventstore_appends_total", b + ",outcome=\"ok\""), 1);
  EXPECT_EQ(
      series("eventstore_appends_total", b + ",outcome=\"idempotent_retry\""),
      1);
  EXPECT_EQ(series("eventstore_appends_total",
                   b + ",outcome=\"wrong_expected_version\""),
            1);
  EXPECT_EQ(series("eventstore_appends_total", b + ",outcome=\"duplicate\""),
            std::nullopt);
  // Only the committed append's events and bytes.
  EXPECT_EQ(series("eventstore_appended_events_total", b), 3);
  EXPECT_EQ(series("eventstore_appended_payload_bytes_total", b), bytes);
  EXPECT_EQ(series("eventstore_append_duration_seconds_count", b), 3);
  EXPECT_GT(series("eventstore_append_duration_seconds_sum", b).value_or(0), 0);
  EXPECT_EQ(
      series("eventstore_append_duration_seconds_bucket", b + ",le=\"+Inf\""),
      3);
  EXPECT_EQ(series("eventstore_reads_total",
                   b + ",kind=\"read_stream\",outcome=\"ok\""),
            1);
  EXPECT_EQ(
      series("eventstore_reads_total", b + ",kind=\"read_all\",outcome=\"ok\""),
      1);
  EXPECT_EQ(series("eventstore_read_events_total", b + ",kind=\"read_stream\""),
            3);
  EXPECT_EQ(series("eventstore_read_events_total", b + ",kind=\"read_all\""),
            3);
  EXPECT_EQ(series("eventstore_read_duration_seconds_count",
                   b + ",kind=\"read_all\""),
            1);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, PrometheusStoreTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

TEST(PrometheusInstrumentationTest, EveryCallSetsItsMetric) {
  std::shared_ptr<PrometheusInstrumentation> metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  test::ReportEveryCall(*metrics);
  const std::string text = metrics->Render();
  const std::vector<std::pair<std::string, double>> expected = {
      {R"(eventstore_outbox_enqueued_total{backend="sqlite"})", 2},
      {R"(eventstore_pool_connections{backend="postgres",state="in_use"})", 3},
      {R"(eventstore_pool_connections{backend="postgres",state="idle"})", 5},
      {R"(eventstore_pool_waits_total{backend="postgres"})", 1},
      {R"(eventstore_pool_wait_seconds_total{backend="postgres"})", 0.25},
      {R"(eventstore_reconnects_total{backend="postgres"})", 1},
      {R"(eventstore_projection_events_total{outcome="ok",projection="orders"})",
       1},
      {R"(eventstore_projection_events_total{outcome="error",projection="orders"})",
       1},
      {R"(eventstore_projection_handler_duration_seconds_count{projection="orders"})",
       2},
      {R"(eventstore_projection_retries_total{projection="orders"})", 1},
      {R"(eventstore_projection_dead_letters_total{projection="orders"})", 1},
      {R"(eventstore_projection_checkpoint_position{projection="orders"})", 42},
      {R"(eventstore_projection_lag_events{projection="orders"})", 7},
      {R"(eventstore_projection_lease_held{projection="orders"})", 1},
      {R"(eventstore_outbox_sends_total{outcome="published"})", 1},
      {R"(eventstore_outbox_sends_total{outcome="gave_up"})", 1},
      {"eventstore_outbox_send_duration_seconds_count", 2},
      {"eventstore_outbox_pending_messages", 12},
      {"eventstore_outbox_oldest_pending_age_seconds", 90},
      {R"(eventstore_failover_mode{mode="fallback"})", 1},
      {"eventstore_failover_journaled_total", 1},
      {"eventstore_failover_replayed_total", 4},
      {"eventstore_failover_parked_total", 1},
      {"eventstore_failover_pending_appends", 6},
      {"eventstore_replica_events_total", 100},
      {"eventstore_replica_lag_events", 40},
      {"eventstore_replica_lag_seconds", 3},
      {"eventstore_replica_errors_total", 1},
      {"eventstore_replica_last_sync_timestamp_seconds", 1700000000},
  };
  for (const auto& [series, value] : expected) {
    EXPECT_EQ(Sample(text, series), value) << series << "\n" << text;
  }
}

TEST(PrometheusInstrumentationTest, FailoverModeGaugeFollowsTheMode) {
  std::shared_ptr<PrometheusInstrumentation> metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  metrics->OnFailoverMode("fallback");
  metrics->OnFailoverMode("recovering");
  metrics->OnFailoverMode("primary");
  const std::string text = metrics->Render();
  EXPECT_EQ(Sample(text, R"(eventstore_failover_mode{mode="primary"})"), 1);
  EXPECT_EQ(Sample(text, R"(eventstore_failover_mode{mode="fallback"})"), 0);
  EXPECT_EQ(Sample(text, R"(eventstore_failover_mode{mode="recovering"})"), 0);
}

TEST(PrometheusInstrumentationTest, LatencyBucketsFrom50MicrosecondsTo10s) {
  std::shared_ptr<PrometheusInstrumentation> metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  // 70 µs: above the 50 µs and below the 100 µs bound.
  metrics->OnAppend({"b", AppendOutcome::kOk, 1, 1, absl::Microseconds(70)});
  const std::string text = metrics->Render();
  std::vector<std::string> bounds;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, "eventstore_append_duration_seconds_bucket{")) {
      continue;
    }
    const size_t le = line.find("le=\"");
    ASSERT_NE(le, absl::string_view::npos) << line;
    const size_t end = line.find('"', le + 4);
    bounds.emplace_back(line.substr(le + 4, end - le - 4));
  }
  ASSERT_THAT(bounds, SizeIs(std::size(kLatencyBucketsSeconds) + 1));
  EXPECT_EQ(bounds.back(), "+Inf");
  double first = 0;
  double last = 0;
  ASSERT_TRUE(absl::SimpleAtod(bounds.front(), &first));
  ASSERT_TRUE(absl::SimpleAtod(bounds[bounds.size() - 2], &last));
  EXPECT_DOUBLE_EQ(first, 0.00005);
  EXPECT_DOUBLE_EQ(last, 10);
  EXPECT_EQ(
      Sample(
          text,
          absl::StrCat(
              R"(eventstore_append_duration_seconds_bucket{backend="b",le=")",
              bounds[0], "\"}")),
      0);
  EXPECT_EQ(
      Sample(
          text,
          absl::StrCat(
              R"(eventstore_append_duration_seconds_bucket{backend="b",le=")",
              bounds[1], "\"}")),
      1);
}

TEST(PrometheusInstrumentationTest, EveryMetricIsNamedEventstoreWithHelp) {
  std::shared_ptr<PrometheusInstrumentation> metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  test::ReportEveryCall(*metrics);
  int families = 0;
  for (absl::string_view line : absl::StrSplit(metrics->Render(), '\n')) {
    if (absl::StartsWith(line, "# TYPE ")) {
      ++families;
      EXPECT_TRUE(absl::StartsWith(line, "# TYPE eventstore_")) << line;
    }
  }
  EXPECT_EQ(families, 33);
}

TEST(PrometheusInstrumentationTest, SharesAnApplicationRegistry) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge()
      .Name("app_up")
      .Help("Up.")
      .Register(*registry)
      .Add({})
      .Set(1);
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<PrometheusInstrumentation> metrics,
                       PrometheusInstrumentation::Create(registry));
  metrics->OnReconnect("postgres");
  const std::string text = metrics->Render();
  EXPECT_EQ(Sample(text, "app_up"), 1);
  EXPECT_EQ(Sample(text, R"(eventstore_reconnects_total{backend="postgres"})"),
            1);
  EXPECT_EQ(metrics->registry(), registry);
}

TEST(PrometheusInstrumentationTest, ConflictingFamilyInRegistryIsRefused) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge()
      .Name("eventstore_appends_total")
      .Help("Not a counter.")
      .Register(*registry);
  EXPECT_THAT(PrometheusInstrumentation::Create(registry),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       ::testing::HasSubstr("eventstore metrics")));
}

TEST(PrometheusInstrumentationTest, ConcurrentReportsAreAllCounted) {
  std::shared_ptr<PrometheusInstrumentation> metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  constexpr int kThreads = 8;
  constexpr int kAppends = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < kAppends; ++i) {
        metrics->OnAppend(
            {"sqlite", AppendOutcome::kOk, 2, 10, absl::Microseconds(100)});
        metrics->OnFailoverMode(t % 2 == 0 ? "primary" : "fallback");
        if (i % 100 == 0) (void)metrics->Render();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const std::string text = metrics->Render();
  EXPECT_EQ(
      Sample(text,
             R"(eventstore_appends_total{backend="sqlite",outcome="ok"})"),
      kThreads * kAppends);
  EXPECT_EQ(
      Sample(text, R"(eventstore_appended_events_total{backend="sqlite"})"),
      2 * kThreads * kAppends);
  EXPECT_EQ(
      Sample(text,
             R"(eventstore_append_duration_seconds_count{backend="sqlite"})"),
      kThreads * kAppends);
  // Exactly one mode is current.
  EXPECT_EQ(*Sample(text, R"(eventstore_failover_mode{mode="primary"})") +
                *Sample(text, R"(eventstore_failover_mode{mode="fallback"})"),
            1);
}

// Threads started at once report under labels none has used before, so
// that they race on creating the series as well as on updating them; every
// total is exact.
TEST(PrometheusInstrumentationTest, ConcurrentFirstUsesOfManyLabelsAreExact) {
  std::shared_ptr<PrometheusInstrumentation> metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  constexpr int kThreads = 8;
  constexpr int kCalls = 300;
  // Label values: b0..b<kLabels - 1>, p0..p<kLabels - 1>.
  constexpr int kLabels = 5;
  const OutboxSendOutcome kSends[] = {OutboxSendOutcome::kPublished,
                                      OutboxSendOutcome::kFailed,
                                      OutboxSendOutcome::kGaveUp};
  // The labels of call i of thread t.
  auto backend = [](int t, int i) {
    return absl::StrCat("b", (t + i) % kLabels);
  };
  auto projection = [](int t, int i) {
    return absl::StrCat("p", (t * 3 + i) % kLabels);
  };
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (int i = 0; i < kCalls; ++i) {
        const std::string b = backend(t, i);
        const std::string p = projection(t, i);
        metrics->OnAppend(
            {b, kAllAppendOutcomes[i % 6], 2, 10, absl::Microseconds(100)});
        metrics->OnRead(
            {b, i % 2 == 0 ? ReadKind::kReadAll : ReadKind::kReadStream,
             i % 3 != 0, 4, absl::Microseconds(100)});
        metrics->OnOutboxEnqueued(b, 3);
        metrics->OnReconnect(b);
        metrics->OnProjectionEvent(p, i % 4 != 0, absl::Microseconds(50));
        metrics->OnProjectionRetry(p);
        metrics->OnOutboxSend(kSends[i % 3], absl::Milliseconds(1));
        metrics->OnFailoverJournaled();
        if (i % 50 == 0) (void)metrics->Render();
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (std::thread& thread : threads) thread.join();

  std::map<std::string, double> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kCalls; ++i) {
      const std::string b = absl::StrCat("backend=\"", backend(t, i), "\"");
      const std::string p =
          absl::StrCat("projection=\"", projection(t, i), "\"");
      const AppendOutcome outcome = kAllAppendOutcomes[i % 6];
      expected[absl::StrCat("eventstore_appends_total{", b, ",outcome=\"",
                            std::string(AppendOutcomeName(outcome)), "\"}")] +=
          1;
      if (outcome == AppendOutcome::kOk) {
        expected[absl::StrCat("eventstore_appended_events_total{", b, "}")] +=
            2;
        expected[absl::StrCat("eventstore_appended_payload_bytes_total{", b,
                              "}")] += 10;
      }
      expected[absl::StrCat("eventstore_append_duration_seconds_count{", b,
                            "}")] += 1;
      const std::string kind = absl::StrCat(
          ",kind=\"", i % 2 == 0 ? "read_all" : "read_stream", "\"");
      expected[absl::StrCat("eventstore_reads_total{", b, kind, ",outcome=\"",
                            i % 3 != 0 ? "ok" : "error", "\"}")] += 1;
      expected[absl::StrCat("eventstore_read_events_total{", b, kind, "}")] +=
          4;
      expected[absl::StrCat("eventstore_read_duration_seconds_count{", b, kind,
                            "}")] += 1;
      expected[absl::StrCat("eventstore_outbox_enqueued_total{", b, "}")] += 3;
      expected[absl::StrCat("eventstore_reconnects_total{", b, "}")] += 1;
      expected[absl::StrCat("eventstore_projection_events_total{outcome=\"",
                            i % 4 != 0 ? "ok" : "error", "\",", p, "}")] += 1;
      expected[absl::StrCat(
          "eventstore_projection_handler_duration_seconds_count{", p, "}")] +=
          1;
      expected[absl::StrCat("eventstore_projection_retries_total{", p, "}")] +=
          1;
      expected[absl::StrCat("eventstore_outbox_sends_total{outcome=\"",
                            std::string(OutboxSendOutcomeName(kSends[i % 3])),
                            "\"}")] += 1;
      expected["eventstore_outbox_send_duration_seconds_count"] += 1;
      expected["eventstore_failover_journaled_total"] += 1;
    }
  }
  const std::string text = metrics->Render();
  for (const auto& [series, value] : expected) {
    EXPECT_EQ(Sample(text, series), value) << series;
  }
  // Each series exists once: kLabels backends x 6 outcomes.
  int append_series = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "eventstore_appends_total{")) ++append_series;
  }
  EXPECT_EQ(append_series, kLabels * 6);
}

// The exposition passes `promtool check metrics` (Debian's prometheus
// package, which scripts/install-deps installs). Fails when promtool is
// missing.
TEST(PrometheusInstrumentationTest, PromtoolAcceptsTheExposition) {
  ASSERT_TRUE(std::ifstream(kPromtool).good())
      << kPromtool << " is missing: run scripts/install-deps (package "
      << "prometheus)";
  std::shared_ptr<PrometheusInstrumentation> metrics = NewMetrics();
  ASSERT_NE(metrics, nullptr);
  test::ReportEveryCall(*metrics);
  metrics->OnAppend({"sqlite", AppendOutcome::kWrongExpectedVersion, 1, 10,
                     absl::Seconds(20)});
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<test::TempDir> dir,
                       test::TempDir::Create());
  const std::string path = dir->File("metrics.txt");
  {
    std::ofstream out(path);
    out << metrics->Render();
    ASSERT_TRUE(out.good());
  }
  const std::string command =
      absl::StrCat(kPromtool, " check metrics < '", path, "' 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, n);
  }
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "");
}

}  // namespace
}  // namespace eventstore
