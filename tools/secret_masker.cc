#include "tools/secret_masker.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace eventstore::tools {
namespace {

constexpr std::string_view kPasswordKey = "password=";
// Characters that end a word when looking for credential shapes in text.
constexpr std::string_view kWordEnd = " \t\r\n\"'`<>()";
// Characters that end a password= value.
constexpr std::string_view kValueEnd = "& \t\r\n\"'`";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
        HexValue(s[i + 2]) >= 0) {
      out.push_back(
          static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// `s` with every byte but RFC 3986's unreserved ones as %XX.
std::string PercentEncode(std::string_view s, bool upper) {
  const char* const hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0xf]);
    }
  }
  return out;
}

// `s` as it appears inside a JSON string.
std::string JsonEscaped(std::string_view s) {
  return absl::StrReplaceAll(std::string(s), {{"\\", "\\\\"}, {"\"", "\\\""}});
}

// Where the part after the scheme starts: after the first ':' when "//" or
// "/" follows it ("postgresql://", "postgres:/"), else after a "//" before
// any ':' ("postgresql//"), else after the colon of "postgres...:", else 0.
// `has_scheme` tells whether one was found. Only the first ':' counts: a
// password may hold ":/".
size_t AfterScheme(std::string_view s, bool* has_scheme) {
  *has_scheme = true;
  const size_t colon = s.find(':');
  if (colon != std::string_view::npos) {
    if (s.compare(colon, 3, "://") == 0) return colon + 3;
    if (s.compare(colon, 2, ":/") == 0) return colon + 2;
  }
  const size_t slashes = s.find("//");
  if (slashes != std::string_view::npos && slashes < colon) {
    return slashes + 2;
  }
  // "postgresql:app:pw..." with no slash at all.
  if (colon != std::string_view::npos &&
      absl::StartsWithIgnoreCase(std::string(s.substr(0, colon)), "postgres")) {
    return colon + 1;
  }
  *has_scheme = false;
  return 0;
}

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isdigit(static_cast<unsigned char>(c));
  });
}

// The value of each password= in `s` (key matched in any case), with its
// quotes removed when quoted.
std::vector<std::pair<size_t, size_t>> PasswordValues(std::string_view s) {
  std::vector<std::pair<size_t, size_t>> out;  // (begin, length)
  const std::string lower = absl::AsciiStrToLower(std::string(s));
  for (size_t pos = lower.find(kPasswordKey); pos != std::string::npos;
       pos = lower.find(kPasswordKey, pos + 1)) {
    size_t begin = pos + kPasswordKey.size();
    size_t end;
    if (begin < s.size() && (s[begin] == '\'' || s[begin] == '"')) {
      const char quote = s[begin];
      ++begin;
      end = s.find(quote, begin);
    } else {
      end = s.find_first_of(kValueEnd, begin);
    }
    if (end == std::string_view::npos) end = s.size();
    out.emplace_back(begin, end - begin);
  }
  return out;
}

}  // namespace

std::vector<std::string> CredentialsIn(std::string_view arg) {
  std::vector<std::string> out;
  const auto add = [&](std::string_view secret) {
    if (!secret.empty() && secret != kMask) out.emplace_back(secret);
  };
  for (const auto& [begin, length] : PasswordValues(arg)) {
    add(arg.substr(begin, length));
  }
  bool has_scheme = false;
  const size_t start = AfterScheme(arg, &has_scheme);
  // user:password@host, however mangled: from the first ':' after the
  // scheme to each '@' after it (a password may hold '@', '/', ':').
  const size_t last_at = arg.rfind('@');
  const size_t colon = arg.find(':', start);
  if (last_at != std::string_view::npos && colon < last_at) {
    for (size_t at = arg.find('@', colon + 1);
         at != std::string_view::npos && at <= last_at;
         at = arg.find('@', at + 1)) {
      add(arg.substr(colon + 1, at - colon - 1));
    }
    // A user with a ':' of its own (`a:b:pw@`), or the scheme's colon
    // taken for the user's (`postgres:app:pw@`).
    for (size_t c = arg.find(':', colon + 1); c < last_at;
         c = arg.find(':', c + 1)) {
      add(arg.substr(c + 1, last_at - c - 1));
    }
  }
  // A URL whose '@' is missing: libpq takes `app:pw` for host and port, so
  // a "port" that is not a number is a password.
  if (has_scheme) {
    size_t end = arg.find_first_of("/?#", start);
    if (end == std::string_view::npos) end = arg.size();
    std::string_view authority = arg.substr(start, end - start);
    const size_t at = authority.rfind('@');
    if (at != std::string_view::npos) authority.remove_prefix(at + 1);
    size_t host_begin = 0;
    while (host_begin <= authority.size()) {
      size_t host_end = authority.find(',', host_begin);
      if (host_end == std::string_view::npos) host_end = authority.size();
      std::string_view host =
          authority.substr(host_begin, host_end - host_begin);
      if (!host.empty() && host.front() == '[') {  // [::1]:5432
        const size_t close = host.find(']');
        host.remove_prefix(close == std::string_view::npos ? host.size()
                                                           : close + 1);
      }
      const size_t colon = host.find(':');
      if (colon != std::string_view::npos) {
        const std::string_view port = host.substr(colon + 1);
        if (!AllDigits(port)) {
          add(port);
          // Where the password ends is anybody's guess: all the rest.
          const size_t rest = static_cast<size_t>(port.data() - arg.data());
          add(arg.substr(rest));
        }
      }
      host_begin = host_end + 1;
    }
  }
  return out;
}

