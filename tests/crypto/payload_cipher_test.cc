// PayloadSealer and PayloadOpener write and read exactly libsodium's
// XChaCha20-Poly1305-IETF (so payloads stored before them, and by any other
// libsodium program, still open), with unique nonces.

#include "eventstore/crypto/payload_cipher.h"

#include <sodium.h>

#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace eventstore::crypto::internal {
namespace {

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string Aad(const Uuid& id, std::string_view subject) {
  std::string aad(id.bytes());
  aad.append(subject);
  return aad;
}

// What crypto_aead_xchacha20poly1305_ietf_decrypt makes of `sealed`;
// nullopt when it does not authenticate.
std::optional<std::string> LibsodiumOpen(const SubjectKey& key, const Uuid& id,
                                         std::string_view subject,
                                         std::string_view sealed) {
  if (sealed.size() < kNonceSize + kTagSize) return std::nullopt;
  std::string out(sealed.size() - kNonceSize - kTagSize, '\0');
  const std::string aad = Aad(id, subject);
  unsigned long long written = 0;  // NOLINT(runtime/int)
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &written, nullptr,
          Bytes(sealed) + kNonceSize, sealed.size() - kNonceSize, Bytes(aad),
          aad.size(), Bytes(sealed), key.data()) != 0) {
    return std::nullopt;
  }
  return out;
}

// What crypto_aead_xchacha20poly1305_ietf_encrypt makes, with a random
// nonce, in the stored format.
std::string LibsodiumSeal(const SubjectKey& key, const Uuid& id,
                          std::string_view subject, std::string_view plain) {
  std::string out(kNonceSize + plain.size() + kTagSize, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, kNonceSize);
  const std::string aad = Aad(id, subject);
  unsigned long long written = 0;  // NOLINT(runtime/int)
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + kNonceSize, &written, Bytes(plain), plain.size(), Bytes(aad),
      aad.size(), nullptr, nonce, key.data());
  return out;
}

TEST(PayloadCipherTest, SealedPayloadsOpenWithLibsodiumsXChaCha20) {
  std::shared_ptr<const SubjectKey> alice = SubjectKey::Generate();
  std::shared_ptr<const SubjectKey> bob = SubjectKey::Generate();
  PayloadSealer sealer;
  // Keys alternating, sizes from empty to several blocks.
  for (int i = 0; i < 40; ++i) {
    const SubjectKey& key = i % 3 == 0 ? *bob : *alice;
    const std::string subject = i % 3 == 0 ? "bob" : "alice";
    const std::string plain(static_cast<size_t>(i * 37), static_cast<char>(i));
    const Uuid id = Uuid::Generate();
    const std::string sealed = sealer.Seal(key, id, subject, plain);
    ASSERT_EQ(sealed.size(), plain.size() + kNonceSize + kTagSize);
    EXPECT_EQ(LibsodiumOpen(key, id, subject, sealed), plain) << i;
    // Bound to the event and the subject.
    EXPECT_EQ(LibsodiumOpen(key, Uuid::Generate(), subject, sealed),
              std::nullopt);
    EXPECT_EQ(LibsodiumOpen(key, id, subject + "x", sealed), std::nullopt);
  }
}

TEST(PayloadCipherTest, OpenerOpensLibsodiumsPayloadsAndRefusesAlteredOnes) {
  std::shared_ptr<const SubjectKey> alice = SubjectKey::Generate();
  std::shared_ptr<const SubjectKey> bob = SubjectKey::Generate();
  PayloadOpener opener;
  PayloadSealer sealer;
  std::string plain;
  for (int i = 0; i < 30; ++i) {
    const SubjectKey& key = i % 2 == 0 ? *alice : *bob;
    const Uuid id = Uuid::Generate();
    const std::string text = "payload-" + std::to_string(i);
    // Payloads of both writers, interleaved, so that the opener's subkey
    // changes with key and nonce prefix.
    const std::string sealed = i % 4 < 2 ? LibsodiumSeal(key, id, "s", text)
                                         : sealer.Seal(key, id, "s", text);
    ASSERT_TRUE(opener.Open(key, id, "s", sealed, &plain)) << i;
    EXPECT_EQ(plain, text);
    // The other subject's key, another id, a flipped bit: refused.
    EXPECT_FALSE(
        opener.Open(i % 2 == 0 ? *bob : *alice, id, "s", sealed, &plain));
    EXPECT_FALSE(opener.Open(key, Uuid::Generate(), "s", sealed, &plain));
    for (size_t at : {size_t{0}, size_t{17}, kNonceSize, sealed.size() - 1}) {
      std::string altered = sealed;
      altered[at] = static_cast<char>(altered[at] ^ 1);
      EXPECT_FALSE(opener.Open(key, id, "s", altered, &plain)) << i << at;
    }
    // And it still opens the original after a refusal.
    ASSERT_TRUE(opener.Open(key, id, "s", sealed, &plain));
  }
  EXPECT_FALSE(opener.Open(*alice, Uuid::Generate(), "s",
                           std::string(kNonceSize + kTagSize - 1, 'x'),
                           &plain));
}

TEST(PayloadCipherTest, NoncesAreUniqueWithinAndAcrossSealers) {
  std::shared_ptr<const SubjectKey> key = SubjectKey::Generate();
  absl::flat_hash_set<std::string> nonces;
  absl::flat_hash_set<std::string> prefixes;
  for (int s = 0; s < 50; ++s) {
    PayloadSealer sealer;
    for (int i = 0; i < 200; ++i) {
      const std::string sealed = sealer.Seal(*key, Uuid::Generate(), "s", "x");
      EXPECT_TRUE(nonces.insert(sealed.substr(0, kNonceSize)).second);
      prefixes.insert(sealed.substr(0, 16));
    }
  }
  EXPECT_EQ(nonces.size(), 50u * 200u);
  // One random prefix per sealer.
  EXPECT_EQ(prefixes.size(), 50u);
}

}  // namespace
}  // namespace eventstore::crypto::internal
