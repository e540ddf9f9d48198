#include "bench/postgres_raw.h"

#include <benchmark/benchmark.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "backends/postgres/postgres_event_store.h"
#include "bench/bench_postgres.h"
#include "eventstore/status_macros.h"
#include "tests/support/postgres_server.h"

namespace eventstore::bench {
namespace {

constexpr char kBatchMethodEnv[] = "EVENTSTORE_BENCH_PG_RAW_BATCH";
// The fastest of the four on W2, measured on the machine of
// docs/benchmarks.md.
constexpr PostgresRawBatchMethod kFastestBatchMethod =
    PostgresRawBatchMethod::kUnnest;

// The event log's tables as backends/postgres/pg_schema.cc creates them
// (migrations 1, 4 and 7); "$S" is the quoted schema.
// CheckPostgresRawSchemaMatchesStore compares the two.
constexpr char kSchemaSql[] = R"sql(
CREATE SCHEMA $S;
CREATE TABLE $S.events (
  position       bigint  GENERATED ALWAYS AS IDENTITY,
  transaction_id xid8    NOT NULL DEFAULT pg_current_xact_id(),
  id             uuid    NOT NULL,
  stream         text    NOT NULL,
  version        bigint  NOT NULL,
  type           text    NOT NULL,
  payload        bytea   NOT NULL,
  metadata       bytea,
  tenant_id      text,
  recorded_at    timestamptz NOT NULL DEFAULT now(),
  checksum       bigint,  -- added by migration 4; the raw side leaves it NULL
  CONSTRAINT events_pkey PRIMARY KEY (transaction_id, position),
  CONSTRAINT events_id_key UNIQUE (id),
  CONSTRAINT events_stream_version_key UNIQUE (stream, version)
);
CREATE INDEX events_by_category  -- added by migration 7
  ON $S.events (split_part(stream, '-', 1), transaction_id, position);
CREATE TABLE $S.event_types (
  type        text PRIMARY KEY,
  descriptor  bytea NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
)sql";

#define ES_RAW_INSERT_COLUMNS                                             \
  "INSERT INTO $S.events (id, stream, version, type, payload, metadata, " \
  "tenant_id) "

// One event, checked and inserted in one statement: the previous version
// must exist (the unique (stream, version) index refuses a taken version).
// Parameters: id, stream, version, type, payload, metadata, tenant.
constexpr char kInsertGuardedSql[] = ES_RAW_INSERT_COLUMNS
    "SELECT $1::uuid, $2::text, $3::bigint, $4::text, $5::bytea, $6::bytea, "
    "$7::text WHERE $3::bigint = 1 OR EXISTS (SELECT 1 FROM $S.events "
    "WHERE stream = $2::text AND version = $3::bigint - 1)";
// The same without the check (the rest of a pipelined batch).
constexpr char kInsertSql[] = ES_RAW_INSERT_COLUMNS
    "VALUES ($1::uuid, $2::text, $3::bigint, $4::text, $5::bytea, $6::bytea, "
    "$7::text)";
// A batch from arrays: stream, version before the batch, ids, types,
// payloads, metadata, tenants.
constexpr char kInsertUnnestSql[] = ES_RAW_INSERT_COLUMNS
    "SELECT e.id, $1::text, $2::bigint + e.n, e.type, e.payload, e.metadata, "
    "e.tenant_id FROM unnest($3::uuid[], $4::text[], $5::bytea[], "
    "$6::bytea[], $7::text[]) WITH ORDINALITY "
    "AS e(id, type, payload, metadata, tenant_id, n)";
constexpr char kCopySql[] =
    "COPY $S.events (id, stream, version, type, payload, metadata, "
    "tenant_id) FROM STDIN (FORMAT binary)";
// The check of a batch that extends a stream (only setups write those).
constexpr char kVersionExistsSql[] =
    "SELECT 1 FROM $S.events WHERE stream = $1::text AND version = $2::bigint";

// The store's reads, word for word (backends/postgres/
// postgres_event_store.cc).
#define ES_RAW_EVENT_COLUMNS                                       \
  "transaction_id, position, id, stream, version, type, payload, " \
  "metadata, recorded_at"
constexpr char kReadForwardSql[] =
    "SELECT " ES_RAW_EVENT_COLUMNS
    " FROM $S.events WHERE stream = $1::text AND version >= $2::bigint "
    "ORDER BY version LIMIT $3::bigint";
constexpr char kReadAllSql[] =
    "SELECT " ES_RAW_EVENT_COLUMNS
    " FROM $S.events"
    " WHERE (transaction_id, position) > ($1::xid8, $2::bigint)"
    "   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    "   AND ($3::text IS NULL OR starts_with(stream, $3::text))"
    "   AND ($4::text[] IS NULL OR type = ANY($4::text[]))"
    "   AND ($5::text IS NULL OR tenant_id = $5::text)"
    " ORDER BY transaction_id, position LIMIT $6::bigint";

// The structure of a schema's event-log tables, one line per column,
// constraint and index, with the schema's name taken out ($1: the schema).
constexpr char kDescribeSql[] = R"sql(
SELECT concat_ws(' | ', 'column', c.relname, a.attnum, a.attname,
                 format_type(a.atttypid, a.atttypmod), a.attnotnull,
                 a.attidentity, pg_get_expr(d.adbin, d.adrelid))
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = $1 AND c.relname IN ('events', 'event_types')
  AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT concat_ws(' | ', 'constraint', c.relname, k.conname,
                 pg_get_constraintdef(k.oid))
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname IN ('events', 'event_types')
UNION ALL
SELECT concat_ws(' | ', 'index', tablename, indexname,
                 replace(indexdef, $1 || '.', 'S.'))
FROM pg_indexes
WHERE schemaname = $1 AND tablename IN ('events', 'event_types')
ORDER BY 1)sql";

// int8 / xid8 in binary: 8 bytes, big-endian.
void PutInt64(char* out, int64_t v) {
  const uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(u >> (56 - 8 * i));
}
void AppendUint32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}
void AppendInt64(std::string& out, int64_t v) {
  char b[8];
  PutInt64(b, v);
  out.append(b, 8);
}
int64_t GetInt64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return static_cast<int64_t>(v);
}

