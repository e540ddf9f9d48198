// FailoverEventStore: a PostgreSQL (or any) primary with a local journal
// that takes appends while the primary is unreachable, and replays them when
// it is back. For development and edge deployments that must keep accepting
// writes through an outage; off by default.
//
//   ES_ASSIGN_OR_RETURN(auto primary, OpenEventStore("postgresql://..."));
//   SqliteOptions journal_options;
//   journal_options.path = "journal.db";
//   journal_options.limits =
//       FailoverEventStore::JournalLimits(primary->limits());
//   ES_ASSIGN_OR_RETURN(auto journal, SqliteEventStore::Open(journal_options));
//   FailoverOptions options;
//   options.allow_fallback = true;
//   options.limits = primary->limits();
//   ES_ASSIGN_OR_RETURN(
//       std::unique_ptr<FailoverEventStore> store,
//       FailoverEventStore::Create(std::move(primary), std::move(journal),
//                                  options));
//   store->Append("order-1", ExpectedVersion::Exactly(3), events);
//   store->Status();  // kPrimary, kFallback or kRecovering, with counts
//
// Modes:
// - kPrimary: every call goes to the primary. An append that fails with
//   kUnavailable (the primary cannot be reached, or the connection broke)
//   is written to the journal instead, and the store enters kFallback.
// - kFallback: appends go to the journal at once (callers do not wait for
//   connection timeouts). A health check probes the primary every
//   health_check_interval; when it answers, the store enters kRecovering.
// - kRecovering: the journal is replayed into the primary in the order it
//   was written, each append with its original expected version, stream,
//   event ids and outbox messages, in batches: a page of the journal
//   (replay_page_size events) goes to the primary's AppendEach, in calls of
//   at most the primary's limits.max_batch_events events. A new append to a
//   stream with journaled appends pending waits (recovering_append_wait,
//   default 2 s) until the replay has taken them and then goes to the
//   primary, or, when the wait runs out, is journaled behind them (order
//   is kept per stream either way); one to any other stream goes straight
//   to the primary (and to the journal if that fails with kUnavailable).
//   The wait keeps writers from feeding the journal as fast as the replay
//   drains it. When the journal is drained the store returns to kPrimary;
//   when the primary fails again, to kFallback.
//
// A journaled append returns an AppendResult with `journaled` set and empty
// positions; its next_expected_version is what the append yields when it
// replays as written (-1 when that cannot be known: an Any or StreamExists
// append to a stream with no earlier pending append of known version). An
// append whose expected version contradicts that version (Exactly(v) with
// another v, NoStream) is refused at once with WrongExpectedVersionError
// (kAborted), since it would be parked on replay, unless it matches the
// version a read of the stream gives (pending appends bound to be parked
// left out: see below), which then decides; `actual` is the version read
// (or, when the stream cannot be read, the one the pending appends lead
// to). A retry of a pending append is no conflict, nor is an append sent
// to the primary whose outcome is unknown (kUnavailable: it may have
// committed), which is journaled as it is; its replay decides.
// Replays are idempotent by event id: an append that committed on the
// primary before the outage (its outcome unknown to the caller) replays as
// a no-op, and replaying again after a crash writes nothing twice. An
// append the primary refuses on replay (its expected version no longer
// holds, an id used by another event, a limit) is parked, never dropped:
// its journaled events stay in the journal and enter the journal's
// dead-letter store under the projection name kReplayName, with the reason;
// `eventstore dlq JOURNAL_URL list` shows them. Replay then goes on with the
// next append. Per slot of a replayed batch: taken (or an idempotent
// retry): replayed; refused (wrong expected version, an id in use, a
// limit): parked; any other error, or AppendEach failing as a whole
// (kUnavailable: which appends committed is unknown), stops the replay
// there: the checkpoint only advances over the appends decided, and the
// rest is replayed again later, idempotently.
//
// Reads of a stream with journaled appends pending (ReadStream,
// StreamVersion, EventExists) include them, so that a process reads its
// own writes in every mode: the stream's events (from the primary, or from
// the replica when the primary is down), then the pending ones whose
// expected version holds after them (those that will be parked are left
// out), with the versions they will get on replay, empty positions
// (Position::Start()) and no recorded_at. EventExists is true for the id
// of a pending journaled event. Without a replica, when the primary cannot
// be read (kUnavailable), the journal alone answers what it knows exactly:
// StreamVersion when the stream's first pending append had Exactly(v) or
// NoStream, ReadStream only when that was NoStream (the whole stream is in
// the journal); anything else fails with the primary's kUnavailable.
//
// Reads during an outage, with a replica (FailoverOptions::replica, a
// StoreReplica following the primary into a local store). A read the
// primary cannot answer (kUnavailable), and every read while in kFallback
// (the primary is known to be down: no connection timeout per read), is
// answered by the replica as of its last sync, merged with the journal:
// - ReadStream and StreamVersion of a stream the replica covers: the
//   replica's copy (with the primary's positions), then the pending
//   journaled appends as above.
// - EventExists: true for a pending journaled id or an id the replica
//   holds; false when the replica covers every stream (no prefixes);
//   otherwise kUnavailable (the event may be in a stream not copied).
// - ReadAll whose filter.stream_prefix the replica covers (any filter when
//   it has no prefixes): the replica's pages, with the primary's
//   positions; the page that reaches the replica's end (end_of_log) also
//   holds every pending journaled event the filter matches, in the order
//   journaled, with empty positions, and its next_position stays the
//   replica's last primary position: a reader that resumes from it once
//   the primary is back reads those events again, replayed, with their
//   final positions (journaled events are delivered at least once: dedupe
//   by event id).
// - Anything else (a stream or prefix the replica does not cover,
//   HeadPosition, the repositories, transactions, leases): kUnavailable,
//   saying what the replica does not cover. Never a partial answer.
// With replica_read_staleness above zero, while the primary is up, reads
// of covered streams without pending appends go to the replica whenever
// it caught up within that bound.
//
// Expected versions through an outage: an append to be journaled for a
// stream the replica covers, with nothing pending, is checked against the
// replica's version of the stream: Exactly(v) below it, or NoStream when
// it is above 0, is refused at once (WrongExpectedVersionError, `actual`
// the replica's version): the primary holds at least what the replica
// copied, so the append would surely be parked. Anything else is journaled
// (the replica may lag the primary); replay parks what conflicts with
// writes the replica had not seen.
//
// The journal is an EventStore of its own, normally a SQLite file next to
// the application: an append journaled for stream S lives in the journal's
// stream "failover:S" (so the journal's limits must exceed the primary's:
// JournalLimits gives them, and Create checks them), the replay progress in
// its checkpoint store
// (kReplayName), in the journal's global order. Give each
// FailoverEventStore a journal of its own. A journal holding appends not yet
// replayed (the process stopped during an outage) is replayed after Create,
// whatever allow_fallback says; until then, appends to their streams are
// journaled behind them.
//
// Thread-safe. Locking: one mutex guards the mode, the counts and the set
// of streams with pending journaled appends (with the version they lead
// to). An append decides "journal or primary" and, when journaling, writes
// the journal under one hold of it, so that a stream is marked pending
// before any later append of it looks. The replay (one at a time) takes it
// only to record appends decided, after the primary committed them and the
// checkpoint moved past them; only then is a stream unmarked. So an append
// sent to the primary for a stream finds every earlier journaled append of
// that stream already in the primary: it never overtakes one. (Appends of
// one stream made concurrently from several threads have no order between
// them, as on any store.) A read of a pending stream reads the journal
// before the primary and leaves out journaled appends whose ids the
// primary already holds (replayed in between).

