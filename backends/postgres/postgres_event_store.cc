#include "backends/postgres/postgres_event_store.h"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "backends/postgres/pg_binary.h"
#include "backends/postgres/pg_checkpoint_store.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "backends/postgres/pg_dead_letter_store.h"
#include "backends/postgres/pg_event_importer.h"
#include "backends/postgres/pg_event_waiter.h"
#include "backends/postgres/pg_lease.h"
#include "backends/postgres/pg_outbox_store.h"
#include "backends/postgres/pg_read_all_sql.h"
#include "backends/postgres/pg_snapshot_store.h"
#include "backends/postgres/pg_sql_transaction.h"
#include "backends/postgres/pg_store_inspector.h"
#include "backends/postgres/pg_stream_lifecycle.h"
#include "backends/postgres/pg_subject_key_store.h"
#include "eventstore/errors.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/descriptor_set.h"
#include "eventstore/internal/event_checksum.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/internal/read_pages.h"
#include "eventstore/internal/stream_rules.h"
#include "eventstore/status_macros.h"

namespace eventstore {
namespace postgres {
namespace {

using internal::Mutex;
using internal::MutexLock;

// How often an append with Any() or StreamExists() is retried when a
// concurrent append took the version it computed.
constexpr int kMaxVersionRaceRetries = 100;

// The savepoint around each append of an AppendEach batch, once one of the
// batch's appends failed on a unique index (AppendEach).
constexpr char kBeginWithSavepoint[] = "BEGIN; SAVEPOINT es_append_each";
constexpr char kNextSavepoint[] =
    "RELEASE SAVEPOINT es_append_each; SAVEPOINT es_append_each";
constexpr char kRollbackToSavepoint[] = "ROLLBACK TO SAVEPOINT es_append_each";

// Statement texts; "$S" is replaced by the quoted schema name at open.
// Every event read has these columns, in this order (see DecodeRowInto).
#define ES_PG_EVENT_COLUMNS                                        \
  "transaction_id, position, id, stream, version, type, payload, " \
  "metadata, recorded_at, checksum"

// The version check and the insert in one statement: one round trip, and
// the statement is its own transaction. The stream's streams row is read in
// the same statement and applied as internal::AppendBaseOf does: nothing is
// inserted for a hard-deleted stream (state 2); a soft-deleted one (state 1)
// is checked as version 0, continues after its last version (the stored
// maximum or the row's floor, whichever is higher) and is set back to live
// (`rev`). Returns the version the expected version was checked against,
// then the transaction id, first and last position and count of the
// inserted rows (count 0: the expected version did not hold, or the stream
// is hard-deleted), then the highest stored version and the row's state and
// floor (NULL without a row), which AppendOnce hands to AppendBaseOf. Built
// from the parts below: the CTEs, optionally the outbox insert, the final
// SELECT, optionally a NOTIFY column, then "FROM cur". The first CTE, `cur`,
// is shared with the statement that writes key table rows too.
constexpr char kAppendCurCte[] = R"sql(
WITH cur AS (
  SELECT m.stored, r.state, r.floor,
         greatest(m.stored, coalesce(r.floor, 0)) AS last,
         CASE WHEN r.state = 1 THEN 0
              ELSE greatest(m.stored, coalesce(r.floor, 0)) END AS v
  FROM (SELECT coalesce((SELECT version FROM $S.events WHERE stream = $1::text
                         ORDER BY version DESC LIMIT 1), 0) AS stored) AS m
  LEFT JOIN (SELECT state::bigint AS state, version_floor AS floor
             FROM $S.streams WHERE stream = $1::text) AS r ON true
))sql";
constexpr char kAppendInsCtes[] = R"sql(, ins AS (
  INSERT INTO $S.events (id, stream, version, type, payload, metadata, tenant_id,
                         checksum)
  SELECT e.id, $1::text, cur.last + e.n, e.type, e.payload, e.metadata, e.tenant_id,
         e.checksum
  FROM cur, unnest($3::uuid[], $4::text[], $5::bytea[], $6::bytea[], $7::text[],
                   $8::int8[])
       WITH ORDINALITY AS e(id, type, payload, metadata, tenant_id, checksum, n)
  WHERE cur.state IS DISTINCT FROM 2
    AND CASE $2::bigint WHEN -1 THEN true
                        WHEN -2 THEN cur.v = 0
                        WHEN -3 THEN cur.v > 0
                        ELSE cur.v = $2::bigint END
  ORDER BY e.n
  RETURNING transaction_id, position
), rev AS (
  UPDATE $S.streams SET state = 0, updated_at = now()
  WHERE stream = $1::text AND state = 1 AND EXISTS (SELECT 1 FROM ins)
))sql";
// The outbox messages ($9..$12, as PgOutboxStore's Enqueue), inserted only
// when the events were: nothing is enqueued when the expected version does
// not hold, and a failed insert (a duplicate id, an exact retry) fails the
// whole statement.
constexpr char kAppendOutboxCte[] = R"sql(, obx AS (
  INSERT INTO $S.outbox (destination, message_key, payload, headers)
  SELECT m.destination, m.message_key, m.payload, m.headers
  FROM unnest($9::text[], $10::text[], $11::bytea[], $12::bytea[])
       WITH ORDINALITY AS m(destination, message_key, payload, headers, n)
  WHERE EXISTS (SELECT 1 FROM ins)
  ORDER BY m.n
))sql";
constexpr char kAppendSelect[] = R"sql(
SELECT cur.v, (SELECT transaction_id FROM ins LIMIT 1),
       (SELECT min(position) FROM ins), (SELECT max(position) FROM ins),
       (SELECT count(*) FROM ins), cur.stored, cur.state, cur.floor)sql";
constexpr char kAppendFrom[] = "\nFROM cur";

