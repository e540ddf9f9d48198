#include "eventstore/open_event_store.h"

#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/status_macros.h"

namespace eventstore {

absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(
    std::string_view url) {
  const std::string u(url);
  if (absl::StartsWith(u, "sqlite:")) {
    ES_ASSIGN_OR_RETURN(SqliteOptions options, SqliteOptions::FromUrl(u));
    return SqliteEventStore::Open(options);
  }
  if (absl::StartsWith(u, "postgresql:") || absl::StartsWith(u, "postgres:")) {
    return absl::InvalidArgumentError(
        "url: the PostgreSQL backend is not part of this build");
  }
  const size_t colon = u.find(':');
  return absl::InvalidArgumentError(absl::StrCat(
      "url: unknown scheme '",
      colon == std::string::npos ? std::string("(none)") : u.substr(0, colon),
      "'; expected sqlite: or postgresql:"));
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore() {
  const char* env = std::getenv("EVENTSTORE_URL");
  if (env != nullptr && env[0] != '\0') return OpenEventStore(env);
  return OpenEventStore(kDefaultUrl);
}

}  // namespace eventstore
