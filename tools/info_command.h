// `eventstore info` (docs/cli.md): what a store holds, and for failover
// what its journal and replica hold.

#ifndef EVENTSTORE_TOOLS_INFO_COMMAND_H_
#define EVENTSTORE_TOOLS_INFO_COMMAND_H_

#include <string>

#include "tools/output_format.h"

namespace eventstore::tools {

// Runs `eventstore info [URL] --format F` and returns its exit code. URL
// (or $EVENTSTORE_URL when empty) is opened read-only:
// - a plain store: backend, location, schema version, counts, head, size,
//   recorded types; when the store is a failover journal, its pending
//   appends and parked ones; a line per copy into it (a replica's or a
//   migration's source, events, last source position, update time);
// - a failover URL: the primary's rows (when it can be reached), then the
//   failover section (mode, journal, pending, parked, last error) and, with
//   replica=, the replica's (prefixes, position, primary head, lag, last
//   sync, events copied). Exit code 1 when the primary cannot be reached
//   (the sections are printed all the same).
// Counts of events and streams are estimates on a store of a million
// events or more (StoreInfo::counts_estimated, shown as such) unless
// `exact`.
int RunInfoCommand(const std::string& url, OutputFormat format, bool exact);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_INFO_COMMAND_H_
