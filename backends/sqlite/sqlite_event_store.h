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
// busy_timeout. ReadStreamPages holds one reader connection and its read
// transaction while `page` runs (for ":memory:" the writer: other threads'
// reads and writes wait until the read ends). The schema is created when
// opened, and an older schema is upgraded unless upgrade_schema is off; a
// file that is not an eventstore database (or a damaged one), or whose
// schema is newer than this code, is refused with kFailedPrecondition and
// left untouched. With read_only, the file is opened SQLITE_OPEN_READONLY
// and nothing is ever written to it (docs/sqlite.md).
//
// The repositories (checkpoints(), dead_letters(), outbox(), snapshots())
// and BeginTransaction() use the same database and the same writer lock; a
// SqlTransaction holds that lock until it ends. WaitForEvents wakes when an
// append through this store commits and looks at the log every 100 ms for
// other processes' appends. Leases are flock()s on files beside the
// database (docs/sqlite.md).

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_STORE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/limits.h"
#include "eventstore/schema_upgrade.h"
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
  // With WAL, run checkpoints (copying the log into the database file, and
  // its fsync) on a thread of the store's own rather than inside the
  // commit that takes the log past 1,000 pages, SQLite's automatic
  // checkpoint, which every write queued behind that commit waits for.
  // The thread checkpoints when the log reaches 1,000 pages (PASSIVE: it
  // never blocks the writer or a reader); while writes keep coming the
  // log grows to 8,000 pages (32 MiB), where the committing write
  // checkpoints what the thread has not copied yet (little: mostly one
  // fsync) and the log starts over. Durability is the same: a checkpoint
  // syncs as `synchronous` says. Costs a thread and a connection per
  // store, and a log up to 8 times longer. Default true. Ignored with
  // `synchronous` kFull (the default) or kExtra: each commit syncs the log
  // then, and a checkpoint writing the file beside those syncs slows them
  // more than it saves (single appends at half the rate). Ignored for
  // ":memory:", without WAL, and read-only.
  bool background_checkpoint = true;
  // How long a write waits for another process holding the database lock
  // before failing with kUnavailable. 0 to 2^31-1 ms. Default 5 s.
  absl::Duration busy_timeout = absl::Seconds(5);
  static constexpr int64_t kMaxBusyTimeoutMs = 2147483647;
  // Most reader connections kept open for concurrent reads. 1 to
  // kMaxReaders. Default 4.
  int max_readers = 4;
  static constexpr int kMaxReaders = 1024;
  // PRAGMA cache_size of every connection (the writer and each pooled
  // reader), in MiB: the most page cache one connection keeps. It is a
  // bound, not an allocation: a connection holds only the pages it has
  // read. 1 to kMaxCacheSizeMb. Default 16, 8x SQLite's own 2 MB: room
  // for the interior pages of a 10M-event store's indexes; larger helps
  // only reads that come back to the same pages (docs/benchmarks.md,
  // "SQLite page cache and memory map"). Each idle pooled reader keeps its
  // cache, so a store holds up to (1 + max_readers) x cache_size_mb (80 MiB
  // with the defaults), more while extra readers are open.
  int cache_size_mb = 16;
  static constexpr int kMaxCacheSizeMb = 65536;
  // PRAGMA mmap_size of every connection, in MiB: how much of the file
  // reads map into memory instead of copying through read(). The mapping
  // is the OS page cache, shared by all connections and processes: it
  // costs address space, not private memory. 0 turns it off. 0 to
  // kMaxMmapSizeMb; SQLite caps it at its build's SQLITE_MAX_MMAP_SIZE
  // (2047 MiB for Debian's libsqlite3), and ignores it for ":memory:".
  // An I/O error on a mapped page kills the process with SIGBUS instead
  // of failing the read: set 0 on storage that can fail under a running
  // process (network mounts). Default 0, as SQLite's: a connection whose
  // read transaction starts after another connection committed drops and
  // rebuilds its whole map (SQLite unmaps it when the database changed),
  // so with writes going on, which is the usual case (appends, a
  // projection's checkpoints), the map costs more than it saves: the
  // projection runner read 1.7 times faster without it. It pays for a
  // store that is only read: 256 took StreamVersion at 10M events from
  // about 0.3 to 0.5 of its 40k rate (docs/benchmarks.md).
  int mmap_size_mb = 0;
  static constexpr int kMaxMmapSizeMb = 1048576;
  // Create the file when absent. Default true.
  bool create_if_missing = true;
  // Open the file read-only (SQLITE_OPEN_READONLY): no file is created, the
  // journal mode is left as it is, the schema is neither created nor
  // upgraded (an empty or older one is refused), and every write (appends,
  // the repositories' writes, BeginTransaction) fails with
  // kFailedPrecondition "opened read-only". For tools that only look, and
  // for copies on read-only media. Not for ":memory:". Default false.
  bool read_only = false;
  // Whether Open upgrades an older schema to this code's version. Default
  // true: the application that links this code needs its schema, and the
  // upgrade is one transaction that other processes wait for. Off, an
  // older schema is kFailedPrecondition (untouched) until
  // SqliteEventStore::UpgradeSchema or `eventstore upgrade URL` runs; the
  // `eventstore` tool opens with it off. A newer schema is refused either
  // way.
  bool upgrade_schema = true;
  // Whether ReadStream and ReadAll compare each event's stored checksum
  // (a mismatch marks the event damaged, recorded_event.h). Default true.
  // Off, reads skip the CRC (about 20% of read throughput on W3,
  // docs/benchmarks.md) and trust the payload; events still carry
  // `checksum`, a corrupt id or metadata is still marked damaged, and
  // `eventstore verify`, `export` and importers check checksums regardless.
  bool verify_checksums = true;
  StoreLimits limits;
  // When set, reads apply its upcasters (see type_registry.h).
  std::shared_ptr<const TypeRegistry> type_registry;

  // Options from a URL: "sqlite::memory:", "sqlite:///abs/path.db",
  // "sqlite:relative.db", with optional query parameters synchronous=
  // off|normal|full|extra, wal=true|false, busy_timeout_ms=N, max_readers=N,
  // cache_size_mb=N, mmap_size_mb=N, read_only=true|false,
  // upgrade_schema=true|false, verify_checksums=true|false,
  // background_checkpoint=true|false.
  // kInvalidArgument naming
  // the part that is wrong (a number out of range names the range; a NUL
  // byte in the path is refused).
  static absl::StatusOr<SqliteOptions> FromUrl(std::string_view url);
};

class SqliteEventStore {
 public:
  // Opens the database: creates it (unless read_only) and upgrades an older
  // schema (when upgrade_schema and not read_only).
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(
      const SqliteOptions& options);

  // Upgrades the schema of the existing store at options.path to this
  // code's version, in one transaction, and returns the versions before
  // and after (equal when it was current already: nothing is written).
  // kNotFound when the file is absent or holds no store yet;
  // kFailedPrecondition, untouched, for a file that is not ours or a
  // schema newer than this code. Ignores read_only and upgrade_schema.
  static absl::StatusOr<SchemaUpgrade> UpgradeSchema(
      const SqliteOptions& options);

  // The schema version this code writes.
  static constexpr int kSchemaVersion = 7;
};

}  // namespace eventstore

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_STORE_H_
