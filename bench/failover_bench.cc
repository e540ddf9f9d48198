// failover_bench: what FailoverEventStore and its replica cost
// (docs/benchmarks.md, docs/failover.md), each beside a baseline measured
// in the same run, paired by round.
//
//   F1_Replay/postgres
//       FailoverEventStore::ReplayNow() replaying a journal of 2,000
//       single-event appends (to streams order-0 .. order-999, append k with
//       Exactly(k / 1000)) into the PostgreSQL primary: pages of
//       replay_page_size (default 500) journaled appends, each page one
//       AppendEach call. The journal is filled while the primary is
//       unreachable (a wrapper that answers kUnavailable), with the journal
//       file at synchronous=NORMAL to keep the setup short; then it is
//       opened again as an application restarting would (default
//       SqliteOptions: synchronous=FULL) by a new FailoverEventStore over
//       the reachable primary, and only ReplayNow() is timed.
//   F1_Replay/postgres_w1
//       the baseline, W1 on the same primary: the same 2,000 appends made
//       with one Append call each, one after the other.
//   F2_ReplicaReadStream/sqlite
//       StoreReplica::ReadStream of 200 streams of 100 events each (20,000
//       events; appended 20 at a time round robin, so streams interleave in
//       the log) from a SQLite replica filled from PostgreSQL by SyncOnce()
//   F2_ReplicaReadStream/sqlite_plain
//       the baseline: ReadStream of the same streams from a plain SQLite
//       store holding the same events (appended with the same calls)
//   F2c_ReplicaColdReadStream/sqlite
//       as F2, each iteration through a new StoreReplica over the same
//       replica store (made and attached outside the timed region), so
//       that nothing it remembers is reused (a SQLite replica reads the
//       primary positions from the copied rows since schema version 5;
//       another store looks them up and keeps up to 65,536)
//   F2c_ReplicaColdReadStream/sqlite_plain
//       the baseline, as for F2
//   F2b_FailoverReadStream/sqlite
//       the same reads through a FailoverEventStore whose primary is down
//       (mode kFallback; FailoverOptions::replica set), which answers them
//       from its replica
//   F2b_FailoverReadStream/sqlite_plain
//       the baseline, as for F2
//
// Every side runs in rounds, back to back with its baseline (the order
// alternating), labelled "round i/n": F1 in 7 rounds of 1 iteration, F2
// and F2b in 15 rounds of 5 iterations (each reading the 200 streams).
// RatioReporter prints the median of the rounds' ratios with their range.
// Targets (issue 11): F1 at least 2 (replay is batched), F2 and F2b at
// least 0.8. Events/s are reported as items_per_second. One
// PostgresEventStore serves as the primary of every workload; SQLite files
// use the default SqliteOptions (WAL, synchronous=FULL) unless said
// otherwise.
//
//   failover_bench
//   failover_bench --benchmark_filter=F2     # F2 and F2b only
//   failover_bench --benchmark_format=json   # JSON on stdout, table on stderr
//
// PostgreSQL: $EVENTSTORE_BENCH_PG_URL (a new schema "f1_<time>" is created
// and left behind), else a throwaway durable server
// (tests/support/postgres_server.cc).

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/postgres/postgres_event_store.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "bench/bench_display.h"
#include "bench/bench_postgres.h"
#include "bench/paired_rounds.h"
#include "bench/ratio_reporter.h"
#include "bench/workloads.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/store_replica.h"
#include "tests/support/postgres_server.h"
#include "tests/support/temp_dir.h"

