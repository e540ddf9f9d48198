// JsonRenderer: stored events as JSON, through the descriptors the store
// recorded, so that the tool shows any event without the application's
// code.
//
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<JsonRenderer> renderer,
//                       JsonRenderer::ForStore(store->inspector()));
//   std::cout << renderer->RenderEvent(event) << "\n";
//   // {"position":"7","stream":"order-1","version":2,"id":"...",
//   //  "type":"shop.v1.OrderPlaced","recorded_at":"2024-...Z",
//   //  "data":{"order_id":"o-1"},"metadata":{"correlation_id":"c-1"}}
//
// Each recorded type is decoded with a descriptor pool built from its own
// descriptor set (self-contained: the type's file and its imports), so two
// types recorded at different versions of a shared file never clash. A
// payload whose type has no recorded descriptor, or that does not parse as
// its type, is shown as "data_base64" beside "data_error" saying why. Field
// names are the .proto names (preserve_proto_field_names); metadata is
// eventstore.v1.EventMetadata, compiled in.
//
// Encrypted events (crypto-shredding, eventstore/recorded_event.h) show no
// payload unless it was decrypted: "payload_state" is "forgotten" when the
// event's data subject was forgotten (RecordedEvent::forgotten(), or, for a
// sealed event, the subject's record in the key table says so), else
// "encrypted" for a sealed event (read without the master key); a decrypted
// one shows "data" with "payload_state": "decrypted". Plain events have no
// "payload_state".
//
// Not thread-safe (it caches decoders); one per command.

#ifndef EVENTSTORE_TOOLS_JSON_RENDERER_H_
#define EVENTSTORE_TOOLS_JSON_RENDERER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "eventstore/recorded_event.h"
#include "eventstore/store_inspector.h"
#include "eventstore/subject_key_store.h"
#include "eventstore/v1/metadata.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"

namespace eventstore::tools {

// A payload rendered: JSON when decoded, else why not.
struct RenderedPayload {
  bool decoded = false;
  // The message as a JSON object, when decoded.
  std::string json;
  // Why it was not decoded ("no descriptor recorded for type x").
  std::string error;
};

class JsonRenderer {
 public:
  // A renderer for the types the store recorded.
  static absl::StatusOr<std::unique_ptr<JsonRenderer>> ForStore(
      StoreInspector& inspector);
  // A renderer for the types `store` recorded, that looks up in its key
  // table whether the subject of a sealed event was forgotten.
  static absl::StatusOr<std::unique_ptr<JsonRenderer>> ForStore(
      EventStore& store);

  // A renderer for `types`. A descriptor set that does not parse or build
  // makes its type render as base64, with the reason.
  explicit JsonRenderer(std::vector<RecordedType> types);
  JsonRenderer(const JsonRenderer&) = delete;
  JsonRenderer& operator=(const JsonRenderer&) = delete;
  ~JsonRenderer();

  // Where sealed events' subjects are looked up (once each; a lookup that
  // fails counts as not forgotten). Null (the default): sealed events show
  // as encrypted. `keys` must outlive the renderer.
  void SetSubjectKeys(SubjectKeyStore* keys) { subject_keys_ = keys; }

  RenderedPayload RenderPayload(const std::string& type,
                                const std::string& payload);
  // The metadata as a JSON object ("{}" when empty).
  static std::string RenderMetadata(const v1::EventMetadata& metadata);
  // The whole event as one JSON object (the example above): "data" when
  // decoded, else "data_base64" and "data_error"; a damaged event has
  // "damage" (what is wrong) and "data_base64", and no metadata; a
  // forgotten or sealed one "payload_state" and no payload.
  std::string RenderEvent(const RecordedEvent& event);
  // The event's payload for a table cell: "[forgotten]", "[encrypted]",
  // "DAMAGED: <what>", else RenderPayloadCell.
  std::string RenderEventCell(const RecordedEvent& event);
  // The payload alone for a table cell: compact JSON, or
  // "base64:<...>" when not decoded.
  std::string RenderPayloadCell(const std::string& type,
                                const std::string& payload);

 private:
  // The decoder of one recorded type. The factory is declared after the
  // pool: it is destroyed first.
  struct Decoder {
    std::unique_ptr<google::protobuf::DescriptorPool> pool;
    std::unique_ptr<google::protobuf::DynamicMessageFactory> factory;
    const google::protobuf::Descriptor* descriptor = nullptr;
    // Why there is no descriptor, when `descriptor` is null.
    std::string error;
  };

  const Decoder& DecoderFor(const std::string& type);
  // What the event's payload is, for display.
  enum class Shown { kPlain, kDecrypted, kEncrypted, kForgotten };
  Shown ShownPayload(const RecordedEvent& event);

  absl::flat_hash_map<std::string, std::string> descriptor_sets_;
  absl::flat_hash_map<std::string, std::unique_ptr<Decoder>> decoders_;
  SubjectKeyStore* subject_keys_ = nullptr;
  // Subjects looked up: whether each was forgotten.
  absl::flat_hash_map<std::string, bool> forgotten_subjects_;
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_JSON_RENDERER_H_