// An append that writes key table rows (AppendRequest::subject_keys), in the
// same statement: kAppendCurCte, these CTEs, optionally the outbox insert,
// kAppendSelect, kAppendKeysSelect, optionally a NOTIFY column, then
// kAppendFrom. "$K1".."$K3" (replaced when the statement is built) are the
// writes' subjects (text[]), wrapped keys and master key ids (bytea[] and
// text[], NULL where the write carries no key), in request order.
//   ok:   one row when the append may insert (as the other statements'
//         WHERE: not hard-deleted, the expected version holds), else none;
//   kins: each given key, when the append may insert, unless the subject
//         has a record (ON CONFLICT DO NOTHING, which waits for a concurrent
//         inserter of the same subject to finish);
//   kbad: the writes (their ordinal) whose key was neither inserted by kins
//         nor stored already with the same wrapped key and master key id, as
//         this statement's snapshot sees the table: another writer's key, a
//         forgotten subject, or a key a concurrent transaction committed
//         after the snapshot was taken (which cannot be compared, so it is a
//         conflict too: never accepted unseen);
//   ins:  the events, only when `ok` and no write is in kbad;
//   kst:  each subject's (subject, stream) row, only when the events were
//         inserted.
// A conflict thus writes nothing when no key was inserted (kAppendKeysSelect's
// column 8 names the first conflicting write); when the append inserted
// another subject's key besides, column 9 makes the statement fail (a cast
// error naming kKeyConflictTrap and the write's ordinal), which undoes it.
// Every write is also undone when the statement fails otherwise (an id
// stored already, a lost version race): it is one transaction.
constexpr char kAppendKeysCtes[] = R"sql(, ok AS (
  SELECT cur.last FROM cur
  WHERE cur.state IS DISTINCT FROM 2
    AND CASE $2::bigint WHEN -1 THEN true
                        WHEN -2 THEN cur.v = 0
                        WHEN -3 THEN cur.v > 0
                        ELSE cur.v = $2::bigint END
), kw AS (
  SELECT w.subject, w.wrapped_key, w.master_key_id, w.n
  FROM unnest($K1::text[], $K2::bytea[], $K3::text[])
       WITH ORDINALITY AS w(subject, wrapped_key, master_key_id, n)
), kins AS (
  INSERT INTO $S.subject_keys (subject, wrapped_key, master_key_id)
  SELECT kw.subject, kw.wrapped_key, kw.master_key_id
  FROM ok, kw
  WHERE kw.wrapped_key IS NOT NULL
  ORDER BY kw.subject
  ON CONFLICT (subject) DO NOTHING
  RETURNING subject
), kbad AS (
  SELECT kw.n
  FROM ok, kw
  WHERE kw.wrapped_key IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM kins WHERE kins.subject = kw.subject)
    AND NOT EXISTS (SELECT 1 FROM $S.subject_keys AS k
                    WHERE k.subject = kw.subject AND k.forgotten_at IS NULL
                      AND k.wrapped_key = kw.wrapped_key
                      AND k.master_key_id = kw.master_key_id)
), ins AS (
  INSERT INTO $S.events (id, stream, version, type, payload, metadata, tenant_id,
                         checksum)
  SELECT e.id, $1::text, ok.last + e.n, e.type, e.payload, e.metadata, e.tenant_id,
         e.checksum
  FROM ok, unnest($3::uuid[], $4::text[], $5::bytea[], $6::bytea[], $7::text[],
                  $8::int8[])
       WITH ORDINALITY AS e(id, type, payload, metadata, tenant_id, checksum, n)
  WHERE NOT EXISTS (SELECT 1 FROM kbad)
  ORDER BY e.n
  RETURNING transaction_id, position
), rev AS (
  UPDATE $S.streams SET state = 0, updated_at = now()
  WHERE stream = $1::text AND state = 1 AND EXISTS (SELECT 1 FROM ins)
), kst AS (
  INSERT INTO $S.subject_streams (subject, stream)
  SELECT kw.subject, $1::text FROM kw
  WHERE EXISTS (SELECT 1 FROM ins)
  ORDER BY kw.subject
  ON CONFLICT (subject, stream) DO NOTHING
))sql";
// The marker of kAppendKeysSelect's deliberate failure.
constexpr char kKeyConflictTrap[] = "es_subject_key_conflict ";
constexpr char kAppendKeysSelect[] = R"sql(,
       (SELECT min(n) FROM kbad),
       (SELECT ('es_subject_key_conflict ' || min(n))::integer FROM kbad
        WHERE EXISTS (SELECT 1 FROM kins)))sql";
// kAppendKeysSelect's columns.
constexpr int kKeyConflictColumn = 8;

// The same for one event without outbox messages (most appends): plain
// values ($3 id, $4 type, $5 payload, $6 metadata, $7 tenant, the last two
// possibly NULL, $8 checksum) instead of arrays, so the server neither decodes
// nor unnests arrays nor sorts; the same version check, the same result columns
// (count 0 or 1), optionally the same NOTIFY column, then kAppendOneFrom.
constexpr char kAppendOneSql[] = R"sql(
WITH cur AS (
  SELECT m.stored, r.state, r.floor,
         greatest(m.stored, coalesce(r.floor, 0)) AS last,
         CASE WHEN r.state = 1 THEN 0
              ELSE greatest(m.stored, coalesce(r.floor, 0)) END AS v
  FROM (SELECT coalesce((SELECT version FROM $S.events WHERE stream = $1::text
                         ORDER BY version DESC LIMIT 1), 0) AS stored) AS m
  LEFT JOIN (SELECT state::bigint AS state, version_floor AS floor
             FROM $S.streams WHERE stream = $1::text) AS r ON true
), ins AS (
  INSERT INTO $S.events (id, stream, version, type, payload, metadata, tenant_id,
                         checksum)
  SELECT $3::uuid, $1::text, cur.last + 1, $4::text, $5::bytea, $6::bytea, $7::text,
         $8::bigint
  FROM cur
  WHERE cur.state IS DISTINCT FROM 2
    AND CASE $2::bigint WHEN -1 THEN true
                        WHEN -2 THEN cur.v = 0
                        WHEN -3 THEN cur.v > 0
                        ELSE cur.v = $2::bigint END
  RETURNING transaction_id, position
), rev AS (
  UPDATE $S.streams SET state = 0, updated_at = now()
  WHERE stream = $1::text AND state = 1 AND EXISTS (SELECT 1 FROM ins)
)
SELECT cur.v, ins.transaction_id, ins.position, ins.position,
       CASE WHEN ins.position IS NULL THEN 0::bigint ELSE 1::bigint END,
       cur.stored, cur.state, cur.floor)sql";
constexpr char kAppendOneFrom[] = "\nFROM cur LEFT JOIN ins ON true";

// The same for one event appended with Exactly(n) or NoStream (n = 0), in
// the form the raw baseline of W1 uses: $2 is n, and the event is inserted
// as version n + 1 when version n exists and is not a StreamDeleted marker
// (or n is 0 and the stream has no streams row). When the stream is beyond
// n, the unique (stream, version) index refuses the insert, which AppendOnce
// turns into the wrong-expected-version error (or HardDeletedStreamError) as
// for a lost race; when nothing is inserted, the first column holds the
// highest stored version, and the streams row's state and floor follow
// (columns 6 and 7): with a row, AppendOnce runs the general statement.
// Why n + 1 is right whenever a non-marker version n exists: deletions
// write their marker at the top, and Scavenge removes only a prefix of a
// stream's non-marker rows (pg_stream_lifecycle.cc), so a stored non-marker
// version n with n + 1 free is the stream's last version. Then
// kAppendExactOneFrom.
constexpr char kAppendExactOneSql[] = R"sql(
WITH ins AS (
  INSERT INTO $S.events (id, stream, version, type, payload, metadata, tenant_id,
                         checksum)
  SELECT $3::uuid, $1::text, $2::bigint + 1, $4::text, $5::bytea, $6::bytea,
         $7::text, $8::bigint
  WHERE CASE WHEN $2::bigint = 0
             THEN NOT EXISTS (SELECT 1 FROM $S.streams WHERE stream = $1::text)
             ELSE EXISTS (SELECT 1 FROM $S.events
                          WHERE stream = $1::text AND version = $2::bigint
                            AND type <> 'eventstore.v1.StreamDeleted') END
  RETURNING transaction_id, position
), cur AS (
  SELECT CASE WHEN ins.position IS NULL
              THEN coalesce((SELECT version FROM $S.events
                             WHERE stream = $1::text
                             ORDER BY version DESC LIMIT 1), 0)
              ELSE $2::bigint END AS v
  FROM (SELECT 1) AS one LEFT JOIN ins ON true
)
SELECT cur.v, ins.transaction_id, ins.position, ins.position,
       CASE WHEN ins.position IS NULL THEN 0::bigint ELSE 1::bigint END,
       cur.v,
       CASE WHEN ins.position IS NULL
            THEN (SELECT state::bigint FROM $S.streams WHERE stream = $1::text)
       END,
       CASE WHEN ins.position IS NULL
            THEN (SELECT version_floor FROM $S.streams
                  WHERE stream = $1::text)
       END)sql";
constexpr char kAppendExactOneFrom[] =
    "\nFROM cur, (SELECT 1) AS one LEFT JOIN ins ON true";

constexpr char kSelectByIdsSql[] =
    "SELECT id, stream, version, transaction_id, position FROM $S.events "
    "WHERE id = ANY($1::uuid[])";
constexpr char kInsertTypeSql[] =
    "INSERT INTO $S.event_types (type, descriptor) VALUES ($1::text, "
    "$2::bytea) ON CONFLICT (type) DO NOTHING";
