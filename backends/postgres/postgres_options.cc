// PostgresOptions::FromUrl and MaskPostgresUrl.

#include <libpq-fe.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "backends/postgres/pg_schema.h"
#include "backends/postgres/postgres_event_store.h"

namespace eventstore {
namespace {

absl::Status BadUrl(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("url: ", std::string(what)));
}

bool ParseMillis(const std::string& value, absl::Duration* out) {
  int64_t ms;
  if (!absl::SimpleAtoi(value, &ms) || ms < 0 ||
      ms > PostgresOptions::kMaxTimeoutMs) {
    return false;
  }
  *out = absl::Milliseconds(ms);
  return true;
}

bool ParseBool(const std::string& value, bool* out) {
  if (value == "true" || value == "1") {
    *out = true;
  } else if (value == "false" || value == "0") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::string MaskPostgresUrl(std::string_view url) {
  std::string out(url);
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = out.find_first_of("/?", start);
    const size_t at =
        out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at > start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // password=... as a query parameter or a key=value connection string.
  for (size_t pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    const size_t value = pos + 9;
    const size_t end = out.find_first_of("& ", value);
    out.replace(value, (end == std::string::npos ? out.size() : end) - value,
                "***");
  }
  return out;
}

absl::StatusOr<PostgresOptions> PostgresOptions::FromUrl(std::string_view url) {
  const std::string u(url);
  if (!absl::StartsWith(u, "postgresql://") &&
      !absl::StartsWith(u, "postgres://")) {
    return BadUrl(absl::StrCat("'", MaskPostgresUrl(u.substr(0, 40)),
                               "' does not start with postgresql://"));
  }
  if (u.find('\0') != std::string::npos) {
    return BadUrl("the URL holds a NUL byte");
  }
  PostgresOptions options;
  std::string base = u;
  std::vector<std::string> passed;
  const size_t q = u.find('?');
  if (q != std::string::npos) {
    base = u.substr(0, q);
    for (absl::string_view pair : absl::StrSplit(u.substr(q + 1), '&')) {
      if (pair.empty()) continue;
      std::vector<std::string> kv =
          absl::StrSplit(pair, absl::MaxSplits('=', 1));
      if (kv.size() != 2 || kv[0].empty()) {
        return BadUrl(absl::StrCat("query parameter '",
                                   MaskPostgresUrl(std::string(pair)),
                                   "' is not key=value"));
      }
      const std::string& key = kv[0];
      const std::string& value = kv[1];
      if (key == "schema") {
        options.schema = value;
      } else if (key == "pool_size") {
        if (!absl::SimpleAtoi(value, &options.pool_size) ||
            options.pool_size < 1 ||
            options.pool_size > PostgresOptions::kMaxPoolSize) {
          return BadUrl(absl::StrCat("pool_size='", value,
                                     "' is not a number from 1 to ",
                                     PostgresOptions::kMaxPoolSize));
        }
      } else if (key == "connect_timeout_ms" || key == "statement_timeout_ms") {
        if (!ParseMillis(value, key == "connect_timeout_ms"
                                    ? &options.connect_timeout
                                    : &options.statement_timeout)) {
          return BadUrl(absl::StrCat(key, "='", value,
                                     "' is not a whole number of ms from 0 "
                                     "to ",
                                     PostgresOptions::kMaxTimeoutMs));
        }
      } else if (key == "notify_on_append" || key == "read_only" ||
                 key == "upgrade_schema" || key == "verify_checksums") {
        bool* field = key == "notify_on_append" ? &options.notify_on_append
                      : key == "read_only"      ? &options.read_only
                      : key == "upgrade_schema" ? &options.upgrade_schema
                                                : &options.verify_checksums;
        if (!ParseBool(value, field)) {
          return BadUrl(
              absl::StrCat(key, "='", value, "' is not true or false"));
        }
      } else {
        passed.push_back(std::string(pair));
      }
    }
  }
  options.conninfo = passed.empty()
                         ? base
                         : absl::StrCat(base, "?", absl::StrJoin(passed, "&"));
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.conninfo.c_str(), &error);
  if (parsed == nullptr) {
    std::string message = error != nullptr ? error : "cannot be parsed";
    PQfreemem(error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return BadUrl(absl::StrCat("'", MaskPostgresUrl(options.conninfo),
                               "': ", MaskPostgresUrl(message)));
  }
  PQconninfoFree(parsed);
  absl::Status schema = postgres::ValidateSchemaName(options.schema);
  if (!schema.ok()) return BadUrl(std::string(schema.message()));
  return options;
}

}  // namespace eventstore
