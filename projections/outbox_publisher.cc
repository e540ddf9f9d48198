#include "projections/outbox_publisher.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/outbox_store.h"
#include "eventstore/status_macros.h"
#include "projections/internal/backoff.h"
#include "projections/internal/outbox_observer.h"
#include "projections/internal/worker_thread.h"

namespace eventstore {

std::vector<absl::Status> OutboxSink::SendBatch(
    absl::Span<const OutboxEntry> entries) {
  std::vector<absl::Status> results;
  results.reserve(entries.size());
  for (const OutboxEntry& entry : entries) results.push_back(Send(entry));
  return results;
}

void OutboxSink::BeginBatch(absl::Span<const OutboxEntry>) {}

std::vector<absl::Status> OutboxSink::EndBatch() { return {}; }

namespace {

// The longest one WaitForEvents call lasts while idle, so that Stop() is
// prompt even with a long poll_interval.
constexpr absl::Duration kIdleSlice = absl::Milliseconds(250);

// The most batches a publisher keeps in flight (max_batches_in_flight).
constexpr int kMaxBatchesInFlight = 64;

std::string DefaultWorkerName() {
  static std::atomic<int> counter{0};
  return absl::StrCat("outbox-publisher-", getpid(), "-", ++counter);
}

absl::Status ValidateOptions(const OutboxPublisherOptions& options) {
  if (options.worker_name.size() > 200) {
    return absl::InvalidArgumentError("worker_name: over 200 bytes");
  }
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size: ", options.batch_size, ", must be >= 1"));
  }
  if (options.lease <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("lease: must be positive");
  }
  if (options.max_batches_in_flight < 1 ||
      options.max_batches_in_flight > kMaxBatchesInFlight) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batches_in_flight: ", options.max_batches_in_flight,
                     ", must be in [1, ", kMaxBatchesInFlight, "]"));
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts: ", options.max_attempts, ", must be >= 1"));
  }
  if (options.initial_backoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("initial_backoff: is negative");
  }
  if (options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "max_backoff: is less than initial_backoff");
  }
  if (options.poll_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("poll_interval: must be positive");
  }
  return absl::OkStatus();
}

// Runs one send at a time on a thread of its own (started by the first
// one), so that the publisher's thread settles the batch sent before and
// claims the next one while the sink waits for the receiver's
// acknowledgements.
class SendThread {
 public:
  using Send = std::function<std::vector<absl::Status>()>;

  SendThread() = default;
  SendThread(const SendThread&) = delete;
  SendThread& operator=(const SendThread&) = delete;
  // Joins the thread. REQUIRES: every send started was waited for.
  ~SendThread() {
    {
      internal::MutexLock lock(&mu_);
      quit_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Runs `send` on the thread. REQUIRES: the send started before was waited
  // for; Start and Wait are called from one thread at a time.
  void Start(Send send) {
    {
      internal::MutexLock lock(&mu_);
      send_ = std::move(send);
      done_ = false;
    }
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    changed_.notify_all();
  }

  // Waits for the send started last, and returns what it returned.
  std::vector<absl::Status> Wait() {
    std::unique_lock<internal::Mutex> lock(mu_);
    changed_.wait(lock, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return done_;  // evaluated holding mu_
    });
    return std::move(results_);
  }

 private:
  void Run() {
    std::unique_lock<internal::Mutex> lock(mu_);
    while (true) {
      changed_.wait(lock, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return quit_ || send_ != nullptr;  // evaluated holding mu_
      });
      if (send_ == nullptr) return;
      Send send = std::move(send_);
      send_ = nullptr;
      lock.unlock();
      std::vector<absl::Status> results = send();
      lock.lock();
      results_ = std::move(results);
      done_ = true;
      changed_.notify_all();
    }
  }

  internal::Mutex mu_;
  std::condition_variable_any changed_;
  Send send_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Status> results_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool quit_ ABSL_GUARDED_BY(mu_) = false;
  // Started by the first Start; joined by the destructor.
  std::thread thread_;
};

