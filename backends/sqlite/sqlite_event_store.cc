#include "backends/sqlite/sqlite_event_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_checkpoint_store.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_database.h"
#include "backends/sqlite/sqlite_dead_letter_store.h"
#include "backends/sqlite/sqlite_event_filter.h"
#include "backends/sqlite/sqlite_event_importer.h"
#include "backends/sqlite/sqlite_event_rows.h"
#include "backends/sqlite/sqlite_lease.h"
#include "backends/sqlite/sqlite_outbox_store.h"
#include "backends/sqlite/sqlite_snapshot_store.h"
#include "backends/sqlite/sqlite_sql_transaction.h"
#include "backends/sqlite/sqlite_store_inspector.h"
#include "backends/sqlite/sqlite_stream_lifecycle.h"
#include "backends/sqlite/sqlite_subject_key_store.h"
#include "eventstore/errors.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/descriptor_set.h"
#include "eventstore/internal/event_checksum.h"
#include "eventstore/internal/read_pages.h"
#include "eventstore/internal/stream_rules.h"
#include "eventstore/status_macros.h"

namespace eventstore {
namespace sqlite {
namespace {

// How often WaitForEvents looks at the head of the log when no append of
// this store wakes it: appends by other processes (or other stores on the
// same file) are noticed within this.
constexpr absl::Duration kWaitPollInterval = absl::Milliseconds(100);

constexpr char kInsertEvent[] =
    "INSERT INTO events (id, stream, version, type, payload, metadata, "
    "tenant_id, recorded_at, checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
    "?8, ?9)";
constexpr char kSelectById[] =
    "SELECT stream, version, position FROM events WHERE id = ?1";
constexpr char kInsertType[] =
    "INSERT OR IGNORE INTO event_types (type, descriptor, recorded_at) "
    "VALUES (?1, ?2, ?3)";
constexpr char kReadForward[] =
    "SELECT " ES_EVENT_COLUMNS
    " FROM events WHERE stream = ?1 AND version >= ?2 "
    "ORDER BY version LIMIT ?3";
constexpr char kReadBackward[] =
    "SELECT " ES_EVENT_COLUMNS
    " FROM events WHERE stream = ?1 AND version <= ?2 "
    "ORDER BY version DESC LIMIT ?3";
// ReadStream within a stream's window (internal::WindowOf): ?4 the lowest
// version, ?5 the earliest recorded_at; never the StreamDeleted event.
constexpr char kReadForwardWindow[] =
    "SELECT " ES_EVENT_COLUMNS
    " FROM events WHERE stream = ?1 AND version >= ?2 AND version >= ?4 "
    "AND recorded_at >= ?5 AND type <> 'eventstore.v1.StreamDeleted' "
    "ORDER BY version LIMIT ?3";
constexpr char kReadBackwardWindow[] =
    "SELECT " ES_EVENT_COLUMNS
    " FROM events WHERE stream = ?1 AND version <= ?2 AND version >= ?4 "
    "AND recorded_at >= ?5 AND type <> 'eventstore.v1.StreamDeleted' "
    "ORDER BY version DESC LIMIT ?3";
constexpr char kReadAllBase[] =
    "SELECT " ES_EVENT_COLUMNS " FROM events WHERE position > ?";
constexpr char kSelectHead[] = "SELECT max(position) FROM events";
constexpr char kSelectExists[] = "SELECT 1 FROM events WHERE id = ?1";

// The most events reserved up front without knowing how many rows will come.
constexpr int64_t kMaxReserve = 4096;

// Where each prepared event's id is already stored, if anywhere.
absl::StatusOr<std::vector<std::optional<internal::StoredEventRef>>> LookUpIds(
    SqliteConnection& conn,
    const std::vector<internal::PreparedEvent>& events) {
  std::vector<std::optional<internal::StoredEventRef>> stored(events.size());
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectById));
  for (size_t i = 0; i < events.size(); ++i) {
    stmt->BindBlob(1, events[i].id.bytes());
    ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (row) {
      stored[i] = internal::StoredEventRef{
          std::string(stmt->ColumnText(0)), stmt->ColumnInt64(1),
          Position::At(static_cast<uint64_t>(stmt->ColumnInt64(2)))};
    }
    stmt->Reset();
  }
  return stored;
}

bool AnyStored(
    const std::vector<std::optional<internal::StoredEventRef>>& stored) {
  for (const auto& s : stored) {
    if (s.has_value()) return true;
  }
  return false;
}

// The savepoint that holds one append of an AppendEach batch.
constexpr char kSavepoint[] = "SAVEPOINT es_append_each";
constexpr char kReleaseSavepoint[] = "RELEASE es_append_each";
constexpr char kRollbackToSavepoint[] = "ROLLBACK TO es_append_each";

// Where one append's writes are made: its own transaction (Append) or a
// savepoint inside AppendEach's transaction. Commit() commits the
// transaction or releases the savepoint (its writes then commit with the
// enclosing transaction); otherwise the destructor undoes the writes, and
// only them.
class AppendScope {
 public:
  static absl::StatusOr<AppendScope> Transaction(SqliteConnection& conn) {
    ES_ASSIGN_OR_RETURN(
        SqliteTransaction txn,
        SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kImmediate));
    return AppendScope(conn, std::move(txn));
  }
  // REQUIRES: a transaction is open on `conn`.
  static absl::StatusOr<AppendScope> Savepoint(SqliteConnection& conn) {
    ES_RETURN_IF_ERROR(Run(conn, kSavepoint));
    return AppendScope(conn, std::nullopt);
  }
  AppendScope(AppendScope&& other) noexcept
      : conn_(other.conn_),
        txn_(std::move(other.txn_)),
        savepoint_open_(other.savepoint_open_) {
    other.savepoint_open_ = false;
  }
  AppendScope& operator=(AppendScope&&) = delete;
  ~AppendScope() { Rollback(); }

