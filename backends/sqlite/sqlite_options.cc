// SqliteOptions::FromUrl.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "backends/sqlite/sqlite_event_store.h"

namespace eventstore {
namespace {

absl::Status BadUrl(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("url: ", std::string(what)));
}

// "true"/"1"/"on" or "false"/"0"/"off" (`lower` is lower-case).
bool ParseBool(const std::string& lower, bool* out) {
  if (lower == "true" || lower == "1" || lower == "on") {
    *out = true;
  } else if (lower == "false" || lower == "0" || lower == "off") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

absl::Status ApplyParameter(const std::string& key, const std::string& value,
                            SqliteOptions& options) {
  const std::string lower = absl::AsciiStrToLower(value);
  if (key == "synchronous") {
    if (lower == "off") {
      options.synchronous = SqliteOptions::Synchronous::kOff;
    } else if (lower == "normal") {
      options.synchronous = SqliteOptions::Synchronous::kNormal;
    } else if (lower == "full") {
      options.synchronous = SqliteOptions::Synchronous::kFull;
    } else if (lower == "extra") {
      options.synchronous = SqliteOptions::Synchronous::kExtra;
    } else {
      return BadUrl(absl::StrCat("synchronous='", value,
                                 "' is not off, normal, full or extra"));
    }
  } else if (key == "wal" || key == "read_only" || key == "upgrade_schema" ||
             key == "verify_checksums" || key == "background_checkpoint") {
    bool* field = key == "wal"                ? &options.wal
                  : key == "read_only"        ? &options.read_only
                  : key == "upgrade_schema"   ? &options.upgrade_schema
                  : key == "verify_checksums" ? &options.verify_checksums
                                              : &options.background_checkpoint;
    if (!ParseBool(lower, field)) {
      return BadUrl(absl::StrCat(key, "='", value, "' is not true or false"));
    }
  } else if (key == "busy_timeout_ms") {
    int64_t ms;
    if (!absl::SimpleAtoi(value, &ms) || ms < 0 ||
        ms > SqliteOptions::kMaxBusyTimeoutMs) {
      return BadUrl(absl::StrCat("busy_timeout_ms='", value,
                                 "' is not a whole number of milliseconds "
                                 "from 0 to ",
                                 SqliteOptions::kMaxBusyTimeoutMs));
    }
    options.busy_timeout = absl::Milliseconds(ms);
  } else if (key == "max_readers") {
    int n;
    if (!absl::SimpleAtoi(value, &n) || n < 1 ||
        n > SqliteOptions::kMaxReaders) {
      return BadUrl(absl::StrCat("max_readers='", value,
                                 "' is not a number from 1 to ",
                                 SqliteOptions::kMaxReaders));
    }
    options.max_readers = n;
  } else if (key == "cache_size_mb" || key == "mmap_size_mb") {
    const bool cache = key == "cache_size_mb";
    const int low = cache ? 1 : 0;
    const int high =
        cache ? SqliteOptions::kMaxCacheSizeMb : SqliteOptions::kMaxMmapSizeMb;
    int mb;
    if (!absl::SimpleAtoi(value, &mb) || mb < low || mb > high) {
      return BadUrl(absl::StrCat(key, "='", value,
                                 "' is not a whole number of MiB from ", low,
                                 " to ", high));
    }
    (cache ? options.cache_size_mb : options.mmap_size_mb) = mb;
  } else {
    return BadUrl(absl::StrCat("unknown parameter '", key,
                               "' (known: synchronous, wal, busy_timeout_ms, "
                               "max_readers, cache_size_mb, mmap_size_mb, "
                               "read_only, upgrade_schema, "
                               "verify_checksums, background_checkpoint)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SqliteOptions> SqliteOptions::FromUrl(std::string_view url) {
  std::string rest(url);
  if (!absl::StartsWith(rest, "sqlite:")) {
    return BadUrl(absl::StrCat("'", rest.substr(0, rest.find(':')),
                               "' is not a sqlite: URL"));
  }
  rest = rest.substr(7);
  std::string query;
  const size_t q = rest.find('?');
  if (q != std::string::npos) {
    query = rest.substr(q + 1);
    rest.resize(q);
  }
  if (url.find('\0') != std::string_view::npos) {
    return BadUrl("the URL holds a NUL byte");
  }
  SqliteOptions options;
  if (rest == ":memory:") {
    options.path = ":memory:";
  } else if (absl::StartsWith(rest, "//")) {
    // sqlite:///abs/path: an empty authority, then the absolute path.
    rest = rest.substr(2);
    if (!absl::StartsWith(rest, "/")) {
      return BadUrl(absl::StrCat(
          "sqlite://", rest,
          ": a host is not allowed; use sqlite:///absolute/path or "
          "sqlite:relative/path"));
    }
    options.path = rest;
  } else {
    options.path = rest;
  }
  if (options.path.empty() || options.path == "/") {
    return BadUrl(
        "the database path is empty (sqlite:events.db, "
        "sqlite:///abs/events.db or sqlite::memory:)");
  }
  if (!query.empty()) {
    for (absl::string_view pair : absl::StrSplit(query, '&')) {
      if (pair.empty()) continue;
      std::vector<std::string> kv =
          absl::StrSplit(pair, absl::MaxSplits('=', 1));
      if (kv.size() != 2 || kv[0].empty()) {
        return BadUrl(absl::StrCat("query parameter '", std::string(pair),
                                   "' is not key=value"));
      }
      absl::Status status = ApplyParameter(kv[0], kv[1], options);
      if (!status.ok()) return status;
    }
  }
  return options;
}

}  // namespace eventstore
