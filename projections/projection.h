// Projection and TransactionalProjection: read models built from the global
// log by a ProjectionRunner (projection_runner.h).
//
// A Projection keeps its read model anywhere (memory, another database, a
// search index) and is delivered every event at least once: the runner saves
// its checkpoint after each batch, so a crash between the handler and the
// checkpoint delivers that batch again. Its handler must be idempotent.
//
//   class OrderCount : public eventstore::Projection {
//    public:
//     std::string name() const override { return "order-count"; }
//     std::vector<std::string> event_types() const override {
//       return {"shop.v1.OrderPlaced"};
//     }
//     absl::Status Handle(const eventstore::RecordedEvent& event) override {
//       counts_[event.stream] = event.version;  // idempotent
//       return absl::OkStatus();
//     }
//    private:
//     std::map<std::string, int64_t> counts_;
//   };
//
// A TransactionalProjection keeps its read model in the store's own
// database. Its handler writes through the SqlTransaction it is given, and
// the runner saves the checkpoint in that same transaction: the read model
// and the checkpoint commit together or not at all, so every event is
// applied exactly once.
//
//   class OrderTotals : public eventstore::TransactionalProjection {
//    public:
//     std::string name() const override { return "order-totals"; }
//     absl::Status Handle(const eventstore::RecordedEvent& event,
//                         eventstore::SqlTransaction& tx) override {
//       ES_ASSIGN_OR_RETURN(shop::v1::OrderPlaced placed,
//                           event.As<shop::v1::OrderPlaced>());
//       return tx.Execute(
//           "INSERT INTO order_totals (order_id, total) VALUES ($1, $2)",
//           {eventstore::SqlValue::Text(placed.order_id()),
//            eventstore::SqlValue::Int(placed.total_cents())});
//     }
//     absl::Status Reset(eventstore::SqlTransaction& tx) override {
//       return tx.Execute("DELETE FROM order_totals");
//     }
//   };
//
// A handler that returns an error is retried with backoff and then parked
// in the dead-letter store (see projection_runner.h). A runner never calls
// one projection's handler from two threads at once, nor with a damaged
// event (those are parked without a call).
//
// Deleted streams (stream_lifecycle.h): deleting a stream records a
// StreamDeleted event in it (type kStreamDeletedType, payload
// eventstore.v1.StreamDeleted), and the runner delivers it like any other
// event, also to a projection whose event_types() leave it out (the runner
// adds the type to its filter). The events the deletion hides were
// delivered earlier and are not delivered again; a projection drops what it
// keeps of the stream:
//
//   if (std::optional<v1::StreamDeleted> deleted = AsStreamDeleted(event)) {
//     return tx.Execute("DELETE FROM order_totals WHERE stream = $1",
//                       {eventstore::SqlValue::Text(deleted->stream())});
//   }
//
// A soft-deleted stream may be written again: its new events follow the
// marker, numbered on from it. Retention (max_count, max_age) hides events
// without a marker: a read model keeps what it already built from them.
//
// Forgotten events (crypto-shredding, recorded_event.h): an event whose data
// subject was forgotten arrives with event.forgotten() true and an empty
// payload; As<M>() refuses it with kFailedPrecondition, which the runner
// would retry and then park. A projection skips it (returns OK), or drops
// what it holds of the subject (event.metadata.subject_id()):
//
//   if (event.forgotten()) return absl::OkStatus();

#ifndef EVENTSTORE_PROJECTIONS_PROJECTION_H_
#define EVENTSTORE_PROJECTIONS_PROJECTION_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "eventstore/recorded_event.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/stream_lifecycle.h"

namespace eventstore {

// What every projection has: a name and the event types it handles.
class ProjectionBase {
 public:
  virtual ~ProjectionBase() = default;

  // Identifies the projection's checkpoint, its dead letters and its lease
  // ("projection:" + name). Stable across releases: renaming a projection
  // starts it over. Non-empty, at most 200 bytes.
  virtual std::string name() const = 0;

  // The event types (protobuf full names) the projection handles; empty, the
  // default, for every event. Events of other types are not read at all,
  // but for deletions: a non-empty list always gets the StreamDeleted
  // events (kStreamDeletedType) too.
  virtual std::vector<std::string> event_types() const { return {}; }
};

// A projection whose read model lives outside the store's database:
// at-least-once delivery.
class Projection : public ProjectionBase {
 public:
  // Applies one event to the read model. Called in position order. An error
  // means "not applied": the runner retries and then parks the event;
  // kUnavailable means "try again later" and is never parked (see
  // projection_runner.h).
  virtual absl::Status Handle(const RecordedEvent& event) = 0;

  // Called by ProjectionRunner::Rebuild(), or by the runner when a rebuild
  // was requested (CheckpointStore::RequestRebuild), before replaying from
  // the start: clear the read model. Default: does nothing.
  virtual absl::Status Reset() { return absl::OkStatus(); }
};

// A projection whose read model lives in the store's database: exactly-once
// delivery.
class TransactionalProjection : public ProjectionBase {
 public:
  // Applies one event, writing only through `tx` (the runner commits it
  // with the checkpoint). Called in position order. An error rolls back the
  // whole transaction; see Projection::Handle for retries. Must not commit
  // `tx`, append through the store, or keep `tx` after returning.
  virtual absl::Status Handle(const RecordedEvent& event,
                              SqlTransaction& tx) = 0;

  // Called by ProjectionRunner::Rebuild(), or by the runner when a rebuild
  // was requested (CheckpointStore::RequestRebuild), in the transaction that
  // also moves the checkpoint back to the start: clear the read model.
  // Default: does nothing.
  virtual absl::Status Reset(SqlTransaction& tx) { return absl::OkStatus(); }
};

}  // namespace eventstore

#endif  // EVENTSTORE_PROJECTIONS_PROJECTION_H_
