// Handing a read's events to an EventStore::PageVisitor in pages, shared by
// the default ReadStreamPages and the backends' own.

#ifndef EVENTSTORE_INTERNAL_READ_PAGES_H_
#define EVENTSTORE_INTERNAL_READ_PAGES_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "eventstore/event_store.h"
#include "eventstore/recorded_event.h"

namespace eventstore::internal {

// Hands `events` to `page` in pages of at most `page_size` (> 0) events, in
// order: `events` itself when it fits (no copy), nothing when it is empty.
// Stops at, and returns, the first error `page` returns.
absl::Status HandOverInPages(std::vector<RecordedEvent> events,
                             int64_t page_size, EventStore::PageVisitor page);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_READ_PAGES_H_
