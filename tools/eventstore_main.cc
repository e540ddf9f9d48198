// eventstore: migrate, export, import, inspect and operate event stores.
// See docs/cli.md.

#include <CLI/CLI.hpp>

#include "eventstore/version.h"
#include "tools/cli_support.h"
#include "tools/command.h"
#include "tools/usage_error.h"

int main(int argc, char** argv) {
  using eventstore::tools::kExitOk;
  // Everything printed from here on is masked with the credentials of every
  // argument (which one is a URL is not known when parsing fails).
  const eventstore::tools::OutputMasking masking(argc, argv);
  CLI::App app("eventstore: inspect, operate and migrate event stores",
               "eventstore");
  app.set_version_flag("--version", "eventstore " EVENTSTORE_VERSION_STRING);
  app.require_subcommand(1);
  int exit_code = kExitOk;
  eventstore::tools::RegisterInspectCommands(app, exit_code);
  eventstore::tools::RegisterOperateCommands(app, exit_code);
  eventstore::tools::RegisterMigrateCommand(app, exit_code);
  eventstore::tools::RegisterTransferCommands(app, exit_code);
  eventstore::tools::RegisterUpgradeCommand(app, exit_code);
  eventstore::tools::RegisterLifecycleCommands(app, exit_code);
  eventstore::tools::RegisterCryptoCommands(app, exit_code);
  eventstore::tools::RegisterServeCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return eventstore::tools::ReportParseError(app, e);
  }
  return exit_code;
}
