// PgConnection: an RAII libpq connection that runs prepared statements with
// binary parameters and results. PgResult frees its PGresult.
//
// Internal to the PostgreSQL backend; libpq-fe.h stays out of public
// headers. A connection is used by one thread at a time (the pool lends it).

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_CONNECTION_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct pg_conn;
struct pg_result;

namespace eventstore::postgres {

struct PgResultDeleter {
  void operator()(pg_result* result) const;
};

// A query result; rows and columns are 0-based.
class PgResult {
 public:
  explicit PgResult(pg_result* result) : result_(result) {}
  int rows() const;
  bool IsNull(int row, int column) const;
  std::string_view Bytes(int row, int column) const;
  // A binary int8 or xid8 column.
  int64_t Int64(int row, int column) const;
  uint64_t Uint64(int row, int column) const;
  // A binary timestamptz column.
  absl::Time Timestamp(int row, int column) const;

 private:
  friend class PgConnection;
  std::unique_ptr<pg_result, PgResultDeleter> result_;
};

// A statement prepared once per connection under `name`.
struct PgStatement {
  const char* name;
  std::string sql;
};

// Binary parameters of one statement call. Values are copied.
class PgParams {
 public:
  PgParams& Int64(int64_t v);
  PgParams& Bytes(std::string_view v);  // text, bytea, uuid, arrays
  PgParams& Null();

 private:
  friend class PgConnection;
  std::vector<std::string> values_;
  std::vector<bool> null_;
};

class PgConnection {
 public:
  // Connects with libpq; kUnavailable (with the URL's password masked) when
  // the server cannot be reached.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      const std::string& conninfo, absl::Duration connect_timeout,
      absl::Duration statement_timeout);

  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  // Runs `stmt` (preparing it on first use) with binary results.
  absl::StatusOr<PgResult> Execute(const PgStatement& stmt,
                                   const PgParams& params);
  // Runs SQL text with no parameters (DDL, BEGIN/COMMIT); text results.
  absl::StatusOr<PgResult> Exec(std::string_view sql);

  // True once the connection is unusable (lost, or the server went away).
  bool broken() const;
  // SQLSTATE and constraint name of the last failed call, if any.
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  const std::string& last_constraint() const { return last_constraint_; }

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  absl::Status Check(pg_result* result, int expected_status,
                     std::string_view context);

  pg_conn* conn_;
  absl::flat_hash_set<std::string> prepared_;
  std::string last_sqlstate_;
  std::string last_constraint_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_CONNECTION_H_
