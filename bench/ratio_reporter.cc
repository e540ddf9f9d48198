#include "bench/ratio_reporter.h"

#include <algorithm>
#include <cstring>
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
    absl::Span<const Workload> workloads, absl::Span<const Backend> backends,
    std::ostream* table_out)
    : inner_(std::move(inner)),
      workloads_(workloads.begin(), workloads.end()),
      table_out_(table_out) {
  for (const Backend& backend : backends) {
    backend_targets_[backend.name] = backend.target_ratios;
    backend_names_.push_back(backend.name);
  }
}

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

double RatioReporter::Target(const Workload& workload,
                             const std::string& backend) const {
  auto b = backend_targets_.find(backend);
  if (b != backend_targets_.end()) {
    auto t = b->second.find(workload.name);
    if (t != b->second.end()) return t->second;
  }
  return workload.target_ratio;
}

bool RatioReporter::MakeRow(const std::string& name,
                            const std::string& baseline, Row& row) const {
  auto ours = rates_.find(name);
  auto raw = rates_.find(baseline);
  if (ours == rates_.end() || raw == rates_.end()) return false;
  std::vector<double> ours_rates;
  std::vector<double> raw_rates;
  std::vector<double> ratios;
  for (const Sample& a : ours->second) {
    ours_rates.push_back(a.rate);
    for (const Sample& b : raw->second) {
      if (b.key == a.key && b.rate > 0) ratios.push_back(a.rate / b.rate);
    }
  }
  for (const Sample& b : raw->second) raw_rates.push_back(b.rate);
  if (ratios.empty()) return false;
  row.ours = Median(ours_rates);
  row.raw = Median(raw_rates);
  row.ratio = Median(ratios);
  row.lowest_ratio = *std::min_element(ratios.begin(), ratios.end());
  row.highest_ratio = *std::max_element(ratios.begin(), ratios.end());
  return true;
}

void RatioReporter::AddConcurrentRows(const Workload& w,
                                      std::vector<Row>& rows) const {
  // "<workload>/<backend>/writers:<n>".
  const std::string most = absl::StrCat("/writers:", WriterCounts().back());
  for (const std::string& name : order_) {
    if (!absl::StartsWith(name, absl::StrCat(w.name, "/")) ||
        !absl::EndsWith(name, most)) {
      continue;
    }
    const std::string backend =
        name.substr(std::strlen(w.name) + 1,
                    name.size() - most.size() - std::strlen(w.name) - 1);
    const std::string prefix = absl::StrCat(w.name, "/", backend);
    Row row;
    row.workload = w.name;
    row.backend =
        absl::StrCat(backend, ", ", WriterCounts().back(), " / 1 writers");
    row.scaling = true;
    if (absl::EndsWith(backend, kRawSuffix)) {
      // The raw baseline's own scaling, for information.
      if (MakeRow(name, WritersBenchmarkName(prefix, 1), row)) {
        rows.push_back(std::move(row));
      }
      continue;
    }
    if (MakeRow(name, WritersBenchmarkName(prefix, 1), row)) {
      row.target = w.target_ratio;
      rows.push_back(row);
    }
    Row versus_raw;
    versus_raw.workload = w.name;
    versus_raw.backend =
        absl::StrCat(backend, ", ", WriterCounts().back(), " writers");
    if (MakeRow(name,
                WritersBenchmarkName(absl::StrCat(prefix, kRawSuffix),
                                     WriterCounts().back()),
                versus_raw)) {
      rows.push_back(std::move(versus_raw));
    }
  }
}

std::vector<RatioReporter::Row> RatioReporter::Rows() const {
  std::vector<Row> rows;
  for (const Workload& w : workloads_) {
    if (w.concurrent) {
      AddConcurrentRows(w, rows);
      continue;
    }
    for (const std::string& backend : backend_names_) {
      const std::string prefix = absl::StrCat(w.name, "/", backend);
      Row row;
      row.workload = w.name;
      row.backend = backend;
      if (w.versus[0] != '\0') absl::StrAppend(&row.backend, ", ", w.versus);
      if (!MakeRow(absl::StrCat(prefix, w.ours_suffix),
                   absl::StrCat(prefix, w.baseline_suffix), row)) {
        continue;
      }
      row.target = Target(w, backend);
      rows.push_back(std::move(row));
      // A third side against the same baseline (Workload::alt_suffix).
      Row alt;
      alt.workload = w.name;
      alt.backend = absl::StrCat(backend, ", ", w.alt_versus);
      if (w.alt_suffix[0] != '\0' &&
          MakeRow(absl::StrCat(prefix, w.alt_suffix),
                  absl::StrCat(prefix, w.baseline_suffix), alt)) {
        alt.target = w.alt_target_ratio;
        rows.push_back(std::move(alt));
      }
    }
  }
  return rows;
}

void RatioReporter::PrintTable() {
  const std::vector<Row> rows = Rows();
  all_met_ = !rows.empty();
  if (rows.empty()) return;
  bool scaling = false;
  std::ostream& out = *table_out_;
  if (title_.empty()) {
    out << "\nRatio ours / baseline (raw; for P1 our ReadAll; for P2 a load "
           "without a snapshot):\nevents/s (P2: loads/s) are each side's "
           "median over rounds; the ratio is the median\nof the rounds' "
           "ratios (each round runs the two sides back to back), with their "
           "range.\n\n";
  } else {
    out << "\n" << title_ << "\n\n";
  }
  out << "| workload | backend | ours (/s) | baseline (/s) | ratio "
         "| range | target | |\n"
      << "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n";
  for (const Row& row : rows) {
    scaling = scaling || row.scaling;
    const bool met = row.ratio >= row.target;
    if (row.target > 0) all_met_ = all_met_ && met;
    out << absl::StrFormat(
        "| %s | %s | %s | %s | %.3f | %.2f-%.2f | %s | %s |\n", row.workload,
        row.backend, Thousands(row.ours), Thousands(row.raw), row.ratio,
        row.lowest_ratio, row.highest_ratio,
        row.target > 0 ? absl::StrFormat("%.2f", row.target) : "-",
        row.target > 0 ? (met ? "met" : "MISSED") : "");
  }
  if (scaling) {
    out << "\nRows \"N / 1 writers\" give a side's scaling: its events/s "
           "with N writer threads\n(ours column) over its events/s with one "
           "(baseline column), paired by round.\n";
  }
  out << std::flush;
}

}  // namespace eventstore::bench