// A stream's events when it has no streams row; column 10 says whether it
// has one (then no event is returned, and ReadStream reads its window with
// the statements below). Without events, one row of NULL event columns.
#define ES_PG_READ_STREAM(cond, order)                                  \
  "SELECT e.*, h.has_row FROM (SELECT EXISTS (SELECT 1 FROM $S.streams" \
  " WHERE stream = $1::text) AS has_row) AS h LEFT JOIN LATERAL "       \
  "(SELECT " ES_PG_EVENT_COLUMNS                                        \
  " FROM $S.events WHERE stream = $1::text AND " cond                   \
  " AND NOT h.has_row ORDER BY version " order                          \
  " LIMIT $3::bigint) AS e ON true ORDER BY e.version " order
constexpr char kReadForwardSql[] =
    ES_PG_READ_STREAM("version >= $2::bigint", "");
constexpr char kReadBackwardSql[] =
    ES_PG_READ_STREAM("version <= $2::bigint", "DESC");
// The window of a stream with a row (internal::WindowOf): versions from $4,
// recorded at or after $5 (NULL: any), never a StreamDeleted event ($6).
#define ES_PG_READ_WINDOW(cond, order)                              \
  "SELECT " ES_PG_EVENT_COLUMNS                                     \
  " FROM $S.events WHERE stream = $1::text AND " cond               \
  " AND version >= $4::bigint AND ($5::timestamptz IS NULL OR"      \
  " recorded_at >= $5::timestamptz) AND type <> $6::text ORDER BY " \
  "version " order " LIMIT $3::bigint"
constexpr char kReadWindowForwardSql[] =
    ES_PG_READ_WINDOW("version >= $2::bigint", "");
constexpr char kReadWindowBackwardSql[] =
    ES_PG_READ_WINDOW("version <= $2::bigint", "DESC");
// ReadStreamPages reads a stream with a streams row in one REPEATABLE READ
// transaction, so that the row and the events come from one snapshot.
constexpr char kBeginPagesSql[] =
    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

}  // namespace

// Only transactions older than every running one: nothing can commit below
// the returned positions afterwards (docs/postgres.md). Events the stream
// lifecycle hides are left out (not StreamDeleted events), before the
// LIMIT; the test whether any streams row hides anything is evaluated once
// per statement, and when none does the rows are filtered as before. The
// category form replaces starts_with(stream, 'c-') by its equivalent
// split_part(stream, '-', 1) = 'c' AND stream <> 'c' (CategoryOfPrefix):
// the same rows, but the planner estimates the pair from the index's
// statistics and walks events_by_category in log order, where with
// starts_with beside the equality it multiplied two correlated
// selectivities, expected a few rows and fetched and sorted the whole
// category every page (docs/postgres.md).
std::string ReadAllSql(bool by_category) {
  return absl::StrCat(
      "SELECT " ES_PG_EVENT_COLUMNS
      " FROM $S.events AS e"
      " WHERE (transaction_id, position) > ($1::xid8, $2::bigint)"
      "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())",
      by_category
          ? "   AND split_part(stream, '-', 1) = $7::text"
            "   AND stream <> $7::text AND $3::text IS NOT NULL"
          : "   AND ($3::text IS NULL OR starts_with(stream, $3::text))",
      "   AND ($4::text[] IS NULL OR type = ANY($4::text[]))"
      "   AND ($5::text IS NULL OR tenant_id = $5::text)"
      "   AND (NOT (SELECT EXISTS (SELECT 1 FROM $S.streams"
      "               WHERE state <> 0 OR truncate_before IS NOT NULL"
      "                  OR max_count IS NOT NULL OR max_age_us IS NOT NULL))"
      "        OR e.type = '",
      std::string(kStreamDeletedType), "' OR NOT ",
      PgStreamLifecycle::kHiddenInReadAllSql,
      ")"
      " ORDER BY transaction_id, position LIMIT $6::bigint");
}

std::optional<std::string> CategoryOfPrefix(std::string_view prefix) {
  if (prefix.size() < 2 || prefix.find('-') != prefix.size() - 1) {
    return std::nullopt;
  }
  return std::string(prefix.substr(0, prefix.size() - 1));
}

namespace {

constexpr char kHeadSql[] =
    "SELECT transaction_id, position FROM $S.events"
    " WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY transaction_id DESC, position DESC LIMIT 1";
constexpr char kExistsSql[] = "SELECT 1 FROM $S.events WHERE id = $1::uuid";

// Decodes `row` into `event` in place (no temporary RecordedEvent is made
// and moved). `event` may hold an earlier event (ReadStreamInto,
// ReadAllInto): every field is overwritten, and its strings and metadata
// keep their allocations. A row that cannot be read
// intact (corrupt metadata, a checksum mismatch) becomes a damaged event
// (recorded_event.h) rather than an error, so that one bad row does not make
// the rest of the log unreadable. The checksum is compared only when
// `verify` (PostgresOptions::verify_checksums); `event.checksum` is set
// either way.
void DecodeRowInto(const PgResult& r, int row, bool verify,
                   RecordedEvent& event) {
  event.position = Position::FromParts(r.Uint64(row, 0), r.Uint64(row, 1));
  const std::string_view stream = r.Bytes(row, 3);
  event.stream.assign(stream.data(), stream.size());
  event.version = r.Int64(row, 4);
  const std::string_view type = r.Bytes(row, 5);
  event.type.assign(type.data(), type.size());
  const std::string_view payload = r.Bytes(row, 6);
  event.payload.assign(payload.data(), payload.size());
  event.recorded_at = r.Timestamp(row, 8);
  if (r.IsNull(row, 9)) {
    event.checksum.reset();
  } else {
    event.checksum = static_cast<uint32_t>(r.Int64(row, 9));
  }
  // What an event reused from an earlier read may still carry.
  if (!event.damage.ok()) event.damage = absl::OkStatus();
  event.payload_state = PayloadState::kAsStored;
  const std::string_view id_bytes = r.Bytes(row, 2);
  absl::StatusOr<Uuid> id = Uuid::FromBytes(id_bytes);
  if (!id.ok()) {
    event.id = Uuid();
    event.metadata.Clear();
    internal::MarkDamaged("postgres", "its id is corrupt", event);
    return;
  }
  event.id = *id;
  std::string_view metadata;
  if (r.IsNull(row, 7)) {
    event.metadata.Clear();
  } else {
    metadata = r.Bytes(row, 7);
    if (!event.metadata.ParseFromArray(metadata.data(),
                                       static_cast<int>(metadata.size()))) {
      event.metadata.Clear();
      internal::MarkDamaged("postgres",
                            absl::StrCat("its metadata does not parse (",
                                         metadata.size(), " bytes)"),
                            event);
      return;
    }
  }
  if (verify) {
    internal::VerifyStoredChecksum("postgres", id_bytes, metadata, event);
  }
}

// Every row of `r` into `out`, replacing its contents: row i is decoded
// into out[i] when there is one (its allocations reused), else appended.
void DecodeRows(const PgResult& r, bool verify,
                std::vector<RecordedEvent>& out) {
  const size_t rows = static_cast<size_t>(r.rows());
  if (out.capacity() < rows) out.reserve(rows);
  for (size_t row = 0; row < rows; ++row) {
    DecodeRowInto(r, static_cast<int>(row), verify,
                  row < out.size() ? out[row] : out.emplace_back());
  }
  out.erase(out.begin() + static_cast<std::ptrdiff_t>(rows), out.end());
}

// The subject of the write that kAppendKeysSelect's deliberate failure names
// in `status` (the cast error of column 9), or nullopt when `status` is not
// that failure.
std::optional<std::string_view> KeyConflictOfTrap(const AppendRequest& request,
                                                  const absl::Status& status) {
  if (request.subject_keys.empty() ||
      status.code() != absl::StatusCode::kInvalidArgument) {
    return std::nullopt;
  }
  const std::string_view message(status.message().data(),
                                 status.message().size());
  const size_t at = message.find(kKeyConflictTrap);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view digits = message.substr(at + sizeof(kKeyConflictTrap) - 1);
  size_t end = 0;
  while (end < digits.size() && digits[end] >= '0' && digits[end] <= '9') {
    ++end;
  }
  size_t n = 0;
  if (!absl::SimpleAtoi(std::string(digits.substr(0, end)), &n) || n < 1 ||
      n > request.subject_keys.size()) {
    return std::nullopt;
  }
  return request.subject_keys[n - 1].subject;
}

// The window read's parameters ($4 the first version, $5 the earliest
// recorded_at or NULL, $6 the marker's type) of a stream with a streams row
// (internal::WindowOf, max_age from the server's now()); false when the
// window is empty.
bool AddWindowParams(const PgStreamState& state, PgParams& params) {
  const int64_t last = std::max(
      state.max_stored, state.row.has_value() ? state.row->version_floor : 0);
  const internal::StreamWindow window =
      internal::WindowOf(state.row, last, state.now);
  if (window.empty) return false;
  params.Int64(window.min_version);
  if (window.min_recorded_at.has_value()) {
    params.Bytes(EncodeTimestamp(*window.min_recorded_at));
  } else {
    params.Null();
  }
  params.Bytes(std::string(kStreamDeletedType));
  return true;
}

// The NOTIFY column of the append statement (notify_on_append): one
// notification when the events were inserted. `schema` is validated
// ([a-z0-9_]), so it is safe inside a literal.
std::string NotifyColumn(const std::string& schema) {
  return absl::StrCat(",\n       (SELECT pg_notify('", PgEventWaiter::kChannel,
                      "', '", schema, "') FROM ins LIMIT 1)");
}

class PostgresEventStoreImpl final : public EventStore {
 public:
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(
      const PostgresOptions& options);