  absl::Status Commit() {
    if (txn_.has_value()) return txn_->Commit();
    ES_RETURN_IF_ERROR(Run(*conn_, kReleaseSavepoint));
    savepoint_open_ = false;
    return absl::OkStatus();
  }
  // Undoes the writes now; the destructor then does nothing. Errors are
  // ignored: they mean SQLite already rolled back the whole transaction,
  // which AppendEach notices.
  void Rollback() {
    if (txn_.has_value()) {
      txn_->Rollback();
      return;
    }
    if (!savepoint_open_) return;
    savepoint_open_ = false;
    if (sqlite3_get_autocommit(conn_->handle()) != 0) return;
    Run(*conn_, kRollbackToSavepoint).IgnoreError();
    Run(*conn_, kReleaseSavepoint).IgnoreError();
  }

 private:
  AppendScope(SqliteConnection& conn, std::optional<SqliteTransaction> txn)
      : conn_(&conn), txn_(std::move(txn)), savepoint_open_(!txn_) {}

  static absl::Status Run(SqliteConnection& conn, const char* sql) {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(sql));
    return stmt->Run();
  }

  SqliteConnection* conn_;
  std::optional<SqliteTransaction> txn_;
  bool savepoint_open_;
};

class SqliteEventStoreImpl final : public EventStore {
 public:
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(
      const SqliteOptions& options);

