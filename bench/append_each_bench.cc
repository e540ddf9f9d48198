// append_each_bench: N single-event appends made one Append call each
// against the same N made through AppendEach in batches, on SQLite (a file,
// synchronous FULL) and, when built with PostgreSQL, on a durable throwaway
// server ($EVENTSTORE_BENCH_PG_URL instead, when set). Each round runs both
// ways on fresh stores back to back (paired), alternating which goes first;
// the median round is printed with the ratio (Append time / AppendEach
// time).
//
//   append_each_bench [appends=1000] [batch=100] [rounds=5]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/event_store.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_BENCH_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"
#endif

namespace eventstore {
namespace {

using Clock = std::chrono::steady_clock;
using Opener = std::function<absl::StatusOr<std::unique_ptr<EventStore>>()>;

std::vector<EventData> MakeEvents(int n) {
  std::vector<EventData> events(n);
  for (int i = 0; i < n; ++i) {
    events[i].id = Uuid::Generate();
    events[i].type = "eventstore.bench.v1.Tick";
    events[i].payload = std::string(100, 'x');
  }
  return events;
}

// Seconds taken to append `events`, one event per append, each to its own
// stream with NoStream: one Append call each (batch 0) or AppendEach calls
// of `batch` appends.
absl::StatusOr<double> Run(EventStore& store,
                           const std::vector<EventData>& events, int batch) {
  const int n = static_cast<int>(events.size());
  std::vector<std::string> streams(n);
  for (int i = 0; i < n; ++i) streams[i] = absl::StrCat("bench-", i);
  const Clock::time_point start = Clock::now();
  if (batch == 0) {
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<AppendResult> r =
          store.Append(streams[i], ExpectedVersion::NoStream(),
                       absl::Span<const EventData>(&events[i], 1));
      if (!r.ok()) return r.status();
    }
  } else {
    for (int first = 0; first < n; first += batch) {
      std::vector<AppendRequest> requests;
      for (int i = first; i < std::min(n, first + batch); ++i) {
        requests.push_back({streams[i], ExpectedVersion::NoStream(),
                            absl::Span<const EventData>(&events[i], 1)});
      }
      absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> r =
          store.AppendEach(requests);
      if (!r.ok()) return r.status();
      for (const auto& one : *r) {
        if (!one.ok()) return one.status();
      }
    }
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

absl::Status Compare(const std::string& name, const Opener& open, int n,
                     int batch, int rounds) {
  std::vector<double> singles;
  std::vector<double> batches;
  for (int round = 0; round < rounds; ++round) {
    for (int k = 0; k < 2; ++k) {
      const bool batched = (round + k) % 2 == 1;
      absl::StatusOr<std::unique_ptr<EventStore>> store = open();
      if (!store.ok()) return store.status();
      absl::StatusOr<double> seconds =
          Run(**store, MakeEvents(n), batched ? batch : 0);
      if (!seconds.ok()) return seconds.status();
      (batched ? batches : singles).push_back(*seconds);
    }
  }
  std::sort(singles.begin(), singles.end());
  std::sort(batches.begin(), batches.end());
  const double single = singles[singles.size() / 2];
  const double batched = batches[batches.size() / 2];
  std::printf(
      "%-8s %d appends: Append %.1f ms (%.0f/s), AppendEach x%d %.1f ms "
      "(%.0f/s), ratio %.1f\n",
      name.c_str(), n, single * 1e3, n / single, batch, batched * 1e3,
      n / batched, single / batched);
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int batch = argc > 2 ? std::atoi(argv[2]) : 100;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 5;
  if (n <= 0 || batch <= 0 || rounds <= 0) {
    std::fprintf(stderr, "usage: %s [appends] [batch] [rounds]\n", argv[0]);
    return 2;
  }
  absl::StatusOr<std::unique_ptr<test::TempDir>> dir = test::TempDir::Create();
  if (!dir.ok()) {
    std::fprintf(stderr, "%s\n", dir.status().ToString().c_str());
    return 1;
  }
  int opened = 0;
  absl::Status status = Compare(
      "sqlite",
      [&]() {
        SqliteOptions options;
        options.path = (*dir)->File(absl::StrCat("bench-", opened++, ".db"));
        return SqliteEventStore::Open(options);
      },
      n, batch, rounds);
#ifdef EVENTSTORE_BENCH_POSTGRES
  std::unique_ptr<test::PostgresServer> server;
  std::string url;
  if (const char* env = std::getenv("EVENTSTORE_BENCH_PG_URL")) {
    url = env;
  } else if (status.ok()) {
    test::PostgresServerOptions server_options;
    server_options.durable = true;
    absl::StatusOr<std::unique_ptr<test::PostgresServer>> started =
        test::PostgresServer::Start(server_options);
    if (started.ok()) {
      server = *std::move(started);
      url = server->url();
    } else {
      status = started.status();
    }
  }
  if (status.ok()) {
    status = Compare(
        "postgres",
        [&]() {
          PostgresOptions options;
          options.conninfo = url;
          options.schema = absl::StrCat("append_each_bench_", opened++);
          return PostgresEventStore::Open(options);
        },
        n, batch, rounds);
  }
#endif
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace eventstore

int main(int argc, char** argv) { return eventstore::Main(argc, argv); }
