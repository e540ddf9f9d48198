// EventStore: the append-only store of event streams.
//
//   absl::StatusOr<std::unique_ptr<eventstore::EventStore>> store =
//       eventstore::OpenEventStore("sqlite:events.db");
//   if (!store.ok()) return store.status();
//   std::vector<eventstore::EventData> events = {
//       eventstore::EventData::From(placed)};
//   absl::StatusOr<eventstore::AppendResult> r = (*store)->Append(
//       "order-1", eventstore::ExpectedVersion::NoStream(), events);
//   absl::StatusOr<std::vector<eventstore::RecordedEvent>> read =
//       (*store)->ReadStream("order-1");
//
// Every method is thread-safe. Status codes follow errors.h.

#ifndef EVENTSTORE_EVENT_STORE_H_
#define EVENTSTORE_EVENT_STORE_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/event_data.h"
#include "eventstore/expected_version.h"
#include "eventstore/limits.h"
#include "eventstore/outbox_message.h"
#include "eventstore/position.h"
#include "eventstore/recorded_event.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/subject_key_store.h"
#include "eventstore/uuid.h"

namespace eventstore {

class CheckpointStore;
class DeadLetterStore;
class EventImporter;
class Lease;
class OutboxStore;
class SnapshotStore;
class SqlTransaction;
class StoreInspector;
class SubjectKeyStore;

inline constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

struct AppendResult {
  // The stream's version after the append: pass it as Exactly(...) next.
  int64_t next_expected_version = 0;
  // Positions of the first and last appended events.
  Position first_position;
  Position last_position;
  // True when a FailoverEventStore wrote the append to its journal because
  // the primary was unreachable: the positions are then empty, and
  // next_expected_version is what the append yields when it replays as
  // written, or -1 when that cannot be known (failover_event_store.h).
  bool journaled = false;
  // True when the append was an exact retry of one already committed (same
  // ids, same stream, same order): the store wrote nothing and returned the
  // original result. Not compared by ==, so that a retry's result equals
  // the original's. For instrumentation (ClassifyAppend).
  bool idempotent_retry = false;

  // Compares what the append yields; idempotent_retry is left out.
  friend bool operator==(const AppendResult& a, const AppendResult& b) {
    return a.next_expected_version == b.next_expected_version &&
           a.first_position == b.first_position &&
           a.last_position == b.last_position && a.journaled == b.journaled;
  }
};

// One append: events for one stream, under one expected version, and
// outbox messages. Atomic: all of them are committed or none.
struct AppendRequest {
  std::string_view stream;
  ExpectedVersion expected = ExpectedVersion::Any();
  absl::Span<const EventData> events;
  // Enqueued in the outbox in the same transaction (see outbox_store.h). An
  // idempotent retry of a committed append enqueues nothing again.
  absl::Span<const OutboxMessage> outbox = {};
  // Key table rows of the events' data subjects, written in the same
  // transaction (see SubjectKeyWrite): each subject recorded as holding
  // events of `stream` (SubjectKeyStore::AddStream), and its key stored
  // when one is given. Set by crypto::EncryptedEventStore; a subject at
  // most once. A store without a key table refuses a request that sets it
  // (kUnimplemented).
  absl::Span<const SubjectKeyWrite> subject_keys = {};
};

enum class Direction { kForward, kBackward };

struct ReadStreamOptions {
  // First version returned. Default: 1 reading forward, the last event
  // reading backward.
  std::optional<int64_t> from_version;
  // Most events returned. Default: all.
  int64_t max_count = kUnlimited;
  Direction direction = Direction::kForward;
};

// Which events ReadAll returns; the empty filter passes everything. Set
// fields combine with AND.
struct ReadAllFilter {
  // Only streams whose name starts with this (a category, e.g. "order-").
  std::string stream_prefix;
  // Only these event types (protobuf full names).
  std::vector<std::string> event_types;
  // Only events whose metadata.tenant_id equals this.
  std::string tenant_id;
};

struct ReadAllOptions {
  // Exclusive: events after this position. Default: the start of the log.
  Position from_position;
  // Most events in one page. Default 1,000.
  int64_t max_count = 1000;
  ReadAllFilter filter;
};

struct ReadAllPage {
  // In position order.
  std::vector<RecordedEvent> events;
  // Pass as from_position to read the next page: the last event's position,
  // or the request's from_position when the page is empty.
  Position next_position;
  // True when the page holds fewer than max_count events: nothing more
  // matched when it was read.
  bool end_of_log = false;
};

class EventStore {
 public:
  virtual ~EventStore() = default;

