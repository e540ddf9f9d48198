#include "tools/outbox_publish_command.h"

#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_store.h"
#include "projections/outbox_publisher.h"
#include "tools/cli_support.h"
#include "tools/command.h"

#ifdef EVENTSTORE_HAVE_NATS
#include "projections/sinks/nats/nats_outbox_sink.h"
#endif
#ifdef EVENTSTORE_HAVE_RABBITMQ
#include "projections/sinks/rabbitmq/rabbitmq_outbox_sink.h"
#endif

namespace eventstore::tools {
namespace {

constexpr char kCommand[] = "outbox publish";
// The wait between two connection attempts to an unreachable broker starts
// here and doubles up to kMaxRetryWait.
constexpr absl::Duration kFirstRetryWait = absl::Seconds(1);
constexpr absl::Duration kMaxRetryWait = absl::Seconds(30);

// SIGINT and SIGTERM, blocked in this thread and every thread started
// after it (the store's, the broker client's, the publisher's), so that
// only Wait() receives them.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, &old_mask_);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals() { pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr); }

  // Waits up to `timeout` for a signal: true when one came.
  bool Wait(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      const absl::Duration left =
          std::max(absl::ZeroDuration(), deadline - absl::Now());
      const struct timespec ts = absl::ToTimespec(left);
      const int signal = sigtimedwait(&signals_, nullptr, &ts);
      if (signal > 0) return true;
      if (errno == EAGAIN || left == absl::ZeroDuration()) return false;
      // EINTR: another signal interrupted the wait; wait for what is left.
    }
  }

 private:
  sigset_t signals_;
  sigset_t old_mask_;
};

// A connected broker and its own counters for the progress lines.
struct BrokerSink {
  std::unique_ptr<OutboxSink> sink;
  // ", duplicates 3, reconnects 1": what only the broker client counts
  // (resends the broker dropped, reconnections).
  std::function<std::string()> counters;
};

// Connects to the broker of `args.to` once.
absl::StatusOr<BrokerSink> ConnectSink(const OutboxPublishArgs& args) {
  if (absl::StartsWith(args.to, "nats://")) {
#ifdef EVENTSTORE_HAVE_NATS
    NatsOutboxSinkOptions options;
    options.url = args.to;
    options.subject_prefix = args.subject_prefix;
    options.msg_id_prefix = args.message_id_prefix;
    options.stream.name = args.stream;
    absl::StatusOr<std::unique_ptr<NatsOutboxSink>> sink =
        NatsOutboxSink::Connect(std::move(options));
    if (!sink.ok()) return sink.status();
    NatsOutboxSink* nats = sink->get();
    return BrokerSink{std::move(*sink), [nats] {
                        const NatsOutboxSinkStats stats = nats->stats();
                        // Duplicates: resends JetStream had stored already
                        // (after a publisher crash) and dropped.
                        return absl::StrFormat(", duplicates %d, reconnects %d",
                                               stats.duplicates,
                                               stats.reconnects);
                      }};
#else
    return absl::UnimplementedError(
        "--to nats://: this eventstore was built without the NATS sink "
        "(EVENTSTORE_WITH_NATS; Debian: libnats-dev)");
#endif
  }
  if (absl::StartsWith(args.to, "amqp://")) {
#ifdef EVENTSTORE_HAVE_RABBITMQ
    if (!args.subject_prefix.empty() || !args.stream.empty()) {
      return absl::InvalidArgumentError(
          "--subject-prefix and --stream are for NATS, not amqp://");
    }
    RabbitMqOutboxSinkOptions options;
    options.url = args.to;
    options.message_id_prefix = args.message_id_prefix;
    absl::StatusOr<std::unique_ptr<RabbitMqOutboxSink>> sink =
        RabbitMqOutboxSink::Connect(std::move(options));
    if (!sink.ok()) return sink.status();
    RabbitMqOutboxSink* rabbitmq = sink->get();
    return BrokerSink{std::move(*sink), [rabbitmq] {
                        const RabbitMqOutboxSinkStats stats = rabbitmq->stats();
                        // RabbitMQ does not drop resends: its consumers
                        // deduplicate by message_id.
                        return absl::StrFormat(", returned %d, reconnects %d",
                                               stats.returned,
                                               stats.connections - 1);
                      }};
#else
    return absl::UnimplementedError(
        "--to amqp://: this eventstore was built without the RabbitMQ sink "
        "(EVENTSTORE_WITH_RABBITMQ; Debian: librabbitmq-dev)");
#endif
  }
  // No "USER:PASSWORD@" in the hint: the output masking would print it
  // as "USER:***@" (it masks anything credential-shaped).
  return absl::InvalidArgumentError(
      absl::StrCat("--to: '", MaskUrl(args.to),
                   "' is not a broker URL: give nats://HOST:PORT or "
                   "amqp://HOST:PORT/VHOST (a login, if any, before the "
                   "host)"));
}

