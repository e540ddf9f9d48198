#include "eventstore/failover_url.h"

#include <cstdint>
#include <filesystem>
#include <optional>
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
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/status_macros.h"
#ifdef EVENTSTORE_HAVE_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#endif

namespace eventstore {
namespace {

constexpr int64_t kMaxHealthCheckMs = 3'600'000;
constexpr int64_t kMaxReplayPageSize = 100'000;
constexpr int64_t kMaxReplicaStalenessMs = 3'600'000;
constexpr int64_t kMaxReplicaBatchSize = 100'000;
constexpr char kReplicaSuffix[] = ".replica";
constexpr char kMemoryUrl[] = "sqlite::memory:";

absl::Status BadUrl(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("url: failover: ", std::string(what)));
}

// `value` as a whole number from `low` to `high`.
bool ParseInRange(const std::string& value, int64_t low, int64_t high,
                  int64_t* out) {
  return absl::SimpleAtoi(value, out) && *out >= low && *out <= high;
}

// `s` with each %XX replaced by its byte; nullopt when a % is not followed
// by two hex digits.
std::optional<std::string> PercentDecode(absl::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
    i += 2;
  }
  return out;
}

// The prefixes of replica=VALUE: empty for "*" (every stream).
absl::StatusOr<std::vector<std::string>> ParsePrefixes(
    const std::string& value) {
  if (value == "*") return std::vector<std::string>();
  if (value.empty()) {
    return BadUrl(
        "replica= is empty: give stream prefixes (replica=order-,customer-) "
        "or * for every stream");
  }
  std::vector<std::string> prefixes;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    std::optional<std::string> prefix = PercentDecode(part);
    if (!prefix.has_value()) {
      return BadUrl(absl::StrCat("replica=: prefix ", prefixes.size() + 1,
                                 " has a % not followed by two hex digits"));
    }
    if (prefix->empty()) {
      return BadUrl(absl::StrCat(
          "replica=: prefix ", prefixes.size() + 1,
          " is empty (prefixes are separated by single commas; * alone "
          "copies every stream)"));
    }
    if (*prefix == "*") {
      return BadUrl("replica=: * stands alone (every stream), not in a list");
    }
    prefixes.push_back(*std::move(prefix));
  }
  return prefixes;
}

// The file `sqlite_url` names, absolute and normalised; nullopt for
// sqlite::memory: or a URL that does not parse (opening it says why).
std::optional<std::filesystem::path> SqliteFile(const std::string& sqlite_url) {
  absl::StatusOr<SqliteOptions> options = SqliteOptions::FromUrl(sqlite_url);
  if (!options.ok() || options->path == ":memory:") return std::nullopt;
  std::error_code error;
  std::filesystem::path path = std::filesystem::absolute(options->path, error);
  if (error) return std::nullopt;
  return path.lexically_normal();
}

// `url` with any password masked, to name the primary in the replica.
std::string Masked(const std::string& url) {
#ifdef EVENTSTORE_HAVE_POSTGRES
  return MaskPostgresUrl(url);
#else
  return url;
#endif
}

// Checks the replica parameters of `parsed` (replica_url given or not) and
// fills in the default replica URL.
absl::Status CheckReplica(FailoverUrl& parsed) {
  if (parsed.replica_url.empty()) {
    parsed.replica_url = parsed.journal_url == kMemoryUrl
                             ? std::string(kMemoryUrl)
                             : absl::StrCat(parsed.journal_url, kReplicaSuffix);
    return absl::OkStatus();
  }
  if (!absl::StartsWith(parsed.replica_url, "sqlite:")) {
    return BadUrl("replica_url= must be a SQLite URL (sqlite:PATH)");
  }
  if (parsed.replica_url.find('?') != std::string::npos) {
    return BadUrl("replica_url= cannot have a query of its own");
  }
  absl::StatusOr<SqliteOptions> options =
      SqliteOptions::FromUrl(parsed.replica_url);
  if (!options.ok()) {
    return BadUrl(absl::StrCat("replica_url=: ", options.status().message()));
  }
  const std::optional<std::filesystem::path> replica =
      SqliteFile(parsed.replica_url);
  if (!replica.has_value()) return absl::OkStatus();
  if (replica == SqliteFile(parsed.journal_url)) {
    return BadUrl(
        "replica_url= names the journal's file; the replica needs a file of "
        "its own");
  }
  if (absl::StartsWith(parsed.primary_url, "sqlite:") &&
      replica == SqliteFile(parsed.primary_url)) {
    return BadUrl(
        "replica_url= names the primary's file; the replica needs a file of "
        "its own");
  }
  return absl::OkStatus();
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
  bool has_replica = false;
  // The first replica parameter given that needs replica=.
  std::string replica_parameter;
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
      } else if (key == "recovering_append_wait_ms") {
        int64_t ms = 0;
        if (!ParseInRange(value, 0, kMaxHealthCheckMs, &ms)) {
          return BadUrl(absl::StrCat("recovering_append_wait_ms='", value,
                                     "' is not a whole number of ms from 0 "
                                     "to ",
                                     kMaxHealthCheckMs));
        }
        parsed.options.recovering_append_wait = absl::Milliseconds(ms);
      } else if (key == "replay_page_size") {
        if (!ParseInRange(value, 1, kMaxReplayPageSize,
                          &parsed.options.replay_page_size)) {
          return BadUrl(absl::StrCat("replay_page_size='", value,
                                     "' is not a number from 1 to ",
                                     kMaxReplayPageSize));
        }
      } else if (key == "replica") {
        ES_ASSIGN_OR_RETURN(parsed.options.replica_options.stream_prefixes,
                            ParsePrefixes(value));
        has_replica = true;
      } else if (key == "replica_url") {
        parsed.replica_url = value;
        if (replica_parameter.empty()) replica_parameter = key;
      } else if (key == "replica_staleness_ms") {
        int64_t ms = 0;
        if (!ParseInRange(value, 0, kMaxReplicaStalenessMs, &ms)) {
          return BadUrl(absl::StrCat("replica_staleness_ms='", value,
                                     "' is not a whole number of ms from 0 "
                                     "to ",
                                     kMaxReplicaStalenessMs));
        }
        parsed.options.replica_read_staleness = absl::Milliseconds(ms);
        if (replica_parameter.empty()) replica_parameter = key;
      } else if (key == "replica_batch_size") {
        int64_t size = 0;
        if (!ParseInRange(value, 1, kMaxReplicaBatchSize, &size)) {
          return BadUrl(absl::StrCat("replica_batch_size='", value,
                                     "' is not a number from 1 to ",
                                     kMaxReplicaBatchSize));
        }
        parsed.options.replica_options.batch_size = static_cast<int>(size);
        if (replica_parameter.empty()) replica_parameter = key;
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
  if (!has_replica) {
    if (!replica_parameter.empty()) {
      return BadUrl(absl::StrCat(
          replica_parameter,
          "= needs replica= (replica=order-,customer- or replica=*)"));
    }
    return parsed;
  }
  ES_RETURN_IF_ERROR(CheckReplica(parsed));
  parsed.options.replica_options.primary_description =
      Masked(parsed.primary_url);
  return parsed;
}

}  // namespace eventstore
