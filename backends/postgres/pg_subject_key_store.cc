#include "backends/postgres/pg_subject_key_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_binary.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/subject_key_rules.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {
namespace {

// Runs `statement` (one write) in a transaction that commits without
// waiting for its WAL record to reach the disk (synchronous_commit off for
// it alone). Insert and AddStream run before the append whose events use
// the key: that append's own commit flushes the WAL up to its record, and
// so every record before it, this one included (the WAL is written and
// flushed in order). A key is thus durable before any event it encrypts is,
// and a new subject costs its append no extra fsync. A crash before that
// append commits may lose the key, which then encrypted nothing. (An append
// that carries AppendRequest::subject_keys writes these rows in its own
// statement instead, committed with its events: postgres_event_store.cc.)
template <typename F>
absl::StatusOr<PgResult> WithoutWaitingForFlush(PgConnection& conn,
                                                F statement) {
  ES_RETURN_IF_ERROR(
      conn.Exec("BEGIN; SET LOCAL synchronous_commit TO off").status());
  absl::StatusOr<PgResult> result = statement();
  if (!result.ok()) {
    if (!conn.broken()) conn.Exec("ROLLBACK").status().IgnoreError();
    return result;
  }
  ES_RETURN_IF_ERROR(conn.Exec("COMMIT").status());
  return result;
}

#define ES_SK_COLUMNS \
  " subject, wrapped_key, master_key_id, created_at, forgotten_at"

constexpr char kFindSql[] =
    "SELECT" ES_SK_COLUMNS " FROM $S.subject_keys WHERE subject = $1::text";
constexpr char kFindForUpdateSql[] =
    "SELECT" ES_SK_COLUMNS
    " FROM $S.subject_keys WHERE subject = $1::text FOR UPDATE";
// Stores a new live key unless the subject has a record; returns the row
// only when it was inserted.
constexpr char kInsertSql[] =
    "INSERT INTO $S.subject_keys (subject, wrapped_key, master_key_id)"
    " VALUES ($1::text, $2::bytea, $3::text)"
    " ON CONFLICT (subject) DO NOTHING RETURNING" ES_SK_COLUMNS;
// Writes a whole record (Put), unless the subject has one already.
constexpr char kPutSql[] =
    "INSERT INTO $S.subject_keys (subject, wrapped_key, master_key_id,"
    " created_at, forgotten_at) VALUES ($1::text, $2::bytea, $3::text,"
    " $4::timestamptz, $5::timestamptz) ON CONFLICT (subject) DO NOTHING";
constexpr char kAddStreamSql[] =
    "INSERT INTO $S.subject_streams (subject, stream)"
    " VALUES ($1::text, $2::text) ON CONFLICT (subject, stream) DO NOTHING";
constexpr char kStreamsSql[] =
    "SELECT stream FROM $S.subject_streams WHERE subject = $1::text"
    " ORDER BY stream COLLATE \"C\"";
// The first subject in byte order (COLLATE "C"), through
// subject_streams_by_stream.
constexpr char kSubjectOfStreamSql[] =
    "SELECT subject FROM $S.subject_streams WHERE stream = $1::text"
    " ORDER BY subject COLLATE \"C\" LIMIT 1";
// Forgets a live record, or stores a forgotten one for a subject that never
// had a key; changes nothing for a forgotten one. $2 is the time (NULL:
// the server's now()).
constexpr char kForgetSql[] =
    "INSERT INTO $S.subject_keys AS k (subject, wrapped_key, master_key_id,"
    " created_at, forgotten_at) VALUES ($1::text, NULL, NULL,"
    " coalesce($2::timestamptz, now()), coalesce($2::timestamptz, now()))"
    " ON CONFLICT (subject) DO UPDATE SET wrapped_key = NULL,"
    " master_key_id = NULL, forgotten_at = EXCLUDED.forgotten_at"
    " WHERE k.forgotten_at IS NULL";
constexpr char kDeleteSnapshotsSql[] =
    "DELETE FROM $S.snapshots WHERE stream IN"
    " (SELECT stream FROM $S.subject_streams WHERE subject = $1::text)";
constexpr char kListSql[] =
    "SELECT" ES_SK_COLUMNS
    " FROM $S.subject_keys WHERE subject COLLATE \"C\" > $1::text"
    " ORDER BY subject COLLATE \"C\" LIMIT $2::bigint";
constexpr char kRewrapSql[] =
    "UPDATE $S.subject_keys SET wrapped_key = $3::bytea,"
    " master_key_id = $4::text WHERE subject = $1::text"
    " AND master_key_id = $2::text AND forgotten_at IS NULL";

#undef ES_SK_COLUMNS

SubjectKeyRecord RecordOf(const PgResult& r, int row) {
  SubjectKeyRecord k;
  k.subject = std::string(r.Bytes(row, 0));
  if (!r.IsNull(row, 1)) k.wrapped_key = std::string(r.Bytes(row, 1));
  if (!r.IsNull(row, 2)) k.master_key_id = std::string(r.Bytes(row, 2));
  k.created_at = r.Timestamp(row, 3);
  if (!r.IsNull(row, 4)) k.forgotten_at = r.Timestamp(row, 4);
  return k;
}

std::optional<SubjectKeyRecord> FirstRecord(const PgResult& r) {
  if (r.rows() == 0) return std::nullopt;
  return RecordOf(r, 0);
}

// Runs `f(PgConnection&)` (returning a Status or StatusOr) between BEGIN
// and COMMIT on one pooled connection, rolling back when it fails; once
// more on a fresh connection if the first was lost and `retry` allows.
template <typename F>
auto InTransaction(PgDatabase* db, PgDatabase::Retry retry, F&& f)
    -> decltype(f(std::declval<PgConnection&>())) {
  return db->WithConnection(
      [&](PgConnection& conn) -> decltype(f(std::declval<PgConnection&>())) {
        absl::Status begun = conn.Exec("BEGIN").status();
        if (!begun.ok()) return begun;
        auto result = f(conn);
        if (!result.ok()) {
          if (!conn.broken()) conn.Exec("ROLLBACK").status().IgnoreError();
          return result;
        }
        absl::Status committed = conn.Exec("COMMIT").status();
        if (!committed.ok()) return committed;
        return result;
      },
      retry);
}

}  // namespace

