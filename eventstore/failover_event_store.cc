#include "eventstore/failover_event_store.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/errors.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/failover_journal.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/outbox_message.h"
#include "eventstore/status_macros.h"
#include "eventstore/v1/outbox.pb.h"
#ifdef EVENTSTORE_HAVE_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#endif

namespace eventstore {
namespace {

using Mode = FailoverStatus::Mode;
using internal::BaseOf;
using internal::Holds;
using internal::JournalEntry;
using internal::kEntryKey;
using internal::kExpectedKey;
using internal::kOutboxType;
using internal::kSizeKey;
using internal::kStreamKey;
using internal::Mutex;
using internal::MutexLock;
using internal::OutboxMessageId;
using internal::PendingStream;
using internal::Slice;
using internal::SplitEntries;

// What the four properties add to an event's serialized metadata, the
// stream name aside: their keys (106 bytes), the other three values (at
// most 76) and the map entries' framing (at most 9 bytes each), rounded up.
constexpr size_t kMarkBytes = 256;

// kInvalidArgument naming the first of the journal's limits that does not
// cover FailoverEventStore::JournalLimits(`primary`).
absl::Status CheckJournalLimits(const StoreLimits& journal,
                                const StoreLimits& primary) {
  const StoreLimits need = FailoverEventStore::JournalLimits(primary);
  const struct {
    const char* name;
    size_t have;
    size_t need;
  } checks[] = {
      {"max_stream_name_bytes", journal.max_stream_name_bytes,
       need.max_stream_name_bytes},
      {"max_event_type_bytes", journal.max_event_type_bytes,
       need.max_event_type_bytes},
      {"max_payload_bytes", journal.max_payload_bytes, need.max_payload_bytes},
      {"max_metadata_bytes", journal.max_metadata_bytes,
       need.max_metadata_bytes},
      {"max_batch_events", journal.max_batch_events, need.max_batch_events},
  };
  for (const auto& check : checks) {
    if (check.have < check.need) {
      return absl::InvalidArgumentError(absl::StrCat(
          "failover: journal: its limit ", check.name, " is ", check.have,
          ", below the ", check.need,
          " needed to journal every append the primary's limits "
          "(FailoverOptions::limits) allow; open the journal with limits = "
          "FailoverEventStore::JournalLimits(primary limits)"));
    }
  }
  return absl::OkStatus();
}

constexpr char kComponent[] = "failover";

// `status` as text for a log message, with any password in a connection
// string or URL it quotes masked.
std::string Masked(const absl::Status& status) {
#ifdef EVENTSTORE_HAVE_POSTGRES
  return MaskPostgresUrl(status.ToString());
#else
  return status.ToString();
#endif
}

// A message for the LogSink, made under the store's lock and logged after
// it is released.
struct LogLine {
  LogLevel level = LogLevel::kInfo;
  std::string message;
};

// Whether the primary refused the append itself (it would refuse it again):
// such an append is parked. Any other error stops the replay until later.
bool RefusesTheAppend(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return true;
    default:
      return false;
  }
}

class FailoverEventStoreImpl final : public FailoverEventStore {
 public:
  FailoverEventStoreImpl(std::unique_ptr<EventStore> primary,
                         std::unique_ptr<EventStore> journal,
                         const FailoverOptions& options)
      : FailoverEventStore(primary.get()),
        primary_(std::move(primary)),
        journal_(std::move(journal)),
        options_(options),
        metrics_(options_.instrumentation.get()),
        log_(options_.log_sink.get()) {}

  ~FailoverEventStoreImpl() override {
    {
      MutexLock lock(&health_mu_);
      stop_ = true;
    }
    health_wake_.notify_all();
    if (health_thread_.joinable()) health_thread_.join();
  }

  // Lifecycle changes go to the primary, and only while nothing is
  // journaled: a deletion, retention change or scavenge must not overtake
  // appends waiting in the journal (they would replay into a stream deleted
  // after them). GetStreamInfo goes to the primary, as every read of
  // stream state does.
  absl::StatusOr<DeleteResult> DeleteStream(std::string_view stream,
                                            ExpectedVersion expected,
                                            DeleteMode mode) override {
    ES_RETURN_IF_ERROR(RequireDrainedJournal("DeleteStream"));
    return primary_->DeleteStream(stream, expected, mode);
  }
  absl::Status SetStreamMetadata(std::string_view stream,
                                 const StreamMetadata& metadata) override {
    ES_RETURN_IF_ERROR(RequireDrainedJournal("SetStreamMetadata"));
    return primary_->SetStreamMetadata(stream, metadata);
  }
  absl::StatusOr<ScavengeResult> Scavenge(
      const ScavengeOptions& options) override {
    ES_RETURN_IF_ERROR(RequireDrainedJournal("Scavenge"));
    return primary_->Scavenge(options);
  }

