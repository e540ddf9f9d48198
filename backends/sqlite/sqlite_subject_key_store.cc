#include "backends/sqlite/sqlite_subject_key_store.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/subject_key_rules.h"
#include "eventstore/status_macros.h"

namespace eventstore::sqlite {
namespace {

constexpr char kFind[] =
    "SELECT subject, wrapped_key, master_key_id, created_at, forgotten_at "
    "FROM subject_keys WHERE subject = ?1";
constexpr char kList[] =
    "SELECT subject, wrapped_key, master_key_id, created_at, forgotten_at "
    "FROM subject_keys WHERE subject > ?1 ORDER BY subject LIMIT ?2";
// Writes a whole record (forgotten_at NULL for a live one).
constexpr char kInsert[] =
    "INSERT INTO subject_keys (subject, wrapped_key, master_key_id, "
    "created_at, forgotten_at) VALUES (?1, ?2, ?3, ?4, ?5)";
// Insert's write, in an append: nothing when the subject has a record.
constexpr char kInsertIfAbsent[] =
    "INSERT INTO subject_keys (subject, wrapped_key, master_key_id, "
    "created_at, forgotten_at) VALUES (?1, ?2, ?3, ?4, NULL) "
    "ON CONFLICT (subject) DO NOTHING";
constexpr char kAddStream[] =
    "INSERT INTO subject_streams (subject, stream) VALUES (?1, ?2) "
    "ON CONFLICT (subject, stream) DO NOTHING";
constexpr char kStreams[] =
    "SELECT stream FROM subject_streams WHERE subject = ?1 ORDER BY stream";
// The first subject in byte order (BINARY collation), through
// subject_streams_by_stream.
constexpr char kSubjectOfStream[] =
    "SELECT subject FROM subject_streams WHERE stream = ?1 "
    "ORDER BY subject LIMIT 1";
// Forgets a live record, or stores a forgotten one for a subject that never
// had a key; changes nothing for a forgotten one.
constexpr char kForget[] =
    "INSERT INTO subject_keys (subject, wrapped_key, master_key_id, "
    "created_at, forgotten_at) VALUES (?1, NULL, NULL, ?2, ?2) "
    "ON CONFLICT (subject) DO UPDATE SET wrapped_key = NULL, "
    "master_key_id = NULL, forgotten_at = excluded.forgotten_at "
    "WHERE subject_keys.forgotten_at IS NULL";
constexpr char kDeleteSnapshots[] =
    "DELETE FROM snapshots WHERE stream IN "
    "(SELECT stream FROM subject_streams WHERE subject = ?1)";
constexpr char kRewrap[] =
    "UPDATE subject_keys SET wrapped_key = ?3, master_key_id = ?4 "
    "WHERE subject = ?1 AND master_key_id = ?2 AND forgotten_at IS NULL";

// The record of the current row of a kFind or kList statement.
SubjectKeyRecord RecordOf(const SqliteStatement& stmt) {
  SubjectKeyRecord r;
  r.subject = std::string(stmt.ColumnText(0));
  if (!stmt.ColumnIsNull(1)) r.wrapped_key = std::string(stmt.ColumnBlob(1));
  if (!stmt.ColumnIsNull(2)) r.master_key_id = std::string(stmt.ColumnText(2));
  r.created_at = absl::FromUnixMicros(stmt.ColumnInt64(3));
  if (!stmt.ColumnIsNull(4)) {
    r.forgotten_at = absl::FromUnixMicros(stmt.ColumnInt64(4));
  }
  return r;
}

absl::StatusOr<std::optional<SubjectKeyRecord>> FindOn(
    SqliteConnection& conn, std::string_view subject) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kFind));
  stmt->BindText(1, subject);
  ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return std::nullopt;
  return RecordOf(*stmt);
}

absl::Status InsertOn(SqliteConnection& conn, const SubjectKeyRecord& r) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kInsert));
  stmt->BindText(1, r.subject);
  if (r.forgotten()) {
    stmt->BindNull(2);
    stmt->BindNull(3);
    stmt->BindInt64(5, absl::ToUnixMicros(*r.forgotten_at));
  } else {
    stmt->BindBlob(2, r.wrapped_key);
    stmt->BindText(3, r.master_key_id);
    stmt->BindNull(5);
  }
  stmt->BindInt64(4, absl::ToUnixMicros(r.created_at));
  return stmt->Run();
}

