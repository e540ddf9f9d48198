// Row decoding shared by the PostgreSQL stores that read the same tables
// (the dead-letter and outbox stores and the importer), so that they agree
// on the columns, on NULLs and on what counts as corrupt.
//
// Internal to the PostgreSQL backend.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_ROWS_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_ROWS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "backends/postgres/pg_connection.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/outbox_store.h"

namespace eventstore::postgres {

// Row `row` of `r` read as the columns projection, event_id, stream,
// version, position_commit, position_prepare, event_type, status, error,
// failure_count::bigint, first_failed_at, last_failed_at, resolved_by,
// resolved_at. kDataLoss on a corrupt id or an unknown status.
absl::StatusOr<DeadLetter> DecodeDeadLetter(const PgResult& r, int row);

// Row `row` of `r` read as the columns id, destination, message_key,
// payload, headers, status, created_at, attempts::bigint, last_error,
// published_at, claimed_by, lease_until. kDataLoss on corrupt headers or an
// unknown status.
absl::StatusOr<OutboxEntry> DecodeOutboxEntry(const PgResult& r, int row);

// Every row of `r`, decoded as above; the first error if a row is corrupt.
absl::StatusOr<std::vector<DeadLetter>> DecodeDeadLetters(const PgResult& r);
absl::StatusOr<std::vector<OutboxEntry>> DecodeOutboxEntries(const PgResult& r);

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_ROWS_H_
