#include "eventstore/store_replica.h"

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "eventstore/event_importer.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/status_macros.h"
#include "eventstore/store_inspector.h"

#ifdef EVENTSTORE_HAVE_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#endif

namespace eventstore {
namespace {

// How often a sync copies the primary's streams-table rows when no deletion
// was copied (retention changes are recorded by no event).
constexpr absl::Duration kStreamRowsInterval = absl::Seconds(10);

using internal::Mutex;
using internal::MutexLock;

constexpr char kComponent[] = "replica";

// ReadStream remembers the primary positions of at most this many replica
// positions (about 4 MiB), and forgets them all when full. Looking each
// one up again costs about as much as reading the event (measured on a
// SQLite replica: a stream's events are scattered over the log).
constexpr size_t kMaxCachedPositions = size_t{1} << 16;

// `status` as text for a log message, with any password in a connection
// string or URL it quotes masked.
std::string Masked(const absl::Status& status) {
#ifdef EVENTSTORE_HAVE_POSTGRES
  return MaskPostgresUrl(status.ToString());
#else
  return status.ToString();
#endif
}

absl::Status ValidateOptions(const ReplicaOptions& options) {
  if (options.batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("ReplicaOptions.batch_size must be at least 1, got ",
                     options.batch_size));
  }
  for (const auto& [name, value] : {std::pair<const char*, absl::Duration>{
                                        "poll_interval", options.poll_interval},
                                    {"max_backoff", options.max_backoff}}) {
    if (value < absl::ZeroDuration() || value == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ReplicaOptions.", name, " must be finite and not negative, got ",
          absl::FormatDuration(value)));
    }
  }
  for (size_t i = 0; i < options.stream_prefixes.size(); ++i) {
    if (options.stream_prefixes[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ReplicaOptions.stream_prefixes[", i,
          "] is empty (leave the list empty to copy every stream)"));
    }
  }
  return absl::OkStatus();
}

// The replica's last copied event, as the primary must still hold it.
struct LastEvent {
  Uuid id;
  std::string stream;
  int64_t version = 0;
  Position primary_position;
};

class StoreReplicaImpl final : public StoreReplica {
 public:
  StoreReplicaImpl(EventStore& primary, EventStore& replica,
                   ReplicaOptions options)
      : primary_(primary),
        replica_(replica),
        options_(std::move(options)),
        log_(options_.log_sink != nullptr ? *options_.log_sink
                                          : NullLogSink()) {
    status_.stream_prefixes = options_.stream_prefixes;
  }

  ~StoreReplicaImpl() override { Stop(); }

  absl::StatusOr<ReplicaSyncResult> SyncOnce(int64_t max_events) override {
    return Sync(max_events, /*background=*/false);
  }

  absl::StatusOr<ReplicaSyncResult> Sync(int64_t max_events, bool background) {
    MutexLock sync(&sync_mu_);
    absl::StatusOr<ReplicaSyncResult> result =
        SyncLocked(max_events, background);
    // After any error the primary may have changed (restored): check it
    // again before copying more.
    if (!result.ok()) {
      verified_ = false;
      // The replica's progress is read again too: another writer may
      // have imported into it (the batch then failed on a version).
      attached_ = false;
    }
    RecordOutcome(result.ok() ? absl::OkStatus() : result.status());
    return result;
  }

  absl::Status Start() override {
    MutexLock lock(&thread_mu_);
    if (thread_.joinable()) {
      return absl::FailedPreconditionError(
          "StoreReplica::Start: the background sync is already running");
    }
    stop_ = false;
    {
      MutexLock status(&mu_);
      status_.running = true;
    }
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }

  void Stop() override {
    std::thread thread;
    {
      MutexLock lock(&thread_mu_);
      stop_ = true;
      thread = std::move(thread_);
    }
    wake_.notify_all();
    if (thread.joinable()) thread.join();
    MutexLock status(&mu_);
    status_.running = false;
  }

