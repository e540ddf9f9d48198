// PB1: PostgreSQL batch appends of 100, 1,000 and 10,000 events (issue 13,
// item 5): our Append and our importer (what `eventstore migrate` writes
// with) against the four raw libpq forms of bench/postgres_raw.cc, in the
// same run, paired by round.
//
//   PB1_Batch<N>/postgres              Append(stream, NoStream(), N events)
//   PB1_Batch<N>/postgres_import       EventImporter::ImportEvents of the
//                                      same N events (with the position map
//                                      and the migration's progress row)
//   PB1_Batch<N>/postgres_raw_unnest   INSERT ... SELECT FROM unnest($arrays)
//   PB1_Batch<N>/postgres_raw_values   INSERT ... VALUES (...), (...), ...
//   PB1_Batch<N>/postgres_raw_copy     COPY ... FROM STDIN (FORMAT binary)
//   PB1_Batch<N>/postgres_raw_pipeline one INSERT per event, pipeline mode,
//                                      one Sync
//
// Every run writes --pb_events events (default 40,000) in batches of N,
// each batch to a new stream "cart-<i>" (W2's rows: the same OrderPlaced
// payloads of about 200 bytes and metadata with a correlation id), into a
// new, empty schema; creating and dropping the schema are not timed. Each
// round runs the six sides back to back, the order rotated by one each
// round. The ratio table gives each side's median events/s, and ours /
// raw per form as the median of the rounds' paired ratios; the summary
// below it names the fastest raw form per batch size and gives ours / best
// raw and import / best raw.
//
//   pg_batch_bench                      # 3 sizes x 6 sides x 5 rounds
//   pg_batch_bench --pb_sizes=10000 --pb_rounds=3
//
// Flags (anywhere among Google Benchmark's own):
//   --pb_events=N     events per run (default 40,000; a multiple of every
//                     batch size, rounded down)
//   --pb_sizes=LIST   batch sizes (default 100,1000,10000)
//   --pb_rounds=R     rounds (default 5)
// PostgreSQL: $EVENTSTORE_BENCH_PG_URL, else a throwaway durable server
// (bench/postgres_raw.h).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/postgres_raw.h"
#include "bench/ratio_reporter.h"
#include "bench/target.h"
#include "bench/workloads.h"
#include "eventstore/event_importer.h"
#include "eventstore/recorded_event.h"
#include "eventstore/status_macros.h"

