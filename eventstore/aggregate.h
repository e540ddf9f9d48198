// Aggregate: the base class of an event-sourced domain object. Its state
// changes only by applying events: new ones it raises, stored ones it
// replays.
//
//   class Account : public eventstore::Aggregate {
//    public:
//     explicit Account(std::string id) : Aggregate(std::move(id)) {
//       On<bank::v1::Deposited>([this](const bank::v1::Deposited& e) {
//         balance_ += e.amount();
//       });
//     }
//     absl::Status Deposit(int64_t amount) {
//       if (amount <= 0) return absl::InvalidArgumentError("amount");
//       bank::v1::Deposited deposited;
//       deposited.set_amount(amount);
//       return Raise(deposited);   // applies it, and keeps it to be saved
//     }
//    private:
//     int64_t balance_ = 0;
//   };
//
// Each event type has one handler, registered with On<E>() in the derived
// constructor; the handler returns void or absl::Status. Raise() runs the
// handler and records the event as uncommitted; AggregateRepository (see
// aggregate_repository.h) appends the uncommitted events and replays stored
// ones through the same handlers. Handlers only change state: checks belong
// in the command methods, before Raise().
//
// Outbox: a command may also Enqueue() outbox messages (outbox_message.h);
// the repository's Save() appends them with the events, in the same
// transaction, so a message is published if and only if its events commit.
//
// Snapshots: an aggregate that overrides snapshot_prototype(),
// SnapshotState() and RestoreSnapshot() can be loaded from a snapshot of its
// state plus the events after it. Bump snapshot_schema_version() whenever
// the state's meaning or shape changes: older snapshots are then ignored.
//
// Deleted streams (stream_lifecycle.h): a soft-deleted stream reads as
// absent, so AggregateRepository::LoadOrCreate() gives a new aggregate at
// version 0, and saving it writes the stream again (the store numbers its
// events on after the deletion marker: version() then jumps past the old
// versions). A hard-deleted stream refuses the save with
// HardDeletedStreamError.
//
// Forgotten events (crypto-shredding, recorded_event.h): a stored event
// whose data subject was forgotten has no payload left, so its handler
// cannot run. ApplyStored() passes it to OnForgotten() instead, which by
// default skips it (version() moves past it, forgotten_events() counts it),
// so loading never fails on a forgotten event. Override OnForgotten() to
// mark the state ("personal data erased") or to refuse the load.
//
// Thread safety: none; an aggregate belongs to one thread at a time. It can
// be neither copied nor moved (handlers capture `this`).

#ifndef EVENTSTORE_AGGREGATE_H_
#define EVENTSTORE_AGGREGATE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/command_context.h"
#include "eventstore/event_data.h"
#include "eventstore/outbox_message.h"
#include "eventstore/recorded_event.h"
#include "google/protobuf/message.h"

namespace eventstore {

class Aggregate {
 public:
  virtual ~Aggregate();

  Aggregate(const Aggregate&) = delete;
  Aggregate& operator=(const Aggregate&) = delete;

  // The id the aggregate was made with (not its stream name).
  const std::string& id() const { return id_; }

  // The version of the aggregate's stream that its state includes: the
  // last stored event replayed or saved, 0 for an aggregate not yet saved.
  // Raise() does not change it; MarkCommitted() does. The repository saves
  // with ExpectedVersion::Exactly(version()) (NoStream() when 0).
  int64_t version() const { return version_; }

  // Events raised since the last save, in order. Each has its id from the
  // moment it was raised, so saving again after an error such as
  // kUnavailable is an idempotent retry.
  const std::vector<EventData>& uncommitted_events() const {
    return uncommitted_;
  }

  // Outbox messages enqueued since the last save, in order: the repository
  // appends them in the same transaction as uncommitted_events().
  const std::vector<OutboxMessage>& uncommitted_outbox() const {
    return uncommitted_outbox_;
  }

  // Forgets the uncommitted events and outbox messages without saving them.
  // The events' effect on the in-memory state stays: load the aggregate
  // again to undo it.
  void ClearUncommitted();

  // Records that the uncommitted events (and outbox messages) were stored
  // and the stream is now at `new_version`: clears them and sets version(). The
  // repository calls it after a save, and after restoring a snapshot taken at
  // `new_version`.
  void MarkCommitted(int64_t new_version);

  // Replays one stored event: decodes it as its handler's type and runs the
  // handler, then sets version() to event.version. kNotFound naming the
  // type when no handler is registered for it (unless
  // IgnoreUnknownEventTypes() was called: then only version() moves);
  // kDataLoss when the event is damaged (RecordedEvent::damage, whatever
  // its type) or the payload does not parse; a handler's error as it is,
  // its message prefixed with the stream and version. kFailedPrecondition
  // when there are uncommitted events or event.version is below version(),
  // and for a sealed event (encrypted, read without the master key). A
  // forgotten event (RecordedEvent::forgotten()) of a handled type goes to
  // OnForgotten() instead of its handler: when that returns OK, version()
  // moves to event.version and forgotten_events() counts it; its error is
  // returned as a handler's.
  ABSL_MUST_USE_RESULT absl::Status ApplyStored(const RecordedEvent& event);

