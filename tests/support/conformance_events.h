// Events and event-field lists shared by the conformance suites (the
// event store's and the stream lifecycle's): OrderPlaced, OrderShipped and
// Tick events (tests/proto), batches of them, and the ids, versions and
// types of events read back, for matchers.

#ifndef EVENTSTORE_TESTS_SUPPORT_CONFORMANCE_EVENTS_H_
#define EVENTSTORE_TESTS_SUPPORT_CONFORMANCE_EVENTS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eventstore/event_data.h"
#include "eventstore/recorded_event.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/uuid.h"

namespace eventstore::test {

inline EventData Placed(const std::string& order_id,
                        ::eventstore::v1::EventMetadata metadata = {}) {
  ::eventstore::test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  placed.mutable_total()->set_currency("EUR");
  placed.mutable_total()->set_units(1999);
  placed.add_items("book");
  placed.mutable_placed_at()->set_seconds(1700000000);
  return EventData::From(placed, std::move(metadata));
}

inline EventData Shipped(const std::string& order_id,
                         ::eventstore::v1::EventMetadata metadata = {}) {
  ::eventstore::test::v1::OrderShipped shipped;
  shipped.set_order_id(order_id);
  shipped.set_carrier("post");
  return EventData::From(shipped, std::move(metadata));
}

inline EventData Tick(int64_t writer, int64_t sequence) {
  ::eventstore::test::v1::Tick tick;
  tick.set_writer(writer);
  tick.set_sequence(sequence);
  return EventData::From(tick);
}

inline ::eventstore::v1::EventMetadata Tenant(const std::string& tenant_id) {
  ::eventstore::v1::EventMetadata metadata;
  metadata.set_tenant_id(tenant_id);
  return metadata;
}

inline std::vector<EventData> Batch(int n, const std::string& tag = "o") {
  std::vector<EventData> events;
  for (int i = 0; i < n; ++i) events.push_back(Placed(absl::StrCat(tag, i)));
  return events;
}

inline std::vector<Uuid> Ids(const std::vector<EventData>& events) {
  std::vector<Uuid> ids;
  for (const EventData& e : events) ids.push_back(e.id);
  return ids;
}

inline std::vector<Uuid> Ids(const std::vector<RecordedEvent>& events) {
  std::vector<Uuid> ids;
  for (const RecordedEvent& e : events) ids.push_back(e.id);
  return ids;
}

inline std::vector<int64_t> Versions(const std::vector<RecordedEvent>& events) {
  std::vector<int64_t> versions;
  for (const RecordedEvent& e : events) versions.push_back(e.version);
  return versions;
}

inline std::vector<std::string> Types(
    const std::vector<RecordedEvent>& events) {
  std::vector<std::string> types;
  for (const RecordedEvent& e : events) types.push_back(e.type);
  return types;
}

inline std::vector<int64_t> Range(int64_t first, int64_t last) {
  std::vector<int64_t> out;
  if (first <= last) {
    for (int64_t v = first; v <= last; ++v) out.push_back(v);
  } else {
    for (int64_t v = first; v >= last; --v) out.push_back(v);
  }
  return out;
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_CONFORMANCE_EVENTS_H_
