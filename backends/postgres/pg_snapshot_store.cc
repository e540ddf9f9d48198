#include "backends/postgres/pg_snapshot_store.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_binary.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {
namespace {

constexpr char kSaveSql[] =
    "INSERT INTO $S.snapshots AS s (stream, schema_version, version, type,"
    " state, taken_at)"
    " VALUES ($1::text, $2::bigint, $3::bigint, $4::text, $5::bytea,"
    " coalesce($6::timestamptz, now()))"
    " ON CONFLICT (stream, schema_version) DO UPDATE SET"
    "   version = EXCLUDED.version, type = EXCLUDED.type,"
    "   state = EXCLUDED.state, taken_at = EXCLUDED.taken_at"
    " WHERE s.version <= EXCLUDED.version";
constexpr char kLoadSql[] =
    "SELECT version, type, state, taken_at FROM $S.snapshots"
    " WHERE stream = $1::text AND schema_version = $2::bigint";
constexpr char kDeleteSql[] =
    "DELETE FROM $S.snapshots WHERE stream = $1::text";

}  // namespace

PgSnapshotStore::PgSnapshotStore(PgDatabase* db)
    : db_(db),
      save_(db->Statement("es_sn_save", kSaveSql)),
      load_(db->Statement("es_sn_load", kLoadSql)),
      delete_(db->Statement("es_sn_delete", kDeleteSql)) {}

absl::Status PgSnapshotStore::Save(const Snapshot& snapshot) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, snapshot.stream));
  if (snapshot.version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("version: ", snapshot.version, " is negative"));
  }
  PgParams params;
  params.Bytes(snapshot.stream)
      .Int64(snapshot.schema_version)
      .Int64(snapshot.version)
      .Bytes(snapshot.type)
      .Bytes(snapshot.state);
  const absl::Time t = snapshot.taken_at;
  if (t == absl::UnixEpoch() || t == absl::InfinitePast() ||
      t == absl::InfiniteFuture()) {
    params.Null();
  } else {
    params.Bytes(EncodeTimestamp(t));
  }
  // Saving twice leaves the same state: safe to repeat.
  return db_
      ->WithConnection(
          [&](PgConnection& conn) { return conn.Execute(save_, params); })
      .status();
}

absl::StatusOr<std::optional<Snapshot>> PgSnapshotStore::Load(
    std::string_view stream, int32_t schema_version) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  PgParams params;
  params.Bytes(stream).Int64(schema_version);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(load_, params);
  }));
  if (r.rows() == 0) return std::nullopt;
  Snapshot s;
  s.stream = std::string(stream);
  s.schema_version = schema_version;
  s.version = r.Int64(0, 0);
  s.type = std::string(r.Bytes(0, 1));
  s.state = std::string(r.Bytes(0, 2));
  s.taken_at = r.Timestamp(0, 3);
  return s;
}

absl::Status PgSnapshotStore::Delete(std::string_view stream) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  PgParams params;
  params.Bytes(stream);
  return db_
      ->WithConnection(
          [&](PgConnection& conn) { return conn.Execute(delete_, params); })
      .status();
}

}  // namespace eventstore::postgres
