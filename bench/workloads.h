// The benchmark workloads W1..W5 (docs/benchmarks.md), written once over
// Target so that every backend runs the same code.
//
//   std::vector<Backend> backends = {
//       {"sqlite", SqliteStoreFactory(kNormal), SqliteRawFactory(kNormal)}};
//   RegisterWorkloads(backends);
//   benchmark::RunSpecifiedBenchmarks();
//
// Each workload registers as "<workload>/<backend>" on our store and
// "<workload>/<backend>_raw" on the raw baseline, e.g. "W1_SingleAppend/
// sqlite" and "W1_SingleAppend/sqlite_raw", and reports events/s as
// items_per_second. A workload runs in rounds: each round runs it once on
// each side, alternating which side goes first, so that a burst of load
// from elsewhere on the machine does not land on one side only; a round's
// result line carries the label "round i/n". Append workloads start every
// run from a fresh, empty database; a read workload writes its database
// once per side and reads it in every round. Setup (building events,
// writing what the reads read, opening and closing) is outside the timed
// region.
//
// W5, the concurrent workload, runs only on backends with writer factories,
// once per count of writer threads in WriterCounts(), named
// "<workload>/<backend>/writers:<n>" (and "<backend>_raw" likewise). Its
// figure of merit is the scaling: events/s with the most writers over
// events/s with one, both on our store.

#ifndef EVENTSTORE_BENCH_WORKLOADS_H_
#define EVENTSTORE_BENCH_WORKLOADS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "bench/target.h"
#include "eventstore/bench/v1/bench.pb.h"
#include "eventstore/event_data.h"