  ReplicaStatus Status() const override {
    MutexLock lock(&mu_);
    return status_;
  }

  Position replica_position() const override {
    MutexLock lock(&mu_);
    return status_.replica_position;
  }

  bool WaitForPosition(Position position, absl::Duration timeout) override {
    std::unique_lock<Mutex> lock(mu_);
    return progress_.wait_for(lock, absl::ToChronoMicroseconds(timeout),
                              [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                return status_.replica_position >= position;
                              });
  }

  bool Covers(std::string_view stream) const override {
    if (options_.stream_prefixes.empty()) return true;
    for (const std::string& prefix : options_.stream_prefixes) {
      if (stream.substr(0, prefix.size()) == prefix) return true;
    }
    return false;
  }

  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override;
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override;
  absl::StatusOr<int64_t> StreamVersion(std::string_view stream) override;
  absl::StatusOr<bool> EventExists(const Uuid& id) override;

  absl::StatusOr<Position> TranslatePosition(
      Position primary_position) override {
    ES_ASSIGN_OR_RETURN(std::string id, MigrationId("TranslatePosition"));
    return replica_.importer().TranslatePosition(id, primary_position);
  }

 private:
  // Reads the primary's identity and the replica's progress, once.
  // REQUIRES: sync_mu_ held.
  absl::Status Attach() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  // Checks that the primary holds the replica's last event where the
  // replica recorded it. REQUIRES: sync_mu_ held, attached.
  absl::Status Verify(Position head) ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  // Records the descriptors of the types in `events` the replica lacks.
  absl::Status EnsureTypes(const std::vector<RecordedEvent>& events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  // With `background`, returns early (not caught up) once Stop() is called.
  absl::StatusOr<ReplicaSyncResult> SyncLocked(int64_t max_events,
                                               bool background)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  // Copies the primary's streams-table rows (deletions, retention) that the
  // replica covers into the replica (EventImporter::PutStreamRows: a held
  // row never moves backwards), so that it hides and refuses what the
  // primary does. A primary or replica without a stream lifecycle
  // (kUnimplemented) has nothing to copy. REQUIRES: sync_mu_ held.
  absl::Status CopyStreamRows() ABSL_EXCLUSIVE_LOCKS_REQUIRED(sync_mu_);
  // One page of the primary's log after `from`, filtered by prefix. Runs
  // on a second thread while the previous page is imported.
  absl::StatusOr<ReadAllPage> ReadBatch(Position from, int64_t max_count);
  // The primary's StoreId() (the replica's migration id) once a sync
  // attached; kFailedPrecondition naming `method` before.
  absl::StatusOr<std::string> MigrationId(std::string_view method) const;
  // kUnavailable: `what` is outside the stream prefixes the replica copies.
  absl::Status NotCovered(std::string_view what) const;
  // Replaces each event's replica position with its primary position (one
  // SourcePositions call for those not cached). kFailedPrecondition naming
  // an event that is not a copy of the primary's. With `cache`, the
  // positions looked up are remembered (ReadStream: streams are read again
  // and again; a ReadAll page is one range of the index, cheap to read).
  absl::Status ToPrimaryPositions(const std::string& migration_id,
                                  std::vector<RecordedEvent>& events,
                                  bool cache);
  // Records the outcome of a sync in the status, logs changes.
  // REQUIRES: mu_ not held.
  void RecordOutcome(const absl::Status& status);
  void Loop();
  bool StopRequested() {
    MutexLock lock(&thread_mu_);
    return stop_;
  }

  EventStore& primary_;
  EventStore& replica_;
  const ReplicaOptions options_;
  LogSink& log_;

  // Serialises syncs.
  Mutex sync_mu_;
  bool attached_ ABSL_GUARDED_BY(sync_mu_) = false;
  bool verified_ ABSL_GUARDED_BY(sync_mu_) = false;
  // When the stream rows were last copied (CopyStreamRows); InfinitePast
  // until the first sync after attaching.
  absl::Time rows_copied_at_ ABSL_GUARDED_BY(sync_mu_) = absl::InfinitePast();
  bool warned_empty_ ABSL_GUARDED_BY(sync_mu_) = false;
  Position read_position_ ABSL_GUARDED_BY(sync_mu_);
  std::optional<LastEvent> last_event_ ABSL_GUARDED_BY(sync_mu_);
  absl::flat_hash_set<std::string> known_types_ ABSL_GUARDED_BY(sync_mu_);

  // Replica position -> primary position, for ToPrimaryPositions; the map
  // of `cached_migration_id_` (the copy of one primary never changes).
  Mutex cache_mu_;
  std::string cached_migration_id_ ABSL_GUARDED_BY(cache_mu_);
  absl::flat_hash_map<Position, Position> cached_positions_
      ABSL_GUARDED_BY(cache_mu_);

  mutable Mutex mu_;
  std::condition_variable_any progress_;
  ReplicaStatus status_ ABSL_GUARDED_BY(mu_);
  std::string migration_id_ ABSL_GUARDED_BY(mu_);
  // True while a run of failed syncs lasts (logged once).
  bool failing_ ABSL_GUARDED_BY(mu_) = false;

  Mutex thread_mu_;
  std::condition_variable_any wake_;
  bool stop_ ABSL_GUARDED_BY(thread_mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(thread_mu_);
};

absl::Status StoreReplicaImpl::Attach() {
  if (attached_) return absl::OkStatus();
  ES_ASSIGN_OR_RETURN(std::string id, primary_.importer().StoreId());
  EventImporter& importer = replica_.importer();
  ES_ASSIGN_OR_RETURN(std::optional<MigrationState> state,
                      importer.GetMigration(id));
  ES_ASSIGN_OR_RETURN(Position replica_head, replica_.HeadPosition());
  if (!state.has_value() && !replica_head.IsStart()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the replica holds events (head ", replica_head.ToString(),
                     ") that are not copies of ", options_.primary_description,
                     " (store id ", id, "); nothing was copied"));
  }
  Position position;
  int64_t events = 0;
  if (state.has_value()) {
    position = state->last_source_position;
    events = state->events;
    // The replica's last event: the one at its head (the replica holds
    // only copies). Its positions are single sequence numbers on SQLite.
    if (replica_head.commit() == replica_head.prepare() &&
        replica_head.commit() > 0) {
      ReadAllOptions read;
      read.from_position = Position::At(replica_head.commit() - 1);
      read.max_count = 1;
      ES_ASSIGN_OR_RETURN(ReadAllPage page, replica_.ReadAll(read));
      if (!page.events.empty() && page.events[0].position == replica_head) {
        const RecordedEvent& e = page.events[0];
        last_event_ = LastEvent{e.id, e.stream, e.version, position};
      }
    }
  } else if (!warned_empty_) {
    warned_empty_ = true;
    log_.Log(LogLevel::kWarning, kComponent,
             absl::StrCat("the replica is empty (a new or deleted file): "
                          "copying ",
                          options_.primary_description, " (store id ", id,
                          ") from the start of its log"));
  }
  absl::StatusOr<std::vector<RecordedType>> types =
      replica_.inspector().RecordedTypes();
  if (types.ok()) {
    for (const RecordedType& t : *types) known_types_.insert(t.type);
  }
  read_position_ = position;
  attached_ = true;
  rows_copied_at_ = absl::InfinitePast();
  MutexLock lock(&mu_);
  migration_id_ = id;
  status_.replica_position = position;
  status_.read_position = position;
  status_.events = events;
  return absl::OkStatus();
}

absl::Status StoreReplicaImpl::Verify(Position head) {
  const Position position = replica_position();
  if (head < position) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the replica is ahead of ", options_.primary_description,
        ": it holds events up to primary position ", position.ToString(),
        " but the primary's head is ", head.ToString(),
        " (restored from an older backup?); the replica was not changed"));
  }
  if (last_event_.has_value()) {
    ReadStreamOptions read;
    read.from_version = last_event_->version;
    read.max_count = 1;
    ES_ASSIGN_OR_RETURN(std::vector<RecordedEvent> events,
                        primary_.ReadStream(last_event_->stream, read));
    if (events.empty() || events[0].id != last_event_->id ||
        events[0].position != last_event_->primary_position) {
      std::string found =
          events.empty()
              ? std::string("no such event")
              : absl::StrCat("event ", events[0].id.ToString(), " at position ",
                             events[0].position.ToString());
      return absl::FailedPreconditionError(absl::StrCat(
          "the replica's last event ", last_event_->id.ToString(), " (",
          last_event_->stream, " version ", last_event_->version,
          ") is at primary position ", position.ToString(), " but ",
          options_.primary_description, " holds ", found,
          " there (restored from an older backup?); the replica was not "
          "changed"));
    }
  }
  verified_ = true;
  return absl::OkStatus();
}

