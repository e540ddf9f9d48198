#include "eventstore/crypto/payload_cipher.h"

#include <sodium.h>

#include <cstring>

#include "eventstore/crypto/sodium_init.h"

namespace eventstore::crypto::internal {
namespace {

static_assert(SubkeyCache::kPrefixSize == crypto_core_hchacha20_INPUTBYTES);
static_assert(SubjectKey::kSize == crypto_core_hchacha20_OUTPUTBYTES);
static_assert(SubjectKey::kSize == crypto_aead_chacha20poly1305_IETF_KEYBYTES);
static_assert(kTagSize == crypto_aead_chacha20poly1305_IETF_ABYTES);
// The IETF nonce: 4 zero bytes || the XChaCha20 nonce's last 8 bytes.
constexpr size_t kIetfNonceSize = crypto_aead_chacha20poly1305_IETF_NPUBBYTES;
constexpr size_t kSuffixSize = kNonceSize - SubkeyCache::kPrefixSize;
static_assert(kIetfNonceSize == 4 + kSuffixSize);

// The associated data of a payload: event id || subject, into `aad`.
void PayloadAad(const Uuid& id, std::string_view subject, std::string& aad) {
  aad.assign(id.bytes());
  aad.append(subject);
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

SubkeyCache::SubkeyCache() = default;

SubkeyCache::~SubkeyCache() {
  sodium_memzero(key_, sizeof key_);
  sodium_memzero(subkey_, sizeof subkey_);
}

const unsigned char* SubkeyCache::Subkey(const SubjectKey& key,
                                         const unsigned char* prefix) {
  if (!valid_ || std::memcmp(key_, key.data(), sizeof key_) != 0 ||
      std::memcmp(prefix_, prefix, sizeof prefix_) != 0) {
    crypto_core_hchacha20(subkey_, prefix, key.data(), nullptr);
    std::memcpy(key_, key.data(), sizeof key_);
    std::memcpy(prefix_, prefix, sizeof prefix_);
    valid_ = true;
  }
  return subkey_;
}

PayloadSealer::PayloadSealer() {
  EnsureSodium();
  randombytes_buf(prefix_, sizeof prefix_);
}

std::string PayloadSealer::Seal(const SubjectKey& key, const Uuid& id,
                                std::string_view subject,
                                std::string_view plaintext) {
  std::string out(kNonceSize + plaintext.size() + kTagSize, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  std::memcpy(nonce, prefix_, sizeof prefix_);
  const uint64_t n = counter_++;
  for (size_t i = 0; i < kSuffixSize; ++i) {
    nonce[SubkeyCache::kPrefixSize + i] =
        static_cast<unsigned char>(n >> (8 * i));
  }
  unsigned char ietf_nonce[kIetfNonceSize] = {0};
  std::memcpy(ietf_nonce + 4, nonce + SubkeyCache::kPrefixSize, kSuffixSize);
  PayloadAad(id, subject, aad_);
  unsigned long long written = 0;  // NOLINT(runtime/int): libsodium's type
  crypto_aead_chacha20poly1305_ietf_encrypt(
      nonce + kNonceSize, &written, Bytes(plaintext), plaintext.size(),
      Bytes(aad_), aad_.size(), nullptr, ietf_nonce,
      subkeys_.Subkey(key, prefix_));
  return out;
}

bool PayloadOpener::Open(const SubjectKey& key, const Uuid& id,
                         std::string_view subject, std::string_view sealed,
                         std::string* plaintext) {
  if (sealed.size() < kNonceSize + kTagSize) return false;
  EnsureSodium();
  const unsigned char* nonce = Bytes(sealed);
  unsigned char ietf_nonce[kIetfNonceSize] = {0};
  std::memcpy(ietf_nonce + 4, nonce + SubkeyCache::kPrefixSize, kSuffixSize);
  PayloadAad(id, subject, aad_);
  plaintext->resize(sealed.size() - kNonceSize - kTagSize);
  unsigned long long written = 0;  // NOLINT(runtime/int)
  return crypto_aead_chacha20poly1305_ietf_decrypt(
             reinterpret_cast<unsigned char*>(plaintext->data()), &written,
             nullptr, nonce + kNonceSize, sealed.size() - kNonceSize,
             Bytes(aad_), aad_.size(), ietf_nonce,
             subkeys_.Subkey(key, nonce)) == 0;
}

}  // namespace eventstore::crypto::internal
