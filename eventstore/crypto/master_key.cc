#include "eventstore/crypto/master_key.h"

#include <sodium.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <new>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/crypto/sodium_init.h"

namespace eventstore::crypto {
namespace {

// The message hashed (keyed by the master key) into its id.
constexpr std::string_view kIdContext = "eventstore-master-key-id-v1";
constexpr size_t kIdBytes = 8;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

// Wipes a std::string that held key text before it is freed.
class WipedString {
 public:
  WipedString() = default;
  WipedString(const WipedString&) = delete;
  WipedString& operator=(const WipedString&) = delete;
  ~WipedString() {
    if (!text.empty()) sodium_memzero(text.data(), text.size());
  }
  std::string text;
};

}  // namespace

// The key bytes in sodium_malloc'd memory (guarded pages, locked against
// swapping), wiped by sodium_free.
class MasterKey::Secret {
 public:
  Secret() : bytes_(static_cast<uint8_t*>(sodium_malloc(kSize))) {
    if (bytes_ == nullptr) throw std::bad_alloc();
  }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  ~Secret() { sodium_free(bytes_); }

  uint8_t* data() { return bytes_; }
  const uint8_t* data() const { return bytes_; }

 private:
  uint8_t* const bytes_;
};

MasterKey::MasterKey(std::shared_ptr<const Secret> secret)
    : secret_(std::move(secret)) {
  uint8_t id[kIdBytes];
  crypto_generichash(id, sizeof id,
                     reinterpret_cast<const uint8_t*>(kIdContext.data()),
                     kIdContext.size(), secret_->data(), kSize);
  char hex[2 * kIdBytes + 1];
  sodium_bin2hex(hex, sizeof hex, id, sizeof id);
  id_ = std::make_shared<const std::string>(hex);
}

MasterKey MasterKey::Generate() {
  internal::EnsureSodium();
  auto secret = std::make_shared<Secret>();
  randombytes_buf(secret->data(), kSize);
  return MasterKey(std::move(secret));
}

absl::StatusOr<MasterKey> MasterKey::FromHex(std::string_view hex) {
  internal::EnsureSodium();
  const std::string_view text = Trim(hex);
  const absl::Status not_a_key = absl::InvalidArgumentError(
      "not a master key: a master key is 64 hexadecimal digits (32 bytes; "
      "`eventstore keygen` writes one)");
  if (text.size() != 2 * kSize) return not_a_key;
  auto secret = std::make_shared<Secret>();
  size_t length = 0;
  const char* end = nullptr;
  if (sodium_hex2bin(secret->data(), kSize, text.data(), text.size(), nullptr,
                     &length, &end) != 0 ||
      length != kSize || end != text.data() + text.size()) {
    return not_a_key;
  }
  return MasterKey(std::move(secret));
}

absl::StatusOr<MasterKey> MasterKey::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    if (error == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("master key file '", path, "' does not exist"));
    }
    return absl::PermissionDeniedError(absl::StrCat(
        "master key file '", path, "' cannot be read: ", std::strerror(error)));
  }
  WipedString content;
  // A key file is 64 digits and a newline; read a little more to tell a
  // longer file from a key without keeping all of it.
  content.text.resize(4096);
  in.read(content.text.data(),
          static_cast<std::streamsize>(content.text.size()));
  content.text.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) {
    return absl::PermissionDeniedError(
        absl::StrCat("master key file '", path, "' cannot be read"));
  }
  absl::StatusOr<MasterKey> key = FromHex(content.text);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("master key file '", path,
                     "' does not hold a master key: it must hold 64 "
                     "hexadecimal digits (32 bytes; `eventstore keygen` "
                     "writes one)"));
  }
  return key;
}

absl::StatusOr<MasterKey> MasterKey::FromEnvironment(
    const std::string& variable) {
  const char* value = std::getenv(variable.c_str());
  if (value == nullptr) {
    return absl::NotFoundError(absl::StrCat("environment variable ", variable,
                                            " (the master key) is not set"));
  }
  absl::StatusOr<MasterKey> key = FromHex(value);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("environment variable ", variable,
                     " does not hold a master key: it must hold 64 "
                     "hexadecimal digits (32 bytes; `eventstore keygen` "
                     "writes one)"));
  }
  return key;
}

std::string MasterKey::ToHex() const {
  char hex[2 * kSize + 1];
  sodium_bin2hex(hex, sizeof hex, secret_->data(), kSize);
  std::string out(hex, 2 * kSize);
  sodium_memzero(hex, sizeof hex);
  return out;
}

absl::Span<const uint8_t> MasterKey::bytes() const {
  return absl::Span<const uint8_t>(secret_->data(), kSize);
}

}  // namespace eventstore::crypto
