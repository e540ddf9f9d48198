#include "backends/postgres/pg_pool.h"

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace eventstore::postgres {

namespace {

constexpr char kComponent[] = "postgres_pool";

}  // namespace

PgPool::PgPool(std::string conninfo, int size, absl::Duration connect_timeout,
               absl::Duration statement_timeout, bool read_only,
               PgPoolReporting reporting)
    : conninfo_(std::move(conninfo)),
      size_(size),
      connect_timeout_(connect_timeout),
      statement_timeout_(statement_timeout),
      read_only_(read_only),
      reporting_(std::move(reporting)),
      metrics_(reporting_.instrumentation.get()),
      log_(reporting_.log_sink.get()) {}

PgPool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Release(std::move(conn_));
}

void PgPool::ReportConnections() {
  if (metrics_ == nullptr) return;
  const int64_t in_use = lent_;
  const int64_t idle = static_cast<int64_t>(idle_.size());
  if (in_use == reported_in_use_ && idle == reported_idle_) return;
  reported_in_use_ = in_use;
  reported_idle_ = idle;
  metrics_->OnPoolConnections(reporting_.backend_label, in_use, idle);
}

void PgPool::DropLost(std::unique_ptr<PgConnection> lost,
                      std::vector<std::unique_ptr<PgConnection>>& closing) {
  const int closed = 1 + static_cast<int>(idle_.size());
  open_ -= closed;
  lost_ += closed;
  closing = std::move(idle_);
  idle_.clear();
  closing.push_back(std::move(lost));
}

void PgPool::Log(std::string_view message) const {
  log_->Log(LogLevel::kWarning, kComponent, message);
}

absl::StatusOr<PgPool::Lease> PgPool::Acquire() {
  std::vector<std::unique_ptr<PgConnection>> closing;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + absl::ToChronoMilliseconds(connect_timeout_);
    const bool waits = idle_.empty() && open_ >= size_;
    while (idle_.empty() && open_ >= size_) {
      if (returned_.wait_until(lock, deadline) == std::cv_status::timeout &&
          idle_.empty() && open_ >= size_) {
        if (metrics_ != nullptr) {
          metrics_->OnPoolWait(
              reporting_.backend_label,
              absl::FromChrono(std::chrono::steady_clock::now() - start));
        }
        return absl::UnavailableError(absl::StrCat(
            "postgres: all ", size_, " pooled connections stayed busy for ",
            absl::FormatDuration(connect_timeout_),
            "; raise pool_size or connect_timeout"));
      }
    }
    if (waits && metrics_ != nullptr) {
      metrics_->OnPoolWait(
          reporting_.backend_label,
          absl::FromChrono(std::chrono::steady_clock::now() - start));
    }
    if (!idle_.empty()) {
      std::unique_ptr<PgConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->LooksAlive()) {
        ++lent_;
        ReportConnections();
        return Lease(this, std::move(conn));
      }
      // The server closed it while it was idle (a terminated session, a
      // restart): the other idle ones are as dead. Close them all, outside
      // the lock, and connect afresh in the freed slot.
      DropLost(std::move(conn), closing);
      ReportConnections();
    }
    ++open_;  // reserve the slot, then connect without holding the lock
  }
  if (!closing.empty() && log_ != nullptr) {
    Log(
        absl::StrCat("an idle connection was lost (the server closed it); "
                     "closed it and ",
                     closing.size() - 1,
                     " other idle connection(s); new ones replace them"));
  }
  closing.clear();
  absl::StatusOr<std::unique_ptr<PgConnection>> conn = PgConnection::Connect(
      conninfo_, connect_timeout_, statement_timeout_, read_only_);
  if (!conn.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
    }
    returned_.notify_one();
    // The status names the server with its password masked.
    if (log_ != nullptr) {
      Log(absl::StrCat("cannot connect: ", conn.status().message()));
    }
    return conn.status();
  }
  bool reconnected = false;
  int still_lost = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++lent_;
    if (lost_ > 0) {
      --lost_;
      reconnected = true;
      still_lost = lost_;
    }
    ReportConnections();
  }
  if (reconnected) {
    if (metrics_ != nullptr) metrics_->OnReconnect(reporting_.backend_label);
    if (log_ != nullptr) {
      Log(absl::StrCat("reconnected: a new connection replaces a lost one (",
                       still_lost, " lost one(s) not replaced yet)"));
    }
  }
  return Lease(this, *std::move(conn));
}

void PgPool::Release(std::unique_ptr<PgConnection> conn) {
  std::vector<std::unique_ptr<PgConnection>> closing;
  bool lost = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --lent_;
    if (conn->broken()) {
      // A lost connection usually means a restarted or unreachable server:
      // the idle ones are as dead, so close them all and reconnect lazily.
      DropLost(std::move(conn), closing);
      lost = true;
    } else if (conn->InTransaction()) {
      // Left inside a transaction (a rollback that failed): never lend it.
      --open_;
      closing.push_back(std::move(conn));
    } else {
      idle_.push_back(std::move(conn));
    }
    ReportConnections();
  }
  returned_.notify_all();
  if (lost && log_ != nullptr) {
    Log(absl::StrCat("a connection was lost; closed it and ",
                     closing.size() - 1,
                     " idle connection(s); new ones replace them"));
  }
  // `closing` is destroyed here, outside the lock.
}

}  // namespace eventstore::postgres
