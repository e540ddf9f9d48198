// The timestamp and counter of the version 7 UUIDs one process generates
// (RFC 9562 section 6.2, method 1: a fixed-length dedicated counter).
//
// Each new millisecond seeds a 42-bit counter with random bits (its top bit
// zero, the RFC's rollover guard); each further id in the same millisecond
// takes the counter plus one. So the (timestamp, counter) pairs handed out
// strictly increase, whatever the clock does:
//   - a clock that stands still or goes backwards keeps the last timestamp
//     and counts on, until the clock passes it again;
//   - a counter that would pass its 42 bits borrows the next millisecond
//     (the timestamp runs at most that far ahead of the clock).
//
// Example:
//   UuidV7Sequence sequence;
//   UuidV7Sequence::Stamp s = sequence.Next(now_ms, random_bits);
//
// Not thread-safe: Uuid::Generate holds one process-wide instance under a
// mutex. Kept apart from Uuid so tests can drive the clock.

#ifndef EVENTSTORE_INTERNAL_UUID_V7_SEQUENCE_H_
#define EVENTSTORE_INTERNAL_UUID_V7_SEQUENCE_H_

#include <cstdint>

namespace eventstore::internal {

class UuidV7Sequence {
 public:
  // Width of the counter: rand_a's 12 bits and the first 30 bits of rand_b.
  static constexpr int kCounterBits = 42;
  static constexpr uint64_t kMaxCounter = (uint64_t{1} << kCounterBits) - 1;
  // A fresh counter is a random value up to here (top bit clear), so at
  // least 2^41 ids fit in each millisecond before it borrows the next.
  static constexpr uint64_t kMaxSeed = kMaxCounter >> 1;
  // The timestamp field's 48 bits.
  static constexpr uint64_t kMaxUnixMs = (uint64_t{1} << 48) - 1;

  // `counter_bits` narrower than kCounterBits are for tests, which cannot
  // spend 2^41 ids. REQUIRES: 2 <= counter_bits <= kCounterBits.
  explicit UuidV7Sequence(int counter_bits = kCounterBits)
      : max_counter_((uint64_t{1} << counter_bits) - 1),
        max_seed_(max_counter_ >> 1) {}

  struct Stamp {
    uint64_t unix_ms;  // <= kMaxUnixMs
    uint64_t counter;  // < 2^counter_bits
  };

  // The stamp of the next id, strictly greater than every earlier one
  // (ordered by unix_ms, then counter). `now_ms` is the clock's reading,
  // `random_bits` any random value (only its low counter_bits - 1 bits are
  // used, and only when a new millisecond starts).
  Stamp Next(uint64_t now_ms, uint64_t random_bits);

 private:
  const uint64_t max_counter_;
  const uint64_t max_seed_;
  bool started_ = false;
  uint64_t last_ms_ = 0;
  uint64_t counter_ = 0;
};

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_UUID_V7_SEQUENCE_H_