#ifndef EVENTSTORE_FAILOVER_EVENT_STORE_H_
#define EVENTSTORE_FAILOVER_EVENT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/limits.h"
#include "eventstore/log_sink.h"
#include "eventstore/store_replica.h"

namespace eventstore {

struct FailoverOptions {
  // Whether an unreachable primary sends appends to the journal. Default
  // false: appends fail with kUnavailable, as without the decorator (a
  // journal left from an earlier run is still replayed).
  bool allow_fallback = false;
  // How often the background thread probes the primary while in kFallback
  // or kRecovering, and retries a replay that stopped. Zero: no background
  // thread; call ReplayNow() to recover. Default 1 s.
  absl::Duration health_check_interval = absl::Seconds(1);
  // Journal events read per page while replaying; a page is one batch
  // (AppendEach), split further only by the primary's max_batch_events.
  // Default 500.
  int64_t replay_page_size = 500;
  // In kRecovering, an append to a stream with journaled appends pending
  // first waits, at most this long, until the replay has taken them, and
  // then goes to the primary; only after the wait is it journaled behind
  // them. Writers that journal as fast as the primary takes the replay
  // would otherwise keep the store in kRecovering for as long as they
  // write. Only with the background thread (health_check_interval > 0);
  // zero: never wait. Default 2 s.
  absl::Duration recovering_append_wait = absl::Seconds(2);
  // Checked before an append is journaled, so that a bad append is refused
  // with kInvalidArgument at once, not parked at replay. Give the primary's
  // (primary->limits()); the journal's must cover JournalLimits(limits).
  StoreLimits limits;
  // Where the store reports (instrumentation.h): OnFailoverMode at Create
  // (the starting mode) and at every change, OnFailoverJournaled per
  // journaled append, OnFailoverReplayed per replayed batch (a page of the
  // journal: the appends it replayed), OnFailoverParked per parked append
  // and OnFailoverPending with the journal's depth after each journaled
  // append and each replayed batch (and at Create). Called with the store's
  // lock held, so that the last value reported is the current one: an
  // implementation must not call back into this store. Default null: nothing is
  // measured (a null check).
  std::shared_ptr<Instrumentation> instrumentation;
  // A local replica of the primary (store_replica.h) that serves reads
  // while the primary is unreachable, and lets the journal refuse at once
  // an append whose expected version the replica already contradicts.
  // Null: none (reads of streams without pending journaled appends fail
  // with kUnavailable during an outage). The store is shared so that the
  // options stay copyable; give it to no other writer. Create starts the
  // replica's background sync (replica_options; their instrumentation and
  // log_sink default to this struct's when null) and Status() reports it.
  std::shared_ptr<EventStore> replica;
  ReplicaOptions replica_options;
  // While the primary is up, reads of streams the replica covers go to the
  // replica when it caught up with the primary at most this long ago
  // (ReplicaStatus::last_sync), taking load off the primary at the price
  // of that staleness; a read of a stream with journaled appends pending
  // never does. Zero (default): reads go to the primary while it answers.
  absl::Duration replica_read_staleness = absl::ZeroDuration();
  // Where the store logs, component "failover": entering kFallback
  // (warning, with the primary's error, passwords masked), kRecovering and
  // kPrimary (info), replay progress per page (info), a replay stopped by
  // an error other than an unreachable primary (warning), a parked append
  // (error, naming the stream and the append's first event id). Never
  // called with the store's lock held. Default null: nothing is logged.
  std::shared_ptr<LogSink> log_sink;
};

struct FailoverStatus {
  enum class Mode { kPrimary, kFallback, kRecovering };
  Mode mode = Mode::kPrimary;
  // When the store entered `mode`.
  absl::Time since;
  // Counts since Create: appends written to the journal, replayed into the
  // primary, and parked because the primary refused them on replay.
  int64_t journaled = 0;
  int64_t replayed = 0;
  int64_t parked = 0;
  // Appends in the journal not yet replayed (those of earlier runs too).
  int64_t pending = 0;
  // The error that sent the store to kFallback, or that stopped the last
  // replay; OK when none.
  absl::Status last_error;
  // The replica's status (lag, last sync, prefixes) when the store has one
  // (FailoverOptions::replica).
  std::optional<ReplicaStatus> replica;
};

// "primary", "fallback" or "recovering".
std::string_view FailoverModeName(FailoverStatus::Mode mode);

class FailoverEventStore : public ForwardingEventStore {
 public:
  // A journaled append to stream S is written to the journal's stream
  // kJournalPrefix + S (so that the journal recognises a retried append as
  // the primary would). kReplayName names the replay's checkpoint and dead
  // letters in the journal.
  static constexpr std::string_view kJournalPrefix = "failover:";
  static constexpr std::string_view kReplayName = "failover-replay";
  // Metadata properties the journal adds to each journaled event (removed
  // again on replay); applications must not use this prefix.
  static constexpr std::string_view kPropertyPrefix = "eventstore.failover.";

