#include "eventstore/internal/record_status.h"

#include "absl/strings/str_cat.h"

namespace eventstore::internal {

const char* DeadLetterStatusName(DeadLetterStatus status) {
  switch (status) {
    case DeadLetterStatus::kParked:
      return "parked";
    case DeadLetterStatus::kRetrying:
      return "retrying";
    case DeadLetterStatus::kResolved:
      return "resolved";
  }
  return "parked";
}

std::optional<DeadLetterStatus> ParseDeadLetterStatus(std::string_view name) {
  if (name == "parked") return DeadLetterStatus::kParked;
  if (name == "retrying") return DeadLetterStatus::kRetrying;
  if (name == "resolved") return DeadLetterStatus::kResolved;
  return std::nullopt;
}

const char* OutboxStatusName(OutboxStatus status) {
  switch (status) {
    case OutboxStatus::kPending:
      return "pending";
    case OutboxStatus::kPublished:
      return "published";
    case OutboxStatus::kFailed:
      return "failed";
  }
  return "pending";
}

std::optional<OutboxStatus> ParseOutboxStatus(std::string_view name) {
  if (name == "pending") return OutboxStatus::kPending;
  if (name == "published") return OutboxStatus::kPublished;
  if (name == "failed") return OutboxStatus::kFailed;
  return std::nullopt;
}

absl::Status CheckLimit(int limit) {
  if (limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: ", limit, " is negative"));
  }
  return absl::OkStatus();
}

}  // namespace eventstore::internal