namespace eventstore::bench {
namespace {

constexpr int kRounds = 7;

// F1.
constexpr int64_t kReplayAppends = 2000;
constexpr int kReplayStreams = 1000;

// F2, F2b.
constexpr int kReadStreams = 200;
constexpr int kReadStreamEvents = 100;
constexpr int kReadPerAppend = 20;
constexpr int64_t kReadEvents =
    static_cast<int64_t>(kReadStreams) * kReadStreamEvents;
constexpr int kReadIterations = 5;
// The reads are short and the machine noisy: more rounds than F1.
constexpr int kReadRounds = 15;

constexpr Workload kF1 = {"F1_Replay", 2.0, 1,     kRounds,      kRounds,
                          false,       "",  "_w1", "replay / W1"};
// F2, F2c and F2b: ReadStream of the F2 streams against the same reads of
// a plain SQLite store, in kReadRounds rounds of kReadIterations.
constexpr Workload ReadWorkload(const char* name, const char* versus) {
  return {name,  0.8, kReadIterations, kReadRounds, kReadRounds,
          false, "",  "_plain",        versus};
}
constexpr Workload kF2 =
    ReadWorkload("F2_ReplicaReadStream", "replica / plain SQLite");
// F2c: as F2, but each iteration reads through a new StoreReplica (over
// the same replica store), which remembers nothing of earlier reads.
constexpr Workload kF2c = ReadWorkload(
    "F2c_ReplicaColdReadStream", "replica, new StoreReplica / plain SQLite");
constexpr Workload kF2b = ReadWorkload("F2b_FailoverReadStream",
                                       "failover, primary down / plain SQLite");

constexpr char kPostgres[] = "postgres";
constexpr char kSqlite[] = "sqlite";

[[noreturn]] void Die(const absl::Status& status, std::string_view what) {
  std::cerr << "failover_bench: " << what << ": " << status << std::endl;
  std::exit(1);
}

// The primary as FailoverEventStore sees it: `target`, or, while `down`, a
// server that cannot be reached (every call that would reach it fails with
// kUnavailable). AppendEach goes to the target's own (batched) AppendEach.
class SwitchablePrimary final : public ForwardingEventStore {
 public:
  explicit SwitchablePrimary(EventStore* target)
      : ForwardingEventStore(target) {}

  std::atomic<bool> down{false};

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    if (down) return Unreachable();
    return ForwardingEventStore::Append(request);
  }
  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests) override {
    if (down) return Unreachable();
    return target()->AppendEach(requests);
  }
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override {
    if (down) return Unreachable();
    return ForwardingEventStore::ReadStream(stream, options);
  }
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override {
    if (down) return Unreachable();
    return ForwardingEventStore::ReadAll(options);
  }
  absl::StatusOr<int64_t> StreamVersion(std::string_view stream) override {
    if (down) return Unreachable();
    return ForwardingEventStore::StreamVersion(stream);
  }
  absl::StatusOr<Position> HeadPosition() override {
    if (down) return Unreachable();
    return ForwardingEventStore::HeadPosition();
  }
  absl::StatusOr<bool> EventExists(const Uuid& id) override {
    if (down) return Unreachable();
    return ForwardingEventStore::EventExists(id);
  }
  absl::StatusOr<bool> WaitForEvents(Position after,
                                     absl::Duration timeout) override {
    if (down) return Unreachable();
    return ForwardingEventStore::WaitForEvents(after, timeout);
  }

 private:
  static absl::Status Unreachable() {
    return absl::UnavailableError("failover_bench: primary switched off");
  }
};

struct Env {
  std::unique_ptr<test::PostgresServer> server;
  std::unique_ptr<EventStore> primary;
  std::unique_ptr<test::TempDir> dir;
  // F2: the replica and the plain store holding the same events.
  std::unique_ptr<EventStore> replica_store;
  std::unique_ptr<StoreReplica> replica;
  std::unique_ptr<EventStore> plain;
  // F2b: a failover store in kFallback with a replica of its own.
  std::unique_ptr<FailoverEventStore> failover;
  SwitchablePrimary* failover_primary = nullptr;
  // Counts of runs, naming streams and files apart.
  int runs = 0;
};

Env* env = nullptr;

std::string ReadStreamName(int i) { return absl::StrCat("f2-order-", i); }

// The F2 and F2c replicas copy only the F2 streams (F1 appends to the same
// primary while the benchmarks run).
ReplicaOptions F2ReplicaOptions() {
  ReplicaOptions options;
  options.stream_prefixes = {"f2-order-"};
  return options;
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenSqlite(
    const std::string& path, SqliteOptions::Synchronous synchronous,
    const StoreLimits& limits) {
  SqliteOptions options;
  options.path = path;
  options.synchronous = synchronous;
  options.limits = limits;
  return SqliteEventStore::Open(options);
}

// A FailoverEventStore over `primary` with the journal file `path`
// (opened at `synchronous`): no health-check thread, fallback allowed.
absl::StatusOr<std::unique_ptr<FailoverEventStore>> OpenFailover(
    std::unique_ptr<EventStore> primary, const std::string& path,
    SqliteOptions::Synchronous synchronous, FailoverOptions options) {
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  options.limits = primary->limits();
  absl::StatusOr<std::unique_ptr<EventStore>> journal = OpenSqlite(
      path, synchronous, FailoverEventStore::JournalLimits(options.limits));
  if (!journal.ok()) return journal.status();
  return FailoverEventStore::Create(std::move(primary), *std::move(journal),
                                    options);
}

void RemoveDatabase(const std::string& path) {
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path + suffix, ignored);
  }
}

