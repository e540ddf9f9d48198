// The SQLite schema: recognising our files, creating and migrating them.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_SCHEMA_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_SCHEMA_H_

#include <string>

#include "absl/status/status.h"
#include "backends/sqlite/sqlite_connection.h"

namespace eventstore::sqlite {

// PRAGMA application_id of every eventstore database: "EvSt".
inline constexpr int64_t kApplicationId = 0x45765374;

// Brings the database on `conn` to the current schema version: creates the
// schema in an empty database, applies pending migrations in order to an
// older one. A database that is not ours (a foreign application id, or
// tables of its own) or whose schema is newer than this code is refused
// with kFailedPrecondition before anything is written. `path` is for
// messages. Safe against another process doing the same at once.
absl::Status EnsureSchema(SqliteConnection& conn, const std::string& path);

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_SCHEMA_H_
