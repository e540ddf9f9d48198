// SecondThread: a thread that runs one job beside its caller, so that the
// encryption of a large batch (or the decryption of a large page) uses two
// cores. Started on first use, joined when destroyed. One job at a time:
// a caller that finds it busy runs both halves itself rather than wait.

#ifndef EVENTSTORE_CRYPTO_SECOND_THREAD_H_
#define EVENTSTORE_CRYPTO_SECOND_THREAD_H_

#include <condition_variable>
#include <thread>

#include "absl/functional/function_ref.h"
#include "eventstore/internal/mutex.h"

namespace eventstore::crypto::internal {

class SecondThread {
 public:
  SecondThread() = default;
  SecondThread(const SecondThread&) = delete;
  SecondThread& operator=(const SecondThread&) = delete;
  ~SecondThread();

  // Runs `here` on the calling thread and `there` on the second thread (or
  // after `here`, on the calling thread, when the second thread is busy);
  // returns once both ran.
  void RunBoth(absl::FunctionRef<void()> here, absl::FunctionRef<void()> there);

 private:
  void Loop();

  eventstore::internal::Mutex mu_;
  std::condition_variable_any changed_;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
  // The job the second thread is to run or runs; null when idle.
  const absl::FunctionRef<void()>* job_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace eventstore::crypto::internal

#endif  // EVENTSTORE_CRYPTO_SECOND_THREAD_H_
