#include "eventstore/internal/read_pages.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace eventstore::internal {

absl::Status HandOverInPages(std::vector<RecordedEvent> events,
                             int64_t page_size, EventStore::PageVisitor page) {
  if (events.empty()) return absl::OkStatus();
  const size_t size = static_cast<size_t>(page_size);
  if (events.size() <= size) return page(std::move(events));
  for (size_t begin = 0; begin < events.size(); begin += size) {
    const size_t end = std::min(events.size(), begin + size);
    absl::Status status = page(std::vector<RecordedEvent>(
        std::make_move_iterator(events.begin() + begin),
        std::make_move_iterator(events.begin() + end)));
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace eventstore::internal