// Fills the primary and the plain store with the F2 streams (the same
// events, with the same AppendEach calls), the F2 replica by SyncOnce(),
// and brings the F2b failover store's replica up to date before switching
// its primary off.
void SetupReads() {
  int64_t n = 0;
  for (int64_t first = 0; first < kReadEvents;) {
    // 50 appends of 20 events per call: 1,000 events, one commit.
    std::vector<std::vector<EventData>> batches;
    std::vector<AppendRequest> requests;
    for (int k = 0; k < 50 && first < kReadEvents;
         ++k, first += kReadPerAppend) {
      std::vector<EventData>& batch = batches.emplace_back();
      for (int i = 0; i < kReadPerAppend; ++i) batch.push_back(BenchEvent(n++));
    }
    int64_t at = first - static_cast<int64_t>(batches.size()) * kReadPerAppend;
    for (const std::vector<EventData>& batch : batches) {
      requests.push_back({ReadStreamName(static_cast<int>(
                              (at / kReadPerAppend) % kReadStreams)),
                          ExpectedVersion::Any(),
                          batch,
                          {}});
      at += kReadPerAppend;
    }
    for (EventStore* store : {env->primary.get(), env->plain.get()}) {
      absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> r =
          store->AppendEach(requests);
      if (!r.ok()) Die(r.status(), "filling the F2 streams");
      for (const absl::StatusOr<AppendResult>& one : *r) {
        if (!one.ok()) Die(one.status(), "filling the F2 streams");
      }
    }
  }
  absl::StatusOr<std::unique_ptr<StoreReplica>> replica = StoreReplica::Create(
      *env->primary, *env->replica_store, F2ReplicaOptions());
  if (!replica.ok()) Die(replica.status(), "creating the F2 replica");
  env->replica = *std::move(replica);
  absl::StatusOr<ReplicaSyncResult> synced = env->replica->SyncOnce();
  if (!synced.ok()) Die(synced.status(), "filling the F2 replica");
  if (!synced->caught_up || synced->events_copied != kReadEvents) {
    Die(absl::InternalError(absl::StrCat(synced->events_copied, " copied")),
        "filling the F2 replica");
  }

  // F2b.
  absl::StatusOr<std::unique_ptr<EventStore>> replica_store =
      OpenSqlite(env->dir->File("f2b-replica.db"),
                 SqliteOptions::Synchronous::kFull, StoreLimits());
  if (!replica_store.ok()) Die(replica_store.status(), "F2b replica");
  FailoverOptions options;
  options.replica = *std::move(replica_store);
  auto primary = std::make_unique<SwitchablePrimary>(env->primary.get());
  env->failover_primary = primary.get();
  absl::StatusOr<std::unique_ptr<FailoverEventStore>> failover =
      OpenFailover(std::move(primary), env->dir->File("f2b-journal.db"),
                   SqliteOptions::Synchronous::kFull, options);
  if (!failover.ok()) Die(failover.status(), "creating the F2b store");
  env->failover = *std::move(failover);
  absl::StatusOr<Position> head = env->primary->HeadPosition();
  if (!head.ok()) Die(head.status(), "F2b");
  if (!env->failover->replica()->WaitForPosition(*head, absl::Minutes(2))) {
    Die(env->failover->replica()->Status().last_error,
        "F2b: the replica did not catch up");
  }
  env->failover_primary->down = true;
  // An append while the primary is down sends the store to kFallback,
  // where every read goes to the replica at once.
  const EventData event = BenchEvent(n++);
  absl::StatusOr<AppendResult> journaled = env->failover->Append(
      "f2b-outage", ExpectedVersion::Any(), absl::MakeConstSpan(&event, 1));
  if (!journaled.ok()) Die(journaled.status(), "F2b: journaling");
  if (env->failover->Status().mode != FailoverStatus::Mode::kFallback) {
    Die(absl::InternalError("not in fallback"), "F2b");
  }
}

