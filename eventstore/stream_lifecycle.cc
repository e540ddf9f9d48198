#include "eventstore/stream_lifecycle.h"

#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace eventstore {
namespace {

// The payload that marks HardDeletedStreamError's status.
constexpr char kHardDeletedPayload[] = "eventstore.v1/stream-hard-deleted";

}  // namespace

absl::Status ValidateStreamMetadata(const StreamMetadata& metadata) {
  if (metadata.max_count.has_value() && *metadata.max_count < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_count: ", *metadata.max_count, " is not 1 or more"));
  }
  if (metadata.max_age.has_value() &&
      (*metadata.max_age <= absl::ZeroDuration() ||
       *metadata.max_age == absl::InfiniteDuration())) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_age: ", absl::FormatDuration(*metadata.max_age),
                     " is not a positive, finite duration"));
  }
  if (metadata.max_age.has_value() &&
      *metadata.max_age < absl::Microseconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_age: ", absl::FormatDuration(*metadata.max_age),
                     " is shorter than a microsecond"));
  }
  if (metadata.truncate_before.has_value() && *metadata.truncate_before < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "truncate_before: ", *metadata.truncate_before, " is negative"));
  }
  return absl::OkStatus();
}

std::string_view StreamStatusName(StreamStatus state) {
  switch (state) {
    case StreamStatus::kLive:
      return "live";
    case StreamStatus::kSoftDeleted:
      return "soft-deleted";
    case StreamStatus::kHardDeleted:
      return "hard-deleted";
  }
  return "live";
}

absl::Status HardDeletedStreamError(std::string_view stream) {
  absl::Status status = absl::FailedPreconditionError(
      absl::StrCat("stream '", std::string(stream),
                   "' was hard-deleted: it can never be written again"));
  status.SetPayload(kHardDeletedPayload, absl::Cord(std::string(stream)));
  return status;
}

bool IsHardDeletedStream(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         status.GetPayload(kHardDeletedPayload).has_value();
}

std::optional<v1::StreamDeleted> AsStreamDeleted(const RecordedEvent& event) {
  if (event.type != kStreamDeletedType) return std::nullopt;
  absl::StatusOr<v1::StreamDeleted> deleted = event.As<v1::StreamDeleted>();
  if (!deleted.ok()) return std::nullopt;
  return *std::move(deleted);
}

}  // namespace eventstore
