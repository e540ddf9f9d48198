// OutboxPublisher: sends the store's outbox messages (outbox_store.h) to
// another system through an OutboxSink.
//
//   class KafkaSink : public eventstore::OutboxSink {
//    public:
//     absl::Status Send(const eventstore::OutboxEntry& entry) override {
//       // entry.message.destination, .key, .payload, .headers; entry.id is
//       // unique and increasing: use it to drop duplicates downstream.
//     }
//   };
//
//   KafkaSink sink;
//   ES_ASSIGN_OR_RETURN(
//       std::unique_ptr<eventstore::OutboxPublisher> publisher,
//       eventstore::OutboxPublisher::Create(*store, sink));
//   ES_RETURN_IF_ERROR(publisher->Start());  // or RunOnce() from a job
//   ...
//   publisher->Stop();
//
// The publisher claims a batch (OutboxStore::Claim, under a lease of
// options.lease), hands it to the sink (OutboxSink::SendBatch: broker sinks
// keep the whole batch in flight; a sink that PipelinesBatches() gets the
// next batch before the acknowledgements of the one before are all in),
// marks what was delivered published in
// one transaction while the next batch is in flight, together with the
// claim of the batch after (OutboxStore::MarkPublishedAndClaim: the
// store's work overlaps the receiver's; the sink runs on a second thread
// of the publisher's, one call at a time), and each failure failed
// (OutboxStore::MarkFailed: retried later, given up as kFailed after
// max_attempts failed sends, or at once when the sink says the receiver
// will never take the message). Any number of publishers, in any processes,
// may run on one store: a claimed message is not claimed by another one
// until its lease expires.
//
// Delivery is at-least-once: a publisher that dies after Send and before
// MarkPublished leaves the message to be sent again when its lease expires
// (up to two batches: the one in flight, and the one before it, not yet
// marked; max_batches_in_flight + 1 with a sink that PipelinesBatches()).
// Sinks should drop duplicates by entry id. Order is the enqueue order
// within a batch, not across retries or publishers (docs/outbox.md).
//
// Thread safety: every method may be called from any thread. The sink is
// called by one thread at a time (not always the same one: a publisher
// sends from a thread of its own while it settles and claims). Order: a batch
// reaches the sink in enqueue order; a message whose send failed is retried
// after the later messages of its batch went out, and of up to
// max_batches_in_flight - 1 later batches with a sink that
// PipelinesBatches() (docs/outbox.md, "Order").

#ifndef EVENTSTORE_PROJECTIONS_OUTBOX_PUBLISHER_H_
#define EVENTSTORE_PROJECTIONS_OUTBOX_PUBLISHER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/log_sink.h"
#include "eventstore/outbox_store.h"
#include "eventstore/tracing.h"

namespace eventstore {

// Where outbox messages go: a message broker, a webhook, another service.
class OutboxSink {
 public:
  virtual ~OutboxSink() = default;
  // Delivers one message; OK means delivered (it is then marked published
  // and not sent again, barring a crash before that). An error is recorded
  // as a failed attempt; the message is retried later.
  virtual absl::Status Send(const OutboxEntry& entry) = 0;

  // Delivers one claimed batch, in enqueue (id) order, and returns one
  // status per entry, in the same order: OK means the receiver
  // acknowledged it. A sink whose receiver acknowledges asynchronously
  // (JetStream, RabbitMQ publisher confirms) overrides this to keep the
  // whole batch in flight and collect the acknowledgements, rather than pay
  // a round trip per message; it hands the messages over in batch order on
  // one connection, so that messages of one destination and key reach the
  // receiver in enqueue order. kInvalidArgument for a message the receiver
  // will never take (larger than its limit, say): the publisher gives it
  // up at once (kFailed) with the status's message as its error. Any other
  // error is a failed attempt, retried later.
  // This default calls Send for each entry, in order.
  virtual std::vector<absl::Status> SendBatch(
      absl::Span<const OutboxEntry> entries);

  // Several batches in flight (optional). SendBatch waits for a batch's
  // last acknowledgement before the next batch can go out, so the receiver
  // idles between batches. A sink that can split SendBatch in two returns
  // true from PipelinesBatches(), and the publisher then hands over the
  // next batch before it waits for the acknowledgements of the one before:
  // BeginBatch(entries) hands `entries` over, in order, after every batch
  // begun before, and returns without waiting for acknowledgements;
  // EndBatch() waits for the acknowledgements of the oldest batch begun and
  // not ended, and returns its statuses as SendBatch would (one per entry,
  // in order, the same meanings). The publisher keeps at most
  // OutboxPublisherOptions::max_batches_in_flight batches begun and not
  // ended, keeps each batch's entries alive and unchanged
  // until EndBatch returned for it, ends every batch it began, and does
  // not call Send or SendBatch while a batch is begun and not ended.
  // Called by one thread at a time, like the rest. Defaults: false, and
  // BeginBatch / EndBatch do nothing (an empty EndBatch counts as a failed
  // send of every message of the batch: a sink's bug).
  virtual bool PipelinesBatches() const { return false; }
  virtual void BeginBatch(absl::Span<const OutboxEntry> entries);
  virtual std::vector<absl::Status> EndBatch();
};

struct OutboxPublisherOptions {
  // Recorded as the claimer of the messages (OutboxEntry::claimed_by).
  // Default empty: "outbox-publisher-<pid>-<n>", unique in the process.
  std::string worker_name;

