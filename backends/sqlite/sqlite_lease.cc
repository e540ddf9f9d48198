#include "backends/sqlite/sqlite_lease.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

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

// The kernel's table of file locks, one lock a line, e.g.
//   "1: FLOCK  ADVISORY  WRITE 4242 fe:01:1234567 0 EOF"
// (the device's major and minor in hex, then the inode); a process waiting
// for a lock has "->" before the type.
constexpr char kProcLocks[] = "/proc/locks";

// The pid holding an flock() on the file (device `dev`, inode `ino`) in the
// line `line` of /proc/locks, or nullopt when the line is about another
// lock (or a waiter). The kernel shows 0 for a holder outside this
// process's PID namespace.
std::optional<int64_t> FlockHolder(absl::string_view line, dev_t dev,
                                   ino_t ino) {
  // Debian's Abseil has its own absl::string_view, which StrSplit and the
  // number parsers take.
  const std::vector<absl::string_view> fields =
      absl::StrSplit(line, ' ', absl::SkipWhitespace());
  // "N:", "FLOCK", "ADVISORY", "WRITE", pid, "maj:min:inode", start, end.
  if (fields.size() < 6 || fields[1] != "FLOCK") return std::nullopt;
  const std::vector<absl::string_view> file = absl::StrSplit(fields[5], ':');
  uint32_t major_number = 0;
  uint32_t minor_number = 0;
  uint64_t inode = 0;
  int64_t pid = 0;
  if (file.size() != 3 || !absl::SimpleHexAtoi(file[0], &major_number) ||
      !absl::SimpleHexAtoi(file[1], &minor_number) ||
      !absl::SimpleAtoi(file[2], &inode) ||
      !absl::SimpleAtoi(fields[4], &pid)) {
    return std::nullopt;
  }
  if (major_number != major(dev) || minor_number != minor(dev) ||
      inode != static_cast<uint64_t>(ino) || pid < 0) {
    return std::nullopt;
  }
  return pid;
}

}  // namespace

SqliteLeases::SqliteLeases(const std::string& database_path)
    : path_(database_path == ":memory:" ? database_path
                                        : RealPath(database_path)),
      held_(database_path == ":memory:" ? std::make_shared<HeldNames>()
                                        : nullptr) {}

std::string SqliteLeases::LeaseFilePath(const std::string& database_path,
                                        std::string_view name) {
  // The same as FilePath(name) of SqliteLeases(database_path).
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

std::string SqliteLeases::FilePath(std::string_view name) const {
  return absl::StrCat(path_, ".lease-", EncodeName(name));
}

absl::StatusOr<std::optional<LeaseHolder>> SqliteLeases::FindHolder(
    std::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("lease name: empty");
  }
  if (held_ != nullptr) {
    internal::MutexLock lock(&held_->mu);
    if (!held_->names.contains(absl::string_view(name.data(), name.size()))) {
      return std::nullopt;
    }
    return LeaseHolder{static_cast<int64_t>(getpid()), ""};
  }
  // stat(), never open(): opening could create the file, and locking it
  // even for a moment would take the lease from a process trying for it.
  const std::string path = FilePath(name);
  struct stat file;
  if (stat(path.c_str(), &file) != 0) {
    const int error = errno;
    if (error == ENOENT) return std::nullopt;
    return ErrnoStatus(error, "reading", path);
  }
  FILE* locks = fopen(kProcLocks, "re");
  if (locks == nullptr) {
    const int error = errno;
    return ErrnoStatus(error, "reading", kProcLocks);
  }
  std::optional<LeaseHolder> holder;
  char* line = nullptr;
  size_t capacity = 0;
  ssize_t length;
  while ((length = getline(&line, &capacity, locks)) > 0) {
    const std::optional<int64_t> pid =
        FlockHolder(absl::string_view(line, static_cast<size_t>(length)),
                    file.st_dev, file.st_ino);
    if (pid.has_value()) {
      holder =
          LeaseHolder{*pid, *pid == 0 ? "a process in another PID namespace "
                                        "(a container?): its pid is not "
                                        "visible here"
                                      : ""};
      break;
    }
  }
  free(line);
  fclose(locks);
  return holder;
}

absl::StatusOr<std::unique_ptr<Lease>> SqliteLeases::TryAcquireFile(
    std::string_view name) {
  const std::string path = FilePath(name);
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
