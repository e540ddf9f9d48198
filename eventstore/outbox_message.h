// OutboxMessage: a message to publish to another system, enqueued in the
// same transaction as an append (the transactional outbox).
//
//   eventstore::OutboxMessage message;
//   message.destination = "billing";
//   message.key = "order-1";
//   message.payload = invoice_requested.SerializeAsString();
//   eventstore::AppendRequest request;
//   request.stream = "order-1";
//   request.expected = eventstore::ExpectedVersion::Exactly(3);
//   request.events = events;
//   request.outbox = {&message, 1};
//   store->Append(request);  // events and message commit together, or neither

#ifndef EVENTSTORE_OUTBOX_MESSAGE_H_
#define EVENTSTORE_OUTBOX_MESSAGE_H_

#include <map>
#include <string>

namespace eventstore {

// Headers an append sets on the outbox messages it enqueues, from its first
// event (a header the message already has is kept): the metadata's
// correlation and causation ids, the event's protobuf type, and the W3C
// trace context (kTraceparentHeader, kTracestateHeader in tracing.h). A
// broker sink passes every header on in the broker's conventions
// (docs/outbox.md).
inline constexpr char kCorrelationIdHeader[] = "correlation-id";
inline constexpr char kCausationIdHeader[] = "causation-id";
inline constexpr char kEventTypeHeader[] = "event-type";

struct OutboxMessage {
  // Where the publisher sends it (a topic, a queue, a URL): the sink decides
  // what it means. Required, at most 255 bytes.
  std::string destination;
  // Partitioning or deduplication key for the sink; may be empty.
  std::string key;
  // The message body. At most StoreLimits::max_payload_bytes.
  std::string payload;
  // Free headers for the sink.
  std::map<std::string, std::string> headers;
};

}  // namespace eventstore

#endif  // EVENTSTORE_OUTBOX_MESSAGE_H_
