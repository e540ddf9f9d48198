// RatioReporter: shows Google Benchmark's results through another reporter,
// then a table of ratios ours / raw per workload and backend.
//
//   RatioReporter reporter(std::make_unique<benchmark::ConsoleReporter>(),
//                          Workloads(), backends, &std::cout);
//   benchmark::RunSpecifiedBenchmarks(&reporter);
//
// Names are shown as registered ("W1_SingleAppend/sqlite"), without the
// "/iterations:N/real_time" suffix Google Benchmark adds for the fixed
// iteration count and the real-time measure every workload uses. A result
// named "<workload>/<backend>_raw" is the baseline of "<workload>/<backend>",
// and of "<workload>/<backend>_into" (W3, W4 reading into kept buffers,
// shown as "<backend>, into buffer": Workload::alt_suffix).
// A workload runs in rounds, each running the two sides back to back; the
// results of one round (and repetition) are paired by their label ("round
// i/n") and repetition index. The table gives the median of the paired
// ratios (robust to load from elsewhere on the machine, which shifts both
// sides of a round alike), their range, and each side's median events/s.
//
// A workload may compare other sides (Workload::ours_suffix and
// baseline_suffix): P1's baseline is our own ReadAll of the same store, P2
// compares loads with and without a snapshot.
//
// A concurrent workload (W5) adds a scaling row per backend: our store with
// the most writers ("<workload>/<backend>/writers:16") over our store with
// one ("/writers:1") in the same round, shown in the ours and raw columns;
// and, when the backend has a raw W5 baseline, a row ours / raw at the most
// writers, for information (no target).

#ifndef EVENTSTORE_BENCH_RATIO_REPORTER_H_
#define EVENTSTORE_BENCH_RATIO_REPORTER_H_

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "bench/workloads.h"

namespace eventstore::bench {

class RatioReporter : public benchmark::BenchmarkReporter {
 public:
  // Forwards every report to `inner`, then writes the table to `table_out`
  // (which must outlive the reporter) when the run is over. `backends`
  // give the targets (TargetRatio).
  RatioReporter(std::unique_ptr<benchmark::BenchmarkReporter> inner,
                absl::Span<const Workload> workloads,
                absl::Span<const Backend> backends, std::ostream* table_out);

  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override;

  // Replaces the lines printed above the table (the default explains ours /
  // raw, P1 and P2), for a program that compares other sides.
  void set_title(std::string title) { title_ = std::move(title); }

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
    // 0: none (an informational row).
    double target = 0;
    // A scaling row: ours is the most writers, raw one writer.
    bool scaling = false;
  };
  // The row comparing the results named `name` with those named `baseline`
  // round by round; false when either is missing.
  bool MakeRow(const std::string& name, const std::string& baseline,
               Row& row) const;
  // The backend's target for `workload` (Backend::target_ratios), else
  // the workload's own.
  double Target(const Workload& workload, const std::string& backend) const;
  std::vector<Row> Rows() const;
  // W5's rows: each side's scaling, and ours / raw at the most writers.
  void AddConcurrentRows(const Workload& w, std::vector<Row>& rows) const;
  void PrintTable();

  std::unique_ptr<benchmark::BenchmarkReporter> inner_;
  std::vector<Workload> workloads_;
  // Backend names, in the order given.
  std::vector<std::string> backend_names_;
  // Backend::target_ratios, by backend name.
  std::map<std::string, std::map<std::string, double>> backend_targets_;
  std::ostream* table_out_;
  // Empty: the default title.
  std::string title_;
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
