// PgDeadLetterStore: the DeadLetterStore of a PostgreSQL store (the
// `dead_letters` table, keyed by (projection, event_id);
// eventstore/dead_letter_store.h has the contract).
//
// Internal to the PostgreSQL backend. Add is one upsert (INSERT ... ON
// CONFLICT DO UPDATE), so concurrent failures of one event count up
// correctly. Lists are ordered by first failure, then position; projection
// names sort bytewise (COLLATE "C"), as on SQLite.
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_DEAD_LETTER_STORE_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_DEAD_LETTER_STORE_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/dead_letter_store.h"

namespace eventstore::postgres {

class PgDeadLetterStore final : public DeadLetterStore {
 public:
  // `db` must outlive this object.
  explicit PgDeadLetterStore(PgDatabase* db);

  // Not repeated after a lost connection (the failure would count twice).
  absl::Status Add(std::string_view projection, const RecordedEvent& event,
                   std::string_view error) override;
  absl::StatusOr<std::optional<DeadLetter>> Get(std::string_view projection,
                                                const Uuid& event_id) override;
  // kInvalidArgument for a negative limit.
  absl::StatusOr<std::vector<DeadLetter>> List(
      std::string_view projection, std::optional<DeadLetterStatus> status,
      int limit) override;
  absl::StatusOr<std::vector<DeadLetter>> ListPage(
      const DeadLetterListOptions& options) override;
  absl::Status MarkRetrying(std::string_view projection,
                            const Uuid& event_id) override;
  // kNotFound when there is no such entry.
  absl::Status MarkResolved(std::string_view projection, const Uuid& event_id,
                            std::string_view resolved_by) override;
  absl::StatusOr<std::vector<DeadLetterCount>> Counts() override;
  absl::StatusOr<int64_t> DeleteResolvedOlderThan(absl::Duration age) override;

 private:
  // Runs an UPDATE of one entry; kNotFound when it matched none.
  absl::Status UpdateOne(const PgStatement& stmt, const PgParams& params,
                         std::string_view projection, const Uuid& event_id);

  PgDatabase* const db_;
  const PgStatement add_;
  const PgStatement get_;
  const PgStatement list_;
  const PgStatement mark_retrying_;
  const PgStatement mark_resolved_;
  const PgStatement counts_;
  const PgStatement delete_resolved_;
  const PgStatement list_page_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_DEAD_LETTER_STORE_H_
