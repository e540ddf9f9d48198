#include "eventstore/open_event_store.h"

#include <cstdlib>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/sqlite/sqlite_event_store.h"
#ifdef EVENTSTORE_HAVE_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#endif
#include "eventstore/failover_event_store.h"
#include "eventstore/failover_url.h"
#include "eventstore/status_macros.h"

namespace eventstore {

namespace {

// Copies the shared options into a backend's options struct.
template <typename BackendOptions>
void Apply(const OpenOptions& from, BackendOptions& to) {
  to.limits = from.limits;
  to.type_registry = from.type_registry;
  to.create_if_missing = from.create_if_missing;
}

// The replica store of a failover URL (a SQLite URL, default options);
// errors name it.
absl::StatusOr<std::unique_ptr<EventStore>> OpenReplica(
    const std::string& url, const OpenOptions& open_options) {
  absl::StatusOr<SqliteOptions> options = SqliteOptions::FromUrl(url);
  absl::StatusOr<std::unique_ptr<EventStore>> store;
  if (options.ok()) {
    options->type_registry = open_options.type_registry;
    store = SqliteEventStore::Open(*options);
    if (store.ok()) return store;
  }
  const absl::Status& error = options.ok() ? store.status() : options.status();
#ifdef EVENTSTORE_HAVE_POSTGRES
  const std::string shown = MaskPostgresUrl(url);
  const std::string message = MaskPostgresUrl(std::string(error.message()));
#else
  const std::string shown = url;
  const std::string message(error.message());
#endif
  return absl::Status(error.code(),
                      absl::StrCat("failover: replica ", shown, ": ", message));
}

// A FailoverEventStore over the primary, the journal and the replica a
// failover URL names (failover_url.h).
absl::StatusOr<std::unique_ptr<EventStore>> OpenFailover(
    std::string_view url, const OpenOptions& open_options) {
  ES_ASSIGN_OR_RETURN(FailoverUrl parsed, ParseFailoverUrl(url));
  ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> primary,
                      OpenEventStore(parsed.primary_url, open_options));
  ES_ASSIGN_OR_RETURN(SqliteOptions journal_options,
                      SqliteOptions::FromUrl(parsed.journal_url));
  journal_options.limits = FailoverEventStore::JournalLimits(primary->limits());
  journal_options.type_registry = open_options.type_registry;
  ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> journal,
                      SqliteEventStore::Open(journal_options));
  if (!parsed.replica_url.empty()) {
    // A plain store: a StoreReplica imports copies into it.
    absl::StatusOr<std::unique_ptr<EventStore>> replica =
        OpenReplica(parsed.replica_url, open_options);
    if (!replica.ok()) return replica.status();
    parsed.options.replica = *std::move(replica);
  }
  parsed.options.limits = primary->limits();
  parsed.options.instrumentation = open_options.instrumentation;
  parsed.options.log_sink = open_options.log_sink;
  ES_ASSIGN_OR_RETURN(
      std::unique_ptr<FailoverEventStore> store,
      FailoverEventStore::Create(std::move(primary), std::move(journal),
                                 parsed.options));
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(
    std::string_view url) {
  return OpenEventStore(url, OpenOptions());
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(
    std::string_view url, const OpenOptions& open_options) {
  const std::string u(url);
  if (absl::StartsWith(u, kFailoverScheme)) {
    return OpenFailover(u, open_options);
  }
  if (absl::StartsWith(u, "sqlite:")) {
    ES_ASSIGN_OR_RETURN(SqliteOptions options, SqliteOptions::FromUrl(u));
    Apply(open_options, options);
    return SqliteEventStore::Open(options);
  }
  if (absl::StartsWith(u, "postgresql:") || absl::StartsWith(u, "postgres:")) {
#ifdef EVENTSTORE_HAVE_POSTGRES
    ES_ASSIGN_OR_RETURN(PostgresOptions options, PostgresOptions::FromUrl(u));
    Apply(open_options, options);
    options.instrumentation = open_options.instrumentation;
    options.log_sink = open_options.log_sink;
    return PostgresEventStore::Open(options);
#else
    return absl::InvalidArgumentError(
        "url: the PostgreSQL backend is not part of this build "
        "(EVENTSTORE_WITH_POSTGRES=OFF)");
#endif
  }
  const size_t colon = u.find(':');
  if (colon != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("url: unknown scheme '", u.substr(0, colon),
                     "'; expected sqlite:, postgresql: or failover:"));
  }
  // A bare path: suggest the SQLite URL of it (unless it may hold a
  // credential, as a libpq "key=value" string may: never echo those).
  const bool echo = !u.empty() && u.find_first_of("=@ \t") == std::string::npos;
  return absl::InvalidArgumentError(
      absl::StrCat("url: no scheme; expected sqlite: or postgresql:",
                   echo ? absl::StrCat(" (a SQLite file: sqlite:", u, ")")
                        : std::string(" (a SQLite file: sqlite:PATH)")));
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore() {
  return OpenEventStore(OpenOptions());
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(
    const OpenOptions& options) {
  const char* env = std::getenv("EVENTSTORE_URL");
  if (env != nullptr && env[0] != '\0') return OpenEventStore(env, options);
  return OpenEventStore(kDefaultUrl, options);
}

}  // namespace eventstore
