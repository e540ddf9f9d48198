#include "backends/postgres/postgres_event_store.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "backends/postgres/pg_binary.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_pool.h"
#include "backends/postgres/pg_schema.h"
#include "eventstore/errors.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/descriptor_set.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/status_macros.h"

namespace eventstore {
namespace postgres {
namespace {

using internal::Mutex;
using internal::MutexLock;

// How often an append with Any() or StreamExists() is retried when a
// concurrent append took the version it computed.
constexpr int kMaxVersionRaceRetries = 100;

// Statement texts; "$S" is replaced by the quoted schema name at open.
// Every event read has these columns, in this order (see DecodeRow).
#define ES_PG_EVENT_COLUMNS                                        \
  "transaction_id, position, id, stream, version, type, payload, " \
  "metadata, recorded_at"

// The version check and the insert in one statement: one round trip, and
// the statement is its own transaction. Returns the stream's version before
// the append, then the transaction id, first and last position and count of
// the inserted rows (count 0: the expected version did not hold).
constexpr char kAppendSql[] = R"sql(
WITH cur AS (
  SELECT coalesce((SELECT version FROM $S.events WHERE stream = $1::text
                   ORDER BY version DESC LIMIT 1), 0) AS v
), ins AS (
  INSERT INTO $S.events (id, stream, version, type, payload, metadata, tenant_id)
  SELECT e.id, $1::text, cur.v + e.n, e.type, e.payload, e.metadata, e.tenant_id
  FROM cur, unnest($3::uuid[], $4::text[], $5::bytea[], $6::bytea[], $7::text[])
       WITH ORDINALITY AS e(id, type, payload, metadata, tenant_id, n)
  WHERE CASE $2::bigint WHEN -1 THEN true
                        WHEN -2 THEN cur.v = 0
                        WHEN -3 THEN cur.v > 0
                        ELSE cur.v = $2::bigint END
  ORDER BY e.n
  RETURNING transaction_id, position
)
SELECT cur.v, (SELECT transaction_id FROM ins LIMIT 1),
       (SELECT min(position) FROM ins), (SELECT max(position) FROM ins),
       (SELECT count(*) FROM ins)
FROM cur)sql";
constexpr char kSelectByIdsSql[] =
    "SELECT id, stream, version, transaction_id, position FROM $S.events "
    "WHERE id = ANY($1::uuid[])";
constexpr char kInsertTypeSql[] =
    "INSERT INTO $S.event_types (type, descriptor) VALUES ($1::text, "
    "$2::bytea) ON CONFLICT (type) DO NOTHING";
constexpr char kReadForwardSql[] =
    "SELECT " ES_PG_EVENT_COLUMNS
    " FROM $S.events WHERE stream = $1::text AND version >= $2::bigint "
    "ORDER BY version LIMIT $3::bigint";
constexpr char kReadBackwardSql[] =
    "SELECT " ES_PG_EVENT_COLUMNS
    " FROM $S.events WHERE stream = $1::text AND version <= $2::bigint "
    "ORDER BY version DESC LIMIT $3::bigint";
// Only transactions older than every running one: nothing can commit below
// the returned positions afterwards (docs/postgres.md).
constexpr char kReadAllSql[] =
    "SELECT " ES_PG_EVENT_COLUMNS
    " FROM $S.events"
    " WHERE (transaction_id, position) > ($1::xid8, $2::bigint)"
    "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    "   AND ($3::text IS NULL OR starts_with(stream, $3::text))"
    "   AND ($4::text[] IS NULL OR type = ANY($4::text[]))"
    "   AND ($5::text IS NULL OR tenant_id = $5::text)"
    " ORDER BY transaction_id, position LIMIT $6::bigint";
constexpr char kStreamVersionSql[] =
    "SELECT version FROM $S.events WHERE stream = $1::text "
    "ORDER BY version DESC LIMIT 1";
constexpr char kHeadSql[] =
    "SELECT transaction_id, position FROM $S.events"
    " WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY transaction_id DESC, position DESC LIMIT 1";
constexpr char kExistsSql[] = "SELECT 1 FROM $S.events WHERE id = $1::uuid";

absl::StatusOr<RecordedEvent> DecodeRow(const PgResult& r, int row) {
  RecordedEvent event;
  event.position = Position::FromParts(r.Uint64(row, 0), r.Uint64(row, 1));
  absl::StatusOr<Uuid> id = Uuid::FromBytes(r.Bytes(row, 2));
  if (!id.ok()) {
    return absl::DataLossError(absl::StrCat("postgres: the event at position ",
                                            event.position.ToString(),
                                            " has a corrupt id"));
  }
  event.id = *id;
  event.stream = std::string(r.Bytes(row, 3));
  event.version = r.Int64(row, 4);
  event.type = std::string(r.Bytes(row, 5));
  event.payload = std::string(r.Bytes(row, 6));
  if (!r.IsNull(row, 7)) {
    const std::string_view metadata = r.Bytes(row, 7);
    if (!event.metadata.ParseFromArray(metadata.data(),
                                       static_cast<int>(metadata.size()))) {
      return absl::DataLossError(absl::StrCat(
          "postgres: event ", event.id.ToString(), " in stream '", event.stream,
          "' has corrupt metadata (", metadata.size(), " bytes)"));
    }
  }
  event.recorded_at = r.Timestamp(row, 8);
  return event;
}

absl::Status DecodeRows(const PgResult& r, std::vector<RecordedEvent>& out) {
  out.reserve(out.size() + r.rows());
  for (int row = 0; row < r.rows(); ++row) {
    ES_ASSIGN_OR_RETURN(RecordedEvent event, DecodeRow(r, row));
    out.push_back(std::move(event));
  }
  return absl::OkStatus();
}

class PostgresEventStoreImpl final : public EventStore {
 public:
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(
      const PostgresOptions& options);

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
  PostgresEventStoreImpl(PostgresOptions options, std::unique_ptr<PgPool> pool);

