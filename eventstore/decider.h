// Decider: the functional alternative to Aggregate. A decider is three
// things, none of which touches the store:
//
//   decide(command, state) -> the new events (or an error: the command is
//                             refused)
//   evolve(state, event)   -> the next state
//   initial_state          -> the state of a stream with no events
//
// HandleCommand() does the rest: reads the stream, decodes each event with
// a TypeRegistry and folds evolve over them, runs decide, and appends the
// new events with ExpectedVersion::Exactly(the version read) (NoStream()
// for an absent stream).
//
//   struct Balance { int64_t cents = 0; bool open = false; };
//   struct Deposit { int64_t cents; };
//
//   eventstore::Decider<Balance, Deposit> decider;
//   decider.decide = [](const Deposit& c, const Balance& s)
//       -> absl::StatusOr<eventstore::DecidedEvents> {
//     if (!s.open) return absl::FailedPreconditionError("account not open");
//     bank::v1::Deposited deposited;
//     deposited.set_amount(c.cents);
//     return eventstore::MakeEvents(std::move(deposited));
//   };
//   decider.evolve = [](Balance s, const google::protobuf::Message& e) {
//     if (auto* d = dynamic_cast<const bank::v1::Deposited*>(&e)) {
//       s.cents += d->amount();
//     } else if (dynamic_cast<const bank::v1::Opened*>(&e) != nullptr) {
//       s.open = true;
//     }
//     return s;
//   };
//   absl::StatusOr<eventstore::Decision<Balance>> done =
//       eventstore::HandleCommand(*store, registry, "account-a-1", decider,
//                                 Deposit{100});
//
// Events are protobuf messages behind std::unique_ptr<Message>, decoded by
// the TypeRegistry as their generated classes, so evolve can dispatch with
// dynamic_cast (or on GetDescriptor()). This keeps the set of event types
// open, and the decoding and its errors (kNotFound for an unregistered
// type) the same as everywhere else in the library.

#ifndef EVENTSTORE_DECIDER_H_
#define EVENTSTORE_DECIDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/command_context.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/type_registry.h"
#include "google/protobuf/message.h"

