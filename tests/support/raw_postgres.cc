#include "tests/support/raw_postgres.h"

#include <libpq-fe.h>

#include <mutex>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace eventstore::test {

absl::StatusOr<std::unique_ptr<RawPostgres>> RawPostgres::Connect(
    const std::string& url) {
  const char* keys[] = {"dbname", "application_name", "connect_timeout",
                        nullptr};
  const char* values[] = {url.c_str(), "eventstore-test", "10", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (PQstatus(conn) != CONNECTION_OK) {
    absl::Status status = absl::UnavailableError(
        absl::StrCat("raw connect: ", PQerrorMessage(conn)));
    PQfinish(conn);
    return status;
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<RawPostgres>(new RawPostgres(conn));
}

RawPostgres::~RawPostgres() { PQfinish(conn_); }

absl::Status RawPostgres::Exec(std::string_view sql) {
  return Query(sql).status();
}

absl::StatusOr<std::vector<std::vector<std::string>>> RawPostgres::Query(
    std::string_view sql) {
  const std::string text(sql);
  PGresult* r = PQexec(conn_, text.c_str());
  const ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    absl::Status status = absl::InternalError(absl::StrCat(
        "raw query '", text.substr(0, 120), "': ", PQresultErrorMessage(r)));
    PQclear(r);
    return status;
  }
  std::vector<std::vector<std::string>> rows(PQntuples(r));
  for (int i = 0; i < PQntuples(r); ++i) {
    for (int j = 0; j < PQnfields(r); ++j) {
      rows[i].emplace_back(PQgetvalue(r, i, j), PQgetlength(r, i, j));
    }
  }
  PQclear(r);
  return rows;
}

std::string UniqueSchemaName() {
  static absl::BitGen* gen = new absl::BitGen();
  static std::mutex* mu = new std::mutex();
  std::lock_guard<std::mutex> lock(*mu);
  return absl::StrCat(
      "t_", absl::Hex(absl::Uniform<uint64_t>(*gen), absl::kZeroPad16));
}

}  // namespace eventstore::test
