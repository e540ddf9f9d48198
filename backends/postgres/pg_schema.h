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

// Brings `schema` to the current version: creates it and its tables, or
// applies pending migrations in order, inside one transaction holding an
// advisory lock keyed by the schema name, so that processes opening at once
// wait for each other. A schema newer than this code, or one whose events
// table is not ours, is refused with kFailedPrecondition and not modified.
// Without `create_if_missing`, a schema that holds no store is kNotFound and
// nothing is created.
absl::Status EnsureSchema(PgConnection& conn, const std::string& schema,
                          bool create_if_missing);

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_SCHEMA_H_
