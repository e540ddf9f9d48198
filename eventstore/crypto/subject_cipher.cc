#include "eventstore/crypto/subject_cipher.h"

#include <sodium.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/crypto/sodium_init.h"

namespace eventstore::crypto::internal {
namespace {

static_assert(kNonceSize == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kTagSize == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(SubjectKey::kSize == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(MasterKey::kSize == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

constexpr std::string_view kWrapContext = "eventstore-subject-key-v1";
constexpr std::string_view kSnapshotContext = "eventstore-snapshot-v1";

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string WrapAad(std::string_view subject, std::string_view master_id) {
  std::string aad;
  aad.reserve(kWrapContext.size() + subject.size() + master_id.size());
  aad.append(kWrapContext).append(subject).append(master_id);
  return aad;
}

// nonce || AEAD(plaintext), the nonce random.
std::string Seal(const uint8_t* key, std::string_view aad,
                 const unsigned char* plaintext, size_t size) {
  std::string out(kNonceSize + size + kTagSize, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, kNonceSize);
  unsigned long long written = 0;  // NOLINT(runtime/int): libsodium's type
  crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + kNonceSize, &written,
                                             plaintext, size, Bytes(aad),
                                             aad.size(), nullptr, nonce, key);
  return out;
}

// Opens what Seal made into `out` (which holds sealed.size() - 40 bytes).
bool Open(const uint8_t* key, std::string_view aad, std::string_view sealed,
          unsigned char* out) {
  if (sealed.size() < kNonceSize + kTagSize) return false;
  const unsigned char* nonce = Bytes(sealed);
  unsigned long long written = 0;  // NOLINT(runtime/int)
  return crypto_aead_xchacha20poly1305_ietf_decrypt(
             out, &written, nullptr, nonce + kNonceSize,
             sealed.size() - kNonceSize, Bytes(aad), aad.size(), nonce,
             key) == 0;
}

// `value`'s `bytes` lowest bytes, big endian.
void AppendBigEndian(uint64_t value, int bytes, std::string& out) {
  for (int i = bytes - 1; i >= 0; --i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

void AppendSized(std::string_view s, std::string& out) {
  AppendBigEndian(s.size(), 4, out);
  out.append(s);
}

}  // namespace

SubjectKey::SubjectKey() : bytes_{} {}

SubjectKey::~SubjectKey() { sodium_memzero(bytes_, sizeof bytes_); }

std::shared_ptr<const SubjectKey> SubjectKey::Generate() {
  EnsureSodium();
  auto key = std::make_shared<SubjectKey>();
  crypto_aead_xchacha20poly1305_ietf_keygen(key->mutable_data());
  return key;
}

std::string WrapSubjectKey(const MasterKey& master, std::string_view subject,
                           const SubjectKey& key) {
  EnsureSodium();
  return Seal(master.bytes().data(), WrapAad(subject, master.id()), key.data(),
              SubjectKey::kSize);
}

absl::StatusOr<std::shared_ptr<const SubjectKey>> UnwrapSubjectKey(
    const MasterKey& master, std::string_view subject,
    std::string_view wrapped) {
  EnsureSodium();
  auto key = std::make_shared<SubjectKey>();
  if (wrapped.size() != kNonceSize + SubjectKey::kSize + kTagSize ||
      !Open(master.bytes().data(), WrapAad(subject, master.id()), wrapped,
            key->mutable_data())) {
    return absl::DataLossError(absl::StrCat(
        "the key of data subject '", std::string(subject),
        "' in the key table is damaged: it does not authenticate with "
        "master key ",
        master.id()));
  }
  return std::shared_ptr<const SubjectKey>(std::move(key));
}

std::string SnapshotAad(std::string_view stream, int32_t schema_version,
                        int64_t version, std::string_view subject,
                        std::string_view type) {
  std::string aad;
  aad.reserve(kSnapshotContext.size() + 24 + stream.size() + subject.size() +
              type.size());
  aad.append(kSnapshotContext);
  AppendSized(stream, aad);
  AppendSized(subject, aad);
  AppendSized(type, aad);
  AppendBigEndian(static_cast<uint32_t>(schema_version), 4, aad);
  AppendBigEndian(static_cast<uint64_t>(version), 8, aad);
  return aad;
}

std::string EncryptSnapshotState(const SubjectKey& key, std::string_view aad,
                                 std::string_view plaintext) {
  return Seal(key.data(), aad, Bytes(plaintext), plaintext.size());
}

bool DecryptSnapshotState(const SubjectKey& key, std::string_view aad,
                          std::string_view ciphertext, std::string* plaintext) {
  if (ciphertext.size() < kNonceSize + kTagSize) return false;
  plaintext->resize(ciphertext.size() - kNonceSize - kTagSize);
  return Open(key.data(), aad, ciphertext,
              reinterpret_cast<unsigned char*>(plaintext->data()));
}

}  // namespace eventstore::crypto::internal
