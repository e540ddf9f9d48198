#include "eventstore/internal/failover_journal.h"

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/status_macros.h"
#include "eventstore/v1/outbox.pb.h"

namespace eventstore::internal {
namespace {

const std::string* Property(const RecordedEvent& event, const char* key) {
  const auto& properties = event.metadata.properties();
  auto it = properties.find(key);
  return it == properties.end() ? nullptr : &it->second;
}

// The journal entry (append) `event` belongs to: its kEntryKey property, or
// its own id when it lacks one (a damaged journal).
std::string EntryId(const RecordedEvent& event) {
  const std::string* id = Property(event, kEntryKey);
  return id == nullptr ? event.id.ToString() : *id;
}

// Adds the journal event `event` to `entry` (started when empty).
void AddToEntry(RecordedEvent event, JournalEntry& entry) {
  const std::string* stream = Property(event, kStreamKey);
  const std::string* expected = Property(event, kExpectedKey);
  const std::string* size = Property(event, kSizeKey);
  int64_t wire = 0;
  int64_t count = 0;
  if (event.damaged()) {
    entry.damage = std::string(event.damage.message());
  } else if (stream == nullptr || expected == nullptr || size == nullptr ||
             !absl::SimpleAtoi(*expected, &wire) ||
             !absl::SimpleAtoi(*size, &count) || count < 1) {
    entry.damage =
        absl::StrCat("journal event ", event.id.ToString(), " (version ",
                     event.version, ") lacks the failover properties");
  } else if (entry.journal_events.empty()) {
    entry.stream = *stream;
    entry.expected = ExpectedVersion::FromWire(wire);
    entry.size = count;
  }
  if (entry.damage.empty()) {
    if (event.type == kOutboxType) {
      v1::JournaledOutboxMessage message;
      if (!message.ParseFromString(event.payload)) {
        entry.damage = absl::StrCat("journal event ", event.id.ToString(),
                                    " holds a corrupt outbox message");
      } else {
        OutboxMessage& out = entry.outbox.emplace_back();
        out.destination = message.destination();
        out.key = message.key();
        out.payload = message.payload();
        out.headers.insert(message.headers().begin(), message.headers().end());
      }
    } else {
      EventData& out = entry.events.emplace_back();
      out.id = event.id;
      out.type = event.type;
      out.payload = event.payload;
      out.metadata = event.metadata;
      auto* properties = out.metadata.mutable_properties();
      for (const char* key : {kStreamKey, kExpectedKey, kEntryKey, kSizeKey}) {
        properties->erase(key);
      }
    }
  }
  entry.journal_events.push_back(std::move(event));
}

}  // namespace

// The id of the journal event holding outbox message `index` of the append
// whose first event is `first`: derived, so that a retried append journals
// the same ids (and is recognised as a retry). The variant bits stay, the
// version nibble becomes 8 (custom) and the last two bytes carry the index.
Uuid OutboxMessageId(const Uuid& first, size_t index) {
  std::array<char, 16> bytes;
  std::copy(first.bytes().begin(), first.bytes().end(), bytes.begin());
  bytes[6] = static_cast<char>((bytes[6] & 0x0f) | 0x80);
  bytes[14] = static_cast<char>(bytes[14] ^ ((index + 1) >> 8));
  bytes[15] = static_cast<char>(bytes[15] ^ (index + 1));
  return *Uuid::FromBytes(std::string_view(bytes.data(), bytes.size()));
}

void JournalEntry::MarkIncomplete() {
  if (complete()) return;
  damage = absl::StrCat("journal entry ", id, " holds ", journal_events.size(),
                        " of its ", size, " events");
}

// Splits journal events (in version order) into entries. The last entry may
// be incomplete when `events` ends inside it.
std::vector<JournalEntry> SplitEntries(std::vector<RecordedEvent> events) {
  std::vector<JournalEntry> entries;
  for (RecordedEvent& event : events) {
    const std::string entry_id = EntryId(event);
    if (entries.empty() || entries.back().complete() ||
        entries.back().id != entry_id) {
      if (!entries.empty()) entries.back().MarkIncomplete();
      entries.emplace_back().id = entry_id;
    }
    AddToEntry(std::move(event), entries.back());
  }
  return entries;
}

// The version a stream is at when `expected` holds and says so: Exactly(v)
// is v, NoStream 0; -1 (unknown) for Any and StreamExists.
int64_t BaseOf(ExpectedVersion expected) {
  switch (expected.kind()) {
    case ExpectedVersion::Kind::kExactly:
      return expected.version();
    case ExpectedVersion::Kind::kNoStream:
      return 0;
    default:
      return -1;
  }
}

// Whether `expected` holds for a stream at `version` (0: absent).
bool Holds(ExpectedVersion expected, int64_t version) {
  switch (expected.kind()) {
    case ExpectedVersion::Kind::kExactly:
      return expected.version() == version;
    case ExpectedVersion::Kind::kNoStream:
      return version == 0;
    case ExpectedVersion::Kind::kStreamExists:
      return version > 0;
    case ExpectedVersion::Kind::kAny:
      return true;
  }
  return true;
}

// `options` applied to a whole stream `events` read forward, as ReadStream
// would apply them; kInvalidArgument for bad options.
absl::StatusOr<std::vector<RecordedEvent>> Slice(
    std::vector<RecordedEvent> events, const ReadStreamOptions& options) {
  ES_RETURN_IF_ERROR(ValidateReadStreamOptions(options));
  const bool forward = options.direction == Direction::kForward;
  const int64_t from = options.from_version.value_or(forward ? 1 : kUnlimited);
  std::vector<RecordedEvent> out;
  if (forward) {
    for (RecordedEvent& event : events) {
      if (static_cast<int64_t>(out.size()) >= options.max_count) break;
      if (event.version >= from) out.push_back(std::move(event));
    }
  } else {
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (static_cast<int64_t>(out.size()) >= options.max_count) break;
      if (it->version <= from) out.push_back(std::move(*it));
    }
  }
  return out;
}

}  // namespace eventstore::internal