  using EventStore::Append;
  using EventStore::ReadStream;

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override;
  // One IMMEDIATE transaction under the writer lock, each append in a
  // savepoint of its own (docs/architecture.md, "AppendEach").
  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests) override;
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override;
  // One deferred read transaction on one reader, stepping ReadStream's
  // statement; a page is handed over as soon as it is full.
  absl::Status ReadStreamPages(std::string_view stream,
                               const ReadStreamOptions& options,
                               int64_t page_size, PageVisitor page) override;
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override;
  // ReadStream and ReadAll decode each row into the element of the caller's
  // buffer at its index, reusing its allocations (DecodeRowInto); the owned
  // calls are these into a new buffer.
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
                                            DeleteMode mode) override;
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
  StoreLimits limits() const override { return db_->options().limits; }

  absl::StatusOr<std::unique_ptr<SqlTransaction>> BeginTransaction() override;
  absl::StatusOr<std::unique_ptr<Lease>> TryAcquireLease(
      std::string_view name) override;

 private:
  explicit SqliteEventStoreImpl(std::unique_ptr<SqliteDatabase> db)
      : db_(std::move(db)),
        checkpoints_(db_.get()),
        dead_letters_(db_.get()),
        outbox_(db_.get()),
        snapshots_(db_.get()),
        subject_keys_(db_.get()),
        leases_(db_->options().path),
        importer_(db_.get()),
        inspector_(db_.get(), &leases_),
        lifecycle_(db_.get()) {}

  // The append on the writer connection `conn`, in its own transaction.
  // REQUIRES: the writer lock is held.
  absl::StatusOr<AppendResult> AppendLocked(
      SqliteConnection& conn, const AppendRequest& request,
      const std::vector<internal::PreparedEvent>& events);
  // The append inside `scope`, which it commits when the append succeeds
  // and writes something; the types whose descriptors it then recorded are
  // added to `committed_types` (for recorded_types_ once they are
  // committed). REQUIRES: the writer lock is held.
  absl::StatusOr<AppendResult> AppendInScope(
      SqliteConnection& conn, AppendScope& scope, const AppendRequest& request,
      const std::vector<internal::PreparedEvent>& events,
      std::vector<std::string>& committed_types);
  // Writes the batch inside the open transaction at versions last + 1
  // onwards. REQUIRES: the writer lock.
  absl::StatusOr<AppendResult> InsertBatch(
      SqliteConnection& conn, const AppendRequest& request,
      const std::vector<internal::PreparedEvent>& events, int64_t last,
      int64_t now_micros, std::vector<std::string>& new_types);
  // Records descriptors of types not recorded yet. REQUIRES: the writer
  // lock.
  absl::Status RecordTypes(SqliteConnection& conn,
                           const std::vector<internal::PreparedEvent>& events,
                           int64_t now_micros,
                           std::vector<std::string>& new_types);
  absl::Status Upcast(std::vector<RecordedEvent>& events) const;
  // Upcasts `events` (rows read for ReadStreamPages) and hands them to
  // `page`, split into pages of page_size when upcasting made more.
  absl::Status HandOver(std::vector<RecordedEvent> events, int64_t page_size,
                        PageVisitor page) const;
  // Runs ReadStream's statement for (stream, options) on a reader, in one
  // snapshot with the stream's row, and calls `rows(SqliteStatement&,
  // int64_t expected)` with it bound and not yet stepped (`expected`: how
  // many rows to reserve room for), returning what `rows` returns; `rows`
  // is not called when the stream's window is empty. REQUIRES: the stream
  // name and options are valid and options.max_count > 0.
  template <typename Rows>
  absl::Status ReadStreamRows(std::string_view stream,
                              const ReadStreamOptions& options, Rows&& rows);

  // Declared first: the repositories use it until they are destroyed.
  const std::unique_ptr<SqliteDatabase> db_;
  // Types whose descriptor is stored (or that have none to store). Guarded
  // by the database's writer lock.
  absl::flat_hash_set<std::string> recorded_types_;
  absl::flat_hash_set<std::string> undescribed_types_;

  SqliteCheckpointStore checkpoints_;
  SqliteDeadLetterStore dead_letters_;
  SqliteOutboxStore outbox_;
  SqliteSnapshotStore snapshots_;
  SqliteSubjectKeyStore subject_keys_;
  SqliteLeases leases_;
  SqliteEventImporter importer_;
  SqliteStoreInspector inspector_;
  SqliteStreamLifecycle lifecycle_;
};

absl::StatusOr<std::unique_ptr<EventStore>> SqliteEventStoreImpl::Open(
    const SqliteOptions& options) {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<SqliteDatabase> db,
                      SqliteDatabase::Open(options));
  return std::unique_ptr<EventStore>(new SqliteEventStoreImpl(std::move(db)));
}

absl::Status SqliteEventStoreImpl::Upcast(
    std::vector<RecordedEvent>& events) const {
  if (db_->options().type_registry == nullptr) return absl::OkStatus();
  return db_->options().type_registry->UpcastAll(events);
}