class OutboxPublisherImpl final : public OutboxPublisher {
 public:
  OutboxPublisherImpl(EventStore& store, OutboxSink& sink,
                      OutboxPublisherOptions options)
      : store_(store),
        sink_(sink),
        options_(std::move(options)),
        observer_(options_.instrumentation, options_.log_sink,
                  options_.tracer) {
    if (options_.worker_name.empty()) {
      options_.worker_name = DefaultWorkerName();
    }
  }

  ~OutboxPublisherImpl() override { Stop(); }

  const std::string& worker_name() const override {
    return options_.worker_name;
  }

  absl::StatusOr<OutboxPublishResult> RunOnce() override {
    {
      internal::MutexLock lock(&state_mu_);
      if (busy_) {
        return absl::FailedPreconditionError(
            "RunOnce while the publisher is started or in another call");
      }
      busy_ = true;
      stop_once_ = false;
    }
    OutboxPublishResult result;
    absl::Status status = Publish(/*background=*/false, &result);
    internal::MutexLock lock(&state_mu_);
    busy_ = false;
    if (!status.ok()) return status;
    return result;
  }

  absl::Status Start() override {
    {
      internal::MutexLock lock(&state_mu_);
      if (busy_) {
        return absl::FailedPreconditionError(
            "the publisher is already started or in a call");
      }
      busy_ = true;
      running_ = true;
    }
    absl::Status started = worker_.Start([this] { Loop(); });
    if (!started.ok()) {
      internal::MutexLock lock(&state_mu_);
      busy_ = false;
      running_ = false;
    }
    return started;
  }

  void Stop() override {
    worker_.Stop();
    internal::MutexLock lock(&state_mu_);
    // A RunOnce in progress on another thread returns after its batch.
    stop_once_ = true;
    if (running_) {
      running_ = false;
      busy_ = false;
    }
  }

  OutboxPublisherStats stats() const override {
    internal::MutexLock lock(&state_mu_);
    OutboxPublisherStats stats = stats_;
    stats.running = running_;
    return stats;
  }

 private:
  // Claims and sends batches (see RunOnce); adds to `*result` as it goes,
  // so that it holds what was done even when an error is returned.
  absl::Status Publish(bool background, OutboxPublishResult* result);

  // A batch handed to a sink that PipelinesBatches(), not ended yet.
  struct InFlight {
    std::vector<OutboxEntry> entries;
    internal::OutboxObserver::Sending sending;
  };

  // Hands `batch` to the sink (on send_thread_): one status per entry.
  std::vector<absl::Status> Send(const std::vector<OutboxEntry>& batch);
  // Pipelined: hands `in_flight.entries` over (OutboxSink::BeginBatch).
  void Begin(InFlight& in_flight);
  // Pipelined: ends the oldest batch begun (OutboxSink::EndBatch), which
  // is `in_flight`; one status per entry.
  std::vector<absl::Status> End(InFlight& in_flight);
  // Makes `sent` one status per entry of `batch`: what a sink did not
  // answer for counts as a failed send.
  static void CheckAnswers(const std::vector<OutboxEntry>& batch,
                           std::vector<absl::Status>& sent);
  // Whether `batch`, sent with the statuses `sent`, holds a failed send to
  // be retried (a message not given up).
  bool HasRetry(const std::vector<OutboxEntry>& batch,
                const std::vector<absl::Status>& sent) const;
  // Records what the sink answered for `batch`: marks what went through
  // published, the failures failed (or given up, or given back when the
  // receiver was unreachable), and counts them into `*result`. With
  // `claim_next`, claims the next batch in the same write as the marks
  // (OutboxStore::MarkPublishedAndClaim) and returns it; else returns none.
  absl::StatusOr<std::vector<OutboxEntry>> Settle(
      const std::vector<OutboxEntry>& batch,
      const std::vector<absl::Status>& sent, bool claim_next,
      OutboxPublishResult* result);
  // Gives back a batch claimed and not sent (OutboxStore::Release), so that
  // it is claimable at once rather than after its lease.
  absl::Status GiveBack(const std::vector<OutboxEntry>& batch);

  void Count(OutboxPublishResult* result, int64_t published,
             int64_t failed_sends, int64_t given_up);
  // Reads and reports the backlog (when measuring): at the end of a round
  // (`round_over`), and at most every poll_interval during one.
  void ReportBacklog(bool round_over);
  void SetError(absl::Status status);
  bool StopOnceRequested() const {
    internal::MutexLock lock(&state_mu_);
    return stop_once_;
  }

