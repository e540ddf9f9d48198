#include "tools/json_renderer.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "eventstore/status_macros.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"
#include "tools/output_format.h"

namespace eventstore::tools {
namespace {

google::protobuf::util::JsonPrintOptions PrintOptions() {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JsonRenderer>> JsonRenderer::ForStore(
    StoreInspector& inspector) {
  ES_ASSIGN_OR_RETURN(std::vector<RecordedType> types,
                      inspector.RecordedTypes());
  return std::make_unique<JsonRenderer>(std::move(types));
}

absl::StatusOr<std::unique_ptr<JsonRenderer>> JsonRenderer::ForStore(
    EventStore& store) {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<JsonRenderer> renderer,
                      ForStore(store.inspector()));
  renderer->SetSubjectKeys(&store.subject_keys());
  return renderer;
}

JsonRenderer::JsonRenderer(std::vector<RecordedType> types) {
  for (RecordedType& t : types) {
    descriptor_sets_[t.type] = std::move(t.descriptor_set);
  }
}

JsonRenderer::~JsonRenderer() = default;

const JsonRenderer::Decoder& JsonRenderer::DecoderFor(const std::string& type) {
  auto it = decoders_.find(type);
  if (it != decoders_.end()) return *it->second;
  auto decoder = std::make_unique<Decoder>();
  auto set_it = descriptor_sets_.find(type);
  if (set_it == descriptor_sets_.end()) {
    decoder->error = absl::StrCat("no descriptor recorded for type ", type);
  } else {
    google::protobuf::FileDescriptorSet set;
    if (!set.ParseFromString(set_it->second)) {
      decoder->error =
          absl::StrCat("the recorded descriptor set of ", type, " is corrupt (",
                       set_it->second.size(), " bytes)");
    } else {
      decoder->pool = std::make_unique<google::protobuf::DescriptorPool>();
      for (const google::protobuf::FileDescriptorProto& file : set.file()) {
        // A file already built (listed twice) is skipped; a file that does
        // not build leaves the type undecodable below.
        if (decoder->pool->FindFileByName(file.name()) != nullptr) continue;
        decoder->pool->BuildFile(file);
      }
      decoder->descriptor = decoder->pool->FindMessageTypeByName(type);
      if (decoder->descriptor == nullptr) {
        decoder->error = absl::StrCat("the recorded descriptor set of ", type,
                                      " does not define it");
      } else {
        decoder->factory =
            std::make_unique<google::protobuf::DynamicMessageFactory>(
                decoder->pool.get());
      }
    }
  }
  const Decoder& ref = *decoder;
  decoders_[type] = std::move(decoder);
  return ref;
}

RenderedPayload JsonRenderer::RenderPayload(const std::string& type,
                                            const std::string& payload) {
  RenderedPayload out;
  const Decoder& decoder = DecoderFor(type);
  if (decoder.descriptor == nullptr) {
    out.error = decoder.error;
    return out;
  }
  std::unique_ptr<google::protobuf::Message> message(
      decoder.factory->GetPrototype(decoder.descriptor)->New());
  if (!message->ParseFromString(payload)) {
    out.error = absl::StrCat("the payload (", payload.size(),
                             " bytes) does not parse as ", type);
    return out;
  }
  const auto status = google::protobuf::util::MessageToJsonString(
      *message, &out.json, PrintOptions());
  if (!status.ok()) {
    out.json.clear();
    out.error = absl::StrCat("cannot print ", type,
                             " as JSON: ", std::string(status.message()));
    return out;
  }
  out.decoded = true;
  return out;
}

std::string JsonRenderer::RenderMetadata(const v1::EventMetadata& metadata) {
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(
      metadata, &json, PrintOptions());
  if (!status.ok() || json.empty()) return "{}";
  return json;
}

JsonRenderer::Shown JsonRenderer::ShownPayload(const RecordedEvent& event) {
  switch (event.payload_state) {
    case PayloadState::kForgotten:
      return Shown::kForgotten;
    case PayloadState::kDecrypted:
      return Shown::kDecrypted;
    case PayloadState::kAsStored:
      break;
  }
  if (!event.sealed()) return Shown::kPlain;
  const std::string& subject = event.metadata.subject_id();
  if (subject_keys_ == nullptr || subject.empty()) return Shown::kEncrypted;
  auto it = forgotten_subjects_.find(subject);
  if (it == forgotten_subjects_.end()) {
    absl::StatusOr<std::optional<SubjectKeyRecord>> record =
        subject_keys_->Find(subject);
    const bool forgotten =
        record.ok() && record->has_value() && (*record)->forgotten();
    it = forgotten_subjects_.emplace(subject, forgotten).first;
  }
  return it->second ? Shown::kForgotten : Shown::kEncrypted;
}

std::string JsonRenderer::RenderEvent(const RecordedEvent& event) {
  JsonObject json;
  json.Str("position", event.position.ToString())
      .Str("stream", event.stream)
      .Int("version", event.version)
      .Str("id", event.id.ToString())
      .Str("type", event.type)
      .Time("recorded_at", event.recorded_at);
  if (event.damaged()) {
    // What was read, as it was read: nothing of it is trusted.
    json.Str("damage", std::string(event.damage.message()))
        .Str("data_base64", absl::Base64Escape(event.payload));
    return json.Build();
  }
  const Shown shown = ShownPayload(event);
  if (shown == Shown::kForgotten || shown == Shown::kEncrypted) {
    // Nothing of the payload: it is gone, or ciphertext.
    json.Str("payload_state",
             shown == Shown::kForgotten ? "forgotten" : "encrypted")
        .Raw("metadata", RenderMetadata(event.metadata));
    return json.Build();
  }
  if (shown == Shown::kDecrypted) json.Str("payload_state", "decrypted");
  const RenderedPayload payload = RenderPayload(event.type, event.payload);
  if (payload.decoded) {
    json.Raw("data", payload.json);
  } else {
    json.Str("data_base64", absl::Base64Escape(event.payload))
        .Str("data_error", payload.error);
  }
  json.Raw("metadata", RenderMetadata(event.metadata));
  return json.Build();
}

std::string JsonRenderer::RenderEventCell(const RecordedEvent& event) {
  if (event.damaged()) {
    return absl::StrCat("DAMAGED: ", std::string(event.damage.message()));
  }
  switch (ShownPayload(event)) {
    case Shown::kForgotten:
      return "[forgotten]";
    case Shown::kEncrypted:
      return "[encrypted]";
    case Shown::kPlain:
    case Shown::kDecrypted:
      break;
  }
  return RenderPayloadCell(event.type, event.payload);
}

std::string JsonRenderer::RenderPayloadCell(const std::string& type,
                                            const std::string& payload) {
  const RenderedPayload rendered = RenderPayload(type, payload);
  if (rendered.decoded) return rendered.json;
  return absl::StrCat("base64:", absl::Base64Escape(payload));
}

}  // namespace eventstore::tools
