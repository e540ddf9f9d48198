// eventstore export [URL] FILE / eventstore import FILE [URL]: a store to a
// length-delimited protobuf file and back (tools/export_file.h).

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tools/cli_support.h"
#include "tools/command.h"
#include "tools/export_file.h"
#include "tools/migrator.h"
#include "tools/output_format.h"
#include "tools/progress_reporter.h"

namespace eventstore::tools {
namespace {

struct ExportArgs {
  std::string url;
  std::string file;
  bool quiet = false;
  bool with_keys = false;
};

struct ImportArgs {
  std::string file;
  std::string url;
  std::string checkpoints = "none";
  MigrateOptions options;
};

int RunExport(const ExportArgs& args, EventStore& store,
              const std::string& url) {
  const bool to_stdout = args.file == "-";
  const std::string name = to_stdout ? "stdout" : args.file;
  ProgressReporter progress(std::cerr, "export", args.quiet,
                            /*bar=*/std::nullopt, absl::Seconds(2),
                            /*total=*/std::nullopt);
  absl::StatusOr<v1::ExportCounts> counts;
  if (to_stdout) {
    // The file's bytes, checksummed: not through the masking of stdout.
    std::ostream raw(RawStdout());
    counts = ExportStore(store, MaskUrl(url), raw, &progress, args.with_keys);
    raw.flush();
  } else {
    // Written beside the file and renamed when whole, so that FILE is
    // never a partial export.
    const std::string partial = args.file + ".partial";
    {
      std::ofstream out(partial, std::ios::binary | std::ios::trunc);
      if (!out) {
        PrintErrorMessage("export", absl::StrCat("cannot write '", partial,
                                                 "': ", std::strerror(errno)));
        return kExitProblem;
      }
      counts = ExportStore(store, MaskUrl(url), out, &progress, args.with_keys);
      out.close();
      if (counts.ok() && !out) {
        counts = absl::UnavailableError(
            absl::StrCat("writing '", partial, "' failed"));
      }
    }
    if (counts.ok() && std::rename(partial.c_str(), args.file.c_str()) != 0) {
      counts = absl::UnavailableError(
          absl::StrCat("cannot rename '", partial, "' to '", args.file, "'"));
    }
    if (!counts.ok()) std::remove(partial.c_str());
  }
  if (!counts.ok()) {
    PrintErrorMessage("export",
                      absl::StrCat("exporting to '", name,
                                   "' failed: ", counts.status().message()),
                      url);
    return kExitProblem;
  }
  if (!args.quiet) {
    std::cerr << "eventstore export: wrote "
              << CountOf(counts->events(), "event") << ", "
              << CountOf(counts->types(), "type") << ", "
              << CountOf(counts->checkpoints(), "checkpoint") << ", "
              << CountOf(counts->dead_letters(), "dead letter") << ", "
              << CountOf(counts->outbox_entries(), "outbox entry",
                         "outbox entries")
              << ", " << CountOf(counts->snapshots(), "snapshot");
    if (counts->stream_rows() > 0) {
      std::cerr << ", " << CountOf(counts->stream_rows(), "stream row");
    }
    if (counts->subject_keys() > 0) {
      std::cerr << ", " << CountOf(counts->subject_keys(), "subject key record")
                << (args.with_keys ? " (wrapped keys included)"
                                   : " (forgotten subjects)");
    }
    std::cerr << " to " << name << std::endl;
  }
  return kExitOk;
}

// Copies stdin into a new temporary file; returns its path.
absl::StatusOr<std::string> SpoolStdin() {
  const char* dir = std::getenv("TMPDIR");
  std::string path = absl::StrCat(dir != nullptr && *dir != '\0' ? dir : "/tmp",
                                  "/eventstore-import-XXXXXX");
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create a temporary file to hold stdin (", path, ")"));
  }
  close(fd);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << std::cin.rdbuf();
  out.close();
  if (!out) {
    std::remove(path.c_str());
    return absl::UnavailableError("cannot copy stdin to a temporary file");
  }
  return path;
}

int RunImport(ImportArgs& args) {
  absl::StatusOr<CheckpointSelection> checkpoints =
      ParseCheckpointSelection(args.checkpoints);
  if (!checkpoints.ok()) return PrintError("import", checkpoints.status());
  args.options.checkpoints = *std::move(checkpoints);
  absl::StatusOr<std::string> url = ResolveUrl(args.url);
  if (!url.ok()) return PrintError("import", url.status());
  const bool from_stdin = args.file == "-";
  const std::string name = from_stdin ? "stdin" : args.file;
  std::string path = args.file;
  if (from_stdin) {
    absl::StatusOr<std::string> spooled = SpoolStdin();
    if (!spooled.ok()) return PrintError("import", spooled.status());
    path = *spooled;
  }
  struct Cleanup {
    std::string path;
    ~Cleanup() {
      if (!path.empty()) std::remove(path.c_str());
    }
  } cleanup{from_stdin ? path : std::string()};

  // The whole file is checked before the target is even opened.
  absl::StatusOr<v1::ExportHeader> header = VerifyExportFile(path, name);
  if (!header.ok()) {
    PrintErrorMessage("import", absl::StrCat(header.status().message(),
                                             "; nothing was imported"));
    return kExitProblem;
  }
  OpenStoreOptions create;
  create.create_if_missing = true;
  absl::StatusOr<std::unique_ptr<EventStore>> target = OpenStore(*url, create);
  if (!target.ok()) return PrintError("import", target.status(), *url);
  absl::StatusOr<std::unique_ptr<ExportFileSource>> source =
      ExportFileSource::Open(path, name);
  if (!source.ok()) return PrintError("import", source.status(), *url);
  args.options.command = "import";
  Migrator migrator(args.options, std::cerr);
  absl::StatusOr<MigrationReport> report =
      migrator.Run(**source, **target, MaskUrl(*url));
  if (!report.ok()) return PrintError("import", report.status(), *url);
  return kExitOk;
}

}  // namespace

