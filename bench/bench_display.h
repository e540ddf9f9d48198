// BenchDisplay: the reporter Google Benchmark would pick for a program's
// flags, for programs that wrap it in a RatioReporter (eventstore_bench,
// instrumentation_bench, replica_bench, failover_bench, append_each_bench).
//
//   BenchDisplay display = MakeBenchDisplay(argc, argv);  // before Initialize
//   RatioReporter reporter(std::move(display.reporter), workloads, backends,
//                          display.table_out);

#ifndef EVENTSTORE_BENCH_BENCH_DISPLAY_H_
#define EVENTSTORE_BENCH_BENCH_DISPLAY_H_

#include <benchmark/benchmark.h>

#include <memory>
#include <ostream>

namespace eventstore::bench {

struct BenchDisplay {
  // A JSONReporter for --benchmark_format=json, else a ConsoleReporter
  // coloured as --benchmark_color says (auto: when stdout is a terminal),
  // with counters in columns when --benchmark_counters_tabular is true.
  std::unique_ptr<benchmark::BenchmarkReporter> reporter;
  // Where a table printed after the run goes: std::cerr when the results
  // are JSON on stdout, else std::cout.
  std::ostream* table_out = nullptr;
};

// Reads the flags from argv without consuming them: call it before
// benchmark::Initialize.
BenchDisplay MakeBenchDisplay(int argc, char** argv);

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_BENCH_DISPLAY_H_
