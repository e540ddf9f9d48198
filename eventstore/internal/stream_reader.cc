#include "eventstore/internal/stream_reader.h"

#include <vector>

#include "eventstore/status_macros.h"

namespace eventstore::internal {

absl::StatusOr<int64_t> ForEachStreamEvent(
    EventStore& store, std::string_view stream, int64_t from_version,
    absl::FunctionRef<absl::Status(const RecordedEvent&)> visit,
    int64_t page_size) {
  int64_t visited = 0;
  int64_t next = from_version < 1 ? 1 : from_version;
  while (true) {
    ReadStreamOptions options;
    options.from_version = next;
    options.max_count = page_size;
    ES_ASSIGN_OR_RETURN(std::vector<RecordedEvent> page,
                        store.ReadStream(stream, options));
    // The parts of an event split by an upcaster share its version: count
    // stored events, not parts, to tell a full page from the last one.
    int64_t stored = 0;
    int64_t last_version = 0;
    for (const RecordedEvent& event : page) {
      if (stored == 0 || event.version != last_version) ++stored;
      last_version = event.version;
      ES_RETURN_IF_ERROR(visit(event));
      ++visited;
    }
    if (stored < page_size) return visited;
    next = last_version + 1;
  }
}

}  // namespace eventstore::internal