PgSubjectKeyStore::PgSubjectKeyStore(PgDatabase* db)
    : db_(db),
      find_(db->Statement("es_sk_find", kFindSql)),
      find_for_update_(
          db->Statement("es_sk_find_for_update", kFindForUpdateSql)),
      insert_(db->Statement("es_sk_insert", kInsertSql)),
      put_(db->Statement("es_sk_put", kPutSql)),
      add_stream_(db->Statement("es_sk_add_stream", kAddStreamSql)),
      streams_(db->Statement("es_sk_streams", kStreamsSql)),
      subject_of_stream_(
          db->Statement("es_sk_subject_of_stream", kSubjectOfStreamSql)),
      forget_(db->Statement("es_sk_forget", kForgetSql)),
      delete_snapshots_(
          db->Statement("es_sk_delete_snapshots", kDeleteSnapshotsSql)),
      list_(db->Statement("es_sk_list", kListSql)),
      rewrap_(db->Statement("es_sk_rewrap", kRewrapSql)) {}

absl::StatusOr<std::optional<SubjectKeyRecord>> PgSubjectKeyStore::Find(
    std::string_view subject) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  PgParams params;
  params.Bytes(subject);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(find_, params);
  }));
  return FirstRecord(r);
}

absl::StatusOr<SubjectKeyRecord> PgSubjectKeyStore::Insert(
    std::string_view subject, std::string_view wrapped_key,
    std::string_view master_key_id) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  ES_RETURN_IF_ERROR(
      internal::ValidateWrappedKey("", wrapped_key, master_key_id));
  PgParams insert;
  insert.Bytes(subject).Bytes(wrapped_key).Bytes(master_key_id);
  PgParams find;
  find.Bytes(subject);
  // Safe to repeat: a second run finds the key the first one stored.
  return db_->WithConnection(
      [&](PgConnection& conn) -> absl::StatusOr<SubjectKeyRecord> {
        ES_ASSIGN_OR_RETURN(PgResult inserted,
                            WithoutWaitingForFlush(conn, [&] {
                              return conn.Execute(insert_, insert);
                            }));
        if (inserted.rows() == 1) return RecordOf(inserted, 0);
        // Another writer's record: committed (ON CONFLICT waited for it),
        // so this next statement sees it.
        ES_ASSIGN_OR_RETURN(PgResult r, conn.Execute(find_, find));
        std::optional<SubjectKeyRecord> stored = FirstRecord(r);
        if (!stored.has_value()) {
          return absl::AbortedError(absl::StrCat(
              "subject_keys: the record of a subject vanished while a key "
              "was stored for it; try again"));
        }
        if (stored->forgotten()) {
          return internal::ForgottenSubjectError(subject);
        }
        return *std::move(stored);
      });
}

absl::Status PgSubjectKeyStore::AddStream(std::string_view subject,
                                          std::string_view stream) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  PgParams params;
  params.Bytes(subject).Bytes(stream);
  return db_
      ->WithConnection([&](PgConnection& conn) {
        return WithoutWaitingForFlush(
            conn, [&] { return conn.Execute(add_stream_, params); });
      })
      .status();
}

absl::StatusOr<std::vector<std::string>> PgSubjectKeyStore::Streams(
    std::string_view subject) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  PgParams params;
  params.Bytes(subject);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(streams_, params);
  }));
  std::vector<std::string> streams;
  streams.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) streams.emplace_back(r.Bytes(i, 0));
  return streams;
}

