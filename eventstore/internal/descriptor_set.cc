#include "eventstore/internal/descriptor_set.h"

#include "absl/container/flat_hash_set.h"
#include "google/protobuf/descriptor.pb.h"

namespace eventstore::internal {
namespace {

void AddFile(const google::protobuf::FileDescriptor* file,
             absl::flat_hash_set<const google::protobuf::FileDescriptor*>& seen,
             google::protobuf::FileDescriptorSet& set) {
  if (!seen.insert(file).second) return;
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFile(file->dependency(i), seen, set);
  }
  file->CopyTo(set.add_file());
}

}  // namespace

std::string SerializedDescriptorSet(
    const google::protobuf::Descriptor& descriptor) {
  google::protobuf::FileDescriptorSet set;
  absl::flat_hash_set<const google::protobuf::FileDescriptor*> seen;
  AddFile(descriptor.file(), seen, set);
  return set.SerializeAsString();
}

const google::protobuf::Descriptor* FindEventDescriptor(
    const std::string& event_type, const google::protobuf::Descriptor* known) {
  if (known != nullptr && known->full_name() == event_type) return known;
  return google::protobuf::DescriptorPool::generated_pool()
      ->FindMessageTypeByName(event_type);
}

}  // namespace eventstore::internal
