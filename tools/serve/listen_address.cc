#include "tools/serve/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace eventstore::tools {
namespace {

absl::Status BadListen(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--listen: '", std::string(text), "' ", std::string(why),
                   " (expected HOST:PORT, e.g. 127.0.0.1:", kDefaultServePort,
                   " or [::1]:0)"));
}

bool IsIpv4(const std::string& host, in_addr* out) {
  return inet_pton(AF_INET, host.c_str(), out) == 1;
}

bool IsIpv6(const std::string& host, in6_addr* out) {
  return inet_pton(AF_INET6, host.c_str(), out) == 1;
}

}  // namespace

bool ListenAddress::IsLoopback() const {
  if (absl::AsciiStrToLower(host) == "localhost") return true;
  in_addr v4;
  if (IsIpv4(host, &v4)) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (IsIpv6(host, &v6)) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // An IPv4-mapped loopback address (::ffff:127.0.0.1).
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

std::string ListenAddress::ToString() const {
  if (host.find(':') != std::string::npos) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return BadListen(text, "has no port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') {
      return BadListen(text, "has an unclosed '['");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return BadListen(text, "needs brackets around an IPv6 address");
  }
  if (host.empty()) return BadListen(text, "has no host");
  ListenAddress address;
  address.host = std::string(host);
  in_addr v4;
  in6_addr v6;
  if (absl::AsciiStrToLower(address.host) != "localhost" &&
      !IsIpv4(address.host, &v4) && !IsIpv6(address.host, &v6)) {
    return BadListen(text,
                     "needs an IP address or localhost as host (names are not "
                     "resolved)");
  }
  int port = -1;
  if (port_text.empty() || !absl::SimpleAtoi(std::string(port_text), &port) ||
      port < 0 || port > 65535 || port_text.front() == '+' ||
      port_text.front() == '-') {
    return BadListen(text, "needs a port from 0 to 65535");
  }
  address.port = port;
  return address;
}

}  // namespace eventstore::tools
