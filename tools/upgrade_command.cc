// upgrade: bring a store's schema to this version of eventstore
// (docs/cli.md). The only command that changes a schema: the others refuse
// an older one rather than upgrade it under a running application.

#include <iostream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "eventstore/schema_upgrade.h"
#include "tools/cli_support.h"
#include "tools/command.h"

namespace eventstore::tools {
namespace {

int RunUpgrade(const std::string& given) {
  absl::StatusOr<std::string> url = ResolveUrl(given);
  if (!url.ok()) return PrintError("upgrade", url.status());
  absl::StatusOr<SchemaUpgrade> upgrade = UpgradeStoreSchema(*url);
  if (!upgrade.ok()) return PrintError("upgrade", upgrade.status(), *url);
  if (upgrade->upgraded()) {
    std::cout << "upgraded the schema of " << MaskUrl(*url) << " from version "
              << upgrade->from_version << " to " << upgrade->to_version
              << std::endl;
  } else {
    std::cout << MaskUrl(*url) << " is at schema version "
              << upgrade->to_version << " already; nothing to do" << std::endl;
  }
  return kExitOk;
}

}  // namespace

void RegisterUpgradeCommand(CLI::App& app, int& exit_code) {
  auto url = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "upgrade",
      "Upgrade the store's schema to this version of eventstore, in one "
      "transaction (the other commands never upgrade a schema)");
  AddUrlArgument(*cmd, *url);
  SetExample(
      *cmd,
      "eventstore upgrade sqlite:events.db\n"
      "eventstore upgrade 'postgresql://app@db:5432/shop?schema=events'");
  cmd->callback([url, &exit_code] { exit_code = RunUpgrade(*url); });
}

}  // namespace eventstore::tools
