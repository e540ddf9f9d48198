// serve, in a build without it (EVENTSTORE_WITH_SERVE off: cpp-httplib or
// prometheus-cpp missing): the command exists, and says so.

#include "tools/cli_support.h"
#include "tools/command.h"

namespace eventstore::tools {

void RegisterServeCommand(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve the store over HTTP (not built into this eventstore: rebuild "
      "with -DEVENTSTORE_WITH_SERVE=ON, which needs cpp-httplib and "
      "prometheus-cpp)");
  cmd->allow_extras();
  cmd->callback([&exit_code] {
    PrintErrorMessage("serve",
                      "not built into this eventstore (rebuild with "
                      "-DEVENTSTORE_WITH_SERVE=ON, which needs cpp-httplib "
                      "and prometheus-cpp)");
    exit_code = kExitUsage;
  });
}

}  // namespace eventstore::tools