void RegisterTransferCommands(CLI::App& app, int& exit_code) {
  auto exp = std::make_shared<ExportArgs>();
  CLI::App* export_cmd = app.add_subcommand(
      "export",
      "Write a whole store (events, types, checkpoints, dead letters, outbox, "
      "snapshots) to a length-delimited protobuf file with a header and a "
      "checksum");
  export_cmd->add_option("url", exp->url,
                         "The store's URL (default: $EVENTSTORE_URL)");
  export_cmd->add_option("file", exp->file, "The file to write; - for stdout");
  export_cmd->add_flag("-q,--quiet", exp->quiet,
                       "No progress and no summary on stderr");
  export_cmd->add_flag(
      "--with-keys", exp->with_keys,
      "Also write the key table's live records (data keys, wrapped with the "
      "master key) so that the copy can decrypt; without it only forgotten "
      "subjects are written");
  SetExample(*export_cmd,
             "eventstore export sqlite:events.db events.esx\n"
             "eventstore export sqlite:events.db - | "
             "eventstore import - postgresql://app@db/shop");
  export_cmd->callback([exp, &exit_code] {
    // `export URL` alone: the file is what is missing, not the URL.
    if (exp->file.empty() && LooksLikeStoreUrl(exp->url)) {
      PrintErrorMessage("export",
                        "FILE is missing: give the file to write after the "
                        "URL (- for stdout)");
      exit_code = kExitUsage;
      return;
    }
    ShiftOptionalUrl(exp->url, {&exp->file});
    if (exp->file.empty()) {
      PrintErrorMessage("export", "FILE is required (- for stdout)");
      exit_code = kExitUsage;
      return;
    }
    // A copy must be faithful: checksums are compared whatever the URL
    // says, so export stops at a changed event.
    OpenStoreOptions open;
    open.force_verify_checksums = true;
    exit_code = RunWithStore("export", exp->url, open,
                             [&](EventStore& store, const std::string& url) {
                               return RunExport(*exp, store, url);
                             });
  });

  auto imp = std::make_shared<ImportArgs>();
  CLI::App* import_cmd = app.add_subcommand(
      "import",
      "Copy an export file into a store; the whole file is checked (header, "
      "counts, checksum) before anything is written. Resumable, like "
      "migrate");
  import_cmd->add_option("file", imp->file, "The export file; - for stdin")
      ->required();
  import_cmd->add_option("url", imp->url,
                         "The target store's URL (default: $EVENTSTORE_URL)");
  import_cmd->add_flag("--events-only", imp->options.events_only,
                       "Import events and recorded types only");
  import_cmd
      ->add_option("--checkpoints", imp->checkpoints,
                   "Which projections' checkpoints to carry: none (they "
                   "rebuild from the start), all, or NAME[,NAME...] (as "
                   "migrate)")
      ->capture_default_str();
  import_cmd->add_flag("--force", imp->options.force,
                       "Import into a store that already holds events of its "
                       "own");
  import_cmd->add_flag("-q,--quiet", imp->options.quiet,
                       "No progress and no summary");
  import_cmd->add_flag(
      "--with-keys", imp->options.with_keys,
      "Also import the file's live subject keys (wrapped data keys); "
      "without it only forgotten subjects are imported");
  import_cmd
      ->add_option("--batch-size", imp->options.batch_size,
                   "Events per target transaction")
      ->capture_default_str()
      ->check(AtLeastOne(std::numeric_limits<int>::max()));
  SetExample(*import_cmd,
             "eventstore import events.esx 'postgresql://app@db/shop'");
  import_cmd->callback([imp, &exit_code] { exit_code = RunImport(*imp); });
}

}  // namespace eventstore::tools
