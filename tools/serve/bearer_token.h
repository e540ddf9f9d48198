// BearerToken: the secret `eventstore serve --token-file FILE` requires in
// `Authorization: Bearer <token>` on every path but /healthz.
//
//   absl::StatusOr<BearerToken> token = BearerToken::FromFile(path);
//   if (!token.ok()) return token.status();
//   bool allowed =
//   token->Authorizes(request.get_header_value("Authorization"));
//
// The token is kept only as its SHA-256 digest; Authorizes compares digests
// with OpenSSL's CRYPTO_memcmp, so the time taken says nothing about how
// much of the token, or of its length, a guess got right.
//
// Thread safety: immutable after construction; Authorizes is thread-safe.

#ifndef EVENTSTORE_TOOLS_SERVE_BEARER_TOKEN_H_
#define EVENTSTORE_TOOLS_SERVE_BEARER_TOKEN_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace eventstore::tools {

class BearerToken {
 public:
  // The file's content with leading and trailing whitespace removed.
  // kInvalidArgument naming --token-file when the file cannot be read or
  // the token is empty or holds whitespace or control characters (it must
  // fit in one header line). The message never shows the file's content.
  static absl::StatusOr<BearerToken> FromFile(const std::string& path);
  // For tests: `token` as given (the same checks, without the file).
  static absl::StatusOr<BearerToken> FromString(std::string_view token);

  // True when `authorization` (an Authorization header's value) is
  // "Bearer <token>" (the scheme case-insensitive, RFC 6750) with this
  // token.
  bool Authorizes(std::string_view authorization) const;

 private:
  using Digest = std::array<uint8_t, 32>;
  explicit BearerToken(const Digest& digest) : digest_(digest) {}
  static Digest Sha256(std::string_view text);

  Digest digest_;
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_BEARER_TOKEN_H_