  // The background thread's body.
  void Loop();

  EventStore& store_;
  OutboxSink& sink_;
  OutboxPublisherOptions options_;
  internal::OutboxObserver observer_;

  // When the backlog was last reported; only the thread publishing (busy_)
  // uses it.
  absl::Time backlog_reported_ = absl::InfinitePast();

  mutable internal::Mutex state_mu_;
  // A RunOnce call or the background thread is publishing.
  bool busy_ ABSL_GUARDED_BY(state_mu_) = false;
  bool running_ ABSL_GUARDED_BY(state_mu_) = false;
  // Stop() was called during the RunOnce in progress.
  bool stop_once_ ABSL_GUARDED_BY(state_mu_) = false;
  OutboxPublisherStats stats_ ABSL_GUARDED_BY(state_mu_);

  // Used by the thread publishing (busy_) only.
  SendThread send_thread_;
  internal::WorkerThread worker_;
};

// The publisher keeps the sink busy: while one batch is in flight, it
// settles the batch before it and claims the next one, in one store write
// (MarkPublishedAndClaim), so that the store's work and the receiver's
// overlap. The sink sees the batches in enqueue order, and a batch with a
// failed send ends the round before another batch is sent. With a sink
// that PipelinesBatches(), each step of the send thread hands the next
// batch over before it waits for the acknowledgements of the oldest one in
// flight, so up to max_batches_in_flight batches are in flight at the
// receiver.
absl::Status OutboxPublisherImpl::Publish(bool background,
                                          OutboxPublishResult* result) {
  OutboxStore& outbox = store_.outbox();
  const auto stop_requested = [&] {
    return background ? worker_.stopping() : StopOnceRequested();
  };
  if (stop_requested()) return absl::OkStatus();
  const bool pipelined =
      sink_.PipelinesBatches() && options_.max_batches_in_flight > 1;
  ES_ASSIGN_OR_RETURN(
      std::vector<OutboxEntry> batch,
      outbox.Claim(options_.worker_name, options_.batch_size, options_.lease));
  // The batch answered last and the sink's answers, until settled.
  std::vector<OutboxEntry> sent_batch;
  std::vector<absl::Status> sent;
  // Pipelined: the batches begun and not ended yet, oldest first. A deque
  // keeps its elements where they are as it grows at the back and shrinks
  // at the front, and moving an entries vector keeps its elements where
  // they are, as the sink needs until it ends the batch.
  std::deque<InFlight> in_flight;
  while (!batch.empty()) {
    ReportBacklog(/*round_over=*/false);
    // What failed is retried by the next call (after a backoff in the
    // background), not at once, and before the batch claimed meanwhile is
    // sent; a message given up does not stop the round.
    if (stop_requested() || HasRetry(sent_batch, sent)) break;
    // Pipelined: the batch to begin, and then, once max_batches_in_flight
    // are begun, the oldest one to end.
    InFlight begun;
    const bool end_oldest =
        pipelined && static_cast<int>(in_flight.size()) + 1 >=
                         options_.max_batches_in_flight;
    if (pipelined) {
      begun.entries = std::move(batch);
      InFlight* oldest = end_oldest ? &in_flight.front() : nullptr;
      send_thread_.Start([this, &begun, oldest] {
        Begin(begun);
        if (oldest == nullptr) return std::vector<absl::Status>();
        return End(*oldest);
      });
    } else {
      send_thread_.Start([this, &batch] { return Send(batch); });
    }
    absl::StatusOr<std::vector<OutboxEntry>> next =
        Settle(sent_batch, sent, /*claim_next=*/!stop_requested(), result);
    std::vector<absl::Status> answered = send_thread_.Wait();
    if (pipelined) {
      // The batch ended (if any) is answered; the one begun is in flight.
      if (end_oldest) {
        sent_batch = std::move(in_flight.front().entries);
        in_flight.pop_front();
      } else {
        sent_batch.clear();
      }
      in_flight.push_back(std::move(begun));
    } else {
      sent_batch = std::move(batch);
    }
    sent = std::move(answered);
    // A store error leaves the batches to their leases: each is sent
    // again (at least once), whether the sink delivered it or not. The
    // sink is left with nothing in flight.
    if (!next.ok()) {
      for (InFlight& f : in_flight) End(f);
      return next.status();
    }
    batch = *std::move(next);
  }
  absl::Status settled =
      Settle(sent_batch, sent, /*claim_next=*/false, result).status();
  for (InFlight& f : in_flight) {
    std::vector<absl::Status> answered = End(f);
    if (settled.ok()) {
      settled =
          Settle(f.entries, answered, /*claim_next=*/false, result).status();
    }
  }
  // Claimed but not sent (stopping, or a retry is due).
  absl::Status given_back = GiveBack(batch);
  ES_RETURN_IF_ERROR(settled);
  ReportBacklog(/*round_over=*/true);
  return given_back;
}

