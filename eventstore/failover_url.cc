#include "eventstore/failover_url.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace eventstore {
namespace {

constexpr int64_t kMaxHealthCheckMs = 3'600'000;
constexpr int64_t kMaxReplayPageSize = 100'000;

absl::Status BadUrl(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("url: failover: ", std::string(what)));
}

// `value` as a whole number from `low` to `high`.
bool ParseInRange(const std::string& value, int64_t low, int64_t high,
                  int64_t* out) {
  return absl::SimpleAtoi(value, out) && *out >= low && *out <= high;
}

}  // namespace

absl::StatusOr<FailoverUrl> ParseFailoverUrl(std::string_view url_view) {
  const std::string url(url_view);
  if (!absl::StartsWith(url, kFailoverScheme)) {
    return absl::InvalidArgumentError(
        "url: a failover URL starts with failover:");
  }
  const std::string rest = url.substr(std::string_view(kFailoverScheme).size());
  if (rest.empty()) {
    return BadUrl("no primary URL after failover:");
  }
  if (absl::StartsWith(rest, kFailoverScheme)) {
    return BadUrl("the primary cannot be another failover URL");
  }

  FailoverUrl parsed;
  parsed.options.allow_fallback = true;
  std::string base = rest;
  std::vector<std::string> kept;
  bool has_journal = false;
  const size_t q = rest.find('?');
  if (q != std::string::npos) {
    base = rest.substr(0, q);
    for (absl::string_view pair : absl::StrSplit(rest.substr(q + 1), '&')) {
      if (pair.empty()) continue;
      const size_t eq = pair.find('=');
      const std::string key(pair.substr(0, eq));
      const std::string value(
          eq == absl::string_view::npos ? "" : pair.substr(eq + 1));
      if (key == "journal") {
        if (!absl::StartsWith(value, "sqlite:")) {
          return BadUrl("journal= must be a SQLite URL (sqlite:PATH)");
        }
        parsed.journal_url = value;
        has_journal = true;
      } else if (key == "allow_fallback") {
        if (value == "true" || value == "1") {
          parsed.options.allow_fallback = true;
        } else if (value == "false" || value == "0") {
          parsed.options.allow_fallback = false;
        } else {
          return BadUrl(absl::StrCat("allow_fallback='", value,
                                     "' is not true or false"));
        }
      } else if (key == "health_check_interval_ms") {
        int64_t ms = 0;
        if (!ParseInRange(value, 0, kMaxHealthCheckMs, &ms)) {
          return BadUrl(absl::StrCat("health_check_interval_ms='", value,
                                     "' is not a whole number of ms from 0 "
                                     "to ",
                                     kMaxHealthCheckMs));
        }
        parsed.options.health_check_interval = absl::Milliseconds(ms);
      } else if (key == "replay_page_size") {
        if (!ParseInRange(value, 1, kMaxReplayPageSize,
                          &parsed.options.replay_page_size)) {
          return BadUrl(absl::StrCat("replay_page_size='", value,
                                     "' is not a number from 1 to ",
                                     kMaxReplayPageSize));
        }
      } else if (key == "replica") {
        return absl::UnimplementedError(
            "url: failover: replica= is not available yet (the local "
            "replica of issue 11)");
      } else {
        if (key == "read_only" && (value == "true" || value == "1")) {
          return BadUrl(
              "read_only=true: a failover store writes; open the primary's "
              "URL itself to read");
        }
        kept.push_back(std::string(pair));
      }
    }
  }
  if (!has_journal) {
    return BadUrl("journal= is required (journal=sqlite:PATH)");
  }
  if (parsed.journal_url.find('?') != std::string::npos) {
    return BadUrl("journal= cannot have a query of its own");
  }
  parsed.primary_url =
      kept.empty() ? base : absl::StrCat(base, "?", absl::StrJoin(kept, "&"));
  return parsed;
}

}  // namespace eventstore
