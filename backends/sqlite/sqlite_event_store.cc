#include "backends/sqlite/sqlite_event_store.h"

#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_connection.h"
#include "backends/sqlite/sqlite_schema.h"
#include "eventstore/errors.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/descriptor_set.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/status_macros.h"

namespace eventstore {
namespace sqlite {
namespace {

using internal::Mutex;
using internal::MutexLock;

constexpr char kSelectStreamVersion[] =
    "SELECT version FROM events WHERE stream = ?1 "
    "ORDER BY version DESC LIMIT 1";
constexpr char kInsertEvent[] =
    "INSERT INTO events (id, stream, version, type, payload, metadata, "
    "tenant_id, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr char kSelectById[] =
    "SELECT stream, version, position FROM events WHERE id = ?1";
constexpr char kInsertType[] =
    "INSERT OR IGNORE INTO event_types (type, descriptor, recorded_at) "
    "VALUES (?1, ?2, ?3)";
// Every event read has these columns, in this order (see DecodeRow).
#define ES_EVENT_COLUMNS \
  "position, id, stream, version, type, payload, metadata, recorded_at"
constexpr char kReadForward[] =
    "SELECT " ES_EVENT_COLUMNS
    " FROM events WHERE stream = ?1 AND version >= ?2 "
    "ORDER BY version LIMIT ?3";
constexpr char kReadBackward[] =
    "SELECT " ES_EVENT_COLUMNS
    " FROM events WHERE stream = ?1 AND version <= ?2 "
    "ORDER BY version DESC LIMIT ?3";
constexpr char kReadAllBase[] =
    "SELECT " ES_EVENT_COLUMNS " FROM events WHERE position > ?";
constexpr char kSelectHead[] = "SELECT max(position) FROM events";
constexpr char kSelectExists[] = "SELECT 1 FROM events WHERE id = ?1";

const char* SynchronousName(SqliteOptions::Synchronous s) {
  switch (s) {
    case SqliteOptions::Synchronous::kOff:
      return "OFF";
    case SqliteOptions::Synchronous::kNormal:
      return "NORMAL";
    case SqliteOptions::Synchronous::kFull:
      return "FULL";
    case SqliteOptions::Synchronous::kExtra:
      return "EXTRA";
  }
  return "FULL";
}

// The smallest string greater than every string starting with `prefix`, or
// nullopt when there is none (the prefix is all 0xff bytes).
std::optional<std::string> PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) {
    prefix.pop_back();
  }
  if (prefix.empty()) return std::nullopt;
  prefix.back() =
      static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

absl::StatusOr<RecordedEvent> DecodeRow(const SqliteStatement& row) {
  RecordedEvent event;
  event.position = Position::At(static_cast<uint64_t>(row.ColumnInt64(0)));
  event.stream = std::string(row.ColumnText(2));
  event.version = row.ColumnInt64(3);
  absl::StatusOr<Uuid> id = Uuid::FromBytes(row.ColumnBlob(1));
  if (!id.ok()) {
    return absl::DataLossError(absl::StrCat(
        "sqlite: the event at position ", event.position.ToString(),
        " has a corrupt id: ", id.status().message()));
  }
  event.id = *id;
  event.type = std::string(row.ColumnText(4));
  event.payload = std::string(row.ColumnBlob(5));
  const std::string_view metadata = row.ColumnBlob(6);
  if (!metadata.empty() &&
      !event.metadata.ParseFromArray(metadata.data(),
                                     static_cast<int>(metadata.size()))) {
    return absl::DataLossError(absl::StrCat(
        "sqlite: event ", event.id.ToString(), " in stream '", event.stream,
        "' has corrupt metadata (", metadata.size(), " bytes)"));
  }
  event.recorded_at = absl::FromUnixMicros(row.ColumnInt64(7));
  return event;
}

// Steps `stmt` to the end, decoding each row.
absl::Status CollectRows(SqliteStatement& stmt,
                         std::vector<RecordedEvent>& out) {
  while (true) {
    ES_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::OkStatus();
    ES_ASSIGN_OR_RETURN(RecordedEvent event, DecodeRow(stmt));
    out.push_back(std::move(event));
  }
}

absl::StatusOr<int64_t> QueryStreamVersion(SqliteConnection& conn,
                                           std::string_view stream) {
  ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectStreamVersion));
  stmt->BindText(1, stream);
  ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
  return row ? stmt->ColumnInt64(0) : 0;
}

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

