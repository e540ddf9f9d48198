#include "eventstore/internal/uuid_v7_sequence.h"

namespace eventstore::internal {

UuidV7Sequence::Stamp UuidV7Sequence::Next(uint64_t now_ms,
                                           uint64_t random_bits) {
  now_ms &= kMaxUnixMs;
  const uint64_t seed = random_bits & max_seed_;
  if (!started_ || now_ms > last_ms_) {
    started_ = true;
    last_ms_ = now_ms;
    counter_ = seed;
  } else if (counter_ < max_counter_) {
    // The same millisecond, or the clock went backwards: count on.
    ++counter_;
  } else {
    // The counter is spent: borrow the next millisecond.
    ++last_ms_;
    counter_ = seed;
  }
  return Stamp{last_ms_, counter_};
}

}  // namespace eventstore::internal
