#include "eventstore/position.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace eventstore {

absl::StatusOr<Position> Position::Parse(std::string_view text) {
  const std::string s(text);
  // Digits and at most one '/': SimpleAtoi alone would accept white space
  // and signs.
  int slashes = 0;
  for (char c : s) {
    if (c == '/') {
      ++slashes;
    } else if (c < '0' || c > '9') {
      slashes = 2;
    }
  }
  if (slashes > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "position: '", s.substr(0, 64), "' is not N or C/P (whole numbers)"));
  }
  const size_t slash = s.find('/');
  uint64_t commit = 0;
  uint64_t prepare = 0;
  bool ok;
  if (slash == std::string::npos) {
    ok = absl::SimpleAtoi(s, &commit);
    prepare = commit;
  } else {
    ok = absl::SimpleAtoi(s.substr(0, slash), &commit) &&
         absl::SimpleAtoi(s.substr(slash + 1), &prepare);
  }
  if (!ok || s.empty() || s[0] == '+' || s[0] == '-') {
    return absl::InvalidArgumentError(absl::StrCat(
        "position: '", s.substr(0, 64), "' is not N or C/P (whole numbers)"));
  }
  return Position(commit, prepare);
}

std::string Position::ToString() const {
  if (commit_ == prepare_) return absl::StrCat(commit_);
  return absl::StrCat(commit_, "/", prepare_);
}

}  // namespace eventstore
