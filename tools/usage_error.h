// How `eventstore` reports a command line CLI11 could not parse: through
// the same masking and with the same "eventstore COMMAND: " prefix as every
// other message, saying which word is unknown or missing.
//
//   try {
//     app.parse(argc, argv);
//   } catch (const CLI::ParseError& e) {
//     return ReportParseError(app, e);
//   }

#ifndef EVENTSTORE_TOOLS_USAGE_ERROR_H_
#define EVENTSTORE_TOOLS_USAGE_ERROR_H_

#include <CLI/CLI.hpp>
#include <string>

namespace eventstore::tools {

// The subcommand path the parse reached ("outbox stats"; empty for none).
std::string ParsedCommandPath(const CLI::App& app);

// The message for `e` as the tool prints it (without the prefix).
std::string DescribeParseError(CLI::App& app, const CLI::ParseError& e);

// Prints `e`: help and --version as CLI11 does (stdout, exit code 0);
// errors as "eventstore COMMAND: message" on stderr, masked (exit code 2).
// Returns the exit code.
int ReportParseError(CLI::App& app, const CLI::ParseError& e);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_USAGE_ERROR_H_
