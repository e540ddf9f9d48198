#include "bench/app_workloads.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "eventstore/aggregate.h"
#include "eventstore/aggregate_repository.h"
#include "eventstore/bench/v1/bench.pb.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/status_macros.h"
#include "eventstore/uuid.h"
#include "eventstore/v1/metadata.pb.h"
#include "projections/projection.h"
#include "projections/projection_runner.h"

namespace eventstore::bench {
namespace {

// P1: the log, appended in batches of 100 events to streams of their own.
constexpr int kP1Events = 100000;
constexpr int kP1BatchEvents = 100;
// The runner's batch (one ReadAll page and one checkpoint each) and the
// ReadAll side's page: W4's page size.
constexpr int kP1PageEvents = 1000;
// P2: one aggregate's stream, saved 100 events at a time.
constexpr int kP2Events = 1000;
constexpr int kP2SaveEvents = 100;
constexpr int kP2SnapshotEvery = 100;
constexpr char kP2AggregateId[] = "c-1";
constexpr char kP2StreamPrefix[] = "customer-";

constexpr Workload kAppWorkloads[] = {
    {"P1_ProjectionCatchUp", 0.7, 2, 5, 5, false, "", "_readall",
     "runner / ReadAll", "_owned_reads", "runner with owned pages / ReadAll",
     0},
    {"P2_AggregateLoad", 0, 100, 3, 3, false, "/snapshot", "/no_snapshot",
     "snapshot / no snapshot"},
};

// P1's n-th event: three in five are W1..W4's OrderPlaced, then a
// PaymentReceived and an OrderShipped, so that there are types to count.
EventData P1Event(int64_t n) {
  switch (n % 5) {
    case 3: {
      v1::PaymentReceived payment;
      payment.set_order_id(absl::StrFormat("order-%07d", n % 10000000));
      payment.set_amount_cents(1000 + (n * 13) % 90000);
      payment.set_method("card");
      eventstore::v1::EventMetadata metadata;
      metadata.set_correlation_id(Uuid::Generate().ToString());
      return EventData::From(payment, std::move(metadata));
    }
    case 4: {
      v1::OrderShipped shipped;
      shipped.set_order_id(absl::StrFormat("order-%07d", n % 10000000));
      shipped.set_carrier("La Poste");
      shipped.set_tracking_number(absl::StrFormat("LP%011d", n * 7919));
      eventstore::v1::EventMetadata metadata;
      metadata.set_correlation_id(Uuid::Generate().ToString());
      return EventData::From(shipped, std::move(metadata));
    }
    default:
      return BenchEvent(n);
  }
}

// P1's projection: events per type, in memory.
class CountByType final : public Projection {
 public:
  explicit CountByType(std::string name) : name_(std::move(name)) {}

  std::string name() const override { return name_; }
  absl::Status Handle(const RecordedEvent& event) override {
    ++counts_[event.type];
    ++total_;
    return absl::OkStatus();
  }
  absl::Status Reset() override {
    counts_.clear();
    total_ = 0;
    return absl::OkStatus();
  }

  int64_t total() const { return total_; }
  size_t types() const { return counts_.size(); }

 private:
  const std::string name_;
  absl::flat_hash_map<std::string, int64_t> counts_;
  int64_t total_ = 0;
};

// P2's aggregate: a customer's orders.
class CustomerOrders final : public Aggregate {
 public:
  explicit CustomerOrders(std::string id) : Aggregate(std::move(id)) {
    On<v1::OrderPlaced>([this](const v1::OrderPlaced& placed) {
      state_.set_orders(state_.orders() + 1);
      state_.set_total_cents(state_.total_cents() + placed.total_cents());
      state_.set_last_order_id(placed.order_id());
    });
  }

  absl::Status Place(const v1::OrderPlaced& order) { return Raise(order); }
  const v1::CustomerOrdersState& state() const { return state_; }

  const google::protobuf::Message* snapshot_prototype() const override {
    return &v1::CustomerOrdersState::default_instance();
  }
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> SnapshotState()
      const override {
    return std::make_unique<v1::CustomerOrdersState>(state_);
  }
  absl::Status RestoreSnapshot(
      const google::protobuf::Message& state) override {
    state_.CopyFrom(state);
    return absl::OkStatus();
  }

