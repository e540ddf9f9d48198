// The SQLite backend: the embedded default, a file or an in-memory database.
//
//   eventstore::SqliteOptions options;
//   options.path = "events.db";              // or ":memory:"
//   options.synchronous = eventstore::SqliteOptions::Synchronous::kNormal;
//   absl::StatusOr<std::unique_ptr<eventstore::EventStore>> store =
//       eventstore::SqliteEventStore::Open(options);
//
// Writers are serialised inside the process (one writer connection behind a
// mutex), so in-process contention never surfaces as SQLITE_BUSY; readers of
// a file database use their own connections and run concurrently with the
// writer (WAL). Another process writing the same file is waited for up to
// busy_timeout. The schema is created or migrated when opened; a file that
// is not an eventstore database, or whose schema is newer than this code, is
// refused with kFailedPrecondition and left untouched.
//
// The repositories (checkpoints(), dead_letters(), outbox(), snapshots())
// and BeginTransaction() use the same database and the same writer lock; a
// SqlTransaction holds that lock until it ends. WaitForEvents wakes when an
// append through this store commits and looks at the log every 100 ms for
// other processes' appends. Leases are flock()s on files beside the
// database (docs/sqlite.md).

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_STORE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_STORE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/limits.h"
#include "eventstore/type_registry.h"

namespace eventstore {

struct SqliteOptions {
  enum class Synchronous { kOff, kNormal, kFull, kExtra };

  // The database file, or ":memory:" for a private in-memory database that
  // is gone when the store is closed. Required.
  std::string path;
  // PRAGMA synchronous. Default kFull: an acknowledged append survives power
  // loss. kNormal is several times faster in WAL mode and still never
  // corrupts the file, but may lose the last commits on power loss (not on a
  // process crash).
  Synchronous synchronous = Synchronous::kFull;
  // Write-ahead logging: readers never block the writer. Default true. Off,
  // the file uses the rollback journal (for file systems without shared
  // memory, such as some network mounts).
  bool wal = true;
  // How long a write waits for another process holding the database lock
  // before failing with kUnavailable. Default 5 s.
  absl::Duration busy_timeout = absl::Seconds(5);
  // Most reader connections kept open for concurrent reads. Default 4.
  int max_readers = 4;
  // Create the file when absent. Default true.
  bool create_if_missing = true;
  StoreLimits limits;
  // When set, reads apply its upcasters (see type_registry.h).
  std::shared_ptr<const TypeRegistry> type_registry;

  // Options from a URL: "sqlite::memory:", "sqlite:///abs/path.db",
  // "sqlite:relative.db", with optional query parameters synchronous=
  // off|normal|full|extra, wal=true|false, busy_timeout_ms=N, max_readers=N.
  // kInvalidArgument naming the part that is wrong.
  static absl::StatusOr<SqliteOptions> FromUrl(std::string_view url);
};

class SqliteEventStore {
 public:
  // Opens (and creates or migrates) the database.
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(
      const SqliteOptions& options);

  // The schema version this code writes.
  static constexpr int kSchemaVersion = 3;
};

}  // namespace eventstore

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_STORE_H_