  // Appends atomically. kAborted when the expected version does not hold
  // (IsWrongExpectedVersion). Retrying an append whose events (same ids,
  // same stream, same order) were already committed returns the original
  // result and writes nothing; any other reuse of an existing id is
  // kAlreadyExists and writes nothing. An empty batch is kInvalidArgument.
  virtual absl::StatusOr<AppendResult> Append(const AppendRequest& request) = 0;

  absl::StatusOr<AppendResult> Append(std::string_view stream,
                                      ExpectedVersion expected,
                                      absl::Span<const EventData> events) {
    return Append(AppendRequest{stream, expected, events, {}});
  }

  // Several appends in order, each as Append would make it alone (its own
  // expected version, idempotency and outbox), in as few round trips to the
  // database as the backend can: one transaction, with each append undone
  // alone when it fails. Returns one result per request, in order; an
  // append that fails does not undo the others. The call's own status is
  // not OK when the database could not be used at all (kUnavailable: which
  // appends committed is then unknown, as for a lost Append; retrying is
  // idempotent by event id) or `requests` is empty (kInvalidArgument).
  // For replaying journals and importers; this default calls Append for
  // each request, stopping at the first kUnavailable (returned as the
  // call's status). ForwardingEventStore keeps this default, so that a
  // decorator's Append sees every append; a decorator forwards AppendEach
  // to its target itself when that is right.
  virtual absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests);