  // Messages claimed at once. Default 100.
  int batch_size = 100;

  // How long a claim lasts. A publisher that dies holds its batch this long
  // before another one may claim it. Default 30 s: longer than a sink takes
  // to settle a batch (the broker sinks give up waiting for
  // acknowledgements after a few seconds).
  absl::Duration lease = absl::Seconds(30);

  // With a sink that PipelinesBatches(): the most batches handed over
  // (BeginBatch) and not yet ended (EndBatch), in [1, 64]; 1 sends one
  // batch at a time (SendBatch). More batches in flight hide more of the
  // receiver's acknowledgement latency, which matters with small batches;
  // the price is a longer reach for a failure or a crash: a failed send is
  // retried after up to max_batches_in_flight - 1 later batches went out,
  // and a publisher that dies leaves up to max_batches_in_flight + 1
  // batches to be sent again (docs/outbox.md, "Order"). Default 4.
  int max_batches_in_flight = 4;

  // Failed sends of one message before it is given up (kFailed). Default
  // 10.
  int max_attempts = 10;

  // The background thread's wait after a batch with a failed send (or a
  // store error), doubling while they keep failing, up to max_backoff.
  // Each wait is jittered ("equal jitter"): a random time between half the
  // exponential delay and all of it, so publishers that failed together (a
  // database restart) do not retry in lockstep; max_backoff still bounds
  // every wait.
  // Defaults 500 ms and 30 s.
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(30);

  // When the outbox is empty, the background thread looks again after this
  // long, or sooner when an event is appended through the store
  // (EventStore::WaitForEvents). Default 1 s: the delay of a message
  // enqueued without an append, or by another process on SQLite.
  absl::Duration poll_interval = absl::Seconds(1);

  // Observability (docs/outbox.md, "Metrics, logs and traces"); each is off
  // when null, the default, and then costs a null check:
  // - instrumentation: each send (OnOutboxSend: published, failed or
  //   gave_up, with its latency) and the backlog (OnOutboxBacklog, from
  //   OutboxStore::Backlog: when a round of claims ends, and every
  //   poll_interval during a long one; one small indexed query);
  // - log_sink: failed sends (warning), messages given up (error), the
  //   background thread's store errors and backoff (warning); component
  //   "outbox_publisher";
  // - tracer: a span per send ("eventstore.outbox.send", a child of the
  //   message's traceparent / tracestate headers).
  std::shared_ptr<Instrumentation> instrumentation;
  std::shared_ptr<LogSink> log_sink;
  std::shared_ptr<Tracer> tracer;
};

// What one RunOnce did.
struct OutboxPublishResult {
  // Messages claimed, sent and marked published.
  int64_t published = 0;
  // Sends that failed: the message stays pending for a later attempt...
  int64_t failed_sends = 0;
  // ...unless it reached max_attempts: given up (kFailed).
  int64_t given_up = 0;
};

// Counters since the publisher was created, for monitoring.
struct OutboxPublisherStats {
  int64_t published = 0;
  int64_t failed_sends = 0;
  int64_t given_up = 0;
  // Between Start() and Stop().
  bool running = false;
  // The background thread's latest store error; OK once a round succeeded.
  absl::Status last_error;
};

class OutboxPublisher {
 public:
  // kInvalidArgument naming the option that is wrong.
  // REQUIRES: `store` and `sink` outlive the publisher.
  static absl::StatusOr<std::unique_ptr<OutboxPublisher>> Create(
      EventStore& store, OutboxSink& sink,
      OutboxPublisherOptions options = OutboxPublisherOptions());

  // Stops the background thread.
  virtual ~OutboxPublisher() = default;

  virtual const std::string& worker_name() const = 0;

  // Claims and sends batches until nothing is left to claim, or until a
  // batch has a failed send to retry (whose retry is left for the next
  // call, so that one call sends each message at most once).
  // kFailedPrecondition while started; else the first store error.
  virtual absl::StatusOr<OutboxPublishResult> RunOnce() = 0;

  // Starts a background thread that publishes as RunOnce does, waits
  // poll_interval when the outbox is empty, and backs off after failures.
  // kFailedPrecondition when already started.
  virtual absl::Status Start() = 0;

  // Stops the background thread after the batch in progress is settled
  // (sent and marked; every batch in flight with a sink that
  // PipelinesBatches()); a batch claimed but not yet handed to the sink is
  // given back (OutboxStore::Release, claimable at once; left to its lease
  // by a store that cannot release). Called while RunOnce runs on
  // another thread, makes that call return after the batch it is sending
  // (sent and marked): a job can be stopped without draining the outbox.
  // Does nothing else when not started.
  virtual void Stop() = 0;

  virtual OutboxPublisherStats stats() const = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_PROJECTIONS_OUTBOX_PUBLISHER_H_