// Forgets the subject's record (see kForget) at `at`; true when it changed.
absl::StatusOr<bool> ForgetOn(SqliteConnection& conn, std::string_view subject,
                              absl::Time at) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kForget));
  stmt->BindText(1, subject);
  stmt->BindInt64(2, absl::ToUnixMicros(at));
  ES_RETURN_IF_ERROR(stmt->Run());
  return conn.Changes() == 1;
}

// Deletes the snapshots of the subject's recorded streams; how many.
absl::StatusOr<int64_t> DeleteSnapshotsOn(SqliteConnection& conn,
                                          std::string_view subject) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kDeleteSnapshots));
  stmt->BindText(1, subject);
  ES_RETURN_IF_ERROR(stmt->Run());
  return conn.Changes();
}

absl::StatusOr<std::vector<std::string>> StreamsOn(SqliteConnection& conn,
                                                   std::string_view subject) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kStreams));
  stmt->BindText(1, subject);
  std::vector<std::string> streams;
  for (;;) {
    ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    streams.emplace_back(stmt->ColumnText(0));
  }
  return streams;
}

absl::Status AddStreamOn(SqliteConnection& conn, std::string_view subject,
                         std::string_view stream) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kAddStream));
  stmt->BindText(1, subject);
  stmt->BindText(2, stream);
  return stmt->Run();
}

}  // namespace

absl::Status SqliteSubjectKeyStore::WriteForAppend(
    SqliteConnection& conn, std::string_view stream,
    absl::Span<const SubjectKeyWrite> writes, int64_t now_micros) {
  for (const SubjectKeyWrite& w : writes) {
    if (!w.wrapped_key.empty()) {
      bool inserted = false;
      {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kInsertIfAbsent));
        stmt->BindText(1, w.subject);
        stmt->BindBlob(2, w.wrapped_key);
        stmt->BindText(3, w.master_key_id);
        stmt->BindInt64(4, now_micros);
        ES_RETURN_IF_ERROR(stmt->Run());
        inserted = conn.Changes() == 1;
      }
      if (!inserted) {
        // A record is there: only our own key (a retry of this insert, or
        // an earlier append of the same batch) lets the append commit.
        ES_ASSIGN_OR_RETURN(std::optional<SubjectKeyRecord> stored,
                            FindOn(conn, w.subject));
        if (!stored.has_value() || stored->forgotten() ||
            stored->wrapped_key != w.wrapped_key ||
            stored->master_key_id != w.master_key_id) {
          return SubjectKeyConflictError(w.subject);
        }
      }
    }
    ES_RETURN_IF_ERROR(AddStreamOn(conn, w.subject, stream));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<SubjectKeyRecord>> SqliteSubjectKeyStore::Find(
    std::string_view subject) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  return db_->WithReader(
      [&](SqliteConnection& conn)
          -> absl::StatusOr<std::optional<SubjectKeyRecord>> {
        return FindOn(conn, subject);
      });
}

absl::StatusOr<SubjectKeyRecord> SqliteSubjectKeyStore::Insert(
    std::string_view subject, std::string_view wrapped_key,
    std::string_view master_key_id) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  ES_RETURN_IF_ERROR(
      internal::ValidateWrappedKey("", wrapped_key, master_key_id));
  return db_->WithWriteTransaction(
      [&](SqliteConnection& conn) -> absl::StatusOr<SubjectKeyRecord> {
        ES_ASSIGN_OR_RETURN(std::optional<SubjectKeyRecord> stored,
                            FindOn(conn, subject));
        if (stored.has_value()) {
          if (stored->forgotten()) {
            return internal::ForgottenSubjectError(subject);
          }
          return *std::move(stored);
        }
        SubjectKeyRecord r;
        r.subject = std::string(subject);
        r.wrapped_key = std::string(wrapped_key);
        r.master_key_id = std::string(master_key_id);
        r.created_at = absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
        ES_RETURN_IF_ERROR(InsertOn(conn, r));
        return r;
      });
}

absl::Status SqliteSubjectKeyStore::AddStream(std::string_view subject,
                                              std::string_view stream) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::Status {
    return AddStreamOn(conn, subject, stream);
  });
}

