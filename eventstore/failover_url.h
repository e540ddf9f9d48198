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
// A local replica (FailoverOptions::replica, store_replica.h) that follows
// the primary and answers reads while it is unreachable:
//
//   replica=order-,customer-       copy the streams with these prefixes
//                                  (comma-separated, each %-decoded, none
//                                  empty); replica=* copies every stream
//   replica_url=sqlite:PATH        where the replica lives, a SQLite URL
//                                  without a query, not the journal's (or
//                                  a SQLite primary's) file; default: the
//                                  journal's path + ".replica"
//                                  (sqlite:/var/lib/app/journal.db ->
//                                  sqlite:/var/lib/app/journal.db.replica),
//                                  sqlite::memory: for a sqlite::memory:
//                                  journal
//   replica_staleness_ms=N         FailoverOptions::replica_read_staleness,
//                                  0 to 3,600,000; default 0 (reads go to
//                                  the primary while it answers)
//   replica_batch_size=N           ReplicaOptions::batch_size, 1 to
//                                  100,000; default ReplicaOptions'
//
// replica_url, replica_staleness_ms and replica_batch_size need replica=.
//
//   failover:postgresql://app@db/shop?journal=sqlite:/var/lib/app/journal.db&replica=order-,customer-&replica_staleness_ms=500
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
  // The replica's URL (a SQLite URL); empty when the URL asks for none.
  std::string replica_url;
  // allow_fallback, health_check_interval, replay_page_size and
  // replica_read_staleness as the URL gives them, and with a replica
  // replica_options.stream_prefixes, batch_size and primary_description
  // (primary_url with any password masked); the other fields at their
  // defaults (replica itself is null: OpenEventStore opens it).
  FailoverOptions options;
};

// The parts of `url`. kInvalidArgument naming the parameter that is wrong
// (never echoing the primary's credentials): no "failover:" prefix, no
// journal, a journal that is not a SQLite URL or has a query, a nested
// failover URL, a value out of range, read_only=true (a failover store
// writes), an empty replica prefix, a replica_url that is not a SQLite URL,
// has a query or names the journal's (or a SQLite primary's) file, and
// replica_url, replica_staleness_ms or replica_batch_size without replica=.
absl::StatusOr<FailoverUrl> ParseFailoverUrl(std::string_view url);

}  // namespace eventstore

#endif  // EVENTSTORE_FAILOVER_URL_H_
