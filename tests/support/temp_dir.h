// TempDir: a fresh directory that is removed, with its contents, when the
// object is destroyed; and helpers that read and write whole files.
//
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
//   std::string db = dir->File("events.db");

#ifndef EVENTSTORE_TESTS_SUPPORT_TEMP_DIR_H_
#define EVENTSTORE_TESTS_SUPPORT_TEMP_DIR_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace eventstore::test {

class TempDir {
 public:
  // A new directory with a unique name under $TEST_TMPDIR, else $TMPDIR,
  // else /tmp.
  static absl::StatusOr<std::unique_ptr<TempDir>> Create();

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Removes the directory and everything in it; errors are ignored.
  ~TempDir();

  const std::string& path() const { return path_; }
  // The path of `name` inside the directory (not created).
  std::string File(std::string_view name) const;

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}

  std::string path_;
};

// The whole content of the file at `path` (empty when it cannot be read).
std::string ReadFileBytes(const std::string& path);

// Replaces the content of the file at `path` with `bytes`, creating it.
void WriteFileBytes(const std::string& path, const std::string& bytes);

// True when something exists at `path`.
bool FileExists(const std::string& path);

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_TEMP_DIR_H_