absl::StatusOr<AppendResult> SqliteEventStoreImpl::Append(
    const AppendRequest& request) {
  ES_ASSIGN_OR_RETURN(std::vector<internal::PreparedEvent> events,
                      internal::PrepareAppend(db_->options().limits, request));
  absl::StatusOr<AppendResult> result;
  {
    absl::StatusOr<SqliteDatabase::WriterLock> lock = db_->LockWriter();
    if (!lock.ok()) return lock.status();
    result = AppendLocked(lock->connection(), request, events);
  }
  // Outside the writer lock, so that the waiters woken can read at once.
  if (result.ok()) db_->NotifyAppend();
  return result;
}

absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>>
SqliteEventStoreImpl::AppendEach(absl::Span<const AppendRequest> requests) {
  if (requests.empty()) {
    return absl::InvalidArgumentError("AppendEach: no appends given");
  }
  size_t total_events = 0;
  for (const AppendRequest& request : requests) {
    total_events += request.events.size();
  }
  if (total_events > db_->options().limits.max_batch_events) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AppendEach: ", total_events, " events in ", requests.size(),
        " appends exceed limits.max_batch_events (",
        db_->options().limits.max_batch_events, ")"));
  }
  std::vector<absl::StatusOr<AppendResult>> results;
  std::vector<std::vector<internal::PreparedEvent>> prepared(requests.size());
  results.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    absl::StatusOr<std::vector<internal::PreparedEvent>> events =
        internal::PrepareAppend(db_->options().limits, requests[i]);
    if (events.ok()) {
      prepared[i] = *std::move(events);
      results.emplace_back(AppendResult());
    } else {
      results.emplace_back(events.status());
    }
  }
  bool any_written = false;
  {
    absl::StatusOr<SqliteDatabase::WriterLock> lock = db_->LockWriter();
    if (!lock.ok()) return lock.status();
    SqliteConnection& conn = lock->connection();
    ES_ASSIGN_OR_RETURN(
        SqliteTransaction txn,
        SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kImmediate));
    std::vector<std::string> committed_types;
    for (size_t i = 0; i < requests.size(); ++i) {
      if (!results[i].ok()) continue;
      ES_ASSIGN_OR_RETURN(AppendScope scope, AppendScope::Savepoint(conn));
      results[i] =
          AppendInScope(conn, scope, requests[i], prepared[i], committed_types);
      if (results[i].ok()) {
        any_written = any_written || !results[i]->idempotent_retry;
        continue;
      }
      scope.Rollback();
      // Any other failure, or one after which SQLite rolled the whole
      // transaction back itself, ends the batch: nothing is committed.
      if (!internal::FailsAloneInBatch(results[i].status()) ||
          sqlite3_get_autocommit(conn.handle()) != 0) {
        return results[i].status();
      }
    }
    ES_RETURN_IF_ERROR(txn.Commit());
    for (std::string& type : committed_types) {
      recorded_types_.insert(std::move(type));
    }
  }
  // Outside the writer lock, so that the waiters woken can read at once.
  if (any_written) db_->NotifyAppend();
  return results;
}

absl::StatusOr<AppendResult> SqliteEventStoreImpl::AppendLocked(
    SqliteConnection& conn, const AppendRequest& request,
    const std::vector<internal::PreparedEvent>& events) {
  absl::StatusOr<AppendScope> scope = AppendScope::Transaction(conn);
  if (!scope.ok()) {
    return absl::Status(
        scope.status().code(),
        absl::StrCat("append to stream '", std::string(request.stream),
                     "': ", scope.status().message()));
  }
  std::vector<std::string> committed_types;
  absl::StatusOr<AppendResult> result =
      AppendInScope(conn, *scope, request, events, committed_types);
  for (std::string& type : committed_types) {
    recorded_types_.insert(std::move(type));
  }
  return result;
}

