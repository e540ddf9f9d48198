#include "eventstore/open_event_store.h"

#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/sqlite/sqlite_event_store.h"
#ifdef EVENTSTORE_HAVE_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#endif
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
#ifdef EVENTSTORE_HAVE_POSTGRES
    ES_ASSIGN_OR_RETURN(PostgresOptions options, PostgresOptions::FromUrl(u));
    return PostgresEventStore::Open(options);
#else
    return absl::InvalidArgumentError(
        "url: the PostgreSQL backend is not part of this build "
        "(EVENTSTORE_WITH_POSTGRES=OFF)");
#endif
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
