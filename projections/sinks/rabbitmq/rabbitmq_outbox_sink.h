// RabbitMqOutboxSink: an OutboxSink that publishes outbox messages to
// RabbitMQ (AMQP 0-9-1 over librabbitmq), one AMQP message per outbox entry,
// with publisher confirms.
//
//   eventstore::RabbitMqOutboxSinkOptions options;
//   options.url = "amqp://publisher:secret@rabbit.internal:5672/orders";
//   options.message_id_prefix = "orders-db/";  // message_id "orders-db/42"
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::RabbitMqOutboxSink> sink,
//                       eventstore::RabbitMqOutboxSink::Connect(options));
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::OutboxPublisher> pub,
//                       eventstore::OutboxPublisher::Create(*store, *sink));
//   ES_RETURN_IF_ERROR(pub->Start());
//
// Where a message goes, from OutboxMessage::destination:
// - "exchange": that exchange, with the message's key as routing key;
// - "exchange/routing-key": that exchange and routing key (the key is
//   everything after the first '/'; exchange names cannot hold a '/');
// - "/queue": the default exchange with routing key "queue", which RabbitMQ
//   delivers to the queue of that name;
// - "exchange/" or "/": the routing key is the message's key.
// Nothing is declared: the exchanges, queues and bindings are the
// application's (or its operators') to set up.
//
// What a consumer receives for an outbox entry:
// - body: message.payload;
// - message_id: message_id_prefix + the entry id in decimal. Delivery is at
//   least once (a resend after a crash, a broker restart, a lost confirm),
//   so consumers deduplicate by message_id;
// - delivery_mode 2 (persistent): a durable queue keeps it across a broker
//   restart;
// - correlation_id: the "correlation-id" header; type: the "event-type"
//   header (each only when it fits AMQP's 255-byte short string);
// - timestamp: when the entry was enqueued (seconds since the epoch);
// - content_type: options.content_type, when set;
// - headers: every header of message.headers as a string (correlation-id,
//   causation-id, event-type, traceparent, tracestate and the
//   application's own).
//
// A message counts as sent once the broker confirmed it (basic.ack: routed
// and, for persistent messages on durable queues, written to disk). It is
// published with the mandatory flag, so a message that no queue takes (no
// binding for its routing key) comes back (basic.return) and is a failed
// send, retried later, rather than silently dropped. SendBatch publishes the
// whole batch on one channel, in batch order (messages of one destination
// and key reach their queues in enqueue order), and then collects the
// confirms, which the broker sends for many messages at once: one round
// trip per batch, not per message. With the OutboxPublisher, batches are
// pipelined (BeginBatch / EndBatch): the next batches go out on the same
// channel, in order, while the confirms of the ones before come in.
//
// Errors, per message:
// - kInvalidArgument: the broker will never take it: larger than its
//   max_message_size (the status carries the broker's reason), a routing
//   key over 255 bytes, headers too large for one AMQP frame. The publisher
//   gives it up at once.
// - kUnavailable: the broker cannot be reached or the connection was lost
//   (a broker restart), the broker nacked it, or its confirm did not come
//   within confirm_timeout. Retried later. After a lost connection the sink
//   connects again on the next send, by itself.
// - kFailedPrecondition: returned as unroutable (no queue is bound for its
//   routing key). kNotFound: the exchange does not exist. kPermissionDenied:
//   the user may not publish to it. Each carries the broker's reply text and
//   is retried later (an operator may fix the topology meanwhile).
// A message the broker refuses makes it close the channel, losing the
// confirms of the others in flight, so the sink avoids that: each exchange
// is checked once per connection before it is published to (a passive
// exchange.declare on a channel of its own), and after the first refusal
// for size the broker's max_message_size is known and larger messages are
// refused without being sent. When the channel is closed all the same (the
// first message over the limit, an exchange deleted meanwhile), the
// unconfirmed messages of every batch in flight are published again, in
// order, on a new channel, one at a time until the culprit is found; those
// that had in fact arrived then arrive twice. When the connection is lost,
// the unconfirmed messages of every batch in flight fail (kUnavailable),
// and a batch begun before those are all ended is not sent at all.
//
// Credentials in the URL are masked ("***") in every status this class
// returns (MaskAmqpUrl).
//
// Thread safety: calls are serialised by an internal mutex; the
// OutboxPublisher calls its sink from one thread at a time anyway, and a
// sink serves one publisher. stats() and masked_url() may be called from
// any thread.

