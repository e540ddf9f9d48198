// The text form of dead-letter and outbox statuses, as every backend stores
// it and the CLI prints and exports it, and the check of a listing limit.
// Shared so that backends, files and tools agree to the letter.
//
// Example:
//   stmt.BindText(8, internal::DeadLetterStatusName(d.status));
//   std::optional<DeadLetterStatus> s = internal::ParseDeadLetterStatus(text);
//   if (!s.has_value()) return absl::DataLossError(...);

#ifndef EVENTSTORE_INTERNAL_RECORD_STATUS_H_
#define EVENTSTORE_INTERNAL_RECORD_STATUS_H_

#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/outbox_store.h"

namespace eventstore::internal {

// "parked", "retrying" or "resolved".
const char* DeadLetterStatusName(DeadLetterStatus status);

// The status named `name` (see DeadLetterStatusName); nullopt for any other
// text. The caller words the error: it knows which record it read.
std::optional<DeadLetterStatus> ParseDeadLetterStatus(std::string_view name);

// "pending", "published" or "failed".
const char* OutboxStatusName(OutboxStatus status);

// The status named `name` (see OutboxStatusName); nullopt for any other text.
std::optional<OutboxStatus> ParseOutboxStatus(std::string_view name);

// kInvalidArgument when a listing's `limit` is negative.
absl::Status CheckLimit(int limit);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_RECORD_STATUS_H_
