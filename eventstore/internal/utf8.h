// Strict UTF-8 checks (RFC 3629), shared by every validation of text that a
// store keeps: stream names and metadata strings.

#ifndef EVENTSTORE_INTERNAL_UTF8_H_
#define EVENTSTORE_INTERNAL_UTF8_H_

#include <cstddef>
#include <optional>
#include <string_view>

namespace eventstore::internal {

// Length of the well-formed UTF-8 sequence starting at s[i] (no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 when there is none.
// REQUIRES: i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

// The offset of the first byte of `s` that does not start a well-formed
// UTF-8 sequence; nullopt when all of `s` is valid UTF-8.
std::optional<size_t> FirstInvalidUtf8(std::string_view s);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_UTF8_H_