std::string MaskCredentialShapes(std::string_view text) {
  std::string out(text);
  // user:password@ in each word.
  size_t word_begin = 0;
  while (word_begin < out.size()) {
    size_t word_end = out.find_first_of(kWordEnd, word_begin);
    if (word_end == std::string::npos) word_end = out.size();
    const std::string_view word(out.data() + word_begin, word_end - word_begin);
    const size_t last_at = word.rfind('@');
    if (last_at != std::string_view::npos) {
      bool has_scheme = false;
      const size_t start = AfterScheme(word, &has_scheme);
      const size_t colon =
          last_at >= start ? word.find(':', start) : std::string_view::npos;
      if (colon != std::string_view::npos && colon < last_at &&
          word.substr(colon + 1, last_at - colon - 1) != kMask) {
        const size_t from = word_begin + colon + 1;
        const size_t length = last_at - colon - 1;
        out.replace(from, length, kMask);
        word_end = word_end - length + (sizeof(kMask) - 1);
      }
    }
    word_begin = word_end + 1;
  }
  // password=..., from the last so that earlier offsets stay valid.
  std::vector<std::pair<size_t, size_t>> values = PasswordValues(out);
  for (auto it = values.rbegin(); it != values.rend(); ++it) {
    if (std::string_view(out).substr(it->first, it->second) == kMask) continue;
    out.replace(it->first, it->second, kMask);
  }
  return out;
}

void SecretMasker::AddSecret(std::string_view secret) {
  if (secret.empty() || secret == kMask) return;
  const std::string decoded = PercentDecode(secret);
  for (std::string form :
       {std::string(secret), decoded, PercentEncode(decoded, true),
        PercentEncode(decoded, false), JsonEscaped(secret),
        JsonEscaped(decoded)}) {
    if (form.size() < kMinSecretLength) continue;
    if (std::find(secrets_.begin(), secrets_.end(), form) != secrets_.end()) {
      continue;
    }
    secrets_.push_back(std::move(form));
  }
  Sort();
}

void SecretMasker::AddArgument(std::string_view arg) {
  std::vector<std::string> credentials = CredentialsIn(arg);
  if (credentials.empty()) return;
  std::sort(credentials.begin(), credentials.end(),
            [](const std::string& a, const std::string& b) {
              return a.size() > b.size();
            });
  std::string masked(arg);
  for (const std::string& c : credentials) {
    AddSecret(c);
    masked = absl::StrReplaceAll(masked, {{c, kMask}});
  }
  masked = MaskCredentialShapes(masked);
  if (masked != arg) arguments_.emplace_back(std::string(arg), masked);
  Sort();
}

void SecretMasker::Sort() {
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const std::string& a, const std::string& b) {
                     return a.size() > b.size();
                   });
  std::stable_sort(arguments_.begin(), arguments_.end(),
                   [](const auto& a, const auto& b) {
                     return a.first.size() > b.first.size();
                   });
}

std::string SecretMasker::Mask(std::string_view text) const {
  std::string out(text);
  for (const auto& [arg, masked] : arguments_) {
    out = absl::StrReplaceAll(out, {{arg, masked}});
  }
  for (const std::string& secret : secrets_) {
    out = absl::StrReplaceAll(out, {{secret, kMask}});
  }
  return MaskCredentialShapes(out);
}

MaskingStreamBuf::~MaskingStreamBuf() {
  Drain();
  target_->pubsync();
}

bool MaskingStreamBuf::Drain() {
  if (line_.empty()) return true;
  const std::string masked = masker_->Mask(line_);
  line_.clear();
  const std::streamsize n = static_cast<std::streamsize>(masked.size());
  return target_->sputn(masked.data(), n) == n;
}

int MaskingStreamBuf::overflow(int c) {
  if (traits_type::eq_int_type(c, traits_type::eof())) {
    return traits_type::not_eof(c);
  }
  line_.push_back(traits_type::to_char_type(c));
  if (line_.back() == '\n' || line_.back() == '\r') {
    if (!Drain()) return traits_type::eof();
  }
  return c;
}

std::streamsize MaskingStreamBuf::xsputn(const char* s, std::streamsize n) {
  line_.append(s, static_cast<size_t>(n));
  const size_t last = line_.find_last_of("\r\n");
  if (last != std::string::npos) {
    std::string rest = line_.substr(last + 1);
    line_.resize(last + 1);
    const bool ok = Drain();
    line_ = std::move(rest);
    if (!ok) return 0;
  }
  return n;
}

int MaskingStreamBuf::sync() {
  if (!Drain()) return -1;
  return target_->pubsync();
}

}  // namespace eventstore::tools
