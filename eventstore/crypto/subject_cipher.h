// The cryptography of crypto-shredding, over libsodium's XChaCha20-Poly1305
// (IETF): subject keys, their wrapping by the master key, and payloads.
//
// Formats (docs/lifecycle.md):
// - A wrapped subject key is nonce (24 bytes) || ciphertext of the 32-byte
//   key and its 16-byte tag, encrypted with the master key; the associated
//   data is "eventstore-subject-key-v1" || subject id || master key id
//   (MasterKey::id(), 16 hex digits), so that a wrapped key cannot be moved
//   to another subject or relabelled with another master key id.
// - An encrypted payload (kPayloadEncryptionXChaCha20) is nonce (24 bytes)
//   || ciphertext and its 16-byte tag, encrypted with the subject's key; the
//   associated data is the event id (16 bytes) || subject id, so that a
//   payload cannot be moved to another event or subject.
// - An encrypted snapshot state (eventstore/crypto/encrypted_snapshot_store.h)
//   is nonce (24 bytes) || ciphertext and its 16-byte tag, encrypted with
//   the subject's key; the associated data is SnapshotAad's, so that a state
//   cannot be moved to another stream, schema version, version, subject or
//   type, nor mistaken for a payload.
// Nonces are random (XChaCha20's 192-bit nonces make collisions
// negligible); payloads' nonces are a random 16-byte prefix per append and
// a counter (payload_cipher.h, which encrypts and decrypts them).

#ifndef EVENTSTORE_CRYPTO_SUBJECT_CIPHER_H_
#define EVENTSTORE_CRYPTO_SUBJECT_CIPHER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "eventstore/crypto/master_key.h"
#include "eventstore/uuid.h"

namespace eventstore::crypto::internal {

// A subject's data key, wiped (sodium_memzero) when destroyed. Ordinary
// heap memory, unlike MasterKey's: sodium_malloc costs three pages and
// three mappings per allocation, too much for a cache of thousands of keys.
class SubjectKey {
 public:
  static constexpr size_t kSize = 32;

  // A new random key.
  static std::shared_ptr<const SubjectKey> Generate();

  SubjectKey();
  SubjectKey(const SubjectKey&) = delete;
  SubjectKey& operator=(const SubjectKey&) = delete;
  ~SubjectKey();

  const uint8_t* data() const { return bytes_; }
  uint8_t* mutable_data() { return bytes_; }

 private:
  uint8_t bytes_[kSize];
};

// Bytes an encrypted payload or wrapped key adds to its plaintext.
inline constexpr size_t kNonceSize = 24;
inline constexpr size_t kTagSize = 16;

// `key` encrypted with `master` for `subject` (the format above).
std::string WrapSubjectKey(const MasterKey& master, std::string_view subject,
                           const SubjectKey& key);

// The key that WrapSubjectKey wrapped. kDataLoss (naming the subject, never
// a key) when `wrapped` does not authenticate with `master`.
absl::StatusOr<std::shared_ptr<const SubjectKey>> UnwrapSubjectKey(
    const MasterKey& master, std::string_view subject,
    std::string_view wrapped);

// The associated data of a snapshot state: "eventstore-snapshot-v1" ||
// each of stream, subject and type preceded by its length (4 bytes, big
// endian) || schema_version (4 bytes) || version (8 bytes), big endian.
std::string SnapshotAad(std::string_view stream, int32_t schema_version,
                        int64_t version, std::string_view subject,
                        std::string_view type);

// `plaintext` encrypted with `key` for `aad` (SnapshotAad's).
std::string EncryptSnapshotState(const SubjectKey& key, std::string_view aad,
                                 std::string_view plaintext);

// Decrypts what EncryptSnapshotState made into `*plaintext`. False, leaving
// `*plaintext` unspecified, when it does not authenticate.
bool DecryptSnapshotState(const SubjectKey& key, std::string_view aad,
                          std::string_view ciphertext, std::string* plaintext);

}  // namespace eventstore::crypto::internal

#endif  // EVENTSTORE_CRYPTO_SUBJECT_CIPHER_H_
