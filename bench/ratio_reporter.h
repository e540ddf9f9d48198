// RatioReporter: shows Google Benchmark's results through another reporter,
// then a table of ratios ours / raw per workload and backend.
//
//   RatioReporter reporter(std::make_unique<benchmark::ConsoleReporter>(),
//                          Workloads(), &std::cout);
//   benchmark::RunSpecifiedBenchmarks(&reporter);
//
// Names are shown as registered ("W1_SingleAppend/sqlite"), without the
// "/iterations:N/real_time" suffix Google Benchmark adds for the fixed
// iteration count and the real-time measure every workload uses. A result
// named "<workload>/<backend>_raw" is the baseline of "<workload>/<backend>".
// A workload runs in rounds, each running the two sides back to back; the
// results of one round (and repetition) are paired by their label ("round
// i/n") and repetition index. The table gives the median of the paired
// ratios (robust to load from elsewhere on the machine, which shifts both
// sides of a round alike), their range, and each side's median events/s.

#ifndef EVENTSTORE_BENCH_RATIO_REPORTER_H_
#define EVENTSTORE_BENCH_RATIO_REPORTER_H_

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "bench/workloads.h"

namespace eventstore::bench {

class RatioReporter : public benchmark::BenchmarkReporter {
 public:
  // Forwards every report to `inner`, then writes the table to `table_out`
  // (which must outlive the reporter) when the run is over.
  RatioReporter(std::unique_ptr<benchmark::BenchmarkReporter> inner,
                absl::Span<const Workload> workloads, std::ostream* table_out);

  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;

  // True when every ratio in the table met its workload's target (and there
  // was at least one).
  bool all_targets_met() const { return all_met_; }

 private:
  struct Row {
    std::string workload;
    std::string backend;
    // Medians of each side's events/s.
    double ours = 0;
    double raw = 0;
    // The median, lowest and highest of the rounds' ratios ours / raw.
    double ratio = 0;
    double lowest_ratio = 0;
    double highest_ratio = 0;
    double target = 0;
  };
  std::vector<Row> Rows() const;
  void PrintTable();

  std::unique_ptr<benchmark::BenchmarkReporter> inner_;
  std::vector<Workload> workloads_;
  std::ostream* table_out_;
  struct Sample {
    // The run's label and repetition index: what pairs it with the other
    // side's run of the same round.
    std::string key;
    double rate;
  };
  // Events/s of each benchmark's runs, by name.
  std::map<std::string, std::vector<Sample>> rates_;
  // Names in the order they first reported.
  std::vector<std::string> order_;
  bool all_met_ = false;
};

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_RATIO_REPORTER_H_
