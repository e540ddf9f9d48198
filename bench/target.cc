#include "bench/target.h"

#include <utility>
#include <vector>

namespace eventstore::bench {
namespace {

// Our store, used as an application would: the public API only, every
// event read built into a RecordedEvent.
class StoreTarget final : public Target {
 public:
  StoreTarget(std::shared_ptr<EventStore> store, std::shared_ptr<void> scratch,
              ReadApi read_api)
      : scratch_(std::move(scratch)),
        store_(std::move(store)),
        read_api_(read_api) {}

  absl::Status Append(const Batch& batch) override {
    return store_->Append(batch.stream, batch.expected, batch.events).status();
  }

  absl::StatusOr<int64_t> ReadStream(const std::string& stream) override {
    if (read_api_ == ReadApi::kInto) {
      absl::Status status =
          store_->ReadStreamInto(stream, ReadStreamOptions(), events_);
      if (!status.ok()) return status;
      return static_cast<int64_t>(events_.size());
    }
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
    if (read_api_ == ReadApi::kInto) {
      absl::Status status = store_->ReadAllInto(options, page_);
      if (!status.ok()) return status;
      return PageResult{static_cast<int64_t>(page_.events.size()),
                        page_.next_position, page_.end_of_log};
    }
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
  const ReadApi read_api_;
  // kInto: the buffers every read reuses.
  std::vector<RecordedEvent> events_;
  ReadAllPage page_;
};

}  // namespace

std::unique_ptr<Target> MakeStoreTarget(std::shared_ptr<EventStore> store,
                                        std::shared_ptr<void> scratch,
                                        ReadApi read_api) {
  return std::make_unique<StoreTarget>(std::move(store), std::move(scratch),
                                       read_api);
}

TargetFactory StoreTargetFactory(StoreFactory open, ReadApi read_api) {
  return [open = std::move(open),
          read_api]() -> absl::StatusOr<std::unique_ptr<Target>> {
    absl::StatusOr<std::shared_ptr<EventStore>> store = open();
    if (!store.ok()) return store.status();
    return MakeStoreTarget(*std::move(store), nullptr, read_api);
  };
}

}  // namespace eventstore::bench
