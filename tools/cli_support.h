// What every `eventstore` subcommand shares: where the store is, opening
// it, and reporting errors without ever printing a password.
//
//   std::string url;
//   eventstore::tools::AddUrlArgument(*cmd, url);
//   eventstore::tools::SetExample(*cmd, "eventstore info sqlite:events.db");
//   ...
//   absl::StatusOr<std::string> resolved = eventstore::tools::ResolveUrl(url);
//   if (!resolved.ok()) return PrintError("info", resolved.status());
//   absl::StatusOr<std::unique_ptr<eventstore::EventStore>> store =
//       eventstore::tools::OpenStore(*resolved);
//   if (!store.ok()) return PrintError("info", store.status(), *resolved);
//
// Messages go to stderr as "eventstore <command>: <message>", with every
// credential of the URL masked ("***"): the URL's password part, a
// password= parameter, and the password itself wherever it appears.

#ifndef EVENTSTORE_TOOLS_CLI_SUPPORT_H_
#define EVENTSTORE_TOOLS_CLI_SUPPORT_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/event_store.h"

namespace eventstore::tools {

// The environment variable that names the store when no URL is given.
inline constexpr char kUrlEnvironmentVariable[] = "EVENTSTORE_URL";

// `given` when not empty, else $EVENTSTORE_URL. kInvalidArgument naming
// both when neither is set.
absl::StatusOr<std::string> ResolveUrl(const std::string& given);

// `url` fit to print: a PostgreSQL URL's password replaced by "***"
// (MaskPostgresUrl); other URLs unchanged.
std::string MaskUrl(std::string_view url);

// `text` with every credential of `url` masked: the password part of any
// URL in it, password= values, and `url`'s password wherever it appears
// (also percent-encoded).
std::string MaskSecrets(std::string_view text, std::string_view url);

struct OpenStoreOptions {
  // Create a store that does not exist yet: a SQLite file, or the tables in
  // a PostgreSQL schema. Default false: commands that only look fail on a
  // mistyped path or schema instead of creating an empty store there.
  // `init`, and targets of copies, set it.
  bool create_if_missing = false;
};

// Opens the store at `url` (migrating an older schema, as OpenEventStore
// does). Errors start with the masked URL and name the part that is wrong:
// kInvalidArgument for a malformed URL, kNotFound for a store that does not
// exist (unless asked to create it), the backend's code otherwise.
absl::StatusOr<std::unique_ptr<EventStore>> OpenStore(
    const std::string& url, const OpenStoreOptions& options = {});

// Resolves `url` (ResolveUrl), opens the store (OpenStore) and returns
// `body(store, resolved_url)`; an error on the way is printed for `command`
// and becomes the exit code (ExitCodeFor).
int RunWithStore(
    std::string_view command, const std::string& url,
    const OpenStoreOptions& options,
    const std::function<int(EventStore& store, const std::string& url)>& body);

// The exit code for a failed `status`: kExitUsage for kInvalidArgument (an
// argument or URL is wrong), kExitProblem otherwise.
int ExitCodeFor(const absl::Status& status);

// Writes "eventstore <command>: <message>" to stderr, masked with `url`.
void PrintErrorMessage(std::string_view command, std::string_view message,
                       std::string_view url = {});

// PrintErrorMessage of `status`'s message; returns ExitCodeFor(status).
int PrintError(std::string_view command, const absl::Status& status,
               std::string_view url = {});

// Adds the optional positional URL argument, documented with its
// EVENTSTORE_URL default.
CLI::Option* AddUrlArgument(CLI::App& cmd, std::string& url);

// For commands with more positional arguments after an optional URL
// (`read [URL] STREAM`): when `*last` is empty, the arguments were given
// without a URL, so each moves one place right: `*last` takes the value of
// the one before it and so on, and `url` is cleared (ResolveUrl then uses
// EVENTSTORE_URL). `shifted` lists the arguments after the URL, in order.
void ShiftOptionalUrl(std::string& url,
                      std::initializer_list<std::string*> shifted);

// Sets the command's help footer to "Example:" and the lines given.
void SetExample(CLI::App& cmd, std::string_view example);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_CLI_SUPPORT_H_
