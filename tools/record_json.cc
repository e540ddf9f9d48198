#include "tools/record_json.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "eventstore/internal/record_status.h"
#include "tools/output_format.h"

namespace eventstore::tools {

JsonObject StoreInfoJson(const StoreInfo& info, int64_t recorded_types) {
  JsonObject json;
  json.Str("backend", info.backend)
      .Str("location", info.location)
      .Int("schema_version", info.schema_version)
      .Int("code_schema_version", info.code_schema_version)
      .Int("streams", info.streams)
      .Int("events", info.events)
      .Str("head", info.head.ToString())
      .Int("size_bytes", info.size_bytes)
      .Int("recorded_types", recorded_types);
  return json;
}

std::string StreamSummaryJson(const StreamSummary& stream) {
  return JsonObject()
      .Str("stream", stream.stream)
      .Int("version", stream.version)
      .Time("first_recorded_at", stream.first_recorded_at)
      .Time("last_recorded_at", stream.last_recorded_at)
      .Build();
}

std::string LagCountsText(const std::vector<std::string>& types,
                          const std::string& prefix) {
  if (types.empty() && prefix.empty()) return "all events";
  std::string out = "events";
  if (!types.empty()) {
    absl::StrAppend(&out, " of type");
    for (size_t i = 0; i < types.size(); ++i) {
      absl::StrAppend(&out, i == 0 ? " " : ", ", types[i]);
    }
  }
  if (!prefix.empty()) {
    absl::StrAppend(&out, types.empty() ? "" : " and",
                    " in streams starting with '", prefix, "'");
  }
  return out;
}

std::string CheckpointJson(const Checkpoint& checkpoint,
                           const ProjectionLag& lag,
                           const std::string& lag_counts,
                           const DeadLetterCount& dead_letters) {
  return JsonObject()
      .Str("projection", checkpoint.projection)
      .Str("position", checkpoint.position.ToString())
      .Int("events_processed", checkpoint.events_processed)
      .Int("events_behind", lag.events_behind)
      .Int("seconds_behind", absl::ToInt64Seconds(lag.time_behind))
      .Str("lag_counts", lag_counts)
      .Int("parked", dead_letters.parked)
      .Int("retrying", dead_letters.retrying)
      .Time("updated_at", checkpoint.updated_at)
      .Build();
}

std::string DeadLetterJson(const DeadLetter& letter) {
  return JsonObject()
      .Str("projection", letter.projection)
      .Str("event_id", letter.event_id.ToString())
      .Str("stream", letter.stream)
      .Int("version", letter.version)
      .Str("position", letter.position.ToString())
      .Str("event_type", letter.event_type)
      .Str("status", internal::DeadLetterStatusName(letter.status))
      .Str("error", letter.error)
      .Int("failure_count", letter.failure_count)
      .Time("first_failed_at", letter.first_failed_at)
      .Time("last_failed_at", letter.last_failed_at)
      .Str("resolved_by", letter.resolved_by)
      .Time("resolved_at", letter.resolved_at)
      .Build();
}

std::string OutboxStatsJson(const OutboxStats& stats, absl::Time now) {
  const bool any_pending = stats.oldest_pending != absl::InfinitePast();
  const absl::Duration age =
      any_pending ? now - stats.oldest_pending : absl::ZeroDuration();
  return JsonObject()
      .Int("pending", stats.pending)
      .Int("published", stats.published)
      .Int("failed", stats.failed)
      .Time("oldest_pending", stats.oldest_pending)
      .Int("oldest_pending_age_seconds", absl::ToInt64Seconds(age))
      .Build();
}

std::string OutboxEntryJson(const OutboxEntry& entry) {
  JsonObject headers;
  for (const auto& [key, value] : entry.message.headers) {
    headers.Str(key, value);
  }
  return JsonObject()
      .Int("id", entry.id)
      .Str("destination", entry.message.destination)
      .Str("key", entry.message.key)
      .Str("status", internal::OutboxStatusName(entry.status))
      .Int("attempts", entry.attempts)
      .Time("created_at", entry.created_at)
      .Str("claimed_by", entry.claimed_by)
      .Time("lease_until", entry.lease_until)
      .Str("last_error", entry.last_error)
      .Time("published_at", entry.published_at)
      .Raw("headers", headers.Build())
      .Str("payload_base64", absl::Base64Escape(entry.message.payload))
      .Build();
}

}  // namespace eventstore::tools
