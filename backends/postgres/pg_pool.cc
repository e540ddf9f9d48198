#include "backends/postgres/pg_pool.h"

#include <chrono>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace eventstore::postgres {

PgPool::PgPool(std::string conninfo, int size, absl::Duration connect_timeout,
               absl::Duration statement_timeout, bool read_only)
    : conninfo_(std::move(conninfo)),
      size_(size),
      connect_timeout_(connect_timeout),
      statement_timeout_(statement_timeout),
      read_only_(read_only) {}

PgPool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Release(std::move(conn_));
}

absl::StatusOr<PgPool::Lease> PgPool::Acquire() {
  std::vector<std::unique_ptr<PgConnection>> closing;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() +
                          absl::ToChronoMilliseconds(connect_timeout_);
    while (idle_.empty() && open_ >= size_) {
      if (returned_.wait_until(lock, deadline) == std::cv_status::timeout &&
          idle_.empty() && open_ >= size_) {
        return absl::UnavailableError(absl::StrCat(
            "postgres: all ", size_, " pooled connections stayed busy for ",
            absl::FormatDuration(connect_timeout_),
            "; raise pool_size or connect_timeout"));
      }
    }
    if (!idle_.empty()) {
      std::unique_ptr<PgConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->LooksAlive()) return Lease(this, std::move(conn));
      // The server closed it while it was idle (a terminated session, a
      // restart): the other idle ones are as dead. Close them all, outside
      // the lock, and connect afresh in the freed slot.
      open_ -= 1 + static_cast<int>(idle_.size());
      closing = std::move(idle_);
      idle_.clear();
      closing.push_back(std::move(conn));
    }
    ++open_;  // reserve the slot, then connect without holding the lock
  }
  closing.clear();
  absl::StatusOr<std::unique_ptr<PgConnection>> conn = PgConnection::Connect(
      conninfo_, connect_timeout_, statement_timeout_, read_only_);
  if (!conn.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    returned_.notify_one();
    return conn.status();
  }
  return Lease(this, *std::move(conn));
}

void PgPool::Release(std::unique_ptr<PgConnection> conn) {
  std::vector<std::unique_ptr<PgConnection>> closing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (conn->broken()) {
      // A lost connection usually means a restarted or unreachable server:
      // the idle ones are as dead, so close them all and reconnect lazily.
      open_ -= 1 + static_cast<int>(idle_.size());
      closing = std::move(idle_);
      idle_.clear();
      closing.push_back(std::move(conn));
    } else if (conn->InTransaction()) {
      // Left inside a transaction (a rollback that failed): never lend it.
      --open_;
      closing.push_back(std::move(conn));
    } else {
      idle_.push_back(std::move(conn));
    }
  }
  returned_.notify_all();
  // `closing` is destroyed here, outside the lock.
}

}  // namespace eventstore::postgres
