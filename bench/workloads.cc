#include "bench/workloads.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/barrier.h"
#include "absl/synchronization/notification.h"
#include "eventstore/bench/v1/bench.pb.h"
#include "eventstore/event_data.h"
#include "eventstore/uuid.h"
#include "eventstore/v1/metadata.pb.h"

namespace eventstore::bench {
namespace {

// W1: single-event appends, round robin over the streams.
constexpr int kW1Streams = 1000;
constexpr int kW1Appends = 10000;
// W2: batches, each to a new stream.
constexpr int kW2Appends = 200;
constexpr int kW2BatchEvents = 100;
constexpr int kW2Events = kW2Appends * kW2BatchEvents;
// W3: one long stream, written in batches during setup.
constexpr int kW3Events = 10000;
constexpr int kW3SetupBatchEvents = 1000;
constexpr char kW3Stream[] = "ledger-1";
// W4: the whole log of W1 + W2 + W3, in pages.
constexpr int kW4PageEvents = 1000;
constexpr int kW4Events = kW1Appends + kW2Events + kW3Events;
// W5: single-event appends by 1, 4 or 16 writer threads at once, each to
// streams of its own, round robin over its kW5StreamsPerWriter streams
// (as W1 does); kW5Appends in all, shared evenly between the writers.
constexpr int kW5WriterCounts[] = {1, 4, 16};
constexpr int kW5Appends = 1600;
constexpr int kW5StreamsPerWriter = 10;
// Untimed appends per writer before the timed ones, all writers at once:
// they open the pool's connections and prepare its statements.
constexpr int kW5WarmUpAppends = 3;

// W1 at synchronous=FULL runs two rounds (ours first, then raw first): its
// 10,000 commits are 10,000 fsyncs, from 2 to 40 seconds a side depending
// on the disk, and a single round is at the mercy of the disk's mood.
constexpr Workload kWorkloads[] = {
    {"W1_SingleAppend", 0.8, 1, 3, 2, false},
    {"W2_BatchAppend", 0.8, 1, 5, 5, false},
    {"W3_ReadStream", 0.5, 40, 7, 7, false, "", "_raw", "", "_into",
     "into buffer", 0.8},
    {"W4_ReadAll", 0.5, 8, 7, 7, false, "", "_raw", "", "_into", "into buffer",
     0.8},
    {"W5_ConcurrentAppend", 3.0, 1, 3, 3, /*concurrent=*/true},
};

v1::OrderPlaced MakeOrder(int64_t n) {
  v1::OrderPlaced order;
  order.set_order_id(absl::StrFormat("order-%07d", n % 10000000));
  order.set_customer_id(
      absl::StrFormat("customer-%08d", (n * 7919) % 100000000));
  int64_t total = 0;
  for (int i = 0; i < 3; ++i) {
    v1::LineItem* item = order.add_items();
    item->set_sku(absl::StrFormat("SKU-%07d-%d", (n * 31 + i) % 10000000, i));
    item->set_quantity(1 + static_cast<int>((n + i) % 5));
    item->set_unit_price_cents(1000 + (n * 13 + i * 101) % 90000);
    total += item->quantity() * item->unit_price_cents();
  }
  order.set_total_cents(total);
  order.set_currency("EUR");
  order.set_shipping_address(
      absl::StrFormat("%d Rue de la Republique, Batiment C, Porte 4, "
                      "Appartement %d, 69002 Lyon, "
                      "France",
                      1 + n % 250, 1 + n % 40));
  order.set_placed_at_micros(1700000000000000 + n * 1000);
  return order;
}

// The n-th benchmark event: an OrderPlaced of about 200 bytes serialized,
// whose metadata carries a correlation id. Contents vary with n.
EventData MakeEvent(int64_t n) {
  const v1::OrderPlaced order = MakeOrder(n);
  eventstore::v1::EventMetadata metadata;
  metadata.set_correlation_id(Uuid::Generate().ToString());
  return EventData::From(order, std::move(metadata));
}

// Adds `count` new events (numbered from `next`) to a batch for `stream`.
Batch MakeBatch(std::string stream, ExpectedVersion expected, int count,
                int64_t& next) {
  Batch batch;
  batch.stream = std::move(stream);
  batch.expected = expected;
  batch.events.reserve(count);
  batch.encoded_metadata.reserve(count);
  for (int i = 0; i < count; ++i) {
    batch.events.push_back(MakeEvent(next++));
    std::string encoded;
    if (batch.events.back().metadata.ByteSizeLong() > 0) {
      batch.events.back().metadata.SerializeToString(&encoded);
    }
    batch.encoded_metadata.push_back(std::move(encoded));
  }
  return batch;
}

std::string OrderStream(int i) { return absl::StrCat("order-", i); }

// W1: append k goes to stream k % 1,000 with the exact expected version.
std::vector<Batch> SingleAppends(int64_t& next) {
  std::vector<Batch> batches;
  batches.reserve(kW1Appends);
  for (int k = 0; k < kW1Appends; ++k) {
    batches.push_back(MakeBatch(OrderStream(k % kW1Streams),
                                ExpectedVersion::Exactly(k / kW1Streams), 1,
                                next));
  }
  return batches;
}

// W2: 200 batches of 100 events, each to a new stream.
std::vector<Batch> BatchAppends(int64_t& next) {
  std::vector<Batch> batches;
  batches.reserve(kW2Appends);
  for (int b = 0; b < kW2Appends; ++b) {
    batches.push_back(MakeBatch(absl::StrCat("cart-", b),
                                ExpectedVersion::NoStream(), kW2BatchEvents,
                                next));
  }
  return batches;
}

// W5: writer `w`'s appends, `count` single events to its streams
// "w<w>-order-<j>", each with the exact expected version; `warm_up` first
// goes to "w<w>-warm-up".
std::vector<Batch> WriterAppends(int w, int count, bool warm_up,
                                 int64_t& next) {
  std::vector<Batch> batches;
  if (warm_up) {
    for (int k = 0; k < kW5WarmUpAppends; ++k) {
      batches.push_back(MakeBatch(absl::StrCat("w", w, "-warm-up"),
                                  ExpectedVersion::Exactly(k), 1, next));
    }
    return batches;
  }
  batches.reserve(count);
  for (int k = 0; k < count; ++k) {
    batches.push_back(
        MakeBatch(absl::StrCat("w", w, "-order-", k % kW5StreamsPerWriter),
                  ExpectedVersion::Exactly(k / kW5StreamsPerWriter), 1, next));
  }
  return batches;
}

// W3's stream, in batches of 1,000.
std::vector<Batch> LongStream(int64_t& next) {
  std::vector<Batch> batches;
  for (int v = 0; v < kW3Events; v += kW3SetupBatchEvents) {
    batches.push_back(MakeBatch(kW3Stream, ExpectedVersion::Exactly(v),
                                kW3SetupBatchEvents, next));
  }
  return batches;
}

// W4's log: the rows W1, W2 and W3 write. W1's 10 events per stream are
// appended 10 at a time here (setup only; the rows are the same).
std::vector<Batch> WholeLog(int64_t& next) {
  std::vector<Batch> batches;
  for (int s = 0; s < kW1Streams; ++s) {
    batches.push_back(MakeBatch(OrderStream(s), ExpectedVersion::NoStream(),
                                kW1Appends / kW1Streams, next));
  }
  for (Batch& b : BatchAppends(next)) batches.push_back(std::move(b));
  for (Batch& b : LongStream(next)) batches.push_back(std::move(b));
  return batches;
}

int64_t CountEvents(const std::vector<Batch>& batches) {
  int64_t n = 0;
  for (const Batch& b : batches) n += static_cast<int64_t>(b.events.size());
  return n;
}

absl::Status AppendAll(Target& target, const std::vector<Batch>& batches) {
  for (const Batch& batch : batches) {
    absl::Status status = target.Append(batch);
    if (!status.ok()) {
      return absl::Status(
          status.code(),
          absl::StrCat("append to '", batch.stream, "': ", status.message()));
    }
  }
  return absl::OkStatus();
}

void Fail(benchmark::State& state, const absl::Status& status) {
  state.SkipWithError(status.ToString().c_str());
}

// One registered benchmark: a round of a workload on one side of a backend.
struct Run {
  // The benchmark's name, e.g. "W3_ReadStream/sqlite_raw".
  std::string name;
  const Workload* workload;
  TargetFactory factory;
  // This run's round (0-based) of `rounds`.
  int round;
  int rounds;
  // Side::adjust (may be empty).
  BatchAdjuster adjust = {};
};

// `batches` as `run`'s side writes them (Side::adjust).
std::vector<Batch> Adjusted(const Run& run, std::vector<Batch> batches) {
  if (run.adjust) {
    for (Batch& batch : batches) run.adjust(batch);
  }
  return batches;
}

// The databases of the read workloads, by benchmark name: written in the
// first round that needs one, read in every round, closed after the last.
std::map<std::string, std::unique_ptr<Target>>& ReadFixtures() {
  static auto* fixtures = new std::map<std::string, std::unique_ptr<Target>>;
  return *fixtures;
}

// The database `run` reads, written by `setup` on first use (untimed: call
// before the benchmark loop).
absl::StatusOr<Target*> ReadFixture(const Run& run,
                                    std::vector<Batch> (*setup)(int64_t&)) {
  std::unique_ptr<Target>& target = ReadFixtures()[run.name];
  if (target == nullptr) {
    absl::StatusOr<std::unique_ptr<Target>> opened = run.factory();
    if (!opened.ok()) return opened.status();
    int64_t next = 0;
    absl::Status status = AppendAll(**opened, Adjusted(run, setup(next)));
    if (!status.ok()) return status;
    target = *std::move(opened);
  }
  return target.get();
}

// Closes `run`'s database after its last round (untimed: call after the
// benchmark loop).
void ReleaseReadFixture(const Run& run) {
  if (run.round + 1 == run.rounds) ReadFixtures().erase(run.name);
}

// W1 and W2: each iteration appends `batches` to a fresh database. Opening
// and closing the database (a WAL checkpoint) are not timed.
void RunAppends(benchmark::State& state, const Run& run,
                const std::vector<Batch>& batches) {
  for (auto _ : state) {
    state.PauseTiming();
    absl::StatusOr<std::unique_ptr<Target>> opened = run.factory();
    state.ResumeTiming();
    if (!opened.ok()) {
      Fail(state, opened.status());
      break;
    }
    std::unique_ptr<Target> target = *std::move(opened);
    const absl::Status status = AppendAll(*target, batches);
    state.PauseTiming();
    target.reset();
    state.ResumeTiming();
    if (!status.ok()) {
      Fail(state, status);
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * CountEvents(batches));
}

void SingleAppendWorkload(benchmark::State& state, const Run& run) {
  int64_t next = 0;
  RunAppends(state, run, Adjusted(run, SingleAppends(next)));
}

void BatchAppendWorkload(benchmark::State& state, const Run& run) {
  int64_t next = 0;
  RunAppends(state, run, Adjusted(run, BatchAppends(next)));
}

// W3: each iteration reads the 10,000-event stream start to end.
void ReadStreamWorkload(benchmark::State& state, const Run& run) {
  absl::StatusOr<Target*> target = ReadFixture(run, LongStream);
  if (!target.ok()) {
    Fail(state, target.status());
    return;
  }
  const std::string stream = kW3Stream;
  for (auto _ : state) {
    absl::StatusOr<int64_t> read = (*target)->ReadStream(stream);
    if (!read.ok()) {
      Fail(state, read.status());
      break;
    }
    if (*read != kW3Events) {
      Fail(state, absl::InternalError(absl::StrCat(
                      "read ", *read, " events, expected ", kW3Events)));
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kW3Events);
  ReleaseReadFixture(run);
}

// W4: each iteration reads the 40,000-event log from the start in pages
// of 1,000.
void ReadAllWorkload(benchmark::State& state, const Run& run) {
  absl::StatusOr<Target*> target = ReadFixture(run, WholeLog);
  if (!target.ok()) {
    Fail(state, target.status());
    return;
  }
  for (auto _ : state) {
    Position from = Position::Start();
    int64_t total = 0;
    absl::Status status;
    while (true) {
      absl::StatusOr<PageResult> page = (*target)->ReadAll(from, kW4PageEvents);
      if (!page.ok()) {
        status = page.status();
        break;
      }
      total += page->events;
      from = page->next_position;
      if (page->end_of_log) break;
    }
    if (status.ok() && total != kW4Events) {
      status = absl::InternalError(
          absl::StrCat("read ", total, " events, expected ", kW4Events));
    }
    if (!status.ok()) {
      Fail(state, status);
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kW4Events);
  ReleaseReadFixture(run);
}

// W5's run: one round of one side with `writers` threads.
struct WritersRun {
  std::string name;
  WritersFactory factory;
  int writers;
  int round;
  int rounds;
};

// W5: each iteration opens a fresh database with one target per writer,
// warms them up (untimed, all writers at once), then times the writers
// appending their share of kW5Appends at once, start to last finish.
void ConcurrentAppendWorkload(benchmark::State& state, const WritersRun& run) {
  const int writers = run.writers;
  std::vector<std::vector<Batch>> warm_up(writers);
  std::vector<std::vector<Batch>> appends(writers);
  int64_t next = 0;
  for (int w = 0; w < writers; ++w) {
    warm_up[w] = WriterAppends(w, 0, /*warm_up=*/true, next);
    appends[w] =
        WriterAppends(w, kW5Appends / writers, /*warm_up=*/false, next);
  }
  for (auto _ : state) {
    state.PauseTiming();
    absl::StatusOr<std::vector<std::unique_ptr<Target>>> targets =
        run.factory(writers);
    if (!targets.ok()) {
      state.ResumeTiming();
      Fail(state, targets.status());
      break;
    }
    std::vector<absl::Status> statuses(writers);
    absl::Barrier* warmed_up = new absl::Barrier(writers + 1);
    absl::Notification go;
    std::vector<std::thread> threads;
    threads.reserve(writers);
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        Target& target = *(*targets)[w];
        statuses[w] = AppendAll(target, warm_up[w]);
        if (warmed_up->Block()) delete warmed_up;
        go.WaitForNotification();
        if (statuses[w].ok()) statuses[w] = AppendAll(target, appends[w]);
      });
    }
    if (warmed_up->Block()) delete warmed_up;
    state.ResumeTiming();
    go.Notify();
    for (std::thread& thread : threads) thread.join();
    state.PauseTiming();
    targets->clear();
    state.ResumeTiming();
    absl::Status status;
    for (const absl::Status& s : statuses) status.Update(s);
    if (!status.ok()) {
      Fail(state, status);
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * (kW5Appends / writers) *
                          writers);
}

using WorkloadFn = void (*)(benchmark::State&, const Run&);

// W1..W4 (W5 is ConcurrentAppendWorkload).
constexpr WorkloadFn kWorkloadFns[] = {
    SingleAppendWorkload,
    BatchAppendWorkload,
    ReadStreamWorkload,
    ReadAllWorkload,
};

static_assert(sizeof(kWorkloadFns) / sizeof(kWorkloadFns[0]) + 1 ==
                  sizeof(kWorkloads) / sizeof(kWorkloads[0]),
              "one function per workload, and W5");

void Register(WorkloadFn fn, Run run) {
  const std::string name = run.name;
  const int iterations = run.workload->iterations;
  benchmark::RegisterBenchmark(
      name.c_str(),
      [fn, run = std::move(run)](benchmark::State& state) {
        state.SetLabel(absl::StrCat("round ", run.round + 1, "/", run.rounds));
        fn(state, run);
      })
      ->Iterations(iterations)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

void RegisterWriters(const Workload& workload, WritersRun run) {
  const std::string name = run.name;
  benchmark::RegisterBenchmark(
      name.c_str(),
      [run = std::move(run)](benchmark::State& state) {
        state.SetLabel(absl::StrCat("round ", run.round + 1, "/", run.rounds));
        ConcurrentAppendWorkload(state, run);
      })
      ->Iterations(workload.iterations)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

// W5, round by round: each backend's sides next to each other (ours first
// in odd rounds), each side with 1, 4 then 16 writers (16, 4, 1 in even
// rounds).
void RegisterConcurrent(const Workload& workload,
                        absl::Span<const Backend> backends) {
  int most_rounds = 0;
  for (const Backend& backend : backends) {
    if (backend.store_writers) {
      most_rounds = std::max(most_rounds, Rounds(workload, backend));
    }
  }
  for (int round = 0; round < most_rounds; ++round) {
    for (const Backend& backend : backends) {
      const int rounds = Rounds(workload, backend);
      if (!backend.store_writers || round >= rounds) continue;
      std::vector<std::pair<std::string, WritersFactory>> sides = {
          {BenchmarkName(workload, backend), backend.store_writers}};
      if (backend.raw_writers) {
        sides.emplace_back(RawBenchmarkName(workload, backend),
                           backend.raw_writers);
        if (round % 2 == 1) std::swap(sides[0], sides[1]);
      }
      for (const auto& [name, factory] : sides) {
        std::vector<int> counts(std::begin(kW5WriterCounts),
                                std::end(kW5WriterCounts));
        if (round % 2 == 1) std::reverse(counts.begin(), counts.end());
        for (int writers : counts) {
          RegisterWriters(
              workload, WritersRun{WritersBenchmarkName(name, writers), factory,
                                   writers, round, rounds});
        }
      }
    }
  }
}

}  // namespace

absl::Span<const Workload> Workloads() { return kWorkloads; }

absl::Span<const int> WriterCounts() { return kW5WriterCounts; }

int Rounds(const Workload& workload, const Backend& backend) {
  return backend.commits_wait_for_disk ? workload.rounds_when_commits_wait
                                       : workload.rounds;
}

double TargetRatio(const Workload& workload, const Backend& backend) {
  auto it = backend.target_ratios.find(workload.name);
  return it != backend.target_ratios.end() ? it->second : workload.target_ratio;
}

std::string WritersBenchmarkName(const std::string& name, int writers) {
  return absl::StrCat(name, "/writers:", writers);
}

std::string BenchmarkName(const Workload& workload, const Backend& backend) {
  return absl::StrCat(workload.name, "/", backend.name);
}

std::string RawBenchmarkName(const Workload& workload, const Backend& backend) {
  return absl::StrCat(workload.name, "/", backend.name, "_raw");
}

std::string IntoBenchmarkName(const Workload& workload,
                              const Backend& backend) {
  return absl::StrCat(workload.name, "/", backend.name, workload.alt_suffix);
}

void RegisterWorkloads(absl::Span<const Backend> backends) {
  for (size_t w = 0; w < Workloads().size(); ++w) {
    const Workload& workload = Workloads()[w];
    if (workload.concurrent) {
      RegisterConcurrent(workload, backends);
      continue;
    }
    int most_rounds = 0;
    for (const Backend& backend : backends) {
      most_rounds = std::max(most_rounds, Rounds(workload, backend));
    }
    for (int round = 0; round < most_rounds; ++round) {
      for (const Backend& backend : backends) {
        const int rounds = Rounds(workload, backend);
        if (round >= rounds) continue;
        std::vector<Run> sides = {Run{BenchmarkName(workload, backend),
                                      &workload, backend.store, round, rounds},
                                  Run{RawBenchmarkName(workload, backend),
                                      &workload, backend.raw, round, rounds}};
        if (std::string_view(workload.alt_suffix) == "_into" &&
            backend.store_into) {
          sides.push_back(Run{IntoBenchmarkName(workload, backend), &workload,
                              backend.store_into, round, rounds});
        }
        // Two sides: ours first in odd rounds, raw first in even ones;
        // three: each first in turn.
        std::rotate(sides.begin(),
                    sides.begin() + static_cast<std::ptrdiff_t>(
                                        round % static_cast<int>(sides.size())),
                    sides.end());
        for (Run& run : sides) Register(kWorkloadFns[w], std::move(run));
      }
    }
  }
}

void RegisterSides(const Workload& workload, int rounds,
                   const std::vector<Side>& sides) {
  for (size_t w = 0; w < std::size(kWorkloadFns); ++w) {
    if (std::string_view(kWorkloads[w].name) != workload.name) continue;
    for (int round = 0; round < rounds; ++round) {
      for (size_t i = 0; i < sides.size(); ++i) {
        const Side& side = sides[(i + round) % sides.size()];
        Register(kWorkloadFns[w], Run{side.name, &kWorkloads[w], side.factory,
                                      round, rounds, side.adjust});
      }
    }
  }
}

void CloseReadFixtures() { ReadFixtures().clear(); }

EventData BenchEvent(int64_t n) { return MakeEvent(n); }

v1::OrderPlaced BenchOrder(int64_t n) { return MakeOrder(n); }

int64_t TypicalPayloadBytes() {
  return static_cast<int64_t>(MakeEvent(12345).payload.size());
}

int64_t TypicalMetadataBytes() {
  return static_cast<int64_t>(MakeEvent(12345).metadata.ByteSizeLong());
}

}  // namespace eventstore::bench
