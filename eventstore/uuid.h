// Uuid: the 128-bit identifier of an event.
//
//   eventstore::Uuid id = eventstore::Uuid::Generate();
//   absl::StatusOr<eventstore::Uuid> parsed =
//       eventstore::Uuid::Parse("0190a3c4-1c2b-7def-8abc-0123456789ab");
//
// Generated ids are version 7 (RFC 9562): a millisecond timestamp, then a
// 42-bit counter (section 6.2, method 1: seeded randomly each millisecond,
// plus one for each further id in it), then 32 random bits. So the ids one
// process generates strictly increase (compared as bytes, with operator<, or
// as text), across threads too, and the stores' unique index on event ids
// grows at its end. Ids from different processes are unique but ordered only
// by their millisecond.

#ifndef EVENTSTORE_UUID_H_
#define EVENTSTORE_UUID_H_

#include <array>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace eventstore {

class Uuid {
 public:
  // The nil UUID (all zero bits). An EventData with a nil id gets a generated
  // one when appended.
  constexpr Uuid() = default;

  // A new time-ordered (version 7) UUID, greater than every id generated
  // before it in this process, even when the clock stands still or steps
  // back (the timestamp then stays at the last one used until the clock
  // passes it). Thread-safe.
  static Uuid Generate();

  // Parses the canonical 36-character form (8-4-4-4-12 hex digits, either
  // case). Anything else is kInvalidArgument.
  static absl::StatusOr<Uuid> Parse(std::string_view text);

  // From exactly 16 bytes in network order; anything else is
  // kInvalidArgument.
  static absl::StatusOr<Uuid> FromBytes(std::string_view bytes);

  bool IsNil() const;
  // The canonical lower-case 36-character form.
  std::string ToString() const;
  // The 16 bytes in network order.
  std::string_view bytes() const {
    return std::string_view(reinterpret_cast<const char*>(bytes_.data()),
                            bytes_.size());
  }

  friend bool operator==(const Uuid& a, const Uuid& b) {
    return a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const Uuid& a, const Uuid& b) { return !(a == b); }
  friend bool operator<(const Uuid& a, const Uuid& b) {
    return a.bytes_ < b.bytes_;
  }
  template <typename H>
  friend H AbslHashValue(H h, const Uuid& id) {
    return H::combine(std::move(h), id.bytes_);
  }
  friend std::ostream& operator<<(std::ostream& os, const Uuid& id) {
    return os << id.ToString();
  }

 private:
  std::array<uint8_t, 16> bytes_{};
};

}  // namespace eventstore

#endif  // EVENTSTORE_UUID_H_
