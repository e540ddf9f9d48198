// eventstore migrate --from URL --to URL: copies a store into another one
// (tools/migrator.h).

#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "tools/cli_support.h"
#include "tools/command.h"
#include "tools/migrator.h"

namespace eventstore::tools {
namespace {

struct MigrateArgs {
  std::string from;
  std::string to;
  bool verify = false;
  std::string checkpoints = "none";
  MigrateOptions options;
};

// Prints `status` for `command` with the credentials of both URLs masked.
int PrintMaskedError(const absl::Status& status, const std::string& from,
                     const std::string& to) {
  PrintErrorMessage("migrate", MaskSecrets(std::string(status.message()), from),
                    to);
  return ExitCodeFor(status);
}

int RunMigrate(MigrateArgs& args) {
  absl::StatusOr<CheckpointSelection> checkpoints =
      ParseCheckpointSelection(args.checkpoints);
  if (!checkpoints.ok()) return PrintError("migrate", checkpoints.status());
  args.options.checkpoints = *std::move(checkpoints);
  absl::StatusOr<std::string> from = ResolveUrl(args.from);
  if (!from.ok()) return PrintError("migrate", from.status());
  const std::string& to = args.to;
  absl::StatusOr<std::unique_ptr<EventStore>> source = OpenStore(*from);
  if (!source.ok()) return PrintMaskedError(source.status(), *from, to);
  OpenStoreOptions create;
  create.create_if_missing = true;
  absl::StatusOr<std::unique_ptr<EventStore>> target = OpenStore(to, create);
  if (!target.ok()) return PrintMaskedError(target.status(), *from, to);

  StoreSource store_source(**source, MaskUrl(*from));
  Migrator migrator(args.options, std::cerr);
  absl::StatusOr<MigrationReport> report =
      migrator.Run(store_source, **target, MaskUrl(to));
  if (!report.ok()) return PrintMaskedError(report.status(), *from, to);
  if (!args.verify) return kExitOk;
  absl::StatusOr<bool> same = VerifyCopy(**source, **target, std::cout);
  if (!same.ok()) return PrintMaskedError(same.status(), *from, to);
  return *same ? kExitOk : kExitProblem;
}

}  // namespace

void RegisterMigrateCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<MigrateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "migrate",
      "Copy every stream of one store into another (SQLite <-> PostgreSQL): "
      "ids, versions, metadata, timestamps and global order kept; resumable; "
      "dead letters, outbox and snapshots come along, checkpoints when asked "
      "(--checkpoints); a re-run never moves the target's rows backwards");
  cmd->add_option("--from", args->from,
                  "The source store's URL (default: $EVENTSTORE_URL)");
  cmd->add_option("--to", args->to, "The target store's URL")->required();
  cmd->add_flag("--verify", args->verify,
                "Afterwards compare per-stream event counts and checksums of "
                "both sides; exit 1 when they differ");
  cmd->add_flag("--events-only", args->options.events_only,
                "Copy events and recorded types only, not checkpoints, dead "
                "letters, outbox entries and snapshots");
  cmd->add_option(
         "--checkpoints", args->checkpoints,
         "Which projections' checkpoints to carry: none (they rebuild from "
         "the start on the target: right when their read models live in the "
         "store's database, which is not copied), all (their read models "
         "live elsewhere, or were copied), or NAME[,NAME...]")
      ->capture_default_str();
  cmd->add_flag("--with-keys", args->options.with_keys,
                "Also copy the key table's live records (data keys, wrapped "
                "with the master key) so that the target can decrypt; without "
                "it only forgotten subjects are copied");
  cmd->add_flag("--force", args->options.force,
                "Copy into a target that already holds events of its own");
  cmd->add_flag("-q,--quiet", args->options.quiet,
                "No progress and no summary (warnings still print)");
  cmd->add_option("--batch-size", args->options.batch_size,
                  "Events per target transaction")
      ->capture_default_str()
      ->check(AtLeastOne(std::numeric_limits<int>::max()));
  SetExample(*cmd,
             "eventstore migrate --from sqlite:events.db \\\n"
             "    --to 'postgresql://app@db.internal/shop?schema=events' "
             "--verify\n"
             "Run it again after an interruption: it resumes where it "
             "stopped.");
  cmd->callback([args, &exit_code] { exit_code = RunMigrate(*args); });
}

}  // namespace eventstore::tools
