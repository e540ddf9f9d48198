// The `eventstore` command-line tool: how its subcommands plug in.
//
// Each Register* function adds its subcommands to the app. A subcommand's
// CLI11 callback runs the command and stores its exit code in `exit_code`.
// Commands write results to stdout and errors to stderr, never printing a
// password (tools/cli_support.h masks URLs).

#ifndef EVENTSTORE_TOOLS_COMMAND_H_
#define EVENTSTORE_TOOLS_COMMAND_H_

#include <CLI/CLI.hpp>

namespace eventstore::tools {

// The tool's exit codes.
enum ExitCode : int {
  kExitOk = 0,
  kExitProblem = 1,  // the command ran and found or hit a problem
  kExitUsage = 2,    // bad arguments
};

// info, streams, read, tail (tools/inspect_commands.cc).
void RegisterInspectCommands(CLI::App& app, int& exit_code);
// init, verify, checkpoints, dlq, outbox (tools/operate_commands.cc).
void RegisterOperateCommands(CLI::App& app, int& exit_code);
// migrate (tools/migrate_command.cc).
void RegisterMigrateCommand(CLI::App& app, int& exit_code);
// export, import (tools/transfer_commands.cc).
void RegisterTransferCommands(CLI::App& app, int& exit_code);
// upgrade (tools/upgrade_command.cc).
void RegisterUpgradeCommand(CLI::App& app, int& exit_code);
// delete, stream-metadata, scavenge, forget (tools/lifecycle_commands.cc).
void RegisterLifecycleCommands(CLI::App& app, int& exit_code);
// keygen, rotate-master-key (tools/crypto_commands.cc; they say they were
// not built in without EVENTSTORE_WITH_CRYPTO).
void RegisterCryptoCommands(CLI::App& app, int& exit_code);
// serve (tools/serve/serve_command.cc; tools/serve/serve_not_built.cc in a
// build without EVENTSTORE_WITH_SERVE).
void RegisterServeCommand(CLI::App& app, int& exit_code);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_COMMAND_H_
