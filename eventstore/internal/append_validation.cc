#include "eventstore/internal/append_validation.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "eventstore/internal/event_checksum.h"
#include "eventstore/internal/subject_key_rules.h"
#include "eventstore/internal/utf8.h"
#include "eventstore/outbox_message.h"
#include "eventstore/status_macros.h"
#include "eventstore/tracing.h"

namespace eventstore::internal {

std::string Shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

namespace {

// kInvalidArgument naming the field when `value` is not valid UTF-8.
absl::Status CheckUtf8(std::string_view prefix, std::string_view field,
                       std::string_view value) {
  const std::optional<size_t> bad = FirstInvalidUtf8(value);
  if (!bad.has_value()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(prefix), ".", std::string(field),
                   " is not valid UTF-8 (at byte ", *bad, ")"));
}

absl::Status ValidateEventType(const StoreLimits& limits, size_t index,
                               std::string_view type) {
  if (type.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("events[", index, "].type: is empty"));
  }
  if (type.size() > limits.max_event_type_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events[", index, "].type: ", type.size(), " bytes, over the limit of ",
        limits.max_event_type_bytes));
  }
  for (char c : type) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '.';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", index, "].type: '", Shown(type),
          "' is not a protobuf full name (letters, digits, '_' and '.')"));
    }
  }
  return absl::OkStatus();
}

// kInvalidArgument naming events[index].metadata.traceparent or
// .tracestate when the event's trace context is not valid W3C trace context.
absl::Status ValidateTraceContext(size_t index,
                                  const v1::EventMetadata& metadata) {
  const std::string& traceparent = metadata.traceparent();
  const std::string& tracestate = metadata.tracestate();
  if (traceparent.empty() && tracestate.empty()) return absl::OkStatus();
  if (traceparent.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events[", index, "].metadata.tracestate: set without a traceparent"));
  }
  absl::Status status = ValidateTraceparent(traceparent);
  if (status.ok()) status = ValidateTracestate(tracestate);
  if (status.ok()) return status;
  // The message starts with the field's name ("traceparent: ...").
  std::string message =
      absl::StrCat("events[", index, "].metadata.", status.message());
  if (absl::StartsWith(status.message(), "traceparent")) {
    absl::StrAppend(&message, " ('", Shown(traceparent), "')");
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::Status ValidateReadStreamOptions(const ReadStreamOptions& options) {
  if (options.max_count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_count: ", options.max_count, " is negative"));
  }
  if (options.from_version.has_value() && *options.from_version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_version: ", *options.from_version, " is negative"));
  }
  return absl::OkStatus();
}

absl::Status ValidateStreamName(const StoreLimits& limits,
                                std::string_view stream) {
  if (stream.empty()) {
    return absl::InvalidArgumentError("stream: the name is empty");
  }
  if (stream.size() > limits.max_stream_name_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stream: the name is ", stream.size(), " bytes, over the limit of ",
        limits.max_stream_name_bytes, " ('", Shown(stream), "')"));
  }
  for (size_t i = 0; i < stream.size();) {
    const unsigned char c = static_cast<unsigned char>(stream[i]);
    if (c <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stream: '", Shown(stream), "' has a control or white-space ",
          "character at byte ", i));
    }
    const size_t n = Utf8SequenceLength(stream, i);
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stream: '", Shown(stream), "' is not valid UTF-8 at byte ", i));
    }
    i += n;
  }
  return absl::OkStatus();
}

absl::Status ValidateMetadataText(std::string_view prefix,
                                  const v1::EventMetadata& metadata) {
  ES_RETURN_IF_ERROR(
      CheckUtf8(prefix, "correlation_id", metadata.correlation_id()));
  ES_RETURN_IF_ERROR(
      CheckUtf8(prefix, "causation_id", metadata.causation_id()));
  ES_RETURN_IF_ERROR(CheckUtf8(prefix, "tenant_id", metadata.tenant_id()));
  ES_RETURN_IF_ERROR(CheckUtf8(prefix, "actor", metadata.actor()));
  for (const auto& [key, value] : metadata.properties()) {
    ES_RETURN_IF_ERROR(CheckUtf8(prefix, "properties key", key));
    ES_RETURN_IF_ERROR(CheckUtf8(
        prefix, absl::StrCat("properties['", Shown(key), "']"), value));
  }
  return absl::OkStatus();
}

