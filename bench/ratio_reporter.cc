#include "bench/ratio_reporter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace eventstore::bench {
namespace {

constexpr char kRawSuffix[] = "_raw";

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// 12345.6 as "12,346".
std::string Thousands(double value) {
  std::string digits = absl::StrFormat("%.0f", value);
  std::string out;
  const int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

RatioReporter::RatioReporter(
    std::unique_ptr<benchmark::BenchmarkReporter> inner,
    absl::Span<const Workload> workloads, std::ostream* table_out)
    : inner_(std::move(inner)),
      workloads_(workloads.begin(), workloads.end()),
      table_out_(table_out) {}

bool RatioReporter::ReportContext(const Context& context) {
  return inner_->ReportContext(context);
}

void RatioReporter::ReportRuns(const std::vector<Run>& runs) {
  std::vector<Run> shown = runs;
  for (Run& run : shown) {
    run.run_name.iterations.clear();
    run.run_name.time_type.clear();
    if (run.run_type != Run::RT_Iteration || run.error_occurred) continue;
    auto rate = run.counters.find("items_per_second");
    if (rate == run.counters.end()) continue;
    const std::string name = run.benchmark_name();
    if (rates_.find(name) == rates_.end()) order_.push_back(name);
    rates_[name].push_back(
        Sample{absl::StrCat(run.report_label, "#", run.repetition_index),
               rate->second.value});
  }
  inner_->ReportRuns(shown);
}

void RatioReporter::Finalize() {
  inner_->Finalize();
  PrintTable();
}

std::vector<RatioReporter::Row> RatioReporter::Rows() const {
  std::vector<Row> rows;
  for (const std::string& name : order_) {
    if (absl::EndsWith(name, kRawSuffix)) continue;
    auto raw = rates_.find(name + kRawSuffix);
    if (raw == rates_.end()) continue;
    const size_t slash = name.find('/');
    if (slash == std::string::npos) continue;
    std::vector<double> ours;
    std::vector<double> baseline;
    std::vector<double> ratios;
    for (const Sample& a : rates_.at(name)) {
      ours.push_back(a.rate);
      for (const Sample& b : raw->second) {
        if (b.key == a.key && b.rate > 0) ratios.push_back(a.rate / b.rate);
      }
    }
    for (const Sample& b : raw->second) baseline.push_back(b.rate);
    if (ratios.empty()) continue;
    Row row;
    row.workload = name.substr(0, slash);
    row.backend = name.substr(slash + 1);
    row.ours = Median(ours);
    row.raw = Median(baseline);
    row.ratio = Median(ratios);
    row.lowest_ratio = *std::min_element(ratios.begin(), ratios.end());
    row.highest_ratio = *std::max_element(ratios.begin(), ratios.end());
    for (const Workload& w : workloads_) {
      if (row.workload == w.name) row.target = w.target_ratio;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

void RatioReporter::PrintTable() {
  const std::vector<Row> rows = Rows();
  all_met_ = !rows.empty();
  if (rows.empty()) return;
  std::ostream& out = *table_out_;
  out << "\nRatio ours / raw: events/s are each side's median over rounds; "
         "the ratio is the median\nof the rounds' ratios (each round runs "
         "the two sides back to back), with their range.\n\n"
      << "| workload | backend | ours (events/s) | raw (events/s) | ratio "
         "| range | target | |\n"
      << "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n";
  for (const Row& row : rows) {
    const bool met = row.ratio >= row.target;
    all_met_ = all_met_ && met;
    out << absl::StrFormat(
        "| %s | %s | %s | %s | %.3f | %.2f-%.2f | %.2f | %s |\n", row.workload,
        row.backend, Thousands(row.ours), Thousands(row.raw), row.ratio,
        row.lowest_ratio, row.highest_ratio, row.target,
        met ? "met" : "MISSED");
  }
  out << std::flush;
}

}  // namespace eventstore::bench
