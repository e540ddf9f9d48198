// PgStreamLifecycle: the stream lifecycle of the PostgreSQL store
// (eventstore/stream_lifecycle.h): the streams table's rows as the rules of
// eventstore/internal/stream_rules.h see them, DeleteStream,
// SetStreamMetadata, GetStreamInfo and Scavenge. PostgresEventStore
// delegates to it; its appends and reads fold the streams row into their own
// statements.
//
// Internal to the PostgreSQL backend.
//
// Time: max_age is measured from the server's now() (the transaction's
// start) in reads, ReadAll, GetStreamInfo and Scavenge alike, unless
// ScavengeOptions::now is given.
//
// Concurrency: deletions of a stream are serialised by a transaction-scoped
// advisory lock; a deletion writes its marker at the last version + 1 in the
// same transaction as the row; the unique (stream, version) index then
// serialises it against appends: an append that did not see the deletion
// computes a version the marker holds, fails on the index and, retried,
// sees the row. A scavenge batch holds the row FOR SHARE, so a metadata
// change waits for the batch.
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_STREAM_LIFECYCLE_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_STREAM_LIFECYCLE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/expected_version.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/stream_rules.h"
#include "eventstore/stream_lifecycle.h"

namespace eventstore::postgres {

// A stream as the rules see it.
struct PgStreamState {
  // The highest version stored in the events table (0 when none).
  int64_t max_stored = 0;
  std::optional<internal::StreamRow> row;
  // The server's now().
  absl::Time now;
};

class PgStreamLifecycle {
 public:
  // `record_types` records the marker's type descriptor (the store's
  // RecordTypes); `notify` wakes this process's waiters after a deletion.
  PgStreamLifecycle(
      PgDatabase* db,
      std::function<absl::Status(const std::vector<internal::PreparedEvent>&)>
          record_types,
      std::function<void()> notify);

  // The stream's highest stored version, its row and the server's now(),
  // read in one statement on `conn`.
  absl::StatusOr<PgStreamState> ReadState(PgConnection& conn,
                                          std::string_view stream) const;
  // The same on a pooled connection.
  absl::StatusOr<PgStreamState> ReadState(std::string_view stream);

  // EventStore's lifecycle calls (event_store.h).
  absl::StatusOr<DeleteResult> DeleteStream(std::string_view stream,
                                            ExpectedVersion expected,
                                            DeleteMode mode);
  absl::Status SetStreamMetadata(std::string_view stream,
                                 const StreamMetadata& metadata);
  absl::StatusOr<StreamInfo> GetStreamInfo(std::string_view stream);
  absl::StatusOr<ScavengeResult> Scavenge(const ScavengeOptions& options);

  // The SQL condition, over a row `e` of the events table, that hides it
  // from ReadAll when the streams table has a row for its stream that says
  // so (StreamDeleted events are never hidden). "$S" is the schema.
  static const char kHiddenInReadAllSql[];

 private:
  // One DeleteStream attempt; `*retry` when it lost a version race to a
  // concurrent append and should run again.
  absl::StatusOr<DeleteResult> DeleteOnce(
      PgConnection& conn, std::string_view stream, ExpectedVersion expected,
      DeleteMode mode, const internal::PreparedEvent& marker, bool* retry);
  // Removes at most `limit` hidden rows of `stream` in one transaction;
  // their number.
  absl::StatusOr<int64_t> ScavengeBatch(PgConnection& conn,
                                        std::string_view stream, int64_t limit,
                                        std::optional<absl::Time> now);
  absl::Status Compact();

  PgDatabase* const db_;
  const std::function<absl::Status(const std::vector<internal::PreparedEvent>&)>
      record_types_;
  const std::function<void()> notify_;
  const PgStatement read_state_;
  const PgStatement delete_state_;
  const PgStatement lock_stream_;
  const PgStatement delete_write_;
  const PgStatement set_metadata_;
  const PgStatement scavenge_streams_;
  const PgStatement scavenge_lock_;
  const PgStatement scavenge_delete_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_STREAM_LIFECYCLE_H_