  // Reads the journal's state; starts the health check.
  absl::Status Init() {
    ES_ASSIGN_OR_RETURN(Position head, journal_->HeadPosition());
    ES_ASSIGN_OR_RETURN(Position done, ReplayedPosition());
    int64_t pending = 0;
    // The events of an entry a page ended inside, read on with the next.
    std::vector<RecordedEvent> carry;
    {
      MutexLock lock(&mu_);
      for (Position from = done; from < head;) {
        ES_ASSIGN_OR_RETURN(ReadAllPage page,
                            ReadJournal(from, options_.replay_page_size));
        const bool end = page.end_of_log || page.events.empty();
        from = page.next_position;
        std::vector<RecordedEvent> events = std::move(carry);
        carry.clear();
        for (RecordedEvent& event : page.events) {
          events.push_back(std::move(event));
        }
        std::vector<JournalEntry> entries = SplitEntries(std::move(events));
        if (!end && !entries.empty() && !entries.back().complete()) {
          carry = std::move(entries.back().journal_events);
          entries.pop_back();
        }
        for (const JournalEntry& entry : entries) {
          ++pending;
          AddPending(entry);
        }
        if (end) break;
      }
      for (const JournalEntry& entry : SplitEntries(std::move(carry))) {
        ++pending;
        AddPending(entry);
      }
      journal_head_ = head;
      replayed_position_ = done;
      pending_ = pending;
      mode_ = pending > 0 ? Mode::kRecovering : Mode::kPrimary;
      recovering_ = mode_ == Mode::kRecovering;
      since_ = absl::Now();
      if (metrics_ != nullptr) {
        metrics_->OnFailoverMode(FailoverModeName(mode_));
        metrics_->OnFailoverPending(pending_);
      }
    }
    if (pending > 0 && log_ != nullptr) {
      log_->Log(LogLevel::kInfo, kComponent,
                absl::StrCat("the journal holds ", pending,
                             " append(s) not replayed yet; mode recovering: "
                             "new appends are journaled behind them until "
                             "they are replayed"));
    }
    if (options_.replica != nullptr) {
      ReplicaOptions replica_options = options_.replica_options;
      if (replica_options.instrumentation == nullptr) {
        replica_options.instrumentation = options_.instrumentation;
      }
      if (replica_options.log_sink == nullptr) {
        replica_options.log_sink = options_.log_sink;
      }
      ES_ASSIGN_OR_RETURN(replica_,
                          StoreReplica::Create(*primary_, *options_.replica,
                                               std::move(replica_options)));
      ES_RETURN_IF_ERROR(replica_->Start());
    }
    if (options_.health_check_interval > absl::ZeroDuration()) {
      health_thread_ = std::thread([this] { HealthLoop(); });
    }
    return absl::OkStatus();
  }

  FailoverStatus Status() const override {
    FailoverStatus status;
    MutexLock lock(&mu_);
    status.mode = mode_;
    status.since = since_;
    status.journaled = journaled_;
    status.replayed = replayed_;
    status.parked = parked_;
    status.pending = pending_;
    status.last_error = last_error_;
    if (replica_ != nullptr) status.replica = replica_->Status();
    return status;
  }

  absl::Status ReplayNow() override {
    MutexLock replay(&replay_mu_);
    return Replay();
  }

  EventStore& journal() override { return *journal_; }
  StoreReplica* replica() override { return replica_.get(); }

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    AwaitStreamReplayed(request.stream);
    Mode mode = Mode::kPrimary;
    std::optional<int64_t> read_version;
    absl::Status refusal;
    for (int round = 0; round < 2; ++round) {
      bool against_pending = false;
      {
        MutexLock lock(&mu_);
        mode = mode_;
        // In kFallback everything is journaled; in kRecovering what must
        // follow journaled appends of its stream. Decided and journaled
        // under one hold of mu_ (see the header's "Locking").
        if (!(mode_ == Mode::kFallback ||
              (mode_ == Mode::kRecovering &&
               pending_streams_.contains(std::string(request.stream))))) {
          break;
        }
        absl::StatusOr<AppendResult> journaled = Journal(
            request, /*in_doubt=*/false, read_version, &against_pending);
        if (journaled.ok() || !against_pending || round == 1) {
          return journaled;
        }
        refusal = journaled.status();
      }
      // Refused against the version the pending appends lead to as
      // written; a read leaves out those that will be parked, and decides.
      absl::StatusOr<std::optional<MergedStream>> merged =
          Merged(request.stream);
      if (!merged.ok()) return refusal;  // the read cannot tell better
      read_version = merged->has_value()
                         ? std::optional<int64_t>((*merged)->version)
                         : std::nullopt;
    }
    absl::StatusOr<AppendResult> result = primary_->Append(request);
    if (result.ok() ||
        result.status().code() != absl::StatusCode::kUnavailable ||
        (mode == Mode::kPrimary && !options_.allow_fallback)) {
      return result;
    }
    std::optional<LogLine> line;
    {
      MutexLock lock(&mu_);
      if (mode_ != Mode::kFallback) {
        line = EnterMode(Mode::kFallback, result.status());
      }
      // Its outcome is unknown (it may have committed, ahead of appends
      // journaled meanwhile): not checked against the pending appends;
      // its replay decides (a no-op if committed). The replica check
      // stays: the primary was past the replica's copy before it.
      result = Journal(request, /*in_doubt=*/true, std::nullopt, nullptr);
    }
    Log(line);
    return result;
  }

  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override {
    ES_ASSIGN_OR_RETURN(std::optional<MergedStream> merged, Merged(stream));
    if (merged.has_value()) {
      if (!merged->events_known) return merged->primary_error;
      return Slice(std::move(merged->events), options);
    }
    return Route<std::vector<RecordedEvent>>(
        stream, [&] { return replica_->ReadStream(stream, options); },
        [&] { return primary_->ReadStream(stream, options); });
  }

  absl::StatusOr<int64_t> StreamVersion(std::string_view stream) override {
    ES_ASSIGN_OR_RETURN(std::optional<MergedStream> merged, Merged(stream));
    if (merged.has_value()) return merged->version;
    return Route<int64_t>(
        stream, [&] { return replica_->StreamVersion(stream); },
        [&] { return primary_->StreamVersion(stream); });
  }

