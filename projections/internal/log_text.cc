#include "projections/internal/log_text.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace eventstore::internal {

std::string DescribeEvent(const RecordedEvent& event) {
  return absl::StrCat("event ", event.id.ToString(), " (stream '", event.stream,
                      "' version ", event.version, ", position ",
                      event.position.ToString(), ")");
}

std::string OneLine(const absl::Status& status) {
  // Not Status::ToString(): payloads may hold binary data.
  std::string text = absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                                  status.message());
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  absl::StripTrailingAsciiWhitespace(&text);
  return text;
}

}  // namespace eventstore::internal
