// keygen, rotate-master-key: the master key of crypto-shredding
// (docs/cli.md, docs/lifecycle.md). In a build without eventstore::crypto
// (EVENTSTORE_WITH_CRYPTO off) the commands exist and say they were not
// built in. Key material is never printed: only key ids (MasterKey::id()).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/cli_support.h"
#include "tools/command.h"
#include "tools/master_key_option.h"
#include "tools/output_format.h"
#ifdef EVENTSTORE_HAVE_CRYPTO
#include "eventstore/crypto/encrypted_event_store.h"
#include "eventstore/crypto/master_key.h"
#endif

namespace eventstore::tools {
namespace {

struct KeygenArgs {
  std::string file;
};

struct RotateArgs {
  std::string url;
  std::vector<std::string> old_key_files;
  std::string new_key_file;
  OutputFormat format = OutputFormat::kTable;
};

#ifdef EVENTSTORE_HAVE_CRYPTO

// Writes `text` to a new file at `path`, readable by its owner only
// (0600). kAlreadyExists when the path exists; nothing is left behind on a
// failure.
absl::Status WriteNewSecretFile(const std::string& path,
                                const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                        S_IRUSR | S_IWUSR);
  if (fd < 0) {
    const int error = errno;
    if (error == EEXIST) {
      return absl::AlreadyExistsError(
          absl::StrCat("FILE: '", path,
                       "' exists; a key file is never overwritten (move it "
                       "away first if it is no longer needed)"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "FILE: cannot create '", path, "': ", std::strerror(error)));
  }
  // The mode is what was asked whatever the umask.
  bool ok = ::fchmod(fd, S_IRUSR | S_IWUSR) == 0;
  size_t written = 0;
  while (ok && written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int error = errno;
  ok = (::close(fd) == 0) && ok;
  if (!ok) {
    ::unlink(path.c_str());
    return absl::FailedPreconditionError(absl::StrCat(
        "FILE: cannot write '", path, "': ", std::strerror(error)));
  }
  return absl::OkStatus();
}

int RunKeygen(const KeygenArgs& args) {
  constexpr char kCommand[] = "keygen";
  const crypto::MasterKey key = crypto::MasterKey::Generate();
  std::string hex = key.ToHex();
  ProcessMasker().AddSecret(hex);
  const absl::Status written = WriteNewSecretFile(args.file, hex + "\n");
  std::fill(hex.begin(), hex.end(), '\0');
  if (!written.ok()) return PrintError(kCommand, written);
  std::cout << "wrote a new master key to " << args.file << " (key id "
            << key.id()
            << ", mode 0600); keep it apart from the store's data and "
               "backups: without it no encrypted payload can be read"
            << std::endl;
  return kExitOk;
}

// The key in `path`, for `option`; its text added to the masker.
absl::StatusOr<crypto::MasterKey> LoadKey(const char* option,
                                          const std::string& path) {
  absl::StatusOr<crypto::MasterKey> key = crypto::MasterKey::FromFile(path);
  if (!key.ok()) {
    return absl::Status(
        key.status().code(),
        absl::StrCat(option, ": ", std::string(key.status().message())));
  }
  ProcessMasker().AddSecret(key->ToHex());
  return key;
}

int RunRotate(const RotateArgs& args) {
  constexpr char kCommand[] = "rotate-master-key";
  std::vector<crypto::MasterKey> old_keys;
  for (const std::string& path : args.old_key_files) {
    absl::StatusOr<crypto::MasterKey> key = LoadKey("--old-key-file", path);
    if (!key.ok()) return PrintError(kCommand, key.status());
    old_keys.push_back(*std::move(key));
  }
  absl::StatusOr<crypto::MasterKey> new_key =
      LoadKey("--new-key-file", args.new_key_file);
  if (!new_key.ok()) return PrintError(kCommand, new_key.status());
  return RunWithStore(
      kCommand, args.url, {}, [&](EventStore& store, const std::string& url) {
        absl::StatusOr<crypto::MasterKeyRotation> rotation =
            crypto::RotateMasterKey(store, old_keys, *new_key);
        if (!rotation.ok()) {
          return PrintError(kCommand, rotation.status(), url);
        }
        if (args.format != OutputFormat::kTable) {
          std::cout << JsonObject()
                           .Str("new_key_id", new_key->id())
                           .Int("rewrapped", rotation->rewrapped)
                           .Int("already_current", rotation->already_current)
                           .Int("forgotten", rotation->forgotten)
                           .Build()
                    << std::endl;
          return static_cast<int>(kExitOk);
        }
        std::cout << "rotated to master key " << new_key->id() << ": "
                  << CountOf(rotation->rewrapped, "subject key")
                  << " rewrapped, " << Grouped(rotation->already_current)
                  << " already current, "
                  << CountOf(rotation->forgotten, "forgotten subject")
                  << " skipped; no event was rewritten" << std::endl;
        return static_cast<int>(kExitOk);
      });
}

#else  // !EVENTSTORE_HAVE_CRYPTO

int NotBuilt(const char* command) {
  PrintErrorMessage(command, CryptoNotBuiltMessage());
  return kExitUsage;
}

int RunKeygen(const KeygenArgs&) { return NotBuilt("keygen"); }
int RunRotate(const RotateArgs&) { return NotBuilt("rotate-master-key"); }

#endif  // EVENTSTORE_HAVE_CRYPTO

}  // namespace

void RegisterCryptoCommands(CLI::App& app, int& exit_code) {
  const std::string not_built =
      CryptoBuiltIn() ? "" : " (not built into this eventstore)";
  {
    auto args = std::make_shared<KeygenArgs>();
    CLI::App* cmd = app.add_subcommand(
        "keygen",
        absl::StrCat("Write a new random master key to FILE (mode 0600; an "
                     "existing file is never overwritten)",
                     not_built));
    cmd->add_option("FILE", args->file, "The key file to create")->required();
    SetExample(*cmd, "eventstore keygen /etc/shop/master.key");
    cmd->callback([args, &exit_code] { exit_code = RunKeygen(*args); });
  }
  {
    auto args = std::make_shared<RotateArgs>();
    CLI::App* cmd = app.add_subcommand(
        "rotate-master-key",
        absl::StrCat("Rewrap every subject key with a new master key, "
                     "without rewriting any event; safe to run again",
                     not_built));
    AddUrlArgument(*cmd, args->url);
    cmd->add_option("--old-key-file", args->old_key_files,
                    "A master key the subject keys are wrapped with now "
                    "(repeat for several)")
        ->required();
    cmd->add_option("--new-key-file", args->new_key_file,
                    "The master key to wrap them with (`eventstore keygen`)")
        ->required();
    AddFormatOption(*cmd, args->format);
    SetExample(*cmd,
               "eventstore keygen new.key\n"
               "eventstore rotate-master-key sqlite:events.db --old-key-file "
               "old.key --new-key-file new.key");
    cmd->callback([args, &exit_code] { exit_code = RunRotate(*args); });
  }
}

}  // namespace eventstore::tools
