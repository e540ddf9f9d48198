// delete, stream-metadata, scavenge, forget: the data lifecycle of a store
// (docs/cli.md, docs/lifecycle.md).

#include <cstdint>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/subject_key_store.h"
#include "tools/cli_support.h"
#include "tools/command.h"
#include "tools/lifecycle_args.h"
#include "tools/output_format.h"
#include "tools/progress_reporter.h"
#include "tools/record_json.h"

namespace eventstore::tools {
namespace {

// Rows of "key  value", keys padded to one column.
void PrintRows(const std::vector<std::pair<std::string, std::string>>& rows) {
  constexpr size_t kKeyWidth = 17;
  for (const auto& [key, value] : rows) {
    std::cout << key
              << std::string(
                     key.size() < kKeyWidth ? kKeyWidth - key.size() : 1, ' ')
              << value << "\n";
  }
  std::cout.flush();
}

// For `COMMAND [URL] ARG`: false (after printing why) when ARG is missing;
// else moves the arguments right when no URL was given (ShiftOptionalUrl).
bool TakeUrlAndArgument(const char* command, const char* name, std::string& url,
                        std::string& arg) {
  if (arg.empty() && LooksLikeStoreUrl(url)) {
    PrintErrorMessage(command,
                      absl::StrCat(name,
                                   " is missing: give it after the URL "
                                   "(eventstore ",
                                   command, " URL ", name, ")"));
    return false;
  }
  ShiftOptionalUrl(url, {&arg});
  if (arg.empty()) {
    PrintErrorMessage(command, absl::StrCat(name, " is required"));
    return false;
  }
  return true;
}

// --- delete ------------------------------------------------------------------

struct DeleteArgs {
  std::string url;
  std::string stream;
  bool hard = false;
  std::string expected = "any";
  OutputFormat format = OutputFormat::kTable;
};

int RunDelete(DeleteArgs args) {
  constexpr char kCommand[] = "delete";
  if (!TakeUrlAndArgument(kCommand, "STREAM", args.url, args.stream)) {
    return kExitUsage;
  }
  absl::StatusOr<ExpectedVersion> expected =
      ParseExpectedVersion("--expected-version", args.expected);
  if (!expected.ok()) return PrintError(kCommand, expected.status());
  const DeleteMode mode = args.hard ? DeleteMode::kHard : DeleteMode::kSoft;
  return RunWithStore(
      kCommand, args.url, {}, [&](EventStore& store, const std::string& url) {
        absl::StatusOr<DeleteResult> result =
            store.DeleteStream(args.stream, *expected, mode);
        if (!result.ok()) return PrintError(kCommand, result.status(), url);
        if (args.format != OutputFormat::kTable) {
          std::cout << DeleteResultJson(args.stream, mode, *result)
                    << std::endl;
          return static_cast<int>(kExitOk);
        }
        std::cout << "deleted (" << (args.hard ? "hard" : "soft") << "): '"
                  << args.stream << "', StreamDeleted event at version "
                  << result->marker_version << ", position "
                  << result->position.ToString() << "; "
                  << CountOf(result->snapshots_removed, "snapshot")
                  << " removed" << std::endl;
        std::cerr << "eventstore delete: "
                  << (args.hard ? "the stream can never be written again; "
                                  "`eventstore scavenge` removes its events"
                                : "an append with no-stream or any brings the "
                                  "stream back, numbering on; `eventstore "
                                  "scavenge` removes its events")
                  << std::endl;
        return static_cast<int>(kExitOk);
      });
}

// --- stream-metadata ---------------------------------------------------------

struct MetadataArgs {
  std::string url;
  std::string stream;
  bool set = false;
  bool clear = false;
  std::optional<int64_t> max_count;
  std::string max_age;
  std::optional<int64_t> truncate_before;
  OutputFormat format = OutputFormat::kTable;
};

std::string OrDash(const std::optional<int64_t>& n) {
  return n.has_value() ? absl::StrCat(*n) : std::string("-");
}

void PrintStreamInfo(const StreamInfo& info, OutputFormat format) {
  if (format != OutputFormat::kTable) {
    std::cout << StreamInfoJson(info) << std::endl;
    return;
  }
  const StreamMetadata& m = info.metadata;
  PrintRows({
      {"stream", info.stream},
      {"state", std::string(StreamStatusName(info.state))},
      {"version", absl::StrCat(info.version)},
      {"last version", absl::StrCat(info.last_version)},
      {"max count", OrDash(m.max_count)},
      {"max age", m.max_age.has_value() ? RetentionAgeText(*m.max_age) : "-"},
      {"truncate before", OrDash(m.truncate_before)},
      {"deleted at",
       info.deleted_at.has_value() ? TimeText(*info.deleted_at) : "-"},
  });
}

int RunStreamMetadata(MetadataArgs args) {
  constexpr char kCommand[] = "stream-metadata";
  if (!TakeUrlAndArgument(kCommand, "STREAM", args.url, args.stream)) {
    return kExitUsage;
  }
  const bool any_value = args.max_count.has_value() || !args.max_age.empty() ||
                         args.truncate_before.has_value();
  if (!args.set && (any_value || args.clear)) {
    PrintErrorMessage(kCommand,
                      "--max-count, --max-age, --truncate-before and --clear "
                      "change the metadata: give --set with them");
    return kExitUsage;
  }
  if (args.set && !any_value && !args.clear) {
    PrintErrorMessage(kCommand,
                      "--set: give --max-count, --max-age, --truncate-before "
                      "or --clear");
    return kExitUsage;
  }
  std::optional<absl::Duration> max_age;
  if (!args.max_age.empty()) {
    absl::StatusOr<absl::Duration> parsed =
        ParseRetentionAge("--max-age", args.max_age);
    if (!parsed.ok()) return PrintError(kCommand, parsed.status());
    max_age = *parsed;
  }
  if (!args.set) {
    return RunWithStore(
        kCommand, args.url, ReadOnlyStore(),
        [&](EventStore& store, const std::string& url) {
          absl::StatusOr<StreamInfo> info = store.GetStreamInfo(args.stream);
          if (!info.ok()) return PrintError(kCommand, info.status(), url);
          if (info->state == StreamStatus::kLive && info->last_version == 0 &&
              info->metadata == StreamMetadata()) {
            PrintErrorMessage(
                kCommand,
                absl::StrCat("stream '", args.stream,
                             "' does not exist and has no metadata"),
                url);
            return static_cast<int>(kExitProblem);
          }
          PrintStreamInfo(*info, args.format);
          return static_cast<int>(kExitOk);
        });
  }
  return RunWithStore(
      kCommand, args.url, {}, [&](EventStore& store, const std::string& url) {
        // The values not given keep theirs, unless --clear.
        StreamMetadata metadata;
        if (!args.clear) {
          absl::StatusOr<StreamInfo> info = store.GetStreamInfo(args.stream);
          if (!info.ok()) return PrintError(kCommand, info.status(), url);
          metadata = info->metadata;
        }
        if (args.max_count.has_value()) metadata.max_count = args.max_count;
        if (max_age.has_value()) metadata.max_age = max_age;
        if (args.truncate_before.has_value()) {
          metadata.truncate_before = args.truncate_before;
        }
        const absl::Status set = store.SetStreamMetadata(args.stream, metadata);
        if (!set.ok()) return PrintError(kCommand, set, url);
        absl::StatusOr<StreamInfo> info = store.GetStreamInfo(args.stream);
        if (!info.ok()) return PrintError(kCommand, info.status(), url);
        if (args.format == OutputFormat::kTable) {
          std::cout << "set the metadata of '" << args.stream
                    << "' (reads honour it at once; `eventstore scavenge` "
                       "removes what it hides):\n";
        }
        PrintStreamInfo(*info, args.format);
        return static_cast<int>(kExitOk);
      });
}

// --- scavenge ----------------------------------------------------------------

struct ScavengeArgs {
  std::string url;
  int64_t batch_size = ScavengeOptions().batch_size;
  int64_t max_events = 0;
  bool compact = false;
  bool quiet = false;
  OutputFormat format = OutputFormat::kTable;
};

// Most rows ScavengeOptions::batch_size allows.
constexpr int64_t kMaxBatchSize = 100'000;

int RunScavenge(const ScavengeArgs& args) {
  constexpr char kCommand[] = "scavenge";
  return RunWithStore(
      kCommand, args.url, {}, [&](EventStore& store, const std::string& url) {
        ProgressReporter progress(std::cerr, kCommand, args.quiet,
                                  /*bar=*/std::nullopt, absl::Seconds(2),
                                  /*total=*/std::nullopt);
        int64_t removed = 0;
        ScavengeOptions options;
        options.batch_size = args.batch_size;
        if (args.max_events > 0) options.max_events = args.max_events;
        options.compact = args.compact;
        options.progress = [&](const ScavengeProgress& p) {
          removed = p.events_removed;
          progress.Update(p.events_removed);
        };
        absl::StatusOr<ScavengeResult> result = store.Scavenge(options);
        progress.Finish(result.ok() ? result->events_removed : removed);
        if (!result.ok()) return PrintError(kCommand, result.status(), url);
        if (args.format != OutputFormat::kTable) {
          std::cout << ScavengeResultJson(*result) << std::endl;
        } else {
          std::cout << "scavenged: " << CountOf(result->events_removed, "event")
                    << " removed from "
                    << CountOf(result->streams_scavenged, "stream") << " ("
                    << Grouped(result->streams_examined) << " examined) in "
                    << CountOf(result->batches, "batch", "batches") << ", "
                    << DurationText(result->elapsed) << ", "
                    << Grouped(static_cast<int64_t>(ScavengeRate(*result)))
                    << " events/s";
          if (result->compacted) std::cout << "; freed space given back";
          std::cout << std::endl;
        }
        if (!result->complete) {
          std::cerr << "eventstore scavenge: stopped at --max-events "
                    << Grouped(args.max_events) << "; run it again to go on"
                    << std::endl;
        }
        return static_cast<int>(kExitOk);
      });
}

// --- forget ------------------------------------------------------------------

struct ForgetArgs {
  std::string url;
  std::string subject;
  OutputFormat format = OutputFormat::kTable;
};

int RunForget(ForgetArgs args) {
  constexpr char kCommand[] = "forget";
  if (!TakeUrlAndArgument(kCommand, "SUBJECT", args.url, args.subject)) {
    return kExitUsage;
  }
  return RunWithStore(
      kCommand, args.url, {}, [&](EventStore& store, const std::string& url) {
        absl::StatusOr<ForgetSubjectResult> result =
            store.subject_keys().Forget(args.subject);
        if (!result.ok()) return PrintError(kCommand, result.status(), url);
        if (args.format != OutputFormat::kTable) {
          std::cout << ForgetResultJson(args.subject, *result) << std::endl;
          return static_cast<int>(kExitOk);
        }
        if (!result->forgotten_now) {
          std::cout << "subject '" << args.subject
                    << "' was already forgotten; nothing changed" << std::endl;
          return static_cast<int>(kExitOk);
        }
        const int64_t streams = static_cast<int64_t>(result->streams.size());
        std::cout << "forgot subject '" << args.subject << "': ";
        if (streams > 0) {
          std::cout << "its encrypted events in " << CountOf(streams, "stream")
                    << " (" << absl::StrJoin(result->streams, ", ")
                    << ") can never be read again";
        } else {
          std::cout << "no stream holds its events; it can never get a key "
                       "again";
        }
        std::cout << "; " << CountOf(result->snapshots_removed, "snapshot")
                  << " removed" << std::endl;
        return static_cast<int>(kExitOk);
      });
}

}  // namespace

void RegisterLifecycleCommands(CLI::App& app, int& exit_code) {
  {
    auto args = std::make_shared<DeleteArgs>();
    CLI::App* cmd = app.add_subcommand(
        "delete",
        "Delete a stream: soft (it reads as absent and may be written again) "
        "or --hard (never again). A StreamDeleted event records it in the "
        "log");
    AddUrlArgument(*cmd, args->url);
    cmd->add_option("STREAM", args->stream, "The stream to delete");
    cmd->add_flag("--hard", args->hard,
                  "Refuse every later write to the stream, for good");
    cmd->add_option("--expected-version", args->expected,
                    "Delete only if the stream is at this version: N, any, "
                    "no-stream or exists")
        ->capture_default_str();
    AddFormatOption(*cmd, args->format);
    SetExample(*cmd,
               "eventstore delete sqlite:events.db order-42 "
               "--expected-version 7\n"
               "eventstore delete sqlite:events.db tenant-test-1 --hard");
    cmd->callback([args, &exit_code] { exit_code = RunDelete(*args); });
  }
  {
    auto args = std::make_shared<MetadataArgs>();
    CLI::App* cmd = app.add_subcommand(
        "stream-metadata",
        "A stream's state, versions and retention (max count, max age, "
        "truncate before); with --set, change its retention");
    AddUrlArgument(*cmd, args->url);
    cmd->add_option("STREAM", args->stream, "The stream");
    cmd->add_flag("--set", args->set,
                  "Change the retention: the values given replace theirs, "
                  "the others are kept (all removed first with --clear)");
    cmd->add_option("--max-count", args->max_count,
                    "Keep only the newest N events")
        ->check(AtLeastOne());
    cmd->add_option("--max-age", args->max_age,
                    "Hide events older than this: 90d, 12h, 30m, 45s");
    cmd->add_option("--truncate-before", args->truncate_before,
                    "Hide events whose version is below N")
        ->check(NonNegative());
    cmd->add_flag("--clear", args->clear,
                  "With --set: remove every retention value first");
    AddFormatOption(*cmd, args->format);
    SetExample(*cmd,
               "eventstore stream-metadata sqlite:events.db sensor-7\n"
               "eventstore stream-metadata sqlite:events.db sensor-7 --set "
               "--max-count 1000 --max-age 90d");
    cmd->callback([args, &exit_code] { exit_code = RunStreamMetadata(*args); });
  }
  {
    auto args = std::make_shared<ScavengeArgs>();
    CLI::App* cmd = app.add_subcommand(
        "scavenge",
        "Remove for good the events that deletions and retention hide, in "
        "batches (each its own transaction); safe while applications write");
    AddUrlArgument(*cmd, args->url);
    cmd->add_option("--batch-size", args->batch_size,
                    "Most events removed per transaction")
        ->check(AtLeastOne(kMaxBatchSize))
        ->capture_default_str();
    cmd->add_option("--max-events", args->max_events,
                    "Stop after removing about this many (0: no limit); "
                    "running it again goes on")
        ->check(NonNegative());
    cmd->add_flag("--compact", args->compact,
                  "Give the freed space back afterwards (SQLite VACUUM, "
                  "which holds the write lock; PostgreSQL VACUUM)");
    cmd->add_flag("-q,--quiet", args->quiet, "No progress lines on stderr");
    AddFormatOption(*cmd, args->format);
    SetExample(*cmd,
               "eventstore scavenge sqlite:events.db\n"
               "eventstore scavenge \"$EVENTSTORE_URL\" --batch-size 5000 "
               "--max-events 1000000");
    cmd->callback([args, &exit_code] { exit_code = RunScavenge(*args); });
  }
  {
    auto args = std::make_shared<ForgetArgs>();
    CLI::App* cmd = app.add_subcommand(
        "forget",
        "Forget a data subject (crypto-shredding): delete its key, so that "
        "its encrypted events can never be read again, and the snapshots of "
        "its streams. Needs no master key; final");
    AddUrlArgument(*cmd, args->url);
    cmd->add_option("SUBJECT", args->subject,
                    "The subject id (EventMetadata.subject_id)");
    AddFormatOption(*cmd, args->format);
    SetExample(*cmd, "eventstore forget sqlite:events.db user-1842");
    cmd->callback([args, &exit_code] { exit_code = RunForget(*args); });
  }
}

}  // namespace eventstore::tools