absl::Status StoreReplicaImpl::EnsureTypes(
    const std::vector<RecordedEvent>& events) {
  bool missing = false;
  for (const RecordedEvent& e : events) {
    if (!known_types_.contains(e.type)) missing = true;
  }
  if (!missing) return absl::OkStatus();
  absl::StatusOr<std::vector<RecordedType>> types =
      primary_.inspector().RecordedTypes();
  if (!types.ok()) {
    // A primary that cannot list its types: events are copied without
    // descriptors (tools then cannot render them as JSON).
    if (types.status().code() != absl::StatusCode::kUnimplemented) {
      return types.status();
    }
  } else {
    std::vector<RecordedType> needed;
    for (RecordedType& t : *types) {
      if (!known_types_.contains(t.type)) needed.push_back(std::move(t));
    }
    if (!needed.empty()) {
      ES_RETURN_IF_ERROR(replica_.importer().PutRecordedTypes(needed));
    }
    for (const RecordedType& t : needed) known_types_.insert(t.type);
  }
  // Types the primary did not record are not looked up again.
  for (const RecordedEvent& e : events) known_types_.insert(e.type);
  return absl::OkStatus();
}

absl::StatusOr<ReadAllPage> StoreReplicaImpl::ReadBatch(Position from,
                                                        int64_t max_count) {
  ReadAllOptions read;
  read.from_position = from;
  read.max_count = max_count;
  if (options_.stream_prefixes.size() == 1) {
    read.filter.stream_prefix = options_.stream_prefixes[0];
    return primary_.ReadAll(read);
  }
  ES_ASSIGN_OR_RETURN(ReadAllPage page, primary_.ReadAll(read));
  if (!options_.stream_prefixes.empty()) {
    page.events.erase(std::remove_if(page.events.begin(), page.events.end(),
                                     [this](const RecordedEvent& e) {
                                       return !Covers(e.stream);
                                     }),
                      page.events.end());
  }
  return page;
}

