// Stream lifecycle: deleting streams, capping them (retention), and
// removing for good what deletion and retention hide (scavenging).
//
//   // Soft delete: the stream reads as absent; a later append with
//   // NoStream() or Any() brings it back, numbering on from its old
//   // versions.
//   absl::StatusOr<DeleteResult> d = store->DeleteStream(
//       "order-1", ExpectedVersion::Exactly(5), DeleteMode::kSoft);
//
//   // Retention: keep the newest 100 events, none older than 90 days.
//   StreamMetadata metadata;
//   metadata.max_count = 100;
//   metadata.max_age = absl::Hours(24 * 90);
//   ES_RETURN_IF_ERROR(store->SetStreamMetadata("sensor-7", metadata));
//
//   // Removes what deletions and retention hide, in bounded batches.
//   absl::StatusOr<ScavengeResult> s = store->Scavenge(ScavengeOptions());
//
// The rules (docs/lifecycle.md):
// - A deletion records a StreamDeleted system event (lifecycle.proto) in the
//   deleted stream, at its last version + 1. ReadStream never returns it;
//   ReadAll always does (it reaches category readers of the stream's
//   prefix and projections with an event-type filter: the runner adds the
//   type), and Scavenge keeps it.
// - Soft delete hides the stream's events (as truncate_before = the
//   marker's version + 1): ReadStream returns nothing, StreamVersion is 0,
//   and an append matches NoStream()/Any()/Exactly(0) and continues at the
//   marker's version + 1, so a retried command cannot reuse an old version.
// - Hard delete hides the events and refuses every later append, metadata
//   change or deletion with HardDeletedStreamError (kFailedPrecondition naming
//   the stream). Scavenge removes the hidden rows; snapshots of the stream
//   are removed by the deletion itself.
// - SetStreamMetadata replaces the metadata, but once a stream was deleted
//   its truncate_before never goes down: no metadata change brings back
//   events a deletion hid.
// - Retention (max_count, max_age, truncate_before) hides at once, in
//   ReadStream and ReadAll alike; Scavenge removes the hidden rows later.
//   A stream's version never goes back: an append after its events were
//   all removed continues after the last version it had.
// - Deleting an absent (or soft-deleted) stream with a soft delete is
//   kNotFound; a wrong expected version is kAborted with the actual
//   version (IsWrongExpectedVersion), as for Append.

#ifndef EVENTSTORE_STREAM_LIFECYCLE_H_
#define EVENTSTORE_STREAM_LIFECYCLE_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "eventstore/position.h"
#include "eventstore/recorded_event.h"
#include "eventstore/v1/lifecycle.pb.h"

namespace eventstore {

// The protobuf full name of the deletion system event.
inline constexpr std::string_view kStreamDeletedType =
    "eventstore.v1.StreamDeleted";

enum class DeleteMode {
  // Hide the events; the stream may be written again.
  kSoft,
  // Hide the events (Scavenge removes them) and never accept the stream
  // again.
  kHard,
};

struct DeleteResult {
  // Where the StreamDeleted event was recorded in the global log.
  Position position;
  // The StreamDeleted event's version in the stream (last version + 1).
  int64_t marker_version = 0;
  // Snapshots of the stream removed with it.
  int64_t snapshots_removed = 0;
};

// Retention of one stream (KurrentDB's $maxCount, $maxAge and $tb). Unset
// fields do not limit; a stream without metadata keeps everything. Reads
// honour them at once; Scavenge removes what they hide.
struct StreamMetadata {
  // Keep only the newest max_count events (1 or more).
  std::optional<int64_t> max_count;
  // Hide events recorded longer ago than this (positive).
  std::optional<absl::Duration> max_age;
  // Hide events whose version is below this (0 or more).
  std::optional<int64_t> truncate_before;

  friend bool operator==(const StreamMetadata& a, const StreamMetadata& b) {
    return a.max_count == b.max_count && a.max_age == b.max_age &&
           a.truncate_before == b.truncate_before;
  }
  friend bool operator!=(const StreamMetadata& a, const StreamMetadata& b) {
    return !(a == b);
  }
};

// kInvalidArgument naming the field when a value is out of range.
absl::Status ValidateStreamMetadata(const StreamMetadata& metadata);

enum class StreamStatus {
  // Never deleted, or written again after a soft delete.
  kLive,
  kSoftDeleted,
  kHardDeleted,
};

// "live", "soft-deleted", "hard-deleted".
std::string_view StreamStatusName(StreamStatus state);

struct StreamInfo {
  std::string stream;
  StreamStatus state = StreamStatus::kLive;
  // What StreamVersion returns: 0 for an absent or deleted stream.
  int64_t version = 0;
  // The highest version the stream ever had (deletion markers and removed
  // events included): an append continues after it.
  int64_t last_version = 0;
  // The metadata set with SetStreamMetadata (a soft delete's
  // truncate_before included).
  StreamMetadata metadata;
  // When the stream was last deleted, if it was.
  std::optional<absl::Time> deleted_at;
};

struct ScavengeProgress {
  int64_t events_removed = 0;
  int64_t streams_done = 0;
  int64_t streams_total = 0;
};

struct ScavengeOptions {
  // Most rows removed in one transaction (1 to 100,000): each batch commits
  // alone, so appends wait at most one batch and a scavenge stopped at any
  // point resumes by being run again.
  int64_t batch_size = 1000;
  // Stop after removing about this many events (a whole batch at least):
  // ScavengeResult::complete is then false and the next Scavenge goes on.
  int64_t max_events = std::numeric_limits<int64_t>::max();
  // The time max_age is measured from. Default: now.
  std::optional<absl::Time> now;
  // Give the freed space back afterwards: SQLite runs VACUUM and truncates
  // its write-ahead log; PostgreSQL runs VACUUM FULL on the events table
  // (plain VACUUM leaves removed payloads in the table's files). Slow on a
  // large store; SQLite's VACUUM holds the write lock throughout, and
  // PostgreSQL's VACUUM FULL an ACCESS EXCLUSIVE lock on the events table
  // (appends and reads wait).
  bool compact = false;
  // Called (from the calling thread) after each batch that removed rows,
  // and once more when the scavenge is complete (streams_done ==
  // streams_total).
  std::function<void(const ScavengeProgress&)> progress;
};

struct ScavengeResult {
  int64_t events_removed = 0;
  // Streams that had events removed.
  int64_t streams_scavenged = 0;
  // Streams with metadata or a deletion that were looked at.
  int64_t streams_examined = 0;
  int64_t batches = 0;
  // False when max_events stopped it before the end.
  bool complete = true;
  bool compacted = false;
  absl::Duration elapsed;
};

// The kFailedPrecondition status of a write to a hard-deleted stream.
absl::Status HardDeletedStreamError(std::string_view stream);

// True for a status made by HardDeletedStreamError.
bool IsHardDeletedStream(const absl::Status& status);

// The StreamDeleted payload of a deletion marker as a projection or a log
// reader receives it (ReadAll); nullopt for any other event, and for a
// marker that is damaged or does not parse.
//
//   if (std::optional<v1::StreamDeleted> d = AsStreamDeleted(event)) {
//     DropReadModelOf(d->stream());
//   }
std::optional<v1::StreamDeleted> AsStreamDeleted(const RecordedEvent& event);

}  // namespace eventstore

#endif  // EVENTSTORE_STREAM_LIFECYCLE_H_
