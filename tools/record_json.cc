#include "tools/record_json.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
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
      .Bool("counts_estimated", info.counts_estimated)
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
      // null and "" when no rebuild is pending.
      .Time("rebuild_requested_at",
            checkpoint.rebuild_requested_at.value_or(absl::InfinitePast()))
      .Str("rebuild_requested_by", checkpoint.rebuild_requested_by)
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

namespace {

std::string OptionalInt(const std::optional<int64_t>& n) {
  return n.has_value() ? absl::StrCat(*n) : "null";
}

std::string Number(double d) { return absl::StrFormat("%.3f", d); }

}  // namespace

std::string DeleteResultJson(const std::string& stream, DeleteMode mode,
                             const DeleteResult& result) {
  return JsonObject()
      .Str("stream", stream)
      .Str("mode", mode == DeleteMode::kHard ? "hard" : "soft")
      .Int("marker_version", result.marker_version)
      .Str("position", result.position.ToString())
      .Int("snapshots_removed", result.snapshots_removed)
      .Build();
}

std::string StreamInfoJson(const StreamInfo& info) {
  const StreamMetadata& m = info.metadata;
  return JsonObject()
      .Str("stream", info.stream)
      .Str("state", StreamStatusName(info.state))
      .Int("version", info.version)
      .Int("last_version", info.last_version)
      .Raw("max_count", OptionalInt(m.max_count))
      .Raw("max_age_seconds",
           m.max_age.has_value()
               ? absl::StrCat(absl::ToInt64Seconds(*m.max_age))
               : std::string("null"))
      .Raw("truncate_before", OptionalInt(m.truncate_before))
      .Time("deleted_at", info.deleted_at.value_or(absl::InfinitePast()))
      .Build();
}

double ScavengeRate(const ScavengeResult& result) {
  const double seconds = absl::ToDoubleSeconds(result.elapsed);
  return seconds > 0 ? static_cast<double>(result.events_removed) / seconds
                     : 0.0;
}

std::string ScavengeResultJson(const ScavengeResult& result) {
  return JsonObject()
      .Int("events_removed", result.events_removed)
      .Int("streams_scavenged", result.streams_scavenged)
      .Int("streams_examined", result.streams_examined)
      .Int("batches", result.batches)
      .Bool("complete", result.complete)
      .Bool("compacted", result.compacted)
      .Raw("elapsed_seconds", Number(absl::ToDoubleSeconds(result.elapsed)))
      .Raw("events_per_second", Number(ScavengeRate(result)))
      .Build();
}

std::string ForgetResultJson(const std::string& subject,
                             const ForgetSubjectResult& result) {
  std::vector<std::string> streams;
  streams.reserve(result.streams.size());
  for (const std::string& s : result.streams) streams.push_back(JsonQuote(s));
  return JsonObject()
      .Str("subject", subject)
      .Bool("forgotten_now", result.forgotten_now)
      .Raw("streams", absl::StrCat("[", absl::StrJoin(streams, ","), "]"))
      .Int("snapshots_removed", result.snapshots_removed)
      .Build();
}

}  // namespace eventstore::tools
