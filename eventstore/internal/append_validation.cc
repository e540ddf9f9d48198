#include "eventstore/internal/append_validation.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace eventstore::internal {
namespace {

// Printable for messages: the first 64 bytes, control characters escaped.
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

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80;  // allowed range of the second byte
  unsigned char hi = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  const unsigned char second = static_cast<unsigned char>(s[i + 1]);
  if (second < lo || second > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  return n;
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

}  // namespace

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

absl::StatusOr<std::vector<PreparedEvent>> PrepareAppend(
    const StoreLimits& limits, const AppendRequest& request) {
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
  std::vector<PreparedEvent> prepared(request.events.size());
  absl::flat_hash_set<Uuid> seen;
  if (request.events.size() > 1) seen.reserve(request.events.size());
  for (size_t i = 0; i < request.events.size(); ++i) {
    const EventData& event = request.events[i];
    PreparedEvent& out = prepared[i];
    out.source = &event;
    status = ValidateEventType(limits, i, event.type);
    if (!status.ok()) return status;
    if (event.payload.size() > limits.max_payload_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].payload: ", event.payload.size(),
                       " bytes, over the limit of ", limits.max_payload_bytes));
    }
    if (event.metadata.ByteSizeLong() > 0) {
      event.metadata.SerializeToString(&out.metadata);
      if (out.metadata.size() > limits.max_metadata_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("events[", i, "].metadata: ", out.metadata.size(),
                         " bytes serialized, over the limit of ",
                         limits.max_metadata_bytes));
      }
    }
    out.id = event.id.IsNil() ? Uuid::Generate() : event.id;
    if (request.events.size() > 1 && !seen.insert(out.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].id: ", out.id.ToString(),
                       " appears twice in the batch"));
    }
  }
  return prepared;
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
  return result;
}

}  // namespace eventstore::internal