absl::StatusOr<AppendResult> SqliteEventStoreImpl::AppendInScope(
    SqliteConnection& conn, AppendScope& scope, const AppendRequest& request,
    const std::vector<internal::PreparedEvent>& events,
    std::vector<std::string>& committed_types) {
  // The highest version and the stream's row in one indexed lookup each.
  ES_ASSIGN_OR_RETURN(SqliteStreamLifecycle::StreamState state,
                      SqliteStreamLifecycle::ReadState(conn, request.stream));
  ES_ASSIGN_OR_RETURN(
      internal::AppendBase base,
      internal::AppendBaseOf(request.stream, state.max_stored, state.row));
  const int64_t current = base.current;
  if (!request.expected.Matches(current)) {
    // An exact retry of a committed append usually arrives with an expected
    // version that no longer holds: recognise it by its ids first. A retry
    // writes nothing, outbox messages included.
    ES_ASSIGN_OR_RETURN(auto stored, LookUpIds(conn, events));
    if (AnyStored(stored)) {
      return internal::ResolveStoredIds(request, events, stored);
    }
    return WrongExpectedVersionError(request.stream, request.expected, current);
  }
  const int64_t now = absl::ToUnixMicros(absl::Now());
  if (base.revives) {
    ES_RETURN_IF_ERROR(
        SqliteStreamLifecycle::Revive(conn, request.stream, now));
  }
  std::vector<std::string> new_types;
  absl::StatusOr<AppendResult> result =
      InsertBatch(conn, request, events, base.last, now, new_types);
  if (!result.ok()) {
    if (result.status().code() != absl::StatusCode::kAlreadyExists) {
      return result.status();
    }
    // An id is already stored: roll back, then tell a retry from a
    // duplicate.
    scope.Rollback();
    ES_ASSIGN_OR_RETURN(auto stored, LookUpIds(conn, events));
    if (!AnyStored(stored)) return result.status();
    return internal::ResolveStoredIds(request, events, stored);
  }
  // The outbox messages, after the events, in the same transaction, with
  // the first event's trace context.
  if (!request.outbox.empty()) {
    std::vector<OutboxMessage> with_headers;
    ES_RETURN_IF_ERROR(SqliteOutboxStore::Insert(
        conn, internal::OutboxWithEventHeaders(request, with_headers), now));
  }
  // The data subjects' key table rows, after the events: a key that is not
  // the subject's stored one fails the append (the scope rolls back).
  if (!request.subject_keys.empty()) {
    ES_RETURN_IF_ERROR(SqliteSubjectKeyStore::WriteForAppend(
        conn, request.stream, request.subject_keys, now));
  }
  ES_RETURN_IF_ERROR(scope.Commit());
  for (std::string& type : new_types) {
    committed_types.push_back(std::move(type));
  }
  return result;
}

absl::StatusOr<AppendResult> SqliteEventStoreImpl::InsertBatch(
    SqliteConnection& conn, const AppendRequest& request,
    const std::vector<internal::PreparedEvent>& events, int64_t last,
    int64_t now_micros, std::vector<std::string>& new_types) {
  AppendResult result;
  {
    ES_ASSIGN_OR_RETURN(ScopedStatement insert, conn.Cached(kInsertEvent));
    for (size_t i = 0; i < events.size(); ++i) {
      const internal::PreparedEvent& event = events[i];
      const std::string& tenant = event.source->metadata.tenant_id();
      insert->BindBlob(1, event.id.bytes());
      insert->BindText(2, request.stream);
      insert->BindInt64(3, last + static_cast<int64_t>(i) + 1);
      insert->BindText(4, event.source->type);
      insert->BindBlob(5, event.source->payload);
      if (event.metadata.empty()) {
        insert->BindNull(6);
      } else {
        insert->BindBlob(6, event.metadata);
      }
      if (tenant.empty()) {
        insert->BindNull(7);
      } else {
        insert->BindText(7, tenant);
      }
      insert->BindInt64(8, now_micros);
      insert->BindInt64(9, static_cast<int64_t>(event.checksum));
      absl::Status status = insert->Run();
      if (!status.ok()) {
        if (insert->last_error() == SQLITE_CONSTRAINT_UNIQUE ||
            insert->last_error() == SQLITE_CONSTRAINT_PRIMARYKEY) {
          return absl::AlreadyExistsError(status.message());
        }
        return absl::Status(
            status.code() == absl::StatusCode::kAlreadyExists
                ? absl::StatusCode::kInternal
                : status.code(),
            absl::StrCat("append to stream '", std::string(request.stream),
                         "': ", status.message()));
      }
      insert->Reset();
      const Position position =
          Position::At(static_cast<uint64_t>(conn.LastInsertRowid()));
      if (i == 0) result.first_position = position;
      result.last_position = position;
    }
  }
  result.next_expected_version = last + static_cast<int64_t>(events.size());
  ES_RETURN_IF_ERROR(RecordTypes(conn, events, now_micros, new_types));
  return result;
}

