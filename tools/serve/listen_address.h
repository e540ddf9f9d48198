// ListenAddress: where `eventstore serve` listens, parsed from --listen
// HOST:PORT, and whether it is a loopback address (the only kind served
// without a token unless --insecure).
//
//   absl::StatusOr<ListenAddress> address = ParseListenAddress("127.0.0.1:0");
//   if (!address.ok()) return address.status();
//   bool local = address->IsLoopback();

#ifndef EVENTSTORE_TOOLS_SERVE_LISTEN_ADDRESS_H_
#define EVENTSTORE_TOOLS_SERVE_LISTEN_ADDRESS_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace eventstore::tools {

// The port `eventstore serve` listens on when --listen is not given.
inline constexpr int kDefaultServePort = 8113;

struct ListenAddress {
  // An IPv4 or IPv6 literal (without brackets), or "localhost".
  std::string host;
  // 0: any free port (the server prints the one it bound).
  int port = kDefaultServePort;

  // True for 127.0.0.0/8, ::1, ::ffff:127.x.y.z and "localhost"; false for
  // every other address, wildcards (0.0.0.0, ::) included.
  bool IsLoopback() const;
  // "HOST:PORT", IPv6 in brackets ("[::1]:8113").
  std::string ToString() const;
};

// Parses "HOST:PORT" ("127.0.0.1:8113", "[::1]:0", "localhost:9000",
// "0.0.0.0:8113"). The host must be an IP literal or "localhost" (no name
// is resolved, so that the loopback check holds for what is bound); the
// port a whole number from 0 to 65535. kInvalidArgument naming --listen
// otherwise.
absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_LISTEN_ADDRESS_H_
