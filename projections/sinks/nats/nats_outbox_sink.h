// NatsOutboxSink: an OutboxSink that publishes outbox messages to NATS
// JetStream (libnats), one JetStream message per outbox entry.
//
//   eventstore::NatsOutboxSinkOptions options;
//   options.url = "nats://publisher:secret@nats.internal:4222";
//   options.subject_prefix = "outbox.";       // destination "billing" ->
//                                             // subject "outbox.billing"
//   options.msg_id_prefix = "orders-db/";     // Nats-Msg-Id "orders-db/42"
//   options.stream.name = "OUTBOX";           // created when absent
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::NatsOutboxSink> sink,
//                       eventstore::NatsOutboxSink::Connect(options));
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::OutboxPublisher> pub,
//                       eventstore::OutboxPublisher::Create(*store, *sink));
//   ES_RETURN_IF_ERROR(pub->Start());
//
// What a JetStream consumer receives for an outbox entry:
// - subject: subject_prefix + message.destination;
// - data: message.payload;
// - header Nats-Msg-Id: msg_id_prefix + the entry id in decimal. JetStream
//   drops a message whose id it has stored within the stream's duplicate
//   window, so a resend after a crash (the publisher delivers at least once)
//   is stored once; the consumer may still see a redelivery of its own, and
//   deduplicates by this header;
// - every header of message.headers, as it is (correlation-id,
//   causation-id, event-type, traceparent, tracestate; outbox_message.h),
//   and "Outbox-Key" with message.key when the key is not empty.
//
// A message counts as sent once JetStream acknowledged it (its PubAck: the
// stream stored it, or had it already). SendBatch hands the whole batch to
// the connection at once, in batch order (so messages of one destination
// reach the stream in enqueue order), and collects the acknowledgements as
// they come (js_PublishMsgAsync); one round trip per batch, not per message.
// Once the connection fails during a batch, the rest of the batch is not
// handed over (kUnavailable), so that it cannot overtake a failed message.
// Messages libnats buffered while reconnecting may still reach the stream
// after their send returned kUnavailable; their retry is then dropped as a
// duplicate.
//
// Errors, per message:
// - kInvalidArgument: JetStream will never take it: a destination that
//   does not make a valid subject (empty, spaces, wildcards, empty tokens),
//   a header that NATS cannot carry (or a reserved "Nats-*" one), a message
//   larger than the server's max_payload or the stream's max message size.
//   The publisher gives it up at once, with this message as its error.
// - kUnavailable: not connected (the broker is down or restarting: the
//   connection reconnects by itself), or no acknowledgement within
//   ack_timeout. Retried later; a retry of a message that was in fact
//   stored is dropped by the duplicate window.
// - kFailedPrecondition: JetStream refused it for another reason (no stream
//   captures the subject, the stream is full, ...); retried later.
//
// Credentials in the URL (nats://user:password@host, nats://token@host) are
// masked ("***") in every status this class returns (MaskNatsUrl).
//
// Thread safety: Send and SendBatch must not be called concurrently (the
// OutboxPublisher calls its sink from one thread at a time); stats() and
// masked_url() may be called from any thread.

#ifndef EVENTSTORE_PROJECTIONS_SINKS_NATS_NATS_OUTBOX_SINK_H_
#define EVENTSTORE_PROJECTIONS_SINKS_NATS_NATS_OUTBOX_SINK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/outbox_store.h"
#include "projections/outbox_publisher.h"