struct FinishConn {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ClearResult {
  void operator()(PGresult* result) const { PQclear(result); }
};
using ConnHandle = std::unique_ptr<PGconn, FinishConn>;
using ResultHandle = std::unique_ptr<PGresult, ClearResult>;

void IgnoreNotice(void*, const char*) {}

std::string Trimmed(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// The status of a call that did not return `expected`.
absl::Status Check(PGconn* conn, const PGresult* result,
                   ExecStatusType expected, std::string_view what) {
  if (result != nullptr && PQresultStatus(result) == expected) {
    return absl::OkStatus();
  }
  const char* state = result != nullptr
                          ? PQresultErrorField(result, PG_DIAG_SQLSTATE)
                          : nullptr;
  const std::string message =
      absl::StrCat("postgres (raw): ", std::string(what.substr(0, 100)), ": ",
                   Trimmed(result != nullptr ? PQresultErrorMessage(result)
                                             : PQerrorMessage(conn)));
  if (state != nullptr && std::strcmp(state, "23505") == 0) {
    return absl::AlreadyExistsError(message);
  }
  return absl::InternalError(message);
}

absl::StatusOr<ConnHandle> ConnectTo(const std::string& url) {
  const char* keys[] = {"dbname", "fallback_application_name", nullptr};
  const char* values[] = {url.c_str(), "eventstore_bench", nullptr};
  ConnHandle conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat(
        "postgres (raw): cannot connect to ", MaskPostgresUrl(url), ": ",
        Trimmed(conn != nullptr ? PQerrorMessage(conn.get()) : "no memory")));
  }
  PQsetNoticeProcessor(conn.get(), IgnoreNotice, nullptr);
  return conn;
}

absl::Status Exec(PGconn* conn, const std::string& sql) {
  ResultHandle result(PQexec(conn, sql.c_str()));
  return Check(conn, result.get(), PGRES_COMMAND_OK, sql);
}

// A schema of its own for one benchmark database, dropped (with everything
// in it) when the last owner lets go.
class BenchSchema {
 public:
  // A new schema name with `prefix`; with `ddl`, runs it (after replacing
  // "$S" by the quoted name) to create the schema and its tables.
  static absl::StatusOr<std::shared_ptr<BenchSchema>> Create(
      const std::string& url, const char* prefix, const char* ddl) {
    static std::atomic<int> counter{0};
    auto schema = std::shared_ptr<BenchSchema>(new BenchSchema(
        url, absl::StrCat(prefix, "_", getpid(), "_", ++counter)));
    if (ddl != nullptr) {
      ES_ASSIGN_OR_RETURN(ConnHandle conn, ConnectTo(url));
      ES_RETURN_IF_ERROR(Exec(conn.get(), schema->Sql(ddl)));
    }
    return schema;
  }

