#include "backends/postgres/pg_event_waiter.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace eventstore::postgres {
namespace {

// A listener unread for longer is replaced rather than drained.
constexpr absl::Duration kListenerIdleLimit = absl::Seconds(30);
// Between attempts to connect the listener.
constexpr absl::Duration kReconnectInterval = absl::Seconds(1);

int MillisUntil(absl::Time until) {
  const absl::Duration left =
      absl::Ceil(until - absl::Now(), absl::Milliseconds(1));
  return static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(left), 0, 1 << 30));
}

}  // namespace

PgEventWaiter::PgEventWaiter(PgDatabase* db) : db_(db) {
  if (pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
    // Without the pipe the poller notices this store's appends only at its
    // next check of the head: slower, still correct.
    pipe_[0] = pipe_[1] = -1;
  }
}

PgEventWaiter::~PgEventWaiter() {
  if (pipe_[0] >= 0) close(pipe_[0]);
  if (pipe_[1] >= 0) close(pipe_[1]);
}

void PgEventWaiter::Notify() {
  if (waiters_.load() == 0) return;
  {
    internal::MutexLock lock(&mu_);
    ++generation_;
  }
  woken_.notify_all();
  if (pipe_[1] >= 0) {
    const char byte = 1;
    const ssize_t written = write(pipe_[1], &byte, 1);
    (void)written;  // a full pipe wakes the poller as well
  }
}

absl::StatusOr<bool> PgEventWaiter::Wait(
    Position after, absl::Duration timeout,
    const std::function<absl::StatusOr<Position>()>& head) {
  const absl::Time deadline = absl::Now() + timeout;
  waiters_.fetch_add(1);
  struct Leave {
    std::atomic<int>& waiters;
    ~Leave() { waiters.fetch_sub(1); }
  } leave{waiters_};
  while (true) {
    uint64_t seen;
    {
      internal::MutexLock lock(&mu_);
      seen = generation_;
    }
    absl::StatusOr<Position> current = head();
    if (!current.ok()) return current.status();
    if (*current > after) return true;
    const absl::Time now = absl::Now();
    if (now >= deadline) return false;
    WaitForWakeUp(seen, std::min(deadline, now + kRecheckInterval));
  }
}

void PgEventWaiter::WaitForWakeUp(uint64_t seen, absl::Time until) {
  std::unique_lock<internal::Mutex> lock(mu_);
  while (generation_ == seen && absl::Now() < until) {
    if (polling_) {
      woken_.wait_until(lock, absl::ToChronoTime(until));
      continue;
    }
    polling_ = true;
    lock.unlock();
    const bool woke = Poll(until);
    lock.lock();
    polling_ = false;
    if (woke) ++generation_;
    // Woken waiters re-check; the others may take over polling.
    woken_.notify_all();
  }
}

bool PgEventWaiter::Poll(absl::Time until) {
  EnsureListening();
  // Whatever the listener received up to the return has been read.
  struct MarkRead {
    PgEventWaiter* waiter;
    ~MarkRead() {
      if (waiter->listener_ != nullptr) waiter->last_read_ = absl::Now();
    }
  } mark_read{this};
  const std::string& schema = db_->schema();
  while (true) {
    pollfd fds[2];
    int n = 0;
    int pipe_index = -1;
    int listener_index = -1;
    if (pipe_[0] >= 0) {
      pipe_index = n;
      fds[n++] = pollfd{pipe_[0], POLLIN, 0};
    }
    if (listener_ != nullptr) {
      listener_index = n;
      fds[n++] = pollfd{listener_->socket(), POLLIN, 0};
    }
    const int ms = MillisUntil(until);
    if (ms == 0) return false;
    const int ready = poll(fds, n, ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    bool woke = false;
    if (pipe_index >= 0 && fds[pipe_index].revents != 0) {
      char buffer[64];
      while (read(pipe_[0], buffer, sizeof(buffer)) > 0) {
      }
      woke = true;
    }
    if (listener_index >= 0 && fds[listener_index].revents != 0) {
      if (!listener_->ConsumeInput()) {
        listener_.reset();  // lost: the head checks go on, reconnect later
      } else {
        for (const PgNotification& note : listener_->TakeNotifications()) {
          woke = woke || (note.channel == kChannel && note.payload == schema);
        }
      }
    }
    if (woke) return true;
  }
}

void PgEventWaiter::EnsureListening() {
  const absl::Time now = absl::Now();
  if (listener_ != nullptr &&
      (listener_->broken() || now - last_read_ > kListenerIdleLimit)) {
    listener_.reset();
  }
  if (listener_ != nullptr || now < next_connect_) return;
  next_connect_ = now + kReconnectInterval;
  absl::StatusOr<std::unique_ptr<PgConnection>> conn = db_->ConnectDedicated();
  if (!conn.ok()) return;
  if (!(*conn)->Exec(absl::StrCat("LISTEN ", kChannel)).ok()) return;
  listener_ = *std::move(conn);
  last_read_ = now;
}

}  // namespace eventstore::postgres