namespace eventstore {

// The header carrying OutboxMessage::key (when not empty).
inline constexpr char kNatsOutboxKeyHeader[] = "Outbox-Key";

// A JetStream stream that Connect creates when no stream of that name
// exists (an existing one is used as it is, never changed).
struct NatsStreamOptions {
  // The stream's name: letters, digits, '-' and '_'. Default empty: create
  // no stream; one must exist that captures the subjects published to.
  std::string name;
  // Subjects the stream captures. Default empty: subject_prefix + ">"
  // (then subject_prefix must end with '.').
  std::vector<std::string> subjects;
  // How long JetStream remembers a Nats-Msg-Id to drop a resend. Default
  // 2 min (JetStream's own): longer than the publisher's lease (30 s) plus
  // its backoff, so that a message resent after a publisher crash or a
  // broker outage is still recognised. A resend after the window is stored
  // twice; the consumer then drops it by Nats-Msg-Id.
  absl::Duration duplicate_window = absl::Minutes(2);
  // File storage (default) survives a broker restart; false: memory.
  bool file_storage = true;
};

struct NatsOutboxSinkOptions {
  // The broker: "nats://[user:password@]host:port" or "nats://token@host:port",
  // or several of them separated by commas (one cluster). Required.
  std::string url;
  // Prepended to each message's destination to make its subject. Default
  // empty: the destination is the subject.
  std::string subject_prefix;
  // Prepended to the entry id to make the Nats-Msg-Id. Default empty. Set
  // it when several outboxes (stores) publish into one stream: their entry
  // ids overlap, and JetStream would drop one store's message as a
  // duplicate of another's.
  std::string msg_id_prefix;
  // How long Send waits for its acknowledgement, and SendBatch for the
  // last of its batch once every message is handed over; a message without
  // one by then is kUnavailable (and may have been stored: its retry is
  // then dropped as a duplicate). Default 5 s.
  absl::Duration ack_timeout = absl::Seconds(5);
  // How long Connect's single attempt waits per server. Default 2 s.
  absl::Duration connect_timeout = absl::Seconds(2);
  // After the connection is lost, the wait between reconnect attempts
  // (forever; sends fail with kUnavailable meanwhile). Default 2 s
  // (libnats's own); shorter resumes sooner and probes a dead broker more.
  absl::Duration reconnect_wait = absl::Seconds(2);
  // Most messages awaiting their acknowledgement at once (of one SendBatch,
  // or of the two batches a publisher keeps in flight); a larger batch
  // waits for room (at most ack_timeout). Default 4096.
  int max_in_flight = 4096;
  // The connection's name, shown by the server's monitoring. Default
  // "eventstore-outbox".
  std::string connection_name = "eventstore-outbox";
  // A stream to create when absent. Default: none.
  NatsStreamOptions stream;
};

// Counters since Connect, for monitoring.
struct NatsOutboxSinkStats {
  // Messages JetStream acknowledged...
  int64_t acknowledged = 0;
  // ...of which it had stored before, within the duplicate window (a
  // resend), and so dropped.
  int64_t duplicates = 0;
  // Messages whose send returned an error.
  int64_t failed = 0;
  // Reconnections after the connection was lost.
  int64_t reconnects = 0;
};

class NatsOutboxSink : public OutboxSink {
 public:
  // Connects once (no retry: the caller decides how to retry), checks that
  // the server runs JetStream, and creates options.stream when set and
  // absent. Errors: kInvalidArgument naming the option that is wrong (a URL
  // libnats cannot parse, an invalid subject prefix); kUnavailable naming
  // the (masked) URL when no server answers; kUnauthenticated when the
  // server refuses the credentials; kFailedPrecondition when JetStream is
  // not enabled on the server or the stream cannot be created.
  static absl::StatusOr<std::unique_ptr<NatsOutboxSink>> Connect(
      NatsOutboxSinkOptions options);

  // Closes the connection.
  ~NatsOutboxSink() override = default;

  // Publishes one message and waits for its acknowledgement.
  absl::Status Send(const OutboxEntry& entry) override = 0;

  // Publishes the batch asynchronously, in order, and waits for all the
  // acknowledgements (see the overview). Returns one status per entry. An
  // entry whose id appears earlier in the batch is sent once and gets the
  // earlier one's status.
  std::vector<absl::Status> SendBatch(
      absl::Span<const OutboxEntry> entries) override = 0;

  // SendBatch in two halves (OutboxSink::PipelinesBatches() is true): the
  // publisher hands the next batch over while the acknowledgements of the
  // one before are still coming. A batch whose wait runs out takes back
  // every unacknowledged message, those of the batch begun after it too
  // (they then fail with kUnavailable when that batch ends).

  virtual NatsOutboxSinkStats stats() const = 0;

  // options.url with credentials masked.
  virtual const std::string& masked_url() const = 0;
};

// `url` (one URL or a comma-separated list) with the password of each
// "scheme://user:password@" and the token of each "scheme://token@"
// replaced by "***".
std::string MaskNatsUrl(std::string_view url);

}  // namespace eventstore

#endif  // EVENTSTORE_PROJECTIONS_SINKS_NATS_NATS_OUTBOX_SINK_H_
