// The SQLite schema: recognising our files, creating and migrating them.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_SCHEMA_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_SCHEMA_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/sqlite/sqlite_connection.h"

namespace eventstore::sqlite {

// PRAGMA application_id of every eventstore database: "EvSt".
inline constexpr int64_t kApplicationId = 0x45765374;

// What EnsureSchema may change.
struct SchemaPolicy {
  // Create the schema in an empty database (else kNotFound).
  bool create = true;
  // Apply pending migrations to an older schema (else kFailedPrecondition).
  bool upgrade = true;
};

// Brings the database on `conn` to the current schema version, as far as
// `policy` allows: creates the schema in an empty database, applies pending
// migrations in order to an older one. A file that is not ours (not a SQLite
// database, a foreign application id, tables of its own), a damaged one
// (its schema table holds no valid version, a table of its version is
// missing), or one whose schema is newer than this code is refused with
// kFailedPrecondition before anything is written; so is an older schema
// when `policy` does not allow the upgrade. With a policy that allows
// neither, nothing is ever written (read-only connections). Returns the
// schema version found (0 for an empty database). `path` is for messages
// and for reading the file's header. Safe against another process doing
// the same at once.
absl::StatusOr<int64_t> EnsureSchema(SqliteConnection& conn,
                                     const std::string& path,
                                     SchemaPolicy policy);

// Creates, in the empty database on `conn`, the schema of `version` (1 to
// the current one) as the code of that version did: to build an older
// store in tests of upgrades.
absl::Status CreateSchemaAtVersion(SqliteConnection& conn, int64_t version);

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_SCHEMA_H_
