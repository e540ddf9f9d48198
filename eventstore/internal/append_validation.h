// Backend-neutral checks and decisions of an append, shared by every
// backend so that they agree to the letter.

#ifndef EVENTSTORE_INTERNAL_APPEND_VALIDATION_H_
#define EVENTSTORE_INTERNAL_APPEND_VALIDATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "eventstore/event_store.h"
#include "eventstore/limits.h"

namespace eventstore::internal {

// One event of a validated append, ready to be written.
struct PreparedEvent {
  const EventData* source = nullptr;
  // The event's id, generated when the source's is nil.
  Uuid id;
  // The serialized metadata (internal::SerializeMetadata); empty when the
  // metadata is empty.
  std::string metadata;
  // The checksum to store (internal::EventChecksum).
  uint32_t checksum = 0;
};

// `s` made printable for an error message: its first 64 bytes, control
// characters escaped, "..." when cut.
std::string Shown(std::string_view s);

// kInvalidArgument naming the field when the stream name breaks `limits`.
absl::Status ValidateStreamName(const StoreLimits& limits,
                                std::string_view stream);

// kInvalidArgument naming the field for ReadStreamOptions no store takes:
// a negative max_count or from_version.
absl::Status ValidateReadStreamOptions(const ReadStreamOptions& options);

// kInvalidArgument naming the field ("<prefix>.correlation_id is not valid
// UTF-8 (at byte 4)") when a string of `metadata` (correlation, causation
// and tenant id, actor, property keys and values) is not valid UTF-8:
// protobuf refuses to parse such a string, so an event holding one could be
// stored but never read back.
absl::Status ValidateMetadataText(std::string_view prefix,
                                  const v1::EventMetadata& metadata);

// Checks the request against `limits` (stream name, batch size, each
// event's type, payload and metadata size, metadata strings that are not
// valid UTF-8, a metadata traceparent or tracestate that is not valid W3C
// trace context (tracing.h; a tracestate needs a traceparent), an id twice
// in the batch, a negative exact version),
// serializes the metadata and computes each event's checksum. Nothing here
// touches a database.
//
// Also refuses what only the library may write: an event of a reserved type
// (kStreamDeletedType) unless `system` (a deletion's own marker), and an
// event with a data subject (metadata.subject_id) whose payload is not
// encrypted (kFailedPrecondition: the store was not opened to encrypt, and
// never stores such a payload in the clear), or marked encrypted in a way
// this code does not know (kInvalidArgument).
absl::StatusOr<std::vector<PreparedEvent>> PrepareAppend(
    const StoreLimits& limits, const AppendRequest& request,
    bool system = false);

// The outbox messages an append enqueues: request.outbox, with headers
// from the first event that a message does not already have (outbox_message.h):
// - its metadata's correlation_id and causation_id (kCorrelationIdHeader,
//   kCausationIdHeader), when set;
// - its type (kEventTypeHeader);
// - its metadata.traceparent (kTraceparentHeader), and its tracestate as
//   the `tracestate` header; a tracestate header of a message without a
//   traceparent is removed when the event has none (it belongs to another
//   traceparent).
// request.outbox itself when nothing changes (every message already has
// every such header); else a view of `copies`, which it fills.
// REQUIRES: PrepareAppend(request) succeeded (the trace context is valid).
absl::Span<const OutboxMessage> OutboxWithEventHeaders(
    const AppendRequest& request, std::vector<OutboxMessage>& copies);

// Checks outbox messages: a destination of 1 to 255 bytes, a payload
// within limits.max_payload_bytes. kInvalidArgument naming the message.
absl::Status ValidateOutboxMessages(const StoreLimits& limits,
                                    absl::Span<const OutboxMessage> messages);

// Checks an append's key table rows (AppendRequest::subject_keys, part of
// PrepareAppend): valid subjects, none twice, and a valid wrapped key and
// master key id where a key is given (none without one). kInvalidArgument
// naming "subject_keys[i]...".
absl::Status ValidateSubjectKeyWrites(const StoreLimits& limits,
                                      absl::Span<const SubjectKeyWrite> writes);

// Where an already stored event with a batch's id stands.
struct StoredEventRef {
  std::string stream;
  int64_t version = 0;
  Position position;
};

// Decides what an append returns when some of its ids are already stored:
// the original result, with idempotent_retry set, for an exact retry (every
// id stored, in the request's stream, at consecutive versions in batch
// order, consistent with the expected version), else kAlreadyExists naming
// the first stored id.
// `stored[i]` is the stored event with the id of `events[i]`, if any.
// REQUIRES: stored.size() == events.size() > 0 and some stored[i] is set
// (else kInternal).
absl::StatusOr<AppendResult> ResolveStoredIds(
    const AppendRequest& request, absl::Span<const PreparedEvent> events,
    absl::Span<const std::optional<StoredEventRef>> stored);

// Whether an append that failed with `status` fails alone in an AppendEach
// batch (its input, expected version or ids are at fault: kInvalidArgument,
// kAborted, kAlreadyExists, and HardDeletedStreamError: the stream was
// hard-deleted); any other failure is the database's and ends the batch. The
// backends' AppendEach share this rule.
bool FailsAloneInBatch(const absl::Status& status);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_APPEND_VALIDATION_H_
