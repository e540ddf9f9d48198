// Row decoding and NULL binding shared by the SQLite stores that read or
// write the same tables (the dead-letter and outbox stores and the
// importer), so that they agree on the columns and on NULLs.
//
// Internal to the SQLite backend.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_ROWS_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_ROWS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_statement.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/outbox_store.h"

namespace eventstore::sqlite {

// The microseconds in `column`, or absl::InfinitePast() when it is NULL.
absl::Time TimeOrPast(const SqliteStatement& row, int column);

// Binds NULL for absl::InfinitePast(), else the time in microseconds.
void BindTimeOrNull(SqliteStatement& stmt, int index, absl::Time t);

// Binds NULL for an empty string, else the text.
void BindTextOrNull(SqliteStatement& stmt, int index, const std::string& s);

// The current row of `dead_letters` read as the columns projection,
// event_id, stream, version, position_commit, position_prepare, event_type,
// status, error, failure_count, first_failed_at, last_failed_at,
// resolved_by, resolved_at. kDataLoss on a corrupt id or unknown status.
absl::StatusOr<DeadLetter> DecodeDeadLetter(const SqliteStatement& row);

// The current row of `outbox` read as the columns id, destination,
// message_key, payload, headers, status, created_at, attempts, last_error,
// published_at, claimed_by, lease_until. kDataLoss on corrupt headers or an
// unknown status.
absl::StatusOr<OutboxEntry> DecodeOutboxEntry(const SqliteStatement& row);

// Steps `stmt` (bound, not stepped yet) to its end and decodes every row as
// above; the first error if a step fails or a row is corrupt.
absl::StatusOr<std::vector<DeadLetter>> CollectDeadLetters(
    SqliteStatement& stmt);
absl::StatusOr<std::vector<OutboxEntry>> CollectOutboxEntries(
    SqliteStatement& stmt);

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_ROWS_H_
