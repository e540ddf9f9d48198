#include "projections/internal/projection_observer.h"

#include <chrono>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "projections/internal/log_text.h"

namespace eventstore::internal {
namespace {

constexpr char kComponent[] = "projection_runner";

using Clock = std::chrono::steady_clock;

}  // namespace

ProjectionObserver::ProjectionObserver(
    std::string projection, std::shared_ptr<Instrumentation> instrumentation,
    std::shared_ptr<LogSink> log_sink, std::shared_ptr<Tracer> tracer)
    : projection_(std::move(projection)),
      instrumentation_(std::move(instrumentation)),
      log_sink_(std::move(log_sink)),
      tracer_(std::move(tracer)) {}

absl::Status ProjectionObserver::Handle(
    const RecordedEvent& event, absl::FunctionRef<absl::Status()> handler) {
  if (instrumentation_ == nullptr && tracer_ == nullptr) return handler();
  ScopedSpan span(
      tracer_.get(), "eventstore.projection.handle", SpanKind::kConsumer,
      tracer_ == nullptr ? TraceContext{}
                         : TraceContext{event.metadata.traceparent(),
                                        event.metadata.tracestate()});
  if (span) {
    span.SetAttribute("eventstore.projection", projection_);
    span.SetAttribute("eventstore.stream", event.stream);
    span.SetAttribute("eventstore.event_type", event.type);
    span.SetAttribute("eventstore.position", event.position.ToString());
  }
  const Clock::time_point start =
      instrumentation_ != nullptr ? Clock::now() : Clock::time_point();
  absl::Status status = handler();
  if (instrumentation_ != nullptr) {
    instrumentation_->OnProjectionEvent(projection_, status.ok(),
                                        absl::FromChrono(Clock::now() - start));
  }
  span.SetStatus(status);
  return status;
}

void ProjectionObserver::WillRetry(const RecordedEvent& event, int attempt,
                                   int max_attempts, const absl::Status& error,
                                   absl::Duration delay) {
  if (log_sink_ == nullptr) return;
  Log(LogLevel::kWarning,
      absl::StrCat("projection '", projection_, "': the handler failed on ",
                   DescribeEvent(event), " (attempt ", attempt, " of ",
                   max_attempts, "), retrying in ", absl::FormatDuration(delay),
                   ": ", OneLine(error)));
}

void ProjectionObserver::Retried() {
  if (instrumentation_ != nullptr) {
    instrumentation_->OnProjectionRetry(projection_);
  }
}

void ProjectionObserver::GaveUpForNow(const RecordedEvent& event, int attempts,
                                      const absl::Status& error) {
  if (log_sink_ == nullptr) return;
  Log(LogLevel::kWarning,
      absl::StrCat("projection '", projection_,
                   "': the handler is unavailable"
                   " for ",
                   DescribeEvent(event), " after ", attempts,
                   " attempts; not parked, the runner stops before it and "
                   "tries again later: ",
                   OneLine(error)));
}

void ProjectionObserver::Parked(const RecordedEvent& event,
                                const absl::Status& error,
                                std::string_view why) {
  if (instrumentation_ != nullptr) {
    instrumentation_->OnProjectionDeadLetter(projection_);
  }
  if (log_sink_ == nullptr) return;
  Log(LogLevel::kError,
      absl::StrCat("projection '", projection_, "': ", DescribeEvent(event),
                   " dead-lettered ", Text(why), ": ", OneLine(error)));
}

void ProjectionObserver::Resolved(const RecordedEvent& event) {
  if (log_sink_ == nullptr) return;
  Log(LogLevel::kInfo,
      absl::StrCat("projection '", projection_, "': the dead letter of ",
                   DescribeEvent(event), " was replayed and resolved"));
}

void ProjectionObserver::Checkpoint(Position checkpoint, int64_t lag_events) {
  if (instrumentation_ != nullptr) {
    instrumentation_->OnProjectionCheckpoint(projection_, checkpoint,
                                             lag_events);
  }
}

void ProjectionObserver::Lease(bool held, std::string_view lease_name,
                               std::string_view how, bool quiet) {
  if (instrumentation_ != nullptr) {
    instrumentation_->OnProjectionLease(projection_, held);
  }
  if (log_sink_ == nullptr) return;
  Log(quiet ? LogLevel::kDebug : LogLevel::kInfo,
      absl::StrCat("projection '", projection_, "': lease '", Text(lease_name),
                   "' ", Text(how)));
}

void ProjectionObserver::RebuildRequested(std::string_view requested_by,
                                          absl::Time requested_at) {
  if (log_sink_ == nullptr) return;
  Log(LogLevel::kInfo,
      // The name is an operator's: escaped, so that the message stays one
      // line.
      absl::StrCat("projection '", projection_, "': rebuilding, as '",
                   absl::CHexEscape(Text(requested_by)), "' requested at ",
                   absl::FormatTime(requested_at, absl::UTCTimeZone()),
                   "; the read model was cleared and the checkpoint moved "
                   "back to the start"));
}

void ProjectionObserver::BackgroundError(const absl::Status& error,
                                         absl::Duration backoff) {
  if (log_sink_ == nullptr) return;
  Log(LogLevel::kWarning,
      absl::StrCat("projection '", projection_, "': ", OneLine(error),
                   "; trying again in ", absl::FormatDuration(backoff)));
}

void ProjectionObserver::Warning(std::string_view what,
                                 const absl::Status& error) {
  if (log_sink_ == nullptr) return;
  Log(LogLevel::kWarning, absl::StrCat("projection '", projection_, "': ",
                                       Text(what), ": ", OneLine(error)));
}

void ProjectionObserver::Log(LogLevel level, std::string_view message) const {
  log_sink_->Log(level, kComponent, message);
}

}  // namespace eventstore::internal
