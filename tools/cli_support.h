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
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumentation.h"
#include "eventstore/schema_upgrade.h"
#include "tools/secret_masker.h"

namespace eventstore::tools {

// The environment variable that names the store when no URL is given.
inline constexpr char kUrlEnvironmentVariable[] = "EVENTSTORE_URL";

// `given` when not empty, else $EVENTSTORE_URL. kInvalidArgument naming
// both when neither is set.
absl::StatusOr<std::string> ResolveUrl(const std::string& given);

// `url` fit to print: a PostgreSQL URL's password replaced by "***"
// (MaskPostgresUrl), and any credential of a URL of another or a mistyped
// shape masked (MaskSecrets).
std::string MaskUrl(std::string_view url);

// `text` with every credential of `url` masked: the password part of any
// URL in it, password= values, and `url`'s password wherever it appears
// (also percent-encoded); and everything ProcessMasker() masks.
std::string MaskSecrets(std::string_view text, std::string_view url);

// The process's SecretMasker. OutputMasking teaches it the command line and
// the environment; every message and all of stdout and stderr go through it.
SecretMasker& ProcessMasker();

// For main(): teaches ProcessMasker() every argument of `argv` and the
// credentials of $EVENTSTORE_URL and $PGPASSWORD, and routes std::cout and
// std::cerr through it (MaskingStreamBuf) until destroyed, when both are
// flushed and given back their own buffers.
class OutputMasking {
 public:
  OutputMasking(int argc, const char* const* argv);
  OutputMasking(const OutputMasking&) = delete;
  OutputMasking& operator=(const OutputMasking&) = delete;
  ~OutputMasking();

 private:
  std::streambuf* const cout_buf_;
  std::streambuf* const cerr_buf_;
  MaskingStreamBuf cout_masked_;
  MaskingStreamBuf cerr_masked_;
};

// stdout's own buffer, not masked: for bytes that must go out unchanged
// (`export -` writes a binary file whose checksum covers every byte).
std::streambuf* RawStdout();

struct OpenStoreOptions {
  // Create a store that does not exist yet: a SQLite file, or the tables in
  // a PostgreSQL schema. Default false: commands that only look fail on a
  // mistyped path or schema instead of creating an empty store there.
  // `init`, and targets of copies, set it.
  bool create_if_missing = false;
  // Open read-only (SQLite SQLITE_OPEN_READONLY, PostgreSQL read-only
  // transactions): the commands that only look (info, streams, read, tail,
  // verify, checkpoints, dlq list and show, outbox stats and list) set it,
  // so they work on read-only files and roles and never write.
  bool read_only = false;
  // Compare every event's checksum on read whatever the URL's
  // verify_checksums says: `verify` and `export` set it, so that they never
  // trust a payload. Default false: the URL decides (default on).
  bool force_verify_checksums = false;
  // Where a PostgreSQL store's connection pool reports
  // (PostgresOptions::instrumentation): `serve` sets it. Default null.
  std::shared_ptr<Instrumentation> instrumentation;
};

// Opens the store at `url`. The schema is never upgraded here: a store with
// an older schema is kFailedPrecondition, untouched, until `eventstore
// upgrade URL` runs. Errors start with the masked URL and name the part that
// is wrong: kInvalidArgument for a malformed URL, kNotFound for a store that
// does not exist (unless asked to create it), the backend's code otherwise.
absl::StatusOr<std::unique_ptr<EventStore>> OpenStore(
    const std::string& url, const OpenStoreOptions& options = {});

// Upgrades the schema of the store at `url` to this code's version
// (`eventstore upgrade`): SqliteEventStore::UpgradeSchema or
// PostgresEventStore::UpgradeSchema. Errors as OpenStore's; kNotFound when
// there is no store at `url`.
absl::StatusOr<SchemaUpgrade> UpgradeStoreSchema(const std::string& url);

// The options of the commands that only look: read_only set.
inline OpenStoreOptions ReadOnlyStore() {
  OpenStoreOptions options;
  options.read_only = true;
  return options;
}

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

// Writes "eventstore <command>: <message>" to stderr as one line (line
// breaks in `message` become spaces), masked with `url` (MaskSecrets).
// "eventstore: <message>" when `command` is empty.
void PrintErrorMessage(std::string_view command, std::string_view message,
                       std::string_view url = {});

// PrintErrorMessage of `status`'s message; returns ExitCodeFor(status).
int PrintError(std::string_view command, const absl::Status& status,
               std::string_view url = {});

// Adds the optional positional URL argument, documented with its
// EVENTSTORE_URL default.
CLI::Option* AddUrlArgument(CLI::App& cmd, std::string& url);

// Whether `arg` reads as a store URL rather than a stream or file name: it
// starts with sqlite:, postgresql: or postgres:, or holds "://".
bool LooksLikeStoreUrl(std::string_view arg);

// Checks for whole-number options, with messages that name the bounds
// ("must be a whole number 0 or more, not '-3'") instead of CLI11's range
// check (which prints a 300-digit bound). `max`: the option type's largest.
CLI::Validator NonNegative(int64_t max = std::numeric_limits<int64_t>::max());
CLI::Validator AtLeastOne(int64_t max = std::numeric_limits<int64_t>::max());

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