absl::Status SqliteEventStoreImpl::RecordTypes(
    SqliteConnection& conn, const std::vector<internal::PreparedEvent>& events,
    int64_t now_micros, std::vector<std::string>& new_types) {
  for (const internal::PreparedEvent& event : events) {
    const std::string& type = event.source->type;
    if (recorded_types_.contains(type)) continue;
    if (event.source->descriptor == nullptr &&
        undescribed_types_.contains(type)) {
      continue;
    }
    bool pending = false;
    for (const std::string& t : new_types) pending = pending || t == type;
    if (pending) continue;
    const google::protobuf::Descriptor* descriptor =
        internal::FindEventDescriptor(type, event.source->descriptor);
    if (descriptor == nullptr) {
      undescribed_types_.insert(type);
      continue;
    }
    const std::string set = internal::SerializedDescriptorSet(*descriptor);
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kInsertType));
    stmt->BindText(1, type);
    stmt->BindBlob(2, set);
    stmt->BindInt64(3, now_micros);
    ES_RETURN_IF_ERROR(stmt->Run());
    new_types.push_back(type);
  }
  return absl::OkStatus();
}

template <typename Rows>
absl::Status SqliteEventStoreImpl::ReadStreamRows(
    std::string_view stream, const ReadStreamOptions& options, Rows&& rows) {
  const bool forward = options.direction == Direction::kForward;
  const int64_t from = options.from_version.value_or(forward ? 1 : kUnlimited);
  return db_->WithReader([&](SqliteConnection& conn) -> absl::Status {
    // The stream's row and its events from one snapshot (a pooled reader is
    // in no transaction; the writer of an in-memory database is held
    // exclusively or already in one).
    std::optional<SqliteTransaction> snapshot;
    if (!db_->in_memory() && !conn.InTransaction()) {
      absl::StatusOr<SqliteTransaction> begun =
          SqliteTransaction::Begin(conn, SqliteTransaction::Mode::kDeferred);
      if (!begun.ok()) return begun.status();
      snapshot.emplace(*std::move(begun));
    }
    ES_ASSIGN_OR_RETURN(SqliteStreamLifecycle::StreamState state,
                        SqliteStreamLifecycle::ReadState(conn, stream));
    const bool windowed = state.row.has_value();
    internal::StreamWindow window;
    if (windowed) {
      window = internal::WindowOf(state.row, state.last(), absl::Now());
      if (window.empty) return absl::OkStatus();
    }
    const char* sql = forward
                          ? (windowed ? kReadForwardWindow : kReadForward)
                          : (windowed ? kReadBackwardWindow : kReadBackward);
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(sql));
    SqliteStreamLifecycle::BindStreamRead(
        *stmt, stream, from, options.max_count, windowed ? &window : nullptr);
    int64_t expected = std::min(options.max_count, kMaxReserve);
    if (forward && options.max_count > kMaxReserve) {
      // The stream's length bounds the rows.
      expected = std::min<int64_t>(
          options.max_count, std::max<int64_t>(0, state.max_stored - from + 1));
    }
    return rows(*stmt, expected);
  });
}

absl::StatusOr<std::vector<RecordedEvent>> SqliteEventStoreImpl::ReadStream(
    std::string_view stream, const ReadStreamOptions& options) {
  std::vector<RecordedEvent> events;
  ES_RETURN_IF_ERROR(ReadStreamInto(stream, options, events));
  return events;
}

absl::Status SqliteEventStoreImpl::ReadStreamInto(
    std::string_view stream, const ReadStreamOptions& options,
    std::vector<RecordedEvent>& events) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  ES_RETURN_IF_ERROR(internal::ValidateReadStreamOptions(options));
  size_t rows = 0;
  absl::Status status;
  if (options.max_count > 0) {
    status = ReadStreamRows(
        stream, options,
        [&](SqliteStatement& stmt, int64_t expected) -> absl::Status {
          if (events.capacity() < static_cast<size_t>(expected)) {
            events.reserve(static_cast<size_t>(expected));
          }
          return CollectRowsReusing(stmt, db_->options().verify_checksums,
                                    events, &rows);
        });
  }
  // The elements past the rows read hold an earlier read's events.
  events.erase(events.begin() + static_cast<std::ptrdiff_t>(rows),
               events.end());
  ES_RETURN_IF_ERROR(status);
  return Upcast(events);
}

