// The arguments of the stream lifecycle commands (`eventstore delete`,
// `stream-metadata`; docs/cli.md), parsed with messages that name the
// option and never echo more than the value given.
//
//   absl::StatusOr<ExpectedVersion> v =
//       ParseExpectedVersion("--expected-version", "exists");
//   absl::StatusOr<absl::Duration> age = ParseRetentionAge("--max-age", "90d");

#ifndef EVENTSTORE_TOOLS_LIFECYCLE_ARGS_H_
#define EVENTSTORE_TOOLS_LIFECYCLE_ARGS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/expected_version.h"
#include "eventstore/stream_lifecycle.h"

namespace eventstore::tools {

// "any", "no-stream", "exists" or a whole number 0 or more (Exactly(N)).
// kInvalidArgument naming `option` otherwise.
absl::StatusOr<ExpectedVersion> ParseExpectedVersion(std::string_view option,
                                                     std::string_view text);

// A positive duration: a whole number of days ("90d"), or what
// absl::ParseDuration takes ("12h", "30m", "45s", "1h30m"). kInvalidArgument
// naming `option` for anything else, zero or negative.
absl::StatusOr<absl::Duration> ParseRetentionAge(std::string_view option,
                                                 std::string_view text);

// The shortest text ParseRetentionAge reads back as `d`: "90d" for whole
// days, else absl::FormatDuration ("12h", "1h30m").
std::string RetentionAgeText(absl::Duration d);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_LIFECYCLE_ARGS_H_
