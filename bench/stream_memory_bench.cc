// M1 (issue 13): the peak memory of reading one long stream, whole
// (ReadStream) against in pages (ReadStreamPages, and ForEachStreamEvent,
// which aggregate loading and the decider use), on SQLite and PostgreSQL.
//
//   stream_memory_bench [--memory_events=1000000]
//
// The parent fills one stream of --memory_events events (batches of 1,000,
// ~100-byte payloads). Each benchmark then forks a child that opens its own
// store on the same database, reads the stream one way, and exits; the
// parent takes the child's peak resident set from wait4 (ru_maxrss). A
// child that only opens the store and reads the stream's version is the
// baseline: each figure is its peak minus the baseline's, in MiB, so what
// the child inherited from the parent cancels out. Counters: peak_MiB (over
// the baseline), events (read). Timing is not the point here: one
// iteration each. SQLite is measured twice on the same file: with the
// store's default, no memory map (only what the process allocated), and
// with mmap_size_mb=256 ("sqlite_mmap256": the file pages a read touches
// count in the resident set too, up to the map's 256 MiB: shared, clean,
// reclaimable).

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "benchmark/benchmark.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/internal/stream_reader.h"
#include "eventstore/status_macros.h"
#include "eventstore/uuid.h"
#include "tests/support/temp_dir.h"

#ifdef EVENTSTORE_BENCH_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#include "bench/bench_postgres.h"
#endif

namespace eventstore::bench {
namespace {

constexpr char kStream[] = "ledger-1";
constexpr int64_t kPageSize = 1000;
int64_t g_events = 1000000;

// A backend: how a process opens a store on the filled database.
struct MemoryBackend {
  std::string name;
  std::function<absl::StatusOr<std::unique_ptr<EventStore>>()> open;
};

std::vector<MemoryBackend>& Backends() {
  static auto* backends = new std::vector<MemoryBackend>();
  return *backends;
}

absl::Status FillStream(EventStore& store) {
  std::string padding(100, 'x');
  for (int64_t done = 0; done < g_events;) {
    std::vector<EventData> batch;
    const int64_t n = std::min<int64_t>(1000, g_events - done);
    for (int64_t i = 0; i < n; ++i) {
      EventData e;
      e.id = Uuid::Generate();
      e.type = "eventstore.bench.v1.LedgerEntry";
      e.payload = absl::StrCat(done + i, padding);
      batch.push_back(std::move(e));
    }
    AppendRequest request;
    request.stream = kStream;
    request.events = batch;
    ES_RETURN_IF_ERROR(store.Append(request).status());
    done += n;
  }
  return absl::OkStatus();
}

enum class Read { kVersionOnly, kWhole, kPages, kForEach };

// In a forked child: opens a store, reads as `how` says, exits 0 when the
// events read are as many as the stream holds. Never returns.
[[noreturn]] void ChildRead(const MemoryBackend& backend, Read how) {
  absl::StatusOr<std::unique_ptr<EventStore>> store = backend.open();
  if (!store.ok()) _exit(2);
  int64_t read = 0;
  absl::Status status;
  switch (how) {
    case Read::kVersionOnly: {
      absl::StatusOr<int64_t> version = (*store)->StreamVersion(kStream);
      status = version.status();
      read = version.ok() ? *version : 0;
      break;
    }
    case Read::kWhole: {
      absl::StatusOr<std::vector<RecordedEvent>> events =
          (*store)->ReadStream(kStream);
      status = events.status();
      read = events.ok() ? static_cast<int64_t>(events->size()) : 0;
      break;
    }
    case Read::kPages:
      status =
          (*store)->ReadStreamPages(kStream, ReadStreamOptions(), kPageSize,
                                    [&](std::vector<RecordedEvent> page) {
                                      read += static_cast<int64_t>(page.size());
                                      return absl::OkStatus();
                                    });
      break;
    case Read::kForEach: {
      absl::StatusOr<int64_t> visited = internal::ForEachStreamEvent(
          **store, kStream, 1,
          [&](const RecordedEvent&) { return absl::OkStatus(); });
      status = visited.status();
      read = visited.ok() ? *visited : 0;
      break;
    }
  }
  store->reset();
  _exit(status.ok() && read == g_events ? 0 : 3);
}

// The child's peak RSS in KiB; -1 when it failed.
int64_t PeakOfChild(const MemoryBackend& backend, Read how) {
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid == 0) ChildRead(backend, how);
  if (pid < 0) return -1;
  int status = 0;
  struct rusage usage {};
  if (wait4(pid, &status, 0, &usage) != pid) return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return usage.ru_maxrss;
}

void BM_M1(benchmark::State& state, const MemoryBackend* backend, Read how) {
  for (auto _ : state) {
    const int64_t base = PeakOfChild(*backend, Read::kVersionOnly);
    const int64_t peak = PeakOfChild(*backend, how);
    if (base < 0 || peak < 0) {
      state.SkipWithError("a reading child failed");
      return;
    }
    state.counters["peak_MiB"] = static_cast<double>(peak - base) / 1024.0;
    state.counters["events"] = static_cast<double>(g_events);
  }
}

int Main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    const std::string flag = "--memory_events=";
    if (arg.rfind(flag, 0) == 0) {
      if (!absl::SimpleAtoi(arg.substr(flag.size()), &g_events) ||
          g_events < 1) {
        std::cerr << "stream_memory_bench: bad " << arg << "\n";
        return 2;
      }
      continue;
    }
    args.push_back(argv[i]);
  }
  int bench_argc = static_cast<int>(args.size());
  benchmark::Initialize(&bench_argc, args.data());

  absl::StatusOr<std::unique_ptr<test::TempDir>> dir = test::TempDir::Create();
  if (!dir.ok()) {
    std::cerr << dir.status() << "\n";
    return 1;
  }
  SqliteOptions sqlite;
  sqlite.path = (*dir)->File("memory.db");
  Backends().push_back(
      {"sqlite", [sqlite] { return SqliteEventStore::Open(sqlite); }});
  // The same file through a memory map: the file pages a read touches
  // then count in the resident set too, up to mmap_size_mb.
  SqliteOptions mapped = sqlite;
  mapped.mmap_size_mb = 256;
  Backends().push_back(
      {"sqlite_mmap256", [mapped] { return SqliteEventStore::Open(mapped); }});
