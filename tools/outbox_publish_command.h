// `eventstore outbox publish [URL] --to BROKER` (docs/cli.md, docs/outbox.md):
// a long-running OutboxPublisher from a store's outbox to NATS JetStream
// (nats://) or RabbitMQ (amqp://), with progress on stderr and a clean stop
// on SIGINT / SIGTERM.

#ifndef EVENTSTORE_TOOLS_OUTBOX_PUBLISH_COMMAND_H_
#define EVENTSTORE_TOOLS_OUTBOX_PUBLISH_COMMAND_H_

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "projections/outbox_publisher.h"

namespace eventstore::tools {

struct OutboxPublishArgs {
  // The store (or $EVENTSTORE_URL).
  std::string url;
  // The broker: nats://[user:password@]host:port[,...] or
  // amqp://user:password@host:port/vhost.
  std::string to;
  // NATS: the subject is subject_prefix + destination.
  std::string subject_prefix;
  // NATS: a JetStream stream to create when absent, capturing
  // subject_prefix + ">" (subject_prefix must then end with '.').
  std::string stream;
  // The broker message id is message_id_prefix + the outbox entry id.
  std::string message_id_prefix;
  std::string worker;
  int batch_size = 100;
  // OutboxPublisherOptions::max_batches_in_flight.
  int batches_in_flight = OutboxPublisherOptions().max_batches_in_flight;
  // Seconds a claimed batch stays this publisher's; a publisher killed in
  // the middle of a batch holds it this long before another one sends it.
  int64_t lease = 30;
  // Seconds between two progress lines on stderr; 0: none.
  int64_t stats_every = 10;
  // Publish what is pending, then exit (no background loop).
  bool once = false;
};

// Adds `publish` to the `outbox` command.
void RegisterOutboxPublish(CLI::App& outbox, const std::string& outbox_url,
                           int& exit_code);

// Runs the command; returns its exit code: 0 after a clean stop (a signal,
// or --once done), kExitUsage for a bad argument or broker URL, kExitProblem
// when the store cannot be opened or fails.
int RunOutboxPublish(const OutboxPublishArgs& args);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_OUTBOX_PUBLISH_COMMAND_H_