  using EventStore::Append;
  using EventStore::ReadStream;

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override;
  // One transaction on one connection: one round trip per append, one
  // commit; savepoints once an append failed on a unique index
  // (docs/architecture.md, "AppendEach").
  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests) override;
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override;
  // The statements of ReadStream on one pooled connection, in single-row
  // mode (PgConnection::ExecuteRows): a page is handed over as soon as its
  // rows arrived, and the read holds one page. A stream without a streams
  // row is one statement (one snapshot); one with a row is read in a
  // REPEATABLE READ transaction. Time spent in `page` counts toward
  // statement_timeout: the read is one statement.
  absl::Status ReadStreamPages(std::string_view stream,
                               const ReadStreamOptions& options,
                               int64_t page_size, PageVisitor page) override;
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override;
  // ReadStream and ReadAll decode each row into the element of the caller's
  // buffer at its index, reusing its allocations; the owned calls are these
  // into a new buffer.
  absl::Status ReadStreamInto(std::string_view stream,
                              const ReadStreamOptions& options,
                              std::vector<RecordedEvent>& events) override;
  absl::Status ReadAllInto(const ReadAllOptions& options,
                           ReadAllPage& page) override;
  absl::StatusOr<int64_t> StreamVersion(std::string_view stream) override;
  absl::StatusOr<Position> HeadPosition() override;
  absl::StatusOr<bool> EventExists(const Uuid& id) override;
  absl::StatusOr<bool> WaitForEvents(Position after,
                                     absl::Duration timeout) override;
  absl::StatusOr<DeleteResult> DeleteStream(std::string_view stream,
                                            ExpectedVersion expected,
                                            DeleteMode mode) override {
    return lifecycle_.DeleteStream(stream, expected, mode);
  }
  absl::Status SetStreamMetadata(std::string_view stream,
                                 const StreamMetadata& metadata) override {
    return lifecycle_.SetStreamMetadata(stream, metadata);
  }
  absl::StatusOr<StreamInfo> GetStreamInfo(std::string_view stream) override {
    return lifecycle_.GetStreamInfo(stream);
  }
  absl::StatusOr<ScavengeResult> Scavenge(
      const ScavengeOptions& options) override {
    return lifecycle_.Scavenge(options);
  }

  CheckpointStore& checkpoints() override { return checkpoints_; }
  DeadLetterStore& dead_letters() override { return dead_letters_; }
  OutboxStore& outbox() override { return outbox_; }
  SnapshotStore& snapshots() override { return snapshots_; }
  SubjectKeyStore& subject_keys() override { return subject_keys_; }
  EventImporter& importer() override { return importer_; }
  StoreInspector& inspector() override { return inspector_; }

  absl::StatusOr<std::unique_ptr<SqlTransaction>> BeginTransaction() override {
    return PgSqlTransaction::Begin(db_.get());
  }
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireLease(
      std::string_view name) override {
    return PgLease::TryAcquire(*db_, name);
  }
  StoreLimits limits() const override { return options_.limits; }

 private:
  explicit PostgresEventStoreImpl(std::unique_ptr<PgDatabase> db);

  PgStatement AppendStatement(const char* name, bool with_outbox) const {
    return db_->Statement(
        name,
        absl::StrCat(
            kAppendCurCte, kAppendInsCtes, with_outbox ? kAppendOutboxCte : "",
            kAppendSelect,
            db_->options().notify_on_append ? NotifyColumn(db_->schema()) : "",
            kAppendFrom));
  }

  // The append that writes key table rows (kAppendKeysCtes).
  PgStatement AppendKeysStatement(const char* name, bool with_outbox) const {
    const int k = with_outbox ? 13 : 9;
    return db_->Statement(
        name,
        absl::StrReplaceAll(absl::StrCat(kAppendCurCte, kAppendKeysCtes,
                                         with_outbox ? kAppendOutboxCte : "",
                                         kAppendSelect, kAppendKeysSelect,
                                         db_->options().notify_on_append
                                             ? NotifyColumn(db_->schema())
                                             : "",
                                         kAppendFrom),
                            {{"$K1", absl::StrCat("$", k)},
                             {"$K2", absl::StrCat("$", k + 1)},
                             {"$K3", absl::StrCat("$", k + 2)}}));
  }

  PgStatement AppendOneStatement(const char* name, const char* sql,
                                 const char* from) const {
    return db_->Statement(name, absl::StrCat(sql,
                                             db_->options().notify_on_append
                                                 ? NotifyColumn(db_->schema())
                                                 : "",
                                             from));
  }

  // Where an append's statements run inside AppendEach's transaction
  // (null for Append: each on a pooled connection, its own transaction).
  struct InBatch {
    PgConnection* conn;
    // True: each append runs in the savepoint es_append_each, rolled back
    // to when its statement fails. False: there is none, and a failing
    // statement aborts the transaction and sets `aborted`.
    bool savepoints;
    bool aborted = false;
  };