  BenchSchema(const BenchSchema&) = delete;
  BenchSchema& operator=(const BenchSchema&) = delete;
  ~BenchSchema() {
    absl::StatusOr<ConnHandle> conn = ConnectTo(url_);
    if (!conn.ok()) return;
    Exec(conn->get(),
         absl::StrCat("DROP SCHEMA IF EXISTS \"", name_, "\" CASCADE"))
        .IgnoreError();
  }

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  // `sql` with "$S" replaced by the quoted schema name.
  std::string Sql(const char* sql) const {
    return absl::StrReplaceAll(sql, {{"$S", absl::StrCat("\"", name_, "\"")}});
  }

 private:
  BenchSchema(std::string url, std::string name)
      : url_(std::move(url)), name_(std::move(name)) {}

  const std::string url_;
  const std::string name_;
};

// Reads every column of a row as an application reading the bytes in place
// would: the integers, and each other value's pointer, size and first byte.
int64_t TouchRow(const PGresult* r, int row) {
  int64_t sum = 0;
  for (int column : {0, 1, 4, 8}) {
    if (PQgetlength(r, row, column) == 8) {
      sum += GetInt64(PQgetvalue(r, row, column));
    }
  }
  for (int column : {2, 3, 5, 6, 7}) {
    const int size = PQgetlength(r, row, column);
    if (size > 0) {
      sum += static_cast<unsigned char>(PQgetvalue(r, row, column)[0]) + size;
    }
  }
  return sum;
}

// A one-dimensional array in binary format.
class ArrayWriter {
 public:
  ArrayWriter(uint32_t element_oid, size_t count) {
    AppendUint32(header_, 1);  // dimensions
    AppendUint32(header_, 0);  // has nulls (patched by Finish)
    AppendUint32(header_, element_oid);
    AppendUint32(header_, static_cast<uint32_t>(count));
    AppendUint32(header_, 1);  // lower bound
  }
  void Add(std::string_view value) {
    AppendUint32(body_, static_cast<uint32_t>(value.size()));
    body_.append(value.data(), value.size());
  }
  void AddNull() {
    has_null_ = true;
    AppendUint32(body_, 0xffffffffu);
  }
  std::string Finish() {
    if (has_null_) header_[7] = 1;
    return header_ + body_;
  }

 private:
  std::string header_;
  std::string body_;
  bool has_null_ = false;
};

constexpr uint32_t kByteaOid = 17;
constexpr uint32_t kTextOid = 25;
constexpr uint32_t kUuidOid = 2950;

class PostgresRawTarget final : public Target {
 public:
  // A connection to `schema` (whose tables exist), with the statements
  // prepared.
  static absl::StatusOr<std::unique_ptr<PostgresRawTarget>> Connect(
      std::shared_ptr<BenchSchema> schema, PostgresRawBatchMethod method) {
    std::unique_ptr<PostgresRawTarget> target(
        new PostgresRawTarget(std::move(schema), method));
    ES_ASSIGN_OR_RETURN(target->conn_, ConnectTo(target->schema_->url()));
    for (const auto& [name, sql] :
         std::initializer_list<std::pair<const char*, const char*>>{
             {"raw_insert_guarded", kInsertGuardedSql},
             {"raw_insert", kInsertSql},
             {"raw_insert_unnest", kInsertUnnestSql},
             {"raw_version_exists", kVersionExistsSql},
             {"raw_read_forward", kReadForwardSql},
             {"raw_read_all", kReadAllSql}}) {
      ES_RETURN_IF_ERROR(target->Prepare(name, target->schema_->Sql(sql)));
    }
    target->copy_sql_ = target->schema_->Sql(kCopySql);
    return target;
  }

  absl::Status Append(const Batch& batch) override {
    int64_t version;
    switch (batch.expected.kind()) {
      case ExpectedVersion::Kind::kNoStream:
        version = 0;
        break;
      case ExpectedVersion::Kind::kExactly:
        version = batch.expected.version();
        break;
      default:
        return absl::InvalidArgumentError(
            "postgres (raw): a batch needs NoStream() or Exactly(n)");
    }
    if (batch.events.size() == 1) return AppendOne(batch, version);
    if (version > 0) {
      // Only setups extend a stream with a batch: check apart (untimed).
      ES_RETURN_IF_ERROR(CheckVersionExists(batch.stream, version));
    }
    switch (method_) {
      case PostgresRawBatchMethod::kCopy:
        return AppendCopy(batch, version);
      case PostgresRawBatchMethod::kValues:
        return AppendValues(batch, version);
      case PostgresRawBatchMethod::kUnnest:
        return AppendUnnest(batch, version);
      case PostgresRawBatchMethod::kPipeline:
        return AppendPipeline(batch, version);
    }
    return absl::InternalError("postgres (raw): unknown batch method");
  }

