// MasterKey: the application's key that wraps (encrypts) every data
// subject's key in the key table (crypto-shredding, docs/lifecycle.md). It
// is never stored beside the data: the application reads it from a file or
// the environment, and keeps it as it keeps its other secrets.
//
//   absl::StatusOr<MasterKey> key = MasterKey::FromFile("/etc/app/master.key");
//   // or MasterKey::FromEnvironment("EVENTSTORE_MASTER_KEY")
//
// The text form is 64 hexadecimal digits (32 bytes), surrounding whitespace
// ignored: `eventstore keygen` writes one. Errors name the file or variable,
// never its content. The key bytes live in memory locked against swapping
// (libsodium's sodium_malloc) and are wiped when the last copy goes.

#ifndef EVENTSTORE_CRYPTO_MASTER_KEY_H_
#define EVENTSTORE_CRYPTO_MASTER_KEY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace eventstore::crypto {

class MasterKey {
 public:
  static constexpr size_t kSize = 32;

  // A new random key.
  static MasterKey Generate();
  // From 64 hexadecimal digits. kInvalidArgument (not quoting the text)
  // otherwise.
  static absl::StatusOr<MasterKey> FromHex(std::string_view hex);
  // From a file holding the hex form. kNotFound when absent,
  // kInvalidArgument naming the path when its content is not a key.
  static absl::StatusOr<MasterKey> FromFile(const std::string& path);
  // From an environment variable holding the hex form. kNotFound naming
  // the variable when unset, kInvalidArgument when not a key.
  static absl::StatusOr<MasterKey> FromEnvironment(
      const std::string& variable = "EVENTSTORE_MASTER_KEY");

  // The hex form, for writing a new key file. Handle it as the secret it is.
  std::string ToHex() const;

  // A public identifier of the key (16 hex digits of a keyed BLAKE2b hash of
  // it): stored beside each subject key it wraps, so that a wrong master key
  // is recognised before anything is decrypted. Reveals nothing of the key.
  const std::string& id() const { return *id_; }

  // The key bytes (kSize of them).
  absl::Span<const uint8_t> bytes() const;

 private:
  class Secret;
  explicit MasterKey(std::shared_ptr<const Secret> secret);

  std::shared_ptr<const Secret> secret_;
  std::shared_ptr<const std::string> id_;
};

}  // namespace eventstore::crypto

#endif  // EVENTSTORE_CRYPTO_MASTER_KEY_H_
