// Text for the log messages of the projection runner and the outbox
// publisher (LogSink messages are one line and name what they concern).
//
// Private to the projections library (not installed).

#ifndef EVENTSTORE_PROJECTIONS_INTERNAL_LOG_TEXT_H_
#define EVENTSTORE_PROJECTIONS_INTERNAL_LOG_TEXT_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "eventstore/recorded_event.h"

namespace eventstore::internal {

// "event <id> (stream '<stream>' version <v>, position <p>)".
std::string DescribeEvent(const RecordedEvent& event);

// "CODE: message" of `status` (payloads left out) on one line: each line
// break (libpq ends its messages with one) becomes a space, trailing
// whitespace is dropped.
std::string OneLine(const absl::Status& status);

// `text` for absl::StrCat, whose AlphaNum takes absl::string_view (not
// std::string_view in the distribution's Abseil).
inline absl::string_view Text(std::string_view text) {
  return absl::string_view(text.data(), text.size());
}

}  // namespace eventstore::internal

#endif  // EVENTSTORE_PROJECTIONS_INTERNAL_LOG_TEXT_H_
