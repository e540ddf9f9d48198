// The test upcaster that splits one stored CustomerMovedV1 (tests/proto)
// into a StreetChanged then a CityChanged, shared by the type registry's
// tests and the read conformance suites.

#ifndef EVENTSTORE_TESTS_SUPPORT_SPLIT_MOVED_UPCASTER_H_
#define EVENTSTORE_TESTS_SUPPORT_SPLIT_MOVED_UPCASTER_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/recorded_event.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/type_registry.h"

namespace eventstore::test {

inline constexpr char kCustomerMovedV1Type[] =
    "eventstore.test.v1.CustomerMovedV1";
inline constexpr char kStreetChangedType[] = "eventstore.test.v1.StreetChanged";
inline constexpr char kCityChangedType[] = "eventstore.test.v1.CityChanged";

inline TypeRegistry::Upcaster SplitMovedUpcaster() {
  return [](const RecordedEvent& event)
             -> absl::StatusOr<std::vector<TypeRegistry::Upcasted>> {
    test::v1::CustomerMovedV1 moved;
    if (!moved.ParseFromString(event.payload)) {
      return absl::DataLossError("CustomerMovedV1 does not parse");
    }
    test::v1::StreetChanged street;
    street.set_street(moved.street());
    test::v1::CityChanged city;
    city.set_city(moved.city());
    return std::vector<TypeRegistry::Upcasted>{
        {kStreetChangedType, street.SerializeAsString()},
        {kCityChangedType, city.SerializeAsString()}};
  };
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_SPLIT_MOVED_UPCASTER_H_
