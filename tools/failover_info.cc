#include "tools/failover_info.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/internal/failover_journal.h"
#include "eventstore/status_macros.h"
#include "eventstore/store_inspector.h"
#include "tools/cli_support.h"

namespace eventstore::tools {
namespace {

// Events read per ReadAll call.
constexpr int64_t kPageSize = 1000;

// The store at the SQLite URL `url` opened read-only; null when its file
// does not exist (or it is in memory: another process's is out of reach).
absl::StatusOr<std::unique_ptr<EventStore>> OpenIfExists(
    const std::string& url) {
  ES_ASSIGN_OR_RETURN(SqliteOptions options, SqliteOptions::FromUrl(url));
  std::error_code error;
  if (options.path == ":memory:" ||
      !std::filesystem::exists(options.path, error)) {
    return std::unique_ptr<EventStore>();
  }
  return OpenStore(url, ReadOnlyStore());
}

// `prefixes` without those another one of them covers ("order-" covers
// "order-eu-"), so that no event is counted twice.
std::vector<std::string> Disjoint(const std::vector<std::string>& prefixes) {
  std::vector<std::string> out;
  for (size_t i = 0; i < prefixes.size(); ++i) {
    bool covered = false;
    for (size_t j = 0; j < prefixes.size() && !covered; ++j) {
      if (i == j) continue;
      covered = absl::StartsWith(prefixes[i], prefixes[j]) &&
                (prefixes[i] != prefixes[j] || j < i);
    }
    if (!covered) out.push_back(prefixes[i]);
  }
  return out;
}

// Fills `replica`'s lag: the events of the copied streams that `primary`
// holds after `from`.
absl::Status MeasureLag(EventStore& primary, Position from, Position head,
                        ReplicaInfo& replica) {
  absl::Time oldest = absl::InfiniteFuture();
  if (replica.prefixes.empty()) {
    EventImporter& importer = primary.importer();
    ES_ASSIGN_OR_RETURN(const int64_t total, importer.CountEvents(head));
    ES_ASSIGN_OR_RETURN(const int64_t copied, importer.CountEvents(from));
    replica.lag_events = std::max<int64_t>(0, total - copied);
    ReadAllOptions read;
    read.from_position = from;
    read.max_count = 1;
    ES_ASSIGN_OR_RETURN(ReadAllPage page, primary.ReadAll(read));
    if (!page.events.empty()) oldest = page.events.front().recorded_at;
  } else {
    for (const std::string& prefix : Disjoint(replica.prefixes)) {
      ReadAllOptions read;
      read.from_position = from;
      read.max_count = kPageSize;
      read.filter.stream_prefix = prefix;
      while (replica.lag_events < kMaxLagCount) {
        ES_ASSIGN_OR_RETURN(ReadAllPage page, primary.ReadAll(read));
        if (!page.events.empty()) {
          oldest = std::min(oldest, page.events.front().recorded_at);
        }
        replica.lag_events += static_cast<int64_t>(page.events.size());
        if (page.end_of_log || page.events.empty()) break;
        read.from_position = page.next_position;
      }
    }
    if (replica.lag_events >= kMaxLagCount) {
      replica.lag_events = kMaxLagCount;
      replica.lag_capped = true;
    }
  }
  replica.lag_time = oldest == absl::InfiniteFuture()
                         ? absl::ZeroDuration()
                         : std::max(absl::ZeroDuration(), absl::Now() - oldest);
  return absl::OkStatus();
}

absl::StatusOr<ReplicaInfo> ReadReplicaInfo(const FailoverUrl& url,
                                            EventStore* primary) {
  ReplicaInfo replica;
  replica.location = url.replica_url;
  replica.prefixes = url.options.replica_options.stream_prefixes;
  ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> store,
                      OpenIfExists(url.replica_url));
  if (store != nullptr) {
    replica.exists = true;
    if (primary != nullptr) {
      ES_ASSIGN_OR_RETURN(const std::string id, primary->importer().StoreId());
      ES_ASSIGN_OR_RETURN(replica.state, store->importer().GetMigration(id));
    } else {
      ES_ASSIGN_OR_RETURN(std::vector<MigrationState> copies,
                          store->importer().ListMigrations());
      if (!copies.empty()) replica.state = std::move(copies.front());
    }
  }
  if (primary == nullptr) return replica;
  ES_ASSIGN_OR_RETURN(const Position head, primary->HeadPosition());
  replica.primary_head = head;
  const Position from = replica.state.has_value()
                            ? replica.state->last_source_position
                            : Position::Start();
  if (head < from) {
    replica.ahead = true;
    return replica;
  }
  ES_RETURN_IF_ERROR(MeasureLag(*primary, from, head, replica));
  return replica;
}

}  // namespace