absl::StatusOr<ReplicaSyncResult> StoreReplicaImpl::SyncLocked(
    int64_t max_events, bool background) {
  ES_RETURN_IF_ERROR(Attach());
  ES_ASSIGN_OR_RETURN(Position head, primary_.HeadPosition());
  if (!verified_) ES_RETURN_IF_ERROR(Verify(head));
  std::string migration_id;
  {
    MutexLock lock(&mu_);
    migration_id = migration_id_;
  }
  ReplicaSyncResult result;
  if (max_events <= 0) return result;
  // The next page is read from the primary while this one is imported.
  std::future<absl::StatusOr<ReadAllPage>> next;
  absl::StatusOr<ReadAllPage> current = ReadBatch(
      read_position_, std::min<int64_t>(options_.batch_size, max_events));
  while (true) {
    ES_ASSIGN_OR_RETURN(ReadAllPage page, std::move(current));
    const absl::Time now = absl::Now();
    const int64_t remaining = max_events - result.events_copied -
                              static_cast<int64_t>(page.events.size());
    const bool stopping = background && StopRequested();
    if (!page.end_of_log && remaining > 0 && !stopping) {
      next = std::async(
          std::launch::async,
          [this, from = page.next_position,
           limit = std::min<int64_t>(options_.batch_size, remaining)] {
            return ReadBatch(from, limit);
          });
    }
    if (!page.events.empty()) {
      ES_RETURN_IF_ERROR(EnsureTypes(page.events));
      ES_RETURN_IF_ERROR(replica_.importer().ImportEvents(
          migration_id, options_.primary_description, page.events));
      // A deletion copied: its row follows at once, so that the replica
      // stops showing the stream's events.
      for (const RecordedEvent& event : page.events) {
        if (event.type == kStreamDeletedType) {
          rows_copied_at_ = absl::InfinitePast();
          break;
        }
      }
      const RecordedEvent& last = page.events.back();
      last_event_ =
          LastEvent{last.id, last.stream, last.version, last.position};
      result.events_copied += static_cast<int64_t>(page.events.size());
    }
    // A page filtered here may have passed over events (read, not copied):
    // its own last position is next_position.
    read_position_ = std::max(read_position_, page.next_position);
    if (head < read_position_) head = read_position_;
    int64_t lag_events = 0;
    absl::Duration lag_time;
    if (!page.end_of_log) {
      lag_events = static_cast<int64_t>(head.prepare()) -
                   static_cast<int64_t>(read_position_.prepare());
      lag_events = std::max<int64_t>(lag_events, 0);
      if (!page.events.empty()) {
        lag_time = std::max(now - page.events.back().recorded_at,
                            absl::ZeroDuration());
      }
    }
    {
      MutexLock lock(&mu_);
      if (!page.events.empty()) {
        status_.replica_position = page.events.back().position;
        status_.events += static_cast<int64_t>(page.events.size());
      }
      status_.read_position = read_position_;
      status_.primary_head = head;
      status_.lag_events = lag_events;
      status_.lag_time = lag_time;
      status_.last_contact = now;
      if (page.end_of_log) status_.last_sync = now;
    }
    progress_.notify_all();
    if (options_.instrumentation != nullptr) {
      options_.instrumentation->OnReplicaBatch(
          static_cast<int64_t>(page.events.size()), lag_events, lag_time);
      if (page.end_of_log) options_.instrumentation->OnReplicaCaughtUp(now);
    }
    if (page.end_of_log) {
      result.caught_up = true;
      break;
    }
    if (!next.valid()) break;
    current = next.get();
  }
  // Deletions copied in this sync, or retention changed on the primary
  // (which no event records): the rows follow, at most every
  // kStreamRowsInterval when nothing was deleted.
  if (absl::Now() - rows_copied_at_ >= kStreamRowsInterval) {
    ES_RETURN_IF_ERROR(CopyStreamRows());
  }
  return result;
}

