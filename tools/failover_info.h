// What `eventstore info` reads of failover (docs/cli.md): the state a
// FailoverEventStore's journal holds, the copies a store holds (a
// StoreReplica's, or a `migrate` target's), and, for a failover URL, the
// journal and the replica measured against the primary. Everything is read
// without writing: the stores are opened read-only and no
// FailoverEventStore or StoreReplica is made (one would replay the journal
// and write the replica that a running application owns). The printing is
// in info_command.cc.
//
//   ES_ASSIGN_OR_RETURN(StoreCopies copies, ReadStoreCopies(*store));
//   if (copies.journal) ... copies.journal->pending_appends ...
//   ES_ASSIGN_OR_RETURN(FailoverInfo failover,
//                       ReadFailoverInfo(parsed_url, primary.get(), error));

#ifndef EVENTSTORE_TOOLS_FAILOVER_INFO_H_
#define EVENTSTORE_TOOLS_FAILOVER_INFO_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_importer.h"
#include "eventstore/event_store.h"
#include "eventstore/failover_url.h"
#include "eventstore/position.h"

namespace eventstore::tools {

// A FailoverEventStore's journal, as its file holds it.
struct JournalInfo {
  // The failover-replay checkpoint: journal events up to it are replayed
  // (or parked). Start() when none.
  Position replayed;
  // Journaled appends after the checkpoint (each counted once, by its
  // journal entry id), and their events (outbox messages not counted).
  int64_t pending_appends = 0;
  int64_t pending_events = 0;
  // Appends the primary refused on replay, still parked: the journal's
  // dead letters of failover-replay (`eventstore dlq JOURNAL list`).
  int64_t parked = 0;
};

// The journal state `store` holds; nullopt when it is no failover journal
// (no "failover:" stream and no failover-replay checkpoint).
absl::StatusOr<std::optional<JournalInfo>> ReadJournalInfo(EventStore& store);

// What `info` adds for a plain store: its journal state when it is a
// journal, and the copies into it (EventImporter::ListMigrations; none for
// a store that cannot list them).
struct StoreCopies {
  std::optional<JournalInfo> journal;
  std::vector<MigrationState> copies;
};
absl::StatusOr<StoreCopies> ReadStoreCopies(EventStore& store);

// The replica of a failover URL, read from its file and measured against
// the primary.
struct ReplicaInfo {
  // The replica's URL (a SQLite URL: no secret).
  std::string location;
  // False while the file does not exist (no sync has run yet).
  bool exists = false;
  // The streams copied: empty for every stream.
  std::vector<std::string> prefixes;
  // The copy of this primary the file holds (the one whose migration id is
  // the primary's StoreId(), or the latest when the primary cannot be
  // reached); nullopt when nothing was copied yet.
  std::optional<MigrationState> state;
  // Measured against the primary; nullopt when it cannot be reached.
  std::optional<Position> primary_head;
  // Events of the copied streams after the replica's position (counted up
  // to kMaxLagCount: lag_capped then), and how long ago the oldest of them
  // was recorded (zero when none).
  int64_t lag_events = 0;
  bool lag_capped = false;
  absl::Duration lag_time;
  // The replica's position is after the primary's head: the primary was
  // restored from an older backup (the replica refuses to sync).
  bool ahead = false;
};

// Events counted at most for ReplicaInfo::lag_events (with prefixes, the
// primary's log is read to count them).
inline constexpr int64_t kMaxLagCount = 100'000;

struct FailoverInfo {
  // What a FailoverEventStore opened now would be in: "fallback" when the
  // primary cannot be reached, else "recovering" when appends are pending,
  // else "primary". (A running store's own mode is in its Status().)
  std::string mode;
  std::string journal_location;
  // False while the journal file does not exist (nothing was journaled).
  bool journal_exists = false;
  JournalInfo journal;
  // Why the primary cannot be reached (the message masked); OK when it can.
  absl::Status primary_error;
  std::optional<ReplicaInfo> replica;
};

// The failover state of `url`'s journal and replica. `primary` is the
// primary opened read-only, or null when it cannot be reached
// (`primary_error` says why). Errors reading the journal or the replica
// (other than their files not existing) are returned.
absl::StatusOr<FailoverInfo> ReadFailoverInfo(
    const FailoverUrl& url, EventStore* primary,
    const absl::Status& primary_error);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_FAILOVER_INFO_H_
