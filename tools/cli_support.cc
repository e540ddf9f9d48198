#include "tools/cli_support.h"

#include <sys/stat.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/open_event_store.h"
#include "tools/command.h"
#ifdef EVENTSTORE_HAVE_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#endif

namespace eventstore::tools {
namespace {

// Passwords shorter than this are masked only where they stand in a URL
// (replacing every "ab" in a message would garble it and hide nothing).
constexpr size_t kMinMaskedLength = 3;

bool IsPostgresUrl(std::string_view url) {
  return url.rfind("postgresql:", 0) == 0 || url.rfind("postgres:", 0) == 0;
}

// The password of a PostgreSQL URL (user:password@ or password=), as
// written, or empty.
std::vector<std::string> PasswordsOf(std::string_view url) {
  std::vector<std::string> out;
  const std::string u(url);
  const size_t scheme = u.find("://");
  if (scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = u.find_first_of("/?", start);
    const size_t at = u.rfind('@', end == std::string::npos ? u.size() : end);
    if (at != std::string::npos && at > start) {
      const size_t colon = u.find(':', start);
      if (colon != std::string::npos && colon < at) {
        out.push_back(u.substr(colon + 1, at - colon - 1));
      }
    }
  }
  for (size_t pos = u.find("password="); pos != std::string::npos;
       pos = u.find("password=", pos + 1)) {
    const size_t value = pos + 9;
    const size_t end = u.find_first_of("& ", value);
    out.push_back(
        u.substr(value, (end == std::string::npos ? u.size() : end) - value));
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
        HexValue(s[i + 2]) >= 0) {
      out.push_back(
          static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Masks the password of every postgres URL inside `text`.
std::string MaskUrlsIn(std::string text) {
#ifdef EVENTSTORE_HAVE_POSTGRES
  for (const char* scheme : {"postgresql://", "postgres://"}) {
    for (size_t pos = text.find(scheme); pos != std::string::npos;
         pos = text.find(scheme, pos + 1)) {
      size_t end = text.find_first_of(" \t\n'\"", pos);
      if (end == std::string::npos) end = text.size();
      // Punctuation that ends a sentence is not part of the URL.
      while (end > pos && std::string_view(":,;.)").find(text[end - 1]) !=
                              std::string_view::npos) {
        --end;
      }
      const std::string masked = MaskPostgresUrl(text.substr(pos, end - pos));
      text.replace(pos, end - pos, masked);
    }
  }
  // password=... in a key=value connection string or query.
  for (size_t pos = text.find("password="); pos != std::string::npos;
       pos = text.find("password=", pos + 1)) {
    const size_t value = pos + 9;
    if (text.compare(value, 3, "***") == 0) continue;  // masked above
    size_t end = text.find_first_of("& \t\n'\"", value);
    if (end == std::string::npos) end = text.size();
    text.replace(value, end - value, "***");
  }
#endif
  return text;
}

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
#ifdef EVENTSTORE_HAVE_POSTGRES
  if (IsPostgresUrl(url)) return MaskPostgresUrl(url);
#endif
  return std::string(url);
}

std::string MaskSecrets(std::string_view text, std::string_view url) {
  std::string out = MaskUrlsIn(std::string(text));
  if (!IsPostgresUrl(url)) return out;
  for (const std::string& password : PasswordsOf(url)) {
    for (const std::string& form : {password, PercentDecode(password)}) {
      if (form.size() < kMinMaskedLength || form == "***") continue;
      out = absl::StrReplaceAll(out, {{form, "***"}});
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenStore(
    const std::string& url, const OpenStoreOptions& options) {
  const std::string shown = MaskUrl(url);
  auto fail = [&](const absl::Status& status) {
    const std::string message = MaskSecrets(std::string(status.message()), url);
    // Name the store, unless the backend's message does already.
    const std::string base = shown.substr(0, shown.find('?'));
    if (absl::StrContains(message, base)) {
      return absl::Status(status.code(), message);
    }
    return absl::Status(status.code(), absl::StrCat(shown, ": ", message));
  };
  absl::StatusOr<std::unique_ptr<EventStore>> store;
  if (absl::StartsWith(url, "sqlite:")) {
    absl::StatusOr<SqliteOptions> sqlite = SqliteOptions::FromUrl(url);
    if (!sqlite.ok()) return fail(sqlite.status());
    if (sqlite->path != ":memory:" && !FileExists(sqlite->path)) {
      if (!options.create_if_missing) {
        return fail(absl::NotFoundError(absl::StrCat(
            "path: file '", sqlite->path,
            "' does not exist (`eventstore init URL` creates a store)")));
      }
    }
    sqlite->create_if_missing = options.create_if_missing;
    store = SqliteEventStore::Open(*sqlite);
#ifdef EVENTSTORE_HAVE_POSTGRES
  } else if (IsPostgresUrl(url)) {
    absl::StatusOr<PostgresOptions> postgres = PostgresOptions::FromUrl(url);
    if (!postgres.ok()) return fail(postgres.status());
    postgres->create_if_missing = options.create_if_missing;
    store = PostgresEventStore::Open(*postgres);
#endif
  } else {
    store = OpenEventStore(url);
  }
  if (!store.ok()) return fail(store.status());
  return store;
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
  std::cerr << "eventstore " << command << ": " << MaskSecrets(message, url)
            << std::endl;
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