  absl::StatusOr<int64_t> ReadStream(const std::string& stream) override {
    char from[8];
    char count[8];
    PutInt64(from, 1);
    PutInt64(count, std::numeric_limits<int64_t>::max());
    const char* values[] = {stream.data(), from, count};
    const int lengths[] = {static_cast<int>(stream.size()), 8, 8};
    const int formats[] = {1, 1, 1};
    ResultHandle r(PQexecPrepared(conn_.get(), "raw_read_forward", 3, values,
                                  lengths, formats, /*resultFormat=*/1));
    ES_RETURN_IF_ERROR(
        Check(conn_.get(), r.get(), PGRES_TUPLES_OK, "raw_read_forward"));
    const int rows = PQntuples(r.get());
    int64_t sum = 0;
    for (int row = 0; row < rows; ++row) sum += TouchRow(r.get(), row);
    benchmark::DoNotOptimize(sum);
    return rows;
  }

  absl::StatusOr<PageResult> ReadAll(Position from,
                                     int64_t max_count) override {
    char commit[8];
    char prepare[8];
    char count[8];
    PutInt64(commit, static_cast<int64_t>(from.commit()));
    PutInt64(prepare, static_cast<int64_t>(from.prepare()));
    PutInt64(count, max_count);
    const char* values[] = {commit, prepare, nullptr, nullptr, nullptr, count};
    const int lengths[] = {8, 8, 0, 0, 0, 8};
    const int formats[] = {1, 1, 1, 1, 1, 1};
    ResultHandle r(PQexecPrepared(conn_.get(), "raw_read_all", 6, values,
                                  lengths, formats, /*resultFormat=*/1));
    ES_RETURN_IF_ERROR(
        Check(conn_.get(), r.get(), PGRES_TUPLES_OK, "raw_read_all"));
    const int rows = PQntuples(r.get());
    int64_t sum = 0;
    for (int row = 0; row < rows; ++row) sum += TouchRow(r.get(), row);
    benchmark::DoNotOptimize(sum);
    PageResult page;
    page.events = rows;
    page.next_position = from;
    if (rows > 0) {
      page.next_position = Position::FromParts(
          static_cast<uint64_t>(GetInt64(PQgetvalue(r.get(), rows - 1, 0))),
          static_cast<uint64_t>(GetInt64(PQgetvalue(r.get(), rows - 1, 1))));
    }
    page.end_of_log = rows < max_count;
    return page;
  }

 private:
  PostgresRawTarget(std::shared_ptr<BenchSchema> schema,
                    PostgresRawBatchMethod method)
      : schema_(std::move(schema)), method_(method) {}

  absl::Status Prepare(const char* name, const std::string& sql) {
    ResultHandle r(PQprepare(conn_.get(), name, sql.c_str(), 0, nullptr));
    return Check(conn_.get(), r.get(), PGRES_COMMAND_OK, sql);
  }

  // The seven parameters of one event's INSERT, pointing into `batch`;
  // `version` must stay alive while they are used.
  struct EventParams {
    const char* values[7];
    int lengths[7];
  };
  static void SetEventParams(const Batch& batch, size_t i, const char* version,
                             EventParams& p) {
    const EventData& event = batch.events[i];
    const std::string& metadata = batch.encoded_metadata[i];
    const std::string& tenant = event.metadata.tenant_id();
    const std::string_view id = event.id.bytes();
    p.values[0] = id.data();
    p.lengths[0] = static_cast<int>(id.size());
    p.values[1] = batch.stream.data();
    p.lengths[1] = static_cast<int>(batch.stream.size());
    p.values[2] = version;
    p.lengths[2] = 8;
    p.values[3] = event.type.data();
    p.lengths[3] = static_cast<int>(event.type.size());
    p.values[4] = event.payload.data();
    p.lengths[4] = static_cast<int>(event.payload.size());
    p.values[5] = metadata.empty() ? nullptr : metadata.data();
    p.lengths[5] = static_cast<int>(metadata.size());
    p.values[6] = tenant.empty() ? nullptr : tenant.data();
    p.lengths[6] = static_cast<int>(tenant.size());
  }