absl::Status SqliteEventStoreImpl::ReadStreamPages(
    std::string_view stream, const ReadStreamOptions& options,
    int64_t page_size, PageVisitor page) {
  if (page_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: ", page_size, " is not 1 or more"));
  }
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  ES_RETURN_IF_ERROR(internal::ValidateReadStreamOptions(options));
  if (options.max_count == 0) return absl::OkStatus();
  const bool verify = db_->options().verify_checksums;
  return ReadStreamRows(
      stream, options,
      [&](SqliteStatement& stmt, int64_t expected) -> absl::Status {
        // Rows still to come, at most (a guess once it drops below 1): a
        // page is reserved for it, up to page_size, at its first row.
        int64_t left = expected;
        std::vector<RecordedEvent> events;
        while (true) {
          ES_ASSIGN_OR_RETURN(bool row, stmt.Step());
          if (!row) break;
          if (events.empty()) {
            events.reserve(static_cast<size_t>(
                std::min(page_size, left > 0 ? left : kMaxReserve)));
          }
          DecodeRowInto(stmt, verify, events.emplace_back());
          if (static_cast<int64_t>(events.size()) < page_size) continue;
          ES_RETURN_IF_ERROR(HandOver(std::move(events), page_size, page));
          left -= page_size;
          events = std::vector<RecordedEvent>();
        }
        if (events.empty()) return absl::OkStatus();
        return HandOver(std::move(events), page_size, page);
      });
}

absl::Status SqliteEventStoreImpl::HandOver(std::vector<RecordedEvent> events,
                                            int64_t page_size,
                                            PageVisitor page) const {
  ES_RETURN_IF_ERROR(Upcast(events));
  // An upcaster may have made more events than the rows read.
  return internal::HandOverInPages(std::move(events), page_size, page);
}

absl::StatusOr<ReadAllPage> SqliteEventStoreImpl::ReadAll(
    const ReadAllOptions& options) {
  ReadAllPage page;
  ES_RETURN_IF_ERROR(ReadAllInto(options, page));
  return page;
}

absl::Status SqliteEventStoreImpl::ReadAllInto(const ReadAllOptions& options,
                                               ReadAllPage& page) {
  if (options.max_count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_count: ", options.max_count, " is negative"));
  }
  page.next_position = options.from_position;
  page.end_of_log = false;
  std::vector<RecordedEvent>& events = page.events;
  size_t rows = 0;
  absl::Status status;
  if (options.max_count > 0) {
    // The statement text depends only on which filters are set and how
    // many types there are; values are bound.
    const SqliteEventFilter where(options.filter);
    status = db_->WithReader([&](SqliteConnection& conn) -> absl::Status {
      // Without a row that hides anything, today's statement exactly; with
      // one, the events the streams table hides are left out before LIMIT
      // (pages stay full), StreamDeleted events always kept.
      ES_ASSIGN_OR_RETURN(bool hiding,
                          SqliteStreamLifecycle::AnyHidingRow(conn));
      const std::string sql = absl::StrCat(
          kReadAllBase, where.sql(),
          hiding ? SqliteStreamLifecycle::ReadAllHidingCondition() : "",
          " ORDER BY position LIMIT ?");
      ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(sql));
      stmt->BindInt64(1, static_cast<int64_t>(options.from_position.commit()));
      int next = where.Bind(*stmt, 2);
      if (hiding) {
        stmt->BindInt64(next++, absl::ToUnixMicros(absl::Now()));
      }
      stmt->BindInt64(next, options.max_count);
      const size_t expected =
          static_cast<size_t>(std::min(options.max_count, kMaxReserve));
      if (events.capacity() < expected) events.reserve(expected);
      return CollectRowsReusing(*stmt, db_->options().verify_checksums, events,
                                &rows);
    });
  }
  // The elements past the rows read hold an earlier read's events.
  events.erase(events.begin() + static_cast<std::ptrdiff_t>(rows),
               events.end());
  ES_RETURN_IF_ERROR(status);
  page.end_of_log = static_cast<int64_t>(events.size()) < options.max_count;
  if (!events.empty()) page.next_position = events.back().position;
  return Upcast(events);
}