  absl::StatusOr<bool> EventExists(const Uuid& id) override {
    bool fallback = false;
    {
      MutexLock lock(&mu_);
      if (pending_ids_.contains(id)) return true;
      fallback = mode_ == Mode::kFallback;
    }
    absl::Status primary_error = absl::UnavailableError(
        "failover: the primary is unreachable (mode fallback)");
    if (replica_ == nullptr || !fallback) {
      absl::StatusOr<bool> exists = primary_->EventExists(id);
      if (!NeedsReplica(exists.status())) return exists;
      primary_error = exists.status();
    }
    absl::StatusOr<bool> copied = replica_->EventExists(id);
    if (!copied.ok()) return OrPrimaryError(copied.status(), primary_error);
    if (*copied || replica_->Status().stream_prefixes.empty()) return copied;
    return absl::UnavailableError(absl::StrCat(
        primary_error.message(),
        "; the local replica does not hold the event, but copies only some "
        "streams: whether it exists is not known"));
  }

  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override {
    return Route<ReadAllPage>(
        options.filter.stream_prefix,
        [&]() -> absl::StatusOr<ReadAllPage> {
          ES_ASSIGN_OR_RETURN(ReadAllPage page, replica_->ReadAll(options));
          if (page.end_of_log) {
            ES_RETURN_IF_ERROR(AddPendingEvents(options.filter, page.events));
          }
          return page;
        },
        [&] { return primary_->ReadAll(options); });
  }

 private:
  // A stream with journaled appends pending, as this process will see it
  // once they replay.
  struct MergedStream {
    // The primary's events and the pending ones whose expected version
    // holds after them, with the versions they will get (empty positions);
    // valid when events_known.
    std::vector<RecordedEvent> events;
    bool events_known = true;
    // The stream's version after them.
    int64_t version = 0;
    // Why events are not known (the primary is unreachable).
    absl::Status primary_error;
  };

  // A read of `name` (a stream with nothing pending, or a ReadAll prefix)
  // routed between the replica and the primary: to the replica first when
  // it covers `name` and the store is in kFallback (the primary is known
  // to be down) or the replica is fresh enough (replica_read_staleness;
  // on its failure the primary answers); else to the primary, and to the
  // replica when the primary is unreachable. Without an answer from the
  // replica: kUnavailable with the primary's error and the replica's
  // reason.
  template <typename T, typename FromReplica, typename FromPrimary>
  absl::StatusOr<T> Route(std::string_view name, FromReplica from_replica,
                          FromPrimary from_primary) {
    if (replica_ == nullptr) return from_primary();
    Mode mode = Mode::kPrimary;
    {
      MutexLock lock(&mu_);
      mode = mode_;
    }
    if (mode == Mode::kFallback && replica_->Covers(name)) {
      return OrPrimaryError(
          from_replica(),
          absl::UnavailableError(
              "failover: the primary is unreachable (mode fallback)"));
    }
    if (mode == Mode::kPrimary && ReplicaFresh(name)) {
      absl::StatusOr<T> read = from_replica();
      if (read.ok()) return read;
    }
    absl::StatusOr<T> read = from_primary();
    if (!absl::IsUnavailable(read.status())) return read;
    return OrPrimaryError(from_replica(), read.status());
  }

  // Whether reads of streams starting with `prefix` may go to the replica
  // while the primary is up: a staleness bound is set, the replica covers
  // them and caught up within the bound.
  bool ReplicaFresh(std::string_view prefix) {
    if (replica_ == nullptr ||
        options_.replica_read_staleness <= absl::ZeroDuration()) {
      return false;
    }
    const ReplicaStatus status = replica_->Status();
    bool covered = status.stream_prefixes.empty();
    for (const std::string& p : status.stream_prefixes) {
      if (prefix.substr(0, p.size()) == p) covered = true;
    }
    return covered &&
           status.last_sync >= absl::Now() - options_.replica_read_staleness;
  }

  // Whether a read that failed with `status` is retried on the replica.
  bool NeedsReplica(const absl::Status& status) const {
    return replica_ != nullptr && absl::IsUnavailable(status);
  }

  // The replica's answer; when it has none (it does not cover the read, or
  // never reached the primary), kUnavailable with the primary's error and
  // the replica's reason.
  template <typename T>
  static absl::StatusOr<T> OrPrimaryError(absl::StatusOr<T> read,
                                          const absl::Status& primary_error) {
    if (read.ok()) return read;
    return OrPrimaryError(read.status(), primary_error);
  }
  static absl::Status OrPrimaryError(const absl::Status& replica_error,
                                     const absl::Status& primary_error) {
    if (!absl::IsUnavailable(replica_error) &&
        !absl::IsFailedPrecondition(replica_error)) {
      return replica_error;
    }
    return absl::UnavailableError(absl::StrCat(
        primary_error.message(),
        "; the local replica cannot answer: ", replica_error.message()));
  }