void Setup() {
  env = new Env;
  absl::StatusOr<std::unique_ptr<test::TempDir>> dir = test::TempDir::Create();
  if (!dir.ok()) Die(dir.status(), "temporary directory");
  env->dir = *std::move(dir);
  absl::StatusOr<PostgresOptions> pg = BenchPostgresOptions("f1", &env->server);
  if (!pg.ok()) Die(pg.status(), "starting PostgreSQL");
  absl::StatusOr<std::unique_ptr<EventStore>> primary =
      PostgresEventStore::Open(*pg);
  if (!primary.ok()) Die(primary.status(), "opening PostgreSQL");
  env->primary = *std::move(primary);
  for (auto [store, file] : {std::pair{&env->replica_store, "f2-replica.db"},
                             std::pair{&env->plain, "f2-plain.db"}}) {
    absl::StatusOr<std::unique_ptr<EventStore>> opened = OpenSqlite(
        env->dir->File(file), SqliteOptions::Synchronous::kFull, StoreLimits());
    if (!opened.ok()) Die(opened.status(), file);
    *store = *std::move(opened);
  }
  SetupReads();
}

void Teardown() {
  env->failover.reset();
  env->replica.reset();
  env->replica_store.reset();
  env->plain.reset();
  env->primary.reset();
  env->server.reset();
  env->dir.reset();
  delete env;
  env = nullptr;
}

// F1's appends: append k goes to "<prefix>order-(k mod kReplayStreams)"
// with Exactly(k / kReplayStreams). Events are built outside the timing.
std::vector<EventData> ReplayEvents() {
  std::vector<EventData> events;
  events.reserve(kReplayAppends);
  for (int64_t k = 0; k < kReplayAppends; ++k) events.push_back(BenchEvent(k));
  return events;
}

AppendRequest ReplayRequest(const std::vector<std::string>& streams,
                            const std::vector<EventData>& events, int64_t k) {
  return AppendRequest{streams[k % kReplayStreams],
                       ExpectedVersion::Exactly(k / kReplayStreams),
                       absl::MakeConstSpan(&events[k], 1),
                       {}};
}

std::vector<std::string> ReplayStreamNames(const std::string& prefix) {
  std::vector<std::string> streams;
  for (int i = 0; i < kReplayStreams; ++i) {
    streams.push_back(absl::StrCat(prefix, "order-", i));
  }
  return streams;
}

// F1: each iteration fills a new journal, then times its replay.
void Replay(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    const int run = ++env->runs;
    const std::string path =
        env->dir->File(absl::StrCat("journal-", run, ".db"));
    const std::vector<EventData> events = ReplayEvents();
    const std::vector<std::string> streams =
        ReplayStreamNames(absl::StrCat("f1-", run, "-"));
    {
      auto primary = std::make_unique<SwitchablePrimary>(env->primary.get());
      primary->down = true;
      absl::StatusOr<std::unique_ptr<FailoverEventStore>> filling =
          OpenFailover(std::move(primary), path,
                       SqliteOptions::Synchronous::kNormal, FailoverOptions{});
      if (!filling.ok()) Die(filling.status(), "F1: opening the journal");
      for (int64_t k = 0; k < kReplayAppends; ++k) {
        absl::StatusOr<AppendResult> r =
            (*filling)->Append(ReplayRequest(streams, events, k));
        if (!r.ok()) Die(r.status(), "F1: journaling");
        if (!r->journaled) Die(absl::InternalError("not journaled"), "F1");
      }
    }
    absl::StatusOr<std::unique_ptr<FailoverEventStore>> store = OpenFailover(
        std::make_unique<SwitchablePrimary>(env->primary.get()), path,
        SqliteOptions::Synchronous::kFull, FailoverOptions{});
    if (!store.ok()) Die(store.status(), "F1: reopening the journal");
    if ((*store)->Status().pending != kReplayAppends) {
      Die(absl::InternalError(
              absl::StrCat((*store)->Status().pending, " pending")),
          "F1");
    }
    state.ResumeTiming();
    const absl::Status replayed = (*store)->ReplayNow();
    state.PauseTiming();
    if (!replayed.ok()) Die(replayed, "F1: ReplayNow");
    const FailoverStatus status = (*store)->Status();
    if (status.mode != FailoverStatus::Mode::kPrimary ||
        status.replayed != kReplayAppends || status.parked != 0) {
      Die(absl::InternalError(absl::StrCat(status.replayed, " replayed, ",
                                           status.parked, " parked")),
          "F1");
    }
    store->reset();
    RemoveDatabase(path);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kReplayAppends);
}

// F1's baseline: the same appends, one Append call each, on the primary.
void W1(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    const std::vector<EventData> events = ReplayEvents();
    const std::vector<std::string> streams =
        ReplayStreamNames(absl::StrCat("w1-", ++env->runs, "-"));
    state.ResumeTiming();
    for (int64_t k = 0; k < kReplayAppends; ++k) {
      absl::StatusOr<AppendResult> r =
          env->primary->Append(ReplayRequest(streams, events, k));
      if (!r.ok()) Die(r.status(), "F1: W1");
    }
  }
  state.SetItemsProcessed(state.iterations() * kReplayAppends);
}

