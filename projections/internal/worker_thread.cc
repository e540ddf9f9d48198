#include "projections/internal/worker_thread.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace eventstore::internal {

WorkerThread::~WorkerThread() { Stop(); }

absl::Status WorkerThread::Start(std::function<void()> body) {
  std::lock_guard<std::mutex> control(control_mu_);
  if (thread_.joinable()) {
    return absl::FailedPreconditionError("already started");
  }
  {
    MutexLock lock(&mu_);
    running_ = true;
    stop_ = false;
  }
  thread_ = std::thread([this, body = std::move(body)] {
    {
      MutexLock lock(&mu_);
      worker_id_ = std::this_thread::get_id();
    }
    body();
  });
  return absl::OkStatus();
}

void WorkerThread::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    // From the body itself: it sees stopping() and returns; whoever calls
    // Stop() next (or the destructor) joins it.
    if (running_ && worker_id_ == std::this_thread::get_id()) return;
  }
  wake_.notify_all();
  std::lock_guard<std::mutex> control(control_mu_);
  if (thread_.joinable()) thread_.join();
  MutexLock lock(&mu_);
  running_ = false;
  stop_ = false;
  worker_id_ = std::thread::id();
}

bool WorkerThread::running() const {
  MutexLock lock(&mu_);
  return running_;
}

bool WorkerThread::stopping() const {
  MutexLock lock(&mu_);
  return stop_;
}

bool WorkerThread::WaitFor(absl::Duration duration) {
  std::unique_lock<Mutex> lock(mu_);
  if (duration <= absl::ZeroDuration()) return !stop_;
  return !wake_.wait_for(lock, absl::ToChronoNanoseconds(duration),
                         [this]()
                             ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_; });
}

}  // namespace eventstore::internal
