#include "tools/lifecycle_args.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace eventstore::tools {

absl::StatusOr<ExpectedVersion> ParseExpectedVersion(std::string_view option,
                                                     std::string_view text) {
  if (text == "any") return ExpectedVersion::Any();
  if (text == "no-stream") return ExpectedVersion::NoStream();
  if (text == "exists") return ExpectedVersion::StreamExists();
  int64_t version = 0;
  if (absl::SimpleAtoi(std::string(text), &version) && version >= 0) {
    return ExpectedVersion::Exactly(version);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(option), ": '", std::string(text),
                   "' is not a version (a whole number 0 or more, any, "
                   "no-stream or exists)"));
}

absl::StatusOr<absl::Duration> ParseRetentionAge(std::string_view option,
                                                 std::string_view text) {
  const std::string given(text);
  absl::Duration d;
  bool parsed = false;
  if (!given.empty() && given.back() == 'd') {
    int64_t days = 0;
    parsed = absl::SimpleAtoi(given.substr(0, given.size() - 1), &days) &&
             days >= 0 && days <= 1'000'000;
    if (parsed) d = absl::Hours(24) * days;
  } else if (!given.empty() && absl::ascii_isdigit(given.front())) {
    parsed = absl::ParseDuration(given, &d);
  }
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(option), ": '", given,
                     "' is not a duration (a whole number with d, h, m or "
                     "s: 90d, 12h, 30m, 45s)"));
  }
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(option), ": '", given, "' must be a positive duration"));
  }
  return d;
}

std::string RetentionAgeText(absl::Duration d) {
  const absl::Duration day = absl::Hours(24);
  if (d > absl::ZeroDuration() && d % day == absl::ZeroDuration()) {
    absl::Duration rest;
    return absl::StrCat(absl::IDivDuration(d, day, &rest), "d");
  }
  return absl::FormatDuration(d);
}

}  // namespace eventstore::tools
