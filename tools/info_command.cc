#include "tools/info_command.h"

#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/failover_url.h"
#include "eventstore/store_inspector.h"
#include "tools/cli_support.h"
#include "tools/command.h"
#include "tools/failover_info.h"
#include "tools/output_format.h"
#include "tools/record_json.h"

namespace eventstore::tools {
namespace {

using Rows = std::vector<std::pair<std::string, std::string>>;

// Table rows: each key padded to one column.
void PrintRows(const Rows& rows, std::ostream& out) {
  constexpr size_t kKeyWidth = 16;
  for (const auto& [key, value] : rows) {
    out << key
        << std::string(key.size() < kKeyWidth ? kKeyWidth - key.size() : 1, ' ')
        << value << "\n";
  }
}

// A section of the table: a blank line, its title, its rows.
void PrintSection(std::string_view title, const Rows& rows, std::ostream& out) {
  out << "\n" << title << "\n";
  PrintRows(rows, out);
}

// What Info() and RecordedTypes() say of `store`.
struct StoreSummary {
  StoreInfo info;
  int64_t recorded_types = 0;
};

absl::StatusOr<StoreSummary> Summarize(EventStore& store,
                                       const InfoOptions& options) {
  StoreSummary summary;
  absl::StatusOr<StoreInfo> info = store.inspector().Info(options);
  if (!info.ok()) return info.status();
  summary.info = *std::move(info);
  absl::StatusOr<std::vector<RecordedType>> types =
      store.inspector().RecordedTypes();
  if (!types.ok()) return types.status();
  summary.recorded_types = static_cast<int64_t>(types->size());
  return summary;
}

Rows SummaryRows(const StoreSummary& summary) {
  const StoreInfo& info = summary.info;
  auto Count = [&](int64_t n) {
    return info.counts_estimated
               ? absl::StrCat("~", Grouped(n), " (estimated; --exact counts)")
               : Grouped(n);
  };
  std::string schema = absl::StrCat(info.schema_version);
  if (info.schema_version != info.code_schema_version) {
    absl::StrAppend(&schema, " (this tool writes ", info.code_schema_version,
                    ")");
  }
  return {
      {"backend", info.backend},
      {"location", info.location},
      {"schema version", schema},
      {"streams", Count(info.streams)},
      {"events", Count(info.events)},
      {"head position", info.head.ToString()},
      {"size", absl::StrCat(FormatBytes(info.size_bytes), " (",
                            CountOf(info.size_bytes, "byte"), ")")},
      {"recorded types", Grouped(summary.recorded_types)},
  };
}

// A JSON array of strings.
std::string JsonStrings(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", JsonQuote(values[i]));
  }
  return out + "]";
}

// --- a plain store: its journal state and the copies into it ---------------

Rows JournalRows(const JournalInfo& journal) {
  return {
      {"pending appends",
       absl::StrCat(Grouped(journal.pending_appends), " (",
                    CountOf(journal.pending_events, "event"), ")")},
      {"parked appends", Grouped(journal.parked)},
      {"replayed up to", journal.replayed.ToString()},
  };
}

std::string JournalJson(const JournalInfo& journal) {
  return JsonObject()
      .Int("pending_appends", journal.pending_appends)
      .Int("pending_events", journal.pending_events)
      .Int("parked", journal.parked)
      .Str("replayed", journal.replayed.ToString())
      .Build();
}

std::string CopyLine(const MigrationState& copy) {
  return absl::StrCat("replica of ", MaskUrl(copy.source), ": ",
                      CountOf(copy.events, "event"), ", last source position ",
                      copy.last_source_position.ToString(), ", updated at ",
                      TimeText(copy.updated_at));
}

std::string CopyJson(const MigrationState& copy) {
  return JsonObject()
      .Str("source", MaskUrl(copy.source))
      .Str("migration_id", copy.migration_id)
      .Int("events", copy.events)
      .Str("last_source_position", copy.last_source_position.ToString())
      .Time("started_at", copy.started_at)
      .Time("updated_at", copy.updated_at)
      .Build();
}

int PrintStore(EventStore& store, const std::string& url, OutputFormat format,
               const InfoOptions& options) {
  absl::StatusOr<StoreSummary> summary = Summarize(store, options);
  if (!summary.ok()) return PrintError("info", summary.status(), url);
  absl::StatusOr<StoreCopies> copies = ReadStoreCopies(store);
  if (!copies.ok()) return PrintError("info", copies.status(), url);
  if (format != OutputFormat::kTable) {
    JsonObject json = StoreInfoJson(summary->info, summary->recorded_types);
    if (copies->journal.has_value()) {
      json.Raw("failover_journal", JournalJson(*copies->journal));
    }
    if (!copies->copies.empty()) {
      std::vector<std::string> items;
      for (const MigrationState& copy : copies->copies) {
        items.push_back(CopyJson(copy));
      }
      json.Raw("replica_of", absl::StrCat("[", absl::StrJoin(items, ","), "]"));
    }
    std::cout << json.Build() << std::endl;
    return static_cast<int>(kExitOk);
  }
  PrintRows(SummaryRows(*summary), std::cout);
  if (copies->journal.has_value()) {
    PrintSection("failover journal", JournalRows(*copies->journal), std::cout);
  }
  if (!copies->copies.empty()) std::cout << "\n";
  for (const MigrationState& copy : copies->copies) {
    std::cout << CopyLine(copy) << "\n";
  }
  std::cout.flush();
  return static_cast<int>(kExitOk);
}

// --- a failover URL
// ------------------------------------------------------------

// The error on one line (libpq's have a line of hints), masked.
std::string LastErrorText(const absl::Status& error, const std::string& url) {
  if (error.ok()) return "-";
  std::string line;
  for (const char c : MaskSecrets(std::string(error.message()), url)) {
    const bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (space && (line.empty() || line.back() == ' ')) continue;
    line += space ? ' ' : c;
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

Rows FailoverRows(const FailoverInfo& failover, const std::string& url) {
  std::string pending =
      absl::StrCat(Grouped(failover.journal.pending_appends), " (",
                   CountOf(failover.journal.pending_events, "event"), ")");
  if (!failover.journal_exists) absl::StrAppend(&pending, ", no journal file");
  return {
      {"mode", failover.mode},
      {"journal", failover.journal_location},
      {"pending appends", pending},
      {"parked appends", Grouped(failover.journal.parked)},
      {"replayed up to", failover.journal.replayed.ToString()},
      {"last error", LastErrorText(failover.primary_error, url)},
  };
}

std::string LagText(const ReplicaInfo& replica) {
  if (!replica.primary_head.has_value())
    return "- (the primary is unreachable)";
  if (replica.ahead) {
    return "the replica is ahead of the primary (restored from an older "
           "backup?): it will not sync";
  }
  return absl::StrCat(replica.lag_capped ? "more than " : "",
                      CountOf(replica.lag_events, "event"), ", ",
                      DurationText(replica.lag_time));
}

Rows ReplicaRows(const ReplicaInfo& replica) {
  const std::optional<MigrationState>& state = replica.state;
  return {
      {"location",
       absl::StrCat(replica.location, replica.exists ? "" : " (no file yet)")},
      {"prefixes", replica.prefixes.empty()
                       ? std::string("every stream")
                       : absl::StrJoin(replica.prefixes, ", ")},
      {"position", state.has_value() ? state->last_source_position.ToString()
                                     : "- (nothing copied yet)"},
      {"primary head", replica.primary_head.has_value()
                           ? replica.primary_head->ToString()
                           : "- (the primary is unreachable)"},
      {"lag", LagText(replica)},
      {"last sync", state.has_value() ? TimeText(state->updated_at) : "-"},
      {"events copied", Grouped(state.has_value() ? state->events : 0)},
  };
}

std::string FailoverJson(const FailoverInfo& failover, const std::string& url) {
  JsonObject json;
  json.Str("mode", failover.mode)
      .Str("journal", failover.journal_location)
      .Bool("journal_exists", failover.journal_exists)
      .Int("pending_appends", failover.journal.pending_appends)
      .Int("pending_events", failover.journal.pending_events)
      .Int("parked", failover.journal.parked)
      .Str("replayed", failover.journal.replayed.ToString());
  if (failover.primary_error.ok()) {
    json.Raw("last_error", "null");
  } else {
    json.Str("last_error", LastErrorText(failover.primary_error, url));
  }
  return json.Build();
}

std::string ReplicaJson(const ReplicaInfo& replica) {
  const std::optional<MigrationState>& state = replica.state;
  const bool measured = replica.primary_head.has_value() && !replica.ahead;
  JsonObject json;
  json.Str("location", replica.location)
      .Bool("exists", replica.exists)
      .Raw("prefixes", JsonStrings(replica.prefixes));
  if (state.has_value()) {
    json.Str("position", state->last_source_position.ToString());
  } else {
    json.Raw("position", "null");
  }
  if (replica.primary_head.has_value()) {
    json.Str("primary_head", replica.primary_head->ToString());
  } else {
    json.Raw("primary_head", "null");
  }
  if (measured) {
    json.Int("lag_events", replica.lag_events)
        .Bool("lag_capped", replica.lag_capped)
        .Int("lag_seconds", absl::ToInt64Seconds(replica.lag_time));
  } else {
    json.Raw("lag_events", "null").Raw("lag_seconds", "null");
  }
  json.Bool("ahead", replica.ahead)
      .Time("last_sync",
            state.has_value() ? state->updated_at : absl::InfinitePast())
      .Int("events", state.has_value() ? state->events : 0);
  return json.Build();
}

int RunFailoverInfo(const std::string& url, OutputFormat format,
                    const InfoOptions& options) {
  absl::StatusOr<FailoverUrl> parsed = ParseFailoverUrl(url);
  if (!parsed.ok()) return PrintError("info", parsed.status(), url);
  absl::StatusOr<std::unique_ptr<EventStore>> primary =
      OpenStore(parsed->primary_url, ReadOnlyStore());
  absl::Status primary_error;
  std::optional<StoreSummary> summary;
  if (primary.ok()) {
    absl::StatusOr<StoreSummary> read = Summarize(**primary, options);
    if (read.ok()) {
      summary = *std::move(read);
    } else if (absl::IsUnavailable(read.status())) {
      primary_error = read.status();
    } else {
      return PrintError("info", read.status(), url);
    }
  } else if (absl::IsUnavailable(primary.status())) {
    primary_error = primary.status();
  } else {
    return PrintError("info", primary.status(), url);
  }
  EventStore* reachable = summary.has_value() ? primary->get() : nullptr;
  absl::StatusOr<FailoverInfo> failover =
      ReadFailoverInfo(*parsed, reachable, primary_error);
  if (!failover.ok()) return PrintError("info", failover.status(), url);

  if (format != OutputFormat::kTable) {
    JsonObject json =
        summary.has_value()
            ? StoreInfoJson(summary->info, summary->recorded_types)
            : JsonObject();
    json.Raw("failover", FailoverJson(*failover, url));
    if (failover->replica.has_value()) {
      json.Raw("replica", ReplicaJson(*failover->replica));
    }
    std::cout << json.Build() << std::endl;
  } else {
    if (summary.has_value()) {
      PrintRows(SummaryRows(*summary), std::cout);
      std::cout << "\n";
    }
    std::cout << "failover\n";
    PrintRows(FailoverRows(*failover, url), std::cout);
    if (failover->replica.has_value()) {
      PrintSection("replica", ReplicaRows(*failover->replica), std::cout);
    }
    std::cout.flush();
  }
  if (!primary_error.ok()) return PrintError("info", primary_error, url);
  return static_cast<int>(kExitOk);
}

}  // namespace

int RunInfoCommand(const std::string& given, OutputFormat format, bool exact) {
  InfoOptions options;
  if (exact) options.exact_count_limit = std::numeric_limits<int64_t>::max();
  absl::StatusOr<std::string> url = ResolveUrl(given);
  if (!url.ok()) return PrintError("info", url.status());
  if (absl::StartsWith(*url, kFailoverScheme)) {
    return RunFailoverInfo(*url, format, options);
  }
  return RunWithStore("info", *url, ReadOnlyStore(),
                      [&](EventStore& store, const std::string& resolved) {
                        return PrintStore(store, resolved, format, options);
                      });
}

}  // namespace eventstore::tools
