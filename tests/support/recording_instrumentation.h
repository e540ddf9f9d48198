// RecordingInstrumentation: an Instrumentation that keeps every store call
// it receives, for tests that assert exact values. Thread-safe.
//
//   auto recorder = std::make_shared<test::RecordingInstrumentation>();
//   std::unique_ptr<EventStore> store =
//       Instrument(std::move(opened), recorder, "sqlite");
//   ...
//   std::vector<test::RecordedAppend> appends = recorder->appends();

#ifndef EVENTSTORE_TESTS_SUPPORT_RECORDING_INSTRUMENTATION_H_
#define EVENTSTORE_TESTS_SUPPORT_RECORDING_INSTRUMENTATION_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "eventstore/instrumentation.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/position.h"

namespace eventstore::test {

// AppendObservation and ReadObservation with the label copied.
struct RecordedAppend {
  std::string backend;
  AppendOutcome outcome = AppendOutcome::kOk;
  int64_t events = 0;
  int64_t payload_bytes = 0;
  absl::Duration latency;
};

struct RecordedRead {
  std::string backend;
  ReadKind kind = ReadKind::kReadStream;
  bool ok = true;
  int64_t events = 0;
  absl::Duration latency;
};

struct RecordedEnqueue {
  std::string backend;
  int64_t messages = 0;
};

// OnPoolConnections and OnPoolWait, with the label copied.
struct RecordedPoolConnections {
  std::string backend;
  int64_t in_use = 0;
  int64_t idle = 0;
};

struct RecordedPoolWait {
  std::string backend;
  absl::Duration waited;
};

// The projection runner's and the outbox publisher's calls, with the
// projection's name copied.
struct RecordedProjectionEvent {
  std::string projection;
  bool ok = true;
  absl::Duration latency;
};

struct RecordedProjectionCheckpoint {
  std::string projection;
  Position checkpoint;
  int64_t lag_events = 0;
};

struct RecordedProjectionLease {
  std::string projection;
  bool held = false;
};

struct RecordedOutboxSend {
  OutboxSendOutcome outcome = OutboxSendOutcome::kPublished;
  absl::Duration latency;
};

struct RecordedOutboxBacklog {
  int64_t pending = 0;
  absl::Duration oldest_pending_age;
};

struct RecordedReplicaBatch {
  int64_t events = 0;
  int64_t lag_events = 0;
  absl::Duration lag_time;
};

class RecordingInstrumentation final : public Instrumentation {
 public:
  void OnAppend(const AppendObservation& append) override {
    internal::MutexLock lock(&mutex_);
    appends_.push_back({std::string(append.backend), append.outcome,
                        append.events, append.payload_bytes, append.latency});
  }
  void OnRead(const ReadObservation& read) override {
    internal::MutexLock lock(&mutex_);
    reads_.push_back({std::string(read.backend), read.kind, read.ok,
                      read.events, read.latency});
  }
  void OnOutboxEnqueued(std::string_view backend, int64_t messages) override {
    internal::MutexLock lock(&mutex_);
    enqueues_.push_back({std::string(backend), messages});
  }

  // --- The PostgreSQL pool and FailoverEventStore ------------------------
  void OnPoolConnections(std::string_view backend, int64_t in_use,
                         int64_t idle) override {
    internal::MutexLock lock(&mutex_);
    pool_connections_.push_back({std::string(backend), in_use, idle});
  }
  void OnPoolWait(std::string_view backend, absl::Duration waited) override {
    internal::MutexLock lock(&mutex_);
    pool_waits_.push_back({std::string(backend), waited});
  }
  void OnReconnect(std::string_view backend) override {
    internal::MutexLock lock(&mutex_);
    reconnects_.emplace_back(backend);
  }
  void OnFailoverMode(std::string_view mode) override {
    internal::MutexLock lock(&mutex_);
    failover_modes_.emplace_back(mode);
  }
  void OnFailoverJournaled() override {
    internal::MutexLock lock(&mutex_);
    ++failover_journaled_;
  }
  void OnFailoverReplayed(int64_t appends) override {
    internal::MutexLock lock(&mutex_);
    failover_replayed_.push_back(appends);
  }
  void OnFailoverParked() override {
    internal::MutexLock lock(&mutex_);
    ++failover_parked_;
  }
  void OnFailoverPending(int64_t appends) override {
    internal::MutexLock lock(&mutex_);
    failover_pending_.push_back(appends);
  }