namespace eventstore::bench {

// One backend configuration, e.g. SQLite with synchronous=FULL.
struct Backend {
  // The benchmark name part after the workload: "sqlite", "sqlite_full",
  // "postgres". Our store runs as `name`, the raw baseline as
  // `name` + "_raw".
  std::string name;
  // Fresh, empty stores of ours (MakeStoreTarget).
  TargetFactory store;
  // Fresh, empty raw baselines with the same settings and schema.
  TargetFactory raw;
  // Fresh, empty stores of ours that read into buffers they keep
  // (ReadApi::kInto): W3 and W4 run them too, as "<backend>_into", beside
  // ours and raw in each round. Empty: not run.
  TargetFactory store_into;
  // Every commit waits for the disk (synchronous=FULL): workloads of many
  // small commits run fewer rounds (Workload::rounds_when_commits_wait) to
  // keep the whole program short.
  bool commits_wait_for_disk = false;
  // Least acceptable ratios ours / raw on this backend, by workload name,
  // where they differ from Workload::target_ratio.
  std::map<std::string, double> target_ratios;
  // P1 and P2: fresh stores of ours. Empty: the backend does not run them.
  StoreFactory open_store;
  // W5: several writer targets over one fresh database. Empty: the backend
  // does not run W5. `raw_writers` may be empty (no raw W5 baseline).
  WritersFactory store_writers;
  WritersFactory raw_writers;
};

struct Workload {
  // "W1_SingleAppend".
  const char* name;
  // The least acceptable ratio of our events/s to the raw baseline's,
  // unless the backend sets its own (Backend::target_ratios).
  double target_ratio;
  // Runs of the workload in one round's benchmark (benchmark::Iterations);
  // its events/s is over all of them.
  int iterations;
  // Rounds: each runs ours and raw back to back (RatioReporter pairs them).
  int rounds;
  // Rounds on a backend whose commits wait for the disk.
  int rounds_when_commits_wait;
  // W5: runs once per count in WriterCounts(), and target_ratio is for the
  // scaling of our store (events/s with the most writers over events/s with
  // one), not for ours / raw.
  bool concurrent = false;
  // The names of the two sides the ratio table compares, after
  // "<workload>/<backend>": ours, and the baseline it is measured against.
  // W1..W4: "" and "_raw" (the raw baseline); P1: "" and "_readall" (our
  // own ReadAll of the same store); P2: "/snapshot" and "/no_snapshot".
  const char* ours_suffix = "";
  const char* baseline_suffix = "_raw";
  // Shown after the backend in the ratio table when not empty, e.g.
  // "sqlite, vs ReadAll".
  const char* versus = "";
  // A third side, compared with the same baseline in a row of its own when
  // set: W3 and W4 "_into" (our store reading into kept buffers,
  // Backend::store_into), P1 "_owned_reads" (the runner reading each batch
  // into a new page, as it did before ReadAllInto). `alt_versus` is shown
  // after the backend; `alt_target_ratio` is its least acceptable ratio
  // (0: for information).
  const char* alt_suffix = "";
  const char* alt_versus = "";
  double alt_target_ratio = 0;
};

// W5's counts of writer threads, ascending: 1, 4, 16.
absl::Span<const int> WriterCounts();

// The rounds `workload` runs on `backend`.
int Rounds(const Workload& workload, const Backend& backend);

// The least acceptable ratio for `workload` on `backend`.
double TargetRatio(const Workload& workload, const Backend& backend);

// W1..W5, in order.
absl::Span<const Workload> Workloads();

// The name our store's results are reported under, and the raw baseline's.
std::string BenchmarkName(const Workload& workload, const Backend& backend);
std::string RawBenchmarkName(const Workload& workload, const Backend& backend);
// W3, W4 on Backend::store_into: "<workload>/<backend>_into".
std::string IntoBenchmarkName(const Workload& workload, const Backend& backend);
// W5's names: `BenchmarkName` or `RawBenchmarkName` + "/writers:<n>".
std::string WritersBenchmarkName(const std::string& name, int writers);

// Registers every workload on every backend with benchmark::
// RegisterBenchmark: for W1 then W2 ..., round by round, each backend's
// two sides next to each other (ours first in odd rounds, raw first in even
// ones), so that each ratio compares neighbouring runs. W3 and W4 on a
// backend with store_into run three sides, ours, raw and ours reading into
// kept buffers, the order rotated by one side each round.
void RegisterWorkloads(absl::Span<const Backend> backends);

// Changes a side's batches before its runs, outside the timed region (e.g.
// naming a data subject in each event's metadata: lifecycle_bench.cc);
// applied to a read workload's setup batches too. It must keep
// Batch::encoded_metadata in step with the events' metadata.
using BatchAdjuster = std::function<void(Batch&)>;

// One side of a comparison of W1..W4 on one backend (RegisterSides): the
// benchmark name its results are reported under, and its targets.
struct Side {
  std::string name;
  TargetFactory factory;
  // Empty: the workload's batches as they are.
  BatchAdjuster adjust = {};
};

// Registers `rounds` rounds of `workload` (one of W1..W4 of Workloads(),
// with its iterations) on `sides`: each round runs every side once, back to
// back, the order rotated by one side each round (ours first, then the
// next, ...), labelled "round i/n" as RegisterWorkloads does. For
// comparisons other than ours / raw, such as a store with and without
// instrumentation (instrumentation_bench.cc). A read workload writes each
// side's database once, under that side's name. Does nothing for a
// workload that is not one of W1..W4.
void RegisterSides(const Workload& workload, int rounds,
                   const std::vector<Side>& sides);

// Closes the databases that read workloads keep from round to round and
// removes their files. Call after benchmark::RunSpecifiedBenchmarks (a
// workload that failed midway may leave one open).
void CloseReadFixtures();

// The n-th benchmark event (W1..W5's): an OrderPlaced of about 200 bytes
// serialized, whose metadata carries a correlation id; and its payload
// alone. Contents vary with n.
EventData BenchEvent(int64_t n);
v1::OrderPlaced BenchOrder(int64_t n);

// The serialized size of a typical benchmark payload and of its metadata,
// for the report's context.
int64_t TypicalPayloadBytes();
int64_t TypicalMetadataBytes();

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_WORKLOADS_H_