 private:
  v1::CustomerOrdersState state_;
};

AggregateRepositoryOptions P2Options(bool snapshots) {
  AggregateRepositoryOptions options;
  options.stream_prefix = kP2StreamPrefix;
  options.snapshot_every = snapshots ? kP2SnapshotEvery : 0;
  return options;
}

// A store of one backend that P1's or P2's two sides share: written before
// its first use, closed after its last.
struct Fixture {
  std::shared_ptr<EventStore> store;
  // Benchmark runs still to use it.
  int uses_left = 0;
};

std::map<std::string, Fixture>& Fixtures() {
  static auto* fixtures = new std::map<std::string, Fixture>;
  return *fixtures;
}

absl::Status WriteP1Log(EventStore& store) {
  int64_t n = 0;
  std::vector<EventData> batch;
  for (int stream = 0; n < kP1Events; ++stream) {
    batch.clear();
    for (int i = 0; i < kP1BatchEvents; ++i) batch.push_back(P1Event(n++));
    ES_RETURN_IF_ERROR(store
                           .Append(absl::StrCat("order-", stream),
                                   ExpectedVersion::NoStream(), batch)
                           .status());
  }
  return absl::OkStatus();
}

absl::Status WriteP2Aggregate(EventStore& store) {
  AggregateRepository<CustomerOrders> repository(store, P2Options(true));
  CustomerOrders customer(kP2AggregateId);
  for (int n = 0; n < kP2Events;) {
    for (int i = 0; i < kP2SaveEvents; ++i) {
      ES_RETURN_IF_ERROR(customer.Place(BenchOrder(n++)));
    }
    ES_RETURN_IF_ERROR(repository.Save(customer));
  }
  return absl::OkStatus();
}

// One registered benchmark of P1 or P2.
struct AppRun {
  std::string name;
  // The fixture's key ("<workload>/<backend>") and how to make it.
  std::string fixture;
  StoreFactory open_store;
  absl::Status (*write)(EventStore&);
  // Runs of this workload on this backend, both sides.
  int runs;
};

// The fixture of `run`, written by its first user (untimed: call before
// the benchmark loop).
absl::StatusOr<EventStore*> UseFixture(const AppRun& run) {
  Fixture& fixture = Fixtures()[run.fixture];
  if (fixture.store == nullptr) {
    ES_ASSIGN_OR_RETURN(fixture.store, run.open_store());
    fixture.uses_left = run.runs;
    ES_RETURN_IF_ERROR(run.write(*fixture.store));
  }
  return fixture.store.get();
}

// Closes the fixture of `run` after its last use (untimed).
void ReleaseFixture(const AppRun& run) {
  auto it = Fixtures().find(run.fixture);
  if (it != Fixtures().end() && --it->second.uses_left <= 0) {
    Fixtures().erase(it);
  }
}

void Fail(benchmark::State& state, const absl::Status& status) {
  state.SkipWithError(status.ToString().c_str());
}

// P1, ours: each iteration catches a new projection (a checkpoint of its
// own) up from the start of the log with ProjectionRunner::RunOnce.
absl::Status CatchUp(benchmark::State& state, EventStore& store) {
  static int projections = 0;
  for (auto _ : state) {
    state.PauseTiming();
    CountByType projection(absl::StrCat("count-by-type-", ++projections));
    ProjectionRunnerOptions options;
    options.batch_size = kP1PageEvents;
    absl::StatusOr<std::unique_ptr<ProjectionRunner>> runner =
        ProjectionRunner::Create(store, projection, options);
    state.ResumeTiming();
    if (!runner.ok()) return runner.status();
    absl::StatusOr<ProjectionRunResult> result = (*runner)->RunOnce();
    state.PauseTiming();
    runner->reset();
    state.ResumeTiming();
    if (!result.ok()) return result.status();
    if (result->handled != kP1Events || projection.total() != kP1Events ||
        projection.types() != 3) {
      return absl::InternalError(absl::StrCat(
          "the projection handled ", result->handled, " events of ",
          projection.types(), " types, expected ", kP1Events, " of 3"));
    }
  }
  state.SetItemsProcessed(state.iterations() * kP1Events);
  return absl::OkStatus();
}

// The store as the runner read it before EventStore::ReadAllInto: a
// ForwardingEventStore keeps the default ReadAllInto, which calls ReadAll
// (every batch into a new page).
class OwnedPages final : public ForwardingEventStore {
 public:
  explicit OwnedPages(EventStore* target) : ForwardingEventStore(target) {}
};

// P1, for comparison: the runner reading owned pages (OwnedPages).
absl::Status CatchUpOwnedPages(benchmark::State& state, EventStore& store) {
  OwnedPages owned(&store);
  return CatchUp(state, owned);
}

// P1, baseline: W4's loop over the same store.
absl::Status ReadWholeLog(benchmark::State& state, EventStore& store) {
  for (auto _ : state) {
    ReadAllOptions options;
    options.max_count = kP1PageEvents;
    int64_t total = 0;
    while (true) {
      ES_ASSIGN_OR_RETURN(ReadAllPage page, store.ReadAll(options));
      total += static_cast<int64_t>(page.events.size());
      options.from_position = page.next_position;
      if (page.end_of_log) break;
    }
    if (total != kP1Events) {
      return absl::InternalError(
          absl::StrCat("read ", total, " events, expected ", kP1Events));
    }
  }
  state.SetItemsProcessed(state.iterations() * kP1Events);
  return absl::OkStatus();
}

// P2: each iteration loads the aggregate.
absl::Status LoadAggregate(benchmark::State& state, EventStore& store,
                           bool snapshots) {
  const AggregateRepository<CustomerOrders> repository(store,
                                                       P2Options(snapshots));
  for (auto _ : state) {
    ES_ASSIGN_OR_RETURN(std::unique_ptr<CustomerOrders> customer,
                        repository.Load(kP2AggregateId));
    if (customer->version() != kP2Events ||
        customer->state().orders() != kP2Events) {
      return absl::InternalError(absl::StrCat(
          "loaded version ", customer->version(), " with ",
          customer->state().orders(), " orders, expected ", kP2Events));
    }
  }
  state.SetItemsProcessed(state.iterations());
  return absl::OkStatus();
}

using AppFn = absl::Status (*)(benchmark::State&, EventStore&);

absl::Status LoadFromSnapshot(benchmark::State& state, EventStore& store) {
  return LoadAggregate(state, store, /*snapshots=*/true);
}
absl::Status LoadByReplay(benchmark::State& state, EventStore& store) {
  return LoadAggregate(state, store, /*snapshots=*/false);
}

void Register(const Workload& workload, AppRun run, int round, int rounds,
              AppFn fn) {
  const std::string name = run.name;
  benchmark::RegisterBenchmark(
      name.c_str(),
      [run = std::move(run), fn, round, rounds](benchmark::State& state) {
        state.SetLabel(absl::StrCat("round ", round + 1, "/", rounds));
        absl::StatusOr<EventStore*> store = UseFixture(run);
        absl::Status status = store.status();
        if (status.ok()) status = fn(state, **store);
        if (!status.ok()) Fail(state, status);
        ReleaseFixture(run);
      })
      ->Iterations(workload.iterations)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

absl::Span<const Workload> AppWorkloads() { return kAppWorkloads; }

void RegisterAppWorkloads(absl::Span<const Backend> backends) {
  struct Sides {
    absl::Status (*write)(EventStore&);
    AppFn ours;
    AppFn baseline;
    // Workload::alt_suffix's side, or null.
    AppFn alt;
  };
  const Sides sides[] = {
      {WriteP1Log, CatchUp, ReadWholeLog, CatchUpOwnedPages},
      {WriteP2Aggregate, LoadFromSnapshot, LoadByReplay, nullptr}};
  for (size_t w = 0; w < AppWorkloads().size(); ++w) {
    const Workload& workload = AppWorkloads()[w];
    int most_rounds = 0;
    for (const Backend& backend : backends) {
      if (backend.open_store) {
        most_rounds = std::max(most_rounds, Rounds(workload, backend));
      }
    }
    for (int round = 0; round < most_rounds; ++round) {
      for (const Backend& backend : backends) {
        const int rounds = Rounds(workload, backend);
        if (!backend.open_store || round >= rounds) continue;
        const std::string prefix = BenchmarkName(workload, backend);
        const int uses = (sides[w].alt != nullptr ? 3 : 2) * rounds;
        std::vector<std::pair<AppRun, AppFn>> runs = {
            {AppRun{absl::StrCat(prefix, workload.ours_suffix), prefix,
                    backend.open_store, sides[w].write, uses},
             sides[w].ours},
            {AppRun{absl::StrCat(prefix, workload.baseline_suffix), prefix,
                    backend.open_store, sides[w].write, uses},
             sides[w].baseline}};
        if (sides[w].alt != nullptr) {
          runs.push_back(
              {AppRun{absl::StrCat(prefix, workload.alt_suffix), prefix,
                      backend.open_store, sides[w].write, uses},
               sides[w].alt});
        }
        // Two sides: ours first in odd rounds (1, 3, ...), the baseline in
        // even ones; three: each first in turn.
        std::rotate(runs.begin(),
                    runs.begin() + static_cast<std::ptrdiff_t>(
                                       round % static_cast<int>(runs.size())),
                    runs.end());
        for (auto& [run, fn] : runs) {
          Register(workload, std::move(run), round, rounds, fn);
        }
      }
    }
  }
}

void CloseAppFixtures() { Fixtures().clear(); }

}  // namespace eventstore::bench