  PgStatement Statement(const char* name, const char* sql) const {
    return PgStatement{name,
                       absl::StrReplaceAll(sql, {{"$S", quoted_schema_}})};
  }

  // Runs `f(PgConnection&)` on a pooled connection. When the call fails
  // because the connection was lost, runs it once more on a fresh one: every
  // operation here is a read or an append, which is idempotent by event id.
  template <typename F>
  auto WithConnection(F&& f) -> decltype(f(std::declval<PgConnection&>()));

  absl::Status RecordTypes(const std::vector<internal::PreparedEvent>& events);
  absl::StatusOr<std::vector<std::optional<internal::StoredEventRef>>>
  LookUpIds(const std::vector<internal::PreparedEvent>& events);
  absl::StatusOr<AppendResult> AppendOnce(
      const AppendRequest& request,
      const std::vector<internal::PreparedEvent>& events,
      const PgParams& params, bool* lost_race);
  absl::Status Upcast(std::vector<RecordedEvent>& events) const;

  const PostgresOptions options_;
  const std::string quoted_schema_;
  const std::unique_ptr<PgPool> pool_;
  const PgStatement append_;
  const PgStatement select_by_ids_;
  const PgStatement insert_type_;
  const PgStatement read_forward_;
  const PgStatement read_backward_;
  const PgStatement read_all_;
  const PgStatement stream_version_;
  const PgStatement head_;
  const PgStatement exists_;

