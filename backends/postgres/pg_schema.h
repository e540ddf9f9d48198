// The PostgreSQL schema: creating and migrating it under an advisory lock.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_SCHEMA_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_SCHEMA_H_

#include <string>

#include "absl/status/status.h"
#include "backends/postgres/pg_connection.h"

namespace eventstore::postgres {

// kInvalidArgument unless `schema` matches [a-z_][a-z0-9_]* and fits in 63
// bytes (PostgreSQL's identifier limit).
absl::Status ValidateSchemaName(const std::string& schema);

// What EnsureSchema may change.
struct SchemaPolicy {
  // Create the schema and its tables when it holds no store (else
  // kNotFound).
  bool create = true;
  // Apply pending migrations to an older store (else kFailedPrecondition).
  bool upgrade = true;
};

// Brings `schema` to the current version, as far as `policy` allows:
// creates it and its tables, or applies pending migrations in order, inside
// one transaction holding an advisory lock keyed by the schema name, so that
// processes opening at once wait for each other. A schema newer than this
// code, or one whose events table is not ours, is refused with
// kFailedPrecondition and not modified; so is an older one when `policy`
// does not allow the upgrade. A policy that allows neither only reads (it
// works on a read-only connection). Returns the version found (0 when the
// store was created).
absl::StatusOr<int64_t> EnsureSchema(PgConnection& conn,
                                     const std::string& schema,
                                     SchemaPolicy policy);

// Creates `schema` and the tables of `version` (1 to the current one) as the
// code of that version did: to build an older store in tests of upgrades.
// kFailedPrecondition when the schema holds a store already.
absl::Status CreateSchemaAtVersion(PgConnection& conn,
                                   const std::string& schema, int64_t version);

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_SCHEMA_H_