  // --- StoreReplica -------------------------------------------------------
  void OnReplicaBatch(int64_t events, int64_t lag_events,
                      absl::Duration lag_time) override {
    internal::MutexLock lock(&mutex_);
    replica_batches_.push_back({events, lag_events, lag_time});
  }
  void OnReplicaError() override {
    internal::MutexLock lock(&mutex_);
    ++replica_errors_;
  }
  void OnReplicaCaughtUp(absl::Time at) override {
    internal::MutexLock lock(&mutex_);
    replica_caught_up_.push_back(at);
  }

  // --- The projection runner and the outbox publisher --------------------
  void OnProjectionEvent(std::string_view projection, bool ok,
                         absl::Duration latency) override {
    internal::MutexLock lock(&mutex_);
    projection_events_.push_back({std::string(projection), ok, latency});
  }
  void OnProjectionRetry(std::string_view projection) override {
    internal::MutexLock lock(&mutex_);
    projection_retries_.emplace_back(projection);
  }
  void OnProjectionDeadLetter(std::string_view projection) override {
    internal::MutexLock lock(&mutex_);
    projection_dead_letters_.emplace_back(projection);
  }
  void OnProjectionCheckpoint(std::string_view projection, Position checkpoint,
                              int64_t lag_events) override {
    internal::MutexLock lock(&mutex_);
    projection_checkpoints_.push_back(
        {std::string(projection), checkpoint, lag_events});
  }
  void OnProjectionLease(std::string_view projection, bool held) override {
    internal::MutexLock lock(&mutex_);
    projection_leases_.push_back({std::string(projection), held});
  }
  void OnOutboxSend(OutboxSendOutcome outcome,
                    absl::Duration latency) override {
    internal::MutexLock lock(&mutex_);
    outbox_sends_.push_back({outcome, latency});
  }
  void OnOutboxBacklog(int64_t pending,
                       absl::Duration oldest_pending_age) override {
    internal::MutexLock lock(&mutex_);
    outbox_backlogs_.push_back({pending, oldest_pending_age});
  }

  // Every OnPoolConnections, OnPoolWait and OnReconnect (its label), in
  // the order received.
  std::vector<RecordedPoolConnections> pool_connections() const {
    internal::MutexLock lock(&mutex_);
    return pool_connections_;
  }
  std::vector<RecordedPoolWait> pool_waits() const {
    internal::MutexLock lock(&mutex_);
    return pool_waits_;
  }
  std::vector<std::string> reconnects() const {
    internal::MutexLock lock(&mutex_);
    return reconnects_;
  }
  // The modes reported, in order; the OnFailoverJournaled and
  // OnFailoverParked calls counted; each OnFailoverReplayed's and
  // OnFailoverPending's argument, in order.
  std::vector<std::string> failover_modes() const {
    internal::MutexLock lock(&mutex_);
    return failover_modes_;
  }
  int64_t failover_journaled() const {
    internal::MutexLock lock(&mutex_);
    return failover_journaled_;
  }
  std::vector<int64_t> failover_replayed() const {
    internal::MutexLock lock(&mutex_);
    return failover_replayed_;
  }
  int64_t failover_parked() const {
    internal::MutexLock lock(&mutex_);
    return failover_parked_;
  }
  std::vector<int64_t> failover_pending() const {
    internal::MutexLock lock(&mutex_);
    return failover_pending_;
  }