  absl::Status RecordTypes(const std::vector<internal::PreparedEvent>& events);
  absl::StatusOr<std::vector<std::optional<internal::StoredEventRef>>>
  LookUpIds(const std::vector<internal::PreparedEvent>& events,
            PgConnection* conn);
  // The statement that makes the append, with its parameters in `params`.
  // With `allow_exact_one` false, never the exact-one statement (its
  // fallback for a stream with a streams row).
  const PgStatement& BuildAppend(
      const AppendRequest& request,
      const std::vector<internal::PreparedEvent>& events, PgParams& params,
      bool allow_exact_one = true) const;
  // The append, retried when it lost a version race (Any, StreamExists).
  absl::StatusOr<AppendResult> AppendPrepared(
      const AppendRequest& request,
      const std::vector<internal::PreparedEvent>& events,
      const PgStatement& statement, const PgParams& params, InBatch* batch);
  // `*needs_general`: the exact-one statement inserted nothing and the
  // stream has a streams row; run the general statement instead.
  absl::StatusOr<AppendResult> AppendOnce(
      const AppendRequest& request,
      const std::vector<internal::PreparedEvent>& events,
      const PgStatement& statement, const PgParams& params, bool* lost_race,
      bool* needs_general, InBatch* batch);
  // What an append's expected version is checked against
  // (internal::AppendBase::current), or HardDeletedStreamError.
  absl::StatusOr<int64_t> AppendCurrent(std::string_view stream,
                                        PgConnection* conn);
  absl::Status Upcast(std::vector<RecordedEvent>& events) const;
  // ReadStreamPages on `conn`; `*delivered` once `page` was called. On
  // failure a transaction may be left open.
  absl::Status ReadPagesOn(PgConnection& conn, std::string_view stream,
                           const ReadStreamOptions& options, int64_t page_size,
                           PageVisitor page, bool* delivered);

  // Declared first: everything below uses it.
  const std::unique_ptr<PgDatabase> db_;
  const PostgresOptions& options_;
  const PgStatement append_;
  const PgStatement append_one_;
  const PgStatement append_exact_one_;
  const PgStatement append_with_outbox_;
  const PgStatement append_keys_;
  const PgStatement append_keys_with_outbox_;
  const PgStatement select_by_ids_;
  const PgStatement insert_type_;
  const PgStatement read_forward_;
  const PgStatement read_backward_;
  const PgStatement read_window_forward_;
  const PgStatement read_window_backward_;
  const PgStatement read_all_;
  const PgStatement read_all_category_;  // a prefix "<category>-"
  const PgStatement head_;
  const PgStatement exists_;

  PgCheckpointStore checkpoints_;
  PgDeadLetterStore dead_letters_;
  PgOutboxStore outbox_;
  PgSnapshotStore snapshots_;
  PgSubjectKeyStore subject_keys_;
  PgEventWaiter waiter_;
  PgEventImporter importer_;
  PgStoreInspector inspector_;
  PgStreamLifecycle lifecycle_;

  Mutex types_mu_;
  absl::flat_hash_set<std::string> recorded_types_ ABSL_GUARDED_BY(types_mu_);
  absl::flat_hash_set<std::string> undescribed_types_
      ABSL_GUARDED_BY(types_mu_);
};

PostgresEventStoreImpl::PostgresEventStoreImpl(std::unique_ptr<PgDatabase> db)
    : db_(std::move(db)),
      options_(db_->options()),
      append_(AppendStatement("es_append", /*with_outbox=*/false)),
      append_one_(
          AppendOneStatement("es_append_one", kAppendOneSql, kAppendOneFrom)),
      append_exact_one_(AppendOneStatement(
          "es_append_exact_one", kAppendExactOneSql, kAppendExactOneFrom)),
      append_with_outbox_(
          AppendStatement("es_append_outbox", /*with_outbox=*/true)),
      append_keys_(
          AppendKeysStatement("es_append_keys", /*with_outbox=*/false)),
      append_keys_with_outbox_(
          AppendKeysStatement("es_append_keys_outbox", /*with_outbox=*/true)),
      select_by_ids_(db_->Statement("es_select_by_ids", kSelectByIdsSql)),
      insert_type_(db_->Statement("es_insert_type", kInsertTypeSql)),
      read_forward_(db_->Statement("es_read_forward", kReadForwardSql)),
      read_backward_(db_->Statement("es_read_backward", kReadBackwardSql)),
      read_window_forward_(
          db_->Statement("es_read_window_forward", kReadWindowForwardSql)),
      read_window_backward_(
          db_->Statement("es_read_window_backward", kReadWindowBackwardSql)),
      read_all_(db_->Statement("es_read_all", ReadAllSql(false))),
      read_all_category_(
          db_->Statement("es_read_all_category", ReadAllSql(true))),
      head_(db_->Statement("es_head", kHeadSql)),
      exists_(db_->Statement("es_exists", kExistsSql)),
      checkpoints_(db_.get()),
      dead_letters_(db_.get()),
      outbox_(db_.get()),
      snapshots_(db_.get()),
      subject_keys_(db_.get()),
      waiter_(db_.get()),
      importer_(db_.get()),
      inspector_(db_.get()),
      lifecycle_(
          db_.get(),
          [this](const std::vector<internal::PreparedEvent>& events) {
            return RecordTypes(events);
          },
          [this] { waiter_.Notify(); }) {}

absl::StatusOr<std::unique_ptr<EventStore>> PostgresEventStoreImpl::Open(
    const PostgresOptions& options) {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<PgDatabase> db,
                      PgDatabase::Open(options));
  return std::unique_ptr<EventStore>(new PostgresEventStoreImpl(std::move(db)));
}

absl::StatusOr<bool> PostgresEventStoreImpl::WaitForEvents(
    Position after, absl::Duration timeout) {
  return waiter_.Wait(after, timeout, [this] { return HeadPosition(); });
}

absl::Status PostgresEventStoreImpl::Upcast(
    std::vector<RecordedEvent>& events) const {
  if (options_.type_registry == nullptr) return absl::OkStatus();
  return options_.type_registry->UpcastAll(events);
}

