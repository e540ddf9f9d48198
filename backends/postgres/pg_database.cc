#include "backends/postgres/pg_database.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_replace.h"
#include "backends/postgres/pg_binary.h"
#include "backends/postgres/pg_schema.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {

PgDatabase::PgDatabase(PostgresOptions options, std::unique_ptr<PgPool> pool)
    : options_(std::move(options)),
      quoted_schema_(absl::StrCat("\"", options_.schema, "\"")),
      pool_(std::move(pool)) {}

namespace {

absl::Status CheckTimeout(const char* name, absl::Duration d) {
  if (d < absl::ZeroDuration() ||
      d > absl::Milliseconds(PostgresOptions::kMaxTimeoutMs)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", absl::FormatDuration(d), " is not from 0 to ",
                     PostgresOptions::kMaxTimeoutMs, " ms"));
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(const PostgresOptions& options) {
  if (options.conninfo.empty()) {
    return absl::InvalidArgumentError("conninfo: empty");
  }
  if (options.conninfo.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("conninfo: holds a NUL byte");
  }
  ES_RETURN_IF_ERROR(ValidateSchemaName(options.schema));
  if (options.pool_size < 1 ||
      options.pool_size > PostgresOptions::kMaxPoolSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("pool_size: ", options.pool_size, " is not from 1 to ",
                     PostgresOptions::kMaxPoolSize));
  }
  ES_RETURN_IF_ERROR(CheckTimeout("connect_timeout", options.connect_timeout));
  ES_RETURN_IF_ERROR(
      CheckTimeout("statement_timeout", options.statement_timeout));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PgDatabase>> PgDatabase::Open(
    const PostgresOptions& options) {
  ES_RETURN_IF_ERROR(ValidateOptions(options));
  PgPoolReporting reporting;
  reporting.instrumentation = options.instrumentation;
  reporting.log_sink = options.log_sink;
  auto pool = std::make_unique<PgPool>(
      options.conninfo, options.pool_size, options.connect_timeout,
      options.statement_timeout, options.read_only, std::move(reporting));
  {
    ES_ASSIGN_OR_RETURN(PgPool::Lease conn, pool->Acquire());
    SchemaPolicy policy;
    policy.create = options.create_if_missing && !options.read_only;
    policy.upgrade = options.upgrade_schema && !options.read_only;
    ES_RETURN_IF_ERROR(EnsureSchema(*conn, options.schema, policy).status());
  }
  return std::unique_ptr<PgDatabase>(new PgDatabase(options, std::move(pool)));
}

absl::StatusOr<SchemaUpgrade> PgDatabase::UpgradeSchema(
    const PostgresOptions& options) {
  ES_RETURN_IF_ERROR(ValidateOptions(options));
  ES_ASSIGN_OR_RETURN(
      std::unique_ptr<PgConnection> conn,
      PgConnection::Connect(options.conninfo, options.connect_timeout,
                            options.statement_timeout));
  SchemaPolicy policy;
  policy.create = false;
  policy.upgrade = true;
  ES_ASSIGN_OR_RETURN(int64_t from,
                      EnsureSchema(*conn, options.schema, policy));
  SchemaUpgrade upgrade;
  upgrade.from_version = static_cast<int>(from);
  upgrade.to_version = PostgresEventStore::kSchemaVersion;
  return upgrade;
}

PgStatement PgDatabase::Statement(const char* name,
                                  std::string_view sql) const {
  return PgStatement{
      name, absl::StrReplaceAll(std::string(sql), {{"$S", quoted_schema_}})};
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgDatabase::ConnectDedicated()
    const {
  return PgConnection::Connect(options_.conninfo, options_.connect_timeout,
                               options_.statement_timeout, options_.read_only);
}

absl::Status PgDatabase::Explained(const absl::Status& status, Retry retry) {
  if (status.code() != absl::StatusCode::kUnavailable) return status;
  return absl::Status(
      status.code(),
      absl::StrCat(status.message(),
                   retry == Retry::kNever
                       ? "; the call may or may not have taken effect"
                       : "; the call is safe to retry"));
}

void AddFilterParams(const ReadAllFilter& filter, PgParams& params) {
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
}

int64_t IntervalMicros(absl::Duration d) {
  const absl::Duration limit = absl::Hours(24 * 366 * 100);
  return absl::ToInt64Microseconds(std::clamp(d, -limit, limit));
}

}  // namespace eventstore::postgres
