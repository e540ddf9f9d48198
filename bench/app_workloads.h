// The application-level benchmark workloads (docs/benchmarks.md): what a
// user of the library measures beyond appends and reads.
//
//   RegisterAppWorkloads(backends);  // after RegisterWorkloads(backends)
//   benchmark::RunSpecifiedBenchmarks(&reporter);
//   CloseAppFixtures();
//
// P1_ProjectionCatchUp/<backend>: a projection that counts events per type
// catches up over a log of 100,000 events with the real ProjectionRunner
// (RunOnce from an empty checkpoint, default options but batch_size 1,000,
// ReadAll's page size in W4); events/s. Beside it,
// P1_ProjectionCatchUp/<backend>_readall reads the same store's whole log
// with ReadAll in pages of 1,000 (W4's loop), in the same round: the ratio
// is the runner's own cost (dispatch, checkpoints, lease).
//
// P2_AggregateLoad/<backend>/snapshot and .../no_snapshot: load an
// aggregate whose stream holds 1,000 events, with AggregateRepository, from
// its snapshot (taken at version 1,000) or by replaying every event; loads/s.
//
// Both run on the backends with Backend::open_store, each on one store per
// backend written once (untimed, with batch appends) and shared by the two
// sides, in rounds like W1..W4.

#ifndef EVENTSTORE_BENCH_APP_WORKLOADS_H_
#define EVENTSTORE_BENCH_APP_WORKLOADS_H_

#include "absl/types/span.h"
#include "bench/workloads.h"

namespace eventstore::bench {

// P1 and P2, in order.
absl::Span<const Workload> AppWorkloads();

// Registers P1 and P2 on every backend that has open_store.
void RegisterAppWorkloads(absl::Span<const Backend> backends);

// Closes the stores P1 and P2 keep from round to round (a workload that
// failed midway may leave one open). Call after RunSpecifiedBenchmarks.
void CloseAppFixtures();

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_APP_WORKLOADS_H_
