// Encrypting and decrypting event payloads (the format is subject_cipher.h's:
// nonce (24 bytes) || XChaCha20-Poly1305-IETF ciphertext and tag, associated
// data event id || subject), at the cost of a store's hot path.
//
// XChaCha20-Poly1305 is, by definition (and in libsodium's own code), an
// HChaCha20 subkey derived from the key and the nonce's first 16 bytes,
// then ChaCha20-Poly1305-IETF under that subkey with the nonce's last 8
// bytes. PayloadSealer picks one random 16-byte nonce prefix per sealer
// (one append) and numbers the events' last 8 bytes, so that a batch costs
// one call to the system's random source and one HChaCha20 per subject key
// instead of one each per event; PayloadOpener reuses the subkey while
// consecutive payloads share key and prefix (the events of one append).
// Both use libsodium's functions for each step (crypto_core_hchacha20,
// crypto_aead_chacha20poly1305_ietf_*): what they write is exactly what
// crypto_aead_xchacha20poly1305_ietf_encrypt writes for that nonce, and
// they open what it writes.
//
// Nonces stay unique: a 128-bit random prefix per sealer (collisions
// negligible, as for XChaCha20's random nonces) and a distinct counter
// per payload within it.

#ifndef EVENTSTORE_CRYPTO_PAYLOAD_CIPHER_H_
#define EVENTSTORE_CRYPTO_PAYLOAD_CIPHER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "eventstore/crypto/subject_cipher.h"
#include "eventstore/uuid.h"

namespace eventstore::crypto::internal {

// The state shared by the sealer and the opener: the last subkey derived,
// for which key and nonce prefix. Wiped when destroyed.
class SubkeyCache {
 public:
  static constexpr size_t kPrefixSize = 16;

  SubkeyCache();
  SubkeyCache(const SubkeyCache&) = delete;
  SubkeyCache& operator=(const SubkeyCache&) = delete;
  ~SubkeyCache();

  // The HChaCha20 subkey of (key, prefix), derived unless it is the last
  // one's. Valid until the next call.
  const unsigned char* Subkey(const SubjectKey& key,
                              const unsigned char* prefix);

 private:
  bool valid_ = false;
  unsigned char key_[SubjectKey::kSize];
  unsigned char prefix_[kPrefixSize];
  unsigned char subkey_[SubjectKey::kSize];
};

// Encrypts the payloads of one append. Not thread-safe; one per append.
class PayloadSealer {
 public:
  PayloadSealer();

  // `plaintext` encrypted with `key` for (event `id`, `subject`).
  std::string Seal(const SubjectKey& key, const Uuid& id,
                   std::string_view subject, std::string_view plaintext);

 private:
  unsigned char prefix_[SubkeyCache::kPrefixSize];
  uint64_t counter_ = 0;
  SubkeyCache subkeys_;
  std::string aad_;
};

// Decrypts payloads. Not thread-safe; one per reading thread.
class PayloadOpener {
 public:
  // Decrypts what Seal (or crypto_aead_xchacha20poly1305_ietf_encrypt with
  // the same associated data) made into `*plaintext`. False, leaving
  // `*plaintext` unspecified, when it does not authenticate.
  bool Open(const SubjectKey& key, const Uuid& id, std::string_view subject,
            std::string_view sealed, std::string* plaintext);

 private:
  SubkeyCache subkeys_;
  std::string aad_;
};

}  // namespace eventstore::crypto::internal

#endif  // EVENTSTORE_CRYPTO_PAYLOAD_CIPHER_H_