  // Adds to `events` (a ReadAll page that reached the end of the replica)
  // the pending journaled events `filter` matches, in the order journaled,
  // as this process will read them once replayed (see Merged).
  absl::Status AddPendingEvents(const ReadAllFilter& filter,
                                std::vector<RecordedEvent>& events) {
    Position from;
    {
      MutexLock lock(&mu_);
      if (pending_streams_.empty()) return absl::OkStatus();
      from = replayed_position_;
    }
    ReadAllOptions read;
    read.from_position = from;
    read.filter = filter;
    read.filter.stream_prefix =
        absl::StrCat(std::string(kJournalPrefix), filter.stream_prefix);
    std::vector<Uuid> ids;
    std::vector<std::string> streams;
    while (true) {
      ES_ASSIGN_OR_RETURN(ReadAllPage page, journal_->ReadAll(read));
      for (const RecordedEvent& event : page.events) {
        if (event.type == kOutboxType) continue;
        ids.push_back(event.id);
        streams.push_back(event.stream.substr(kJournalPrefix.size()));
      }
      if (page.end_of_log || page.events.empty()) break;
      read.from_position = page.next_position;
    }
    absl::flat_hash_map<Uuid, RecordedEvent> merged_events;
    absl::flat_hash_set<std::string> merged_streams;
    for (const std::string& stream : streams) {
      if (!merged_streams.insert(stream).second) continue;
      ES_ASSIGN_OR_RETURN(std::optional<MergedStream> merged, Merged(stream));
      if (!merged.has_value()) continue;  // replayed since
      if (!merged->events_known) return merged->primary_error;
      for (RecordedEvent& event : merged->events) {
        if (event.position.IsStart()) {
          merged_events.emplace(event.id, std::move(event));
        }
      }
    }
    for (const Uuid& id : ids) {
      auto it = merged_events.find(id);
      if (it != merged_events.end()) events.push_back(std::move(it->second));
    }
    return absl::OkStatus();
  }

  // nullopt when `stream` has no journaled append pending: the primary
  // answers alone. Else the primary's stream merged with the pending
  // journal. When the primary cannot be read (kUnavailable) the journal
  // alone answers when it knows the version the pending appends start
  // from: the version always, the events only when that is 0 (the whole
  // stream is in the journal). Any other case: the primary's error.
  absl::StatusOr<std::optional<MergedStream>> Merged(std::string_view stream) {
    PendingStream state;
    Position done;
    {
      MutexLock lock(&mu_);
      auto it = pending_streams_.find(std::string(stream));
      if (it == pending_streams_.end()) return std::nullopt;
      state = it->second;
      done = replayed_position_;
    }
    // The journal first, then the primary: an append replayed in between
    // is in both, and skipped in the journal by its ids.
    ReadStreamOptions from;
    from.from_version = state.journal_from;
    ES_ASSIGN_OR_RETURN(
        std::vector<RecordedEvent> journaled,
        journal_->ReadStream(
            absl::StrCat(std::string(kJournalPrefix), std::string(stream)),
            from));
    std::vector<RecordedEvent> pending;
    for (RecordedEvent& event : journaled) {
      if (done < event.position) pending.push_back(std::move(event));
    }
    MergedStream merged;
    // The stream's events: from the primary, or the replica when the
    // primary is down.
    const bool covered = replica_ != nullptr && replica_->Covers(stream);
    bool fallback = false;
    {
      MutexLock lock(&mu_);
      fallback = mode_ == Mode::kFallback;
    }
    absl::StatusOr<std::vector<RecordedEvent>> read =
        covered && fallback
            ? absl::StatusOr<std::vector<RecordedEvent>>(absl::UnavailableError(
                  "failover: the primary is unreachable (mode fallback)"))
            : primary_->ReadStream(stream);
    if (covered && absl::IsUnavailable(read.status())) {
      absl::StatusOr<std::vector<RecordedEvent>> copy =
          replica_->ReadStream(stream, ReadStreamOptions());
      if (copy.ok() || !absl::IsFailedPrecondition(copy.status())) {
        read = std::move(copy);
      }
    }
    int64_t version = 0;
    absl::flat_hash_set<Uuid> ids;
    if (read.ok()) {
      merged.events = std::move(*read);
      if (!merged.events.empty()) version = merged.events.back().version;
      for (const RecordedEvent& event : merged.events) ids.insert(event.id);
    } else if (absl::IsUnavailable(read.status()) && state.base >= 0) {
      version = state.base;
      merged.events_known = state.base == 0;
      merged.primary_error = read.status();
    } else {
      return read.status();
    }
    for (JournalEntry& entry : SplitEntries(std::move(pending))) {
      if (!entry.damage.empty() || entry.events.empty() ||
          ids.contains(entry.events.front().id) ||
          !Holds(entry.expected, version)) {
        continue;  // replayed already, or will be parked
      }
      for (EventData& data : entry.events) {
        RecordedEvent& event = merged.events.emplace_back();
        event.id = data.id;
        event.type = std::move(data.type);
        event.payload = std::move(data.payload);
        event.metadata = std::move(data.metadata);
        event.stream = std::string(stream);
        event.version = ++version;
      }
    }
    merged.version = version;
    return merged;
  }

  // Counts `entry` (journaled, not replayed) in pending_streams_ and
  // pending_ids_.
  void AddPending(const JournalEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (entry.stream.empty()) return;  // damaged: the replay parks it
    PendingStream& state = pending_streams_[entry.stream];
    int64_t base = BaseOf(entry.expected);
    if (state.appends == 0) {
      state.base = base;
      state.journal_from = entry.journal_events.front().version;
    }
    ++state.appends;
    if (base < 0) base = state.version;
    state.version =
        base < 0 ? -1 : base + static_cast<int64_t>(entry.events.size());
    for (const EventData& event : entry.events) pending_ids_.insert(event.id);
  }

