#include "backends/postgres/pg_connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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
    return absl::UnavailableError(absl::StrCat(message, " (connection lost)"));
  }
  if (state == "23505") return absl::AlreadyExistsError(message);
  if (state == "25006") {  // read_only_sql_transaction
    return absl::FailedPreconditionError(
        absl::StrCat(message,
                     " (the store was opened read-only, or the server is a "
                     "read-only standby)"));
  }
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

// Whether libpq refused the connection string itself, before reaching a
// server: its messages for a bad option value ("invalid integer value ...
// for connection option \"port\"", "invalid sslmode value: ...", "invalid
// port number"), an unknown option ("invalid connection option"), a
// malformed URI, or host and port lists that do not match. Retrying cannot
// help these.
bool IsConnectionStringError(const std::string& message) {
  return absl::StartsWith(message, "invalid ") ||
         absl::StartsWith(message, "missing \"=\"") ||
         absl::StartsWith(message, "unterminated quoted string") ||
         absl::StartsWith(message, "could not match ") ||
         absl::StrContains(message, "invalid connection option") ||
         absl::StrContains(message, "invalid URI");
}

// libpq's message for a refused connection string, without the value it
// quotes when that value may be a password: a URL missing its '@'
// ("postgresql://app:secret/db") puts the password where the port goes,
// and libpq then quotes it as a bad port number. The connection string is
// not repeated (it may hold the password in the same way).
std::string MaskedConnectionStringError(const std::string& message) {
  std::string out = MaskPostgresUrl(message);
  if (absl::StartsWith(out, "invalid integer value") ||
      absl::StartsWith(out, "invalid port number")) {
    const size_t open = out.find('"');
    const size_t close =
        open == std::string::npos ? open : out.find('"', open + 1);
    if (close != std::string::npos) {
      out.replace(open + 1, close - open - 1, "***");
    }
  }
  return out;
}

}  // namespace

void PgResultDeleter::operator()(pg_result* result) const { PQclear(result); }

int PgResult::rows() const { return PQntuples(result_.get()); }

int PgResult::columns() const { return PQnfields(result_.get()); }

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

bool PgResult::Bool(int row, int column) const {
  return PQgetlength(result_.get(), row, column) == 1 &&
         PQgetvalue(result_.get(), row, column)[0] != 0;
}

int64_t PgResult::AffectedRows() const {
  return std::strtoll(PQcmdTuples(result_.get()), nullptr, 10);
}

std::string_view PgResult::CommandTag() const {
  const char* tag = PQcmdStatus(result_.get());
  return tag != nullptr ? std::string_view(tag) : std::string_view();
}

PgParams& PgParams::Add(std::string_view v, bool null, int format,
                        uint32_t type) {
  values_.emplace_back(v);
  null_.push_back(null);
  formats_.push_back(format);
  types_.push_back(type);
  return *this;
}

std::vector<const char*> PgParams::ValuePointers() const {
  std::vector<const char*> values(values_.size());
  for (size_t i = 0; i < values_.size(); ++i) {
    values[i] = null_[i] ? nullptr : values_[i].data();
  }
  return values;
}

std::vector<int> PgParams::Lengths() const {
  std::vector<int> lengths(values_.size());
  for (size_t i = 0; i < values_.size(); ++i) {
    lengths[i] = static_cast<int>(values_[i].size());
  }
  return lengths;
}

PgParams& PgParams::Int64(int64_t v) {
  return Add(EncodeInt64(v), false, 1, kInt8Oid);
}

PgParams& PgParams::Bytes(std::string_view v) { return Add(v, false, 1, 0); }

PgParams& PgParams::Null() { return Add({}, true, 1, 0); }

PgParams& PgParams::Text(std::string_view v) { return Add(v, false, 0, 0); }

PgParams& PgParams::TypedBytes(uint32_t type_oid, std::string_view v) {
  return Add(v, false, 1, type_oid);
}

