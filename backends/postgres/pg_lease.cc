#include "backends/postgres/pg_lease.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/status_macros.h"

namespace eventstore::postgres {
namespace {

constexpr char kTryLockSql[] =
    "SELECT pg_try_advisory_lock(hashtextextended($1::text, 0))";
constexpr char kUnlockSql[] =
    "SELECT pg_advisory_unlock(hashtextextended($1::text, 0))";
constexpr char kPingSql[] = "SELECT 1";

// How often Valid() asks the server.
constexpr absl::Duration kCheckInterval = absl::Milliseconds(500);

}  // namespace

absl::StatusOr<std::unique_ptr<Lease>> PgLease::TryAcquire(
    const PgDatabase& db, std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("lease name: empty");
  std::string key = KeyText(db.schema(), name);
  const absl::Duration timeout = db.options().connect_timeout;
  ES_ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> conn,
                      db.ConnectDedicated());
  PgParams params;
  params.Text(key);
  ES_ASSIGN_OR_RETURN(PgResult r,
                      conn->ExecWithin(kTryLockSql, params, timeout));
  if (r.rows() != 1 || r.Bytes(0, 0) != "t") return nullptr;
  return std::unique_ptr<Lease>(
      new PgLease(std::move(conn), std::move(key), timeout));
}

std::string PgLease::KeyText(std::string_view schema, std::string_view name) {
  // The schema cannot contain ':', so (schema, name) pairs never collide.
  return absl::StrCat("eventstore lease ", std::string(schema), ":",
                      std::string(name));
}

PgLease::~PgLease() {
  internal::MutexLock lock(&mu_);
  if (conn_ == nullptr || conn_->broken()) return;
  PgParams params;
  params.Text(key_);
  conn_->ExecWithin(kUnlockSql, params, timeout_).status().IgnoreError();
  // conn_'s destructor closes the session, which would free the lock too.
}

bool PgLease::Valid() {
  internal::MutexLock lock(&mu_);
  if (!valid_) return false;
  // Without a round trip: whether the server has closed the session.
  bool alive = conn_->LooksAlive();
  const absl::Time now = absl::Now();
  if (alive && now - last_check_ >= kCheckInterval) {
    last_check_ = now;
    alive = conn_->ExecWithin(kPingSql, PgParams(), timeout_).ok();
  }
  if (!alive) {
    // Lost: the server frees the lock when it notices the session is gone.
    valid_ = false;
    conn_.reset();
  }
  return valid_;
}

}  // namespace eventstore::postgres
