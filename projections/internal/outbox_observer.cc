#include "projections/internal/outbox_observer.h"

#include <chrono>
#include <deque>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "projections/internal/log_text.h"

namespace eventstore::internal {
namespace {

constexpr char kComponent[] = "outbox_publisher";

using Clock = std::chrono::steady_clock;

// The trace context in `headers` (empty when there is none).
TraceContext HeaderContext(const std::map<std::string, std::string>& headers) {
  TraceContext context;
  auto parent = headers.find(kTraceparentHeader);
  if (parent == headers.end()) return context;
  context.traceparent = parent->second;
  auto state = headers.find(kTracestateHeader);
  if (state != headers.end()) context.tracestate = state->second;
  return context;
}

}  // namespace

OutboxObserver::OutboxObserver(std::shared_ptr<Instrumentation> instrumentation,
                               std::shared_ptr<LogSink> log_sink,
                               std::shared_ptr<Tracer> tracer)
    : instrumentation_(std::move(instrumentation)),
      log_sink_(std::move(log_sink)),
      tracer_(std::move(tracer)) {}

std::vector<absl::Status> OutboxObserver::SendBatch(
    absl::Span<const OutboxEntry> batch, int max_attempts,
    absl::FunctionRef<std::vector<absl::Status>()> send) {
  if (instrumentation_ == nullptr && log_sink_ == nullptr &&
      tracer_ == nullptr) {
    return send();
  }
  Sending sending = StartSending(batch);
  std::vector<absl::Status> results = send();
  FinishSending(sending, batch, max_attempts, results);
  return results;
}

OutboxObserver::Sending OutboxObserver::StartSending(
    absl::Span<const OutboxEntry> batch) const {
  Sending sending;
  if (tracer_ != nullptr) {
    for (const OutboxEntry& entry : batch) {
      ScopedSpan& span = sending.spans.emplace_back(
          tracer_.get(), "eventstore.outbox.send", SpanKind::kProducer,
          HeaderContext(entry.message.headers));
      if (span) {
        span.SetAttribute("messaging.destination.name",
                          entry.message.destination);
        span.SetAttribute("eventstore.outbox.id", entry.id);
      }
    }
  }
  if (instrumentation_ != nullptr) sending.start = Clock::now();
  return sending;
}

void OutboxObserver::FinishSending(
    Sending& sending, absl::Span<const OutboxEntry> batch, int max_attempts,
    const std::vector<absl::Status>& results) const {
  if (instrumentation_ == nullptr && log_sink_ == nullptr &&
      tracer_ == nullptr) {
    return;
  }
  const absl::Duration latency =
      instrumentation_ != nullptr
          ? absl::FromChrono(Clock::now() - sending.start)
          : absl::ZeroDuration();
  for (size_t i = 0; i < batch.size() && i < results.size(); ++i) {
    const OutboxEntry& entry = batch[i];
    const absl::Status& status = results[i];
    const bool gave_up =
        !status.ok() && !ReceiverUnreachable(status) &&
        (GivesUpAtOnce(status) || entry.attempts + 1 >= max_attempts);
    if (instrumentation_ != nullptr) {
      const OutboxSendOutcome outcome =
          status.ok() ? OutboxSendOutcome::kPublished
                      : (gave_up ? OutboxSendOutcome::kGaveUp
                                 : OutboxSendOutcome::kFailed);
      instrumentation_->OnOutboxSend(outcome, latency);
    }
    if (i < sending.spans.size()) sending.spans[i].SetStatus(status);
    if (status.ok() || log_sink_ == nullptr) continue;
    if (gave_up) {
      log_sink_->Log(
          LogLevel::kError, kComponent,
          absl::StrCat("outbox message ", entry.id, " given up after ",
                       entry.attempts + 1, " failed sends: ", OneLine(status)));
    } else if (ReceiverUnreachable(status)) {
      log_sink_->Log(
          LogLevel::kWarning, kComponent,
          absl::StrCat("outbox message ", entry.id,
                       ": send failed, receiver unreachable (not counted as "
                       "an attempt), retried later: ",
                       OneLine(status)));
    } else {
      log_sink_->Log(
          LogLevel::kWarning, kComponent,
          absl::StrCat("outbox message ", entry.id, ": send failed (attempt ",
                       entry.attempts + 1, " of ", max_attempts,
                       "), retried later: ", OneLine(status)));
    }
  }
  // The spans end here, not when `sending` goes.
  sending.spans.clear();
}

void OutboxObserver::Backlog(const OutboxBacklog& backlog) {
  if (instrumentation_ != nullptr) {
    instrumentation_->OnOutboxBacklog(backlog.pending,
                                      backlog.oldest_pending_age);
  }
}

void OutboxObserver::BackgroundError(std::string_view worker,
                                     const absl::Status& error,
                                     absl::Duration backoff) {
  if (log_sink_ == nullptr) return;
  log_sink_->Log(
      LogLevel::kWarning, kComponent,
      absl::StrCat("outbox publisher '", Text(worker), "': ", OneLine(error),
                   "; trying again in ", absl::FormatDuration(backoff)));
}

void OutboxObserver::Warning(std::string_view what, const absl::Status& error) {
  if (log_sink_ == nullptr) return;
  log_sink_->Log(LogLevel::kWarning, kComponent,
                 absl::StrCat(Text(what), ": ", OneLine(error)));
}

}  // namespace eventstore::internal
