// Backend-neutral checks and decisions of the SubjectKeyStore
// (subject_key_store.h), shared by every backend so that they agree to the
// letter: what a valid subject, key and record is, and what Put does with
// a record when the store holds one for the same subject already.

#ifndef EVENTSTORE_INTERNAL_SUBJECT_KEY_RULES_H_
#define EVENTSTORE_INTERNAL_SUBJECT_KEY_RULES_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/limits.h"
#include "eventstore/subject_key_store.h"

namespace eventstore::internal {

// Longest master key id accepted, in bytes.
inline constexpr size_t kMaxMasterKeyIdBytes = 255;

// kInvalidArgument naming the field ("subject: ...") for an empty subject,
// one longer than limits.max_stream_name_bytes (the stream-name limit), or
// one that is not valid UTF-8 or holds a control character.
absl::Status ValidateSubject(const StoreLimits& limits,
                             std::string_view subject);

// kInvalidArgument naming the field for an empty wrapped key, or an empty,
// over-long (kMaxMasterKeyIdBytes), non-UTF-8 or control-character master
// key id. `prefix` ("" or "records[3].") starts the field's name.
absl::Status ValidateWrappedKey(std::string_view prefix,
                                std::string_view wrapped_key,
                                std::string_view master_key_id);

// kInvalidArgument naming the field for a List cursor `after` that is not
// valid UTF-8, or a limit that is not positive.
absl::Status ValidateList(std::string_view after, int64_t limit);

// The records of a Put, checked (kInvalidArgument naming "records[i]...":
// a bad subject, a live record with a bad key, a forgotten one that still
// holds a key or master key id, a subject twice in the batch) and with
// every infinite created_at / forgotten_at replaced by `now`, to be
// written as they are then.
absl::StatusOr<std::vector<SubjectKeyRecord>> PreparePut(
    const StoreLimits& limits, const std::vector<SubjectKeyRecord>& records,
    absl::Time now);

// What Put does with one prepared record.
enum class PutAction {
  kKeep,    // the stored record stays (same key, or stored one forgotten)
  kInsert,  // no record stored: write it as given
  kForget,  // the stored live record becomes this forgotten one
};

// Decides for `incoming` given the record `stored` for its subject
// (nullopt: none). kFailedPrecondition naming the subject when both are
// live with different keys (two stores that encrypted independently): a
// stored key is never overwritten, and a forgotten subject never revived.
absl::StatusOr<PutAction> DecidePut(
    const std::optional<SubjectKeyRecord>& stored,
    const SubjectKeyRecord& incoming);

// The refusal of Insert for a forgotten subject (kFailedPrecondition).
absl::Status ForgottenSubjectError(std::string_view subject);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_SUBJECT_KEY_RULES_H_
