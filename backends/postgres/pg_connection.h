// PgConnection: an RAII libpq connection that runs prepared statements with
// binary parameters and results. PgResult frees its PGresult.
//
// Internal to the PostgreSQL backend; libpq-fe.h stays out of public
// headers. A connection is used by one thread at a time (the pool lends it).
// Besides prepared statements it runs ad-hoc SQL with parameters (for
// SqlTransaction), SQL text under a deadline (for leases), and receives
// LISTEN notifications (for WaitForEvents).

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_CONNECTION_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
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
  int columns() const;
  bool IsNull(int row, int column) const;
  std::string_view Bytes(int row, int column) const;
  // A binary int8 or xid8 column.
  int64_t Int64(int row, int column) const;
  uint64_t Uint64(int row, int column) const;
  // A binary timestamptz column; InfinitePast when NULL.
  absl::Time Timestamp(int row, int column) const;
  // A binary bool column.
  bool Bool(int row, int column) const;
  // Rows affected by an INSERT, UPDATE or DELETE (PQcmdTuples).
  int64_t AffectedRows() const;
  // The command tag, e.g. "COMMIT" or "ROLLBACK".
  std::string_view CommandTag() const;

 private:
  friend class PgConnection;
  std::unique_ptr<pg_result, PgResultDeleter> result_;
};

// A statement prepared once per connection under `name`.
struct PgStatement {
  const char* name;
  std::string sql;
};

// Parameters of one statement call. Values are copied. Binary unless added
// with Text(); their types come from the statement ($1::bigint), except
// with ExecParams, which passes the OIDs given here (0: inferred).
class PgParams {
 public:
  PgParams& Int64(int64_t v);
  PgParams& Bytes(std::string_view v);  // text, bytea, uuid, arrays
  PgParams& Null();
  // Text format, for ExecParams: the server parses it as the type it
  // infers for the parameter.
  PgParams& Text(std::string_view v);
  // Binary with a type OID, for ExecParams (e.g. kByteaOid).
  PgParams& TypedBytes(uint32_t type_oid, std::string_view v);

  size_t size() const { return values_.size(); }

 private:
  friend class PgConnection;
  PgParams& Add(std::string_view v, bool null, int format, uint32_t type);
  // The values and lengths as libpq takes them (a null value is nullptr).
  std::vector<const char*> ValuePointers() const;
  std::vector<int> Lengths() const;

  std::vector<std::string> values_;
  std::vector<bool> null_;
  std::vector<int> formats_;
  std::vector<uint32_t> types_;
};

// A notification received on a LISTENing connection.
struct PgNotification {
  std::string channel;
  std::string payload;
};

class PgConnection {
 public:
  // Connects with libpq; kUnavailable (with the URL's password masked) when
  // the server cannot be reached, kInvalidArgument when libpq refuses the
  // connection string itself (a bad port, sslmode or option name). With
  // `read_only`, every transaction of the connection is read-only
  // (default_transaction_read_only), so a write fails with
  // kFailedPrecondition.
  static absl::StatusOr<std::unique_ptr<PgConnection>> Connect(
      const std::string& conninfo, absl::Duration connect_timeout,
      absl::Duration statement_timeout, bool read_only = false);

  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  // Runs `stmt` (preparing it on first use) with binary results.
  absl::StatusOr<PgResult> Execute(const PgStatement& stmt,
                                   const PgParams& params);
  // Runs `stmt` as Execute does, but in libpq's single-row mode: `row(r, i)`
  // is called for each row as it arrives (row i of result r), so that the
  // rows never have to fit in memory together. When `row` fails, the
  // statement is cancelled (PQcancel) and the rest of its output discarded,
  // and that status is returned; the connection is then ready for the next
  // command (its transaction, if one is open, aborted). Time spent in `row`
  // counts toward the statement's statement_timeout.
  absl::Status ExecuteRows(
      const PgStatement& stmt, const PgParams& params,
      absl::FunctionRef<absl::Status(const PgResult&, int)> row);
  // Runs SQL text with no parameters (DDL, BEGIN/COMMIT); text results.
  absl::StatusOr<PgResult> Exec(std::string_view sql);
  // Runs one statement of SQL text with $1..$N `params`, unprepared; text
  // results.
  absl::StatusOr<PgResult> ExecParams(std::string_view sql,
                                      const PgParams& params);
  // ExecParams, but waits for the server at most `timeout`; past it, the
  // connection is abandoned (broken() turns true) and the call is
  // kDeadlineExceeded. For calls that must not hang on a network that
  // stopped answering (leases, rollbacks in destructors).
  absl::StatusOr<PgResult> ExecWithin(std::string_view sql,
                                      const PgParams& params,
                                      absl::Duration timeout);

  // True once the connection is unusable (lost, or the server went away).
  bool broken() const;
  // True while a transaction is open on it (or its state is unknown).
  bool InTransaction() const;
  // Reads what the server sent while the connection was idle, without
  // waiting: false when that shows it was closed (a terminated session, a
  // restarted server) or broken() already holds.
  bool LooksAlive();

  // For a LISTENing connection: the socket to poll for input, reading that
  // input (false when the connection is lost), and the notifications it
  // brought.
  int socket() const;
  bool ConsumeInput();
  std::vector<PgNotification> TakeNotifications();
  // SQLSTATE and constraint name of the last failed call, if any.
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  const std::string& last_constraint() const { return last_constraint_; }

 private:
  explicit PgConnection(pg_conn* conn) : conn_(conn) {}
  // Prepares `stmt` on this connection unless it was already.
  absl::Status Prepare(const PgStatement& stmt);
  absl::Status Check(pg_result* result, int expected_status,
                     std::string_view context);

  pg_conn* conn_;
  // Set when a call was abandoned mid-way (ExecWithin's deadline).
  bool abandoned_ = false;
  absl::flat_hash_set<std::string> prepared_;
  std::string last_sqlstate_;
  std::string last_constraint_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_CONNECTION_H_