  Mutex types_mu_;
  absl::flat_hash_set<std::string> recorded_types_ ABSL_GUARDED_BY(types_mu_);
  absl::flat_hash_set<std::string> undescribed_types_
      ABSL_GUARDED_BY(types_mu_);
};

PostgresEventStoreImpl::PostgresEventStoreImpl(PostgresOptions options,
                                               std::unique_ptr<PgPool> pool)
    : options_(std::move(options)),
      quoted_schema_(absl::StrCat("\"", options_.schema, "\"")),
      pool_(std::move(pool)),
      append_(Statement("es_append", kAppendSql)),
      select_by_ids_(Statement("es_select_by_ids", kSelectByIdsSql)),
      insert_type_(Statement("es_insert_type", kInsertTypeSql)),
      read_forward_(Statement("es_read_forward", kReadForwardSql)),
      read_backward_(Statement("es_read_backward", kReadBackwardSql)),
      read_all_(Statement("es_read_all", kReadAllSql)),
      stream_version_(Statement("es_stream_version", kStreamVersionSql)),
      head_(Statement("es_head", kHeadSql)),
      exists_(Statement("es_exists", kExistsSql)) {}

absl::StatusOr<std::unique_ptr<EventStore>> PostgresEventStoreImpl::Open(
    const PostgresOptions& options) {
  if (options.conninfo.empty()) {
    return absl::InvalidArgumentError("conninfo: empty");
  }
  ES_RETURN_IF_ERROR(ValidateSchemaName(options.schema));
  if (options.pool_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("pool_size: ", options.pool_size, " is below 1"));
  }
  auto pool = std::make_unique<PgPool>(options.conninfo, options.pool_size,
                                       options.connect_timeout,
                                       options.statement_timeout);
  {
    ES_ASSIGN_OR_RETURN(PgPool::Lease conn, pool->Acquire());
    ES_RETURN_IF_ERROR(EnsureSchema(*conn, options.schema));
  }
  return std::unique_ptr<EventStore>(
      new PostgresEventStoreImpl(options, std::move(pool)));
}

template <typename F>
auto PostgresEventStoreImpl::WithConnection(F&& f)
    -> decltype(f(std::declval<PgConnection&>())) {
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<PgPool::Lease> conn = pool_->Acquire();
    if (!conn.ok()) return conn.status();
    auto result = f(**conn);
    if (result.ok() || !(*conn)->broken() || attempt == 1) return result;
  }
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
    ES_RETURN_IF_ERROR(WithConnection([&](PgConnection& conn) {
                         return conn.Execute(insert_type_, params);
                       }).status());
    MutexLock lock(&types_mu_);
    recorded_types_.insert(type);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::optional<internal::StoredEventRef>>>
PostgresEventStoreImpl::LookUpIds(
    const std::vector<internal::PreparedEvent>& events) {
  ArrayBuilder ids(kUuidOid, events.size());
  absl::flat_hash_map<Uuid, size_t> index;
  for (size_t i = 0; i < events.size(); ++i) {
    ids.Add(events[i].id.bytes());
    index[events[i].id] = i;
  }
  PgParams params;
  params.Bytes(ids.Finish());
  ES_ASSIGN_OR_RETURN(PgResult r, WithConnection([&](PgConnection& conn) {
                        return conn.Execute(select_by_ids_, params);
                      }));
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
    const std::vector<internal::PreparedEvent>& events, const PgParams& params,
    bool* lost_race) {
  *lost_race = false;
  std::string constraint;
  absl::StatusOr<PgResult> r = WithConnection([&](PgConnection& conn) {
    absl::StatusOr<PgResult> result = conn.Execute(append_, params);
    if (!result.ok()) constraint = conn.last_constraint();
    return result;
  });
  auto any_stored = [](const auto& stored) {
    for (const auto& s : stored) {
      if (s.has_value()) return true;
    }
    return false;
  };
  if (!r.ok()) {
    if (r.status().code() != absl::StatusCode::kAlreadyExists) {
      return r.status();
    }
    // A unique violation: an id already stored (a retry or a duplicate), or
    // a concurrent append took the version this one computed.
    ES_ASSIGN_OR_RETURN(auto stored, LookUpIds(events));
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
      ES_ASSIGN_OR_RETURN(int64_t actual, StreamVersion(request.stream));
      return WrongExpectedVersionError(request.stream, request.expected,
                                       actual);
    }
    return absl::InternalError(absl::StrCat("append to stream '",
                                            std::string(request.stream),
                                            "': ", r.status().message()));
  }
  const int64_t current = r->Int64(0, 0);
  const int64_t inserted = r->Int64(0, 4);
  if (inserted == 0) {
    // The expected version did not hold; an exact retry of a committed
    // append usually looks like this, so recognise it by its ids first.
    ES_ASSIGN_OR_RETURN(auto stored, LookUpIds(events));
    if (any_stored(stored)) {
      return internal::ResolveStoredIds(request, events, stored);
    }
    return WrongExpectedVersionError(request.stream, request.expected, current);
  }
  const uint64_t xid = r->Uint64(0, 1);
  AppendResult result;
  result.next_expected_version = current + inserted;
  result.first_position = Position::FromParts(xid, r->Uint64(0, 2));
  result.last_position = Position::FromParts(xid, r->Uint64(0, 3));
  return result;
}