absl::StatusOr<int64_t> SqliteEventStoreImpl::StreamVersion(
    std::string_view stream) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  ES_ASSIGN_OR_RETURN(SqliteStreamLifecycle::StreamState state,
                      db_->WithReader([&](SqliteConnection& conn) {
                        return SqliteStreamLifecycle::ReadState(conn, stream);
                      }));
  return internal::VisibleVersionOf(state.max_stored, state.row);
}

absl::StatusOr<DeleteResult> SqliteEventStoreImpl::DeleteStream(
    std::string_view stream, ExpectedVersion expected, DeleteMode mode) {
  ES_RETURN_IF_ERROR(
      internal::ValidateStreamName(db_->options().limits, stream));
  absl::StatusOr<DeleteResult> result;
  {
    absl::StatusOr<SqliteDatabase::WriterLock> lock = db_->LockWriter();
    if (!lock.ok()) return lock.status();
    std::vector<std::string> new_types;
    // The marker goes through the append's own insert path.
    result = lifecycle_.DeleteLocked(
        lock->connection(), stream, expected, mode,
        [&](SqliteConnection& conn, const AppendRequest& request,
            const std::vector<internal::PreparedEvent>& events,
            int64_t last) -> absl::StatusOr<AppendResult> {
          return InsertBatch(conn, request, events, last,
                             absl::ToUnixMicros(absl::Now()), new_types);
        });
    if (result.ok()) {
      for (std::string& type : new_types) {
        recorded_types_.insert(std::move(type));
      }
    }
  }
  // As an append: the marker is a new event in the log.
  if (result.ok()) db_->NotifyAppend();
  return result;
}

absl::StatusOr<Position> SqliteEventStoreImpl::HeadPosition() {
  return db_->WithReader(
      [&](SqliteConnection& conn) -> absl::StatusOr<Position> {
        ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectHead));
        ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
        if (!row || stmt->ColumnIsNull(0)) return Position::Start();
        return Position::At(static_cast<uint64_t>(stmt->ColumnInt64(0)));
      });
}

absl::StatusOr<bool> SqliteEventStoreImpl::EventExists(const Uuid& id) {
  return db_->WithReader([&](SqliteConnection& conn) -> absl::StatusOr<bool> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectExists));
    stmt->BindBlob(1, id.bytes());
    return stmt->Step();
  });
}

absl::StatusOr<bool> SqliteEventStoreImpl::WaitForEvents(
    Position after, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    // Read the count before the head: an append that commits after the
    // head was read changes the count, and the wait below returns at once.
    const uint64_t seen = db_->AppendCount();
    ES_ASSIGN_OR_RETURN(Position head, HeadPosition());
    if (head > after) return true;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    db_->WaitForAppend(seen, std::min(left, kWaitPollInterval));
  }
}

absl::StatusOr<std::unique_ptr<SqlTransaction>>
SqliteEventStoreImpl::BeginTransaction() {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<SqliteSqlTransaction> tx,
                      SqliteSqlTransaction::Begin(db_.get()));
  return std::unique_ptr<SqlTransaction>(std::move(tx));
}

absl::StatusOr<std::unique_ptr<Lease>> SqliteEventStoreImpl::TryAcquireLease(
    std::string_view name) {
  if (db_->options().read_only) {
    // A lease's lock file is created beside the database.
    return absl::FailedPreconditionError(
        absl::StrCat("sqlite: '", db_->options().path,
                     "' was opened read-only: it takes no leases"));
  }
  return leases_.TryAcquire(name);
}

}  // namespace
}  // namespace sqlite

absl::StatusOr<std::unique_ptr<EventStore>> SqliteEventStore::Open(
    const SqliteOptions& options) {
  return sqlite::SqliteEventStoreImpl::Open(options);
}

absl::StatusOr<SchemaUpgrade> SqliteEventStore::UpgradeSchema(
    const SqliteOptions& options) {
  return sqlite::SqliteDatabase::UpgradeSchema(options);
}

}  // namespace eventstore