// F2, F2b and their baseline: each iteration reads every F2 stream from
// `store` (anything with ReadStream) and checks that all kReadEvents came
// back; `what` names the side in errors.
template <typename Store>
void ReadEveryStream(benchmark::State& state, Store& store,
                     std::string_view what) {
  for (auto _ : state) {
    int64_t events = 0;
    for (int i = 0; i < kReadStreams; ++i) {
      absl::StatusOr<std::vector<RecordedEvent>> stream =
          store.ReadStream(ReadStreamName(i), ReadStreamOptions());
      if (!stream.ok()) {
        state.SkipWithError(stream.status().ToString().c_str());
        return;
      }
      events += static_cast<int64_t>(stream->size());
    }
    if (events != kReadEvents) Die(absl::InternalError("short read"), what);
  }
  state.SetItemsProcessed(state.iterations() * kReadEvents);
}

void ReadReplica(benchmark::State& state) {
  ReadEveryStream(state, *env->replica, "F2");
}

// F2c: each iteration reads every F2 stream once through a new
// StoreReplica, made (and attached by a SyncOnce() that finds nothing to
// copy) outside the timed region: every primary position is looked up.
void ReadReplicaCold(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    absl::StatusOr<std::unique_ptr<StoreReplica>> fresh = StoreReplica::Create(
        *env->primary, *env->replica_store, F2ReplicaOptions());
    if (!fresh.ok()) Die(fresh.status(), "F2c: creating a replica");
    absl::StatusOr<ReplicaSyncResult> synced = (*fresh)->SyncOnce();
    if (!synced.ok() || synced->events_copied != 0) {
      Die(synced.ok() ? absl::InternalError("copied events") : synced.status(),
          "F2c: attaching");
    }
    state.ResumeTiming();
    int64_t events = 0;
    for (int i = 0; i < kReadStreams; ++i) {
      absl::StatusOr<std::vector<RecordedEvent>> stream =
          (*fresh)->ReadStream(ReadStreamName(i), ReadStreamOptions());
      if (!stream.ok()) {
        state.SkipWithError(stream.status().ToString().c_str());
        return;
      }
      events += static_cast<int64_t>(stream->size());
    }
    if (events != kReadEvents) Die(absl::InternalError("short read"), "F2c");
  }
  state.SetItemsProcessed(state.iterations() * kReadEvents);
}

void ReadFailover(benchmark::State& state) {
  ReadEveryStream(state, *env->failover, "F2b");
}

void ReadPlain(benchmark::State& state) {
  ReadEveryStream(state, *env->plain, "plain");
}

int Main(int argc, char** argv) {
  BenchDisplay display = MakeBenchDisplay(argc, argv);
  Backend postgres;
  postgres.name = kPostgres;
  Backend sqlite;
  sqlite.name = kSqlite;
  const Workload workloads[] = {kF1, kF2, kF2c, kF2b};
  const Backend backends[] = {postgres, sqlite};
  RatioReporter reporter(std::move(display.reporter), workloads, backends,
                         display.table_out);
  reporter.set_title(
      "Ratios: F1 replay / W1 on the PostgreSQL primary; F2 ReadStream from\n"
      "the replica (F2b: through a failover store whose primary is down) /\n"
      "ReadStream from a plain SQLite store. Events/s are each side's median\n"
      "over rounds; the ratio is the median of the rounds' ratios (each\n"
      "round runs the two sides back to back), with their range.");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("replay_appends", std::to_string(kReplayAppends));
  benchmark::AddCustomContext(
      "replay_page_size", std::to_string(FailoverOptions{}.replay_page_size));
  benchmark::AddCustomContext("read_events", std::to_string(kReadEvents));
  benchmark::AddCustomContext("payload_bytes",
                              std::to_string(TypicalPayloadBytes()));
  Setup();
  RegisterPairedRounds(kF1, kPostgres, Replay, W1);
  RegisterPairedRounds(kF2, kSqlite, ReadReplica, ReadPlain);
  RegisterPairedRounds(kF2c, kSqlite, ReadReplicaCold, ReadPlain);
  RegisterPairedRounds(kF2b, kSqlite, ReadFailover, ReadPlain);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  Teardown();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) { return eventstore::bench::Main(argc, argv); }