namespace eventstore::bench {
namespace {

constexpr char kBackend[] = "postgres";

struct Flags {
  int64_t events = 40000;
  std::vector<int> sizes = {100, 1000, 10000};
  int rounds = 5;
};

Flags& TheFlags() {
  static auto* flags = new Flags;
  return *flags;
}

[[noreturn]] void Die(const absl::Status& status, const char* what) {
  std::cerr << "pg_batch_bench: " << what << ": " << status << std::endl;
  std::exit(1);
}

// Takes the --pb_* flags out of argv.
void ParseFlags(int& argc, char** argv) {
  Flags& flags = TheFlags();
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--pb_")) {
      argv[out++] = argv[i];
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    bool ok = true;
    if (name == "--pb_events") {
      ok = absl::SimpleAtoi(value, &flags.events) && flags.events > 0;
    } else if (name == "--pb_rounds") {
      ok = absl::SimpleAtoi(value, &flags.rounds) && flags.rounds > 0;
    } else if (name == "--pb_sizes") {
      flags.sizes.clear();
      for (const std::string& part : std::vector<std::string>(
               absl::StrSplit(value, ',', absl::SkipEmpty()))) {
        int size = 0;
        ok = ok && absl::SimpleAtoi(part, &size) && size > 1;
        flags.sizes.push_back(size);
      }
      ok = ok && !flags.sizes.empty();
    } else {
      ok = false;
    }
    if (!ok) Die(absl::InvalidArgumentError(arg), "bad flag");
  }
  argc = out;
}

// 12345.6 -> "12,346".
std::string Thousands(double value) {
  const std::string digits = absl::StrFormat("%.0f", value);
  std::string out;
  const int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string WorkloadName(int size) { return absl::StrCat("PB1_Batch", size); }

// The batches of one run at `size`: events() events, W2's rows.
struct RunData {
  std::vector<Batch> batches;
  // The same events as an import sees them, read from a source store: in
  // stream order, versions from 1, increasing source positions.
  std::vector<std::vector<RecordedEvent>> imports;
  int64_t events = 0;
};

const RunData& DataFor(int size) {
  static auto* cache = new std::map<int, RunData>;
  auto it = cache->find(size);
  if (it != cache->end()) return it->second;
  RunData& data = (*cache)[size];
  const int64_t batches = TheFlags().events / size;
  int64_t n = 0;
  const absl::Time recorded_at = absl::Now();
  for (int64_t b = 0; b < batches; ++b) {
    Batch& batch = data.batches.emplace_back();
    batch.stream = absl::StrCat("cart-", b);
    batch.expected = ExpectedVersion::NoStream();
    std::vector<RecordedEvent>& imported = data.imports.emplace_back();
    for (int i = 0; i < size; ++i, ++n) {
      EventData event = BenchEvent(n);
      std::string encoded;
      if (event.metadata.ByteSizeLong() > 0) {
        event.metadata.SerializeToString(&encoded);
      }
      RecordedEvent& r = imported.emplace_back();
      r.id = event.id;
      r.type = event.type;
      r.payload = event.payload;
      r.metadata = event.metadata;
      r.stream = batch.stream;
      r.version = i + 1;
      r.position = Position::FromParts(1, static_cast<uint64_t>(n + 1));
      r.recorded_at = recorded_at;
      batch.events.push_back(std::move(event));
      batch.encoded_metadata.push_back(std::move(encoded));
    }
  }
  data.events = n;
  return data;
}

void Fail(benchmark::State& state, const absl::Status& status) {
  state.SkipWithError(status.ToString().c_str());
}

// One side's run: `write` appends every batch of `data` to a fresh
// database made (untimed) by `open`.
template <typename Db>
void TimedRun(benchmark::State& state, int64_t events,
              const std::function<absl::StatusOr<Db>()>& open,
              const std::function<absl::Status(Db&)>& write) {
  for (auto _ : state) {
    state.PauseTiming();
    absl::StatusOr<Db> db = open();
    if (!db.ok()) {
      Fail(state, db.status());
      break;
    }
    state.ResumeTiming();
    const absl::Status status = write(*db);
    state.PauseTiming();
    *db = Db();
    state.ResumeTiming();
    if (!status.ok()) {
      Fail(state, status);
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * events);
}

void TargetSide(benchmark::State& state, int size,
                const TargetFactory& factory) {
  const RunData& data = DataFor(size);
  TimedRun<std::unique_ptr<Target>>(
      state, data.events, factory, [&](std::unique_ptr<Target>& target) {
        for (const Batch& batch : data.batches) {
          ES_RETURN_IF_ERROR(target->Append(batch));
        }
        return absl::OkStatus();
      });
}

void ImportSide(benchmark::State& state, int size) {
  const RunData& data = DataFor(size);
  TimedRun<std::shared_ptr<EventStore>>(
      state, data.events, PostgresStoreOpener(),
      [&](std::shared_ptr<EventStore>& store) {
        EventImporter& importer = store->importer();
        for (const std::vector<RecordedEvent>& batch : data.imports) {
          ES_RETURN_IF_ERROR(
              importer.ImportEvents("pb1-source", "pb1 source", batch));
        }
        return absl::OkStatus();
      });
}

using SideFn = std::function<void(benchmark::State&)>;

void RegisterAll() {
  const Flags& flags = TheFlags();
  for (int size : flags.sizes) {
    const std::string prefix = absl::StrCat(WorkloadName(size), "/", kBackend);
    std::vector<std::pair<std::string, SideFn>> sides = {
        {prefix,
         [size](benchmark::State& s) {
           TargetSide(s, size, PostgresStoreFactory());
         }},
        {prefix + "_import",
         [size](benchmark::State& s) { ImportSide(s, size); }},
    };
    for (PostgresRawBatchMethod method :
         {PostgresRawBatchMethod::kUnnest, PostgresRawBatchMethod::kValues,
          PostgresRawBatchMethod::kCopy, PostgresRawBatchMethod::kPipeline}) {
      sides.emplace_back(
          absl::StrCat(prefix, "_raw_", RawBatchMethodName(method)),
          [size, method](benchmark::State& s) {
            TargetSide(s, size, PostgresRawFactory(method));
          });
    }
    for (int round = 0; round < flags.rounds; ++round) {
      for (const auto& [name, fn] : sides) {
        benchmark::RegisterBenchmark(
            name.c_str(),
            [fn = fn, round, rounds = flags.rounds](benchmark::State& state) {
              state.SetLabel(absl::StrCat("round ", round + 1, "/", rounds));
              fn(state);
            })
            ->Iterations(1)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
      std::rotate(sides.begin(), sides.begin() + 1, sides.end());
    }
  }
}

// The rows of the ratio table: ours and the importer against each raw form,
// and the raw forms against unnest (the form ours uses). Workload holds
// C strings: their texts live in a deque that only grows.
std::vector<Workload> TableRows() {
  static auto* texts = new std::deque<std::string>;
  auto keep = [](std::string text) {
    return texts->emplace_back(std::move(text)).c_str();
  };
  const char* forms[] = {"unnest", "values", "copy", "pipeline"};
  std::vector<Workload> rows;
  for (int size : TheFlags().sizes) {
    const char* name = keep(WorkloadName(size));
    auto row = [&](const char* ours, const std::string& baseline,
                   const std::string& versus) {
      rows.push_back(Workload{name, 0, 1, 1, 1, false, ours, keep(baseline),
                              keep(versus)});
    };
    for (const char* form : forms) {
      row("", absl::StrCat("_raw_", form), absl::StrCat("ours / raw ", form));
    }
    for (const char* form : forms) {
      row("_import", absl::StrCat("_raw_", form),
          absl::StrCat("import / raw ", form));
    }
    for (const char* form : {"values", "copy", "pipeline"}) {
      row(keep(absl::StrCat("_raw_", form)), "_raw_unnest",
          absl::StrCat("raw ", form, " / raw unnest"));
    }
  }
  return rows;
}

// Collects every run's events/s by name and round, for the summary.
class SummaryReporter : public benchmark::BenchmarkReporter {
 public:
  explicit SummaryReporter(std::unique_ptr<benchmark::BenchmarkReporter> inner)
      : inner_(std::move(inner)) {}

  bool ReportContext(const Context& context) override {
    return inner_->ReportContext(context);
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      auto rate = run.counters.find("items_per_second");
      if (run.error_occurred || rate == run.counters.end()) continue;
      rates_[run.benchmark_name()][run.report_label] = rate->second.value;
    }
    inner_->ReportRuns(runs);
  }
  void Finalize() override {
    inner_->Finalize();
    Print();
  }

 private:
  static double Median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  // Google Benchmark's name for a registered one ("/iterations:1/
  // real_time" added).
  const std::map<std::string, double>* Find(const std::string& name) const {
    for (const auto& [full, rates] : rates_) {
      if (full == name || absl::StartsWith(full, name + "/iterations")) {
        return &rates;
      }
    }
    return nullptr;
  }
  double MedianRate(const std::string& name) const {
    const auto* rates = Find(name);
    std::vector<double> v;
    if (rates != nullptr) {
      for (const auto& [label, rate] : *rates) v.push_back(rate);
    }
    return Median(v);
  }
  // The median of the rounds' ratios a / b, and their range.
  std::string PairedRatio(const std::string& a, const std::string& b) const {
    const auto* ra = Find(a);
    const auto* rb = Find(b);
    if (ra == nullptr || rb == nullptr) return "-";
    std::vector<double> ratios;
    for (const auto& [label, rate] : *ra) {
      auto it = rb->find(label);
      if (it != rb->end() && it->second > 0) {
        ratios.push_back(rate / it->second);
      }
    }
    if (ratios.empty()) return "-";
    return absl::StrFormat("%.3f (%.2f-%.2f)", Median(ratios),
                           *std::min_element(ratios.begin(), ratios.end()),
                           *std::max_element(ratios.begin(), ratios.end()));
  }

  void Print() const {
    std::cout << "\nPB1 summary: medians of events/s over rounds; ratios are "
                 "medians of the rounds' paired\nratios (range); best raw = "
                 "the raw form with the highest median.\n\n"
              << "| batch | ours | import | raw unnest | raw values | raw "
                 "copy | raw pipeline | best raw | ours / best | import / "
                 "best | import / ours |\n"
              << "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | "
                 "---: | ---: | ---: |\n";
    for (int size : TheFlags().sizes) {
      const std::string prefix =
          absl::StrCat(WorkloadName(size), "/", kBackend);
      std::string best;
      double best_rate = -1;
      std::string cells;
      for (const char* form : {"unnest", "values", "copy", "pipeline"}) {
        const std::string name = absl::StrCat(prefix, "_raw_", form);
        const double rate = MedianRate(name);
        absl::StrAppend(&cells, Thousands(rate), " | ");
        if (rate > best_rate) {
          best_rate = rate;
          best = form;
        }
      }
      const std::string best_name = absl::StrCat(prefix, "_raw_", best);
      std::cout << absl::StrFormat("| %s | %s | %s | %s%s | %s | %s | %s |\n",
                                   Thousands(size),
                                   Thousands(MedianRate(prefix)),
                                   Thousands(MedianRate(prefix + "_import")),
                                   cells, best, PairedRatio(prefix, best_name),
                                   PairedRatio(prefix + "_import", best_name),
                                   PairedRatio(prefix + "_import", prefix));
    }
    std::cout << std::flush;
  }

  std::unique_ptr<benchmark::BenchmarkReporter> inner_;
  // events/s by benchmark name, then by round label.
  std::map<std::string, std::map<std::string, double>> rates_;
};

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) {
  using namespace eventstore::bench;
  ParseFlags(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  {
    absl::StatusOr<std::string> url = BenchPostgresUrl();
    if (!url.ok()) Die(url.status(), "starting PostgreSQL");
  }
  benchmark::AddCustomContext("pb_events", std::to_string(TheFlags().events));
  benchmark::AddCustomContext("payload_bytes",
                              std::to_string(TypicalPayloadBytes()));
  RegisterAll();
  const std::vector<Workload> rows = TableRows();
  std::vector<Backend> backends(1);
  backends[0].name = kBackend;
  auto ratios = std::make_unique<RatioReporter>(
      std::make_unique<benchmark::ConsoleReporter>(), rows, backends,
      &std::cout);
  ratios->set_title(
      "PB1: ours (Append) and import (ImportEvents) against each raw form; "
      "events/s are\nmedians over rounds, the ratio the median of the "
      "rounds' paired ratios (range).");
  SummaryReporter reporter(std::move(ratios));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  StopBenchPostgres();
  return 0;
}