std::vector<absl::Status> OutboxPublisherImpl::Send(
    const std::vector<OutboxEntry>& batch) {
  std::vector<absl::Status> sent = observer_.SendBatch(
      batch, options_.max_attempts, [&] { return sink_.SendBatch(batch); });
  CheckAnswers(batch, sent);
  return sent;
}

void OutboxPublisherImpl::Begin(InFlight& in_flight) {
  in_flight.sending = observer_.StartSending(in_flight.entries);
  sink_.BeginBatch(in_flight.entries);
}

std::vector<absl::Status> OutboxPublisherImpl::End(InFlight& in_flight) {
  std::vector<absl::Status> sent = sink_.EndBatch();
  CheckAnswers(in_flight.entries, sent);
  observer_.FinishSending(in_flight.sending, in_flight.entries,
                          options_.max_attempts, sent);
  return sent;
}

void OutboxPublisherImpl::CheckAnswers(const std::vector<OutboxEntry>& batch,
                                       std::vector<absl::Status>& sent) {
  if (sent.size() != batch.size()) {
    // A sink's bug: what it did not answer for counts as a failed send.
    sent.resize(batch.size(),
                absl::InternalError(
                    "the outbox sink returned no status for this message"));
  }
}

bool OutboxPublisherImpl::HasRetry(
    const std::vector<OutboxEntry>& batch,
    const std::vector<absl::Status>& sent) const {
  for (size_t i = 0; i < sent.size(); ++i) {
    if (sent[i].ok()) continue;
    if (internal::ReceiverUnreachable(sent[i])) return true;
    const bool given_up = internal::GivesUpAtOnce(sent[i]) ||
                          batch[i].attempts + 1 >= options_.max_attempts;
    if (!given_up) return true;
  }
  return false;
}

absl::StatusOr<std::vector<OutboxEntry>> OutboxPublisherImpl::Settle(
    const std::vector<OutboxEntry>& batch,
    const std::vector<absl::Status>& sent, bool claim_next,
    OutboxPublishResult* result) {
  OutboxStore& outbox = store_.outbox();
  std::vector<int64_t> published;
  published.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (sent[i].ok()) published.push_back(batch[i].id);
  }
  std::vector<OutboxEntry> next;
  if (claim_next) {
    ES_ASSIGN_OR_RETURN(next, outbox.MarkPublishedAndClaim(
                                  published, options_.worker_name,
                                  options_.batch_size, options_.lease));
  } else {
    ES_RETURN_IF_ERROR(outbox.MarkAllPublished(published));
  }
  Count(result, static_cast<int64_t>(published.size()), 0, 0);
  absl::Status failures = [&]() -> absl::Status {
    // Released together, with the first one's error: the receiver could
    // not be reached for any of them.
    std::vector<int64_t> unreachable;
    std::string unreachable_error;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (sent[i].ok()) continue;
      const OutboxEntry& entry = batch[i];
      if (internal::ReceiverUnreachable(sent[i])) {
        if (unreachable.empty()) unreachable_error = sent[i].ToString();
        unreachable.push_back(entry.id);
        Count(result, 0, 1, 0);
        continue;
      }
      const bool at_once = internal::GivesUpAtOnce(sent[i]);
      ES_RETURN_IF_ERROR(outbox.MarkFailed(
          entry.id, sent[i].ToString(), at_once ? 1 : options_.max_attempts));
      const bool given_up =
          at_once || entry.attempts + 1 >= options_.max_attempts;
      Count(result, 0, 1, given_up ? 1 : 0);
    }
    if (unreachable.empty()) return absl::OkStatus();
    absl::Status released = outbox.Release(unreachable, unreachable_error);
    if (!absl::IsUnimplemented(released)) return released;
    // An outbox that cannot release: record failed attempts instead.
    for (const int64_t id : unreachable) {
      ES_RETURN_IF_ERROR(
          outbox.MarkFailed(id, unreachable_error, options_.max_attempts));
    }
    return absl::OkStatus();
  }();
  if (!failures.ok()) {
    // The batch just claimed is not sent after all.
    GiveBack(next).IgnoreError();
    return failures;
  }
  return next;
}

