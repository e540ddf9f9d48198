// FailoverUrl: the parts of a failover URL, which OpenEventStore
// (open_event_store.h) opens as a FailoverEventStore.
//
//   failover:postgresql://app@db/shop?schema=events&journal=sqlite:/var/lib/app/journal.db
//
// "failover:" is followed by the primary's URL (any URL OpenEventStore
// opens, but another failover URL). The failover parameters ride in the
// primary URL's query, and are taken out of it before the primary is
// opened:
//
//   journal=URL                    required: the journal, a SQLite URL
//                                  (sqlite:PATH, sqlite:///ABS, or
//                                  sqlite::memory: for tests), without a
//                                  query of its own
//   allow_fallback=true|false      FailoverOptions::allow_fallback; default
//                                  true (the point of the URL)
//   health_check_interval_ms=N     FailoverOptions::health_check_interval,
//                                  0 to 3,600,000; default 1000
//   replay_page_size=N             FailoverOptions::replay_page_size, 1 to
//                                  100,000; default 500
//
// Every other parameter stays in the primary's URL.

#ifndef EVENTSTORE_FAILOVER_URL_H_
#define EVENTSTORE_FAILOVER_URL_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "eventstore/failover_event_store.h"

namespace eventstore {

inline constexpr char kFailoverScheme[] = "failover:";

struct FailoverUrl {
  // The primary's URL, without the failover parameters.
  std::string primary_url;
  // The journal's URL.
  std::string journal_url;
  // allow_fallback, health_check_interval and replay_page_size as the URL
  // gives them; the other fields at their defaults.
  FailoverOptions options;
};

// The parts of `url`. kInvalidArgument naming the parameter that is wrong
// (never echoing the primary's credentials): no "failover:" prefix, no
// journal, a journal that is not a SQLite URL or has a query, a nested
// failover URL, a value out of range, read_only=true (a failover store
// writes). kUnimplemented for `replica`, which the local replica will take
// (issue 11).
absl::StatusOr<FailoverUrl> ParseFailoverUrl(std::string_view url);

}  // namespace eventstore

#endif  // EVENTSTORE_FAILOVER_URL_H_