  // Uncounts `entry`, replayed (`next_version`: the stream's version after
  // it) or parked (-1).
  void RemovePending(const JournalEntry& entry, int64_t next_version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const EventData& event : entry.events) pending_ids_.erase(event.id);
    if (entry.stream.empty()) return;
    auto it = pending_streams_.find(entry.stream);
    if (it == pending_streams_.end()) return;
    PendingStream& state = it->second;
    if (--state.appends <= 0) {
      pending_streams_.erase(it);
      return;
    }
    state.base = next_version;
    state.journal_from = entry.journal_events.back().version + 1;
  }

  // The journal position replayed (or parked) so far.
  absl::StatusOr<Position> ReplayedPosition() {
    ES_ASSIGN_OR_RETURN(std::optional<Checkpoint> checkpoint,
                        journal_->checkpoints().Get(kReplayName));
    return checkpoint.has_value() ? checkpoint->position : Position::Start();
  }

  // Up to `count` journal events after `from`, in the order journaled.
  absl::StatusOr<ReadAllPage> ReadJournal(Position from, int64_t count) {
    ReadAllOptions read;
    read.from_position = from;
    read.max_count = count;
    read.filter.stream_prefix = std::string(kJournalPrefix);
    return journal_->ReadAll(read);
  }

  // Records `why` (unless OK) as last_error_ and enters `mode`; returns
  // the line to log for the change, if any (none without a LogSink).
  [[nodiscard]] std::optional<LogLine> EnterMode(Mode mode, absl::Status why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!why.ok()) last_error_ = std::move(why);
    if (mode_ == mode) return std::nullopt;
    const Mode from = mode_;
    mode_ = mode;
    recovering_ = mode == Mode::kRecovering;
    replay_progress_.notify_all();  // appends waiting in AwaitStreamReplayed
    since_ = absl::Now();
    if (mode == Mode::kPrimary) {
      // Empty already when the journal is drained; kept consistent anyway.
      pending_streams_.clear();
      pending_ids_.clear();
      last_stop_logged_ = absl::OkStatus();
    }
    if (metrics_ != nullptr) metrics_->OnFailoverMode(FailoverModeName(mode));
    if (log_ == nullptr) return std::nullopt;
    switch (mode) {
      case Mode::kFallback:
        return LogLine{
            LogLevel::kWarning,
            absl::StrCat(from == Mode::kRecovering
                             ? "the primary failed during the replay"
                             : "the primary is unreachable",
                         "; mode fallback: appends go to the journal (",
                         pending_,
                         " pending) until it answers: ", Masked(last_error_))};
      case Mode::kRecovering:
        return LogLine{LogLevel::kInfo,
                       absl::StrCat("the primary answers again; mode "
                                    "recovering: replaying ",
                                    pending_, " journaled append(s)")};
      case Mode::kPrimary:
        return LogLine{
            LogLevel::kInfo,
            absl::StrCat("the journal is replayed; mode primary: appends go "
                         "to the primary again (since start: ",
                         replayed_, " replayed, ", parked_, " parked)")};
    }
    return std::nullopt;
  }

  void Log(const std::optional<LogLine>& line) const {
    if (line.has_value()) log_->Log(line->level, kComponent, line->message);
  }

  absl::StatusOr<AppendResult> Journal(const AppendRequest& request,
                                       bool in_doubt,
                                       std::optional<int64_t> read_version,
                                       bool* against_pending)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ES_ASSIGN_OR_RETURN(std::vector<internal::PreparedEvent> prepared,
                        internal::PrepareAppend(options_.limits, request));
    ES_RETURN_IF_ERROR(
        internal::ValidateOutboxMessages(options_.limits, request.outbox));
    if (!request.subject_keys.empty()) {
      // The journal replays events, not key table rows: a data subject's
      // events wait for the primary (whose key table they need).
      return absl::UnavailableError(absl::StrCat(
          "append to stream '", internal::Shown(request.stream),
          "': it writes key table rows of data subjects, which only the "
          "primary holds, and the primary is unavailable"));
    }
    auto pending = pending_streams_.find(std::string(request.stream));
    // Refused at once: an expected version that contradicts the version
    // the stream's pending appends lead to (unless the append is a retry
    // of one of them).
    if (!in_doubt && pending != pending_streams_.end() &&
        pending->second.version >= 0 &&
        !Holds(request.expected, pending->second.version) &&
        request.expected.kind() != ExpectedVersion::Kind::kStreamExists &&
        !pending_ids_.contains(prepared.front().id)) {
      if (!read_version.has_value()) {
        if (against_pending != nullptr) *against_pending = true;
        return WrongExpectedVersionError(request.stream, request.expected,
                                         pending->second.version);
      }
      if (!Holds(request.expected, *read_version)) {
        return WrongExpectedVersionError(request.stream, request.expected,
                                         *read_version);
      }
    }
    // Refused at once too: an expected version the replica's copy already
    // contradicts (the primary holds at least that copy), unless the
    // append is a retry of one the replica copied.
    if (pending == pending_streams_.end() && replica_ != nullptr &&
        BaseOf(request.expected) >= 0 && replica_->Covers(request.stream)) {
      absl::StatusOr<int64_t> copied = replica_->StreamVersion(request.stream);
      if (copied.ok() && *copied > BaseOf(request.expected)) {
        absl::StatusOr<bool> retry = replica_->EventExists(prepared.front().id);
        if (retry.ok() && !*retry) {
          return WrongExpectedVersionError(request.stream, request.expected,
                                           *copied);
        }
      }
    }
    const std::string entry = prepared.front().id.ToString();
    const std::string size =
        absl::StrCat(prepared.size() + request.outbox.size());
    const std::string expected = absl::StrCat(request.expected.ToWire());
    auto mark = [&](v1::EventMetadata& metadata) {
      auto& properties = *metadata.mutable_properties();
      properties[kStreamKey] = std::string(request.stream);
      properties[kExpectedKey] = expected;
      properties[kEntryKey] = entry;
      properties[kSizeKey] = size;
    };
    std::vector<EventData> events;
    events.reserve(prepared.size() + request.outbox.size());
    for (const internal::PreparedEvent& event : prepared) {
      EventData& out = events.emplace_back(*event.source);
      out.id = event.id;
      mark(out.metadata);
    }
    for (size_t i = 0; i < request.outbox.size(); ++i) {
      const OutboxMessage& message = request.outbox[i];
      v1::JournaledOutboxMessage journaled;
      journaled.set_destination(message.destination);
      journaled.set_key(message.key);
      journaled.set_payload(message.payload);
      journaled.mutable_headers()->insert(message.headers.begin(),
                                          message.headers.end());
      EventData& out = events.emplace_back();
      out.id = OutboxMessageId(prepared.front().id, i);
      out.type = kOutboxType;
      out.payload = journaled.SerializeAsString();
      out.descriptor = v1::JournaledOutboxMessage::descriptor();
      mark(out.metadata);
    }
    absl::StatusOr<AppendResult> written = journal_->Append(
        absl::StrCat(std::string(kJournalPrefix), std::string(request.stream)),
        ExpectedVersion::Any(), events);
    if (!written.ok()) {
      const std::string why =
          last_error_.ok() ? std::string("earlier appends wait in the journal")
                           : absl::StrCat("the primary is unreachable: ",
                                          last_error_.message());
      return absl::Status(
          written.status().code(),
          absl::StrCat("failover: the journal refused the append to stream '",
                       std::string(request.stream), "' (", why,
                       "): ", written.status().message()));
    }
    int64_t base = BaseOf(request.expected);
    if (base < 0 && pending != pending_streams_.end()) {
      base = pending->second.version;
    }
    AppendResult result;
    result.journaled = true;
    result.next_expected_version =
        base < 0 ? -1 : base + static_cast<int64_t>(prepared.size());
    // An exact retry of an append journaled before writes nothing.
    if (journal_head_ < written->last_position) {
      journal_head_ = written->last_position;
      ++journaled_;
      ++pending_;
      if (metrics_ != nullptr) {
        metrics_->OnFailoverJournaled();
        metrics_->OnFailoverPending(pending_);
      }
      PendingStream& state = pending_streams_[std::string(request.stream)];
      if (state.appends == 0) {
        state.base = BaseOf(request.expected);
        state.journal_from = written->next_expected_version -
                             static_cast<int64_t>(events.size()) + 1;
      }
      ++state.appends;
      state.version = result.next_expected_version;
      for (const internal::PreparedEvent& event : prepared) {
        pending_ids_.insert(event.id);
      }
    }
    return result;
  }

  absl::Status Replay() ABSL_EXCLUSIVE_LOCKS_REQUIRED(replay_mu_) {
    {
      MutexLock lock(&mu_);
      if (mode_ == Mode::kPrimary) return absl::OkStatus();
    }
    absl::Status probe = primary_->HeadPosition().status();
    if (!probe.ok()) return Stopped(probe);
    std::optional<LogLine> line;
    {
      MutexLock lock(&mu_);
      line = EnterMode(Mode::kRecovering, absl::OkStatus());
    }
    Log(line);
    ES_ASSIGN_OR_RETURN(Position done, ReplayedPosition());
    int64_t want = options_.replay_page_size;
    while (true) {
      ES_ASSIGN_OR_RETURN(ReadAllPage page, ReadJournal(done, want));
      std::vector<RecordedEvent>& events = page.events;
      if (events.empty()) {
        {
          MutexLock lock(&mu_);
          if (journal_head_ > done) continue;  // journaled since the read
          line = EnterMode(Mode::kPrimary, absl::OkStatus());
        }
        Log(line);
        return absl::OkStatus();
      }
      const bool page_full = static_cast<int64_t>(events.size()) == want;
      std::vector<JournalEntry> entries = SplitEntries(std::move(events));
      if (page_full && !entries.back().complete()) {
        // Read the unfinished entry again, whole, on the next round.
        want = std::max(options_.replay_page_size, entries.back().size);
        entries.pop_back();
      } else {
        want = options_.replay_page_size;
        // The journal ends inside an entry only when it was damaged.
        entries.back().MarkIncomplete();
      }
      ES_RETURN_IF_ERROR(ReplayBatch(entries, done));
    }
  }

  // Replays `entries` (a page of the journal) in one AppendEach, parks
  // what the primary refused, then advances the checkpoint (and `done`)
  // over the entries decided, which stop at the first append whose outcome
  // is not known (the primary failed: replayed again later, idempotently).
  // OK when every entry was decided.
  absl::Status ReplayBatch(const std::vector<JournalEntry>& entries,
                           Position& done)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(replay_mu_) {
    std::vector<AppendRequest> requests;
    requests.reserve(entries.size());
    for (const JournalEntry& entry : entries) {
      if (!entry.damage.empty()) continue;
      AppendRequest& request = requests.emplace_back();
      request.stream = entry.stream;
      request.expected = entry.expected;
      request.events = entry.events;
      request.outbox = entry.outbox;
    }
    absl::Status stop;
    std::vector<absl::StatusOr<AppendResult>> results;
    results.reserve(requests.size());
    // In calls of at most the primary's max_batch_events events (AppendEach
    // refuses more), stopping at the first call that fails.
    for (size_t begin = 0; begin < requests.size() && stop.ok();) {
      size_t end = begin;
      size_t events = 0;
      while (end < requests.size() &&
             (end == begin || events + requests[end].events.size() <=
                                  options_.limits.max_batch_events)) {
        events += requests[end].events.size();
        ++end;
      }
      absl::Span<const AppendRequest> chunk(&requests[begin], end - begin);
      absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> each =
          primary_->AppendEach(chunk);
      if (!each.ok() && chunk.size() == 1 && RefusesTheAppend(each.status())) {
        results.push_back(each.status());  // refused alone: parked
      } else if (!each.ok()) {
        stop = each.status();
      } else if (each->size() != chunk.size()) {
        stop = absl::InternalError(absl::StrCat(
            "failover replay: the primary's AppendEach returned ", each->size(),
            " results for ", chunk.size(), " appends"));
      } else {
        for (auto& result : *each) results.push_back(std::move(result));
      }
      begin = end;
    }
    // The stream's version after each entry decided; -1: parked.
    std::vector<int64_t> outcomes;
    int64_t replayed = 0;
    int64_t journal_events = 0;
    size_t slot = 0;
    for (const JournalEntry& entry : entries) {
      absl::Status refused;
      if (!entry.damage.empty()) {
        refused = absl::DataLossError(entry.damage);
      } else {
        if (slot == results.size()) break;  // not sent: `stop` says why
        const absl::StatusOr<AppendResult>& result = results[slot++];
        if (result.ok()) {
          ++replayed;
          outcomes.push_back(result->next_expected_version);
          journal_events += static_cast<int64_t>(entry.journal_events.size());
          continue;
        }
        if (!RefusesTheAppend(result.status())) {
          stop = result.status();
          break;
        }
        refused = result.status();
      }
      absl::Status parked = Park(entry, refused);
      if (!parked.ok()) {
        stop = parked;
        break;
      }
      outcomes.push_back(-1);
      journal_events += static_cast<int64_t>(entry.journal_events.size());
    }
    if (!outcomes.empty()) {
      const Position last =
          entries[outcomes.size() - 1].journal_events.back().position;
      absl::Status saved =
          journal_->checkpoints().Save(kReplayName, last, journal_events);
      if (!saved.ok()) return saved;
      done = last;
      {
        MutexLock lock(&mu_);
        replayed_ += replayed;
        pending_ -= static_cast<int64_t>(outcomes.size());
        replayed_position_ = last;
        for (size_t i = 0; i < outcomes.size(); ++i) {
          RemovePending(entries[i], outcomes[i]);
        }
        if (metrics_ != nullptr) metrics_->OnFailoverPending(pending_);
      }
      replay_progress_.notify_all();
      ReportReplayed(replayed);
    }
    if (!stop.ok()) return Stopped(stop);
    return absl::OkStatus();
  }

  // Reports `appends` replayed on one page of the journal (none: nothing).
  void ReportReplayed(int64_t appends) {
    if (appends == 0) return;
    if (metrics_ != nullptr) metrics_->OnFailoverReplayed(appends);
    if (log_ == nullptr) return;
    int64_t pending = 0;
    {
      MutexLock lock(&mu_);
      pending = pending_;
    }
    log_->Log(LogLevel::kInfo, kComponent,
              absl::StrCat("replayed ", appends, " journaled append(s); ",
                           pending, " pending"));
  }

  // Records why the replay stopped; an unreachable primary means kFallback.
  // Logs (warning) a stop for another reason, once until the next
  // different one or a drained journal.
  absl::Status Stopped(absl::Status why) {
    std::optional<LogLine> line;
    {
      MutexLock lock(&mu_);
      if (why.code() == absl::StatusCode::kUnavailable) {
        line = EnterMode(Mode::kFallback, why);
      } else {
        line = EnterMode(mode_, why);
        if (log_ != nullptr && last_stop_logged_ != why) {
          last_stop_logged_ = why;
          line = LogLine{LogLevel::kWarning,
                         absl::StrCat("the replay stopped (", pending_,
                                      " pending; retried by the health check "
                                      "or ReplayNow): ",
                                      Masked(why))};
        }
      }
    }
    Log(line);
    return why;
  }

  // Parks `entry`, which the primary refused (`refused`) or which is
  // damaged: its journal events enter the journal's dead letters.
  absl::Status Park(const JournalEntry& entry, const absl::Status& refused) {
    const std::string reason =
        absl::StrCat("failover replay: the append to stream '", entry.stream,
                     "' (expected version ", entry.expected.ToString(),
                     ") was refused: ", refused.ToString());
    for (const RecordedEvent& event : entry.journal_events) {
      ES_RETURN_IF_ERROR(
          journal_->dead_letters().Add(kReplayName, event, reason));
    }
    {
      MutexLock lock(&mu_);
      ++parked_;
      if (metrics_ != nullptr) metrics_->OnFailoverParked();
    }
    if (log_ != nullptr) {
      log_->Log(
          LogLevel::kError, kComponent,
          absl::StrCat("parked the journaled append to stream '", entry.stream,
                       "' (event ", entry.id, ", expected version ",
                       entry.expected.ToString(),
                       "): the primary refused it: ", Masked(refused),
                       "; its events are in the journal's dead letters ('",
                       std::string(kReplayName), "')"));
    }
    return absl::OkStatus();
  }

  // In kRecovering, waits (at most options_.recovering_append_wait) until
  // `stream` has no journaled appends pending, so that an append to it
  // goes to the primary instead of lengthening the replay. Only with the
  // background thread: without it, nothing replays while the caller waits.
  void AwaitStreamReplayed(std::string_view stream) {
    if (!recovering_.load(std::memory_order_relaxed) ||
        options_.recovering_append_wait <= absl::ZeroDuration() ||
        options_.health_check_interval <= absl::ZeroDuration()) {
      return;
    }
    const std::string name(stream);
    std::unique_lock<Mutex> lock(mu_);
    replay_progress_.wait_for(
        lock, absl::ToChronoMicroseconds(options_.recovering_append_wait),
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return mode_ != Mode::kRecovering || !pending_streams_.contains(name);
        });
  }

  void HealthLoop() {
    while (true) {
      {
        std::unique_lock<Mutex> lock(health_mu_);
        health_wake_.wait_for(
            lock, absl::ToChronoMicroseconds(options_.health_check_interval),
            [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_; });
        if (stop_) return;
      }
      {
        MutexLock lock(&mu_);
        if (mode_ == Mode::kPrimary) continue;
      }
      MutexLock replay(&replay_mu_);
      Replay().IgnoreError();  // recorded in last_error_
    }
  }

  const std::unique_ptr<EventStore> primary_;
  // kUnavailable naming `what` unless the store is in kPrimary (nothing
  // journaled is waiting).
  absl::Status RequireDrainedJournal(std::string_view what) const {
    MutexLock lock(&mu_);
    if (mode_ == Mode::kPrimary) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(
        "failover: ", std::string(what),
        " needs the primary with the journal "
        "replayed; ",
        pending_, " journaled append(s) are waiting (",
        mode_ == Mode::kFallback ? "the primary is unreachable" : "replaying",
        "); retry once Status() is primary"));
  }

  const std::unique_ptr<EventStore> journal_;
  const FailoverOptions options_;
  // Follows the primary into options_.replica; null without one.
  std::unique_ptr<StoreReplica> replica_;
  // options_'s, or null.
  Instrumentation* const metrics_;
  LogSink* const log_;

  // Guards the mode and the counts. Held while an append is journaled, so
  // that the replay's switch back to kPrimary (made under it, once the
  // journal is drained) cannot miss an append journaled at the same time.
  mutable Mutex mu_;
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kPrimary;
  absl::Time since_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  // The last replay stop logged (Stopped); OK once the journal is drained.
  absl::Status last_stop_logged_ ABSL_GUARDED_BY(mu_);
  int64_t journaled_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t replayed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t parked_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  // mode_ == kRecovering, readable without mu_: appends in other modes
  // skip AwaitStreamReplayed's lock.
  std::atomic<bool> recovering_{false};
  // Notified under mu_ when the replay took appends or the mode changed.
  std::condition_variable_any replay_progress_;
  // The journal's position after the last journaled append.
  Position journal_head_ ABSL_GUARDED_BY(mu_);
  // The journal position replayed (or parked) so far: replay_mu_'s
  // checkpoint, as last saved.
  Position replayed_position_ ABSL_GUARDED_BY(mu_);
  // The streams with journaled appends pending, and the ids of their
  // events (not of outbox messages). An append to a stream in
  // pending_streams_ is journaled behind them, even in kRecovering.
  absl::flat_hash_map<std::string, PendingStream> pending_streams_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Uuid> pending_ids_ ABSL_GUARDED_BY(mu_);

  // One replay at a time (the health check, ReplayNow).
  Mutex replay_mu_;

  Mutex health_mu_;
  std::condition_variable_any health_wake_;
  bool stop_ ABSL_GUARDED_BY(health_mu_) = false;
  std::thread health_thread_;
};

}  // namespace

