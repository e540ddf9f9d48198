// PgEventWaiter: EventStore::WaitForEvents for the PostgreSQL store.
//
// Internal to the PostgreSQL backend. A waiter checks the head of the log
// (HeadPosition, with ReadAll's visibility rule), and when there is nothing
// after its position, sleeps until a wake-up or 250 ms pass, then checks
// again, until its timeout. Wake-ups come from:
//   - appends through this store object (Notify(), called after each
//     commit): at once, for free;
//   - NOTIFY on the channel "eventstore" with the schema name as payload,
//     which appends in other processes send when their store has
//     PostgresOptions::notify_on_append; received on one dedicated
//     connection that LISTENs while anyone waits.
// The periodic check covers the rest: appends from stores that do not
// notify, and events that become visible only when an older transaction
// ends.
//
// Of several waiting threads, one at a time polls the LISTEN connection
// (and a pipe that Notify() writes to); the others sleep on a condition
// variable. Every wake-up bumps a generation counter that each waiter reads
// before it checks the head, so a wake-up between the check and the sleep
// is never lost.
//
// Thread-safe.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_EVENT_WAITER_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_EVENT_WAITER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/postgres/pg_connection.h"
#include "backends/postgres/pg_database.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/position.h"

namespace eventstore::postgres {

class PgEventWaiter {
 public:
  // The NOTIFY channel; the payload is the schema's name.
  static constexpr char kChannel[] = "eventstore";
  // Longest sleep between two checks of the head.
  static constexpr absl::Duration kRecheckInterval = absl::Milliseconds(250);

  // `db` must outlive this object.
  explicit PgEventWaiter(PgDatabase* db);
  PgEventWaiter(const PgEventWaiter&) = delete;
  PgEventWaiter& operator=(const PgEventWaiter&) = delete;
  // REQUIRES: no thread is in Wait().
  ~PgEventWaiter();

  // Wakes the threads in Wait(); cheap when there are none.
  void Notify();

  // True as soon as `head()` is after `after`; false when `timeout` passes
  // first; head()'s error if it fails.
  absl::StatusOr<bool> Wait(
      Position after, absl::Duration timeout,
      const std::function<absl::StatusOr<Position>()>& head);

 private:
  // Returns when the generation differs from `seen`, or at `until`.
  void WaitForWakeUp(uint64_t seen, absl::Time until);
  // Polls the LISTEN connection and the pipe until a wake-up (true) or
  // `until` (false). REQUIRES: this thread is the poller.
  bool Poll(absl::Time until);
  // Connects and LISTENs if needed; on failure, leaves listener_ null and
  // tries again no sooner than a second later. REQUIRES: the poller.
  void EnsureListening();

  PgDatabase* const db_;
  // Threads in Wait(); Notify() does nothing when there are none.
  std::atomic<int> waiters_{0};
  // Notify() writes a byte to pipe_[1] to interrupt the poller's poll().
  int pipe_[2] = {-1, -1};

  internal::Mutex mu_;
  std::condition_variable_any woken_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Whether a thread is in Poll(); only that thread touches the members
  // below.
  bool polling_ ABSL_GUARDED_BY(mu_) = false;

  std::unique_ptr<PgConnection> listener_;
  absl::Time next_connect_ = absl::InfinitePast();
  // When a poll of the listener last ended: one left unread longer (no one
  // waiting, while others may notify and fill its socket, which would
  // stall its server process) is replaced rather than drained.
  absl::Time last_read_ = absl::InfinitePast();
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_EVENT_WAITER_H_