absl::Status OutboxPublisherImpl::GiveBack(
    const std::vector<OutboxEntry>& batch) {
  if (batch.empty()) return absl::OkStatus();
  std::vector<int64_t> ids;
  ids.reserve(batch.size());
  for (const OutboxEntry& entry : batch) ids.push_back(entry.id);
  // An empty error keeps each message's last error.
  absl::Status released = store_.outbox().Release(ids, "");
  // An outbox that cannot release leaves them to their lease.
  if (absl::IsUnimplemented(released)) return absl::OkStatus();
  return released;
}

void OutboxPublisherImpl::Count(OutboxPublishResult* result, int64_t published,
                                int64_t failed_sends, int64_t given_up) {
  result->published += published;
  result->failed_sends += failed_sends;
  result->given_up += given_up;
  internal::MutexLock lock(&state_mu_);
  stats_.published += published;
  stats_.failed_sends += failed_sends;
  stats_.given_up += given_up;
}

void OutboxPublisherImpl::ReportBacklog(bool round_over) {
  if (!observer_.measuring()) return;
  const absl::Time now = absl::Now();
  if (!round_over && now - backlog_reported_ < options_.poll_interval) return;
  backlog_reported_ = now;
  absl::StatusOr<OutboxBacklog> backlog = store_.outbox().Backlog();
  if (!backlog.ok()) {
    observer_.Warning(absl::StrCat("outbox publisher '", options_.worker_name,
                                   "': reading the backlog"),
                      backlog.status());
    return;
  }
  observer_.Backlog(*backlog);
}

void OutboxPublisherImpl::SetError(absl::Status status) {
  internal::MutexLock lock(&state_mu_);
  stats_.last_error = std::move(status);
}

void OutboxPublisherImpl::Loop() {
  // Rounds in a row that failed (a store error or a failed send to be
  // retried).
  int failures = 0;
  while (!worker_.stopping()) {
    // Read before publishing, so that an event appended meanwhile (with
    // outbox messages, perhaps) ends the idle wait below at once.
    absl::StatusOr<Position> head = store_.HeadPosition();
    OutboxPublishResult round;
    absl::Status status =
        head.ok() ? Publish(/*background=*/true, &round) : head.status();
    if (!status.ok()) SetError(status);
    if (!status.ok() || round.failed_sends > round.given_up) {
      ++failures;
      const absl::Duration backoff = internal::JitteredBackoffDelay(
          options_.initial_backoff, options_.max_backoff, failures);
      // A failed send was logged with its message.
      if (!status.ok()) {
        observer_.BackgroundError(options_.worker_name, status, backoff);
      }
      worker_.WaitFor(backoff);
      continue;
    }
    if (failures > 0) {
      failures = 0;
      SetError(absl::OkStatus());
    }
    // Idle: wait for poll_interval, or until an event is appended.
    const absl::Time deadline = absl::Now() + options_.poll_interval;
    while (!worker_.stopping()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      absl::StatusOr<bool> woken =
          store_.WaitForEvents(*head, std::min(left, kIdleSlice));
      if (!woken.ok() || *woken) break;
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<OutboxPublisher>> OutboxPublisher::Create(
    EventStore& store, OutboxSink& sink, OutboxPublisherOptions options) {
  ES_RETURN_IF_ERROR(ValidateOptions(options));
  return std::make_unique<OutboxPublisherImpl>(store, sink, std::move(options));
}

}  // namespace eventstore
