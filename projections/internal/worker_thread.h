// WorkerThread: the background thread of a ProjectionRunner or an
// OutboxPublisher, with waits that Stop() cuts short.
//
//   WorkerThread worker;
//   ES_RETURN_IF_ERROR(worker.Start([&] {
//     while (!worker.stopping()) {
//       DoSomeWork();
//       worker.WaitFor(absl::Seconds(1));  // returns early on Stop()
//     }
//   }));
//   ...
//   worker.Stop();  // wakes the loop, joins the thread
//
// Private to the projections library (not installed).

#ifndef EVENTSTORE_PROJECTIONS_INTERNAL_WORKER_THREAD_H_
#define EVENTSTORE_PROJECTIONS_INTERNAL_WORKER_THREAD_H_

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "eventstore/internal/mutex.h"

namespace eventstore::internal {

// Thread-safe: every member may be called from any thread, except that
// Stop() called from the worker thread itself only asks it to stop (it
// cannot join itself).
class WorkerThread {
 public:
  WorkerThread() = default;
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;
  // Stops and joins the thread.
  ~WorkerThread();

  // Runs `body` on a new thread. kFailedPrecondition when a thread started
  // earlier has not been stopped (even if its body has returned).
  absl::Status Start(std::function<void()> body);

  // Makes stopping() true, wakes WaitFor, and joins the thread. Returns when
  // the body has returned. Does nothing when not started.
  void Stop();

  // True between Start() and Stop().
  bool running() const;

  // True once Stop() has been called, until the thread has been joined.
  bool stopping() const;

  // Waits for `duration`, or less when Stop() is called: false when the
  // wait was cut short (or stopping() was already true). Outside the worker
  // thread (when not started), simply waits.
  bool WaitFor(absl::Duration duration);

 private:
  // Serialises Start and Stop (held while joining; never taken by the
  // worker thread).
  std::mutex control_mu_;
  std::thread thread_;  // Guarded by control_mu_.

  mutable Mutex mu_;
  std::condition_variable_any wake_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // The worker thread's id once it runs.
  std::thread::id worker_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace eventstore::internal

#endif  // EVENTSTORE_PROJECTIONS_INTERNAL_WORKER_THREAD_H_