#ifdef EVENTSTORE_BENCH_POSTGRES
  std::unique_ptr<test::PostgresServer> server;
  absl::StatusOr<PostgresOptions> pg =
      BenchPostgresOptions("stream_memory", &server);
  if (!pg.ok()) {
    std::cerr << pg.status() << "\n";
    return 1;
  }
  Backends().push_back({"postgres", [options = *pg] {
                          return PostgresEventStore::Open(options);
                        }});
#endif
  for (const MemoryBackend& backend : Backends()) {
    if (backend.name == "sqlite_mmap256") continue;  // the same file
    absl::StatusOr<std::unique_ptr<EventStore>> store = backend.open();
    absl::Status filled = store.ok() ? FillStream(**store) : store.status();
    if (!filled.ok()) {
      std::cerr << backend.name << ": filling: " << filled << "\n";
      return 1;
    }
    std::cerr << backend.name << ": one stream of " << g_events << " events\n";
  }
  for (const MemoryBackend& backend : Backends()) {
    const std::string prefix = absl::StrCat("M1/", backend.name, "/");
    const std::pair<const char*, Read> reads[] = {
        {"ReadStream", Read::kWhole},
        {"ReadStreamPages", Read::kPages},
        {"ForEachStreamEvent", Read::kForEach}};
    for (const auto& [name, how] : reads) {
      benchmark::RegisterBenchmark(absl::StrCat(prefix, name).c_str(), BM_M1,
                                   &backend, how)
          ->Iterations(1)
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace
}  // namespace eventstore::bench

int main(int argc, char** argv) { return eventstore::bench::Main(argc, argv); }