  // W1's form: one guarded statement, one round trip.
  absl::Status AppendOne(const Batch& batch, int64_t version) {
    char next[8];
    PutInt64(next, version + 1);
    EventParams p;
    SetEventParams(batch, 0, next, p);
    static constexpr int kFormats[7] = {1, 1, 1, 1, 1, 1, 1};
    ResultHandle r(PQexecPrepared(conn_.get(), "raw_insert_guarded", 7,
                                  p.values, p.lengths, kFormats,
                                  /*resultFormat=*/1));
    ES_RETURN_IF_ERROR(
        Check(conn_.get(), r.get(), PGRES_COMMAND_OK, "raw_insert_guarded"));
    if (std::strcmp(PQcmdTuples(r.get()), "1") != 0) {
      return absl::AbortedError(absl::StrCat("postgres (raw): stream '",
                                             batch.stream,
                                             "' is not at version ", version));
    }
    return absl::OkStatus();
  }

  absl::Status CheckVersionExists(const std::string& stream, int64_t version) {
    char v[8];
    PutInt64(v, version);
    const char* values[] = {stream.data(), v};
    const int lengths[] = {static_cast<int>(stream.size()), 8};
    const int formats[] = {1, 1};
    ResultHandle r(PQexecPrepared(conn_.get(), "raw_version_exists", 2, values,
                                  lengths, formats, /*resultFormat=*/1));
    ES_RETURN_IF_ERROR(
        Check(conn_.get(), r.get(), PGRES_TUPLES_OK, "raw_version_exists"));
    if (PQntuples(r.get()) != 1) {
      return absl::AbortedError(absl::StrCat("postgres (raw): stream '", stream,
                                             "' is not at version ", version));
    }
    return absl::OkStatus();
  }

  absl::Status AppendCopy(const Batch& batch, int64_t version) {
    std::string& data = scratch_;
    data.clear();
    data.append("PGCOPY\n\377\r\n\0", 11);
    AppendUint32(data, 0);  // flags
    AppendUint32(data, 0);  // header extension
    for (size_t i = 0; i < batch.events.size(); ++i) {
      const EventData& event = batch.events[i];
      const std::string& metadata = batch.encoded_metadata[i];
      const std::string& tenant = event.metadata.tenant_id();
      data.append("\0\7", 2);  // fields
      auto field = [&data](std::string_view value) {
        AppendUint32(data, static_cast<uint32_t>(value.size()));
        data.append(value.data(), value.size());
      };
      field(event.id.bytes());
      field(batch.stream);
      AppendUint32(data, 8);
      AppendInt64(data, version + 1 + static_cast<int64_t>(i));
      field(event.type);
      field(event.payload);
      if (metadata.empty()) {
        AppendUint32(data, 0xffffffffu);
      } else {
        field(metadata);
      }
      if (tenant.empty()) {
        AppendUint32(data, 0xffffffffu);
      } else {
        field(tenant);
      }
    }
    data.append("\377\377", 2);  // trailer
    PGconn* conn = conn_.get();
    ResultHandle start(PQexec(conn, copy_sql_.c_str()));
    ES_RETURN_IF_ERROR(Check(conn, start.get(), PGRES_COPY_IN, copy_sql_));
    if (PQputCopyData(conn, data.data(), static_cast<int>(data.size())) != 1 ||
        PQputCopyEnd(conn, nullptr) != 1) {
      return Check(conn, nullptr, PGRES_COMMAND_OK, "COPY data");
    }
    absl::Status status = absl::OkStatus();
    bool first = true;
    while (PGresult* raw = PQgetResult(conn)) {
      ResultHandle r(raw);
      if (first) status = Check(conn, r.get(), PGRES_COMMAND_OK, copy_sql_);
      first = false;
    }
    return status;
  }