  // How many forgotten events ApplyStored() skipped since construction.
  int64_t forgotten_events() const { return forgotten_events_; }

  // The context whose fields Raise() writes into each new event's metadata
  // (see command_context.h). Empty by default.
  const CommandContext& context() const { return context_; }
  void set_context(CommandContext context) { context_ = std::move(context); }

  // --- Snapshot hooks. The defaults mean "no snapshots". ---

  // The type of the state SnapshotState() returns: a generated default
  // instance (e.g. &AccountState::default_instance()), which outlives the
  // aggregate. Null (the default): this aggregate takes no snapshots.
  virtual const google::protobuf::Message* snapshot_prototype() const {
    return nullptr;
  }
  // The version of the state's schema. Snapshots are stored per schema
  // version and loaded only for the current one, so bumping it makes every
  // older snapshot invisible (the next load replays all events). Default 1.
  virtual int32_t snapshot_schema_version() const { return 1; }
  // The current state, of snapshot_prototype()'s type. Called right after a
  // save, when version() is the stream version the state includes. Default:
  // kUnimplemented.
  virtual absl::StatusOr<std::unique_ptr<google::protobuf::Message>>
  SnapshotState() const;
  // Replaces the state by `state` (of snapshot_prototype()'s type), on a
  // newly constructed aggregate. The repository then calls
  // MarkCommitted(snapshot version). Default: kUnimplemented.
  virtual absl::Status RestoreSnapshot(const google::protobuf::Message& state);

 protected:
  explicit Aggregate(std::string id);

  // Registers `handler` for events of type E (a generated protobuf message
  // class): a callable taking `const E&` and returning void or
  // absl::Status. Call it once per type, in the derived constructor; a
  // second registration for the same type replaces the first.
  template <typename E, typename F>
  void On(F handler);

  // Applies `event` through its handler, then records it as uncommitted,
  // with a new id and context() as its metadata. kNotFound naming the type
  // when it has no handler; a handler's error as it is. In both cases
  // nothing is recorded.
  ABSL_MUST_USE_RESULT absl::Status Raise(
      const google::protobuf::Message& event);

  // Adds `message` to the outbox messages saved with the uncommitted events
  // (see uncommitted_outbox()). Call it after Raise(): a save with messages
  // but no events is refused.
  void Enqueue(OutboxMessage message) {
    uncommitted_outbox_.push_back(std::move(message));
  }

  // Called by ApplyStored() for a stored event whose payload was forgotten
  // (crypto-shredding: its data subject's key was deleted), in place of the
  // event type's handler. `event` has its id, stream, version, type and
  // metadata (metadata.subject_id() names the subject), but no payload.
  // Return OK to go on without it (the default, which changes no state), or
  // an error to fail the replay, and with it Load(). It may change the
  // state, as a handler does.
  virtual absl::Status OnForgotten(const RecordedEvent& event);

  // Replaying a stored event whose type has no handler skips it instead of
  // failing with kNotFound. For aggregates that deliberately react to only
  // some of the events in their stream. Raise() still refuses such types.
  void IgnoreUnknownEventTypes() { ignore_unknown_types_ = true; }

 private:
  struct Handler {
    // E::default_instance(): makes the message a stored event decodes into.
    const google::protobuf::Message* prototype = nullptr;
    std::function<absl::Status(const google::protobuf::Message&)> apply;
  };

  void AddHandler(
      const google::protobuf::Message& prototype,
      std::function<absl::Status(const google::protobuf::Message&)> apply);
  const Handler* FindHandler(const std::string& type) const;

  std::string id_;
  int64_t version_ = 0;
  std::vector<EventData> uncommitted_;
  std::vector<OutboxMessage> uncommitted_outbox_;
  CommandContext context_;
  bool ignore_unknown_types_ = false;
  int64_t forgotten_events_ = 0;
  // By protobuf full name.
  absl::flat_hash_map<std::string, Handler> handlers_;
};

// --- implementation ---------------------------------------------------------

template <typename E, typename F>
void Aggregate::On(F handler) {
  static_assert(std::is_base_of_v<google::protobuf::Message, E>,
                "On<E>: E must be a generated protobuf message class");
  static_assert(std::is_invocable_v<F&, const E&>,
                "On<E>(handler): handler must be callable with const E&");
  using Result = std::invoke_result_t<F&, const E&>;
  static_assert(std::is_void_v<Result> || std::is_same_v<Result, absl::Status>,
                "On<E>(handler): handler must return void or absl::Status");
  AddHandler(
      E::default_instance(),
      [handler = std::move(handler)](
          const google::protobuf::Message& message) mutable -> absl::Status {
        // Raise() may be given a message of E's type that is not an E (a
        // DynamicMessage): copy it into an E through reflection.
        const E* typed = dynamic_cast<const E*>(&message);
        E copy;
        if (typed == nullptr) {
          copy.CopyFrom(message);
          typed = &copy;
        }
        if constexpr (std::is_void_v<Result>) {
          handler(*typed);
          return absl::OkStatus();
        } else {
          return handler(*typed);
        }
      });
}

}  // namespace eventstore

#endif  // EVENTSTORE_AGGREGATE_H_
