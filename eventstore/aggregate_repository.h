// AggregateRepository<A>: loads aggregates from their streams (from a
// snapshot when there is one) and saves their new events with optimistic
// concurrency.
//
//   eventstore::AggregateRepositoryOptions options;
//   options.stream_prefix = "account-";   // account "a-1" -> "account-a-1"
//   options.snapshot_every = 100;
//   eventstore::AggregateRepository<Account> accounts(*store, options);
//
//   Account opened("a-1");                 // a new aggregate
//   ES_RETURN_IF_ERROR(opened.Open("Ada"));
//   ES_RETURN_IF_ERROR(accounts.Save(opened, context));
//
//   // Load, run the command, save; reload and run it again when another
//   // writer changed the stream in between (kAborted), up to 3 times.
//   absl::StatusOr<std::unique_ptr<Account>> account = accounts.Update(
//       "a-1", [](Account& a) { return a.Deposit(100); }, 3, context);
//
//   // An aggregate that may not exist yet: LoadOrCreate() (or
//   // UpdateOrCreate()) gives a new one at version 0 instead of kNotFound.
//   absl::StatusOr<std::unique_ptr<Account>> maybe_new =
//       accounts.LoadOrCreate("a-2");
//
// A is a class derived from Aggregate, constructible from its id
// (std::string). The repository keeps no state besides its options: it is
// thread-safe, as long as each aggregate is used by one thread at a time,
// and must not outlive the store.

#ifndef EVENTSTORE_AGGREGATE_REPOSITORY_H_
#define EVENTSTORE_AGGREGATE_REPOSITORY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/aggregate.h"
#include "eventstore/command_context.h"
#include "eventstore/errors.h"
#include "eventstore/event_store.h"

namespace eventstore {

struct AggregateRepositoryOptions {
  // The stream of the aggregate with id `id` is stream_prefix + id
  // (e.g. "order-" + "o-1"). Default "": the id itself.
  std::string stream_prefix;
  // When set, names the streams instead of stream_prefix.
  std::function<std::string(std::string_view id)> stream_name;
  // Save() takes a snapshot when a save moves the stream's version past a
  // multiple of this (from 8 to 11 with 10: a snapshot at 11), and Load()
  // starts from the newest snapshot of the aggregate's current schema
  // version. 0 or less (the default): snapshots are neither taken nor read.
  // Only aggregates with a snapshot_prototype() take snapshots. The
  // trade-off: one more write per N events, against replaying at most
  // about N events per load.
  int64_t snapshot_every = 0;
  // Metadata for every saved event, under the context given to Save() and
  // Update() (see CommandContext::FillIn).
  CommandContext context;
  // Snapshots are a cache: failing to take one does not fail Save(), and
  // one that cannot be read, parsed or restored is ignored by Load(), which
  // then replays the whole stream. Nothing is logged; when set, this is
  // called with the stream and the error, on the thread of the Save() or
  // Load(). Default: unset.
  std::function<void(std::string_view stream, const absl::Status& error)>
      on_snapshot_error;
};

namespace aggregate_internal {

// The part of AggregateRepository<A> that does not depend on A.
class RepositoryCore {
 public:
  using Factory =
      absl::FunctionRef<std::unique_ptr<Aggregate>(const std::string& id)>;

  RepositoryCore(EventStore& store, AggregateRepositoryOptions options);

  std::string StreamName(std::string_view id) const;
  // `or_create`: an absent stream gives the newly made aggregate (version
  // 0) rather than kNotFound.
  absl::StatusOr<std::unique_ptr<Aggregate>> Load(std::string_view id,
                                                  Factory make,
                                                  bool or_create) const;
  absl::Status Save(Aggregate& aggregate, const CommandContext& context) const;

 private:
  bool SnapshotsEnabled(const Aggregate& aggregate) const;
  // Restores the newest usable snapshot into `aggregate` (newly made);
  // false when there is none.
  absl::StatusOr<bool> RestoreSnapshot(const std::string& stream,
                                       Aggregate& aggregate) const;
  absl::Status TakeSnapshot(const std::string& stream,
                            const Aggregate& aggregate) const;
  void ReportSnapshotError(const std::string& stream,
                           const absl::Status& error) const;

  EventStore& store_;
  const AggregateRepositoryOptions options_;
};

}  // namespace aggregate_internal

template <class A>
class AggregateRepository {
 public:
  static_assert(std::is_base_of_v<Aggregate, A>,
                "AggregateRepository<A>: A must derive from Aggregate");
  static_assert(std::is_constructible_v<A, std::string>,
                "AggregateRepository<A>: A must be constructible from its id "
                "(std::string)");

  // Default attempts of Update().
  static constexpr int kDefaultAttempts = 3;

  explicit AggregateRepository(EventStore& store,
                               AggregateRepositoryOptions options = {})
      : core_(store, std::move(options)) {}

  // The stream of the aggregate `id`.
  std::string StreamName(std::string_view id) const {
    return core_.StreamName(id);
  }