  absl::Status AppendValues(const Batch& batch, int64_t version) {
    const size_t n = batch.events.size();
    auto it = values_statements_.find(n);
    if (it == values_statements_.end()) {
      std::string sql = ES_RAW_INSERT_COLUMNS "VALUES ";
      for (size_t i = 0; i < n; ++i) {
        const size_t b = 1 + 6 * i;
        absl::StrAppend(&sql, i == 0 ? "" : ", ", "($", b + 1,
                        "::uuid, $1::text, $", b + 2, "::bigint, $", b + 3,
                        "::text, $", b + 4, "::bytea, $", b + 5, "::bytea, $",
                        b + 6, "::text)");
      }
      const std::string name = absl::StrCat("raw_insert_values_", n);
      ES_RETURN_IF_ERROR(Prepare(name.c_str(), schema_->Sql(sql.c_str())));
      it = values_statements_.emplace(n, name).first;
    }
    const size_t params = 1 + 6 * n;
    std::vector<const char*> values(params);
    std::vector<int> lengths(params);
    std::vector<int> formats(params, 1);
    std::vector<char> versions(8 * n);
    values[0] = batch.stream.data();
    lengths[0] = static_cast<int>(batch.stream.size());
    for (size_t i = 0; i < n; ++i) {
      char* v = &versions[8 * i];
      PutInt64(v, version + 1 + static_cast<int64_t>(i));
      EventParams p;
      SetEventParams(batch, i, v, p);
      const size_t b = 1 + 6 * i;
      for (int k : {0, 2, 3, 4, 5, 6}) {
        const size_t at = b + (k == 0 ? 0 : k - 1);
        values[at] = p.values[k];
        lengths[at] = p.lengths[k];
      }
    }
    ResultHandle r(PQexecPrepared(conn_.get(), it->second.c_str(),
                                  static_cast<int>(params), values.data(),
                                  lengths.data(), formats.data(),
                                  /*resultFormat=*/1));
    return Check(conn_.get(), r.get(), PGRES_COMMAND_OK, it->second);
  }

  absl::Status AppendUnnest(const Batch& batch, int64_t version) {
    const size_t n = batch.events.size();
    ArrayWriter ids(kUuidOid, n);
    ArrayWriter types(kTextOid, n);
    ArrayWriter payloads(kByteaOid, n);
    ArrayWriter metadata(kByteaOid, n);
    ArrayWriter tenants(kTextOid, n);
    for (size_t i = 0; i < n; ++i) {
      const EventData& event = batch.events[i];
      ids.Add(event.id.bytes());
      types.Add(event.type);
      payloads.Add(event.payload);
      if (batch.encoded_metadata[i].empty()) {
        metadata.AddNull();
      } else {
        metadata.Add(batch.encoded_metadata[i]);
      }
      const std::string& tenant = event.metadata.tenant_id();
      if (tenant.empty()) {
        tenants.AddNull();
      } else {
        tenants.Add(tenant);
      }
    }
    char v[8];
    PutInt64(v, version);
    const std::string arrays[] = {ids.Finish(), types.Finish(),
                                  payloads.Finish(), metadata.Finish(),
                                  tenants.Finish()};
    const char* values[7] = {batch.stream.data(), v};
    int lengths[7] = {static_cast<int>(batch.stream.size()), 8};
    for (int k = 0; k < 5; ++k) {
      values[2 + k] = arrays[k].data();
      lengths[2 + k] = static_cast<int>(arrays[k].size());
    }
    static constexpr int kFormats[7] = {1, 1, 1, 1, 1, 1, 1};
    ResultHandle r(PQexecPrepared(conn_.get(), "raw_insert_unnest", 7, values,
                                  lengths, kFormats, /*resultFormat=*/1));
    return Check(conn_.get(), r.get(), PGRES_COMMAND_OK, "raw_insert_unnest");
  }

  // Every INSERT, then one Sync: the statements before a Sync run as one
  // implicit transaction, committed at the Sync.
  absl::Status AppendPipeline(const Batch& batch, int64_t version) {
    PGconn* conn = conn_.get();
    if (PQenterPipelineMode(conn) != 1) {
      return Check(conn, nullptr, PGRES_COMMAND_OK, "entering pipeline mode");
    }
    static constexpr int kFormats[7] = {1, 1, 1, 1, 1, 1, 1};
    const size_t n = batch.events.size();
    std::vector<char> versions(8 * n);
    size_t sent = 0;
    for (; sent < n; ++sent) {
      char* v = &versions[8 * sent];
      PutInt64(v, version + 1 + static_cast<int64_t>(sent));
      EventParams p;
      SetEventParams(batch, sent, v, p);
      if (PQsendQueryPrepared(conn, "raw_insert", 7, p.values, p.lengths,
                              kFormats, /*resultFormat=*/1) != 1) {
        break;
      }
    }
    absl::Status status = absl::OkStatus();
    if (sent < n) status = Check(conn, nullptr, PGRES_COMMAND_OK, "raw_insert");
    if (PQpipelineSync(conn) != 1 && status.ok()) {
      status = Check(conn, nullptr, PGRES_COMMAND_OK, "pipeline sync");
    }
    // One result (then a null) per INSERT sent, then the Sync's.
    for (size_t i = 0; i < sent; ++i) {
      ResultHandle r(PQgetResult(conn));
      if (r == nullptr) break;
      if (status.ok() && PQresultStatus(r.get()) != PGRES_PIPELINE_ABORTED) {
        status = Check(conn, r.get(), PGRES_COMMAND_OK, "raw_insert");
      }
      ResultHandle end(PQgetResult(conn));
    }
    ResultHandle sync(PQgetResult(conn));
    if (status.ok()) {
      status = Check(conn, sync.get(), PGRES_PIPELINE_SYNC, "pipeline sync");
    }
    PQexitPipelineMode(conn);
    return status;
  }

