// SqliteStreamLifecycle: the stream lifecycle of the SQLite backend (the
// streams table, stream_lifecycle.h): reading and writing a stream's row,
// deletions, retention metadata, and Scavenge. The store (sqlite_event_
// store.cc) uses its statements on its own paths (appends, ReadStream,
// ReadAll) and delegates the lifecycle calls to it.
//
// Internal to the SQLite backend. Thread-safe: every write takes the
// database's writer lock (or runs under the caller's, for *Locked methods).
//
// Costs: an append reads the stream's row together with its highest
// version in one statement (one extra primary-key lookup); ReadStream reads
// the row first, in the same read transaction; ReadAll checks once per call
// whether any row can hide an event (AnyHidingRow) and runs the store's plain
// statement when none can, else the statement with ReadAllHidingCondition()
// (one primary-key lookup of the streams table per event, plus the stream's
// highest version for a stream with max_count).

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_STREAM_LIFECYCLE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_STREAM_LIFECYCLE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_database.h"
#include "eventstore/event_store.h"
#include "eventstore/expected_version.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/stream_rules.h"
#include "eventstore/stream_lifecycle.h"

namespace eventstore::sqlite {

class SqliteStreamLifecycle {
 public:
  // A stream as the lifecycle rules see it: its highest stored version (0
  // when none) and its streams-table row, if any.
  struct StreamState {
    int64_t max_stored = 0;
    std::optional<internal::StreamRow> row;

    // The highest version the stream ever had (AppendBase::last).
    int64_t last() const;
  };

  // Writes the events of `request` (already prepared) at versions last + 1
  // onwards through the store's insert path, inside the caller's
  // transaction.
  using InsertFn = std::function<absl::StatusOr<AppendResult>(
      SqliteConnection& conn, const AppendRequest& request,
      const std::vector<internal::PreparedEvent>& events, int64_t last)>;

  // `db` must outlive this object.
  explicit SqliteStreamLifecycle(SqliteDatabase* db) : db_(db) {}

  // --- used by the store's own paths ---------------------------------------

  // The stream's highest version and row, in one statement (so one
  // snapshot).
  static absl::StatusOr<StreamState> ReadState(SqliteConnection& conn,
                                               std::string_view stream);
  // Sets a soft-deleted stream's row back to live (an append revives it).
  // REQUIRES: inside the append's write transaction.
  static absl::Status Revive(SqliteConnection& conn, std::string_view stream,
                             int64_t now_micros);
  // Binds a stream read's parameters: ?1 the stream, ?2 the first version,
  // ?3 the most rows, and with a window (`window` not null) ?4 its lowest
  // version and ?5 its earliest recorded_at in microseconds (the smallest
  // int64 without max_age). For the store's and the importer's reads.
  static void BindStreamRead(SqliteStatement& stmt, std::string_view stream,
                             int64_t from, int64_t max_count,
                             const internal::StreamWindow* window);
  // Whether the streams table holds a row that can hide an event (a
  // deletion or retention metadata). One small query.
  static absl::StatusOr<bool> AnyHidingRow(SqliteConnection& conn);
  // " AND ..." hiding what the streams table hides, except StreamDeleted
  // events, for ReadAll's statement on the events table (unqualified
  // `events`); takes one anonymous parameter, the time max_age counts from
  // (microseconds since the epoch).
  static const char* ReadAllHidingCondition();

  // --- the lifecycle calls ---------------------------------------------------

  // EventStore::DeleteStream in one transaction of its own: the marker
  // event through `insert`, the row, the snapshots. REQUIRES: the writer
  // lock is held on `conn`, no transaction is open, the name is valid.
  absl::StatusOr<DeleteResult> DeleteLocked(SqliteConnection& conn,
                                            std::string_view stream,
                                            ExpectedVersion expected,
                                            DeleteMode mode,
                                            const InsertFn& insert);
  // EventStore::SetStreamMetadata (the name is validated here).
  absl::Status SetStreamMetadata(std::string_view stream,
                                 const StreamMetadata& metadata);
  // EventStore::GetStreamInfo.
  absl::StatusOr<StreamInfo> GetStreamInfo(std::string_view stream);
  // EventStore::Scavenge.
  absl::StatusOr<ScavengeResult> Scavenge(const ScavengeOptions& options);

 private:
  struct StreamScavenge {
    int64_t removed = 0;
    // True when the stream has nothing hidden left.
    bool done = false;
  };

  // Removes at most `limit` hidden rows of `stream` in one IMMEDIATE
  // transaction under the writer lock.
  absl::StatusOr<StreamScavenge> ScavengeBatch(std::string_view stream,
                                               int64_t limit, absl::Time now);
  absl::Status Compact();

  SqliteDatabase* const db_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_STREAM_LIFECYCLE_H_
