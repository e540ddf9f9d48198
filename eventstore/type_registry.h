// TypeRegistry: protobuf event types by full name, and upcasters.
//
//   auto registry = std::make_shared<eventstore::TypeRegistry>();
//   registry->Register<shop::v1::OrderPlaced>();
//   // shop.v1.OrderCreated was renamed to shop.v1.OrderPlaced:
//   registry->AddRename("shop.v1.OrderCreated", "shop.v1.OrderPlaced");
//   absl::StatusOr<std::unique_ptr<google::protobuf::Message>> message =
//       registry->Decode(event);
//   // When the caller knows the type it expects, no cast:
//   absl::StatusOr<shop::v1::OrderPlaced> placed =
//       registry->Decode<shop::v1::OrderPlaced>(event);
//
// A store opened with a registry (SqliteOptions::type_registry) applies its
// upcasters to every event it reads, so old events reach the application in
// their current form. An upcaster may also split one stored event into
// several; those share the stored event's stream, version and position.
//
// Thread safety: register types and upcasters first; after that the
// registry is read-only and may be shared between threads.

#ifndef EVENTSTORE_TYPE_REGISTRY_H_
#define EVENTSTORE_TYPE_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/recorded_event.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace eventstore {

class TypeRegistry {
 public:
  // A type and payload an upcaster produces.
  struct Upcasted {
    std::string type;
    std::string payload;
  };
  // Turns one stored event of an old type into its current form: one event
  // (a rename or a reshape) or several (a split).
  using Upcaster = std::function<absl::StatusOr<std::vector<Upcasted>>(
      const RecordedEvent&)>;

  // Upcasters chain (A -> B -> C); a chain longer than this is taken for a
  // cycle and fails with kInvalidArgument.
  static constexpr int kMaxUpcastDepth = 16;

  TypeRegistry() = default;
  TypeRegistry(const TypeRegistry&) = delete;
  TypeRegistry& operator=(const TypeRegistry&) = delete;

  // Registers the generated message type M.
  template <typename M>
  void Register() {
    Register(M::default_instance());
  }
  // Registers the type of `prototype`, which must outlive the registry (a
  // generated default instance does).
  void Register(const google::protobuf::Message& prototype);

  // Replaces events of `from_type` by the upcaster's output when read.
  void AddUpcaster(std::string from_type, Upcaster upcaster);
  // An upcaster that only renames: the payload is kept as it is.
  void AddRename(std::string from_type, std::string to_type);

  bool Contains(std::string_view type) const;
  // The registered type's descriptor, or null.
  const google::protobuf::Descriptor* FindDescriptor(
      std::string_view type) const;

  // A new message of the event's type with its payload parsed. kNotFound
  // naming the type when it is not registered; kDataLoss when the event is
  // damaged or the payload does not parse.
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> Decode(
      const RecordedEvent& event) const;

  // The event's payload as an M (a generated protobuf message class), for a
  // caller that knows the type it expects: Decode<OrderPlaced>(event). The
  // errors of Decode(), and kInvalidArgument naming both types when the
  // event is of another type than M.
  template <typename M>
  absl::StatusOr<M> Decode(const RecordedEvent& event) const {
    static_assert(std::is_base_of_v<google::protobuf::Message, M>,
                  "TypeRegistry::Decode<M>: M must be a protobuf message");
    absl::Status decodable = CheckDecodable(event);
    if (!decodable.ok()) return decodable;
    return event.As<M>();
  }

  // The event in its current form: itself when no upcaster applies or it is
  // damaged.
  absl::StatusOr<std::vector<RecordedEvent>> Upcast(RecordedEvent event) const;
  // Upcasts every event in place, keeping their order. Damaged events are
  // left as they are.
  absl::Status UpcastAll(std::vector<RecordedEvent>& events) const;
  bool HasUpcasters() const { return !upcasters_.empty(); }

 private:
  // The event's damage, or kNotFound when its type is not registered.
  absl::Status CheckDecodable(const RecordedEvent& event) const;

  absl::flat_hash_map<std::string, const google::protobuf::Message*> types_;
  absl::flat_hash_map<std::string, Upcaster> upcasters_;
};

}  // namespace eventstore

#endif  // EVENTSTORE_TYPE_REGISTRY_H_
