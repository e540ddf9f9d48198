#include "tools/usage_error.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/cli_support.h"
#include "tools/command.h"

namespace eventstore::tools {
namespace {

// The deepest subcommand the parse reached.
CLI::App* ParsedCommand(CLI::App& app) {
  CLI::App* current = &app;
  while (true) {
    const std::vector<CLI::App*> subs = current->get_subcommands();
    if (subs.empty()) return current;
    current = subs.front();
  }
}

// "list, show, retry or resolve".
std::string SubcommandNames(CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub :
       app.get_subcommands([](CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  if (names.size() <= 1) return absl::StrJoin(names, "");
  const std::string last = names.back();
  names.pop_back();
  return absl::StrCat(absl::StrJoin(names, ", "), " or ", last);
}

std::string HelpHint(const std::string& path) {
  return absl::StrCat("; see `eventstore ", path, path.empty() ? "" : " ",
                      "--help`");
}

}  // namespace

std::string ParsedCommandPath(const CLI::App& app) {
  std::string path;
  const CLI::App* current = &app;
  while (true) {
    const std::vector<CLI::App*> subs = current->get_subcommands();
    if (subs.empty()) return path;
    current = subs.front();
    if (!path.empty()) path += " ";
    path += current->get_name();
  }
}

std::string DescribeParseError(CLI::App& app, const CLI::ParseError& e) {
  CLI::App* command = ParsedCommand(app);
  const std::string path = ParsedCommandPath(app);
  const std::vector<std::string> extras = app.remaining(/*recurse=*/true);
  const bool has_subcommands =
      !command->get_subcommands([](CLI::App*) { return true; }).empty();
  const std::string what = e.what();
  // A word that is not one of the command's subcommands.
  if (has_subcommands && command->get_subcommands().empty() &&
      absl::StrContains(what, "subcommand is required")) {
    const std::string kind = path.empty() ? "command" : "subcommand";
    if (!extras.empty() && !absl::StartsWith(extras.front(), "-")) {
      return absl::StrCat("unknown ", kind, " '", extras.front(), "'; ",
                          path.empty() ? "commands" : "subcommands", ": ",
                          SubcommandNames(*command), HelpHint(path));
    }
    return absl::StrCat("a ", kind, " is required: ", SubcommandNames(*command),
                        HelpHint(path));
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr && !extras.empty()) {
    const std::string& extra = extras.front();
    if (absl::StartsWith(extra, "-") && extra.size() > 1) {
      return absl::StrCat("unknown option '", extra, "'", HelpHint(path));
    }
    std::string message = absl::StrCat(
        extras.size() > 1 ? "unexpected arguments '" : "unexpected argument '",
        absl::StrJoin(extras, "' '"), "'");
    // `outbox stats URL`: the URL belongs to the parent command.
    if (LooksLikeStoreUrl(extra) && command->get_parent() != nullptr &&
        command->get_parent()->get_parent() != nullptr) {
      const std::string parent = command->get_parent()->get_name();
      absl::StrAppend(&message,
                      " (the URL goes before the subcommand: ", "eventstore ",
                      parent, " URL ", command->get_name(), ")");
    }
    return absl::StrCat(message, HelpHint(path));
  }
  return absl::StrCat(what, HelpHint(path));
}

int ReportParseError(CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == 0) {  // --help, --version
    app.exit(e);
    return kExitOk;
  }
  PrintErrorMessage(ParsedCommandPath(app), DescribeParseError(app, e));
  return kExitUsage;
}

}  // namespace eventstore::tools
