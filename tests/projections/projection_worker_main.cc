// projection_worker: one process running a ProjectionRunner, for the
// takeover test (projection_takeover_test.cc).
//
//   projection_worker --url=postgresql://...?schema=s --projection=rows
//                     --table=handled --worker=w1 [--batch-size=10]
//                     [--delay-ms=0] [--lease-retry-ms=200]
//
// Runs a TransactionalProjection that inserts (event_id, worker) into
// `table` (which must exist) for each event, in the runner's transaction.
// Prints "ready" once started, "lease acquired" / "lease lost" as they
// happen and the runner's errors; stops cleanly on SIGTERM or SIGINT.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/sql_transaction.h"
#include "projections/projection.h"
#include "projections/projection_runner.h"

namespace {

volatile sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

class HandledEvents : public eventstore::TransactionalProjection {
 public:
  HandledEvents(std::string name, std::string table, std::string worker,
                absl::Duration delay)
      : name_(std::move(name)),
        insert_(absl::StrCat("INSERT INTO ", table,
                             " (event_id, worker) VALUES ($1, $2)")),
        worker_(std::move(worker)),
        delay_(delay) {}

  std::string name() const override { return name_; }

  absl::Status Handle(const eventstore::RecordedEvent& event,
                      eventstore::SqlTransaction& tx) override {
    if (delay_ > absl::ZeroDuration()) absl::SleepFor(delay_);
    return tx.Execute(insert_, {eventstore::SqlValue::Text(event.id.ToString()),
                                eventstore::SqlValue::Text(worker_)});
  }

 private:
  const std::string name_;
  const std::string insert_;
  const std::string worker_;
  const absl::Duration delay_;
};

bool IsIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok =
        (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

int Fail(std::string_view message) {
  std::fprintf(stderr, "projection_worker: %.*s\n",
               static_cast<int>(message.size()), message.data());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags = {{"url", ""},
                                              {"projection", ""},
                                              {"table", ""},
                                              {"worker", ""},
                                              {"batch-size", "10"},
                                              {"delay-ms", "0"},
                                              {"lease-retry-ms", "200"}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const std::size_t eq = arg.find('=');
    if (!absl::StartsWith(arg, "--") || eq == std::string::npos ||
        flags.count(arg.substr(2, eq - 2)) == 0) {
      return Fail(absl::StrCat("bad argument: ", arg));
    }
    flags[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
  }
  int batch_size = 0;
  int delay_ms = 0;
  int lease_retry_ms = 0;
  if (flags["url"].empty() || flags["projection"].empty() ||
      flags["worker"].empty() || !IsIdentifier(flags["table"]) ||
      !absl::SimpleAtoi(flags["batch-size"], &batch_size) ||
      !absl::SimpleAtoi(flags["delay-ms"], &delay_ms) ||
      !absl::SimpleAtoi(flags["lease-retry-ms"], &lease_retry_ms)) {
    return Fail(
        "usage: projection_worker --url=URL --projection=NAME --table=TABLE "
        "--worker=ID [--batch-size=N] [--delay-ms=N] [--lease-retry-ms=N]");
  }

  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  absl::StatusOr<std::unique_ptr<eventstore::EventStore>> store =
      eventstore::OpenEventStore(flags["url"]);
  if (!store.ok()) return Fail(store.status().ToString());
  HandledEvents projection(flags["projection"], flags["table"], flags["worker"],
                           absl::Milliseconds(delay_ms));
  eventstore::ProjectionRunnerOptions options;
  options.batch_size = batch_size;
  options.idle_wait = absl::Milliseconds(100);
  options.initial_backoff = absl::Milliseconds(20);
  options.max_backoff = absl::Milliseconds(500);
  options.lease_retry_interval = absl::Milliseconds(lease_retry_ms);
  options.worker_name = flags["worker"];
  absl::StatusOr<std::unique_ptr<eventstore::ProjectionRunner>> runner =
      eventstore::ProjectionRunner::Create(**store, projection, options);
  if (!runner.ok()) return Fail(runner.status().ToString());
  absl::Status started = (*runner)->Start();
  if (!started.ok()) return Fail(started.ToString());
  std::printf("ready\n");
  std::fflush(stdout);

  bool holds_lease = false;
  std::string last_error;
  while (g_stop == 0) {
    absl::SleepFor(absl::Milliseconds(10));
    const eventstore::ProjectionRunnerStats stats = (*runner)->stats();
    if (stats.holds_lease != holds_lease) {
      holds_lease = stats.holds_lease;
      std::printf("%s\n", holds_lease ? "lease acquired" : "lease lost");
      std::fflush(stdout);
    }
    const std::string error =
        stats.last_error.ok() ? "" : stats.last_error.ToString();
    if (error != last_error) {
      last_error = error;
      if (!error.empty()) std::fprintf(stderr, "error: %s\n", error.c_str());
    }
  }
  (*runner)->Stop();
  std::printf("stopped after handling %lld events\n",
              static_cast<long long>((*runner)->stats().handled));
  return 0;
}
