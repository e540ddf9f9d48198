// What NATS accepts as subjects, header names and values and stream names,
// and the credentials of NATS URLs (for masking). Internal to eventstore::
// nats.

#ifndef EVENTSTORE_PROJECTIONS_SINKS_NATS_INTERNAL_NATS_NAMES_H_
#define EVENTSTORE_PROJECTIONS_SINKS_NATS_INTERNAL_NATS_NAMES_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eventstore::internal {

// What replaces a credential.
inline constexpr char kNatsMask[] = "***";

// Why `subject` is not one NATS takes to publish to: tokens separated by
// '.', none empty, no whitespace or control characters, no wildcards ('*',
// '>'). Empty when it is valid.
std::string NatsSubjectProblem(std::string_view subject);

// A header name NATS carries: printable ASCII, no ':' or space.
bool IsNatsHeaderName(std::string_view name);

// A header value NATS carries: no CR, LF or NUL (which would end it, or
// inject another header).
bool IsNatsHeaderValue(std::string_view value);

// A JetStream stream name: letters, digits, '-' and '_', 1 to 255 bytes.
bool IsNatsStreamName(std::string_view name);

// For each URL of a comma-separated list: [begin, end) of its userinfo's
// secret (the password of user:password@, or a whole token@), if any.
std::vector<std::pair<size_t, size_t>> NatsUrlSecretSpans(
    std::string_view urls);

// Replaces the secrets of one URL (list) in any text, as written and
// %-decoded: for libnats's error texts, which may quote them.
class NatsCredentialMasker {
 public:
  explicit NatsCredentialMasker(std::string_view url);
  std::string Mask(std::string_view text) const;

 private:
  std::vector<std::string> secrets_;
};

}  // namespace eventstore::internal

#endif  // EVENTSTORE_PROJECTIONS_SINKS_NATS_INTERNAL_NATS_NAMES_H_
