#include "backends/postgres/pg_sql_transaction.h"

#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/postgres/pg_binary.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {
namespace {

// A double in text that float8 reads back exactly.
std::string DoubleText(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", v);
  return buffer;
}

absl::StatusOr<PgParams> ToParams(absl::Span<const SqlValue> values) {
  PgParams params;
  for (size_t i = 0; i < values.size(); ++i) {
    const SqlValue& v = values[i];
    switch (v.kind()) {
      case SqlValue::Kind::kNull:
        params.Null();
        break;
      case SqlValue::Kind::kInt:
        params.Text(absl::StrCat(v.int_value()));
        break;
      case SqlValue::Kind::kDouble:
        params.Text(DoubleText(v.double_value()));
        break;
      case SqlValue::Kind::kText:
        if (v.bytes().find('\0') != std::string::npos) {
          return absl::InvalidArgumentError(
              absl::StrCat("parameter $", i + 1,
                           ": PostgreSQL text cannot hold a NUL byte; use "
                           "SqlValue::Blob"));
        }
        params.Text(v.bytes());
        break;
      case SqlValue::Kind::kBlob:
        params.TypedBytes(kByteaOid, v.bytes());
        break;
    }
  }
  return params;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqlTransaction>> PgSqlTransaction::Begin(
    PgDatabase* db) {
  // A pooled connection that the server closed while idle is replaced by
  // Acquire; one lost between here and BEGIN is retried once, as nothing
  // has happened yet.
  for (int attempt = 0;; ++attempt) {
    ES_ASSIGN_OR_RETURN(PgPool::Lease conn, db->Acquire());
    absl::StatusOr<PgResult> begun = conn->Exec(absl::StrCat(
        "BEGIN; SET LOCAL search_path TO ", db->quoted_schema(), ", public"));
    if (begun.ok()) {
      return std::unique_ptr<SqlTransaction>(
          new PgSqlTransaction(db, std::move(conn)));
    }
    if (!conn->broken() || attempt == 1) {
      if (!conn->broken()) conn->Exec("ROLLBACK").status().IgnoreError();
      return begun.status();
    }
  }
}

PgSqlTransaction::~PgSqlTransaction() {
  if (state_ == State::kEnded || conn_->broken()) return;
  conn_->ExecWithin("ROLLBACK", PgParams(), db_->options().connect_timeout)
      .status()
      .IgnoreError();
}

void PgSqlTransaction::Failed(const absl::Status& status) {
  if (state_ == State::kOpen) {
    state_ = State::kFailed;
    failure_ = std::string(status.message());
  }
}

absl::Status PgSqlTransaction::CheckOpen() const {
  switch (state_) {
    case State::kOpen:
      return absl::OkStatus();
    case State::kFailed:
      return absl::AbortedError(absl::StrCat(
          "postgres: an earlier statement of this transaction failed (",
          failure_, "); it can only roll back"));
    case State::kEnded:
      break;
  }
  return absl::FailedPreconditionError(
      "postgres: the transaction has already ended");
}

absl::StatusOr<PgResult> PgSqlTransaction::Run(
    std::string_view sql, absl::Span<const SqlValue> params) {
  ES_RETURN_IF_ERROR(CheckOpen());
  ES_ASSIGN_OR_RETURN(PgParams pg_params, ToParams(params));
  absl::StatusOr<PgResult> result = conn_->ExecParams(sql, pg_params);
  if (!result.ok()) Failed(result.status());
  return result;
}

absl::Status PgSqlTransaction::Execute(std::string_view sql,
                                       absl::Span<const SqlValue> params) {
  return Run(sql, params).status();
}

absl::StatusOr<SqlRows> PgSqlTransaction::Query(
    std::string_view sql, absl::Span<const SqlValue> params) {
  ES_ASSIGN_OR_RETURN(PgResult result, Run(sql, params));
  SqlRows rows(result.rows());
  for (int row = 0; row < result.rows(); ++row) {
    SqlRow& out = rows[row];
    out.reserve(result.columns());
    for (int column = 0; column < result.columns(); ++column) {
      if (result.IsNull(row, column)) {
        out.emplace_back(std::nullopt);
      } else {
        out.emplace_back(std::string(result.Bytes(row, column)));
      }
    }
  }
  return rows;
}

absl::Status PgSqlTransaction::Commit() {
  absl::Status open = CheckOpen();
  if (!open.ok()) {
    if (state_ == State::kFailed) {
      state_ = State::kEnded;
      if (!conn_->broken()) {
        conn_
            ->ExecWithin("ROLLBACK", PgParams(), db_->options().connect_timeout)
            .status()
            .IgnoreError();
      }
    }
    return open;
  }
  state_ = State::kEnded;
  absl::StatusOr<PgResult> committed = conn_->Exec("COMMIT");
  if (!committed.ok()) {
    if (conn_->broken()) {
      return absl::UnavailableError(
          absl::StrCat(committed.status().message(),
                       "; whether the transaction committed is unknown"));
    }
    return committed.status();
  }
  if (committed->CommandTag() == "ROLLBACK") {
    return absl::AbortedError("postgres: the transaction was rolled back");
  }
  return absl::OkStatus();
}

absl::StatusOr<PgResult> PgSqlTransaction::ExecutePrepared(
    const PgDatabase* db, const PgStatement& stmt, const PgParams& params) {
  if (db != db_) {
    return absl::InvalidArgumentError(
        "postgres: the transaction belongs to another store");
  }
  ES_RETURN_IF_ERROR(CheckOpen());
  absl::StatusOr<PgResult> result = conn_->Execute(stmt, params);
  if (!result.ok()) Failed(result.status());
  return result;
}

}  // namespace eventstore::postgres