absl::StatusOr<std::optional<std::string>> PgSubjectKeyStore::SubjectOfStream(
    std::string_view stream) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  PgParams params;
  params.Bytes(stream);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(subject_of_stream_, params);
  }));
  if (r.rows() == 0) return std::nullopt;
  return std::string(r.Bytes(0, 0));
}

absl::StatusOr<ForgetSubjectResult> PgSubjectKeyStore::Forget(
    std::string_view subject) {
  ES_RETURN_IF_ERROR(internal::ValidateSubject(db_->options().limits, subject));
  PgParams forget;
  forget.Bytes(subject).Null();
  PgParams by_subject;
  by_subject.Bytes(subject);
  // Safe to repeat: forgetting twice leaves the same state.
  return InTransaction(
      db_, PgDatabase::Retry::kOnceIfLost,
      [&](PgConnection& conn) -> absl::StatusOr<ForgetSubjectResult> {
        ForgetSubjectResult result;
        ES_ASSIGN_OR_RETURN(PgResult f, conn.Execute(forget_, forget));
        result.forgotten_now = f.AffectedRows() == 1;
        ES_ASSIGN_OR_RETURN(PgResult s, conn.Execute(streams_, by_subject));
        for (int i = 0; i < s.rows(); ++i) {
          result.streams.emplace_back(s.Bytes(i, 0));
        }
        ES_ASSIGN_OR_RETURN(PgResult d,
                            conn.Execute(delete_snapshots_, by_subject));
        result.snapshots_removed = d.AffectedRows();
        return result;
      });
}

absl::StatusOr<std::vector<SubjectKeyRecord>> PgSubjectKeyStore::List(
    std::string_view after, int64_t limit) {
  ES_RETURN_IF_ERROR(internal::ValidateList(after, limit));
  PgParams params;
  params.Bytes(after).Int64(limit);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(list_, params);
  }));
  std::vector<SubjectKeyRecord> records;
  records.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) records.push_back(RecordOf(r, i));
  return records;
}

absl::StatusOr<bool> PgSubjectKeyStore::Rewrap(
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
  PgParams params;
  params.Bytes(subject)
      .Bytes(expected_master_key_id)
      .Bytes(wrapped_key)
      .Bytes(master_key_id);
  // Not repeated: a second run would answer false for a rewrap that took
  // effect.
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection(
                                      [&](PgConnection& conn) {
                                        return conn.Execute(rewrap_, params);
                                      },
                                      PgDatabase::Retry::kNever));
  return r.AffectedRows() == 1;
}

absl::StatusOr<int64_t> PgSubjectKeyStore::Put(
    const std::vector<SubjectKeyRecord>& records) {
  ES_ASSIGN_OR_RETURN(
      std::vector<SubjectKeyRecord> prepared,
      internal::PreparePut(db_->options().limits, records, absl::Now()));
  if (prepared.empty()) return 0;
  // Safe to repeat: a second run keeps what the first one wrote.
  return InTransaction(
      db_, PgDatabase::Retry::kOnceIfLost,
      [&](PgConnection& conn) -> absl::StatusOr<int64_t> {
        int64_t changed = 0;
        for (const SubjectKeyRecord& rec : prepared) {
          PgParams by_subject;
          by_subject.Bytes(rec.subject);
          bool wrote = false;
          // Twice at most: an Insert may store the subject's first key
          // between the read and the write.
          for (int attempt = 0; attempt < 2 && !wrote; ++attempt) {
            ES_ASSIGN_OR_RETURN(PgResult r,
                                conn.Execute(find_for_update_, by_subject));
            ES_ASSIGN_OR_RETURN(internal::PutAction action,
                                internal::DecidePut(FirstRecord(r), rec));
            if (action == internal::PutAction::kKeep) break;
            if (action == internal::PutAction::kForget) {
              PgParams forget;
              forget.Bytes(rec.subject)
                  .Bytes(EncodeTimestamp(*rec.forgotten_at));
              ES_ASSIGN_OR_RETURN(PgResult f, conn.Execute(forget_, forget));
              wrote = f.AffectedRows() == 1;
              break;
            }
            PgParams put;
            put.Bytes(rec.subject);
            if (rec.forgotten()) {
              put.Null().Null();
            } else {
              put.Bytes(rec.wrapped_key).Bytes(rec.master_key_id);
            }
            put.Bytes(EncodeTimestamp(rec.created_at));
            if (rec.forgotten()) {
              put.Bytes(EncodeTimestamp(*rec.forgotten_at));
            } else {
              put.Null();
            }
            ES_ASSIGN_OR_RETURN(PgResult p, conn.Execute(put_, put));
            wrote = p.AffectedRows() == 1;
          }
          if (!wrote) continue;
          ++changed;
          // A subject that is forgotten now has no snapshots left.
          if (rec.forgotten()) {
            ES_RETURN_IF_ERROR(
                conn.Execute(delete_snapshots_, by_subject).status());
          }
        }
        return changed;
      });
}

}  // namespace eventstore::postgres
