// PgSubjectKeyStore: the SubjectKeyStore of a PostgreSQL store (the
// `subject_keys` and `subject_streams` tables; eventstore/subject_key_store.h
// has the contract, eventstore/internal/subject_key_rules.h the checks and
// Put's decisions shared with the other backends).
//
// Internal to the PostgreSQL backend. Insert is an INSERT ... ON CONFLICT
// DO NOTHING followed, when another writer won, by a read of the committed
// row; Forget and Put each run in one transaction. A read-only store
// refuses every write with kFailedPrecondition (its connections are
// read-only).
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_SUBJECT_KEY_STORE_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_SUBJECT_KEY_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/subject_key_store.h"

namespace eventstore::postgres {

class PgSubjectKeyStore final : public SubjectKeyStore {
 public:
  // `db` must outlive this object.
  explicit PgSubjectKeyStore(PgDatabase* db);

  absl::StatusOr<std::optional<SubjectKeyRecord>> Find(
      std::string_view subject) override;
  absl::StatusOr<SubjectKeyRecord> Insert(
      std::string_view subject, std::string_view wrapped_key,
      std::string_view master_key_id) override;
  absl::Status AddStream(std::string_view subject,
                         std::string_view stream) override;
  absl::StatusOr<std::vector<std::string>> Streams(
      std::string_view subject) override;
  absl::StatusOr<std::optional<std::string>> SubjectOfStream(
      std::string_view stream) override;
  absl::StatusOr<ForgetSubjectResult> Forget(std::string_view subject) override;
  absl::StatusOr<std::vector<SubjectKeyRecord>> List(std::string_view after,
                                                     int64_t limit) override;
  absl::StatusOr<bool> Rewrap(std::string_view subject,
                              std::string_view expected_master_key_id,
                              std::string_view wrapped_key,
                              std::string_view master_key_id) override;
  absl::StatusOr<int64_t> Put(
      const std::vector<SubjectKeyRecord>& records) override;

 private:
  PgDatabase* const db_;
  const PgStatement find_;
  const PgStatement find_for_update_;
  const PgStatement insert_;
  const PgStatement put_;
  const PgStatement add_stream_;
  const PgStatement streams_;
  const PgStatement subject_of_stream_;
  const PgStatement forget_;
  const PgStatement delete_snapshots_;
  const PgStatement list_;
  const PgStatement rewrap_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_SUBJECT_KEY_STORE_H_