class SqliteEventStoreImpl final : public EventStore {
 public:
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(
      const SqliteOptions& options);

  using EventStore::Append;
  using EventStore::ReadStream;

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override;
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override;
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override;
  absl::StatusOr<int64_t> StreamVersion(std::string_view stream) override;
  absl::StatusOr<Position> HeadPosition() override;
  absl::StatusOr<bool> EventExists(const Uuid& id) override;

 private:
  SqliteEventStoreImpl(SqliteOptions options,
                       std::unique_ptr<SqliteConnection> writer)
      : options_(std::move(options)),
        memory_(options_.path == ":memory:"),
        writer_(std::move(writer)) {}

  // Runs `f(SqliteConnection&)` on a reader connection: a pooled one for a
  // file, the writer (under its lock) for an in-memory database, which has
  // no other connection.
  template <typename F>
  auto WithReader(F&& f) -> decltype(f(std::declval<SqliteConnection&>()));
  absl::StatusOr<std::unique_ptr<SqliteConnection>> AcquireReader();
  void ReleaseReader(std::unique_ptr<SqliteConnection> conn);

  // Writes the batch inside `txn`. REQUIRES: writer_mu_ held.
  absl::StatusOr<AppendResult> InsertBatch(
      const AppendRequest& request,
      const std::vector<internal::PreparedEvent>& events, int64_t current,
      std::vector<std::string>& new_types)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  // Records descriptors of types not recorded yet. REQUIRES: writer_mu_.
  absl::Status RecordTypes(const std::vector<internal::PreparedEvent>& events,
                           int64_t now_micros,
                           std::vector<std::string>& new_types)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_);
  absl::Status Upcast(std::vector<RecordedEvent>& events) const;

  const SqliteOptions options_;
  const bool memory_;

  Mutex writer_mu_;
  const std::unique_ptr<SqliteConnection> writer_
      ABSL_PT_GUARDED_BY(writer_mu_);
  // Types whose descriptor is stored (or that have none to store).
  absl::flat_hash_set<std::string> recorded_types_ ABSL_GUARDED_BY(writer_mu_);
  absl::flat_hash_set<std::string> undescribed_types_
      ABSL_GUARDED_BY(writer_mu_);

  Mutex pool_mu_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_readers_
      ABSL_GUARDED_BY(pool_mu_);
};

absl::StatusOr<std::unique_ptr<EventStore>> SqliteEventStoreImpl::Open(
    const SqliteOptions& options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError(
        "path: empty; give a file name or \":memory:\"");
  }
  if (options.max_readers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_readers: ", options.max_readers, " is below 1"));
  }
  ES_ASSIGN_OR_RETURN(
      std::unique_ptr<SqliteConnection> writer,
      SqliteConnection::Open(options.path, options.create_if_missing,
                             options.busy_timeout));
  ES_RETURN_IF_ERROR(EnsureSchema(*writer, options.path));
  if (options.path != ":memory:") {
    ES_ASSIGN_OR_RETURN(
        std::string mode,
        writer->QueryText(options.wal ? "PRAGMA journal_mode = WAL"
                                      : "PRAGMA journal_mode = DELETE"));
    const std::string want = options.wal ? "wal" : "delete";
    if (mode != want) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite: '", options.path, "': could not set journal_mode ", want,
          " (it is ", mode, ")"));
    }
  }
  ES_RETURN_IF_ERROR(writer->Exec(absl::StrCat(
      "PRAGMA synchronous = ", SynchronousName(options.synchronous))));
  return std::unique_ptr<EventStore>(
      new SqliteEventStoreImpl(options, std::move(writer)));
}

template <typename F>
auto SqliteEventStoreImpl::WithReader(F&& f)
    -> decltype(f(std::declval<SqliteConnection&>())) {
  if (memory_) {
    MutexLock lock(&writer_mu_);
    return f(*writer_);
  }
  absl::StatusOr<std::unique_ptr<SqliteConnection>> conn = AcquireReader();
  if (!conn.ok()) return conn.status();
  auto result = f(**conn);
  ReleaseReader(*std::move(conn));
  return result;
}