  // Declared first: the schema is dropped after the connection is closed.
  std::shared_ptr<BenchSchema> schema_;
  const PostgresRawBatchMethod method_;
  ConnHandle conn_;
  std::string copy_sql_;
  // VALUES statements prepared so far, by batch size.
  std::map<size_t, std::string> values_statements_;
  // COPY's data buffer, kept from batch to batch.
  std::string scratch_;
};

absl::StatusOr<std::string> Describe(PGconn* conn, const std::string& schema) {
  const char* values[] = {schema.c_str()};
  ResultHandle r(PQexecParams(conn, kDescribeSql, 1, nullptr, values, nullptr,
                              nullptr, /*resultFormat=*/0));
  ES_RETURN_IF_ERROR(Check(conn, r.get(), PGRES_TUPLES_OK, "describing"));
  std::string out;
  for (int row = 0; row < PQntuples(r.get()); ++row) {
    absl::StrAppend(&out, PQgetvalue(r.get(), row, 0), "\n");
  }
  return out;
}

// The benchmark server, started on first use.
struct BenchServer {
  std::mutex mu;
  std::optional<absl::StatusOr<std::string>> url;
  std::unique_ptr<test::PostgresServer> server;
};

BenchServer& Server() {
  static auto* server = new BenchServer;
  return *server;
}

absl::StatusOr<std::string> StartServer(BenchServer& s) {
  ES_ASSIGN_OR_RETURN(std::string url, StartBenchPostgres(&s.server));
  ES_RETURN_IF_ERROR(CheckPostgresRawSchemaMatchesStore(url));
  return url;
}

}  // namespace

absl::StatusOr<std::string> BenchPostgresUrl() {
  BenchServer& s = Server();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.url.has_value()) s.url = StartServer(s);
  return *s.url;
}

void StopBenchPostgres() {
  BenchServer& s = Server();
  std::lock_guard<std::mutex> lock(s.mu);
  s.server.reset();
}

const char* RawBatchMethodName(PostgresRawBatchMethod method) {
  switch (method) {
    case PostgresRawBatchMethod::kCopy:
      return "copy";
    case PostgresRawBatchMethod::kValues:
      return "values";
    case PostgresRawBatchMethod::kUnnest:
      return "unnest";
    case PostgresRawBatchMethod::kPipeline:
      return "pipeline";
  }
  return "?";
}

absl::StatusOr<PostgresRawBatchMethod> RawBatchMethodFromEnv() {
  const char* env = std::getenv(kBatchMethodEnv);
  if (env == nullptr || env[0] == '\0') return kFastestBatchMethod;
  for (PostgresRawBatchMethod method :
       {PostgresRawBatchMethod::kCopy, PostgresRawBatchMethod::kValues,
        PostgresRawBatchMethod::kUnnest, PostgresRawBatchMethod::kPipeline}) {
    if (std::strcmp(env, RawBatchMethodName(method)) == 0) return method;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(kBatchMethodEnv, "=", env,
                   ": expected copy, values, unnest or pipeline"));
}

TargetFactory PostgresRawFactory() {
  return []() -> absl::StatusOr<std::unique_ptr<Target>> {
    ES_ASSIGN_OR_RETURN(const PostgresRawBatchMethod method,
                        RawBatchMethodFromEnv());
    return PostgresRawFactory(method)();
  };
}