  // The aggregate `id` with every stored event applied: constructed, given
  // the newest snapshot of its current snapshot_schema_version() when
  // snapshots are on, then the events after it (all of them without a
  // snapshot). kNotFound when the stream does not exist; kNotFound from
  // Aggregate::ApplyStored for an event type without a handler; the store's
  // errors as they are.
  absl::StatusOr<std::unique_ptr<A>> Load(std::string_view id) const {
    return LoadAs(id, /*or_create=*/false);
  }

  // As Load(), but when the stream does not exist: a new aggregate, A(id)
  // at version 0 with nothing applied, whose Save() appends with
  // ExpectedVersion::NoStream() (kAborted if another writer created the
  // stream meanwhile). Spares the caller a branch on kNotFound:
  //
  //   ES_ASSIGN_OR_RETURN(std::unique_ptr<Cart> cart, carts.LoadOrCreate(id));
  //   ES_RETURN_IF_ERROR(cart->AddItem(sku));  // first item or a later one
  //   ES_RETURN_IF_ERROR(carts.Save(*cart));
  //
  // Other errors as Load()'s (kNotFound only for an event type without a
  // handler).
  absl::StatusOr<std::unique_ptr<A>> LoadOrCreate(std::string_view id) const {
    return LoadAs(id, /*or_create=*/true);
  }

  // Appends the aggregate's uncommitted events to its stream with
  // ExpectedVersion::Exactly(version()) (NoStream() for an aggregate never
  // saved), with its uncommitted outbox messages in the same transaction
  // (Aggregate::Enqueue), then MarkCommitted(new version). Each event's
  // metadata gets the fields it lacks from `context`, then from the
  // options' context. Nothing to save: OK, nothing written; outbox messages
  // without events: kFailedPrecondition. Another writer changed the stream
  // since the aggregate was loaded (or, for a new aggregate, the stream
  // exists): kAborted (IsWrongExpectedVersion), the aggregate unchanged; load
  // it again and retry the command (Update() does). Other errors of the store
  // as they are; after kUnavailable, saving the same aggregate again is an
  // idempotent retry (the events keep their ids).
  //
  // When the new version passes a multiple of snapshot_every, a snapshot
  // of the state is saved; its failure is not the save's (see
  // AggregateRepositoryOptions::on_snapshot_error).
  ABSL_MUST_USE_RESULT absl::Status Save(
      A& aggregate, const CommandContext& context = {}) const {
    return core_.Save(aggregate, context);
  }

  // Loads the aggregate `id`, runs `command` on it and saves it; when the
  // save fails with kAborted (a concurrent change), does it all again, up to
  // `max_attempts` times in all. Returns the saved aggregate; the last
  // kAborted when every attempt lost; Load()'s errors (kNotFound for an
  // absent stream), the command's and other Save() errors at once, without
  // retrying. `command` may run several times, each time on a freshly
  // loaded aggregate: it must have no other effects. max_attempts < 1 is
  // kInvalidArgument.
  absl::StatusOr<std::unique_ptr<A>> Update(
      std::string_view id, absl::FunctionRef<absl::Status(A&)> command,
      int max_attempts = kDefaultAttempts,
      const CommandContext& context = {}) const {
    return UpdateAs(id, command, max_attempts, context, /*or_create=*/false);
  }

  // As Update(), loading with LoadOrCreate(): `command` runs on a new
  // aggregate when the stream does not exist. When two writers create the
  // same aggregate at once, the one that loses the race (kAborted) loads the
  // other's and runs `command` again.
  absl::StatusOr<std::unique_ptr<A>> UpdateOrCreate(
      std::string_view id, absl::FunctionRef<absl::Status(A&)> command,
      int max_attempts = kDefaultAttempts,
      const CommandContext& context = {}) const {
    return UpdateAs(id, command, max_attempts, context, /*or_create=*/true);
  }

 private:
  absl::StatusOr<std::unique_ptr<A>> LoadAs(std::string_view id,
                                            bool or_create) const {
    absl::StatusOr<std::unique_ptr<Aggregate>> loaded = core_.Load(
        id,
        [](const std::string& aggregate_id) -> std::unique_ptr<Aggregate> {
          return std::make_unique<A>(aggregate_id);
        },
        or_create);
    if (!loaded.ok()) return loaded.status();
    return std::unique_ptr<A>(static_cast<A*>(loaded->release()));
  }

  absl::StatusOr<std::unique_ptr<A>> UpdateAs(
      std::string_view id, absl::FunctionRef<absl::Status(A&)> command,
      int max_attempts, const CommandContext& context, bool or_create) const {
    if (max_attempts < 1) {
      return absl::InvalidArgumentError("max_attempts must be at least 1");
    }
    absl::Status saved;
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      absl::StatusOr<std::unique_ptr<A>> aggregate = LoadAs(id, or_create);
      if (!aggregate.ok()) return aggregate.status();
      absl::Status done = command(**aggregate);
      if (!done.ok()) return done;
      saved = Save(**aggregate, context);
      if (saved.ok()) return aggregate;
      if (!IsWrongExpectedVersion(saved)) return saved;
    }
    return saved;
  }

  aggregate_internal::RepositoryCore core_;
};

}  // namespace eventstore

#endif  // EVENTSTORE_AGGREGATE_REPOSITORY_H_