absl::Status StoreReplicaImpl::CopyStreamRows() {
  constexpr int kPage = 1000;
  std::string after;
  while (true) {
    absl::StatusOr<std::vector<StreamRowRecord>> rows =
        primary_.importer().ListStreamRows(after, kPage);
    if (absl::IsUnimplemented(rows.status())) break;
    ES_RETURN_IF_ERROR(rows.status());
    if (rows->empty()) break;
    after = rows->back().stream;
    const bool last_page = static_cast<int>(rows->size()) < kPage;
    if (!options_.stream_prefixes.empty()) {
      rows->erase(std::remove_if(rows->begin(), rows->end(),
                                 [this](const StreamRowRecord& row) {
                                   return !Covers(row.stream);
                                 }),
                  rows->end());
    }
    if (!rows->empty()) {
      absl::StatusOr<PutCounts> put = replica_.importer().PutStreamRows(*rows);
      if (absl::IsUnimplemented(put.status())) break;
      ES_RETURN_IF_ERROR(put.status());
    }
    if (last_page) break;
  }
  rows_copied_at_ = absl::Now();
  return absl::OkStatus();
}

absl::StatusOr<std::string> StoreReplicaImpl::MigrationId(
    std::string_view method) const {
  MutexLock lock(&mu_);
  if (migration_id_.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "StoreReplica::", std::string(method),
        ": the replica has not reached the primary yet (no sync succeeded), "
        "so the origin of its copy is not known"));
  }
  return migration_id_;
}

