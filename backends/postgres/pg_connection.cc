#include "backends/postgres/pg_connection.h"

#include <libpq-fe.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/postgres/pg_binary.h"
#include "backends/postgres/postgres_event_store.h"

namespace eventstore::postgres {
namespace {

void IgnoreNotice(void*, const char*) {}

std::string Trimmed(const char* message) {
  return std::string(absl::StripAsciiWhitespace(message ? message : ""));
}

// The status for a failed call with SQLSTATE `state` (empty when the
// failure was not reported by the server).
absl::Status PgError(const std::string& state, bool broken,
                     std::string message) {
  if (broken || absl::StartsWith(state, "08") || state == "57P01" ||
      state == "57P02" || state == "57P03" || state == "53300") {
    return absl::UnavailableError(
        absl::StrCat(message, " (connection lost; the call is safe to retry)"));
  }
  if (state == "23505") return absl::AlreadyExistsError(message);
  if (state == "57014") return absl::DeadlineExceededError(message);
  if (state == "40001" || state == "40P01" || state == "55P03") {
    return absl::UnavailableError(absl::StrCat(message, " (retry)"));
  }
  if (absl::StartsWith(state, "28"))
    return absl::PermissionDeniedError(message);
  if (absl::StartsWith(state, "22")) return absl::InvalidArgumentError(message);
  if (state == "3F000" || state == "42P01") {
    return absl::FailedPreconditionError(message);
  }
  return absl::InternalError(message);
}

}  // namespace

void PgResultDeleter::operator()(pg_result* result) const { PQclear(result); }

int PgResult::rows() const { return PQntuples(result_.get()); }

bool PgResult::IsNull(int row, int column) const {
  return PQgetisnull(result_.get(), row, column) != 0;
}

std::string_view PgResult::Bytes(int row, int column) const {
  return std::string_view(PQgetvalue(result_.get(), row, column),
                          PQgetlength(result_.get(), row, column));
}

int64_t PgResult::Int64(int row, int column) const {
  return static_cast<int64_t>(Uint64(row, column));
}

uint64_t PgResult::Uint64(int row, int column) const {
  if (PQgetlength(result_.get(), row, column) != 8) return 0;
  return GetUint64(PQgetvalue(result_.get(), row, column));
}

absl::Time PgResult::Timestamp(int row, int column) const {
  if (PQgetlength(result_.get(), row, column) != 8) return absl::InfinitePast();
  return DecodeTimestamp(PQgetvalue(result_.get(), row, column));
}

PgParams& PgParams::Int64(int64_t v) {
  values_.push_back(EncodeInt64(v));
  null_.push_back(false);
  return *this;
}

PgParams& PgParams::Bytes(std::string_view v) {
  values_.emplace_back(v);
  null_.push_back(false);
  return *this;
}

PgParams& PgParams::Null() {
  values_.emplace_back();
  null_.push_back(true);
  return *this;
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(
    const std::string& conninfo, absl::Duration connect_timeout,
    absl::Duration statement_timeout) {
  const std::string timeout =
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(connect_timeout)));
  const std::string options = absl::StrCat(
      "-c statement_timeout=", absl::ToInt64Milliseconds(statement_timeout));
  const char* keys[] = {"dbname", "connect_timeout", "options",
                        "fallback_application_name", nullptr};
  const char* values[] = {conninfo.c_str(), timeout.c_str(), options.c_str(),
                          "eventstore", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return absl::ResourceExhaustedError("postgres: out of memory connecting");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("postgres: cannot connect to ", MaskPostgresUrl(conninfo),
                     ": ", Trimmed(PQerrorMessage(conn))));
    PQfinish(conn);
    return status;
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::broken() const { return PQstatus(conn_) != CONNECTION_OK; }

absl::Status PgConnection::Check(pg_result* result, int expected_status,
                                 std::string_view context) {
  if (result != nullptr && PQresultStatus(result) == expected_status) {
    last_sqlstate_.clear();
    last_constraint_.clear();
    return absl::OkStatus();
  }
  const char* state =
      result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const char* constraint =
      result ? PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME) : nullptr;
  last_sqlstate_ = state ? state : "";
  last_constraint_ = constraint ? constraint : "";
  const std::string message = absl::StrCat(
      "postgres: ", std::string(context), ": ",
      Trimmed(result ? PQresultErrorMessage(result) : PQerrorMessage(conn_)));
  return PgError(last_sqlstate_, broken(), message);
}

absl::StatusOr<PgResult> PgConnection::Execute(const PgStatement& stmt,
                                               const PgParams& params) {
  if (!prepared_.contains(stmt.name)) {
    PgResult prepared(
        PQprepare(conn_, stmt.name, stmt.sql.c_str(), 0, nullptr));
    absl::Status status = Check(prepared.result_.get(), PGRES_COMMAND_OK,
                                absl::StrCat("preparing ", stmt.name));
    if (!status.ok()) return status;
    prepared_.insert(stmt.name);
  }
  const size_t n = params.values_.size();
  std::vector<const char*> values(n);
  std::vector<int> lengths(n);
  std::vector<int> formats(n, 1);
  for (size_t i = 0; i < n; ++i) {
    values[i] = params.null_[i] ? nullptr : params.values_[i].data();
    lengths[i] = static_cast<int>(params.values_[i].size());
  }
  PgResult result(PQexecPrepared(conn_, stmt.name, static_cast<int>(n),
                                 values.data(), lengths.data(), formats.data(),
                                 /*resultFormat=*/1));
  const int status_code = PQresultStatus(result.result_.get());
  const int expected =
      status_code == PGRES_COMMAND_OK ? PGRES_COMMAND_OK : PGRES_TUPLES_OK;
  absl::Status status = Check(result.result_.get(), expected, stmt.name);
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<PgResult> PgConnection::Exec(std::string_view sql) {
  const std::string text(sql);
  PgResult result(PQexec(conn_, text.c_str()));
  const int status_code = PQresultStatus(result.result_.get());
  const int expected =
      status_code == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
  absl::Status status =
      Check(result.result_.get(), expected, text.substr(0, 80));
  if (!status.ok()) return status;
  return result;
}

}  // namespace eventstore::postgres
