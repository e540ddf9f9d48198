// PgOutboxStore: the OutboxStore of a PostgreSQL store (the `outbox` table;
// eventstore/outbox_store.h has the contract).
//
// Internal to the PostgreSQL backend. Messages enqueued with an append are
// inserted by the append's own statement (postgres_event_store.cc); this
// class enqueues alone and runs the publishing side. Claim is one UPDATE
// over a sub-select of pending, unleased rows taken FOR UPDATE SKIP
// LOCKED: concurrent publishers never wait for each other and never hold
// the same message. Headers are stored as a serialized
// eventstore.v1.OutboxHeaders, NULL when there are none.
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_OUTBOX_STORE_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_OUTBOX_STORE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/outbox_store.h"

namespace eventstore::postgres {

// The four arrays (destination text[], key text[], payload bytea[],
// headers bytea[]) that insert `messages` from unnest(...), in order.
struct OutboxArrays {
  std::string destinations;
  std::string keys;
  std::string payloads;
  std::string headers;
};
OutboxArrays EncodeOutboxMessages(absl::Span<const OutboxMessage> messages);

class PgOutboxStore final : public OutboxStore {
 public:
  // `db` must outlive this object.
  explicit PgOutboxStore(PgDatabase* db);

  // Not repeated after a lost connection (the messages would be enqueued
  // twice): kUnavailable then means the outcome is unknown. The same holds
  // for Claim and MarkFailed.
  absl::Status Enqueue(absl::Span<const OutboxMessage> messages) override;
  // kInvalidArgument for a negative limit (also Claim's).
  absl::StatusOr<std::vector<OutboxEntry>> Pending(int limit) override;
  absl::StatusOr<std::vector<OutboxEntry>> Claim(std::string_view worker,
                                                 int limit,
                                                 absl::Duration lease) override;
  // kNotFound when there is no message `id`.
  absl::Status MarkPublished(int64_t id) override;
  absl::Status MarkAllPublished(absl::Span<const int64_t> ids) override;
  // One statement (MarkAllPublished's and Claim's updates, one commit). Not
  // repeated after a lost connection, like Claim.
  absl::StatusOr<std::vector<OutboxEntry>> MarkPublishedAndClaim(
      absl::Span<const int64_t> published, std::string_view worker, int limit,
      absl::Duration lease) override;
  absl::Status Release(absl::Span<const int64_t> ids,
                       std::string_view error) override;
  // kNotFound when there is no message `id`; kFailedPrecondition when it is
  // no longer pending (published, or failed for good).
  absl::Status MarkFailed(int64_t id, std::string_view error,
                          int32_t max_attempts) override;
  absl::StatusOr<int64_t> DeletePublishedOlderThan(absl::Duration age) override;
  absl::StatusOr<OutboxStats> Stats() override;
  absl::StatusOr<OutboxBacklog> Backlog() override;
  // kInvalidArgument for a negative limit.
  absl::StatusOr<std::vector<OutboxEntry>> List(
      const OutboxListOptions& options) override;
  // One statement: the update, and the status it found. Not repeated after
  // a lost connection (a second run would find the message pending):
  // kUnavailable then means the outcome is unknown.
  absl::Status Retry(int64_t id) override;

 private:
  PgDatabase* const db_;
  const PgStatement enqueue_;
  const PgStatement pending_;
  const PgStatement claim_;
  const PgStatement mark_published_;
  const PgStatement mark_all_published_;
  const PgStatement mark_published_and_claim_;
  const PgStatement release_;
  const PgStatement mark_failed_;
  const PgStatement status_of_;
  const PgStatement delete_published_;
  const PgStatement stats_;
  const PgStatement backlog_;
  const PgStatement list_;
  const PgStatement retry_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_OUTBOX_STORE_H_
