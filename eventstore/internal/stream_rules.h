// Backend-neutral rules of the stream lifecycle (stream_lifecycle.h): how
// an append, a read and a deletion see a stream from its highest stored
// version and its row in the streams table, shared by every backend so that
// they agree to the letter.

#ifndef EVENTSTORE_INTERNAL_STREAM_RULES_H_
#define EVENTSTORE_INTERNAL_STREAM_RULES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/expected_version.h"
#include "eventstore/stream_lifecycle.h"

namespace eventstore::internal {

// A stream's row in the streams table (a stream without one is live, with
// no metadata and no floor).
//
//   column           SQLite / PostgreSQL
//   stream           TEXT primary key
//   state            0 live, 1 soft-deleted, 2 hard-deleted
//   truncate_before  NULL or a version
//   max_count        NULL or a count
//   max_age_us       NULL or microseconds
//   version_floor    the stream's version is at least this (set by a
//                    deletion to the marker's version, and by Scavenge when
//                    it removes a stream's newest rows)
//   deleted_at       NULL or when it was last deleted
//   updated_at       when the row last changed
struct StreamRow {
  StreamStatus state = StreamStatus::kLive;
  StreamMetadata metadata;
  int64_t version_floor = 0;
  std::optional<absl::Time> deleted_at;
};

// The integer stored in the state column, and back (kDataLoss naming the
// stream for a value that is not 0, 1 or 2).
int64_t StreamStatusCode(StreamStatus state);
absl::StatusOr<StreamStatus> StreamStatusFromCode(std::string_view stream,
                                                  int64_t code);

// How an append sees a stream.
struct AppendBase {
  // What the expected version is checked against: 0 for a soft-deleted
  // stream (it reads as absent), else the stream's version.
  int64_t current = 0;
  // The highest version it ever had: the append writes last + 1 onwards.
  int64_t last = 0;
  // True when the append must also set the row's state back to live (a
  // soft-deleted stream written again).
  bool revives = false;
};

// `max_stored` is the highest version stored in the events table (0 when
// none). HardDeletedStreamError for a hard-deleted stream.
absl::StatusOr<AppendBase> AppendBaseOf(std::string_view stream,
                                        int64_t max_stored,
                                        const std::optional<StreamRow>& row);

// What StreamVersion returns: 0 for a deleted stream, else the highest
// version (max of max_stored and the floor).
int64_t VisibleVersionOf(int64_t max_stored,
                         const std::optional<StreamRow>& row);

// Which of a stream's events reads return: those with version >=
// min_version and recorded at or after min_recorded_at (when set). `last`
// is the stream's highest version; `now` the time max_age counts from.
struct StreamWindow {
  int64_t min_version = 1;
  std::optional<absl::Time> min_recorded_at;
  // True when nothing is visible (a deleted stream): reads return nothing.
  bool empty = false;
};
StreamWindow WindowOf(const std::optional<StreamRow>& row, int64_t last,
                      absl::Time now);

// The StreamDeleted event a deletion appends, with a new id; `tenant_id`
// (the stream's last event's) goes into its metadata, so that tenant-
// filtered readers see it.
EventData StreamDeletedEvent(std::string_view stream, bool hard,
                             int64_t last_version, std::string_view tenant_id);

// Checks a deletion against the stream as AppendBaseOf sees it: kNotFound
// for an absent stream (nothing stored, or soft-deleted) unless the mode is
// hard and rows remain; HardDeletedStreamError for a hard-deleted one;
// kAborted (WrongExpectedVersionError, actual = base.current) when
// `expected` does not match.
absl::Status CheckDelete(std::string_view stream, ExpectedVersion expected,
                         DeleteMode mode, int64_t max_stored,
                         const std::optional<StreamRow>& row);

// The row after a deletion whose marker has version `marker_version`.
StreamRow RowAfterDelete(const std::optional<StreamRow>& row, DeleteMode mode,
                         int64_t marker_version, absl::Time now);

// The row after SetStreamMetadata(metadata): the metadata replaced, except
// that once the stream was deleted its truncate_before never goes down (a
// metadata change cannot bring back events a deletion hid).
StreamRow RowAfterSetMetadata(const std::optional<StreamRow>& row,
                              const StreamMetadata& metadata);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_STREAM_RULES_H_
