// info, streams, read, tail: looking inside a store (docs/cli.md).

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/status_macros.h"
#include "eventstore/store_inspector.h"
#include "tools/cli_support.h"
#include "tools/command.h"
#include "tools/info_command.h"
#include "tools/json_renderer.h"
#include "tools/master_key_option.h"
#include "tools/output_format.h"
#include "tools/record_json.h"

namespace eventstore::tools {
namespace {

// Events read per ReadStream / ReadAll call.
constexpr int64_t kPageSize = 1000;
// How long tail --follow waits for new events before looking at the stop
// flag again.
constexpr absl::Duration kFollowWait = absl::Milliseconds(250);

// --- info --------------------------------------------------------------------

struct InfoArgs {
  std::string url;
  OutputFormat format = OutputFormat::kTable;
  bool exact = false;
};

int RunInfo(const InfoArgs& args) {
  return RunInfoCommand(args.url, args.format, args.exact);
}

// --- streams -----------------------------------------------------------------

struct StreamsArgs {
  std::string url;
  std::string prefix;
  std::string after;
  int64_t limit = 0;
  OutputFormat format = OutputFormat::kTable;
};

int RunStreams(const StreamsArgs& args) {
  return RunWithStore(
      "streams", args.url, ReadOnlyStore(),
      [&](EventStore& store, const std::string& url) {
        RecordWriter out(
            std::cout, args.format,
            {"STREAM", "VERSION", "FIRST_RECORDED_AT", "LAST_RECORDED_AT"});
        ListStreamsOptions options;
        options.prefix = args.prefix;
        options.after = args.after;
        int64_t left = args.limit > 0 ? args.limit : kUnlimited;
        while (left > 0) {
          options.limit = std::min(left, kPageSize);
          absl::StatusOr<std::vector<StreamSummary>> page =
              store.inspector().ListStreams(options);
          if (!page.ok()) {
            out.Finish();
            return PrintError("streams", page.status(), url);
          }
          for (const StreamSummary& s : *page) {
            out.Add(
                {s.stream, absl::StrCat(s.version),
                 TimeText(s.first_recorded_at), TimeText(s.last_recorded_at)},
                StreamSummaryJson(s));
          }
          left -= static_cast<int64_t>(page->size());
          if (static_cast<int64_t>(page->size()) < options.limit) break;
          options.after = page->back().stream;
        }
        out.Finish();
        return static_cast<int>(kExitOk);
      });
}

// --- read and tail: events ---------------------------------------------------

std::vector<std::string> EventColumns(bool with_stream) {
  if (with_stream) {
    return {"POSITION", "STREAM", "VERSION", "TYPE", "RECORDED_AT", "DATA"};
  }
  return {"VERSION", "POSITION", "TYPE", "RECORDED_AT", "DATA"};
}

void AddEvent(RecordWriter& out, JsonRenderer& renderer, const RecordedEvent& e,
              bool with_stream) {
  std::string data = renderer.RenderEventCell(e);
  std::vector<std::string> cells;
  if (with_stream) {
    cells = {e.position.ToString(),   e.stream,
             absl::StrCat(e.version), e.type,
             TimeText(e.recorded_at), std::move(data)};
  } else {
    cells = {absl::StrCat(e.version), e.position.ToString(), e.type,
             TimeText(e.recorded_at), std::move(data)};
  }
  out.Add(std::move(cells), renderer.RenderEvent(e));
}

struct ReadArgs {
  std::string url;
  std::string stream;
  int64_t from = 0;
  int64_t count = 0;
  bool backward = false;
  std::string master_key_file;
  OutputFormat format = OutputFormat::kTable;
};

int RunRead(ReadArgs args) {
  // `read URL` alone: the stream is what is missing, not the URL.
  if (args.stream.empty() && LooksLikeStoreUrl(args.url)) {
    PrintErrorMessage("read",
                      "STREAM is missing: give the stream to read after the "
                      "URL (eventstore read URL STREAM)");
    return kExitUsage;
  }
  ShiftOptionalUrl(args.url, {&args.stream});
  if (args.stream.empty()) {
    PrintErrorMessage("read", "STREAM is required");
    return kExitUsage;
  }
  return RunWithStore(
      "read", args.url, ReadOnlyStore(),
      [&](EventStore& opened, const std::string& url) {
        absl::StatusOr<std::unique_ptr<EventStore>> view =
            DecryptingView(opened, args.master_key_file);
        if (!view.ok()) return PrintError("read", view.status(), url);
        EventStore& store = *view != nullptr ? **view : opened;
        absl::StatusOr<int64_t> version = store.StreamVersion(args.stream);
        if (!version.ok()) return PrintError("read", version.status(), url);
        if (*version == 0) {
          PrintErrorMessage(
              "read", absl::StrCat("stream '", args.stream, "' does not exist"),
              url);
          return static_cast<int>(kExitProblem);
        }
        absl::StatusOr<std::unique_ptr<JsonRenderer>> renderer =
            JsonRenderer::ForStore(store);
        if (!renderer.ok()) return PrintError("read", renderer.status(), url);
        RecordWriter out(std::cout, args.format, EventColumns(false));
        ReadStreamOptions options;
        options.direction =
            args.backward ? Direction::kBackward : Direction::kForward;
        if (args.from > 0) options.from_version = args.from;
        int64_t left = args.count > 0 ? args.count : kUnlimited;
        while (left > 0) {
          options.max_count = std::min(left, kPageSize);
          absl::StatusOr<std::vector<RecordedEvent>> page =
              store.ReadStream(args.stream, options);
          if (!page.ok()) {
            out.Finish();
            return PrintError("read", page.status(), url);
          }
          for (const RecordedEvent& e : *page) {
            AddEvent(out, **renderer, e, /*with_stream=*/false);
          }
          left -= static_cast<int64_t>(page->size());
          if (static_cast<int64_t>(page->size()) < options.max_count) break;
          const int64_t last = page->back().version;
          if (args.backward && last <= 1) break;
          options.from_version = args.backward ? last - 1 : last + 1;
        }
        out.Finish();
        return static_cast<int>(kExitOk);
      });
}

// Set by SIGINT / SIGTERM while tail --follow runs.
std::atomic<bool> stop_requested{false};

extern "C" void OnStopSignal(int) { stop_requested.store(true); }

void InstallStopHandlers() {
  struct sigaction action = {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: blocking calls return early
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

struct TailArgs {
  std::string url;
  std::vector<std::string> types;
  std::string prefix;
  std::string tenant;
  int64_t count = 10;
  std::string from;
  bool follow = false;
  bool quiet = false;
  std::string master_key_file;
  OutputFormat format = OutputFormat::kTable;
};

// Widths that fit the usual cells of tail's table (POSITION, STREAM,
// VERSION, TYPE, RECORDED_AT; DATA is last), so that rows printed while
// following line up.
const std::vector<size_t> kTailWidths = {10, 20, 7, 30, 27, 0};

// A page of the global log for tail, and the head read just before it.
struct TailPage {
  Position head;
  ReadAllPage page;
};

absl::StatusOr<TailPage> ReadTailPage(EventStore& store,
                                      const ReadAllOptions& options) {
  TailPage p;
  ES_ASSIGN_OR_RETURN(p.head, store.HeadPosition());
  ES_ASSIGN_OR_RETURN(p.page, store.ReadAll(options));
  return p;
}

// Moves `options` past `p`. At the end of the log returns true and sets
// `waited_from` to where waiting for new events starts: the head, so that
// events past it that do not match the filter do not wake the wait over
// and over.
bool AdvancePast(const TailPage& p, ReadAllOptions& options,
                 Position& waited_from) {
  options.from_position = p.page.next_position;
  if (!p.page.end_of_log) return false;
  waited_from = std::max(p.head, options.from_position);
  return true;
}

int RunTail(const TailArgs& args) {
  std::optional<Position> from;
  if (!args.from.empty()) {
    absl::StatusOr<Position> parsed = Position::Parse(args.from);
    if (!parsed.ok()) {
      PrintErrorMessage("tail", absl::StrCat("--from: '", args.from,
                                             "' is not a position (N or C/P)"));
      return kExitUsage;
    }
    from = *parsed;
  }
  if (args.count < 0) {
    PrintErrorMessage("tail", "--count: must not be negative");
    return kExitUsage;
  }
  if (args.follow) InstallStopHandlers();
  return RunWithStore(
      "tail", args.url, ReadOnlyStore(),
      [&](EventStore& opened, const std::string& url) {
        absl::StatusOr<std::unique_ptr<EventStore>> view =
            DecryptingView(opened, args.master_key_file);
        if (!view.ok()) return PrintError("tail", view.status(), url);
        EventStore& store = *view != nullptr ? **view : opened;
        absl::StatusOr<std::unique_ptr<JsonRenderer>> renderer =
            JsonRenderer::ForStore(store);
        if (!renderer.ok()) return PrintError("tail", renderer.status(), url);
        RecordWriter out(std::cout, args.format, EventColumns(true),
                         /*streaming=*/args.follow);
        out.SetMinWidths(kTailWidths);
        ReadAllOptions options;
        options.max_count = kPageSize;
        options.filter.stream_prefix = args.prefix;
        options.filter.event_types = args.types;
        options.filter.tenant_id = args.tenant;
        // Catch up: everything after --from, else the last --count events:
        // read forward from just before them (the inspector finds where
        // with one query), keeping the last ones (events appended since
        // push the oldest out).
        std::deque<RecordedEvent> last;
        if (from.has_value()) {
          options.from_position = *from;
        } else {
          absl::StatusOr<Position> start =
              args.count > 0 ? store.inspector().PositionBeforeLast(
                                   args.count, options.filter)
                             : store.HeadPosition();
          if (!start.ok()) {
            out.Finish();
            return PrintError("tail", start.status(), url);
          }
          options.from_position = *start;
        }
        // Where waiting for new events starts: the head when the log was
        // last read to its end (events past it that do not match the filter
        // must not wake the wait over and over).
        Position waited_from = options.from_position;
        while (true) {
          absl::StatusOr<TailPage> page = ReadTailPage(store, options);
          if (!page.ok()) {
            out.Finish();
            return PrintError("tail", page.status(), url);
          }
          for (RecordedEvent& e : page->page.events) {
            if (from.has_value()) {
              AddEvent(out, **renderer, e, /*with_stream=*/true);
            } else if (args.count > 0) {
              last.push_back(std::move(e));
              if (static_cast<int64_t>(last.size()) > args.count)
                last.pop_front();
            }
          }
          if (AdvancePast(*page, options, waited_from)) break;
        }
        for (const RecordedEvent& e : last) {
          AddEvent(out, **renderer, e, /*with_stream=*/true);
        }
        last.clear();
        if (args.follow) {
          out.Flush();
          // Everything appended from now on is printed: say so (scripts
          // and tests wait for this line).
          if (!args.quiet) {
            PrintErrorMessage("tail",
                              absl::StrCat("following from position ",
                                           options.from_position.ToString(),
                                           " (Ctrl-C to stop)"),
                              url);
          }
        }
        // Follow: wait for events past what was read, print them as they come.
        // Types whose descriptors were looked up again after the start.
        absl::flat_hash_set<std::string> reloaded_for;
        while (args.follow && !stop_requested.load()) {
          absl::StatusOr<bool> more =
              store.WaitForEvents(waited_from, kFollowWait);
          if (!more.ok()) {
            out.Finish();
            return PrintError("tail", more.status(), url);
          }
          if (!*more) continue;
          while (!stop_requested.load()) {
            absl::StatusOr<TailPage> page = ReadTailPage(store, options);
            if (!page.ok()) {
              out.Finish();
              return PrintError("tail", page.status(), url);
            }
            for (const RecordedEvent& e : page->page.events) {
              // A type appended for the first time since the start: its
              // descriptor was recorded after the renderer loaded them.
              if (!reloaded_for.contains(e.type) &&
                  !(*renderer)->RenderPayload(e.type, e.payload).decoded) {
                reloaded_for.insert(e.type);
                absl::StatusOr<std::unique_ptr<JsonRenderer>> fresh =
                    JsonRenderer::ForStore(store);
                if (fresh.ok()) *renderer = *std::move(fresh);
              }
              AddEvent(out, **renderer, e, /*with_stream=*/true);
            }
            if (AdvancePast(*page, options, waited_from)) break;
          }
        }
        out.Finish();
        return static_cast<int>(kExitOk);
      });
}

}  // namespace

void RegisterInspectCommands(CLI::App& app, int& exit_code) {
  {
    auto args = std::make_shared<InfoArgs>();
    CLI::App* cmd = app.add_subcommand(
        "info",
        "What a store holds: backend, schema version, streams, events, head "
        "position, size on disk; of a failover URL or journal, the pending "
        "and parked appends and the replica's lag");
    AddUrlArgument(*cmd, args->url);
    AddFormatOption(*cmd, args->format);
    cmd->add_flag("--exact", args->exact,
                  "Count events and streams exactly; without it a store of "
                  "a million events or more shows estimates, marked as such");
    SetExample(*cmd,
               "eventstore info sqlite:events.db\n"
               "EVENTSTORE_URL=postgresql://app@db:5432/shop eventstore info "
               "--format json\n"
               "eventstore info 'failover:postgresql://db.internal/shop"
               "?journal=sqlite:journal.db&replica=order-'");
    cmd->callback([args, &exit_code] { exit_code = RunInfo(*args); });
  }
  {
    auto args = std::make_shared<StreamsArgs>();
    CLI::App* cmd = app.add_subcommand(
        "streams", "Streams sorted by name, with their versions");
    AddUrlArgument(*cmd, args->url);
    cmd->add_option("--prefix", args->prefix,
                    "Only streams whose name starts with this (a category)");
    cmd->add_option("--after", args->after,
                    "Only streams sorted after this name (for paging)");
    cmd->add_option("--limit", args->limit, "Most streams listed (0: all)")
        ->check(NonNegative());
    AddFormatOption(*cmd, args->format);
    SetExample(*cmd, "eventstore streams sqlite:events.db --prefix order-");
    cmd->callback([args, &exit_code] { exit_code = RunStreams(*args); });
  }
  {
    auto args = std::make_shared<ReadArgs>();
    CLI::App* cmd = app.add_subcommand(
        "read",
        "Events of one stream, payloads and metadata as JSON through the "
        "descriptors the store recorded");
    AddUrlArgument(*cmd, args->url);
    cmd->add_option("STREAM", args->stream, "The stream to read");
    cmd->add_option("--from", args->from,
                    "First version (default: 1, or the last with --backward)")
        ->check(AtLeastOne());
    cmd->add_option("--count", args->count, "Most events (0: all)")
        ->check(NonNegative());
    cmd->add_flag("--backward", args->backward, "Newest first");
    AddMasterKeyFileOption(*cmd, args->master_key_file);
    AddFormatOption(*cmd, args->format);
    SetExample(*cmd,
               "eventstore read sqlite:events.db order-42\n"
               "eventstore read sqlite:events.db order-42 --backward --count 5 "
               "--format jsonl");
    cmd->callback([args, &exit_code] { exit_code = RunRead(*args); });
  }
  {
    auto args = std::make_shared<TailArgs>();
    CLI::App* cmd = app.add_subcommand(
        "tail",
        "The last events of the global log; with --follow, new events as "
        "they are appended (until Ctrl-C)");
    AddUrlArgument(*cmd, args->url);
    cmd->add_flag("-f,--follow", args->follow,
                  "Keep printing new events until SIGINT or SIGTERM; once "
                  "caught up, says \"following from position N\" on stderr");
    cmd->add_flag("-q,--quiet", args->quiet,
                  "With --follow: no \"following from position N\" line");
    cmd->add_option("--type", args->types,
                    "Only events of this type (protobuf full name; repeat "
                    "for several)");
    cmd->add_option("--prefix", args->prefix,
                    "Only events of streams whose name starts with this");
    cmd->add_option("--tenant", args->tenant,
                    "Only events whose metadata.tenant_id is this");
    cmd->add_option("-n,--count", args->count,
                    "How many of the last events to print first")
        ->capture_default_str()
        ->check(NonNegative());
    cmd->add_option("--from", args->from,
                    "Print every event after this position instead of the "
                    "last --count");
    AddMasterKeyFileOption(*cmd, args->master_key_file);
    AddFormatOption(*cmd, args->format);
    SetExample(*cmd,
               "eventstore tail sqlite:events.db --count 20\n"
               "eventstore tail postgresql://app@db/shop --follow --prefix "
               "order- --format jsonl");
    cmd->callback([args, &exit_code] { exit_code = RunTail(*args); });
  }
}

}  // namespace eventstore::tools
