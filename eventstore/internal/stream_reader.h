// Reading a whole stream in pages, for the aggregate repository and the
// decider.

#ifndef EVENTSTORE_INTERNAL_STREAM_READER_H_
#define EVENTSTORE_INTERNAL_STREAM_READER_H_

#include <cstdint>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "eventstore/recorded_event.h"

namespace eventstore::internal {

// Stored events per ReadStream call.
inline constexpr int64_t kStreamPageSize = 1000;

// Calls `visit` for each event of `stream` from `from_version` on, in
// version order, reading `page_size` stored events at a time. Stops at the
// first error, of the store or of `visit`. Returns how many events were
// visited (an upcaster that splits an event makes one stored event several).
absl::StatusOr<int64_t> ForEachStreamEvent(
    EventStore& store, std::string_view stream, int64_t from_version,
    absl::FunctionRef<absl::Status(const RecordedEvent&)> visit,
    int64_t page_size = kStreamPageSize);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_STREAM_READER_H_
