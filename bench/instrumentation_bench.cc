// instrumentation_bench: what attaching metrics (and spans) to a store
// costs. W1, W2 and W4 of docs/benchmarks.md run on our SQLite store
// (synchronous=NORMAL, WAL) and on our PostgreSQL store (built with
// EVENTSTORE_WITH_POSTGRES), each on three sides in paired rounds:
//
//   <workload>/<backend>/bare        the store alone
//   <workload>/<backend>/prometheus  the same store wrapped by Instrument()
//                                    with a PrometheusInstrumentation
//   <workload>/<backend>/traced      the same, plus a Tracer whose spans
//                                    record nothing (NoopTracer below)
//   <workload>/<backend>/bare_again  with $EVENTSTORE_BENCH_CONTROL=1 only:
//                                    the bare store again, a control of how
//                                    far identical sides scatter
//
// Each workload on each backend starts with a warm-up run on the bare
// store, "<workload>/<backend>/warm_up", that the tables leave out. Then
// a table of the ratios prometheus / bare and traced / bare (target 0.95)
// by wall-clock time, and the same by CPU time. Every side opens its stores the
// same way (bench/sqlite_raw.h, bench/postgres_raw.h), behind the same one-call
// forwarding hop (SharedStore), so the only difference is the
// InstrumentedEventStore.
//
// Before them, micro-benchmarks of the instrumentation path alone (no
// database; ns per call, on 1 and 2 threads):
//   O1_OnAppend, O2_OnRead       PrometheusInstrumentation::OnAppend/OnRead
//   O3_Append/{bare,prometheus,traced}
//                                Append through the decorator over a store
//                                that returns at once (StubStore)
//
//   instrumentation_bench                                 # everything
//   instrumentation_bench --benchmark_filter=/sqlite/     # SQLite only
//   instrumentation_bench --benchmark_filter='^W'         # no micro-benchmarks
//
// PostgreSQL: as eventstore_bench, $EVENTSTORE_BENCH_PG_URL or a throwaway
// durable server started on first use.
//
// Google Benchmark's own flags apply; --benchmark_format=json writes JSON to
// stdout and the ratio tables to stderr.

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "bench/bench_display.h"
#include "bench/ratio_reporter.h"
#include "bench/sqlite_raw.h"
#include "bench/target.h"
#include "bench/workloads.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/instrumented_event_store.h"
#include "eventstore/prometheus/prometheus_instrumentation.h"
#include "eventstore/status_macros.h"
#include "eventstore/tracing.h"
#if EVENTSTORE_BENCH_POSTGRES
#include "bench/postgres_raw.h"
#endif

namespace eventstore::bench {
namespace {

// The ratio table's rows: W1, W2 and W4 (their iterations, as in
// eventstore_bench), instrumented / bare, with and without the tracer.
// Rounds: W1 5 (4 on PostgreSQL, where each side is 10,000 durable
// commits), W2 and W4 7.
constexpr Workload kOverheadWorkloads[] = {
    {"W1_SingleAppend", 0.95, 1, 5, 4, false, "/prometheus", "/bare",
     "prometheus / bare"},
    {"W1_SingleAppend", 0.95, 1, 5, 4, false, "/traced", "/bare",
     "prometheus + no-op tracer / bare"},
    {"W2_BatchAppend", 0.95, 1, 7, 7, false, "/prometheus", "/bare",
     "prometheus / bare"},
    {"W2_BatchAppend", 0.95, 1, 7, 7, false, "/traced", "/bare",
     "prometheus + no-op tracer / bare"},
    {"W4_ReadAll", 0.95, 8, 7, 7, false, "/prometheus", "/bare",
     "prometheus / bare"},
    {"W4_ReadAll", 0.95, 8, 7, 7, false, "/traced", "/bare",
     "prometheus + no-op tracer / bare"},
};

// With $EVENTSTORE_BENCH_CONTROL=1, a fourth side, "<workload>/<backend>/
// bare_again", is the bare store once more: its ratio to "/bare" shows how
// far two identical sides scatter on this machine. No target.
constexpr Workload kControlWorkloads[] = {
    {"W1_SingleAppend", 0, 1, 5, 4, false, "/bare_again", "/bare",
     "control: bare again / bare"},
    {"W2_BatchAppend", 0, 1, 7, 7, false, "/bare_again", "/bare",
     "control: bare again / bare"},
    {"W4_ReadAll", 0, 8, 7, 7, false, "/bare_again", "/bare",
     "control: bare again / bare"},
};

bool WithControl() {
  const char* control = std::getenv("EVENTSTORE_BENCH_CONTROL");
  return control != nullptr && std::string_view(control) == "1";
}

// A span that records nothing: what the decorator costs with a tracer
// attached, beyond the tracer's own work.
class NoopSpan final : public Span {
 public:
  void SetAttribute(std::string_view key, std::string_view value) override {}
  void SetAttribute(std::string_view key, int64_t value) override {}
  void SetError(const absl::Status& status) override {}
  void End() override {}
  TraceContext context() const override { return {}; }
};

class NoopTracer final : public Tracer {
 public:
  std::unique_ptr<Span> StartSpan(std::string_view name, SpanKind kind,
                                  const TraceContext& parent) override {
    return std::make_unique<NoopSpan>();
  }
};

// A unique_ptr<EventStore> over a shared one (the bench's openers return
// shared stores whose deleters remove their databases): one forwarding
// call, on every side alike.
class SharedStore final : public ForwardingEventStore {
 public:
  explicit SharedStore(std::shared_ptr<EventStore> store)
      : ForwardingEventStore(store.get()), store_(std::move(store)) {}

