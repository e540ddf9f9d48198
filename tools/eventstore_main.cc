// eventstore: migrate, export, import, inspect and operate event stores.
// See docs/cli.md.

#include <CLI/CLI.hpp>

#include "tools/command.h"

int main(int argc, char** argv) {
  using eventstore::tools::kExitOk;
  using eventstore::tools::kExitUsage;
  CLI::App app("eventstore: inspect, operate and migrate event stores",
               "eventstore");
  app.require_subcommand(1);
  int exit_code = kExitOk;
  eventstore::tools::RegisterInspectCommands(app, exit_code);
  eventstore::tools::RegisterOperateCommands(app, exit_code);
  eventstore::tools::RegisterMigrateCommand(app, exit_code);
  eventstore::tools::RegisterTransferCommands(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return exit_code;
}
