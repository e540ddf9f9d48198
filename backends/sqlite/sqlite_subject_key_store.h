// SqliteSubjectKeyStore: the SubjectKeyStore of a SQLite database (the
// `subject_keys` and `subject_streams` tables; eventstore/subject_key_store.h
// has the contract, eventstore/internal/subject_key_rules.h the checks and
// Put's decisions shared with the other backends).
//
// Internal to the SQLite backend. Every write runs under the writer lock,
// the ones that read before they write (Insert, Forget, Put) inside one
// BEGIN IMMEDIATE transaction, so a concurrent Insert of another thread or
// process sees the first key stored. Times are microseconds since the Unix
// epoch. A read-only database refuses every write with kFailedPrecondition.
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_SUBJECT_KEY_STORE_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_SUBJECT_KEY_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_database.h"
#include "eventstore/subject_key_store.h"

namespace eventstore::sqlite {

class SqliteSubjectKeyStore final : public SubjectKeyStore {
 public:
  // `db` must outlive this object.
  explicit SqliteSubjectKeyStore(SqliteDatabase* db) : db_(db) {}

  // An append's key table rows (AppendRequest::subject_keys), on `conn`
  // inside the caller's transaction (the append's, after its events): each
  // write's key stored as Insert stores it (created at `now_micros`) unless
  // the subject has a record, and each subject recorded as holding events
  // of `stream`. SubjectKeyConflictError(subject) when a write's key is not
  // the subject's stored one (another key, or a forgotten record): the
  // caller then rolls back. A write of our own earlier insert again (same
  // key and master key id) is no conflict. Per write: one statement to
  // insert a key when absent (a second one only when a record is there),
  // one to record the stream. REQUIRES: the writer lock is held, `conn` is
  // the writer, and the writes passed internal::ValidateSubjectKeyWrites.
  static absl::Status WriteForAppend(SqliteConnection& conn,
                                     std::string_view stream,
                                     absl::Span<const SubjectKeyWrite> writes,
                                     int64_t now_micros);

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
  SqliteDatabase* const db_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_SUBJECT_KEY_STORE_H_
