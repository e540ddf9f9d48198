// SqliteOutboxStore: the OutboxStore of a SQLite database (the `outbox`
// table; see eventstore/outbox_store.h for the contract).
//
// Internal to the SQLite backend. Claims, like every write, run under the
// database's writer lock in one BEGIN IMMEDIATE transaction, so two
// publishers (threads or processes) never claim the same message at once.
// Times are microseconds since the Unix epoch.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_OUTBOX_STORE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_OUTBOX_STORE_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_database.h"
#include "eventstore/outbox_store.h"

namespace eventstore::sqlite {

class SqliteOutboxStore final : public OutboxStore {
 public:
  // `db` must outlive this object.
  explicit SqliteOutboxStore(SqliteDatabase* db) : db_(db) {}

  // Inserts `messages` as pending, created at `now_micros`, on `conn`,
  // inside the caller's transaction (Append's). REQUIRES: the writer lock is
  // held, `conn` is the writer, and the messages passed
  // internal::ValidateOutboxMessages.
  static absl::Status Insert(SqliteConnection& conn,
                             absl::Span<const OutboxMessage> messages,
                             int64_t now_micros);

  absl::Status Enqueue(absl::Span<const OutboxMessage> messages) override;
  absl::StatusOr<std::vector<OutboxEntry>> Pending(int limit) override;
  absl::StatusOr<std::vector<OutboxEntry>> Claim(std::string_view worker,
                                                 int limit,
                                                 absl::Duration lease) override;
  absl::Status MarkPublished(int64_t id) override;
  absl::Status MarkAllPublished(absl::Span<const int64_t> ids) override;
  // One write transaction: MarkAllPublished's statement, then Claim's.
  absl::StatusOr<std::vector<OutboxEntry>> MarkPublishedAndClaim(
      absl::Span<const int64_t> published, std::string_view worker, int limit,
      absl::Duration lease) override;
  absl::Status Release(absl::Span<const int64_t> ids,
                       std::string_view error) override;
  absl::Status MarkFailed(int64_t id, std::string_view error,
                          int32_t max_attempts) override;
  absl::StatusOr<int64_t> DeletePublishedOlderThan(absl::Duration age) override;
  absl::StatusOr<OutboxStats> Stats() override;
  absl::StatusOr<OutboxBacklog> Backlog() override;
  absl::StatusOr<std::vector<OutboxEntry>> List(
      const OutboxListOptions& options) override;
  // One write transaction: the update, and on no change the status read
  // that names the error.
  absl::Status Retry(int64_t id) override;

 private:
  SqliteDatabase* const db_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_OUTBOX_STORE_H_