// Connects, retrying an unreachable broker with a doubling wait until it
// answers or a signal comes (a null sink then).
absl::StatusOr<BrokerSink> ConnectWithRetry(const OutboxPublishArgs& args,
                                            StopSignals& signals) {
  absl::Duration wait = kFirstRetryWait;
  while (true) {
    absl::StatusOr<BrokerSink> sink = ConnectSink(args);
    if (sink.ok() || !absl::IsUnavailable(sink.status())) return sink;
    PrintErrorMessage(
        kCommand,
        absl::StrCat(sink.status().message(), "; trying again in ",
                     absl::FormatDuration(wait)),
        args.to);
    if (signals.Wait(wait)) return BrokerSink();
    wait = std::min(wait * 2, kMaxRetryWait);
  }
}

// One progress line: the publisher's counters, the rate since the last
// line, the pending messages, the broker client's counters.
void PrintProgress(EventStore& store, const BrokerSink& sink,
                   const OutboxPublisherStats& stats, int64_t published_before,
                   absl::Duration since) {
  std::string pending = "?";
  absl::StatusOr<OutboxBacklog> backlog = store.outbox().Backlog();
  if (backlog.ok()) pending = absl::StrCat(backlog->pending);
  const double seconds = absl::ToDoubleSeconds(since);
  const double rate =
      seconds > 0
          ? static_cast<double>(stats.published - published_before) / seconds
          : 0;
  std::cerr << absl::StrFormat(
                   "eventstore %s: published %d (%.0f/s), failed sends %d, "
                   "given up %d, pending %s",
                   kCommand, stats.published, rate, stats.failed_sends,
                   stats.given_up, pending)
            << sink.counters()
            << (stats.last_error.ok()
                    ? std::string()
                    : absl::StrCat(", last error: ",
                                   stats.last_error.message()))
            << std::endl;
}

// --once: publishes what is pending on a thread of its own, so that a
// signal ends the run after the batch in flight rather than after the
// whole backlog. kExitProblem when a send failed (what failed stays in the
// outbox for the next run, or is given up after its attempts).
int PublishOnce(EventStore& store, const std::string& url,
                OutboxPublisher& publisher, const BrokerSink& sink,
                StopSignals& signals) {
  absl::StatusOr<OutboxPublishResult> result;
  std::atomic<bool> done{false};
  std::thread job([&] {
    result = publisher.RunOnce();
    done = true;
  });
  while (!done) {
    if (signals.Wait(absl::Milliseconds(100))) {
      publisher.Stop();  // RunOnce returns after the batch in flight
      break;
    }
  }
  job.join();
  if (!result.ok()) return PrintError(kCommand, result.status(), url);
  PrintProgress(store, sink, publisher.stats(), 0, absl::ZeroDuration());
  if (result->failed_sends > 0) {
    PrintErrorMessage(
        kCommand,
        absl::StrCat(result->failed_sends, " send(s) failed, ",
                     result->given_up,
                     " message(s) given up; the rest stay pending"),
        url);
    return static_cast<int>(kExitProblem);
  }
  return static_cast<int>(kExitOk);
}