absl::Status PostgresEventStoreImpl::RecordTypes(
    const std::vector<internal::PreparedEvent>& events) {
  std::vector<std::pair<std::string, const google::protobuf::Descriptor*>> todo;
  {
    MutexLock lock(&types_mu_);
    for (const internal::PreparedEvent& event : events) {
      const std::string& type = event.source->type;
      if (recorded_types_.contains(type)) continue;
      if (event.source->descriptor == nullptr &&
          undescribed_types_.contains(type)) {
        continue;
      }
      bool pending = false;
      for (const auto& t : todo) pending = pending || t.first == type;
      if (pending) continue;
      const google::protobuf::Descriptor* descriptor =
          internal::FindEventDescriptor(type, event.source->descriptor);
      if (descriptor == nullptr) {
        undescribed_types_.insert(type);
        continue;
      }
      todo.emplace_back(type, descriptor);
    }
  }
  for (const auto& [type, descriptor] : todo) {
    const std::string set = internal::SerializedDescriptorSet(*descriptor);
    PgParams params;
    params.Bytes(type).Bytes(set);
    ES_RETURN_IF_ERROR(db_->WithConnection([&](PgConnection& conn) {
                            return conn.Execute(insert_type_, params);
                          })
                           .status());
    MutexLock lock(&types_mu_);
    recorded_types_.insert(type);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::optional<internal::StoredEventRef>>>
PostgresEventStoreImpl::LookUpIds(
    const std::vector<internal::PreparedEvent>& events, PgConnection* conn) {
  ArrayBuilder ids(kUuidOid, events.size());
  absl::flat_hash_map<Uuid, size_t> index;
  for (size_t i = 0; i < events.size(); ++i) {
    ids.Add(events[i].id.bytes());
    index[events[i].id] = i;
  }
  PgParams params;
  params.Bytes(ids.Finish());
  auto select = [&](PgConnection& c) {
    return c.Execute(select_by_ids_, params);
  };
  ES_ASSIGN_OR_RETURN(PgResult r, conn != nullptr
                                      ? select(*conn)
                                      : db_->WithConnection(select));
  std::vector<std::optional<internal::StoredEventRef>> stored(events.size());
  for (int row = 0; row < r.rows(); ++row) {
    absl::StatusOr<Uuid> id = Uuid::FromBytes(r.Bytes(row, 0));
    if (!id.ok()) continue;
    auto it = index.find(*id);
    if (it == index.end()) continue;
    stored[it->second] = internal::StoredEventRef{
        std::string(r.Bytes(row, 1)), r.Int64(row, 2),
        Position::FromParts(r.Uint64(row, 3), r.Uint64(row, 4))};
  }
  return stored;
}

absl::StatusOr<AppendResult> PostgresEventStoreImpl::AppendOnce(
    const AppendRequest& request,
    const std::vector<internal::PreparedEvent>& events,
    const PgStatement& statement, const PgParams& params, bool* lost_race,
    bool* needs_general, InBatch* batch) {
  *lost_race = false;
  *needs_general = false;
  std::string constraint;
  auto execute = [&](PgConnection& conn) {
    absl::StatusOr<PgResult> result = conn.Execute(statement, params);
    if (!result.ok()) constraint = conn.last_constraint();
    return result;
  };
  absl::StatusOr<PgResult> r =
      batch != nullptr ? execute(*batch->conn) : db_->WithConnection(execute);
  PgConnection* const conn = batch != nullptr ? batch->conn : nullptr;
  if (!r.ok() && batch != nullptr) {
    // The failed statement aborted the transaction: undo it alone, or
    // have AppendEach start again with savepoints.
    if (!batch->savepoints || batch->conn->broken()) {
      batch->aborted = true;
      return r.status();
    }
    ES_RETURN_IF_ERROR(batch->conn->Exec(kRollbackToSavepoint).status());
  }
  auto any_stored = [](const auto& stored) {
    for (const auto& s : stored) {
      if (s.has_value()) return true;
    }
    return false;
  };
  if (!r.ok()) {
    if (std::optional<std::string_view> subject =
            KeyConflictOfTrap(request, r.status())) {
      return SubjectKeyConflictError(*subject);
    }
    if (r.status().code() != absl::StatusCode::kAlreadyExists) {
      return r.status();
    }
    // A unique violation: an id already stored (a retry or a duplicate), or
    // a concurrent append took the version this one computed.
    ES_ASSIGN_OR_RETURN(auto stored, LookUpIds(events, conn));
    if (any_stored(stored)) {
      return internal::ResolveStoredIds(request, events, stored);
    }
    if (constraint == "events_stream_version_key") {
      const ExpectedVersion::Kind kind = request.expected.kind();
      if (kind == ExpectedVersion::Kind::kAny ||
          kind == ExpectedVersion::Kind::kStreamExists) {
        *lost_race = true;
        return r.status();
      }
      ES_ASSIGN_OR_RETURN(const int64_t actual,
                          AppendCurrent(request.stream, conn));
      return WrongExpectedVersionError(request.stream, request.expected,
                                       actual);
    }
    return absl::InternalError(absl::StrCat("append to stream '",
                                            std::string(request.stream),
                                            "': ", r.status().message()));
  }
  const int64_t inserted = r->Int64(0, 4);
  std::optional<internal::StreamRow> row;
  if (!r->IsNull(0, 6)) {
    row.emplace();
    ES_ASSIGN_OR_RETURN(row->state, internal::StreamStatusFromCode(
                                        request.stream, r->Int64(0, 6)));
    row->version_floor = r->Int64(0, 7);
  }
  if (inserted == 0 && row.has_value() && &statement == &append_exact_one_) {
    *needs_general = true;
    return absl::AbortedError("the exact-one append needs the general one");
  }
  if (inserted == 0) {
    // The expected version did not hold, or the stream is hard-deleted; an
    // exact retry of a committed append usually looks like this, so
    // recognise it by its ids first.
    ES_ASSIGN_OR_RETURN(auto stored, LookUpIds(events, conn));
    if (any_stored(stored)) {
      return internal::ResolveStoredIds(request, events, stored);
    }
    if (!request.subject_keys.empty() && !r->IsNull(0, kKeyConflictColumn)) {
      const int64_t n = r->Int64(0, kKeyConflictColumn);
      if (n >= 1 && n <= static_cast<int64_t>(request.subject_keys.size())) {
        return SubjectKeyConflictError(request.subject_keys[n - 1].subject);
      }
    }
    ES_ASSIGN_OR_RETURN(
        internal::AppendBase base,
        internal::AppendBaseOf(request.stream, r->Int64(0, 5), row));
    return WrongExpectedVersionError(request.stream, request.expected,
                                     base.current);
  }
  ES_ASSIGN_OR_RETURN(
      internal::AppendBase base,
      internal::AppendBaseOf(request.stream, r->Int64(0, 5), row));
  const uint64_t xid = r->Uint64(0, 1);
  AppendResult result;
  result.next_expected_version = base.last + inserted;
  result.first_position = Position::FromParts(xid, r->Uint64(0, 2));
  result.last_position = Position::FromParts(xid, r->Uint64(0, 3));
  return result;
}

absl::StatusOr<AppendResult> PostgresEventStoreImpl::Append(
    const AppendRequest& request) {
  ES_ASSIGN_OR_RETURN(std::vector<internal::PreparedEvent> events,
                      internal::PrepareAppend(options_.limits, request));
  ES_RETURN_IF_ERROR(RecordTypes(events));
  PgParams params;
  const PgStatement& statement = BuildAppend(request, events, params);
  absl::StatusOr<AppendResult> result =
      AppendPrepared(request, events, statement, params, nullptr);
  if (result.ok()) waiter_.Notify();
  return result;
}

absl::StatusOr<AppendResult> PostgresEventStoreImpl::AppendPrepared(
    const AppendRequest& request,
    const std::vector<internal::PreparedEvent>& events,
    const PgStatement& statement, const PgParams& params, InBatch* batch) {
  const PgStatement* current = &statement;
  const PgParams* current_params = &params;
  PgParams general_params;
  for (int attempt = 0;; ++attempt) {
    bool lost_race = false;
    bool needs_general = false;
    absl::StatusOr<AppendResult> result =
        AppendOnce(request, events, *current, *current_params, &lost_race,
                   &needs_general, batch);
    if (needs_general) {
      current = &BuildAppend(request, events, general_params,
                             /*allow_exact_one=*/false);
      current_params = &general_params;
      continue;
    }
    if (!lost_race || attempt == kMaxVersionRaceRetries) return result;
  }
}

absl::StatusOr<int64_t> PostgresEventStoreImpl::AppendCurrent(
    std::string_view stream, PgConnection* conn) {
  absl::StatusOr<PgStreamState> state =
      conn != nullptr ? lifecycle_.ReadState(*conn, stream)
                      : lifecycle_.ReadState(stream);
  ES_RETURN_IF_ERROR(state.status());
  ES_ASSIGN_OR_RETURN(
      internal::AppendBase base,
      internal::AppendBaseOf(stream, state->max_stored, state->row));
  return base.current;
}

absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>>
PostgresEventStoreImpl::AppendEach(absl::Span<const AppendRequest> requests) {
  if (requests.empty()) {
    return absl::InvalidArgumentError("AppendEach: no appends given");
  }
  size_t total_events = 0;
  for (const AppendRequest& request : requests) {
    total_events += request.events.size();
  }
  if (total_events > options_.limits.max_batch_events) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AppendEach: ", total_events, " events in ", requests.size(),
        " appends exceed limits.max_batch_events (",
        options_.limits.max_batch_events, ")"));
  }
  struct Prepared {
    absl::Status invalid;
    std::vector<internal::PreparedEvent> events;
    PgParams params;
    const PgStatement* statement = nullptr;
  };
  std::vector<Prepared> prepared(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    absl::StatusOr<std::vector<internal::PreparedEvent>> events =
        internal::PrepareAppend(options_.limits, requests[i]);
    if (!events.ok()) {
      prepared[i].invalid = events.status();
      continue;
    }
    prepared[i].events = *std::move(events);
    // Before the batch's connection is taken: on a connection of its own.
    ES_RETURN_IF_ERROR(RecordTypes(prepared[i].events));
    prepared[i].statement =
        &BuildAppend(requests[i], prepared[i].events, prepared[i].params);
  }
  ES_ASSIGN_OR_RETURN(PgPool::Lease conn, db_->Acquire());
  // Ends the transaction after a failure, unless the connection is lost
  // (the pool then drops it).
  auto abandon = [&conn](absl::Status status) {
    if (status.ok()) return status;
    if (!conn->broken()) conn->Exec("ROLLBACK").status().IgnoreError();
    if (absl::IsUnavailable(status)) {
      return absl::UnavailableError(absl::StrCat(
          status.message(),
          "; which appends of the batch committed is unknown (retrying the "
          "batch is safe: appends are idempotent by event id)"));
    }
    return status;
  };
  // First without savepoints (one round trip per append); when a statement
  // fails (a duplicate id, an exact retry, a lost version race), the
  // transaction is aborted, so the batch runs again with a savepoint around
  // each append.
  for (int pass = 0;; ++pass) {
    InBatch batch{&*conn, /*savepoints=*/pass > 0};
    ES_RETURN_IF_ERROR(abandon(
        conn->Exec(batch.savepoints ? kBeginWithSavepoint : "BEGIN").status()));
    std::vector<absl::StatusOr<AppendResult>> results;
    results.reserve(requests.size());
    bool any_written = false;
    bool savepoint_used = false;
    absl::Status aborted;
    for (size_t i = 0; i < requests.size(); ++i) {
      if (!prepared[i].invalid.ok()) {
        results.emplace_back(prepared[i].invalid);
        continue;
      }
      if (savepoint_used) {
        ES_RETURN_IF_ERROR(abandon(conn->Exec(kNextSavepoint).status()));
        savepoint_used = false;
      }
      absl::StatusOr<AppendResult> result =
          AppendPrepared(requests[i], prepared[i].events,
                         *prepared[i].statement, prepared[i].params, &batch);
      if (batch.aborted) {
        aborted = result.status();
        break;
      }
      if (!result.ok() && !internal::FailsAloneInBatch(result.status())) {
        return abandon(result.status());
      }
      if (result.ok() && !result->idempotent_retry) {
        any_written = true;
        savepoint_used = batch.savepoints;
      }
      results.push_back(std::move(result));
    }
    if (batch.aborted) {
      if (conn->broken() || pass > 0) return abandon(aborted);
      ES_RETURN_IF_ERROR(abandon(conn->Exec("ROLLBACK").status()));
      continue;
    }
    absl::StatusOr<PgResult> committed = conn->Exec("COMMIT");
    if (!committed.ok()) {
      if (conn->broken()) {
        return absl::UnavailableError(absl::StrCat(
            committed.status().message(),
            "; whether the batch of appends committed is unknown (retrying "
            "it is safe: appends are idempotent by event id)"));
      }
      return abandon(committed.status());
    }
    if (committed->CommandTag() == "ROLLBACK") {
      return absl::InternalError(
          "postgres: the batch of appends was rolled back at commit");
    }
    if (any_written) waiter_.Notify();
    return results;
  }
}

