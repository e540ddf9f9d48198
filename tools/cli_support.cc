#include "tools/cli_support.h"

#include <sys/stat.h>

#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/failover_url.h"
#include "eventstore/open_event_store.h"
#include "tools/command.h"
#ifdef EVENTSTORE_HAVE_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#endif

namespace eventstore::tools {
namespace {

bool IsPostgresUrl(std::string_view url) {
  return url.rfind("postgresql:", 0) == 0 || url.rfind("postgres:", 0) == 0;
}

// stdout's own buffer while OutputMasking masks it.
std::streambuf* raw_stdout = nullptr;

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

absl::StatusOr<std::string> ResolveUrl(const std::string& given) {
  if (!given.empty()) return given;
  const char* env = std::getenv(kUrlEnvironmentVariable);
  if (env != nullptr && env[0] != '\0') return std::string(env);
  return absl::InvalidArgumentError(
      absl::StrCat("url: no store URL given and ", kUrlEnvironmentVariable,
                   " is not set (e.g. sqlite:events.db or "
                   "postgresql://user@host:5432/db?schema=eventstore)"));
}

std::string MaskUrl(std::string_view url) {
  std::string shown(url);
#ifdef EVENTSTORE_HAVE_POSTGRES
  if (IsPostgresUrl(url)) shown = MaskPostgresUrl(url);
#endif
  // Whatever shape the URL has (mistyped ones too).
  return MaskSecrets(shown, url);
}

std::string MaskSecrets(std::string_view text, std::string_view url) {
  SecretMasker masker;
  masker.AddArgument(url);
  return ProcessMasker().Mask(masker.Mask(text));
}

SecretMasker& ProcessMasker() {
  static SecretMasker* const masker = new SecretMasker;
  return *masker;
}

OutputMasking::OutputMasking(int argc, const char* const* argv)
    : cout_buf_(std::cout.rdbuf()),
      cerr_buf_(std::cerr.rdbuf()),
      cout_masked_(cout_buf_, &ProcessMasker()),
      cerr_masked_(cerr_buf_, &ProcessMasker()) {
  SecretMasker& masker = ProcessMasker();
  for (int i = 1; i < argc; ++i) masker.AddArgument(argv[i]);
  const char* env = std::getenv(kUrlEnvironmentVariable);
  if (env != nullptr) masker.AddArgument(env);
  const char* pgpassword = std::getenv("PGPASSWORD");
  if (pgpassword != nullptr) masker.AddSecret(pgpassword);
  raw_stdout = cout_buf_;
  std::cout.rdbuf(&cout_masked_);
  std::cerr.rdbuf(&cerr_masked_);
  // Whole lines, not each << on its own, so that the masker sees a secret
  // whole; std::endl and std::flush still flush.
  std::cerr.unsetf(std::ios::unitbuf);
}

OutputMasking::~OutputMasking() {
  std::cout.flush();
  std::cerr.flush();
  std::cout.rdbuf(cout_buf_);
  std::cerr.rdbuf(cerr_buf_);
  std::cerr.setf(std::ios::unitbuf);
  raw_stdout = nullptr;
}

std::streambuf* RawStdout() {
  return raw_stdout != nullptr ? raw_stdout : std::cout.rdbuf();
}

namespace {

// `status` masked, naming the store at `url` unless the backend's message
// does already.
absl::Status StoreError(const absl::Status& status, const std::string& url) {
  const std::string shown = MaskUrl(url);
  const std::string message = MaskSecrets(std::string(status.message()), url);
  const std::string base = shown.substr(0, shown.find('?'));
  if (absl::StrContains(message, base)) {
    return absl::Status(status.code(), message);
  }
  return absl::Status(status.code(), absl::StrCat(shown, ": ", message));
}

absl::Status NoSuchFile(const std::string& path) {
  return absl::NotFoundError(
      absl::StrCat("path: file '", path,
                   "' does not exist (`eventstore init URL` creates a store)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventStore>> OpenStore(
    const std::string& url, const OpenStoreOptions& options) {
  auto fail = [&](const absl::Status& status) {
    return StoreError(status, url);
  };
  absl::StatusOr<std::unique_ptr<EventStore>> store;
  if (absl::StartsWith(url, "sqlite:")) {
    absl::StatusOr<SqliteOptions> sqlite = SqliteOptions::FromUrl(url);
    if (!sqlite.ok()) return fail(sqlite.status());
    if (sqlite->path != ":memory:" && !FileExists(sqlite->path)) {
      if (!options.create_if_missing) return fail(NoSuchFile(sqlite->path));
    }
    sqlite->create_if_missing = options.create_if_missing;
    sqlite->read_only = options.read_only;
    sqlite->upgrade_schema = false;
    if (options.force_verify_checksums) sqlite->verify_checksums = true;
    store = SqliteEventStore::Open(*sqlite);
#ifdef EVENTSTORE_HAVE_POSTGRES
  } else if (IsPostgresUrl(url)) {
    absl::StatusOr<PostgresOptions> postgres = PostgresOptions::FromUrl(url);
    if (!postgres.ok()) return fail(postgres.status());
    postgres->create_if_missing = options.create_if_missing;
    postgres->read_only = options.read_only;
    postgres->upgrade_schema = false;
    if (options.force_verify_checksums) postgres->verify_checksums = true;
    postgres->instrumentation = options.instrumentation;
    store = PostgresEventStore::Open(*postgres);
#endif
  } else if (absl::StartsWith(url, kFailoverScheme)) {
    // Opening a FailoverEventStore would replay its journal into the
    // primary and write its replica: not for a command-line tool.
    return fail(absl::InvalidArgumentError(
        "a failover URL is for applications (opening it would replay its "
        "journal and write its replica); give this command the primary's "
        "URL, or the journal's or replica's sqlite: file. `eventstore info "
        "FAILOVER_URL` shows the failover state without changing it"));
  } else {
    store = OpenEventStore(url);
  }
  if (!store.ok()) return fail(store.status());
  return store;
}

absl::StatusOr<SchemaUpgrade> UpgradeStoreSchema(const std::string& url) {
  absl::StatusOr<SchemaUpgrade> upgrade;
  if (absl::StartsWith(url, "sqlite:")) {
    absl::StatusOr<SqliteOptions> sqlite = SqliteOptions::FromUrl(url);
    if (!sqlite.ok()) return StoreError(sqlite.status(), url);
    if (sqlite->path != ":memory:" && !FileExists(sqlite->path)) {
      return StoreError(NoSuchFile(sqlite->path), url);
    }
    upgrade = SqliteEventStore::UpgradeSchema(*sqlite);
#ifdef EVENTSTORE_HAVE_POSTGRES
  } else if (IsPostgresUrl(url)) {
    absl::StatusOr<PostgresOptions> postgres = PostgresOptions::FromUrl(url);
    if (!postgres.ok()) return StoreError(postgres.status(), url);
    upgrade = PostgresEventStore::UpgradeSchema(*postgres);
#endif
  } else {
    // Not a URL this tool opens: OpenEventStore says why.
    absl::StatusOr<std::unique_ptr<EventStore>> store = OpenEventStore(url);
    upgrade = store.ok()
                  ? absl::InvalidArgumentError(
                        "url: upgrade takes a sqlite: or postgresql: URL")
                  : store.status();
  }
  if (!upgrade.ok()) return StoreError(upgrade.status(), url);
  return upgrade;
}

int RunWithStore(
    std::string_view command, const std::string& url,
    const OpenStoreOptions& options,
    const std::function<int(EventStore& store, const std::string& url)>& body) {
  absl::StatusOr<std::string> resolved = ResolveUrl(url);
  if (!resolved.ok()) return PrintError(command, resolved.status());
  absl::StatusOr<std::unique_ptr<EventStore>> store =
      OpenStore(*resolved, options);
  if (!store.ok()) return PrintError(command, store.status(), *resolved);
  return body(**store, *resolved);
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                             : kExitProblem;
}

void PrintErrorMessage(std::string_view command, std::string_view message,
                       std::string_view url) {
  // One line, so that every line on stderr carries the prefix (libpq's
  // messages have a line of hints after the error).
  std::string line;
  bool space = false;
  for (const char c : MaskSecrets(message, url)) {
    if (c == '\n' || c == '\r' || c == '\t') {
      space = !line.empty();
      continue;
    }
    if (space && c != ' ') line += ' ';
    space = false;
    line += c;
  }
  std::cerr << "eventstore" << (command.empty() ? "" : " ") << command << ": "
            << line << std::endl;
}

int PrintError(std::string_view command, const absl::Status& status,
               std::string_view url) {
  PrintErrorMessage(command, std::string(status.message()), url);
  return ExitCodeFor(status);
}

CLI::Option* AddUrlArgument(CLI::App& cmd, std::string& url) {
  return cmd.add_option(
      "URL", url,
      absl::StrCat("Store URL: sqlite:PATH, sqlite:///ABS/PATH or "
                   "postgresql://user[:password]@host[:port]/db[?schema=S]. "
                   "Default: $",
                   kUrlEnvironmentVariable));
}

bool LooksLikeStoreUrl(std::string_view arg) {
  return arg.rfind("sqlite:", 0) == 0 || IsPostgresUrl(arg) ||
         arg.find("://") != std::string_view::npos;
}

namespace {

// A whole number in [min, max], with a message naming the bounds.
CLI::Validator WholeNumber(int64_t min, int64_t max, std::string name) {
  return CLI::Validator(
      [min, max](std::string& value) -> std::string {
        int64_t n = 0;
        const bool parsed = absl::SimpleAtoi(value, &n);
        if (parsed && n >= min && n <= max) return "";
        const std::string bound = max == std::numeric_limits<int64_t>::max()
                                      ? absl::StrCat(min, " or more")
                                      : absl::StrCat("from ", min, " to ", max);
        return absl::StrCat("must be a whole number ", bound, ", not '", value,
                            "'");
      },
      absl::StrCat(">= ", min), std::move(name));
}

}  // namespace

CLI::Validator NonNegative(int64_t max) {
  return WholeNumber(0, max, "NonNegative");
}

CLI::Validator AtLeastOne(int64_t max) {
  return WholeNumber(1, max, "AtLeastOne");
}

void ShiftOptionalUrl(std::string& url,
                      std::initializer_list<std::string*> shifted) {
  if (shifted.size() == 0) return;
  std::vector<std::string*> args(shifted);
  if (!args.back()->empty()) return;
  for (size_t i = args.size() - 1; i > 0; --i) {
    *args[i] = std::move(*args[i - 1]);
  }
  *args[0] = std::move(url);
  url.clear();
}

void SetExample(CLI::App& cmd, std::string_view example) {
  std::string text = "\nExample:\n";
  for (absl::string_view line : absl::StrSplit(std::string(example), '\n')) {
    absl::StrAppend(&text, "  ", std::string(line), "\n");
  }
  cmd.footer(text);
}

}  // namespace eventstore::tools
