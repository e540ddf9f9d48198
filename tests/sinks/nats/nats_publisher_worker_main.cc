// nats_publisher_worker: one process running an OutboxPublisher with a
// NatsOutboxSink, for the test that kills a publisher in the middle of a
// batch (nats_outbox_sink_test.cc).
//
//   nats_publisher_worker --url=sqlite:///tmp/x/events.db --nats=nats://...
//                         --subject-prefix=es1. --msg-id-prefix=es1/
//                         [--batch-size=1000] [--lease-ms=2000]
//
// Publishes in a background thread; prints "ready" once connected and
// started; stops cleanly on SIGTERM or SIGINT (exit 0), exit 1 on a bad
// argument or a failed start.

#include <signal.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "projections/outbox_publisher.h"
#include "projections/sinks/nats/nats_outbox_sink.h"

namespace {

volatile sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "nats_publisher_worker: %s\n",
               status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags = {{"batch-size", "1000"},
                                              {"lease-ms", "2000"}};
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    const size_t equals = arg.find('=');
    if (arg.substr(0, 2) != "--" || equals == std::string_view::npos) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("not --name=value: ", argv[i])));
    }
    flags[std::string(arg.substr(2, equals - 2))] =
        std::string(arg.substr(equals + 1));
  }
  int batch_size = 0;
  int lease_ms = 0;
  if (flags["url"].empty() || flags["nats"].empty() ||
      !absl::SimpleAtoi(flags["batch-size"], &batch_size) ||
      !absl::SimpleAtoi(flags["lease-ms"], &lease_ms)) {
    return Fail(absl::InvalidArgumentError(
        "need --url, --nats and numeric --batch-size, --lease-ms"));
  }

  absl::StatusOr<std::unique_ptr<eventstore::EventStore>> store =
      eventstore::OpenEventStore(flags["url"]);
  if (!store.ok()) return Fail(store.status());

  eventstore::NatsOutboxSinkOptions sink_options;
  sink_options.url = flags["nats"];
  sink_options.subject_prefix = flags["subject-prefix"];
  sink_options.msg_id_prefix = flags["msg-id-prefix"];
  sink_options.reconnect_wait = absl::Milliseconds(50);
  absl::StatusOr<std::unique_ptr<eventstore::NatsOutboxSink>> sink =
      eventstore::NatsOutboxSink::Connect(sink_options);
  if (!sink.ok()) return Fail(sink.status());

  eventstore::OutboxPublisherOptions options;
  options.worker_name = "killed-worker";
  options.batch_size = batch_size;
  options.lease = absl::Milliseconds(lease_ms);
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(200);
  options.poll_interval = absl::Milliseconds(50);
  absl::StatusOr<std::unique_ptr<eventstore::OutboxPublisher>> publisher =
      eventstore::OutboxPublisher::Create(**store, **sink, options);
  if (!publisher.ok()) return Fail(publisher.status());

  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  if (absl::Status started = (*publisher)->Start(); !started.ok()) {
    return Fail(started);
  }
  std::printf("ready\n");
  std::fflush(stdout);
  while (!g_stop) absl::SleepFor(absl::Milliseconds(10));
  (*publisher)->Stop();
  return 0;
}