 private:
  const std::shared_ptr<EventStore> store_;
};

// Fresh targets over stores from `open`, behind SharedStore, wrapped by
// Instrument(options) unless `options` attaches nothing.
TargetFactory SideTargets(StoreFactory open, InstrumentOptions options) {
  return [open = std::move(open),
          options =
              std::move(options)]() -> absl::StatusOr<std::unique_ptr<Target>> {
    ES_ASSIGN_OR_RETURN(std::shared_ptr<EventStore> store, open());
    std::shared_ptr<EventStore> wrapped =
        Instrument(std::make_unique<SharedStore>(std::move(store)), options);
    return MakeStoreTarget(std::move(wrapped), nullptr);
  };
}

std::shared_ptr<PrometheusInstrumentation> NewMetrics() {
  absl::StatusOr<std::shared_ptr<PrometheusInstrumentation>> metrics =
      PrometheusInstrumentation::Create();
  if (!metrics.ok()) {
    std::cerr << "instrumentation_bench: " << metrics.status() << "\n";
    std::abort();
  }
  return *std::move(metrics);
}

// One backend's three sides. Each instrumented side has a registry of its
// own for the whole run, as an application has one per process.
std::vector<Side> Sides(const std::string& workload, const std::string& backend,
                        const StoreFactory& open) {
  const std::string prefix = absl::StrCat(workload, "/", backend);
  InstrumentOptions prometheus;
  prometheus.instrumentation = NewMetrics();
  prometheus.backend_label = backend;
  InstrumentOptions traced = prometheus;
  traced.instrumentation = NewMetrics();
  traced.tracer = std::make_shared<NoopTracer>();
  std::vector<Side> sides = {
      {absl::StrCat(prefix, "/bare"), SideTargets(open, InstrumentOptions())},
      {absl::StrCat(prefix, "/prometheus"), SideTargets(open, prometheus)},
      {absl::StrCat(prefix, "/traced"), SideTargets(open, traced)},
  };
  if (WithControl()) {
    sides.push_back({absl::StrCat(prefix, "/bare_again"),
                     SideTargets(open, InstrumentOptions())});
  }
  return sides;
}

// --- Reporting ---------------------------------------------------------------

// A reporter that shows nothing (the inner reporter of the CPU-time table).
class SilentReporter final : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context& context) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {}
};

// Feeds every result to `wall` as it is, and to `cpu` with events/s per
// second of the benchmark thread's CPU time instead of wall-clock time;
// prints both tables at the end. On a machine shared with other work,
// wall-clock time includes waiting for a CPU; CPU time does not (but on
// PostgreSQL it leaves out the server's work, so it overstates our share).
class WallAndCpuReporter final : public benchmark::BenchmarkReporter {
 public:
  WallAndCpuReporter(RatioReporter* wall, RatioReporter* cpu)
      : wall_(wall), cpu_(cpu) {}

  bool ReportContext(const Context& context) override {
    cpu_->ReportContext(context);
    return wall_->ReportContext(context);
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    wall_->ReportRuns(runs);
    std::vector<Run> by_cpu = runs;
    for (Run& run : by_cpu) {
      auto rate = run.counters.find("items_per_second");
      if (rate == run.counters.end() || run.cpu_accumulated_time <= 0) {
        continue;
      }
      rate->second.value *=
          run.real_accumulated_time / run.cpu_accumulated_time;
    }
    cpu_->ReportRuns(by_cpu);
  }
  void Finalize() override {
    wall_->Finalize();
    cpu_->Finalize();
  }

 private:
  RatioReporter* const wall_;
  RatioReporter* const cpu_;
};

constexpr char kWallTitle[] =
    "Ratio instrumented / bare, by wall-clock time (the target's measure):\n"
    "events/s are each side's median over rounds; the ratio is the median of "
    "the\nrounds' ratios (each round runs the sides back to back), with "
    "their range.";
constexpr char kCpuTitle[] =
    "The same runs by CPU time of the benchmark thread (events per CPU "
    "second;\nPostgreSQL's server work not included):";

