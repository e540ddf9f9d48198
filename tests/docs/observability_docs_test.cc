// docs/observability.md matches the code:
//   - every metric family PrometheusInstrumentation registers has a row
//     "| `name` | type |" in the page, with its Prometheus type;
//   - every ```promql block of the page is found, as written (whitespace
//     aside), in examples/prometheus/alerts.yml, the rules promtool tests.

#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eventstore/prometheus/prometheus_instrumentation.h"
#include "gtest/gtest.h"
#include "prometheus/metric_family.h"
#include "prometheus/metric_type.h"
#include "prometheus/registry.h"
#include "tests/support/report_every_call.h"

namespace eventstore {
namespace {

std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(absl::StrCat(EVENTSTORE_SOURCE_DIR, "/", relative));
  EXPECT_TRUE(in.good()) << relative << " is missing";
  std::stringstream text;
  text << in.rdbuf();
  return std::move(text).str();
}

// `text` with every run of whitespace replaced by one space, trimmed.
std::string CollapseWhitespace(const std::string& text) {
  std::string out;
  bool in_space = false;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      in_space = !out.empty();
      continue;
    }
    if (in_space) out += ' ';
    in_space = false;
    out += c;
  }
  return out;
}

std::string TypeName(prometheus::MetricType type) {
  switch (type) {
    case prometheus::MetricType::Counter:
      return "counter";
    case prometheus::MetricType::Gauge:
      return "gauge";
    case prometheus::MetricType::Histogram:
      return "histogram";
    case prometheus::MetricType::Summary:
      return "summary";
    case prometheus::MetricType::Untyped:
      return "untyped";
  }
  return "unknown";
}

TEST(ObservabilityDocsTest, EveryRegisteredMetricHasARowWithItsType) {
  absl::StatusOr<std::shared_ptr<PrometheusInstrumentation>> metrics =
      PrometheusInstrumentation::Create();
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const std::string page = ReadSourceFile("docs/observability.md");

  // Every family gets a series (a family without one is not collected).
  test::ReportEveryCall(**metrics);
  int families = 0;
  for (const prometheus::MetricFamily& family :
       (*metrics)->registry()->Collect()) {
    ++families;
    const std::string row =
        absl::StrCat("| `", family.name, "` | ", TypeName(family.type), " |");
    EXPECT_NE(page.find(row), std::string::npos)
        << "docs/observability.md has no row starting " << row;
  }
  EXPECT_GT(families, 20);
}

TEST(ObservabilityDocsTest, EveryPromqlBlockIsInTheTestedAlertRules) {
  const std::string page = ReadSourceFile("docs/observability.md");
  const std::string rules =
      CollapseWhitespace(ReadSourceFile("examples/prometheus/alerts.yml"));

  const std::regex block("```promql\\n([^`]*)```");
  int blocks = 0;
  for (std::sregex_iterator it(page.begin(), page.end(), block), end; it != end;
       ++it) {
    ++blocks;
    const std::string expression = CollapseWhitespace((*it)[1]);
    EXPECT_NE(rules.find(expression), std::string::npos)
        << "not in examples/prometheus/alerts.yml: " << expression;
  }
  EXPECT_GE(blocks, 4);
}

}  // namespace
}  // namespace eventstore
