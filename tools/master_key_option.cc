#include "tools/master_key_option.h"

#include <cstdlib>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tools/cli_support.h"
#ifdef EVENTSTORE_HAVE_CRYPTO
#include "eventstore/crypto/encrypted_event_store.h"
#include "eventstore/crypto/master_key.h"
#endif

namespace eventstore::tools {

bool CryptoBuiltIn() {
#ifdef EVENTSTORE_HAVE_CRYPTO
  return true;
#else
  return false;
#endif
}

std::string CryptoNotBuiltMessage() {
  return "encryption is not built into this eventstore (rebuild with "
         "-DEVENTSTORE_WITH_CRYPTO=ON, which needs libsodium)";
}

CLI::Option* AddMasterKeyFileOption(CLI::App& cmd, std::string& path) {
  return cmd.add_option(
      "--master-key-file", path,
      absl::StrCat("File holding the master key (64 hex digits, as `eventstore "
                   "keygen` writes): encrypted payloads are shown decrypted. "
                   "Default: $",
                   kMasterKeyFileEnvironmentVariable,
                   "; without a key they show as encrypted"));
}

std::string ResolveMasterKeyFile(const std::string& given) {
  if (!given.empty()) return given;
  const char* env = std::getenv(kMasterKeyFileEnvironmentVariable);
  return env != nullptr ? std::string(env) : std::string();
}

absl::StatusOr<std::unique_ptr<EventStore>> DecryptingView(
    EventStore& store, const std::string& key_file) {
  const std::string path = ResolveMasterKeyFile(key_file);
  if (path.empty()) return std::unique_ptr<EventStore>();
#ifdef EVENTSTORE_HAVE_CRYPTO
  absl::StatusOr<crypto::MasterKey> key = crypto::MasterKey::FromFile(path);
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat("--master-key-file: ",
                                     std::string(key.status().message())));
  }
  ProcessMasker().AddSecret(key->ToHex());
  crypto::EncryptionOptions options;
  options.master_key = *std::move(key);
  absl::StatusOr<std::unique_ptr<crypto::EncryptedEventStore>> view =
      crypto::EncryptedEventStore::Create(&store, std::move(options));
  if (!view.ok()) return view.status();
  return std::unique_ptr<EventStore>(*std::move(view));
#else
  (void)store;
  return absl::FailedPreconditionError(
      absl::StrCat("--master-key-file: ", CryptoNotBuiltMessage()));
#endif
}

}  // namespace eventstore::tools
