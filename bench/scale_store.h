// ScaleStore: a store filled with the scale probe's shape (issue 13), for
// scale_bench's S1 (the fill) and S2 (rates on the filled store).
//
//   std::unique_ptr<ScaleDatabase> db = ...;  // a SQLite file, a PG schema
//   absl::StatusOr<std::unique_ptr<ScaleStore>> s =
//       ScaleStore::Fill(std::move(db), 10000000, "sqlite 10M", &std::cerr);
//   (*s)->fill().ChunkRates();  // events/s per successive million
//
// The shape: batches of kScaleBatchEvents events, batch b to stream index
// b mod kScaleStreams (round robin, so every stream gets its batches in
// order); stream i is "audit-<i>" when i mod 100 == 0 (1% of the events),
// "customer-<i>" when i mod 100 >= 90 (10%), else "order-<i>" (89%). In
// each batch, event 99 is an OrderShipped (1% of the events), events k with
// k mod 4 == 1 a PaymentReceived (25%), the rest OrderPlaced; each payload
// is padded to about kScalePayloadBytes. Every event's metadata names
// tenant "tenant-<(i + 37) mod 100>" (so "tenant-0" holds 1%), and nothing
// else. Event ids are new UUIDs.

#ifndef EVENTSTORE_BENCH_SCALE_STORE_H_
#define EVENTSTORE_BENCH_SCALE_STORE_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/expected_version.h"
#include "eventstore/position.h"

namespace eventstore::bench {

inline constexpr int64_t kScaleStreams = 100000;
inline constexpr int64_t kScaleBatchEvents = 100;
inline constexpr int64_t kScalePayloadBytes = 100;
// The filters S2 reads with, each matching about 1% of the events.
inline constexpr char kScaleRarePrefix[] = "audit-";
inline constexpr char kScaleRareType[] = "eventstore.bench.v1.OrderShipped";
inline constexpr char kScaleRareTenant[] = "tenant-0";

// The name of stream index `i`.
std::string ScaleStreamName(int64_t i);

// The events of batch `b` (new ids).
std::vector<EventData> ScaleBatchEvents(int64_t b);

// The database under a ScaleStore: a store and its size on disk.
class ScaleDatabase {
 public:
  virtual ~ScaleDatabase() = default;
  virtual EventStore& store() = 0;
  // The bytes the database takes: SQLite the file and its WAL, PostgreSQL
  // the total relation size (heap, indexes, TOAST) of the schema's tables.
  virtual absl::StatusOr<int64_t> Bytes() = 0;
  // The stream's last version read by the database's own client, outside
  // the store: raw sqlite3 with the store's default page cache and memory
  // map, raw libpq with a prepared statement. The baseline of
  // S2_StreamVersion: what the database itself does at each size.
  virtual absl::StatusOr<int64_t> RawStreamVersion(
      const std::string& stream) = 0;
};

// What a fill measured.
struct FillReport {
  struct Chunk {
    int64_t first_event = 0;  // events in the store before the chunk
    int64_t events = 0;
    double seconds = 0;  // in Append calls only
  };
  std::vector<Chunk> chunks;
  int64_t events = 0;
  double seconds = 0;
  int64_t bytes = 0;  // ScaleDatabase::Bytes() right after the fill
};

// A filled store and what S2 needs to keep using it: the stream versions
// (for appends with exact expected versions) and each batch's last
// position (to start reads anywhere). Used by one thread.
class ScaleStore {
 public:
  // Appends events / kScaleBatchEvents batches of the shape to the empty
  // store of `db`, timing the Append calls in chunks of `chunk_events`,
  // and writes a line per chunk to `progress` (may be null) prefixed with
  // `label`.
  static absl::StatusOr<std::unique_ptr<ScaleStore>> Fill(
      std::unique_ptr<ScaleDatabase> db, int64_t events, int64_t chunk_events,
      const std::string& label, std::ostream* progress);

  EventStore& store() { return db_->store(); }
  ScaleDatabase& database() { return *db_; }
  const FillReport& fill() const { return fill_; }

  // Batches the fill appended, and events in the store now.
  int64_t filled_batches() const { return filled_batches_; }
  int64_t events() const { return events_; }
  // Streams in the store (indexes 0 .. streams() - 1).
  int64_t streams() const { return static_cast<int64_t>(versions_.size()); }

  // Where reads start to begin at fill batch `b` (0 <= b <
  // filled_batches()): the position after batch b - 1.
  Position BeforeBatch(int64_t b) const;

  // Appends `events` to stream index `i` with its exact expected version.
  absl::Status AppendToStream(int64_t i, const std::vector<EventData>& events);

  // The next batch of the shape, round robin as the fill goes on (stream
  // index and events): NextBatch builds it, AppendBatch appends it (a new
  // stream when its index is streams()).
  struct Batch {
    int64_t stream_index;
    std::vector<EventData> events;
  };
  Batch NextBatch();
  absl::Status AppendBatch(const Batch& batch);

 private:
  explicit ScaleStore(std::unique_ptr<ScaleDatabase> db) : db_(std::move(db)) {}

  std::unique_ptr<ScaleDatabase> db_;
  FillReport fill_;
  int64_t filled_batches_ = 0;
  int64_t next_batch_ = 0;
  int64_t events_ = 0;
  // By stream index: the stream's version.
  std::vector<int64_t> versions_;
  // By fill batch: its last event's position.
  std::vector<Position> batch_ends_;
};

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_SCALE_STORE_H_
