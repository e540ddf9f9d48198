#include "eventstore/instrumentation.h"

#include "absl/status/status.h"
#include "eventstore/errors.h"

namespace eventstore {

std::string_view AppendOutcomeName(AppendOutcome outcome) {
  switch (outcome) {
    case AppendOutcome::kOk:
      return "ok";
    case AppendOutcome::kWrongExpectedVersion:
      return "wrong_expected_version";
    case AppendOutcome::kDuplicate:
      return "duplicate";
    case AppendOutcome::kIdempotentRetry:
      return "idempotent_retry";
    case AppendOutcome::kUnavailable:
      return "unavailable";
    case AppendOutcome::kOther:
      return "other";
  }
  return "other";
}

AppendOutcome ClassifyAppend(const absl::StatusOr<AppendResult>& result) {
  if (result.ok()) {
    return result->idempotent_retry ? AppendOutcome::kIdempotentRetry
                                    : AppendOutcome::kOk;
  }
  const absl::Status& status = result.status();
  if (IsWrongExpectedVersion(status)) {
    return AppendOutcome::kWrongExpectedVersion;
  }
  switch (status.code()) {
    case absl::StatusCode::kAlreadyExists:
      return AppendOutcome::kDuplicate;
    case absl::StatusCode::kUnavailable:
      return AppendOutcome::kUnavailable;
    default:
      return AppendOutcome::kOther;
  }
}

std::string_view ReadKindName(ReadKind kind) {
  switch (kind) {
    case ReadKind::kReadStream:
      return "read_stream";
    case ReadKind::kReadAll:
      return "read_all";
  }
  return "read_stream";
}

std::string_view OutboxSendOutcomeName(OutboxSendOutcome outcome) {
  switch (outcome) {
    case OutboxSendOutcome::kPublished:
      return "published";
    case OutboxSendOutcome::kFailed:
      return "failed";
    case OutboxSendOutcome::kGaveUp:
      return "gave_up";
  }
  return "failed";
}

}  // namespace eventstore