namespace eventstore {

// The events decide() returns, in order.
using DecidedEvents = std::vector<std::unique_ptr<google::protobuf::Message>>;

// DecidedEvents holding the given messages (generated message objects),
// moved or copied into place: `return MakeEvents(opened, std::move(dep));`.
template <typename... M>
DecidedEvents MakeEvents(M&&... messages) {
  static_assert(
      (std::is_base_of_v<google::protobuf::Message, std::decay_t<M>> && ...),
      "MakeEvents: arguments must be protobuf messages");
  DecidedEvents events;
  events.reserve(sizeof...(M));
  (events.push_back(
       std::make_unique<std::decay_t<M>>(std::forward<M>(messages))),
   ...);
  return events;
}

template <typename State, typename Command>
struct Decider {
  // The new events for `command` given the current state; none is fine
  // (nothing is appended). An error refuses the command: nothing is
  // appended and HandleCommand returns it.
  std::function<absl::StatusOr<DecidedEvents>(const Command& command,
                                              const State& state)>
      decide;
  // The state after `event`. Called for stored events and for the events
  // decide() returned. Events it does not know should leave the state as
  // it is.
  std::function<State(State state, const google::protobuf::Message& event)>
      evolve;
  // The state of an empty stream.
  State initial_state{};
};

// A stream's state as a decider sees it.
template <typename State>
struct StreamState {
  State state;
  // The stream's version the state includes; 0 for an absent stream.
  int64_t version = 0;
};

// What HandleCommand did.
template <typename State>
struct Decision {
  // The state after the new events.
  State state;
  // The stream's version after the append (the version read when decide()
  // returned no events).
  int64_t version = 0;
  // The events appended, with their ids and metadata; empty when decide()
  // returned none.
  std::vector<EventData> events;
};

struct DecideOptions {
  // Written into each new event's metadata (see CommandContext::FillIn).
  CommandContext context;
  // When the append fails with kAborted (another writer appended to the
  // stream after it was read), the stream is read again and decide() runs
  // again, up to this many attempts in all. Default 1: no retry, the
  // kAborted is returned. decide() must then have no effects of its own.
  int max_attempts = 1;
};

namespace decider_internal {

// Reads `stream`, decodes each event with `registry` and passes it to
// `apply`. Returns the version of the last event (0: absent stream).
absl::StatusOr<int64_t> FoldStream(
    EventStore& store, const TypeRegistry& registry, std::string_view stream,
    absl::FunctionRef<void(const google::protobuf::Message&)> apply);

// Appends `events` to `stream` with Exactly(version) (NoStream() when 0),
// each with `context` as metadata. Returns the events as appended, and sets
// *next_version to the stream's new version.
absl::StatusOr<std::vector<EventData>> AppendDecided(
    EventStore& store, std::string_view stream, int64_t version,
    const DecidedEvents& events, const CommandContext& context,
    int64_t* next_version);

}  // namespace decider_internal

// The state of `stream`: decider.initial_state evolved by each of its
// events. An event whose payload was forgotten (RecordedEvent::forgotten(),
// crypto-shredding) is skipped: evolve never sees it, the version counts
// it. kNotFound naming the type for an event not in `registry`;
// kInvalidArgument when decider.evolve is unset; the store's errors.
template <typename State, typename Command>
absl::StatusOr<StreamState<State>> LoadState(
    EventStore& store, const TypeRegistry& registry, std::string_view stream,
    const Decider<State, Command>& decider) {
  if (!decider.evolve) {
    return absl::InvalidArgumentError("the decider has no evolve function");
  }
  StreamState<State> result{decider.initial_state, 0};
  absl::StatusOr<int64_t> version = decider_internal::FoldStream(
      store, registry, stream, [&](const google::protobuf::Message& event) {
        result.state = decider.evolve(std::move(result.state), event);
      });
  if (!version.ok()) return version.status();
  result.version = *version;
  return result;
}

// Runs `command` against `stream`: LoadState, decide, append (with
// Exactly(version read)), evolve over the new events. Errors: LoadState's;
// decide()'s, as it returned them; kInvalidArgument for an unset function
// or a null event; kAborted (IsWrongExpectedVersion) when another writer
// won every one of options.max_attempts; the store's other errors.
template <typename State, typename Command>
absl::StatusOr<Decision<State>> HandleCommand(
    EventStore& store, const TypeRegistry& registry, std::string_view stream,
    const Decider<State, Command>& decider, const Command& command,
    const DecideOptions& options = {}) {
  if (!decider.decide) {
    return absl::InvalidArgumentError("the decider has no decide function");
  }
  if (options.max_attempts < 1) {
    return absl::InvalidArgumentError("max_attempts must be at least 1");
  }
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<StreamState<State>> current =
        LoadState(store, registry, stream, decider);
    if (!current.ok()) return current.status();
    absl::StatusOr<DecidedEvents> events =
        decider.decide(command, current->state);
    if (!events.ok()) return events.status();
    Decision<State> decision{std::move(current->state), current->version, {}};
    if (events->empty()) return decision;
    absl::StatusOr<std::vector<EventData>> appended =
        decider_internal::AppendDecided(store, stream, current->version,
                                        *events, options.context,
                                        &decision.version);
    if (!appended.ok()) {
      if (IsWrongExpectedVersion(appended.status()) &&
          attempt < options.max_attempts) {
        continue;
      }
      return appended.status();
    }
    for (const std::unique_ptr<google::protobuf::Message>& event : *events) {
      decision.state = decider.evolve(std::move(decision.state), *event);
    }
    decision.events = *std::move(appended);
    return decision;
  }
}

}  // namespace eventstore

#endif  // EVENTSTORE_DECIDER_H_
