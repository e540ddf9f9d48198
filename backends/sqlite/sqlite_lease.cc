#include "backends/sqlite/sqlite_lease.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace eventstore::sqlite {
namespace {

// Longest encoded name kept whole in a lease file name; longer ones keep a
// prefix and a hash, so that the file name stays far below NAME_MAX.
constexpr size_t kMaxEncodedName = 96;

bool KeptInFileName(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

// FNV-1a: stable across processes and builds (unlike absl::Hash).
uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// `name` as a file-name part: distinct names give distinct parts.
std::string EncodeName(std::string_view name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : name) {
    if (KeptInFileName(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (out.size() > kMaxEncodedName) {
    // '~' is never in an encoded name, so a shortened one cannot collide
    // with a short one.
    out.resize(kMaxEncodedName - 17);
    static constexpr int kHexDigits = 16;
    const uint64_t h = Fnv1a64(name);
    out.push_back('~');
    for (int i = kHexDigits - 1; i >= 0; --i) {
      out.push_back(kHex[(h >> (4 * i)) & 0xf]);
    }
  }
  return out;
}

absl::Status ErrnoStatus(int error, std::string_view what,
                         const std::string& path) {
  const std::string message = absl::StrCat("sqlite lease: ", std::string(what),
                                           " '", path, "': ", strerror(error));
  if (error == EACCES || error == EPERM || error == EROFS) {
    return absl::PermissionDeniedError(message);
  }
  return absl::UnavailableError(message);
}

// Holds an flock() on an open lease file until destroyed.
class FileLease final : public Lease {
 public:
  FileLease(std::string path, int fd, dev_t dev, ino_t ino)
      : path_(std::move(path)), fd_(fd), dev_(dev), ino_(ino) {}
  FileLease(const FileLease&) = delete;
  FileLease& operator=(const FileLease&) = delete;
  ~FileLease() override { close(fd_); }  // releases the lock

  bool Valid() override {
    struct stat now;
    return stat(path_.c_str(), &now) == 0 && now.st_dev == dev_ &&
           now.st_ino == ino_;
  }

 private:
  const std::string path_;
  const int fd_;
  const dev_t dev_;
  const ino_t ino_;
};

// Holds a name in an in-memory database's set until destroyed.
template <typename HeldNames>
class MemoryLease final : public Lease {
 public:
  MemoryLease(std::shared_ptr<HeldNames> held, std::string name)
      : held_(std::move(held)), name_(std::move(name)) {}
  MemoryLease(const MemoryLease&) = delete;
  MemoryLease& operator=(const MemoryLease&) = delete;
  ~MemoryLease() override {
    internal::MutexLock lock(&held_->mu);
    held_->names.erase(name_);
  }

  bool Valid() override { return true; }

 private:
  const std::shared_ptr<HeldNames> held_;
  const std::string name_;
};

// The database's path with symbolic links resolved, so that every path to
// one file gives one lease file; `path` itself when that fails.
std::string RealPath(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;
  std::string out(real);
  free(real);
  return out;
}

}  // namespace

SqliteLeases::SqliteLeases(const std::string& database_path)
    : path_(database_path == ":memory:" ? database_path
                                        : RealPath(database_path)),
      held_(database_path == ":memory:" ? std::make_shared<HeldNames>()
                                        : nullptr) {}

std::string SqliteLeases::LeaseFilePath(const std::string& database_path,
                                        std::string_view name) {
  return absl::StrCat(RealPath(database_path), ".lease-", EncodeName(name));
}

absl::StatusOr<std::unique_ptr<Lease>> SqliteLeases::TryAcquire(
    std::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("lease name: empty");
  }
  if (held_ != nullptr) return TryAcquireInMemory(name);
  return TryAcquireFile(name);
}

absl::StatusOr<std::unique_ptr<Lease>> SqliteLeases::TryAcquireInMemory(
    std::string_view name) {
  internal::MutexLock lock(&held_->mu);
  if (!held_->names.insert(std::string(name)).second) {
    return std::unique_ptr<Lease>();
  }
  return std::unique_ptr<Lease>(
      new MemoryLease<HeldNames>(held_, std::string(name)));
}

absl::StatusOr<std::unique_ptr<Lease>> SqliteLeases::TryAcquireFile(
    std::string_view name) {
  const std::string path = absl::StrCat(path_, ".lease-", EncodeName(name));
  // Someone may remove or replace the file between open() and flock(): the
  // lock is then on a file nobody else opens. Check, and start again.
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus(errno, "opening", path);
    int rc;
    do {
      rc = flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int error = errno;
      close(fd);
      if (error == EWOULDBLOCK) return std::unique_ptr<Lease>();
      return ErrnoStatus(error, "locking", path);
    }
    struct stat opened;
    struct stat named;
    if (fstat(fd, &opened) != 0 || stat(path.c_str(), &named) != 0 ||
        opened.st_dev != named.st_dev || opened.st_ino != named.st_ino) {
      close(fd);
      continue;
    }
    // For people looking at the file: who holds (or last held) the lease.
    const std::string pid = absl::StrCat(getpid(), "\n");
    if (ftruncate(fd, 0) == 0) {
      (void)!pwrite(fd, pid.data(), pid.size(), 0);
    }
    return std::unique_ptr<Lease>(
        new FileLease(path, fd, opened.st_dev, opened.st_ino));
  }
  return absl::UnavailableError(absl::StrCat(
      "sqlite lease: '", path, "' keeps being replaced while locking it"));
}

}  // namespace eventstore::sqlite
