// SqliteLeases: the leases of one SQLite database (EventStore::
// TryAcquireLease; see eventstore/lease.h for the contract).
//
// Internal to the SQLite backend.
//
// File database: the lease called `name` is an exclusive, non-blocking
// flock() on the file "<database path>.lease-<name>" beside the database
// (the database's real path; the name with bytes other than letters,
// digits, '.', '_' and '-' written %XX, and a long one shortened with a
// hash). The lease keeps the file open; closing it, or the death of the
// process, releases the lock, so another process takes over. The files are
// left in place (removing one would let two processes lock two different
// files of one name); each holds the pid of its last holder, for people.
// flock() locks belong to an open file, so two leases of one name in one
// process also exclude each other. Like WAL, this needs all processes on
// one machine (flock is unreliable on network file systems).
//
// ":memory:": a set of names held within the process, per database.
//
// Valid() is true while the lease is held: for a file, while the lease file
// is still the one locked (false once it was removed or replaced).
//
// FindHolder tells who holds a lease without taking it. File: the process
// whose flock() lies on the lease file, from the kernel's table of locks
// (/proc/locks, matched by the file's device and inode; Linux only, and
// only processes of this machine, whose pids this process can see). A
// missing lease file is a lease nobody ever took. ":memory:": this
// process, when it holds the name.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_LEASE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_LEASE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/lease.h"
#include "eventstore/store_inspector.h"

namespace eventstore::sqlite {

class SqliteLeases {
 public:
  // `database_path` is SqliteOptions::path (":memory:" for in-process
  // names) of a database that exists: its real path is resolved now.
  explicit SqliteLeases(const std::string& database_path);

  // The lease called `name`, or nullptr when it is held (by this process or
  // another). kInvalidArgument for an empty name; kUnavailable or
  // kPermissionDenied when the lease file cannot be opened. A lease may
  // outlive this object.
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquire(std::string_view name);

  // Who holds the lease called `name` now, or nullopt when nobody does
  // (see above); never takes it. kInvalidArgument for an empty name;
  // kUnavailable when the lease file or the table of locks cannot be read.
  absl::StatusOr<std::optional<LeaseHolder>> FindHolder(std::string_view name);

  // The lease file of `name` for the database at `database_path`.
  static std::string LeaseFilePath(const std::string& database_path,
                                   std::string_view name);

 private:
  // Names held in an in-memory database; shared with its leases.
  struct HeldNames {
    internal::Mutex mu;
    absl::flat_hash_set<std::string> names ABSL_GUARDED_BY(mu);
  };

  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireFile(std::string_view name);
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireInMemory(
      std::string_view name);
  // The lease file of `name` of this database.
  std::string FilePath(std::string_view name) const;

  // The database's real path; ":memory:" for an in-memory one.
  const std::string path_;
  // Set for an in-memory database only.
  const std::shared_ptr<HeldNames> held_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_LEASE_H_
