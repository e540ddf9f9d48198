#include "bench/paired_rounds.h"

#include <benchmark/benchmark.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/workloads.h"

namespace eventstore::bench {

void RegisterPairedRounds(const Workload& workload, const std::string& backend,
                          const BenchmarkFn& ours,
                          const BenchmarkFn& baseline) {
  const std::string prefix = absl::StrCat(workload.name, "/", backend);
  std::vector<std::pair<std::string, BenchmarkFn>> sides = {
      {absl::StrCat(prefix, workload.ours_suffix), ours},
      {absl::StrCat(prefix, workload.baseline_suffix), baseline}};
  const int rounds = workload.rounds;
  for (int round = 0; round < rounds; ++round) {
    for (const auto& [name, fn] : sides) {
      benchmark::RegisterBenchmark(
          name.c_str(),
          [fn = fn, round, rounds](benchmark::State& state) {
            state.SetLabel(absl::StrCat("round ", round + 1, "/", rounds));
            fn(state);
          })
          ->Iterations(workload.iterations)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
    std::swap(sides[0], sides[1]);
  }
}

}  // namespace eventstore::bench