namespace {

// The rules of crypto-shredding's metadata (see PrepareAppend).
absl::Status ValidatePayloadEncryption(size_t i, const EventData& event) {
  const v1::EventMetadata& m = event.metadata;
  if (m.subject_id().empty() && m.payload_encryption().empty()) {
    return absl::OkStatus();
  }
  if (m.subject_id().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events[", i,
        "].metadata.payload_encryption: set without a "
        "subject_id; an encrypted payload belongs to a data subject"));
  }
  if (m.payload_encryption().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "events[", i,
        "]: it has a data subject (metadata.subject_id) but "
        "this store does not encrypt; open it as an EncryptedEventStore with "
        "the master key (eventstore/crypto/encrypted_event_store.h). Nothing "
        "was written: a subject's payload is never stored in the clear"));
  }
  if (m.payload_encryption() != kPayloadEncryptionXChaCha20) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events[", i, "].metadata.payload_encryption: '",
        Shown(m.payload_encryption()), "' is not a known encryption (",
        std::string(kPayloadEncryptionXChaCha20), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSubjectKeyWrites(
    const StoreLimits& limits, absl::Span<const SubjectKeyWrite> writes) {
  absl::flat_hash_set<std::string_view> seen;
  for (size_t i = 0; i < writes.size(); ++i) {
    const SubjectKeyWrite& w = writes[i];
    absl::Status status = ValidateSubject(limits, w.subject);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("subject_keys[", i, "].", status.message()));
    }
    if (!seen.insert(w.subject).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("subject_keys[", i, "].subject: '", Shown(w.subject),
                       "' is given twice in one append"));
    }
    if (w.wrapped_key.empty()) {
      if (!w.master_key_id.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "subject_keys[", i,
            "].master_key_id: set without a wrapped_key (a write without a "
            "key only records the subject's stream)"));
      }
      continue;
    }
    status = ValidateWrappedKey(absl::StrCat("subject_keys[", i, "]."),
                                w.wrapped_key, w.master_key_id);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PreparedEvent>> PrepareAppend(
    const StoreLimits& limits, const AppendRequest& request, bool system) {
  absl::Status status = ValidateStreamName(limits, request.stream);
  if (!status.ok()) return status;
  if (request.events.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("events: the batch for stream '", Shown(request.stream),
                     "' is empty; an append needs at least one event"));
  }
  if (request.events.size() > limits.max_batch_events) {
    return absl::InvalidArgumentError(absl::StrCat(
        "events: ", request.events.size(), " events in one append, over the ",
        "limit of ", limits.max_batch_events));
  }
  if (request.expected.kind() == ExpectedVersion::Kind::kExactly &&
      request.expected.version() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected version: Exactly(", request.expected.version(),
        ") is negative; versions start at 1 and an absent stream is 0"));
  }
  status = ValidateOutboxMessages(limits, request.outbox);
  if (!status.ok()) return status;
  status = ValidateSubjectKeyWrites(limits, request.subject_keys);
  if (!status.ok()) return status;
  std::vector<PreparedEvent> prepared(request.events.size());
  absl::flat_hash_set<Uuid> seen;
  if (request.events.size() > 1) seen.reserve(request.events.size());
  for (size_t i = 0; i < request.events.size(); ++i) {
    const EventData& event = request.events[i];
    PreparedEvent& out = prepared[i];
    out.source = &event;
    status = ValidateEventType(limits, i, event.type);
    if (!status.ok()) return status;
    if (!system && event.type == kStreamDeletedType) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].type: '", event.type,
                       "' is reserved for the store's own deletion markers "
                       "(DeleteStream writes them)"));
    }
    status = ValidatePayloadEncryption(i, event);
    if (!status.ok()) return status;
    if (event.payload.size() > limits.max_payload_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].payload: ", event.payload.size(),
                       " bytes, over the limit of ", limits.max_payload_bytes));
    }
    SerializeMetadata(event.metadata, out.metadata);
    if (out.metadata.size() > limits.max_metadata_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", i, "].metadata: ", out.metadata.size(),
          " bytes serialized, over the limit of ", limits.max_metadata_bytes));
    }
    if (!out.metadata.empty()) {
      ES_RETURN_IF_ERROR(ValidateMetadataText(
          absl::StrCat("events[", i, "].metadata"), event.metadata));
      ES_RETURN_IF_ERROR(ValidateTraceContext(i, event.metadata));
    }
    out.id = event.id.IsNil() ? Uuid::Generate() : event.id;
    if (request.events.size() > 1 && !seen.insert(out.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].id: ", out.id.ToString(),
                       " appears twice in the batch"));
    }
    out.checksum = EventChecksum(out.id.bytes(), request.stream, event.type,
                                 out.metadata, event.payload);
  }
  return prepared;
}