std::string_view FailoverModeName(FailoverStatus::Mode mode) {
  switch (mode) {
    case Mode::kPrimary:
      return "primary";
    case Mode::kFallback:
      return "fallback";
    case Mode::kRecovering:
      return "recovering";
  }
  return "unknown";
}

StoreLimits FailoverEventStore::JournalLimits(const StoreLimits& primary) {
  StoreLimits journal = primary;
  journal.max_stream_name_bytes += kJournalPrefix.size();
  journal.max_metadata_bytes += primary.max_stream_name_bytes + kMarkBytes;
  journal.max_payload_bytes += kOutboxEnvelopeBytes;
  return journal;
}

absl::StatusOr<std::unique_ptr<FailoverEventStore>> FailoverEventStore::Create(
    std::unique_ptr<EventStore> primary, std::unique_ptr<EventStore> journal,
    const FailoverOptions& options) {
  if (primary == nullptr) {
    return absl::InvalidArgumentError("failover: primary: no store given");
  }
  if (journal == nullptr) {
    return absl::InvalidArgumentError("failover: journal: no store given");
  }
  if (primary.get() == journal.get()) {
    return absl::InvalidArgumentError(
        "failover: journal: the same store as the primary");
  }
  if (options.replica != nullptr && (options.replica.get() == primary.get() ||
                                     options.replica.get() == journal.get())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "failover: replica: the same store as the ",
        options.replica.get() == primary.get() ? "primary" : "journal"));
  }
  if (options.replica_read_staleness < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "failover: replica_read_staleness: negative");
  }
  if (options.replay_page_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("failover: replay_page_size: ", options.replay_page_size,
                     " is below 1"));
  }
  if (options.health_check_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "failover: health_check_interval: negative");
  }
  ES_RETURN_IF_ERROR(CheckJournalLimits(journal->limits(), options.limits));
  auto store = std::make_unique<FailoverEventStoreImpl>(
      std::move(primary), std::move(journal), options);
  ES_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<FailoverEventStore>(std::move(store));
}

}  // namespace eventstore
