#include "eventstore/event_store.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "eventstore/store_inspector.h"

namespace eventstore {

absl::StatusOr<bool> EventStore::WaitForEvents(Position after,
                                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<Position> head = HeadPosition();
    if (!head.ok()) return head.status();
    if (*head > after) return true;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    absl::SleepFor(std::min(left, absl::Milliseconds(50)));
  }
}

namespace {

// The inspector of a store that has none.
class UnimplementedInspector final : public StoreInspector {
 public:
  absl::StatusOr<StoreInfo> Info() override { return Unimplemented(); }
  absl::StatusOr<std::vector<StreamSummary>> ListStreams(
      const ListStreamsOptions&) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<RecordedType>> RecordedTypes() override {
    return Unimplemented();
  }

 private:
  static absl::Status Unimplemented() {
    return absl::UnimplementedError("this store has no inspector");
  }
};

}  // namespace

StoreInspector& EventStore::inspector() {
  static UnimplementedInspector* const inspector = new UnimplementedInspector;
  return *inspector;
}

}  // namespace eventstore
