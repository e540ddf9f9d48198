#include "eventstore/internal/stream_rules.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/errors.h"
#include "eventstore/v1/lifecycle.pb.h"

namespace eventstore::internal {

int64_t StreamStatusCode(StreamStatus state) {
  switch (state) {
    case StreamStatus::kLive:
      return 0;
    case StreamStatus::kSoftDeleted:
      return 1;
    case StreamStatus::kHardDeleted:
      return 2;
  }
  return 0;
}

absl::StatusOr<StreamStatus> StreamStatusFromCode(std::string_view stream,
                                                  int64_t code) {
  switch (code) {
    case 0:
      return StreamStatus::kLive;
    case 1:
      return StreamStatus::kSoftDeleted;
    case 2:
      return StreamStatus::kHardDeleted;
    default:
      return absl::DataLossError(absl::StrCat("stream '", std::string(stream),
                                              "' has an unknown state ", code,
                                              " in the streams table"));
  }
}

absl::StatusOr<AppendBase> AppendBaseOf(std::string_view stream,
                                        int64_t max_stored,
                                        const std::optional<StreamRow>& row) {
  AppendBase base;
  base.last = max_stored;
  if (!row.has_value()) {
    base.current = max_stored;
    return base;
  }
  base.last = std::max(max_stored, row->version_floor);
  switch (row->state) {
    case StreamStatus::kHardDeleted:
      return HardDeletedStreamError(stream);
    case StreamStatus::kSoftDeleted:
      base.current = 0;
      base.revives = true;
      break;
    case StreamStatus::kLive:
      base.current = base.last;
      break;
  }
  return base;
}

int64_t VisibleVersionOf(int64_t max_stored,
                         const std::optional<StreamRow>& row) {
  if (!row.has_value()) return max_stored;
  if (row->state != StreamStatus::kLive) return 0;
  return std::max(max_stored, row->version_floor);
}

StreamWindow WindowOf(const std::optional<StreamRow>& row, int64_t last,
                      absl::Time now) {
  StreamWindow window;
  if (!row.has_value()) return window;
  if (row->state != StreamStatus::kLive) {
    window.empty = true;
    window.min_version = last + 1;
    return window;
  }
  const StreamMetadata& m = row->metadata;
  if (m.truncate_before.has_value()) {
    window.min_version = std::max(window.min_version, *m.truncate_before);
  }
  if (m.max_count.has_value()) {
    window.min_version = std::max(window.min_version, last - *m.max_count + 1);
  }
  if (m.max_age.has_value()) window.min_recorded_at = now - *m.max_age;
  return window;
}

EventData StreamDeletedEvent(std::string_view stream, bool hard,
                             int64_t last_version, std::string_view tenant_id) {
  v1::StreamDeleted deleted;
  deleted.set_stream(std::string(stream));
  deleted.set_hard(hard);
  deleted.set_last_version(last_version);
  EventData event = EventData::From(deleted);
  if (!tenant_id.empty()) {
    event.metadata.set_tenant_id(std::string(tenant_id));
  }
  return event;
}

absl::Status CheckDelete(std::string_view stream, ExpectedVersion expected,
                         DeleteMode mode, int64_t max_stored,
                         const std::optional<StreamRow>& row) {
  if (row.has_value() && row->state == StreamStatus::kHardDeleted) {
    return HardDeletedStreamError(stream);
  }
  const bool soft_deleted =
      row.has_value() && row->state == StreamStatus::kSoftDeleted;
  const int64_t current = VisibleVersionOf(max_stored, row);
  const bool absent = current == 0;
  if (absent && !(mode == DeleteMode::kHard && soft_deleted)) {
    return absl::NotFoundError(
        absl::StrCat("stream '", std::string(stream), "' ",
                     soft_deleted ? "is already deleted" : "does not exist",
                     ": nothing to delete"));
  }
  if (!expected.Matches(current)) {
    return WrongExpectedVersionError(stream, expected, current);
  }
  return absl::OkStatus();
}

StreamRow RowAfterDelete(const std::optional<StreamRow>& row, DeleteMode mode,
                         int64_t marker_version, absl::Time now) {
  StreamRow after = row.value_or(StreamRow());
  after.state = mode == DeleteMode::kHard ? StreamStatus::kHardDeleted
                                          : StreamStatus::kSoftDeleted;
  after.metadata.truncate_before = marker_version + 1;
  after.version_floor = std::max(after.version_floor, marker_version);
  after.deleted_at = now;
  return after;
}

StreamRow RowAfterSetMetadata(const std::optional<StreamRow>& row,
                              const StreamMetadata& metadata) {
  StreamRow after = row.value_or(StreamRow());
  const std::optional<int64_t> floor = after.deleted_at.has_value()
                                           ? after.metadata.truncate_before
                                           : std::nullopt;
  after.metadata = metadata;
  if (floor.has_value()) {
    after.metadata.truncate_before =
        std::max(*floor, metadata.truncate_before.value_or(0));
  }
  return after;
}

}  // namespace eventstore::internal