TargetFactory PostgresRawFactory(PostgresRawBatchMethod method) {
  return [method]() -> absl::StatusOr<std::unique_ptr<Target>> {
    ES_ASSIGN_OR_RETURN(const std::string url, BenchPostgresUrl());
    ES_ASSIGN_OR_RETURN(std::shared_ptr<BenchSchema> schema,
                        BenchSchema::Create(url, "bench_raw", kSchemaSql));
    ES_ASSIGN_OR_RETURN(std::unique_ptr<Target> target,
                        PostgresRawTarget::Connect(std::move(schema), method));
    return target;
  };
}

StoreFactory PostgresStoreOpener() {
  return []() -> absl::StatusOr<std::shared_ptr<EventStore>> {
    ES_ASSIGN_OR_RETURN(const std::string url, BenchPostgresUrl());
    ES_ASSIGN_OR_RETURN(std::shared_ptr<BenchSchema> schema,
                        BenchSchema::Create(url, "bench", nullptr));
    PostgresOptions options;
    options.conninfo = url;
    options.schema = schema->name();
    ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> store,
                        PostgresEventStore::Open(options));
    // The deleter owns the schema: it is dropped after the store closes.
    return std::shared_ptr<EventStore>(
        store.release(),
        [schema = std::move(schema)](EventStore* s) { delete s; });
  };
}

TargetFactory PostgresStoreFactory() {
  return
      [open =
           PostgresStoreOpener()]() -> absl::StatusOr<std::unique_ptr<Target>> {
        ES_ASSIGN_OR_RETURN(std::shared_ptr<EventStore> store, open());
        return MakeStoreTarget(std::move(store), nullptr);
      };
}

WritersFactory PostgresStoreWritersFactory() {
  return
      [](int writers) -> absl::StatusOr<std::vector<std::unique_ptr<Target>>> {
        ES_ASSIGN_OR_RETURN(const std::string url, BenchPostgresUrl());
        ES_ASSIGN_OR_RETURN(std::shared_ptr<BenchSchema> schema,
                            BenchSchema::Create(url, "bench", nullptr));
        PostgresOptions options;
        options.conninfo = url;
        options.schema = schema->name();
        options.pool_size = writers;
        ES_ASSIGN_OR_RETURN(std::shared_ptr<EventStore> store,
                            PostgresEventStore::Open(options));
        std::vector<std::unique_ptr<Target>> targets;
        for (int i = 0; i < writers; ++i) {
          targets.push_back(MakeStoreTarget(store, schema));
        }
        return targets;
      };
}

WritersFactory PostgresRawWritersFactory() {
  return
      [](int writers) -> absl::StatusOr<std::vector<std::unique_ptr<Target>>> {
        ES_ASSIGN_OR_RETURN(const PostgresRawBatchMethod method,
                            RawBatchMethodFromEnv());
        ES_ASSIGN_OR_RETURN(const std::string url, BenchPostgresUrl());
        ES_ASSIGN_OR_RETURN(std::shared_ptr<BenchSchema> schema,
                            BenchSchema::Create(url, "bench_raw", kSchemaSql));
        std::vector<std::unique_ptr<Target>> targets;
        for (int i = 0; i < writers; ++i) {
          ES_ASSIGN_OR_RETURN(std::unique_ptr<Target> target,
                              PostgresRawTarget::Connect(schema, method));
          targets.push_back(std::move(target));
        }
        return targets;
      };
}

absl::Status CheckPostgresRawSchemaMatchesStore(const std::string& url) {
  ES_ASSIGN_OR_RETURN(std::shared_ptr<BenchSchema> ours,
                      BenchSchema::Create(url, "bench_check", nullptr));
  ES_ASSIGN_OR_RETURN(std::shared_ptr<BenchSchema> raw,
                      BenchSchema::Create(url, "bench_check_raw", kSchemaSql));
  {
    PostgresOptions options;
    options.conninfo = url;
    options.schema = ours->name();
    options.pool_size = 1;
    ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> store,
                        PostgresEventStore::Open(options));
  }
  ES_ASSIGN_OR_RETURN(ConnHandle conn, ConnectTo(url));
  ES_ASSIGN_OR_RETURN(std::string ours_text,
                      Describe(conn.get(), ours->name()));
  ES_ASSIGN_OR_RETURN(std::string raw_text, Describe(conn.get(), raw->name()));
  if (ours_text.empty() || ours_text != raw_text) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the raw baseline's tables (kSchemaSql in bench/postgres_raw.cc) "
        "differ from the store's (backends/postgres/pg_schema.cc); copy them "
        "again.\nstore:\n",
        ours_text, "raw:\n", raw_text));
  }
  return absl::OkStatus();
}

}  // namespace eventstore::bench