absl::Status StoreReplicaImpl::NotCovered(std::string_view what) const {
  return absl::UnavailableError(absl::StrCat(
      std::string(what),
      " is not in the local replica, which copies only streams starting "
      "with ",
      absl::StrJoin(options_.stream_prefixes, ", ")));
}

absl::Status StoreReplicaImpl::ToPrimaryPositions(
    const std::string& migration_id, std::vector<RecordedEvent>& events,
    bool cache) {
  if (events.empty()) return absl::OkStatus();
  // The events whose primary position is not cached, and their positions.
  std::vector<size_t> missing;
  std::vector<Position> positions;
  if (cache) {
    MutexLock lock(&cache_mu_);
    if (cached_migration_id_ != migration_id) {
      cached_positions_.clear();
      cached_migration_id_ = migration_id;
    }
    for (size_t i = 0; i < events.size(); ++i) {
      auto it = cached_positions_.find(events[i].position);
      if (it != cached_positions_.end()) {
        events[i].position = it->second;
      } else {
        missing.push_back(i);
        positions.push_back(events[i].position);
      }
    }
  } else {
    missing.reserve(events.size());
    positions.reserve(events.size());
    for (size_t i = 0; i < events.size(); ++i) {
      missing.push_back(i);
      positions.push_back(events[i].position);
    }
  }
  if (missing.empty()) return absl::OkStatus();
  ES_ASSIGN_OR_RETURN(
      std::vector<Position> primary,
      replica_.importer().SourcePositions(migration_id, positions));
  for (size_t j = 0; j < missing.size(); ++j) {
    RecordedEvent& e = events[missing[j]];
    if (primary[j].IsStart()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the replica holds event ", e.id.ToString(), " (", e.stream,
          " version ", e.version, ") at position ", e.position.ToString(),
          " that is not a copy of ", options_.primary_description,
          " (store id ", migration_id, ")"));
    }
    e.position = primary[j];
  }
  if (cache) {
    MutexLock lock(&cache_mu_);
    if (cached_migration_id_ == migration_id) {
      if (cached_positions_.size() + missing.size() > kMaxCachedPositions) {
        cached_positions_.clear();
      }
      if (missing.size() <= kMaxCachedPositions) {
        for (size_t j = 0; j < missing.size(); ++j) {
          cached_positions_.emplace(positions[j], primary[j]);
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RecordedEvent>> StoreReplicaImpl::ReadStream(
    std::string_view stream, const ReadStreamOptions& options) {
  ES_ASSIGN_OR_RETURN(std::string id, MigrationId("ReadStream"));
  if (!Covers(stream)) {
    return NotCovered(absl::StrCat("stream '", std::string(stream), "'"));
  }
  // A store that keeps source positions beside its events answers at
  // once; another needs a lookup of the positions.
  absl::StatusOr<std::vector<RecordedEvent>> at_source =
      replica_.importer().ReadStreamAtSourcePositions(id, stream, options);
  if (!absl::IsUnimplemented(at_source.status())) return at_source;
  ES_ASSIGN_OR_RETURN(std::vector<RecordedEvent> events,
                      replica_.ReadStream(stream, options));
  ES_RETURN_IF_ERROR(ToPrimaryPositions(id, events, /*cache=*/true));
  return events;
}

absl::StatusOr<ReadAllPage> StoreReplicaImpl::ReadAll(
    const ReadAllOptions& options) {
  ES_ASSIGN_OR_RETURN(std::string id, MigrationId("ReadAll"));
  if (!options_.stream_prefixes.empty() &&
      !Covers(options.filter.stream_prefix)) {
    return NotCovered(
        options.filter.stream_prefix.empty()
            ? std::string("the whole log (ReadAll without a stream prefix)")
            : absl::StrCat("ReadAll of stream prefix '",
                           options.filter.stream_prefix, "'"));
  }
  // Read before the replica is: every event up to it that the replica
  // copies is committed there already, so an empty page at the end of the
  // replica's log may move the reader past the events it passed over.
  Position read_position;
  {
    MutexLock lock(&mu_);
    read_position = status_.read_position;
  }
  ReadAllOptions read = options;
  ES_ASSIGN_OR_RETURN(read.from_position, replica_.importer().TranslatePosition(
                                              id, options.from_position));
  ES_ASSIGN_OR_RETURN(ReadAllPage page, replica_.ReadAll(read));
  ES_RETURN_IF_ERROR(ToPrimaryPositions(id, page.events, /*cache=*/false));
  if (!page.events.empty()) {
    page.next_position = page.events.back().position;
  } else if (page.end_of_log) {
    page.next_position = std::max(options.from_position, read_position);
  } else {
    page.next_position = options.from_position;
  }
  return page;
}

absl::StatusOr<int64_t> StoreReplicaImpl::StreamVersion(
    std::string_view stream) {
  ES_RETURN_IF_ERROR(MigrationId("StreamVersion").status());
  if (!Covers(stream)) {
    return NotCovered(absl::StrCat("stream '", std::string(stream), "'"));
  }
  return replica_.StreamVersion(stream);
}

absl::StatusOr<bool> StoreReplicaImpl::EventExists(const Uuid& id) {
  ES_RETURN_IF_ERROR(MigrationId("EventExists").status());
  return replica_.EventExists(id);
}

void StoreReplicaImpl::RecordOutcome(const absl::Status& status) {
  std::optional<std::string> message;
  LogLevel level = LogLevel::kInfo;
  {
    MutexLock lock(&mu_);
    status_.last_error = status;
    if (!status.ok() && !failing_) {
      failing_ = true;
      level = status.code() == absl::StatusCode::kFailedPrecondition
                  ? LogLevel::kError
                  : LogLevel::kWarning;
      message = absl::StrCat("copying from ", options_.primary_description,
                             " failed (retried): ", Masked(status));
    } else if (status.ok() && failing_) {
      failing_ = false;
      message = absl::StrCat("copying from ", options_.primary_description,
                             " works again, at primary position ",
                             status_.replica_position.ToString());
    }
  }
  if (!status.ok() && options_.instrumentation != nullptr) {
    options_.instrumentation->OnReplicaError();
  }
  if (message.has_value()) log_.Log(level, kComponent, *message);
}

void StoreReplicaImpl::Loop() {
  absl::Duration backoff = options_.poll_interval;
  while (true) {
    {
      MutexLock lock(&thread_mu_);
      if (stop_) return;
    }
    absl::StatusOr<ReplicaSyncResult> result =
        Sync(kUnlimited, /*background=*/true);
    absl::Duration wait = absl::ZeroDuration();
    if (result.ok()) {
      backoff = options_.poll_interval;
      if (result->caught_up) {
        absl::StatusOr<bool> woken = primary_.WaitForEvents(
            Status().read_position, options_.poll_interval);
        if (!woken.ok()) {
          {
            MutexLock sync(&sync_mu_);
            verified_ = false;
          }
          RecordOutcome(woken.status());
          wait = backoff;
        }
      }
    } else {
      wait = backoff;
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    if (wait > absl::ZeroDuration()) {
      std::unique_lock<Mutex> lock(thread_mu_);
      wake_.wait_for(lock, absl::ToChronoMicroseconds(wait),
                     [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_; });
    }
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<StoreReplica>> StoreReplica::Create(
    EventStore& primary, EventStore& replica, ReplicaOptions options) {
  ES_RETURN_IF_ERROR(ValidateOptions(options));
  return std::make_unique<StoreReplicaImpl>(primary, replica,
                                            std::move(options));
}

}  // namespace eventstore