absl::StatusOr<std::unique_ptr<PgConnection>> PgConnection::Connect(
    const std::string& conninfo, absl::Duration connect_timeout,
    absl::Duration statement_timeout, bool read_only) {
  const std::string timeout =
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(connect_timeout)));
  // jit=off: the store's statements are short paged reads and lookups,
  // for which compiling the plan costs more than it saves; on a 10M-event
  // store the server's JIT took about 100 ms of a 140 ms filtered ReadAll
  // page (docs/benchmarks.md, "Scale").
  const std::string options = absl::StrCat(
      "-c statement_timeout=", absl::ToInt64Milliseconds(statement_timeout),
      " -c jit=off", read_only ? " -c default_transaction_read_only=on" : "");
  const char* keys[] = {"dbname", "connect_timeout", "options",
                        "fallback_application_name", nullptr};
  const char* values[] = {conninfo.c_str(), timeout.c_str(), options.c_str(),
                          "eventstore", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) {
    return absl::ResourceExhaustedError("postgres: out of memory connecting");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string error = Trimmed(PQerrorMessage(conn));
    absl::Status status =
        IsConnectionStringError(error)
            ? absl::InvalidArgumentError(
                  absl::StrCat("postgres: the connection string is not valid: ",
                               MaskedConnectionStringError(error)))
            : absl::UnavailableError(absl::StrCat(
                  "postgres: cannot connect to ", MaskPostgresUrl(conninfo),
                  ": ", MaskPostgresUrl(error)));
    PQfinish(conn);
    return status;
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(conn));
}

PgConnection::~PgConnection() { PQfinish(conn_); }

bool PgConnection::broken() const {
  return abandoned_ || PQstatus(conn_) != CONNECTION_OK;
}

bool PgConnection::InTransaction() const {
  return PQtransactionStatus(conn_) != PQTRANS_IDLE;
}

bool PgConnection::LooksAlive() {
  // An idle connection has nothing to read unless the server said
  // something: usually that it is terminating the session, followed by the
  // end of the stream. A few rounds reach that end.
  for (int round = 0; round < 3 && !broken(); ++round) {
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return true;
    if (PQconsumeInput(conn_) == 0) return false;
    PQisBusy(conn_);  // parses what arrived; an error becomes a notice
  }
  return !broken();
}

int PgConnection::socket() const { return PQsocket(conn_); }

bool PgConnection::ConsumeInput() {
  return !broken() && PQconsumeInput(conn_) != 0 && !broken();
}

std::vector<PgNotification> PgConnection::TakeNotifications() {
  std::vector<PgNotification> out;
  while (PGnotify* n = PQnotifies(conn_)) {
    out.push_back(
        PgNotification{n->relname ? n->relname : "", n->extra ? n->extra : ""});
    PQfreemem(n);
  }
  return out;
}

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

absl::Status PgConnection::Prepare(const PgStatement& stmt) {
  if (prepared_.contains(stmt.name)) return absl::OkStatus();
  PgResult prepared(PQprepare(conn_, stmt.name, stmt.sql.c_str(), 0, nullptr));
  absl::Status status = Check(prepared.result_.get(), PGRES_COMMAND_OK,
                              absl::StrCat("preparing ", stmt.name));
  if (!status.ok()) return status;
  prepared_.insert(stmt.name);
  return absl::OkStatus();
}

absl::Status PgConnection::ExecuteRows(
    const PgStatement& stmt, const PgParams& params,
    absl::FunctionRef<absl::Status(const PgResult&, int)> row) {
  absl::Status status = Prepare(stmt);
  if (!status.ok()) return status;
  const size_t n = params.values_.size();
  const std::vector<const char*> values = params.ValuePointers();
  const std::vector<int> lengths = params.Lengths();
  if (PQsendQueryPrepared(conn_, stmt.name, static_cast<int>(n), values.data(),
                          lengths.data(), params.formats_.data(),
                          /*resultFormat=*/1) == 0) {
    return Check(nullptr, PGRES_COMMAND_OK, stmt.name);
  }
  // Without single-row mode the rows come in one result, handed over the
  // same way.
  PQsetSingleRowMode(conn_);
  // The first failure (the server's, or `row`'s); the results that follow
  // it are read and dropped, until libpq says the statement is done.
  bool cancelled = false;
  while (pg_result* r = PQgetResult(conn_)) {
    PgResult result(r);
    if (!status.ok()) continue;
    const int code = PQresultStatus(r);
    if (code != PGRES_SINGLE_TUPLE && code != PGRES_TUPLES_OK) {
      status = Check(r, PGRES_TUPLES_OK, stmt.name);
      continue;
    }
    for (int i = 0; i < result.rows() && status.ok(); ++i) {
      status = row(result, i);
    }
    if (!status.ok() && !cancelled && code == PGRES_SINGLE_TUPLE) {
      // Stop the server sending the rest (a cancel that arrives after the
      // statement finished is ignored by the server).
      cancelled = true;
      if (PGcancel* cancel = PQgetCancel(conn_)) {
        char error[256];
        PQcancel(cancel, error, sizeof(error));
        PQfreeCancel(cancel);
      }
    }
  }
  if (status.ok() && broken()) {
    return Check(nullptr, PGRES_TUPLES_OK, stmt.name);
  }
  return status;
}

