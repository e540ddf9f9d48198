#include "tools/serve/bearer_token.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace eventstore::tools {

absl::StatusOr<BearerToken> BearerToken::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--token-file: cannot read '", path, "'"));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--token-file: cannot read '", path, "'"));
  }
  absl::StatusOr<BearerToken> token = FromString(content.str());
  if (!token.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--token-file: '", path, "' ", token.status().message()));
  }
  return token;
}

absl::StatusOr<BearerToken> BearerToken::FromString(std::string_view token) {
  const absl::string_view trimmed =
      absl::StripAsciiWhitespace(absl::string_view(token.data(), token.size()));
  if (trimmed.empty()) return absl::InvalidArgumentError("holds no token");
  for (const char c : trimmed) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(
          "holds a token with a space or control character (the token must "
          "be one word)");
    }
  }
  return BearerToken(Sha256(std::string_view(trimmed.data(), trimmed.size())));
}

bool BearerToken::Authorizes(std::string_view authorization) const {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(
          absl::string_view(authorization.data(), kScheme.size()),
          absl::string_view(kScheme.data(), kScheme.size()))) {
    return false;
  }
  const absl::string_view given = absl::StripAsciiWhitespace(
      absl::string_view(authorization.data() + kScheme.size(),
                        authorization.size() - kScheme.size()));
  const Digest digest = Sha256(std::string_view(given.data(), given.size()));
  return CRYPTO_memcmp(digest.data(), digest_.data(), digest.size()) == 0;
}

BearerToken::Digest BearerToken::Sha256(std::string_view text) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(),
         digest.data());
  return digest;
}

}  // namespace eventstore::tools
