// The one mapping from store situations to absl::Status codes.
//
//   situation                                    code
//   -------------------------------------------  --------------------
//   expected version does not match              kAborted (payload: expected
//                                                and actual version; see
//                                                IsWrongExpectedVersion)
//   duplicate event id (not an exact retry)      kAlreadyExists; the whole
//                                                batch is rolled back
//   empty batch, bad stream name, oversize       kInvalidArgument; the message
//   payload, bad URL                             names the field
//   unknown event type when decoding             kNotFound; names the type
//   database unreachable / connection lost       kUnavailable; safe to retry
//                                                (appends are idempotent by
//                                                event id)
//   corrupt or foreign database, schema too new  kFailedPrecondition; the file
//                                                is not modified
//   stored payload that does not parse           kDataLoss; names the event
//   stored row not intact (metadata that does    kDataLoss on the event, not
//   not parse, checksum mismatch)                the read: RecordedEvent::
//                                                damage, names the event
//   metadata string that is not valid UTF-8      kInvalidArgument; names the
//                                                field
//
//   absl::StatusOr<AppendResult> r = store.Append(stream, expected, events);
//   if (IsWrongExpectedVersion(r.status())) {
//     std::optional<WrongExpectedVersionInfo> info =
//         GetWrongExpectedVersion(r.status());
//     // reload from info->actual and retry
//   }

#ifndef EVENTSTORE_ERRORS_H_
#define EVENTSTORE_ERRORS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "eventstore/expected_version.h"

namespace eventstore {

// The kAborted status of an append whose expected version did not hold.
absl::Status WrongExpectedVersionError(std::string_view stream,
                                       ExpectedVersion expected,
                                       int64_t actual);

// True for a status made by WrongExpectedVersionError.
bool IsWrongExpectedVersion(const absl::Status& status);

struct WrongExpectedVersionInfo {
  std::string stream;
  ExpectedVersion expected = ExpectedVersion::Any();
  // The stream's version when the append was attempted (0: absent).
  int64_t actual = 0;
};

// The details carried by a WrongExpectedVersionError status; nullopt for any
// other status.
std::optional<WrongExpectedVersionInfo> GetWrongExpectedVersion(
    const absl::Status& status);

}  // namespace eventstore

#endif  // EVENTSTORE_ERRORS_H_