const PgStatement& PostgresEventStoreImpl::BuildAppend(
    const AppendRequest& request,
    const std::vector<internal::PreparedEvent>& events, PgParams& params,
    bool allow_exact_one) const {
  const bool keys = !request.subject_keys.empty();
  const bool one = events.size() == 1 && request.outbox.empty() && !keys;
  const ExpectedVersion::Kind kind = request.expected.kind();
  const bool exact_one = allow_exact_one && one &&
                         (kind == ExpectedVersion::Kind::kExactly ||
                          kind == ExpectedVersion::Kind::kNoStream);
  params.Bytes(request.stream)
      .Int64(exact_one ? request.expected.version()
                       : request.expected.ToWire());
  if (one) {
    // The single-event statement: the same values as scalars.
    const internal::PreparedEvent& event = events.front();
    params.Bytes(event.id.bytes())
        .Bytes(event.source->type)
        .Bytes(event.source->payload);
    if (event.metadata.empty()) {
      params.Null();
    } else {
      params.Bytes(event.metadata);
    }
    const std::string& tenant = event.source->metadata.tenant_id();
    if (tenant.empty()) {
      params.Null();
    } else {
      params.Bytes(tenant);
    }
    params.Int64(static_cast<int64_t>(event.checksum));
  } else {
    ArrayBuilder ids(kUuidOid, events.size());
    ArrayBuilder types(kTextOid, events.size());
    ArrayBuilder payloads(kByteaOid, events.size());
    ArrayBuilder metadata(kByteaOid, events.size());
    ArrayBuilder tenants(kTextOid, events.size());
    ArrayBuilder checksums(kInt8Oid, events.size());
    size_t payload_bytes = 0;
    for (const internal::PreparedEvent& event : events) {
      payload_bytes += event.source->payload.size() + 4;
    }
    payloads.Reserve(payload_bytes);
    for (const internal::PreparedEvent& event : events) {
      ids.Add(event.id.bytes());
      types.Add(event.source->type);
      payloads.Add(event.source->payload);
      if (event.metadata.empty()) {
        metadata.AddNull();
      } else {
        metadata.Add(event.metadata);
      }
      const std::string& tenant = event.source->metadata.tenant_id();
      if (tenant.empty()) {
        tenants.AddNull();
      } else {
        tenants.Add(tenant);
      }
      checksums.Add(EncodeInt64(static_cast<int64_t>(event.checksum)));
    }
    params.Bytes(ids.Finish())
        .Bytes(types.Finish())
        .Bytes(payloads.Finish())
        .Bytes(metadata.Finish())
        .Bytes(tenants.Finish())
        .Bytes(checksums.Finish());
  }
  if (!request.outbox.empty()) {
    // With the first event's metadata as headers.
    std::vector<OutboxMessage> with_headers;
    const OutboxArrays outbox = EncodeOutboxMessages(
        internal::OutboxWithEventHeaders(request, with_headers));
    params.Bytes(outbox.destinations)
        .Bytes(outbox.keys)
        .Bytes(outbox.payloads)
        .Bytes(outbox.headers);
  }
  if (keys) {
    ArrayBuilder subjects(kTextOid, request.subject_keys.size());
    ArrayBuilder wrapped(kByteaOid, request.subject_keys.size());
    ArrayBuilder master_ids(kTextOid, request.subject_keys.size());
    for (const SubjectKeyWrite& write : request.subject_keys) {
      subjects.Add(write.subject);
      if (write.wrapped_key.empty()) {
        wrapped.AddNull();
        master_ids.AddNull();
      } else {
        wrapped.Add(write.wrapped_key);
        master_ids.Add(write.master_key_id);
      }
    }
    params.Bytes(subjects.Finish())
        .Bytes(wrapped.Finish())
        .Bytes(master_ids.Finish());
    return request.outbox.empty() ? append_keys_ : append_keys_with_outbox_;
  }
  static_assert(kStreamDeletedType == "eventstore.v1.StreamDeleted",
                "kAppendExactOneSql names the marker's type");
  return exact_one                ? append_exact_one_
         : one                    ? append_one_
         : request.outbox.empty() ? append_
                                  : append_with_outbox_;
}

absl::StatusOr<std::vector<RecordedEvent>> PostgresEventStoreImpl::ReadStream(
    std::string_view stream, const ReadStreamOptions& options) {
  std::vector<RecordedEvent> events;
  ES_RETURN_IF_ERROR(ReadStreamInto(stream, options, events));
  return events;
}

