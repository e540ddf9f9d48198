// TempDir: a fresh directory that is removed, with its contents, when the
// object is destroyed. Each benchmark run puts its database files in one.
//
//   absl::StatusOr<std::unique_ptr<TempDir>> dir = TempDir::Create();
//   if (!dir.ok()) return dir.status();
//   std::string db = (*dir)->File("events.db");

#ifndef EVENTSTORE_BENCH_TEMP_DIR_H_
#define EVENTSTORE_BENCH_TEMP_DIR_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace eventstore::bench {

class TempDir {
 public:
  // A new directory with a unique name under $TMPDIR, else /tmp.
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

}  // namespace eventstore::bench

#endif  // EVENTSTORE_BENCH_TEMP_DIR_H_
