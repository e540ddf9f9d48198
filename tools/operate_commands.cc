// init, verify, checkpoints, dlq, outbox: operating a store (docs/cli.md).

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_importer.h"
#include "eventstore/event_store.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/outbox_store.h"
#include "eventstore/store_inspector.h"
#include "eventstore/uuid.h"
#include "tools/cli_support.h"
#include "tools/command.h"
#include "tools/json_renderer.h"
#include "tools/outbox_publish_command.h"
#include "tools/output_format.h"
#include "tools/record_json.h"

namespace eventstore::tools {
namespace {

constexpr int64_t kPageSize = 1000;

// --- init --------------------------------------------------------------------

struct InitArgs {
  std::string url;
};

int RunInit(const InitArgs& args) {
  OpenStoreOptions options;
  options.create_if_missing = true;
  return RunWithStore(
      "init", args.url, options,
      [&](EventStore& store, const std::string& url) {
        absl::StatusOr<StoreInfo> info = store.inspector().Info();
        if (!info.ok()) return PrintError("init", info.status(), url);
        std::cout << "ready: " << info->backend << " store at "
                  << info->location << ", schema version "
                  << info->schema_version << ", "
                  << CountOf(info->events, "event") << " in "
                  << CountOf(info->streams, "stream") << std::endl;
        return static_cast<int>(kExitOk);
      });
}

// --- verify ------------------------------------------------------------------

struct VerifyArgs {
  std::string url;
  bool payloads = false;
  OutputFormat format = OutputFormat::kTable;
};

struct Problem {
  std::string check;  // versions, positions, damaged, descriptors, payloads,
                      // count
  std::string where;  // a stream, a type, or "log"
  std::string detail;
};

// What verify learns from one pass over the log.
struct StreamState {
  int64_t last_version = 0;
  int64_t events = 0;
  bool reported = false;
};

// The streams that have a row in the streams table (a deletion or
// retention): reads leave some of their versions out, so their versions may
// start above 1 and have gaps. None for a store without a stream
// lifecycle.
absl::StatusOr<absl::flat_hash_set<std::string>> LifecycleStreams(
    EventStore& store) {
  absl::flat_hash_set<std::string> out;
  std::string after;
  constexpr int kRowsPage = 1000;
  while (true) {
    absl::StatusOr<std::vector<StreamRowRecord>> rows =
        store.importer().ListStreamRows(after, kRowsPage);
    if (!rows.ok() &&
        rows.status().code() == absl::StatusCode::kUnimplemented) {
      return out;
    }
    if (!rows.ok()) return rows.status();
    for (const StreamRowRecord& r : *rows) {
      after = r.stream;
      out.insert(r.stream);
    }
    if (rows->size() < static_cast<size_t>(kRowsPage)) return out;
  }
}

int RunVerify(const VerifyArgs& args) {
  // Checksums are compared whatever the URL says (verify_checksums=false
  // only speeds up an application's reads).
  OpenStoreOptions open = ReadOnlyStore();
  open.force_verify_checksums = true;
  return RunWithStore(
      "verify", args.url, open, [&](EventStore& store, const std::string& url) {
        std::vector<Problem> problems;
        absl::StatusOr<StoreInfo> info = store.inspector().Info();
        if (!info.ok()) return PrintError("verify", info.status(), url);
        absl::StatusOr<std::vector<RecordedType>> types =
            store.inspector().RecordedTypes();
        if (!types.ok()) return PrintError("verify", types.status(), url);
        JsonRenderer renderer(*types);
        absl::flat_hash_map<std::string, bool> described;
        for (const RecordedType& t : *types) {
          // A recorded descriptor set must parse and define its type.
          const RenderedPayload probe = renderer.RenderPayload(t.type, "");
          const bool ok = probe.decoded;
          described[t.type] = ok;
          if (!ok) problems.push_back({"descriptors", t.type, probe.error});
        }
        if (info->schema_version != info->code_schema_version) {
          problems.push_back(
              {"schema", "store",
               absl::StrCat("schema version ", info->schema_version,
                            " differs from this tool's ",
                            info->code_schema_version)});
        }

        // Streams with deletions or retention: ReadAll hides some of their
        // events, so their versions only increase (gaps allowed).
        absl::StatusOr<absl::flat_hash_set<std::string>> lifecycle =
            LifecycleStreams(store);
        if (!lifecycle.ok()) {
          return PrintError("verify", lifecycle.status(), url);
        }

        // One pass over the log in position order: positions strictly
        // increase, and each stream's versions run 1, 2, 3, ... in it
        // (increase, for a stream in `lifecycle`).
        absl::flat_hash_map<std::string, StreamState> streams;
        absl::flat_hash_map<std::string, int64_t> type_counts;
        ReadAllOptions options;
        options.max_count = kPageSize;
        int64_t events = 0;
        Position previous = Position::Start();
        while (true) {
          absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
          if (!page.ok()) {
            problems.push_back(
                {"read", "log",
                 absl::StrCat("reading after position ",
                              options.from_position.ToString(), " failed: ",
                              std::string(page.status().message()))});
            break;
          }
          for (const RecordedEvent& e : page->events) {
            ++events;
            if (e.position <= previous) {
              problems.push_back(
                  {"positions", e.stream,
                   absl::StrCat("position ", e.position.ToString(),
                                " (version ", e.version, ") does not follow ",
                                previous.ToString())});
            }
            previous = e.position;
            StreamState& s = streams[e.stream];
            ++s.events;
            const bool gaps_allowed = lifecycle->contains(e.stream);
            if (gaps_allowed ? e.version <= s.last_version
                             : e.version != s.last_version + 1) {
              problems.push_back(
                  {"versions", e.stream,
                   s.last_version == 0
                       ? absl::StrCat("first event has version ", e.version,
                                      " (position ", e.position.ToString(),
                                      "), not 1")
                       : absl::StrCat("version ", e.version, " (position ",
                                      e.position.ToString(),
                                      ") follows version ", s.last_version,
                                      e.version <= s.last_version
                                          ? " (out of order)"
                                          : " (a gap)")});
            }
            s.last_version = e.version;
            ++type_counts[e.type];
            if (e.damaged()) {
              // Names the position, stream, version and what is wrong.
              problems.push_back(
                  {"damaged", e.stream, std::string(e.damage.message())});
              continue;
            }
            // An encrypted payload (sealed: read without the master key)
            // is ciphertext, not the type's bytes: nothing to decode.
            if (args.payloads && !e.sealed() && described.contains(e.type) &&
                described[e.type]) {
              const RenderedPayload p =
                  renderer.RenderPayload(e.type, e.payload);
              if (!p.decoded) {
                problems.push_back(
                    {"payloads", e.stream,
                     absl::StrCat("version ", e.version, ": ", p.error)});
              }
            }
          }
          options.from_position = page->next_position;
          if (page->end_of_log) break;
        }
        std::vector<std::string> type_names;
        for (const auto& [type, count] : type_counts)
          type_names.push_back(type);
        std::sort(type_names.begin(), type_names.end());
        for (const std::string& type : type_names) {
          if (!described.contains(type)) {
            problems.push_back(
                {"descriptors", type,
                 absl::StrCat(type_counts[type],
                              " events of this type, but no "
                              "descriptor recorded (shown as base64)")});
          }
        }
        // Hidden events are stored but not read: with stream rows, the
        // log read can only be shorter than the count.
        if (lifecycle->empty() ? info->events != events
                               : info->events < events) {
          problems.push_back(
              {"count", "log",
               absl::StrCat(
                   "the store counts ", info->events,
                   " events but reading the log returned ", events,
                   " (events appended meanwhile, or rows unreadable)")});
        }

        RecordWriter out(std::cout, args.format, {"CHECK", "WHERE", "PROBLEM"});
        for (const Problem& p : problems) {
          out.Add({p.check, Cell(p.where), p.detail},
                  JsonObject()
                      .Str("check", p.check)
                      .Str("where", p.where)
                      .Str("problem", p.detail)
                      .Build());
        }
        if (args.format == OutputFormat::kTable) {
          if (problems.empty()) {
            std::cout << "ok: " << CountOf(events, "event") << " in "
                      << CountOf(static_cast<int64_t>(streams.size()), "stream")
                      << ", "
                      << CountOf(static_cast<int64_t>(types->size()),
                                 "recorded type")
                      << "; no problem found" << std::endl;
          } else {
            out.Finish();
            std::cout << CountOf(static_cast<int64_t>(problems.size()),
                                 "problem")
                      << " in " << CountOf(events, "event") << ", "
                      << CountOf(static_cast<int64_t>(streams.size()), "stream")
                      << std::endl;
          }
        } else {
          out.Finish();
        }
        return static_cast<int>(problems.empty() ? kExitOk : kExitProblem);
      });
}

// --- checkpoints -------------------------------------------------------------

struct CheckpointsArgs {
  std::string url;
  std::vector<std::string> types;
  std::string prefix;
  int64_t max_lag = -1;
  OutputFormat format = OutputFormat::kTable;
  // rebuild
  std::string projection;
  std::string requested_by;
};

// The REBUILD cell: "-", or who requested a pending rebuild and when.
std::string RebuildCell(const Checkpoint& cp) {
  if (!cp.rebuild_requested_at.has_value()) return "-";
  return absl::StrCat("requested by ", Cell(cp.rebuild_requested_by, 40),
                      " at ", TimeText(*cp.rebuild_requested_at));
}

// What the lag counts, for the JSON field "lag_counts" and the table's
// footnote: the store does not record a projection's type filter with its
// checkpoint, so without --type / --prefix the lag counts every event after
// the checkpoint (more than a filtered projection has to read).
std::string LagCounts(const CheckpointsArgs& args) {
  return LagCountsText(args.types, args.prefix);
}

int RunCheckpoints(const CheckpointsArgs& args) {
  return RunWithStore(
      "checkpoints", args.url, ReadOnlyStore(),
      [&](EventStore& store, const std::string& url) {
        absl::StatusOr<std::vector<Checkpoint>> checkpoints =
            store.checkpoints().List();
        if (!checkpoints.ok()) {
          return PrintError("checkpoints", checkpoints.status(), url);
        }
        absl::StatusOr<std::vector<DeadLetterCount>> counts =
            store.dead_letters().Counts();
        if (!counts.ok())
          return PrintError("checkpoints", counts.status(), url);
        absl::flat_hash_map<std::string, DeadLetterCount> parked;
        for (const DeadLetterCount& c : *counts) parked[c.projection] = c;
        ReadAllFilter filter;
        filter.event_types = args.types;
        filter.stream_prefix = args.prefix;
        RecordWriter out(
            std::cout, args.format,
            {"PROJECTION", "POSITION", "PROCESSED", "EVENTS_BEHIND*",
             "TIME_BEHIND*", "PARKED", "UPDATED_AT", "REBUILD"});
        const std::string lag_counts = LagCounts(args);
        // Projections more than --max-lag events behind.
        std::vector<std::string> over;
        for (const Checkpoint& cp : *checkpoints) {
          absl::StatusOr<ProjectionLag> lag =
              store.checkpoints().Lag(cp.projection, filter);
          if (!lag.ok()) {
            out.Finish();
            return PrintError("checkpoints", lag.status(), url);
          }
          const DeadLetterCount& dl = parked[cp.projection];
          if (args.max_lag >= 0 && lag->events_behind > args.max_lag) {
            over.push_back(absl::StrCat(cp.projection, " (",
                                        Grouped(lag->events_behind), ")"));
          }
          out.Add(
              {cp.projection, cp.position.ToString(),
               Grouped(cp.events_processed), Grouped(lag->events_behind),
               DurationText(lag->time_behind), Grouped(dl.parked + dl.retrying),
               TimeText(cp.updated_at), RebuildCell(cp)},
              CheckpointJson(cp, *lag, lag_counts, dl));
        }
        out.Finish();
        if (args.format == OutputFormat::kTable && !checkpoints->empty()) {
          std::cout << "* counts " << lag_counts << " after the checkpoint";
          if (args.types.empty() && args.prefix.empty()) {
            std::cout << ", not only those a projection's type filter reads: "
                         "give the filter with --type / --prefix";
          }
          std::cout << "\n";
        }
        if (!over.empty()) {
          PrintErrorMessage(
              "checkpoints",
              absl::StrCat(over.size() == 1 ? "projection " : "projections ",
                           absl::StrJoin(over, ", "),
                           over.size() == 1 ? " is" : " are", " more than ",
                           CountOf(args.max_lag, "event"), " behind"));
          return static_cast<int>(kExitProblem);
        }
        return static_cast<int>(kExitOk);
      });
}

std::string DefaultOperatorName();

int RunCheckpointsRebuild(const CheckpointsArgs& args) {
  const std::string by =
      args.requested_by.empty() ? DefaultOperatorName() : args.requested_by;
  return RunWithStore(
      "checkpoints rebuild", args.url, {},
      [&](EventStore& store, const std::string& url) {
        absl::Status requested =
            store.checkpoints().RequestRebuild(args.projection, by);
        if (!requested.ok()) {
          return PrintError("checkpoints rebuild", requested, url);
        }
        absl::StatusOr<std::optional<Checkpoint>> cp =
            store.checkpoints().Get(args.projection);
        if (!cp.ok())
          return PrintError("checkpoints rebuild", cp.status(), url);
        // Requesting again keeps the first request: say whose it is.
        const Checkpoint shown = cp->value_or(Checkpoint());
        std::cout << "rebuild requested: " << args.projection << " by "
                  << Cell(shown.rebuild_requested_by, 80) << " at "
                  << TimeText(shown.rebuild_requested_at.value_or(
                         absl::InfinitePast()))
                  << std::endl;
        // Who will do it: the runner holding the projection's lease (under
        // the default lease name), if the store can tell.
        absl::StatusOr<std::optional<LeaseHolder>> holder =
            store.inspector().FindLeaseHolder(
                absl::StrCat("projection:", args.projection));
        std::cerr << "eventstore checkpoints rebuild: ";
        if (holder.ok() && holder->has_value()) {
          std::cerr << "the runner holding the projection's lease (pid "
                    << (*holder)->pid
                    << ") clears its read model and replays from the start "
                       "after its batch in progress, within its "
                       "rebuild_check_interval (1 s by default)";
        } else if (holder.ok()) {
          std::cerr << "no runner holds the projection's lease now: the next "
                       "ProjectionRunner of it to start clears its read model "
                       "and replays from the start";
        } else {
          std::cerr << "a running ProjectionRunner of the projection clears "
                       "its read model and replays from the start within its "
                       "rebuild_check_interval (1 s by default); otherwise "
                       "the next one to start does";
        }
        std::cerr << std::endl;
        return static_cast<int>(kExitOk);
      });
}

// --- dlq ---------------------------------------------------------------------

struct DlqArgs {
  std::string url;
  // list
  std::string projection;
  std::string status = "unresolved";
  int limit = 100;
  OutputFormat format = OutputFormat::kTable;
  // show, retry, resolve
  std::string target_projection;
  std::vector<std::string> event_ids;
  bool all = false;
  std::string resolved_by;
};

int RunDlqList(const DlqArgs& args) {
  std::vector<std::optional<DeadLetterStatus>> wanted;
  if (args.status == "unresolved") {
    wanted = {DeadLetterStatus::kParked, DeadLetterStatus::kRetrying};
  } else if (args.status == "all") {
    wanted = {std::nullopt};
  } else if (args.status == "parked") {
    wanted = {DeadLetterStatus::kParked};
  } else if (args.status == "retrying") {
    wanted = {DeadLetterStatus::kRetrying};
  } else {
    wanted = {DeadLetterStatus::kResolved};
  }
  return RunWithStore(
      "dlq list", args.url, ReadOnlyStore(),
      [&](EventStore& store, const std::string& url) {
        std::vector<DeadLetter> letters;
        for (const auto& status : wanted) {
          absl::StatusOr<std::vector<DeadLetter>> some =
              store.dead_letters().List(args.projection, status, args.limit);
          if (!some.ok()) return PrintError("dlq list", some.status(), url);
          for (DeadLetter& d : *some) letters.push_back(std::move(d));
        }
        std::stable_sort(letters.begin(), letters.end(),
                         [](const DeadLetter& a, const DeadLetter& b) {
                           return a.first_failed_at < b.first_failed_at;
                         });
        if (static_cast<int>(letters.size()) > args.limit) {
          letters.resize(static_cast<size_t>(args.limit));
        }
        RecordWriter out(std::cout, args.format,
                         {"PROJECTION", "EVENT_ID", "STREAM", "VERSION", "TYPE",
                          "STATUS", "TIMES_PARKED", "LAST_FAILED_AT", "ERROR"});
        for (const DeadLetter& d : letters) {
          out.Add({d.projection, d.event_id.ToString(), d.stream,
                   absl::StrCat(d.version), d.event_type,
                   internal::DeadLetterStatusName(d.status),
                   Grouped(d.failure_count), TimeText(d.last_failed_at),
                   Cell(d.error, 80)},
                  DeadLetterJson(d));
        }
        out.Finish();
        return static_cast<int>(kExitOk);
      });
}

// The ids of `args.event_ids`, or a usage error printed for `command`.
std::optional<std::vector<Uuid>> ParseIds(const std::string& command,
                                          const std::vector<std::string>& ids) {
  std::vector<Uuid> out;
  for (const std::string& text : ids) {
    absl::StatusOr<Uuid> id = Uuid::Parse(text);
    if (!id.ok()) {
      PrintErrorMessage(command,
                        absl::StrCat("EVENT_ID: '", text, "' is not a UUID"));
      return std::nullopt;
    }
    out.push_back(*id);
  }
  return out;
}

int RunDlqShow(const DlqArgs& args) {
  std::optional<std::vector<Uuid>> ids = ParseIds("dlq show", args.event_ids);
  if (!ids.has_value()) return kExitUsage;
  return RunWithStore(
      "dlq show", args.url, ReadOnlyStore(),
      [&](EventStore& store, const std::string& url) {
        absl::StatusOr<std::unique_ptr<JsonRenderer>> renderer =
            JsonRenderer::ForStore(store);
        if (!renderer.ok())
          return PrintError("dlq show", renderer.status(), url);
        int code = kExitOk;
        for (const Uuid& id : *ids) {
          absl::StatusOr<std::optional<DeadLetter>> letter =
              store.dead_letters().Get(args.target_projection, id);
          if (!letter.ok()) return PrintError("dlq show", letter.status(), url);
          if (!letter->has_value()) {
            PrintErrorMessage(
                "dlq show",
                absl::StrCat("projection '", args.target_projection,
                             "' has no dead letter for event ", id.ToString()));
            code = kExitProblem;
            continue;
          }
          const DeadLetter& d = **letter;
          ReadStreamOptions read;
          read.from_version = d.version;
          read.max_count = 1;
          absl::StatusOr<std::vector<RecordedEvent>> events =
              store.ReadStream(d.stream, read);
          if (!events.ok()) return PrintError("dlq show", events.status(), url);
          std::string event_json = "null";
          if (!events->empty() && events->front().id == d.event_id) {
            event_json = (*renderer)->RenderEvent(events->front());
          }
          std::cout << JsonObject()
                           .Raw("dead_letter", DeadLetterJson(d))
                           .Raw("event", event_json)
                           .Build()
                    << std::endl;
        }
        return code;
      });
}

int RunDlqRetry(const DlqArgs& args) {
  std::optional<std::vector<Uuid>> ids = ParseIds("dlq retry", args.event_ids);
  if (!ids.has_value()) return kExitUsage;
  if (ids->empty() && !args.all) {
    PrintErrorMessage("dlq retry", "give EVENT_ID(s) or --all");
    return kExitUsage;
  }
  return RunWithStore(
      "dlq retry", args.url, {},
      [&](EventStore& store, const std::string& url) {
        std::vector<Uuid> todo = *ids;
        if (args.all) {
          absl::StatusOr<std::vector<DeadLetter>> parked =
              store.dead_letters().List(args.target_projection,
                                        DeadLetterStatus::kParked,
                                        std::numeric_limits<int>::max());
          if (!parked.ok())
            return PrintError("dlq retry", parked.status(), url);
          for (const DeadLetter& d : *parked) todo.push_back(d.event_id);
        }
        int code = kExitOk;
        for (const Uuid& id : todo) {
          absl::Status s =
              store.dead_letters().MarkRetrying(args.target_projection, id);
          if (!s.ok()) {
            code = PrintError("dlq retry", s, url);
            continue;
          }
          std::cout << "retrying: " << args.target_projection << " "
                    << id.ToString() << std::endl;
        }
        if (!todo.empty()) {
          std::cerr << "eventstore dlq retry: a running ProjectionRunner of "
                       "the projection replays these within its "
                       "retrying_check_interval (1 s by default)"
                    << std::endl;
        }
        return code;
      });
}

// Who an operator is when not given: "eventstore-cli:$USER".
std::string DefaultOperatorName() {
  const char* user = std::getenv("USER");
  return absl::StrCat("eventstore-cli", user != nullptr && user[0] != '\0'
                                            ? absl::StrCat(":", user)
                                            : std::string());
}

int RunDlqResolve(const DlqArgs& args) {
  std::optional<std::vector<Uuid>> ids =
      ParseIds("dlq resolve", args.event_ids);
  if (!ids.has_value()) return kExitUsage;
  if (ids->empty()) {
    PrintErrorMessage("dlq resolve", "give EVENT_ID(s)");
    return kExitUsage;
  }
  const std::string by =
      args.resolved_by.empty() ? DefaultOperatorName() : args.resolved_by;
  return RunWithStore("dlq resolve", args.url, {},
                      [&](EventStore& store, const std::string& url) {
                        int code = kExitOk;
                        for (const Uuid& id : *ids) {
                          absl::Status s = store.dead_letters().MarkResolved(
                              args.target_projection, id, by);
                          if (!s.ok()) {
                            code = PrintError("dlq resolve", s, url);
                            continue;
                          }
                          std::cout << "resolved: " << args.target_projection
                                    << " " << id.ToString() << " by " << by
                                    << std::endl;
                        }
                        return code;
                      });
}

// --- outbox ------------------------------------------------------------------

struct OutboxArgs {
  std::string url;
  int limit = 100;
  OutputFormat format = OutputFormat::kTable;
  std::vector<int64_t> ids;  // retry
};

int RunOutboxStats(const OutboxArgs& args) {
  return RunWithStore(
      "outbox stats", args.url, ReadOnlyStore(),
      [&](EventStore& store, const std::string& url) {
        absl::StatusOr<OutboxStats> stats = store.outbox().Stats();
        if (!stats.ok()) return PrintError("outbox stats", stats.status(), url);
        const bool any_pending = stats->oldest_pending != absl::InfinitePast();
        const absl::Time now = absl::Now();
        const absl::Duration age =
            any_pending ? now - stats->oldest_pending : absl::ZeroDuration();
        if (args.format != OutputFormat::kTable) {
          std::cout << OutboxStatsJson(*stats, now) << std::endl;
          return static_cast<int>(kExitOk);
        }
        std::cout << "pending         " << Grouped(stats->pending) << "\n"
                  << "published       " << Grouped(stats->published) << "\n"
                  << "failed          " << Grouped(stats->failed) << "\n"
                  << "oldest pending  "
                  << (any_pending
                          ? absl::StrCat(TimeText(stats->oldest_pending), " (",
                                         DurationText(age), " ago)")
                          : std::string("-"))
                  << std::endl;
        return static_cast<int>(kExitOk);
      });
}

int RunOutboxList(const OutboxArgs& args) {
  return RunWithStore(
      "outbox list", args.url, ReadOnlyStore(),
      [&](EventStore& store, const std::string& url) {
        absl::StatusOr<std::vector<OutboxEntry>> pending =
            store.outbox().Pending(args.limit);
        if (!pending.ok())
          return PrintError("outbox list", pending.status(), url);
        RecordWriter out(std::cout, args.format,
                         {"ID", "DESTINATION", "KEY", "STATUS", "ATTEMPTS",
                          "CREATED_AT", "CLAIMED_BY", "BYTES", "LAST_ERROR"});
        for (const OutboxEntry& e : *pending) {
          out.Add({absl::StrCat(e.id), e.message.destination,
                   Cell(e.message.key), internal::OutboxStatusName(e.status),
                   Grouped(e.attempts), TimeText(e.created_at),
                   e.claimed_by.empty() ? "-" : e.claimed_by,
                   Grouped(static_cast<int64_t>(e.message.payload.size())),
                   Cell(e.last_error, 60)},
                  OutboxEntryJson(e));
        }
        out.Finish();
        return static_cast<int>(kExitOk);
      });
}

int RunOutboxRetry(const OutboxArgs& args) {
  return RunWithStore("outbox retry", args.url, {},
                      [&](EventStore& store, const std::string& url) {
                        int code = kExitOk;
                        for (const int64_t id : args.ids) {
                          absl::Status s = store.outbox().Retry(id);
                          if (!s.ok()) {
                            code = PrintError("outbox retry", s, url);
                            continue;
                          }
                          std::cout << "pending again: " << id << std::endl;
                        }
                        return code;
                      });
}

}  // namespace

void RegisterOperateCommands(CLI::App& app, int& exit_code) {
  {
    auto args = std::make_shared<InitArgs>();
    CLI::App* cmd = app.add_subcommand(
        "init",
        "Create the store (a SQLite file, or a PostgreSQL schema); a store "
        "with an older schema is left to `eventstore upgrade`");
    AddUrlArgument(*cmd, args->url);
    SetExample(*cmd,
               "eventstore init sqlite:events.db\n"
               "eventstore init 'postgresql://app@db:5432/shop?schema=events'");
    cmd->callback([args, &exit_code] { exit_code = RunInit(*args); });
  }
  {
    auto args = std::make_shared<VerifyArgs>();
    CLI::App* cmd = app.add_subcommand(
        "verify",
        "Check the store: per-stream version continuity, position order, a "
        "recorded descriptor for every stored type. Exit code 1 when a "
        "problem is found");
    AddUrlArgument(*cmd, args->url);
    cmd->add_flag("--payloads", args->payloads,
                  "Also decode every payload with its recorded descriptor");
    AddFormatOption(*cmd, args->format);
    SetExample(*cmd, "eventstore verify sqlite:events.db && echo consistent");
    cmd->callback([args, &exit_code] { exit_code = RunVerify(*args); });
  }
  {
    auto args = std::make_shared<CheckpointsArgs>();
    CLI::App* cmd = app.add_subcommand(
        "checkpoints",
        "Each projection's checkpoint with its lag behind the head of the "
        "log, and its unresolved dead letters");
    AddUrlArgument(*cmd, args->url);
    cmd->add_option("--type", args->types,
                    "Count lag only over events of this type (the "
                    "projection's filter; repeat for several)");
    cmd->add_option("--prefix", args->prefix,
                    "Count lag only over streams starting with this");
    cmd->add_option("--max-lag", args->max_lag,
                    "Exit 1 when a projection is more than this many events "
                    "behind")
        ->check(NonNegative());
    AddFormatOption(*cmd, args->format);
    cmd->require_subcommand(0, 1);
    SetExample(*cmd,
               "eventstore checkpoints sqlite:events.db\n"
               "eventstore checkpoints \"$EVENTSTORE_URL\" --max-lag 1000 "
               "--format json\n"
               "eventstore checkpoints sqlite:events.db rebuild order-totals "
               "--by alice");
    CLI::App* rebuild = cmd->add_subcommand(
        "rebuild",
        "Ask the projection's runner to rebuild: clear its read model and "
        "replay from the start. A running runner starts it after its batch "
        "in progress; otherwise the next one to start does");
    rebuild->add_option("PROJECTION", args->projection, "The projection")
        ->required();
    rebuild->add_option("--by", args->requested_by,
                        "Recorded as who requested it (default: "
                        "eventstore-cli:$USER)");
    SetExample(*rebuild,
               "eventstore checkpoints sqlite:events.db rebuild order-totals "
               "--by alice");
    rebuild->callback(
        [args, &exit_code] { exit_code = RunCheckpointsRebuild(*args); });
    cmd->callback([cmd, rebuild, args, &exit_code] {
      // The listing, unless the command was `rebuild`.
      if (cmd->got_subcommand(rebuild)) return;
      exit_code = RunCheckpoints(*args);
    });
  }
  {
    auto args = std::make_shared<DlqArgs>();
    CLI::App* dlq = app.add_subcommand(
        "dlq", "Dead letters: events projections parked after failing");
    AddUrlArgument(*dlq, args->url);
    dlq->require_subcommand(1);
    SetExample(*dlq,
               "eventstore dlq sqlite:events.db list\n"
               "eventstore dlq sqlite:events.db show order-totals "
               "3f1c...-...\n"
               "eventstore dlq sqlite:events.db retry order-totals --all\n"
               "eventstore dlq sqlite:events.db resolve order-totals "
               "3f1c...-... --by alice");

    CLI::App* list = dlq->add_subcommand(
        "list", "Dead letters, oldest first (default: unresolved ones)");
    list->add_option("--projection", args->projection,
                     "Only this projection's");
    list->add_option("--status", args->status,
                     "unresolved (parked or retrying), parked, retrying, "
                     "resolved or all")
        ->check(CLI::IsMember(
            {"unresolved", "parked", "retrying", "resolved", "all"}))
        ->capture_default_str();
    list->add_option("--limit", args->limit, "Most entries")
        ->check(AtLeastOne(std::numeric_limits<int>::max()))
        ->capture_default_str();
    AddFormatOption(*list, args->format);
    SetExample(*list,
               "eventstore dlq sqlite:events.db list --projection "
               "order-totals --format jsonl");
    list->callback([args, &exit_code] { exit_code = RunDlqList(*args); });

    CLI::App* show =
        dlq->add_subcommand("show", "One dead letter with its event, as JSON");
    show->add_option("PROJECTION", args->target_projection, "The projection")
        ->required();
    show->add_option("EVENT_ID", args->event_ids, "The parked event's id")
        ->required();
    SetExample(*show,
               "eventstore dlq sqlite:events.db show order-totals "
               "7d0c6a2e-4f7b-4c1e-9a57-0b7f7e3c5d21");
    show->callback([args, &exit_code] { exit_code = RunDlqShow(*args); });

    CLI::App* retry = dlq->add_subcommand(
        "retry",
        "Mark dead letters retrying: a running ProjectionRunner of the "
        "projection replays them within its retrying_check_interval");
    retry->add_option("PROJECTION", args->target_projection, "The projection")
        ->required();
    retry->add_option("EVENT_IDS", args->event_ids, "Parked events' ids");
    retry->add_flag("--all", args->all, "Every parked event of the projection");
    SetExample(*retry,
               "eventstore dlq sqlite:events.db retry order-totals --all");
    retry->callback([args, &exit_code] { exit_code = RunDlqRetry(*args); });

    CLI::App* resolve = dlq->add_subcommand(
        "resolve", "Mark dead letters resolved (handled by hand, or to skip)");
    resolve->add_option("PROJECTION", args->target_projection, "The projection")
        ->required();
    resolve->add_option("EVENT_IDS", args->event_ids, "Parked events' ids")
        ->required();
    resolve->add_option("--by", args->resolved_by,
                        "Recorded as resolved_by (default: eventstore-cli:"
                        "$USER)");
    SetExample(*resolve,
               "eventstore dlq sqlite:events.db resolve order-totals "
               "7d0c6a2e-4f7b-4c1e-9a57-0b7f7e3c5d21 --by alice");
    resolve->callback([args, &exit_code] { exit_code = RunDlqResolve(*args); });
  }
  {
    auto args = std::make_shared<OutboxArgs>();
    CLI::App* outbox = app.add_subcommand(
        "outbox", "The transactional outbox: counts and pending messages");
    AddUrlArgument(*outbox, args->url);
    outbox->require_subcommand(1);
    SetExample(*outbox,
               "eventstore outbox sqlite:events.db stats\n"
               "eventstore outbox sqlite:events.db list --limit 20\n"
               "eventstore outbox sqlite:events.db retry 40211\n"
               "eventstore outbox publish sqlite:events.db --to "
               "nats://127.0.0.1:4222");
    CLI::App* stats = outbox->add_subcommand(
        "stats", "Pending, published and failed messages; the oldest pending");
    AddFormatOption(*stats, args->format);
    SetExample(*stats, "eventstore outbox sqlite:events.db stats");
    stats->callback([args, &exit_code] { exit_code = RunOutboxStats(*args); });
    CLI::App* list =
        outbox->add_subcommand("list", "Pending messages, oldest first");
    list->add_option("--limit", args->limit, "Most messages")
        ->check(AtLeastOne(std::numeric_limits<int>::max()))
        ->capture_default_str();
    AddFormatOption(*list, args->format);
    SetExample(*list, "eventstore outbox sqlite:events.db list --format jsonl");
    list->callback([args, &exit_code] { exit_code = RunOutboxList(*args); });
    CLI::App* retry = outbox->add_subcommand(
        "retry",
        "Make failed messages (given up after the publisher's attempts) "
        "pending again, with no attempts counted");
    retry->add_option("IDS", args->ids, "Failed messages' ids")->required();
    SetExample(*retry, "eventstore outbox sqlite:events.db retry 40211 40215");
    retry->callback([args, &exit_code] { exit_code = RunOutboxRetry(*args); });
    RegisterOutboxPublish(*outbox, args->url, exit_code);
  }
}

}  // namespace eventstore::tools
