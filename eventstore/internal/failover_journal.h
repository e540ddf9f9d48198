// The journal of a FailoverEventStore (failover_event_store.h): how a
// journaled append is written as journal events (the properties it adds,
// its outbox messages' ids), how journal events are read back as appends
// (JournalEntry), and the expected-version arithmetic the store does on
// them. Internal to the library.

#ifndef EVENTSTORE_INTERNAL_FAILOVER_JOURNAL_H_
#define EVENTSTORE_INTERNAL_FAILOVER_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/expected_version.h"
#include "eventstore/outbox_message.h"
#include "eventstore/recorded_event.h"
#include "eventstore/uuid.h"

namespace eventstore::internal {

// The properties on every journaled event of one append: the target stream,
// the expected version (ExpectedVersion::ToWire), the append's journal id
// (its first event's id) and how many journal events it has.
constexpr char kStreamKey[] = "eventstore.failover.stream";
constexpr char kExpectedKey[] = "eventstore.failover.expected";
constexpr char kEntryKey[] = "eventstore.failover.entry";
constexpr char kSizeKey[] = "eventstore.failover.size";
// The type of the journal events that carry an append's outbox messages.
constexpr char kOutboxType[] = "eventstore.v1.JournaledOutboxMessage";

// The id of the journal event holding outbox message `index` of the append
// whose first event is `first`: derived, so that a retried append journals
// the same ids (and is recognised as a retry). The variant bits stay, the
// version nibble becomes 8 (custom) and the last two bytes carry the index.
Uuid OutboxMessageId(const Uuid& first, size_t index);

// One journaled append, read back from the journal.
struct JournalEntry {
  std::string id;  // kEntryKey
  int64_t size = 0;
  std::string stream;
  ExpectedVersion expected = ExpectedVersion::Any();
  std::vector<EventData> events;
  std::vector<OutboxMessage> outbox;
  // The journal's own events, to park them.
  std::vector<RecordedEvent> journal_events;
  // Why the entry cannot be replayed as written (a damaged journal); empty
  // when it can.
  std::string damage;

  bool complete() const {
    return !damage.empty() ||
           static_cast<int64_t>(journal_events.size()) == size;
  }

  // Marks an entry the journal holds only part of as damaged.
  void MarkIncomplete();
};

// Splits journal events (in version order) into entries. The last entry may
// be incomplete when `events` ends inside it.
std::vector<JournalEntry> SplitEntries(std::vector<RecordedEvent> events);

// The version a stream is at when `expected` holds and says so: Exactly(v)
// is v, NoStream 0; -1 (unknown) for Any and StreamExists.
int64_t BaseOf(ExpectedVersion expected);

// Whether `expected` holds for a stream at `version` (0: absent).
bool Holds(ExpectedVersion expected, int64_t version);

// The journaled appends of one stream not yet replayed (or parked).
struct PendingStream {
  // How many (the store forgets the stream when none is left).
  int64_t appends = 0;
  // The stream's version before the first of them, and after the last as
  // written (when they replay as journaled); -1 when unknown.
  int64_t base = -1;
  int64_t version = -1;
  // The journal stream's version of the first one's first journal event.
  int64_t journal_from = 1;
};

// `options` applied to a whole stream `events` read forward, as ReadStream
// would apply them; kInvalidArgument for bad options.
absl::StatusOr<std::vector<RecordedEvent>> Slice(
    std::vector<RecordedEvent> events, const ReadStreamOptions& options);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_FAILOVER_JOURNAL_H_
