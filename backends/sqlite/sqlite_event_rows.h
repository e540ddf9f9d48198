// Reading rows of the events table into RecordedEvents: the columns every
// read selects, in order, and their decoding. Shared by the store's reads
// and the importer's (SqliteEventImporter::ReadStreamAtSourcePositions).
// Internal to the SQLite backend.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_ROWS_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_ROWS_H_

#include <vector>

#include "absl/status/status.h"
#include "backends/sqlite/sqlite_connection.h"
#include "eventstore/recorded_event.h"

// Every event read selects these columns first, in this order (see
// DecodeRowInto); a read may select more after them.
#define ES_EVENT_COLUMNS                                                  \
  "position, id, stream, version, type, payload, metadata, recorded_at, " \
  "checksum"

namespace eventstore::sqlite {

// The number of columns in ES_EVENT_COLUMNS.
inline constexpr int kEventColumns = 9;

// Decodes the current row into `event` in place: reads of many small events
// are dominated by allocation and moves, so no temporary RecordedEvent is
// made. `event` may hold an earlier event (EventStore::ReadStreamInto,
// ReadAllInto): every field is overwritten, and its strings and metadata
// message keep their allocations, so a reused event costs no malloc. A row
// that cannot be read
// intact (a corrupt id or metadata, a checksum mismatch) becomes a damaged
// event (recorded_event.h) rather than an error, so that one bad row does
// not make the rest of the log unreadable. The checksum is compared only
// when `verify` (SqliteOptions::verify_checksums); `event.checksum` is set
// either way.
void DecodeRowInto(const SqliteStatement& row, bool verify,
                   RecordedEvent& event);

// Steps `stmt` to the end, decoding each row in place at the end of `out`
// (checksums compared when `verify`).
absl::Status CollectRows(SqliteStatement& stmt, bool verify,
                         std::vector<RecordedEvent>& out);

// Steps `stmt` to the end, decoding row i into out[i], reusing the events
// `out` already holds (appending when it holds fewer), and counting the
// rows in `*rows`. The caller removes out[*rows] onwards once done (also
// when this fails midway: *rows counts the rows decoded).
absl::Status CollectRowsReusing(SqliteStatement& stmt, bool verify,
                                std::vector<RecordedEvent>& out, size_t* rows);

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_ROWS_H_