  // Each OnReplicaBatch, in order; the OnReplicaError calls counted.
  std::vector<RecordedReplicaBatch> replica_batches() const {
    internal::MutexLock lock(&mutex_);
    return replica_batches_;
  }
  int64_t replica_errors() const {
    internal::MutexLock lock(&mutex_);
    return replica_errors_;
  }
  // Each OnReplicaCaughtUp's time, in order.
  std::vector<absl::Time> replica_caught_up() const {
    internal::MutexLock lock(&mutex_);
    return replica_caught_up_;
  }

  // Every projection runner and outbox publisher call, in the order
  // received; OnProjectionRetry and OnProjectionDeadLetter as the
  // projection's name.
  std::vector<RecordedProjectionEvent> projection_events() const {
    internal::MutexLock lock(&mutex_);
    return projection_events_;
  }
  std::vector<std::string> projection_retries() const {
    internal::MutexLock lock(&mutex_);
    return projection_retries_;
  }
  std::vector<std::string> projection_dead_letters() const {
    internal::MutexLock lock(&mutex_);
    return projection_dead_letters_;
  }
  std::vector<RecordedProjectionCheckpoint> projection_checkpoints() const {
    internal::MutexLock lock(&mutex_);
    return projection_checkpoints_;
  }
  std::vector<RecordedProjectionLease> projection_leases() const {
    internal::MutexLock lock(&mutex_);
    return projection_leases_;
  }
  std::vector<RecordedOutboxSend> outbox_sends() const {
    internal::MutexLock lock(&mutex_);
    return outbox_sends_;
  }
  std::vector<RecordedOutboxBacklog> outbox_backlogs() const {
    internal::MutexLock lock(&mutex_);
    return outbox_backlogs_;
  }

  std::vector<RecordedAppend> appends() const {
    internal::MutexLock lock(&mutex_);
    return appends_;
  }
  std::vector<RecordedRead> reads() const {
    internal::MutexLock lock(&mutex_);
    return reads_;
  }
  std::vector<RecordedEnqueue> enqueues() const {
    internal::MutexLock lock(&mutex_);
    return enqueues_;
  }

 private:
  mutable internal::Mutex mutex_;
  std::vector<RecordedAppend> appends_ ABSL_GUARDED_BY(mutex_);
  std::vector<RecordedRead> reads_ ABSL_GUARDED_BY(mutex_);
  std::vector<RecordedEnqueue> enqueues_ ABSL_GUARDED_BY(mutex_);
  // The PostgreSQL pool and FailoverEventStore.
  std::vector<RecordedPoolConnections> pool_connections_
      ABSL_GUARDED_BY(mutex_);
  std::vector<RecordedPoolWait> pool_waits_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> reconnects_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> failover_modes_ ABSL_GUARDED_BY(mutex_);
  int64_t failover_journaled_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<int64_t> failover_replayed_ ABSL_GUARDED_BY(mutex_);
  int64_t failover_parked_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<int64_t> failover_pending_ ABSL_GUARDED_BY(mutex_);
  // The projection runner and the outbox publisher.
  std::vector<RecordedProjectionEvent> projection_events_
      ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> projection_retries_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::string> projection_dead_letters_ ABSL_GUARDED_BY(mutex_);
  std::vector<RecordedProjectionCheckpoint> projection_checkpoints_
      ABSL_GUARDED_BY(mutex_);
  std::vector<RecordedProjectionLease> projection_leases_
      ABSL_GUARDED_BY(mutex_);
  std::vector<RecordedOutboxSend> outbox_sends_ ABSL_GUARDED_BY(mutex_);
  std::vector<RecordedOutboxBacklog> outbox_backlogs_ ABSL_GUARDED_BY(mutex_);
  // StoreReplica.
  std::vector<RecordedReplicaBatch> replica_batches_ ABSL_GUARDED_BY(mutex_);
  std::vector<absl::Time> replica_caught_up_ ABSL_GUARDED_BY(mutex_);
  int64_t replica_errors_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_RECORDING_INSTRUMENTATION_H_