// --- Micro-benchmarks: the instrumentation path without a database -------

std::shared_ptr<PrometheusInstrumentation>& MicroMetrics() {
  static auto* metrics =
      new std::shared_ptr<PrometheusInstrumentation>(NewMetrics());
  return *metrics;
}

void OnAppendMicro(benchmark::State& state) {
  PrometheusInstrumentation& metrics = *MicroMetrics();
  const AppendObservation append{"sqlite", AppendOutcome::kOk, 1, 203,
                                 absl::Microseconds(140)};
  for (auto _ : state) metrics.OnAppend(append);
}

void OnReadMicro(benchmark::State& state) {
  PrometheusInstrumentation& metrics = *MicroMetrics();
  const ReadObservation read{"sqlite", ReadKind::kReadAll, true, 1000,
                             absl::Milliseconds(1)};
  for (auto _ : state) metrics.OnRead(read);
}

// A store whose Append returns a fixed result at once.
class StubStore final : public ForwardingEventStore {
 public:
  StubStore() : ForwardingEventStore(nullptr) {}
  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    return AppendResult{};
  }
};

void DecoratedAppendMicro(benchmark::State& state, InstrumentOptions options) {
  const std::unique_ptr<EventStore> store =
      Instrument(std::make_unique<StubStore>(), std::move(options));
  const std::vector<EventData> events = {BenchEvent(1)};
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        store->Append("order-1", ExpectedVersion::Exactly(3), events));
  }
}

void RegisterMicro() {
  benchmark::RegisterBenchmark("O1_OnAppend", OnAppendMicro)
      ->Threads(1)
      ->Threads(2)
      ->UseRealTime();
  benchmark::RegisterBenchmark("O2_OnRead", OnReadMicro)
      ->Threads(1)
      ->Threads(2)
      ->UseRealTime();
  InstrumentOptions prometheus;
  prometheus.instrumentation = MicroMetrics();
  prometheus.backend_label = "stub";
  InstrumentOptions traced = prometheus;
  traced.tracer = std::make_shared<NoopTracer>();
  const std::vector<std::pair<std::string, InstrumentOptions>> sides = {
      {"bare", InstrumentOptions()},
      {"prometheus", prometheus},
      {"traced", traced},
  };
  for (const auto& [name, options] : sides) {
    benchmark::RegisterBenchmark(absl::StrCat("O3_Append/", name).c_str(),
                                 [options = options](benchmark::State& state) {
                                   DecoratedAppendMicro(state, options);
                                 })
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
  }
}

int Main(int argc, char** argv) {
  BenchDisplay display = MakeBenchDisplay(argc, argv);
  std::vector<Backend> backends(1);
  backends[0].name = "sqlite";
  std::vector<StoreFactory> openers = {
      SqliteStoreOpener(SqliteOptions::Synchronous::kNormal)};
#if EVENTSTORE_BENCH_POSTGRES
  Backend postgres;
  postgres.name = "postgres";
  postgres.commits_wait_for_disk = true;
  backends.push_back(std::move(postgres));
  openers.push_back(PostgresStoreOpener());
#endif
  std::vector<Workload> rows(std::begin(kOverheadWorkloads),
                             std::end(kOverheadWorkloads));
  if (WithControl()) {
    rows.insert(rows.end(), std::begin(kControlWorkloads),
                std::end(kControlWorkloads));
  }
  RatioReporter wall(std::move(display.reporter), rows, backends,
                     display.table_out);
  wall.set_title(kWallTitle);
  RatioReporter cpu(std::make_unique<SilentReporter>(), rows, backends,
                    display.table_out);
  cpu.set_title(kCpuTitle);
  WallAndCpuReporter reporter(&wall, &cpu);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("payload_bytes",
                              std::to_string(TypicalPayloadBytes()));

  RegisterMicro();
  // One registration per workload (the table lists each twice), after a
  // warm-up run on the bare store that the table leaves out: the first run
  // of a workload on a backend is slower (cold caches, a fresh server), and
  // would otherwise fall on the side that goes first in round 1, bare.
  for (size_t w = 0; w < std::size(kOverheadWorkloads); w += 2) {
    const Workload& workload = kOverheadWorkloads[w];
    for (size_t b = 0; b < backends.size(); ++b) {
      RegisterSides(
          workload, 1,
          {{absl::StrCat(workload.name, "/", backends[b].name, "/warm_up"),
            SideTargets(openers[b], InstrumentOptions())}});
      RegisterSides(workload, Rounds(workload, backends[b]),
                    Sides(workload.name, backends[b].name, openers[b]));
    }
  }
  benchmark::RunSpecifiedBenchmarks(&reporter);
  CloseReadFixtures();
#if EVENTSTORE_BENCH_POSTGRES
  StopBenchPostgres();
#endif
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) { return eventstore::bench::Main(argc, argv); }