absl::StatusOr<AppendResult> PostgresEventStoreImpl::Append(
    const AppendRequest& request) {
  ES_ASSIGN_OR_RETURN(std::vector<internal::PreparedEvent> events,
                      internal::PrepareAppend(options_.limits, request));
  ES_RETURN_IF_ERROR(RecordTypes(events));

  ArrayBuilder ids(kUuidOid, events.size());
  ArrayBuilder types(kTextOid, events.size());
  ArrayBuilder payloads(kByteaOid, events.size());
  ArrayBuilder metadata(kByteaOid, events.size());
  ArrayBuilder tenants(kTextOid, events.size());
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
  }
  PgParams params;
  params.Bytes(request.stream)
      .Int64(request.expected.ToWire())
      .Bytes(ids.Finish())
      .Bytes(types.Finish())
      .Bytes(payloads.Finish())
      .Bytes(metadata.Finish())
      .Bytes(tenants.Finish());
  for (int attempt = 0;; ++attempt) {
    bool lost_race = false;
    absl::StatusOr<AppendResult> result =
        AppendOnce(request, events, params, &lost_race);
    if (!lost_race || attempt == kMaxVersionRaceRetries) return result;
  }
}

absl::StatusOr<std::vector<RecordedEvent>> PostgresEventStoreImpl::ReadStream(
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
  std::vector<RecordedEvent> events;
  if (options.max_count == 0) return events;
  PgParams params;
  params.Bytes(stream)
      .Int64(options.from_version.value_or(forward ? 1 : kUnlimited))
      .Int64(options.max_count);
  ES_ASSIGN_OR_RETURN(PgResult r, WithConnection([&](PgConnection& conn) {
                        return conn.Execute(
                            forward ? read_forward_ : read_backward_, params);
                      }));
  ES_RETURN_IF_ERROR(DecodeRows(r, events));
  ES_RETURN_IF_ERROR(Upcast(events));
  return events;
}

absl::StatusOr<ReadAllPage> PostgresEventStoreImpl::ReadAll(
    const ReadAllOptions& options) {
  if (options.max_count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_count: ", options.max_count, " is negative"));
  }
  ReadAllPage page;
  page.next_position = options.from_position;
  if (options.max_count == 0) return page;
  const ReadAllFilter& filter = options.filter;
  PgParams params;
  params.Int64(static_cast<int64_t>(options.from_position.commit()))
      .Int64(static_cast<int64_t>(options.from_position.prepare()));
  if (filter.stream_prefix.empty()) {
    params.Null();
  } else {
    params.Bytes(filter.stream_prefix);
  }
  if (filter.event_types.empty()) {
    params.Null();
  } else {
    ArrayBuilder types(kTextOid, filter.event_types.size());
    for (const std::string& type : filter.event_types) types.Add(type);
    params.Bytes(types.Finish());
  }
  if (filter.tenant_id.empty()) {
    params.Null();
  } else {
    params.Bytes(filter.tenant_id);
  }
  params.Int64(options.max_count);
  ES_ASSIGN_OR_RETURN(PgResult r, WithConnection([&](PgConnection& conn) {
                        return conn.Execute(read_all_, params);
                      }));
  ES_RETURN_IF_ERROR(DecodeRows(r, page.events));
  page.end_of_log =
      static_cast<int64_t>(page.events.size()) < options.max_count;
  if (!page.events.empty()) page.next_position = page.events.back().position;
  ES_RETURN_IF_ERROR(Upcast(page.events));
  return page;
}

absl::StatusOr<int64_t> PostgresEventStoreImpl::StreamVersion(
    std::string_view stream) {
  ES_RETURN_IF_ERROR(internal::ValidateStreamName(options_.limits, stream));
  PgParams params;
  params.Bytes(stream);
  ES_ASSIGN_OR_RETURN(PgResult r, WithConnection([&](PgConnection& conn) {
                        return conn.Execute(stream_version_, params);
                      }));
  return r.rows() == 0 ? 0 : r.Int64(0, 0);
}

absl::StatusOr<Position> PostgresEventStoreImpl::HeadPosition() {
  PgParams params;
  ES_ASSIGN_OR_RETURN(PgResult r, WithConnection([&](PgConnection& conn) {
                        return conn.Execute(head_, params);
                      }));
  if (r.rows() == 0) return Position::Start();
  return Position::FromParts(r.Uint64(0, 0), r.Uint64(0, 1));
}

absl::StatusOr<bool> PostgresEventStoreImpl::EventExists(const Uuid& id) {
  PgParams params;
  params.Bytes(id.bytes());
  ES_ASSIGN_OR_RETURN(PgResult r, WithConnection([&](PgConnection& conn) {
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

}  // namespace eventstore
