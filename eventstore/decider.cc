#include "eventstore/decider.h"

#include "absl/strings/str_cat.h"
#include "eventstore/internal/stream_reader.h"
#include "eventstore/status_macros.h"

namespace eventstore::decider_internal {

absl::StatusOr<int64_t> FoldStream(
    EventStore& store, const TypeRegistry& registry, std::string_view stream,
    absl::FunctionRef<void(const google::protobuf::Message&)> apply) {
  int64_t version = 0;
  auto decode_and_apply = [&](const RecordedEvent& event) -> absl::Status {
    // A forgotten event has no payload to evolve by (decider.h).
    if (event.forgotten()) {
      version = event.version;
      return absl::OkStatus();
    }
    ES_ASSIGN_OR_RETURN(std::unique_ptr<google::protobuf::Message> message,
                        registry.Decode(event));
    apply(*message);
    version = event.version;
    return absl::OkStatus();
  };
  ES_RETURN_IF_ERROR(
      internal::ForEachStreamEvent(store, stream, 1, decode_and_apply)
          .status());
  return version;
}

absl::StatusOr<std::vector<EventData>> AppendDecided(
    EventStore& store, std::string_view stream, int64_t version,
    const DecidedEvents& events, const CommandContext& context,
    int64_t* next_version) {
  std::vector<EventData> data;
  data.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i] == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("decide() returned a null event at index ", i));
    }
    data.push_back(EventData::From(*events[i], context.ToMetadata()));
  }
  const ExpectedVersion expected = version == 0
                                       ? ExpectedVersion::NoStream()
                                       : ExpectedVersion::Exactly(version);
  ES_ASSIGN_OR_RETURN(AppendResult appended,
                      store.Append(stream, expected, data));
  *next_version = appended.next_expected_version;
  return data;
}

}  // namespace eventstore::decider_internal