namespace {

// Adds to `message` the headers OutboxWithEventHeaders takes from `first`.
void AddEventHeaders(const EventData& first, OutboxMessage& message) {
  const v1::EventMetadata& metadata = first.metadata;
  if (!metadata.traceparent().empty() &&
      message.headers.count(kTraceparentHeader) == 0) {
    message.headers[kTraceparentHeader] = metadata.traceparent();
    if (metadata.tracestate().empty()) {
      message.headers.erase(kTracestateHeader);
    } else {
      message.headers[kTracestateHeader] = metadata.tracestate();
    }
  }
  // emplace keeps a header the message has.
  auto add = [&](const char* name, const std::string& value) {
    if (!value.empty()) message.headers.emplace(name, value);
  };
  add(kCorrelationIdHeader, metadata.correlation_id());
  add(kCausationIdHeader, metadata.causation_id());
  add(kEventTypeHeader, first.type);
}

// Whether AddEventHeaders would change `message`.
bool LacksEventHeaders(const EventData& first, const OutboxMessage& message) {
  const v1::EventMetadata& metadata = first.metadata;
  auto lacks = [&](const char* name, const std::string& value) {
    return !value.empty() && message.headers.count(name) == 0;
  };
  return lacks(kTraceparentHeader, metadata.traceparent()) ||
         lacks(kCorrelationIdHeader, metadata.correlation_id()) ||
         lacks(kCausationIdHeader, metadata.causation_id()) ||
         lacks(kEventTypeHeader, first.type);
}

}  // namespace

absl::Span<const OutboxMessage> OutboxWithEventHeaders(
    const AppendRequest& request, std::vector<OutboxMessage>& copies) {
  if (request.outbox.empty() || request.events.empty()) return request.outbox;
  const EventData& first = request.events.front();
  bool any = false;
  for (const OutboxMessage& message : request.outbox) {
    if (LacksEventHeaders(first, message)) any = true;
  }
  if (!any) return request.outbox;
  copies.assign(request.outbox.begin(), request.outbox.end());
  for (OutboxMessage& message : copies) AddEventHeaders(first, message);
  return copies;
}

absl::Status ValidateOutboxMessages(const StoreLimits& limits,
                                    absl::Span<const OutboxMessage> messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const OutboxMessage& m = messages[i];
    if (m.destination.empty() || m.destination.size() > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat("outbox[", i, "].destination: ", m.destination.size(),
                       " bytes; it must be 1 to 255"));
    }
    if (m.payload.size() > limits.max_payload_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("outbox[", i, "].payload: ", m.payload.size(),
                       " bytes, over the limit of ", limits.max_payload_bytes));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<AppendResult> ResolveStoredIds(
    const AppendRequest& request, absl::Span<const PreparedEvent> events,
    absl::Span<const std::optional<StoredEventRef>> stored) {
  auto duplicate = [&](size_t i) {
    return absl::AlreadyExistsError(
        absl::StrCat("events[", i, "].id: event ", events[i].id.ToString(),
                     " is already stored",
                     stored[i].has_value()
                         ? absl::StrCat(" in stream '", stored[i]->stream,
                                        "' at version ", stored[i]->version)
                         : std::string(),
                     "; the batch for stream '", std::string(request.stream),
                     "' was not written"));
  };
  size_t first_found = 0;
  while (first_found < stored.size() && !stored[first_found].has_value()) {
    ++first_found;
  }
  if (events.empty() || stored.size() != events.size() ||
      first_found == stored.size()) {
    return absl::InternalError(
        "ResolveStoredIds: called without a stored id (a backend bug)");
  }
  for (size_t i = 0; i < stored.size(); ++i) {
    if (!stored[i].has_value()) return duplicate(first_found);
    if (stored[i]->stream != request.stream) return duplicate(i);
    if (stored[i]->version != stored[0]->version + static_cast<int64_t>(i)) {
      return duplicate(i);
    }
  }
  const int64_t first_version = stored[0]->version;
  const ExpectedVersion expected = request.expected;
  const bool consistent =
      (expected.kind() == ExpectedVersion::Kind::kExactly &&
       first_version == expected.version() + 1) ||
      (expected.kind() == ExpectedVersion::Kind::kNoStream &&
       first_version == 1) ||
      (expected.kind() == ExpectedVersion::Kind::kStreamExists &&
       first_version > 1) ||
      expected.kind() == ExpectedVersion::Kind::kAny;
  if (!consistent) return duplicate(0);
  AppendResult result;
  result.next_expected_version = stored.back()->version;
  result.first_position = stored.front()->position;
  result.last_position = stored.back()->position;
  result.idempotent_retry = true;
  return result;
}

bool FailsAloneInBatch(const absl::Status& status) {
  // The stream's fault, not the database's.
  if (IsHardDeletedStream(status)) return true;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
      return true;
    default:
      return false;
  }
}

}  // namespace eventstore::internal
