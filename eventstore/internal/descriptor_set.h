// The serialized FileDescriptorSet that lets a tool decode a stored type
// without the application's code.

#ifndef EVENTSTORE_INTERNAL_DESCRIPTOR_SET_H_
#define EVENTSTORE_INTERNAL_DESCRIPTOR_SET_H_

#include <string>

#include "google/protobuf/descriptor.h"

namespace eventstore::internal {

// A google.protobuf.FileDescriptorSet holding the file that defines
// `descriptor` and every file it imports, dependencies first, serialized.
std::string SerializedDescriptorSet(
    const google::protobuf::Descriptor& descriptor);

// The descriptor of `event_type`: `known` when set, else the generated
// pool's, else null (the type is then stored without a descriptor).
const google::protobuf::Descriptor* FindEventDescriptor(
    const std::string& event_type, const google::protobuf::Descriptor* known);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_DESCRIPTOR_SET_H_
