// The JSON objects of the store's records, one shape each, shared by the
// `eventstore` commands' --format json|jsonl output and the JSON API of
// `eventstore serve` (docs/http-api.md), so that both show the same keys.
//
//   out.Add(cells, StreamSummaryJson(summary));
//   SendJson(res, 200, DeadLetterJson(letter));
//
// Positions are strings (64-bit safe in JavaScript); times RFC 3339 in UTC
// (TimeText) or null when unset.

#ifndef EVENTSTORE_TOOLS_RECORD_JSON_H_
#define EVENTSTORE_TOOLS_RECORD_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/store_inspector.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/subject_key_store.h"
#include "tools/output_format.h"

namespace eventstore::tools {

// `eventstore info`: the store, and how many types it recorded, as a
// builder a caller may add keys to before Build().
// {"backend","location","schema_version","code_schema_version","streams",
//  "events","head","size_bytes","recorded_types"}
JsonObject StoreInfoJson(const StoreInfo& info, int64_t recorded_types);

// `eventstore streams`: {"stream","version","first_recorded_at",
// "last_recorded_at"}
std::string StreamSummaryJson(const StreamSummary& stream);

// What a lag counts, for "lag_counts": "all events" without a filter, else
// "events of type a.B, a.C and in streams starting with 'order-'".
std::string LagCountsText(const std::vector<std::string>& types,
                          const std::string& prefix);

// `eventstore checkpoints`: a checkpoint with its lag and its projection's
// unresolved dead letters. {"projection","position","events_processed",
// "events_behind","seconds_behind","lag_counts","parked","retrying",
// "updated_at","rebuild_requested_at" (null when none is pending),
// "rebuild_requested_by"}
std::string CheckpointJson(const Checkpoint& checkpoint,
                           const ProjectionLag& lag,
                           const std::string& lag_counts,
                           const DeadLetterCount& dead_letters);

// `eventstore dlq list` / `show`: {"projection","event_id","stream",
// "version","position","event_type","status","error","failure_count",
// "first_failed_at","last_failed_at","resolved_by","resolved_at"}
std::string DeadLetterJson(const DeadLetter& letter);

// `eventstore outbox stats`, the age measured at `now`: {"pending",
// "published","failed","oldest_pending","oldest_pending_age_seconds"}
std::string OutboxStatsJson(const OutboxStats& stats, absl::Time now);

// `eventstore outbox list`: {"id","destination","key","status","attempts",
// "created_at","claimed_by","lease_until","last_error","published_at",
// "headers":{...},"payload_base64"}
std::string OutboxEntryJson(const OutboxEntry& entry);

// `eventstore delete`: {"stream","mode","marker_version","position",
// "snapshots_removed"}
std::string DeleteResultJson(const std::string& stream, DeleteMode mode,
                             const DeleteResult& result);

// `eventstore stream-metadata`: {"stream","state","version","last_version",
// "max_count","max_age_seconds","truncate_before","deleted_at"}, the unset
// ones null.
std::string StreamInfoJson(const StreamInfo& info);

// `eventstore scavenge`: {"events_removed","streams_scavenged",
// "streams_examined","batches","complete","compacted","elapsed_seconds",
// "events_per_second"}
std::string ScavengeResultJson(const ScavengeResult& result);

// Events removed per second of `result` (0 when no time passed).
double ScavengeRate(const ScavengeResult& result);

// `eventstore forget`: {"subject","forgotten_now","streams":[...],
// "snapshots_removed"}
std::string ForgetResultJson(const std::string& subject,
                             const ForgetSubjectResult& result);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_RECORD_JSON_H_