int Publish(const OutboxPublishArgs& args, EventStore& store,
            const std::string& url, StopSignals& signals) {
  // A job (--once) is rerun by its scheduler: an unreachable broker is an
  // error at once, not a wait of unknown length.
  absl::StatusOr<BrokerSink> sink =
      args.once ? ConnectSink(args) : ConnectWithRetry(args, signals);
  if (!sink.ok()) return PrintError(kCommand, sink.status(), args.to);
  if (sink->sink == nullptr) return static_cast<int>(kExitOk);  // stopped
  OutboxPublisherOptions options;
  options.worker_name = args.worker;
  options.batch_size = args.batch_size;
  options.max_batches_in_flight = args.batches_in_flight;
  options.lease = absl::Seconds(args.lease);
  absl::StatusOr<std::unique_ptr<OutboxPublisher>> publisher =
      OutboxPublisher::Create(store, *sink->sink, options);
  if (!publisher.ok()) return PrintError(kCommand, publisher.status(), url);

  if (args.once) {
    return PublishOnce(store, url, **publisher, *sink, signals);
  }
  absl::Status started = (*publisher)->Start();
  if (!started.ok()) return PrintError(kCommand, started, url);
  std::cerr << "eventstore " << kCommand << ": publishing to "
            << MaskUrl(args.to) << " as " << (*publisher)->worker_name()
            << " (batches of " << args.batch_size << ", up to "
            << args.batches_in_flight << " in flight)" << std::endl;
  const absl::Duration every = args.stats_every > 0
                                   ? absl::Seconds(args.stats_every)
                                   : absl::InfiniteDuration();
  int64_t published_before = 0;
  absl::Time last = absl::Now();
  while (!signals.Wait(every)) {
    const OutboxPublisherStats stats = (*publisher)->stats();
    const absl::Time now = absl::Now();
    PrintProgress(store, *sink, stats, published_before, now - last);
    published_before = stats.published;
    last = now;
  }
  // The batch in progress is settled (sent and marked) before Stop
  // returns; a batch claimed and not sent goes back when its lease ends.
  (*publisher)->Stop();
  const OutboxPublisherStats stats = (*publisher)->stats();
  PrintProgress(store, *sink, stats, published_before, absl::Now() - last);
  return static_cast<int>(kExitOk);
}

}  // namespace

int RunOutboxPublish(const OutboxPublishArgs& args) {
  // Before any thread starts: they inherit the blocked signals.
  StopSignals signals;
  return RunWithStore(kCommand, args.url, OpenStoreOptions(),
                      [&](EventStore& store, const std::string& url) {
                        return Publish(args, store, url, signals);
                      });
}

void RegisterOutboxPublish(CLI::App& outbox, const std::string& outbox_url,
                           int& exit_code) {
  auto args = std::make_shared<OutboxPublishArgs>();
  CLI::App* cmd = outbox.add_subcommand(
      "publish",
      "Publish the outbox to a message broker until SIGINT or SIGTERM: NATS "
      "JetStream (nats://) or RabbitMQ with publisher confirms (amqp://)");
  AddUrlArgument(*cmd, args->url);
  cmd->add_option("--to", args->to,
                  "The broker: nats://HOST:PORT or amqp://HOST:PORT/VHOST, "
                  "with a login before the host when it needs one "
                  "(credentials are masked in every message)")
      ->required();
  cmd->add_option("--subject-prefix", args->subject_prefix,
                  "NATS: the subject is this followed by the message's "
                  "destination");
  cmd->add_option("--stream", args->stream,
                  "NATS: a JetStream stream to create when absent, capturing "
                  "the subject prefix followed by '>'");
  cmd->add_option("--message-id-prefix", args->message_id_prefix,
                  "The broker's message id (Nats-Msg-Id, AMQP message_id) is "
                  "this followed by the outbox entry id");
  cmd->add_option("--worker", args->worker,
                  "The publisher's name, recorded on the messages it claims "
                  "(default outbox-publisher-<pid>-<n>)");
  cmd->add_option("--batch-size", args->batch_size,
                  "Messages claimed and sent at once")
      ->check(AtLeastOne(100000))
      ->capture_default_str();
  cmd->add_option("--batches-in-flight", args->batches_in_flight,
                  "Batches sent and not yet acknowledged at once (1 to 64): "
                  "more hide more of the broker's latency, and a failed "
                  "send is retried after up to this many minus one later "
                  "batches went out")
      ->check(AtLeastOne(64))
      ->capture_default_str();
  cmd->add_option("--lease", args->lease,
                  "Seconds a claimed batch stays this publisher's: a "
                  "publisher killed in the middle of a batch holds it this "
                  "long before another one sends it again")
      ->check(AtLeastOne(86400))
      ->capture_default_str();
  cmd->add_option("--stats-every", args->stats_every,
                  "Seconds between two progress lines on stderr (0: none)")
      ->check(NonNegative(86400))
      ->capture_default_str();
  cmd->add_flag("--once", args->once,
                "Publish what is pending, then exit (for a job scheduler)");
  SetExample(*cmd,
             "eventstore outbox publish sqlite:events.db --to "
             "nats://127.0.0.1:4222 --subject-prefix outbox. --stream OUTBOX\n"
             "eventstore outbox publish postgresql://app@db/shop --to "
             "amqp://publisher:secret@127.0.0.1:5672/%2f");
  cmd->callback([args, &outbox_url, &exit_code] {
    if (args->url.empty()) args->url = outbox_url;
    exit_code = RunOutboxPublish(*args);
  });
}

}  // namespace eventstore::tools
