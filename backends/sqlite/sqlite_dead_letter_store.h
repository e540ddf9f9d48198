// SqliteDeadLetterStore: the DeadLetterStore of a SQLite database (the
// `dead_letters` table; see eventstore/dead_letter_store.h for the
// contract).
//
// Internal to the SQLite backend. Writes run under the database's writer
// lock, each its own transaction; Add is one upsert. Lists are oldest first:
// by first failure, then by the event's position. Times are microseconds
// since the Unix epoch.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_DEAD_LETTER_STORE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_DEAD_LETTER_STORE_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_database.h"
#include "eventstore/dead_letter_store.h"

namespace eventstore::sqlite {

class SqliteDeadLetterStore final : public DeadLetterStore {
 public:
  // `db` must outlive this object.
  explicit SqliteDeadLetterStore(SqliteDatabase* db) : db_(db) {}

  absl::Status Add(std::string_view projection, const RecordedEvent& event,
                   std::string_view error) override;
  absl::StatusOr<std::optional<DeadLetter>> Get(std::string_view projection,
                                                const Uuid& event_id) override;
  absl::StatusOr<std::vector<DeadLetter>> List(
      std::string_view projection, std::optional<DeadLetterStatus> status,
      int limit) override;
  absl::StatusOr<std::vector<DeadLetter>> ListPage(
      const DeadLetterListOptions& options) override;
  absl::Status MarkRetrying(std::string_view projection,
                            const Uuid& event_id) override;
  absl::Status MarkResolved(std::string_view projection, const Uuid& event_id,
                            std::string_view resolved_by) override;
  absl::StatusOr<std::vector<DeadLetterCount>> Counts() override;
  absl::StatusOr<int64_t> DeleteResolvedOlderThan(absl::Duration age) override;

 private:
  SqliteDatabase* const db_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_DEAD_LETTER_STORE_H_