absl::StatusOr<PgResult> PgConnection::Execute(const PgStatement& stmt,
                                               const PgParams& params) {
  absl::Status prepared = Prepare(stmt);
  if (!prepared.ok()) return prepared;
  const size_t n = params.values_.size();
  const std::vector<const char*> values = params.ValuePointers();
  const std::vector<int> lengths = params.Lengths();
  PgResult result(PQexecPrepared(conn_, stmt.name, static_cast<int>(n),
                                 values.data(), lengths.data(),
                                 params.formats_.data(),
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

absl::StatusOr<PgResult> PgConnection::ExecParams(std::string_view sql,
                                                  const PgParams& params) {
  const std::string text(sql);
  const size_t n = params.values_.size();
  std::vector<const char*> values(n);
  std::vector<int> lengths(n);
  std::vector<unsigned int> types(n);
  for (size_t i = 0; i < n; ++i) {
    values[i] = params.null_[i] ? nullptr : params.values_[i].c_str();
    lengths[i] = static_cast<int>(params.values_[i].size());
    types[i] = params.types_[i];
  }
  PgResult result(PQexecParams(conn_, text.c_str(), static_cast<int>(n),
                               types.data(), values.data(), lengths.data(),
                               params.formats_.data(), /*resultFormat=*/0));
  const int status_code = PQresultStatus(result.result_.get());
  const int expected =
      status_code == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
  absl::Status status =
      Check(result.result_.get(), expected, text.substr(0, 80));
  if (!status.ok()) return status;
  return result;
}

absl::StatusOr<PgResult> PgConnection::ExecWithin(std::string_view sql,
                                                  const PgParams& params,
                                                  absl::Duration timeout) {
  const std::string text(sql);
  const std::string context = text.substr(0, 80);
  const size_t n = params.values_.size();
  std::vector<const char*> values(n);
  std::vector<int> lengths(n);
  std::vector<unsigned int> types(n);
  for (size_t i = 0; i < n; ++i) {
    values[i] = params.null_[i] ? nullptr : params.values_[i].c_str();
    lengths[i] = static_cast<int>(params.values_[i].size());
    types[i] = params.types_[i];
  }
  if (broken() ||
      PQsendQueryParams(conn_, text.c_str(), static_cast<int>(n), types.data(),
                        values.data(), lengths.data(), params.formats_.data(),
                        /*resultFormat=*/0) == 0) {
    return Check(nullptr, PGRES_COMMAND_OK, context);
  }
  const absl::Time deadline = absl::Now() + timeout;
  // Each result of the statement, then NULL, without ever blocking in
  // libpq: input is read only once poll() says it is there. The first error
  // is kept, else the last result.
  std::optional<absl::StatusOr<PgResult>> out;
  while (true) {
    while (PQisBusy(conn_)) {
      const int64_t left_ms = absl::ToInt64Milliseconds(
          absl::Ceil(deadline - absl::Now(), absl::Milliseconds(1)));
      pollfd p{PQsocket(conn_), POLLIN, 0};
      const int ready =
          left_ms <= 0
              ? 0
              : poll(&p, 1,
                     static_cast<int>(std::min<int64_t>(left_ms, 1 << 30)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) {
        abandoned_ = true;
        return absl::DeadlineExceededError(absl::StrCat(
            "postgres: ", context, ": no answer from the server within ",
            absl::FormatDuration(timeout), "; the connection is abandoned"));
      }
      if (PQconsumeInput(conn_) == 0) {
        return Check(nullptr, PGRES_COMMAND_OK, context);
      }
    }
    pg_result* r = PQgetResult(conn_);
    if (r == nullptr) break;
    PgResult result(r);
    if (out.has_value() && !out->ok()) continue;
    const int status_code = PQresultStatus(r);
    const int expected =
        status_code == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
    absl::Status status = Check(r, expected, context);
    if (status.ok()) {
      out = std::move(result);
    } else {
      out = status;
    }
  }
  if (!out.has_value()) {
    return absl::InternalError(
        absl::StrCat("postgres: ", context, ": the server sent no result"));
  }
  return *std::move(out);
}

}  // namespace eventstore::postgres