absl::StatusOr<std::unique_ptr<SqliteConnection>>
SqliteEventStoreImpl::AcquireReader() {
  {
    MutexLock lock(&pool_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<SqliteConnection> conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return conn;
    }
  }
  ES_ASSIGN_OR_RETURN(std::unique_ptr<SqliteConnection> conn,
                      SqliteConnection::Open(options_.path,
                                             /*create_if_missing=*/false,
                                             options_.busy_timeout));
  ES_RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = 1"));
  return conn;
}

void SqliteEventStoreImpl::ReleaseReader(
    std::unique_ptr<SqliteConnection> conn) {
  MutexLock lock(&pool_mu_);
  if (idle_readers_.size() < static_cast<size_t>(options_.max_readers)) {
    idle_readers_.push_back(std::move(conn));
  }
}

absl::Status SqliteEventStoreImpl::Upcast(
    std::vector<RecordedEvent>& events) const {
  if (options_.type_registry == nullptr) return absl::OkStatus();
  return options_.type_registry->UpcastAll(events);
}

absl::StatusOr<AppendResult> SqliteEventStoreImpl::Append(
    const AppendRequest& request) {
  ES_ASSIGN_OR_RETURN(std::vector<internal::PreparedEvent> events,
                      internal::PrepareAppend(options_.limits, request));
  MutexLock lock(&writer_mu_);
  absl::StatusOr<SqliteTransaction> txn =
      SqliteTransaction::Begin(*writer_, SqliteTransaction::Mode::kImmediate);
  if (!txn.ok()) {
    return absl::Status(
        txn.status().code(),
        absl::StrCat("append to stream '", std::string(request.stream),
                     "': ", txn.status().message()));
  }
  ES_ASSIGN_OR_RETURN(int64_t current,
                      QueryStreamVersion(*writer_, request.stream));
  if (!request.expected.Matches(current)) {
    // An exact retry of a committed append usually arrives with an expected
    // version that no longer holds: recognise it by its ids first.
    ES_ASSIGN_OR_RETURN(auto stored, LookUpIds(*writer_, events));
    if (AnyStored(stored)) {
      return internal::ResolveStoredIds(request, events, stored);
    }
    return WrongExpectedVersionError(request.stream, request.expected, current);
  }
  std::vector<std::string> new_types;
  absl::StatusOr<AppendResult> result =
      InsertBatch(request, events, current, new_types);
  if (!result.ok()) {
    if (result.status().code() != absl::StatusCode::kAlreadyExists) {
      return result.status();
    }
    // An id is already stored: roll back, then tell a retry from a
    // duplicate.
    txn->Rollback();
    ES_ASSIGN_OR_RETURN(auto stored, LookUpIds(*writer_, events));
    if (!AnyStored(stored)) return result.status();
    return internal::ResolveStoredIds(request, events, stored);
  }
  ES_RETURN_IF_ERROR(txn->Commit());
  for (std::string& type : new_types) {
    recorded_types_.insert(std::move(type));
  }
  return result;
}

absl::StatusOr<AppendResult> SqliteEventStoreImpl::InsertBatch(
    const AppendRequest& request,
    const std::vector<internal::PreparedEvent>& events, int64_t current,
    std::vector<std::string>& new_types) {
  const int64_t now = absl::ToUnixMicros(absl::Now());
  AppendResult result;
  {
    ES_ASSIGN_OR_RETURN(ScopedStatement insert, writer_->Cached(kInsertEvent));
    for (size_t i = 0; i < events.size(); ++i) {
      const internal::PreparedEvent& event = events[i];
      const std::string& tenant = event.source->metadata.tenant_id();
      insert->BindBlob(1, event.id.bytes());
      insert->BindText(2, request.stream);
      insert->BindInt64(3, current + static_cast<int64_t>(i) + 1);
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
      insert->BindInt64(8, now);
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
      const Position position = Position::At(
          static_cast<uint64_t>(sqlite3_last_insert_rowid(writer_->handle())));
      if (i == 0) result.first_position = position;
      result.last_position = position;
    }
  }
  result.next_expected_version = current + static_cast<int64_t>(events.size());
  ES_RETURN_IF_ERROR(RecordTypes(events, now, new_types));
  return result;
}

