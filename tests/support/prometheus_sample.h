// Sample: one value read from a Prometheus text exposition, for tests that
// scrape /metrics or render a PrometheusInstrumentation.
//
//   EXPECT_EQ(test::Sample(text, "eventstore_store_events"), 3);

#ifndef EVENTSTORE_TESTS_SUPPORT_PROMETHEUS_SAMPLE_H_
#define EVENTSTORE_TESTS_SUPPORT_PROMETHEUS_SAMPLE_H_

#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace eventstore::test {

// The value of the sample `series` (name and labels exactly as rendered,
// e.g. `eventstore_appends_total{backend="b",outcome="ok"}`), or nullopt
// when the text holds no such sample or its value is not a number.
inline std::optional<double> Sample(const std::string& text,
                                    const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, series + " ")) continue;
    double value = 0;
    if (!absl::SimpleAtod(line.substr(series.size() + 1), &value)) {
      return std::nullopt;
    }
    return value;
  }
  return std::nullopt;
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_PROMETHEUS_SAMPLE_H_