#ifndef EVENTSTORE_PROJECTIONS_SINKS_RABBITMQ_RABBITMQ_OUTBOX_SINK_H_
#define EVENTSTORE_PROJECTIONS_SINKS_RABBITMQ_RABBITMQ_OUTBOX_SINK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "projections/outbox_publisher.h"

namespace eventstore {

struct RabbitMqOutboxSinkOptions {
  // The broker: amqp://user:password@host:port/vhost, with '/' in a vhost
  // written %2F (amqp://host/%2Fshop). Omitted parts take librabbitmq's
  // defaults: user and password "guest", port 5672, vhost "/" (also for an
  // empty vhost, "amqp://host/"). amqps:// (TLS) is not supported yet.
  // Required.
  std::string url;

  // Prepended to the outbox entry id (decimal) to make the AMQP message_id,
  // so that the ids of several stores publishing to one broker differ.
  // Default empty: message_id "42". At most 200 bytes.
  std::string message_id_prefix;

  // The content_type property of every message (say
  // "application/x-protobuf"). Default empty: not set.
  std::string content_type;

  // How long a send waits for the broker's next confirm. When none comes
  // this long, the messages not yet confirmed fail (kUnavailable, retried
  // later) and the connection is dropped, to be opened again by the next
  // send. Default 5 s: a broker confirms within milliseconds unless it is
  // stuck (a disk or memory alarm blocks publishers).
  absl::Duration confirm_timeout = absl::Seconds(5);

  // How long connecting may take: TCP, the AMQP handshake and login, and
  // each channel setup. Default 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
};

// Counters since the sink was created, for monitoring and tests.
struct RabbitMqOutboxSinkStats {
  // Connections opened, the first (Connect) included.
  int64_t connections = 0;
  // Messages confirmed (basic.ack, not returned).
  int64_t confirmed = 0;
  // Messages that failed, for any reason.
  int64_t failed = 0;
  // Messages returned as unroutable.
  int64_t returned = 0;
  // Channels the broker closed (a missing exchange, a message too large).
  int64_t channels_closed = 0;
};

// The exchange and routing key `message` goes to (see the overview);
// kInvalidArgument when the routing key is over 255 bytes.
struct RabbitMqRoute {
  std::string exchange;
  std::string routing_key;
};
absl::StatusOr<RabbitMqRoute> RabbitMqRouteOf(const OutboxMessage& message);

// `url` with the password of an amqp:// or amqps:// URL replaced by "***":
// "amqp://app:***@host:5672/vhost". Safe to log.
std::string MaskAmqpUrl(std::string_view url);

class RabbitMqOutboxSink : public OutboxSink {
 public:
  // Connects to the broker once: kUnavailable naming the URL (password
  // masked) when it cannot be reached, kPermissionDenied when the login or
  // the vhost is refused, kInvalidArgument for a malformed URL or option.
  // Whether to retry, and how soon, is the caller's choice.
  static absl::StatusOr<std::unique_ptr<RabbitMqOutboxSink>> Connect(
      RabbitMqOutboxSinkOptions options);

  RabbitMqOutboxSink(const RabbitMqOutboxSink&) = delete;
  RabbitMqOutboxSink& operator=(const RabbitMqOutboxSink&) = delete;
  // Closes the connection (politely when the broker answers within
  // connect_timeout).
  ~RabbitMqOutboxSink() override;

  // Publishes one message and waits for its confirm.
  absl::Status Send(const OutboxEntry& entry) override;
  // Publishes the batch in order on one channel, then collects the
  // confirms; one status per entry, in order (see the overview).
  std::vector<absl::Status> SendBatch(
      absl::Span<const OutboxEntry> entries) override;
  // Several batches in flight (OutboxSink::PipelinesBatches): BeginBatch
  // publishes the batch after those begun before, on the same channel, and
  // returns; EndBatch collects the confirms of the oldest batch begun.
  bool PipelinesBatches() const override { return true; }
  void BeginBatch(absl::Span<const OutboxEntry> entries) override;
  std::vector<absl::Status> EndBatch() override;

  // options.url with the password masked.
  const std::string& masked_url() const;
  RabbitMqOutboxSinkStats stats() const;

 private:
  // The connection and counters (librabbitmq's types stay out of this
  // header).
  class Impl;
  explicit RabbitMqOutboxSink(std::unique_ptr<Impl> impl);

  const std::unique_ptr<Impl> impl_;
};

}  // namespace eventstore

#endif  // EVENTSTORE_PROJECTIONS_SINKS_RABBITMQ_RABBITMQ_OUTBOX_SINK_H_