absl::Status PostgresEventStoreImpl::ReadStreamInto(
    std::string_view stream, const ReadStreamOptions& options,
    std::vector<RecordedEvent>& events) {
  ES_RETURN_IF_ERROR(internal::ValidateStreamName(options_.limits, stream));
  ES_RETURN_IF_ERROR(internal::ValidateReadStreamOptions(options));
  const bool forward = options.direction == Direction::kForward;
  if (options.max_count == 0) {
    events.clear();
    return absl::OkStatus();
  }
  PgParams params;
  params.Bytes(stream)
      .Int64(options.from_version.value_or(forward ? 1 : kUnlimited))
      .Int64(options.max_count);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(forward ? read_forward_ : read_backward_, params);
  }));
  if (r.rows() > 0 && r.Bool(0, 10)) {
    // The stream has a streams row: read its window (max_age from the
    // server's now()).
    ES_ASSIGN_OR_RETURN(PgStreamState state, lifecycle_.ReadState(stream));
    if (!AddWindowParams(state, params)) {
      events.clear();
      return absl::OkStatus();
    }
    ES_ASSIGN_OR_RETURN(r, db_->WithConnection([&](PgConnection& conn) {
      return conn.Execute(
          forward ? read_window_forward_ : read_window_backward_, params);
    }));
  } else if (r.rows() == 1 && r.IsNull(0, 2)) {
    events.clear();  // No events.
    return absl::OkStatus();
  }
  DecodeRows(r, options_.verify_checksums, events);
  return Upcast(events);
}

absl::Status PostgresEventStoreImpl::ReadStreamPages(
    std::string_view stream, const ReadStreamOptions& options,
    int64_t page_size, PageVisitor page) {
  if (page_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: ", page_size, " is not 1 or more"));
  }
  ES_RETURN_IF_ERROR(internal::ValidateStreamName(options_.limits, stream));
  ES_RETURN_IF_ERROR(internal::ValidateReadStreamOptions(options));
  if (options.max_count == 0) return absl::OkStatus();
  bool delivered = false;
  for (int attempt = 0;; ++attempt) {
    ES_ASSIGN_OR_RETURN(PgPool::Lease conn, db_->Acquire());
    absl::Status status =
        ReadPagesOn(*conn, stream, options, page_size, page, &delivered);
    if (status.ok()) return status;
    // Ends a transaction left open (the window read's) unless the
    // connection is lost; the pool closes a connection that is lost or still
    // in a transaction instead of lending it again.
    if (!conn->broken() && conn->InTransaction()) {
      conn->Exec("ROLLBACK").status().IgnoreError();
    }
    // A lost connection is tried once more while no page was handed over
    // (after one, a second read would hand pages over twice).
    if (!conn->broken() || delivered || attempt == 1) return status;
  }
}

absl::Status PostgresEventStoreImpl::ReadPagesOn(
    PgConnection& conn, std::string_view stream,
    const ReadStreamOptions& options, int64_t page_size, PageVisitor page,
    bool* delivered) {
  const bool forward = options.direction == Direction::kForward;
  PgParams params;
  params.Bytes(stream)
      .Int64(options.from_version.value_or(forward ? 1 : kUnlimited))
      .Int64(options.max_count);
  const size_t reserve =
      static_cast<size_t>(std::min<int64_t>(page_size, 1024));
  std::vector<RecordedEvent> events;
  events.reserve(reserve);
  auto flush = [&]() -> absl::Status {
    if (events.empty()) return absl::OkStatus();
    std::vector<RecordedEvent> full = std::move(events);
    events.clear();
    events.reserve(reserve);
    ES_RETURN_IF_ERROR(Upcast(full));
    *delivered = true;
    return internal::HandOverInPages(std::move(full), page_size, page);
  };
  auto add = [&](const PgResult& r, int row) -> absl::Status {
    DecodeRowInto(r, row, options_.verify_checksums, events.emplace_back());
    if (static_cast<int64_t>(events.size()) < page_size) {
      return absl::OkStatus();
    }
    return flush();
  };
  // The first statement: the events when the stream has no streams row,
  // else one row saying it has one (column 10); one row of NULL events
  // when there are none.
  bool has_row = false;
  ES_RETURN_IF_ERROR(
      conn.ExecuteRows(forward ? read_forward_ : read_backward_, params,
                       [&](const PgResult& r, int row) -> absl::Status {
                         if (r.Bool(row, 10)) {
                           has_row = true;
                           return absl::OkStatus();
                         }
                         if (r.IsNull(row, 2))
                           return absl::OkStatus();  // No events.
                         return add(r, row);
                       }));
  if (!has_row) return flush();
  // Its window (as ReadStream), the row and the events from one snapshot.
  ES_RETURN_IF_ERROR(conn.Exec(kBeginPagesSql).status());
  ES_ASSIGN_OR_RETURN(PgStreamState state, lifecycle_.ReadState(conn, stream));
  if (AddWindowParams(state, params)) {
    ES_RETURN_IF_ERROR(conn.ExecuteRows(
        forward ? read_window_forward_ : read_window_backward_, params, add));
    ES_RETURN_IF_ERROR(flush());
  }
  return conn.Exec("COMMIT").status();
}

absl::StatusOr<ReadAllPage> PostgresEventStoreImpl::ReadAll(
    const ReadAllOptions& options) {
  ReadAllPage page;
  ES_RETURN_IF_ERROR(ReadAllInto(options, page));
  return page;
}

absl::Status PostgresEventStoreImpl::ReadAllInto(const ReadAllOptions& options,
                                                 ReadAllPage& page) {
  if (options.max_count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_count: ", options.max_count, " is negative"));
  }
  page.next_position = options.from_position;
  page.end_of_log = false;
  if (options.max_count == 0) {
    page.events.clear();
    return absl::OkStatus();
  }
  PgParams params;
  params.Int64(static_cast<int64_t>(options.from_position.commit()))
      .Int64(static_cast<int64_t>(options.from_position.prepare()));
  AddFilterParams(options.filter, params);
  params.Int64(options.max_count);
  const std::optional<std::string> category =
      CategoryOfPrefix(options.filter.stream_prefix);
  if (category.has_value()) params.Bytes(*category);
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(category.has_value() ? read_all_category_ : read_all_,
                        params);
  }));
  DecodeRows(r, options_.verify_checksums, page.events);
  page.end_of_log =
      static_cast<int64_t>(page.events.size()) < options.max_count;
  if (!page.events.empty()) page.next_position = page.events.back().position;
  return Upcast(page.events);
}

absl::StatusOr<int64_t> PostgresEventStoreImpl::StreamVersion(
    std::string_view stream) {
  ES_RETURN_IF_ERROR(internal::ValidateStreamName(options_.limits, stream));
  ES_ASSIGN_OR_RETURN(PgStreamState state, lifecycle_.ReadState(stream));
  return internal::VisibleVersionOf(state.max_stored, state.row);
}

absl::StatusOr<Position> PostgresEventStoreImpl::HeadPosition() {
  PgParams params;
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(head_, params);
  }));
  if (r.rows() == 0) return Position::Start();
  return Position::FromParts(r.Uint64(0, 0), r.Uint64(0, 1));
}

absl::StatusOr<bool> PostgresEventStoreImpl::EventExists(const Uuid& id) {
  PgParams params;
  params.Bytes(id.bytes());
  ES_ASSIGN_OR_RETURN(PgResult r, db_->WithConnection([&](PgConnection& conn) {
    return conn.Execute(exists_, params);
  }));
  return r.rows() > 0;
}

}  // namespace
}  // namespace postgres

absl::StatusOr<std::unique_ptr<EventStore>> PostgresEventStore::Open(
    const PostgresOptions& options) {
  return postgres::PostgresEventStoreImpl::Open(options);
}

absl::StatusOr<SchemaUpgrade> PostgresEventStore::UpgradeSchema(
    const PostgresOptions& options) {
  return postgres::PgDatabase::UpgradeSchema(options);
}

}  // namespace eventstore
