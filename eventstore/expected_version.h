// ExpectedVersion: the optimistic-concurrency condition of an append.
//
//   store.Append("order-1", ExpectedVersion::NoStream(), events);
//   store.Append("order-1", ExpectedVersion::Exactly(3), more);
//
// Stream versions start at 1; an absent stream has version 0. An append
// whose condition does not hold fails with kAborted (see errors.h).

#ifndef EVENTSTORE_EXPECTED_VERSION_H_
#define EVENTSTORE_EXPECTED_VERSION_H_

#include <cstdint>
#include <ostream>
#include <string>

namespace eventstore {

class ExpectedVersion {
 public:
  enum class Kind { kAny, kNoStream, kStreamExists, kExactly };

  // No check: append whatever the stream's version.
  static constexpr ExpectedVersion Any() { return {Kind::kAny, 0}; }
  // The stream must not exist (version 0).
  static constexpr ExpectedVersion NoStream() { return {Kind::kNoStream, 0}; }
  // The stream must have at least one event.
  static constexpr ExpectedVersion StreamExists() {
    return {Kind::kStreamExists, 0};
  }
  // The stream's version must be exactly `version`. Exactly(0) is the same
  // condition as NoStream().
  static constexpr ExpectedVersion Exactly(int64_t version) {
    return {Kind::kExactly, version};
  }

  // Decodes the wire form of ToWire(). Values below -3 decode as Any().
  static ExpectedVersion FromWire(int64_t wire);

  Kind kind() const { return kind_; }
  // The exact version; meaningful only for kExactly.
  int64_t version() const { return version_; }

  // True when a stream at `current` version satisfies the condition.
  bool Matches(int64_t current) const;

  // -1 any, -2 no stream, -3 stream exists, else the exact version (the form
  // stored in the kAborted payload).
  int64_t ToWire() const;
  // "any", "no stream", "stream exists" or the number.
  std::string ToString() const;

  friend bool operator==(ExpectedVersion a, ExpectedVersion b) {
    return a.kind_ == b.kind_ && a.version_ == b.version_;
  }
  friend bool operator!=(ExpectedVersion a, ExpectedVersion b) {
    return !(a == b);
  }
  friend std::ostream& operator<<(std::ostream& os, ExpectedVersion v) {
    return os << v.ToString();
  }

 private:
  constexpr ExpectedVersion(Kind kind, int64_t version)
      : kind_(kind), version_(version) {}

  Kind kind_;
  int64_t version_;
};

}  // namespace eventstore

#endif  // EVENTSTORE_EXPECTED_VERSION_H_