absl::StatusOr<std::optional<JournalInfo>> ReadJournalInfo(EventStore& store) {
  ES_ASSIGN_OR_RETURN(std::optional<Checkpoint> checkpoint,
                      store.checkpoints().Get(FailoverEventStore::kReplayName));
  ListStreamsOptions list;
  list.prefix = std::string(FailoverEventStore::kJournalPrefix);
  list.limit = 1;
  ES_ASSIGN_OR_RETURN(std::vector<StreamSummary> streams,
                      store.inspector().ListStreams(list));
  if (!checkpoint.has_value() && streams.empty()) return std::nullopt;

  JournalInfo info;
  info.replayed =
      checkpoint.has_value() ? checkpoint->position : Position::Start();
  absl::flat_hash_set<std::string> entries;
  ReadAllOptions read;
  read.from_position = info.replayed;
  read.max_count = kPageSize;
  read.filter.stream_prefix = std::string(FailoverEventStore::kJournalPrefix);
  while (true) {
    ES_ASSIGN_OR_RETURN(ReadAllPage page, store.ReadAll(read));
    for (const RecordedEvent& event : page.events) {
      const auto& properties = event.metadata.properties();
      const auto entry = properties.find(internal::kEntryKey);
      entries.insert(entry != properties.end() ? entry->second
                                               : event.id.ToString());
      if (event.type != internal::kOutboxType) ++info.pending_events;
    }
    if (page.end_of_log || page.events.empty()) break;
    read.from_position = page.next_position;
  }
  info.pending_appends = static_cast<int64_t>(entries.size());

  ES_ASSIGN_OR_RETURN(std::vector<DeadLetterCount> counts,
                      store.dead_letters().Counts());
  for (const DeadLetterCount& count : counts) {
    if (count.projection == FailoverEventStore::kReplayName) {
      info.parked = count.parked;
    }
  }
  return info;
}

absl::StatusOr<StoreCopies> ReadStoreCopies(EventStore& store) {
  StoreCopies copies;
  ES_ASSIGN_OR_RETURN(copies.journal, ReadJournalInfo(store));
  absl::StatusOr<std::vector<MigrationState>> migrations =
      store.importer().ListMigrations();
  if (migrations.ok()) {
    copies.copies = *std::move(migrations);
  } else if (!absl::IsUnimplemented(migrations.status())) {
    return migrations.status();
  }
  return copies;
}

absl::StatusOr<FailoverInfo> ReadFailoverInfo(
    const FailoverUrl& url, EventStore* primary,
    const absl::Status& primary_error) {
  FailoverInfo info;
  info.journal_location = url.journal_url;
  info.primary_error = primary_error;
  ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> journal,
                      OpenIfExists(url.journal_url));
  if (journal != nullptr) {
    info.journal_exists = true;
    ES_ASSIGN_OR_RETURN(std::optional<JournalInfo> state,
                        ReadJournalInfo(*journal));
    if (state.has_value()) info.journal = *state;
  }
  using Mode = FailoverStatus::Mode;
  info.mode = std::string(FailoverModeName(primary == nullptr ? Mode::kFallback
                                           : info.journal.pending_appends > 0
                                               ? Mode::kRecovering
                                               : Mode::kPrimary));
  if (!url.replica_url.empty()) {
    ES_ASSIGN_OR_RETURN(info.replica, ReadReplicaInfo(url, primary));
  }
  return info;
}

}  // namespace eventstore::tools
