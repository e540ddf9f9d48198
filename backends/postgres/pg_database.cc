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

absl::StatusOr<std::unique_ptr<PgDatabase>> PgDatabase::Open(
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
    ES_RETURN_IF_ERROR(
        EnsureSchema(*conn, options.schema, options.create_if_missing));
  }
  return std::unique_ptr<PgDatabase>(new PgDatabase(options, std::move(pool)));
}

PgStatement PgDatabase::Statement(const char* name,
                                  std::string_view sql) const {
  return PgStatement{
      name, absl::StrReplaceAll(std::string(sql), {{"$S", quoted_schema_}})};
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgDatabase::ConnectDedicated()
    const {
  return PgConnection::Connect(options_.conninfo, options_.connect_timeout,
                               options_.statement_timeout);
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