  // Events of one stream in version order (or reversed, reading backward).
  // An absent stream reads as empty.
  virtual absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) = 0;
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream) {
    return ReadStream(stream, ReadStreamOptions());
  }

  // The events ReadStream(stream, options) returns, in the same order and
  // from one snapshot of the stream, handed to `page` as they are read, at
  // most `page_size` (> 0) events at a time: a backend holds one page in
  // memory, not the stream. A status other than OK from `page` stops the
  // read and is returned. `page` is not called for an absent or empty
  // stream. kInvalidArgument for a page_size below 1 or invalid options.
  // `page` runs while the read holds a database connection and snapshot:
  // it must not call into the same store (it could wait on itself).
  // This default calls ReadStream and hands its result over in pages (so
  // it holds the whole stream); the backends read page by page.
  // ForwardingEventStore keeps this default, so that a decorator's
  // ReadStream sees the read.
  using PageVisitor =
      absl::FunctionRef<absl::Status(std::vector<RecordedEvent>)>;
  virtual absl::Status ReadStreamPages(std::string_view stream,
                                       const ReadStreamOptions& options,
                                       int64_t page_size, PageVisitor page);

  // One page of the global log after options.from_position. A reader that
  // resumes from each page's next_position sees every committed event once.
  virtual absl::StatusOr<ReadAllPage> ReadAll(
      const ReadAllOptions& options) = 0;

  // Reads into storage the caller keeps and reuses: the events ReadStream
  // (stream, options) returns, in `events`, and the page ReadAll(options)
  // returns, in `page`. On success `events` (page.events) holds exactly
  // the events read, and every field of every event is what the owned
  // call returns: an element reused from an earlier read keeps none of its
  // old contents (metadata fields, checksum, damage, payload_state
  // included). What changes is the cost: a backend may decode each row
  // into the strings and metadata message of an element already there,
  // whose allocations are reused, so that a reader going through a long
  // stream or the log page after page into one buffer allocates (almost)
  // nothing per event once the buffer has grown to the page size (SQLite
  // does: docs/benchmarks.md). Elements past the events read are removed,
  // so keep one buffer per page size. On an error the buffer's contents
  // are unspecified (still a valid vector); the status is what the owned
  // call returns.
  //
  //   std::vector<RecordedEvent> events;  // one per reader, kept
  //   ES_RETURN_IF_ERROR(store.ReadStreamInto("order-1", {}, events));
  //
  //   ReadAllPage page;  // kept across pages
  //   ReadAllOptions options{.max_count = 1000};
  //   do {
  //     ES_RETURN_IF_ERROR(store.ReadAllInto(options, page));
  //     for (const RecordedEvent& e : page.events) Handle(e);
  //     options.from_position = page.next_position;
  //   } while (!page.end_of_log);
  //
  // These defaults call ReadStream and ReadAll and move the result in
  // (correct for every store, without the reuse). ForwardingEventStore
  // keeps them, so that a decorator's ReadStream and ReadAll see the read;
  // a decorator that changes nothing in the events read forwards them to
  // its target itself (InstrumentedEventStore does, counting the read).
  virtual absl::Status ReadStreamInto(std::string_view stream,
                                      const ReadStreamOptions& options,
                                      std::vector<RecordedEvent>& events);
  virtual absl::Status ReadAllInto(const ReadAllOptions& options,
                                   ReadAllPage& page);

  // The stream's version: its last event's version, 0 when absent.
  virtual absl::StatusOr<int64_t> StreamVersion(std::string_view stream) = 0;

  // The position of the last event in the log; Position::Start() when empty.
  virtual absl::StatusOr<Position> HeadPosition() = 0;

  // True when an event with this id is stored.
  virtual absl::StatusOr<bool> EventExists(const Uuid& id) = 0;

  // Waits until the log holds an event after `after` that ReadAll would
  // return, or until `timeout` passes: true when there is one. For readers
  // that follow the log (projections) without polling in a loop. This
  // default polls HeadPosition; backends wake up sooner (SQLite: when an
  // append through this store commits; PostgreSQL: LISTEN/NOTIFY).
  virtual absl::StatusOr<bool> WaitForEvents(Position after,
                                             absl::Duration timeout);

  // The stream lifecycle (stream_lifecycle.h, docs/lifecycle.md). These
  // defaults answer kUnimplemented.
  //
  // Deletes the stream under an expected version (checked against what
  // StreamVersion returns) and records a StreamDeleted event in it; removes
  // its snapshots. kNotFound for an absent stream, kAborted for a wrong
  // expected version, HardDeletedStreamError once hard-deleted.
  virtual absl::StatusOr<DeleteResult> DeleteStream(std::string_view stream,
                                                    ExpectedVersion expected,
                                                    DeleteMode mode);
  // Replaces the stream's retention metadata (the stream may be absent),
  // except that after a deletion truncate_before never goes down (it cannot
  // bring back deleted events). Reads honour it at once. kInvalidArgument
  // naming a value out of range; HardDeletedStreamError for a hard-deleted
  // stream.
  virtual absl::Status SetStreamMetadata(std::string_view stream,
                                         const StreamMetadata& metadata);
  // The stream's state, versions and metadata (an absent stream is live,
  // at version 0, with no metadata).
  virtual absl::StatusOr<StreamInfo> GetStreamInfo(std::string_view stream);
  // Removes the events that deletions and retention hide, in batches of
  // options.batch_size rows, each in its own transaction; safe while
  // appends and reads run. Never removes a StreamDeleted event.
  virtual absl::StatusOr<ScavengeResult> Scavenge(
      const ScavengeOptions& options);

  // Repositories over the same database. They live as long as the store.
  virtual CheckpointStore& checkpoints() = 0;
  virtual DeadLetterStore& dead_letters() = 0;
  virtual OutboxStore& outbox() = 0;
  virtual SnapshotStore& snapshots() = 0;
  // The key table of crypto-shredding (subject_key_store.h). This default
  // answers kUnimplemented to every call.
  virtual SubjectKeyStore& subject_keys();

  // What the store holds, for tools (see store_inspector.h). This default
  // answers kUnimplemented to every call.
  virtual StoreInspector& inspector();

  // The limits the store enforces on an append (its options' limits). This
  // default returns StoreLimits(), the backends' defaults.
  virtual StoreLimits limits() const;

  // Raw reads and writes for copying the store to another one (see
  // event_importer.h). This default answers kUnimplemented to every call.
  virtual EventImporter& importer();

  // A transaction on the store's database, for read models kept beside the
  // events (see sql_transaction.h).
  virtual absl::StatusOr<std::unique_ptr<SqlTransaction>>
  BeginTransaction() = 0;

  // The lease called `name` when no one else holds it, else nullptr (see
  // lease.h).
  virtual absl::StatusOr<std::unique_ptr<Lease>> TryAcquireLease(
      std::string_view name) = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_EVENT_STORE_H_