absl::Status SqliteEventStoreImpl::RecordTypes(
    const std::vector<internal::PreparedEvent>& events, int64_t now_micros,
    std::vector<std::string>& new_types) {
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
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, writer_->Cached(kInsertType));
    stmt->BindText(1, type);
    stmt->BindBlob(2, set);
    stmt->BindInt64(3, now_micros);
    ES_RETURN_IF_ERROR(stmt->Run());
    new_types.push_back(type);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RecordedEvent>> SqliteEventStoreImpl::ReadStream(
    std::string_view stream, const ReadStreamOptions& options) {
  ES_RETURN_IF_ERROR(internal::ValidateStreamName(options_.limits, stream));
  if (options.max_count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_count: ", options.max_count, " is negative"));
  }
  if (options.from_version.has_value() && *options.from_version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("from_version: ", *options.from_version, " is negative"));
  }
  const bool forward = options.direction == Direction::kForward;
  const int64_t from = options.from_version.value_or(forward ? 1 : kUnlimited);
  std::vector<RecordedEvent> events;
  if (options.max_count == 0) return events;
  ES_RETURN_IF_ERROR(WithReader([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt,
                        conn.Cached(forward ? kReadForward : kReadBackward));
    stmt->BindText(1, stream);
    stmt->BindInt64(2, from);
    stmt->BindInt64(3, options.max_count);
    return CollectRows(*stmt, events);
  }));
  ES_RETURN_IF_ERROR(Upcast(events));
  return events;
}

absl::StatusOr<ReadAllPage> SqliteEventStoreImpl::ReadAll(
    const ReadAllOptions& options) {
  if (options.max_count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_count: ", options.max_count, " is negative"));
  }
  const ReadAllFilter& filter = options.filter;
  // The statement text depends only on which filters are set and how many
  // types there are; values are bound.
  std::string sql = kReadAllBase;
  std::optional<std::string> upper;
  if (!filter.stream_prefix.empty()) {
    sql += " AND stream >= ?";
    upper = PrefixSuccessor(filter.stream_prefix);
    if (upper.has_value()) sql += " AND stream < ?";
  }
  if (!filter.tenant_id.empty()) sql += " AND tenant_id = ?";
  if (!filter.event_types.empty()) {
    sql += " AND type IN (?";
    for (size_t i = 1; i < filter.event_types.size(); ++i) sql += ", ?";
    sql += ")";
  }
  sql += " ORDER BY position LIMIT ?";

  ReadAllPage page;
  page.next_position = options.from_position;
  if (options.max_count == 0) return page;
  ES_RETURN_IF_ERROR(WithReader([&](SqliteConnection& conn) -> absl::Status {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(sql));
    int index = 1;
    stmt->BindInt64(index++,
                    static_cast<int64_t>(options.from_position.commit()));
    if (!filter.stream_prefix.empty()) {
      stmt->BindText(index++, filter.stream_prefix);
      if (upper.has_value()) stmt->BindText(index++, *upper);
    }
    if (!filter.tenant_id.empty()) stmt->BindText(index++, filter.tenant_id);
    for (const std::string& type : filter.event_types) {
      stmt->BindText(index++, type);
    }
    stmt->BindInt64(index++, options.max_count);
    return CollectRows(*stmt, page.events);
  }));
  page.end_of_log =
      static_cast<int64_t>(page.events.size()) < options.max_count;
  if (!page.events.empty()) page.next_position = page.events.back().position;
  ES_RETURN_IF_ERROR(Upcast(page.events));
  return page;
}

absl::StatusOr<int64_t> SqliteEventStoreImpl::StreamVersion(
    std::string_view stream) {
  ES_RETURN_IF_ERROR(internal::ValidateStreamName(options_.limits, stream));
  return WithReader(
      [&](SqliteConnection& conn) { return QueryStreamVersion(conn, stream); });
}

absl::StatusOr<Position> SqliteEventStoreImpl::HeadPosition() {
  return WithReader([&](SqliteConnection& conn) -> absl::StatusOr<Position> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectHead));
    ES_ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row || stmt->ColumnIsNull(0)) return Position::Start();
    return Position::At(static_cast<uint64_t>(stmt->ColumnInt64(0)));
  });
}

absl::StatusOr<bool> SqliteEventStoreImpl::EventExists(const Uuid& id) {
  return WithReader([&](SqliteConnection& conn) -> absl::StatusOr<bool> {
    ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(kSelectExists));
    stmt->BindBlob(1, id.bytes());
    return stmt->Step();
  });
}

}  // namespace
}  // namespace sqlite

absl::StatusOr<std::unique_ptr<EventStore>> SqliteEventStore::Open(
    const SqliteOptions& options) {
  return sqlite::SqliteEventStoreImpl::Open(options);
}

}  // namespace eventstore
