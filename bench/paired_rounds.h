// RegisterPairedRounds: a workload's two sides registered round by round,
// back to back, for RatioReporter to pair (replica_bench, failover_bench,
// append_each_bench).
//
//   RegisterPairedRounds(kF1, "postgres", Replay, W1);
//   // F1_Replay/postgres, F1_Replay/postgres_w1, then the other way round

#ifndef EVENTSTORE_BENCH_PAIRED_ROUNDS_H_
#define EVENTSTORE_BENCH_PAIRED_ROUNDS_H_

#include <benchmark/benchmark.h>

#include <functional>

#include "bench/workloads.h"

namespace eventstore::bench {

using BenchmarkFn = std::function<void(benchmark::State&)>;

// Registers `ours` as "<workload.name>/<backend><workload.ours_suffix>" and
// `baseline` as "<workload.name>/<backend><workload.baseline_suffix>", for
// workload.rounds rounds: each round runs the two back to back, ours first
// in odd rounds (1, 3, ...) and the baseline first in even ones. Every
// benchmark is labelled "round i/n" and runs workload.iterations
// iterations, timed in real time and shown in milliseconds.
void RegisterPairedRounds(const Workload& workload, const std::string& backend,
                          const BenchmarkFn& ours, const BenchmarkFn& baseline);

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_PAIRED_ROUNDS_H_
