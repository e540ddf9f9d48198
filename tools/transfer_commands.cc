#include "tools/command.h"

namespace eventstore::tools {

void RegisterTransferCommands(CLI::App& app, int& exit_code) {
  // Placeholder until the commands land.
  (void)app;
  (void)exit_code;
}

}  // namespace eventstore::tools
