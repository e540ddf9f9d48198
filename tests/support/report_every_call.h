// ReportEveryCall: one call of every Instrumentation method, with known
// values, so that every metric family of an implementation has a series
// (prometheus-cpp renders, and collects, only families that have one).
// The values are what PrometheusInstrumentationTest.EveryCallSetsItsMetric
// expects.

#ifndef EVENTSTORE_TESTS_SUPPORT_REPORT_EVERY_CALL_H_
#define EVENTSTORE_TESTS_SUPPORT_REPORT_EVERY_CALL_H_

#include "absl/time/time.h"
#include "eventstore/instrumentation.h"
#include "eventstore/position.h"

namespace eventstore::test {

inline void ReportEveryCall(Instrumentation& metrics) {
  metrics.OnAppend(
      {"sqlite", AppendOutcome::kOk, 2, 100, absl::Microseconds(70)});
  metrics.OnRead(
      {"sqlite", ReadKind::kReadAll, true, 5, absl::Milliseconds(2)});
  metrics.OnOutboxEnqueued("sqlite", 2);
  metrics.OnPoolConnections("postgres", 3, 5);
  metrics.OnPoolWait("postgres", absl::Milliseconds(250));
  metrics.OnReconnect("postgres");
  metrics.OnProjectionEvent("orders", true, absl::Microseconds(300));
  metrics.OnProjectionEvent("orders", false, absl::Microseconds(400));
  metrics.OnProjectionRetry("orders");
  metrics.OnProjectionDeadLetter("orders");
  metrics.OnProjectionCheckpoint("orders", Position::At(42), 7);
  metrics.OnProjectionLease("orders", true);
  metrics.OnOutboxSend(OutboxSendOutcome::kPublished, absl::Milliseconds(3));
  metrics.OnOutboxSend(OutboxSendOutcome::kGaveUp, absl::Milliseconds(4));
  metrics.OnOutboxBacklog(12, absl::Seconds(90));
  metrics.OnFailoverMode("fallback");
  metrics.OnFailoverJournaled();
  metrics.OnFailoverReplayed(4);
  metrics.OnFailoverParked();
  metrics.OnFailoverPending(6);
  metrics.OnReplicaBatch(100, 40, absl::Seconds(3));
  metrics.OnReplicaError();
  metrics.OnReplicaCaughtUp(absl::FromUnixSeconds(1700000000));
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_REPORT_EVERY_CALL_H_