  // The limits a journal needs to take every append that `primary` (the
  // primary's limits, FailoverOptions::limits) allows: a stream name 9
  // bytes longer (kJournalPrefix), metadata longer by the properties the
  // journal adds (the stream name among them), and a payload larger by
  // kOutboxEnvelopeBytes, room for an outbox message's destination, key and
  // headers (an outbox message journaled is one event whose payload holds
  // them all).
  static StoreLimits JournalLimits(const StoreLimits& primary);
  static constexpr size_t kOutboxEnvelopeBytes = 64 << 10;

  // Takes both stores. Reads the journal's replay checkpoint: when appends
  // are pending, starts in kRecovering. Starts the health-check thread
  // unless options.health_check_interval is zero. kInvalidArgument for a
  // missing store or bad options, and for a journal whose limits do not
  // cover JournalLimits(options.limits) (naming the limit); the journal's
  // error when it cannot be read.
  static absl::StatusOr<std::unique_ptr<FailoverEventStore>> Create(
      std::unique_ptr<EventStore> primary, std::unique_ptr<EventStore> journal,
      const FailoverOptions& options);

  // Stops the health-check thread. Pending appends stay in the journal and
  // are replayed by the next FailoverEventStore over it.
  ~FailoverEventStore() override = default;

  virtual FailoverStatus Status() const = 0;

  // Probes the primary and, when it answers, replays the journal now (what
  // the health check does). OK when the store is (back) in kPrimary; the
  // primary's error (kUnavailable when unreachable) when it could not take
  // the replay, which stops at the first append not taken.
  virtual absl::Status ReplayNow() = 0;

  EventStore& primary() { return *target(); }
  virtual EventStore& journal() = 0;
  // The replica that follows the primary; null without one.
  virtual StoreReplica* replica() = 0;

 protected:
  // Every call but Append and the reads of streams with pending journaled
  // appends goes to `primary`.
  explicit FailoverEventStore(EventStore* primary)
      : ForwardingEventStore(primary) {}
};

}  // namespace eventstore

#endif  // EVENTSTORE_FAILOVER_EVENT_STORE_H_
