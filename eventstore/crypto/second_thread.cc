#include "eventstore/crypto/second_thread.h"

#include <mutex>

namespace eventstore::crypto::internal {

SecondThread::~SecondThread() {
  std::thread thread;
  {
    eventstore::internal::MutexLock lock(&mu_);
    stop_ = true;
    thread = std::move(thread_);
  }
  changed_.notify_all();
  if (thread.joinable()) thread.join();
}

void SecondThread::RunBoth(absl::FunctionRef<void()> here,
                           absl::FunctionRef<void()> there) {
  bool handed = false;
  {
    eventstore::internal::MutexLock lock(&mu_);
    if (job_ == nullptr && !stop_) {
      if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
      job_ = &there;
      done_ = false;
      handed = true;
    }
  }
  if (!handed) {
    here();
    there();
    return;
  }
  changed_.notify_all();
  here();
  std::unique_lock<eventstore::internal::Mutex> lock(mu_);
  changed_.wait(lock, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done_; });
  job_ = nullptr;
  done_ = false;
}

void SecondThread::Loop() {
  std::unique_lock<eventstore::internal::Mutex> lock(mu_);
  for (;;) {
    changed_.wait(lock, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return stop_ || (job_ != nullptr && !done_);
    });
    if (job_ == nullptr || done_) return;  // stopping, and nothing to run
    const absl::FunctionRef<void()>* job = job_;
    lock.unlock();
    (*job)();
    lock.lock();
    done_ = true;
    changed_.notify_all();
  }
}

}  // namespace eventstore::crypto::internal
