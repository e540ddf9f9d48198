// OpenEventStore: a store from a URL, whatever the backend.
//
//   // EVENTSTORE_URL when set, else "sqlite:events.db":
//   absl::StatusOr<std::unique_ptr<eventstore::EventStore>> store =
//       eventstore::OpenEventStore();
//   auto memory = eventstore::OpenEventStore("sqlite::memory:");
//
// URLs: "sqlite::memory:", "sqlite:///abs/path/events.db",
// "sqlite:events.db" (relative to the working directory); see
// SqliteOptions::FromUrl for the query parameters. "postgresql://..." (see
// PostgresOptions::FromUrl). "failover:PRIMARY_URL?journal=sqlite:PATH"
// opens a FailoverEventStore (failover_event_store.h) over the primary and
// a SQLite journal, and with "&replica=PREFIXES" a local SQLite replica
// (store_replica.h): see failover_url.h for its parameters; the primary must
// be reachable when it is opened. A URL of an unknown scheme, or of a
// backend this build lacks, is kInvalidArgument.
//
// What the backends' options share (limits, a type registry, whether to
// create the store) is given in OpenOptions, so backend-neutral code need
// not branch on the scheme:
//
//   eventstore::OpenOptions options;
//   options.limits.max_payload_bytes = 1 << 20;
//   options.type_registry = registry;  // its upcasters apply to reads
//   auto store = eventstore::OpenEventStore(url, options);

#ifndef EVENTSTORE_OPEN_EVENT_STORE_H_
#define EVENTSTORE_OPEN_EVENT_STORE_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/limits.h"
#include "eventstore/log_sink.h"
#include "eventstore/type_registry.h"

namespace eventstore {

// The URL used when none is given.
inline constexpr char kDefaultUrl[] = "sqlite:events.db";

// The options every backend takes that a URL cannot give (SqliteOptions and
// PostgresOptions have fields of the same names and meaning). The URL's
// query parameters give the rest, including three that both backends
// accept: read_only=true, upgrade_schema=false and verify_checksums=false.
struct OpenOptions {
  // The bounds appends are checked against. Default StoreLimits().
  StoreLimits limits;
  // When set, reads apply its upcasters (see type_registry.h). Default
  // unset.
  std::shared_ptr<const TypeRegistry> type_registry;
  // Whether opening creates the store when there is none: SQLite creates
  // the file, PostgreSQL the schema and its tables. Default true. False:
  // an absent store (no such file; a schema holding no store) is kNotFound,
  // and nothing is created (so is one opened read_only).
  bool create_if_missing = true;
  // Where the store's own machinery reports, for a backend that has some:
  // PostgreSQL's connection pool (PostgresOptions::instrumentation and
  // log_sink: connections in use and idle, waits, reconnects, connection
  // failures). SQLite has nothing to report and ignores them. They do not
  // measure appends and reads: wrap the store with Instrument()
  // (instrumented_event_store.h) for that. Default null: nothing reported.
  std::shared_ptr<Instrumentation> instrumentation;
  std::shared_ptr<LogSink> log_sink;
};

// The store at `url`, opened with default OpenOptions.
absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(
    std::string_view url);

// The store at `url`, with `options` applied to whichever backend the URL
// names.
absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(
    std::string_view url, const OpenOptions& options);

// The URL in EVENTSTORE_URL, else kDefaultUrl.
absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore();
absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(
    const OpenOptions& options);

}  // namespace eventstore

#endif  // EVENTSTORE_OPEN_EVENT_STORE_H_
