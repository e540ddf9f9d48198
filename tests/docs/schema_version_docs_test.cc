// The schema version the docs quote is the one the code writes.
//
// Every Markdown page under docs/ and README.md is scanned for
//   - "schema version N" (any case, any spacing: prose, `info` output,
//     `init` output), which must be the code's version, except in
//     "schema version N, newer than this code's M", where N must be one more
//     (the example of a refused newer file);
//   - "this code's N", and "schema_version": N / "code_schema_version": N in
//     JSON examples, which must be the code's version.
// The code's version is SqliteEventStore::kSchemaVersion, except on
// docs/postgres.md: PostgresEventStore::kSchemaVersion. To mention an old
// version in prose (a history of migrations), write "version N of the
// schema".

#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#endif

namespace eventstore {
namespace {

namespace fs = std::filesystem;

struct Page {
  std::string name;  // relative to the source tree, e.g. "docs/sqlite.md"
  std::string text;
};

std::vector<Page> Pages() {
  const fs::path root(EVENTSTORE_SOURCE_DIR);
  std::vector<fs::path> paths = {root / "README.md"};
  for (const fs::directory_entry& entry :
       fs::directory_iterator(root / "docs")) {
    if (entry.path().extension() == ".md") paths.push_back(entry.path());
  }
  std::vector<Page> pages;
  for (const fs::path& path : paths) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    pages.push_back(
        {fs::relative(path, root).generic_string(), std::move(text).str()});
  }
  return pages;
}

int CodeSchemaVersion(const std::string& page) {
#ifdef EVENTSTORE_TEST_POSTGRES
  if (page == "docs/postgres.md") return PostgresEventStore::kSchemaVersion;
#endif
  return SqliteEventStore::kSchemaVersion;
}

int LineOf(const std::string& text, size_t offset) {
  int line = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') ++line;
  }
  return line;
}

// "page:line: <what>" for each number in `pattern`'s group 1 that is not
// `expected`.
std::vector<std::string> Mismatches(const Page& page, const std::regex& pattern,
                                    int expected, const std::string& what) {
  std::vector<std::string> found;
  for (auto it =
           std::sregex_iterator(page.text.begin(), page.text.end(), pattern);
       it != std::sregex_iterator(); ++it) {
    const int quoted = std::stoi((*it)[1].str());
    if (quoted != expected) {
      found.push_back(absl::StrCat(
          page.name, ":", LineOf(page.text, it->position()), ": '", it->str(),
          "' quotes ", quoted, " for ", what, ", the code's is ", expected));
    }
  }
  return found;
}

TEST(SchemaVersionDocsTest, PagesQuoteTheCodesSchemaVersion) {
  const std::vector<Page> pages = Pages();
  ASSERT_GE(pages.size(), 5u)
      << "docs not found under " << EVENTSTORE_SOURCE_DIR;
  const auto icase = std::regex::ECMAScript | std::regex::icase;
  // "schema version N" not followed by ", newer than".
  const std::regex current(R"(schema\s+version\s+(\d+)(?!\d)(?!\s*,\s*newer))",
                           icase);
  const std::regex newer(R"(schema\s+version\s+(\d+)\s*,\s*newer)", icase);
  const std::regex code_s(R"(this\s+code's\s+(\d+))", icase);
  const std::regex json(R"re("(?:code_)?schema_version"\s*:\s*(\d+))re");
  std::vector<std::string> wrong;
  int quotes = 0;
  for (const Page& page : pages) {
    const int version = CodeSchemaVersion(page.name);
    for (const auto& [pattern, expected, what] :
         std::vector<std::tuple<const std::regex*, int, std::string>>{
             {&current, version, "the current schema version"},
             {&newer, version + 1, "a newer schema than the code's"},
             {&code_s, version, "the code's schema version"},
             {&json, version, "the schema version"}}) {
      std::vector<std::string> found =
          Mismatches(page, *pattern, expected, what);
      wrong.insert(wrong.end(), found.begin(), found.end());
      quotes += static_cast<int>(std::distance(
          std::sregex_iterator(page.text.begin(), page.text.end(), *pattern),
          std::sregex_iterator()));
    }
  }
  EXPECT_THAT(wrong, ::testing::IsEmpty());
  // The check must be looking at something: docs/sqlite.md quotes it.
  EXPECT_GT(quotes, 0);
}

}  // namespace
}  // namespace eventstore
