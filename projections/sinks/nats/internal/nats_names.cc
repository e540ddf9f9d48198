#include "projections/sinks/nats/internal/nats_names.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "projections/sinks/nats/nats_outbox_sink.h"

namespace eventstore {
namespace internal {
namespace {

// Debian's Abseil has its own absl::string_view, which its functions take
// and std::string_view does not convert to.
absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

std::string PercentDecoded(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    int value = 0;
    if (s[i] == '%' && i + 2 < s.size() &&
        absl::SimpleHexAtoi(ToAbsl(s.substr(i + 1, 2)), &value)) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::string NatsSubjectProblem(std::string_view subject) {
  if (subject.empty()) return "it is empty";
  for (absl::string_view token : absl::StrSplit(ToAbsl(subject), '.')) {
    if (token.empty()) {
      return "it has an empty token (a leading, trailing or doubled '.')";
    }
    for (char c : token) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u == 0x7f) {
        return "it holds whitespace or a control character";
      }
      if (c == '*' || c == '>') return "it holds a wildcard ('*' or '>')";
    }
  }
  return "";
}

bool IsNatsHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == ':') return false;
  }
  return true;
}

bool IsNatsHeaderValue(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) ==
         std::string_view::npos;
}

bool IsNatsStreamName(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' &&
        c != '_') {
      return false;
    }
  }
  return true;
}

std::vector<std::pair<size_t, size_t>> NatsUrlSecretSpans(
    std::string_view urls) {
  std::vector<std::pair<size_t, size_t>> spans;
  size_t start = 0;
  while (start <= urls.size()) {
    size_t comma = urls.find(',', start);
    if (comma == std::string_view::npos) comma = urls.size();
    const std::string_view url = urls.substr(start, comma - start);
    size_t authority = url.find("://");
    authority = authority == std::string_view::npos ? 0 : authority + 3;
    size_t path = url.find_first_of("/?#", authority);
    if (path == std::string_view::npos) path = url.size();
    const size_t at = url.rfind('@', path);
    if (at != std::string_view::npos && at >= authority) {
      const size_t colon = url.find(':', authority);
      // user:password@ masks the password; token@ (no ':') the token.
      const size_t secret =
          colon != std::string_view::npos && colon < at ? colon + 1 : authority;
      if (at > secret) spans.emplace_back(start + secret, start + at);
    }
    start = comma + 1;
  }
  return spans;
}

NatsCredentialMasker::NatsCredentialMasker(std::string_view url) {
  for (const auto& [begin, end] : NatsUrlSecretSpans(url)) {
    std::string secret(url.substr(begin, end - begin));
    secrets_.push_back(PercentDecoded(secret));
    secrets_.push_back(std::move(secret));
  }
}

std::string NatsCredentialMasker::Mask(std::string_view text) const {
  std::string out(text);
  for (const std::string& secret : secrets_) {
    if (secret.empty()) continue;
    out = absl::StrReplaceAll(out, {{secret, kNatsMask}});
  }
  return out;
}

}  // namespace internal

std::string MaskNatsUrl(std::string_view url) {
  std::string out(url);
  const std::vector<std::pair<size_t, size_t>> spans =
      internal::NatsUrlSecretSpans(url);
  // From the last, so that earlier offsets stay valid.
  for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
    out.replace(it->first, it->second - it->first, internal::kNatsMask);
  }
  return out;
}

}  // namespace eventstore
