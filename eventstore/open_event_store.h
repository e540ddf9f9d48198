// OpenEventStore: a store from a URL, whatever the backend.
//
//   // EVENTSTORE_URL when set, else "sqlite:events.db":
//   absl::StatusOr<std::unique_ptr<eventstore::EventStore>> store =
//       eventstore::OpenEventStore();
//   auto memory = eventstore::OpenEventStore("sqlite::memory:");
//
// URLs: "sqlite::memory:", "sqlite:///abs/path/events.db",
// "sqlite:events.db" (relative to the working directory); see
// SqliteOptions::FromUrl for the query parameters. A URL of an unknown
// scheme, or of a backend this build lacks, is kInvalidArgument.

#ifndef EVENTSTORE_OPEN_EVENT_STORE_H_
#define EVENTSTORE_OPEN_EVENT_STORE_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "eventstore/event_store.h"

namespace eventstore {

// The URL used when none is given.
inline constexpr char kDefaultUrl[] = "sqlite:events.db";

absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore(
    std::string_view url);

// The URL in EVENTSTORE_URL, else kDefaultUrl.
absl::StatusOr<std::unique_ptr<EventStore>> OpenEventStore();

}  // namespace eventstore

#endif  // EVENTSTORE_OPEN_EVENT_STORE_H_
