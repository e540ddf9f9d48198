#include "bench/target.h"

#include <utility>

namespace eventstore::bench {
namespace {

// Our store, used as an application would: the public API only, every
// event read built into a RecordedEvent.
class StoreTarget final : public Target {
 public:
  StoreTarget(std::shared_ptr<EventStore> store, std::shared_ptr<void> scratch)
      : scratch_(std::move(scratch)), store_(std::move(store)) {}

  absl::Status Append(const Batch& batch) override {
    return store_->Append(batch.stream, batch.expected, batch.events).status();
  }

  absl::StatusOr<int64_t> ReadStream(const std::string& stream) override {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        store_->ReadStream(stream);
    if (!events.ok()) return events.status();
    return static_cast<int64_t>(events->size());
  }

  absl::StatusOr<PageResult> ReadAll(Position from,
                                     int64_t max_count) override {
    ReadAllOptions options;
    options.from_position = from;
    options.max_count = max_count;
    absl::StatusOr<ReadAllPage> page = store_->ReadAll(options);
    if (!page.ok()) return page.status();
    PageResult result;
    result.events = static_cast<int64_t>(page->events.size());
    result.next_position = page->next_position;
    result.end_of_log = page->end_of_log;
    return result;
  }

 private:
  // Declared first: destroyed after the store.
  std::shared_ptr<void> scratch_;
  std::shared_ptr<EventStore> store_;
};

}  // namespace

std::unique_ptr<Target> MakeStoreTarget(std::shared_ptr<EventStore> store,
                                        std::shared_ptr<void> scratch) {
  return std::make_unique<StoreTarget>(std::move(store), std::move(scratch));
}

}  // namespace eventstore::bench