absl::StatusOr<std::vector<std::string>> SqliteSubjectKeyStore::Streams(
    std::string_view subject) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<std::vector<std::string>> {
        return StreamsOn(conn, subject);
      });
}

absl::StatusOr<std::optional<std::string>>
SqliteSubjectKeyStore::SubjectOfStream(std::string_view stream) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  return db_->WithReader([&](SqliteConnection& conn)
                             -> absl::StatusOr<std::optional<std::string>> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSubjectOfStream));
    stmt->BindText(1, stream);
    ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) return std::nullopt;
    return std::string(stmt->ColumnText(0));
  });
}

absl::StatusOr<ForgetSubjectResult> SqliteSubjectKeyStore::Forget(
    std::string_view subject) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  return db_->WithWriteTransaction(
      [&](SqliteConnection& conn) -> absl::StatusOr<ForgetSubjectResult> {
        ForgetSubjectResult result;
        ES_ASSIGN_OR_RETURN(result.forgotten_now,
                            ForgetOn(conn, subject, absl::Now()));
        ES_ASSIGN_OR_RETURN(result.streams, StreamsOn(conn, subject));
        ES_ASSIGN_OR_RETURN(result.snapshots_removed,
                            DeleteSnapshotsOn(conn, subject));
        return result;
      });
}

absl::StatusOr<std::vector<SubjectKeyRecord>> SqliteSubjectKeyStore::List(
    std::string_view after, int64_t limit) {
  ES_RETURN_IF_ERROR(internal::ValidateList(after, limit));
  return db_->WithReader([&](SqliteConnection& conn)
                             -> absl::StatusOr<std::vector<SubjectKeyRecord>> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kList));
    stmt->BindText(1, after);
    stmt->BindInt64(2, limit);
    std::vector<SubjectKeyRecord> records;
    for (;;) {
      ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      records.push_back(RecordOf(*stmt));
    }
    return records;
  });
}

absl::StatusOr<bool> SqliteSubjectKeyStore::Rewrap(
    std::string_view subject, std::string_view expected_master_key_id,
    std::string_view wrapped_key, std::string_view master_key_id) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  if (expected_master_key_id.empty()) {
    return absl::InvalidArgumentError(
        "expected_master_key_id: empty; give the id of the master key that "
        "wraps the stored key");
  }
  ES_RETURN_IF_ERROR(
      internal::ValidateWrappedKey("", wrapped_key, master_key_id));
  return db_->WithWriter([&](SqliteConnection& conn) -> absl::StatusOr<bool> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kRewrap));
    stmt->BindText(1, subject);
    stmt->BindText(2, expected_master_key_id);
    stmt->BindBlob(3, wrapped_key);
    stmt->BindText(4, master_key_id);
    ES_RETURN_IF_ERROR(stmt->Run());
    return conn.Changes() == 1;
  });
}

absl::StatusOr<int64_t> SqliteSubjectKeyStore::Put(
    const std::vector<SubjectKeyRecord>& records) {
  ES_ASSIGN_OR_RETURN(
      std::vector<SubjectKeyRecord> prepared,
      internal::PreparePut(db_->options().limits, records, absl::Now()));
  if (prepared.empty()) return 0;
  return db_->WithWriteTransaction(
      [&](SqliteConnection& conn) -> absl::StatusOr<int64_t> {
        int64_t changed = 0;
        for (const SubjectKeyRecord& r : prepared) {
          ES_ASSIGN_OR_RETURN(std::optional<SubjectKeyRecord> stored,
                              FindOn(conn, r.subject));
          ES_ASSIGN_OR_RETURN(internal::PutAction action,
                              internal::DecidePut(stored, r));
          switch (action) {
            case internal::PutAction::kKeep:
              continue;
            case internal::PutAction::kInsert:
              ES_RETURN_IF_ERROR(InsertOn(conn, r));
              break;
            case internal::PutAction::kForget: {
              ES_ASSIGN_OR_RETURN(bool forgotten,
                                  ForgetOn(conn, r.subject, *r.forgotten_at));
              if (!forgotten) continue;
              break;
            }
          }
          ++changed;
          // A subject that is forgotten now has no snapshots left.
          if (r.forgotten()) {
            ES_RETURN_IF_ERROR(DeleteSnapshotsOn(conn, r.subject).status());
          }
        }
        return changed;
      });
}

}  // namespace eventstore::sqlite
