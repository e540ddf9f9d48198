#include "eventstore/uuid.h"

#include <cstring>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/internal/uuid_v7_sequence.h"

namespace eventstore {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The process-wide sequence behind Generate.
class LockedSequence {
 public:
  internal::UuidV7Sequence::Stamp Next(uint64_t now_ms, uint64_t random_bits) {
    internal::MutexLock lock(&mu_);
    return sequence_.Next(now_ms, random_bits);
  }

 private:
  internal::Mutex mu_;
  internal::UuidV7Sequence sequence_ ABSL_GUARDED_BY(mu_);
};

LockedSequence& ProcessSequence() {
  static LockedSequence* const sequence = new LockedSequence;
  return *sequence;
}

}  // namespace

Uuid Uuid::Generate() {
  // Seeded from std::random_device rather than absl::BitGen: Debian's Abseil
  // seeds from a shared pool that ThreadSanitizer cannot see synchronised.
  thread_local std::mt19937_64 gen([] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }());
  const uint64_t counter_seed = gen();
  const uint64_t tail = gen();
  const uint64_t now_ms =
      static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  const internal::UuidV7Sequence::Stamp stamp =
      ProcessSequence().Next(now_ms, counter_seed);
  // unix_ts_ms (48 bits) | ver (4) | counter bits 41..30 as rand_a (12) |
  // var (2) | counter bits 29..0 (30) | random (32): byte order is the
  // order of (timestamp, counter).
  const uint64_t counter = stamp.counter;
  Uuid id;
  for (int i = 0; i < 6; ++i) {
    id.bytes_[i] = static_cast<uint8_t>(stamp.unix_ms >> (8 * (5 - i)));
  }
  id.bytes_[6] = static_cast<uint8_t>(0x70 | ((counter >> 38) & 0x0f));
  id.bytes_[7] = static_cast<uint8_t>(counter >> 30);
  id.bytes_[8] = static_cast<uint8_t>(0x80 | ((counter >> 24) & 0x3f));
  id.bytes_[9] = static_cast<uint8_t>(counter >> 16);
  id.bytes_[10] = static_cast<uint8_t>(counter >> 8);
  id.bytes_[11] = static_cast<uint8_t>(counter);
  for (int i = 0; i < 4; ++i) {
    id.bytes_[12 + i] = static_cast<uint8_t>(tail >> (8 * i));
  }
  return id;
}

absl::StatusOr<Uuid> Uuid::Parse(std::string_view text) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("event id: '", std::string(text.substr(0, 64)),
                     "' is not a UUID (expected 8-4-4-4-12 hex digits)"));
  };
  if (text.size() != 36) return invalid();
  Uuid id;
  size_t out = 0;
  for (size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return invalid();
      ++i;
      continue;
    }
    const int hi = HexValue(text[i]);
    const int lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return invalid();
    id.bytes_[out++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return id;
}

absl::StatusOr<Uuid> Uuid::FromBytes(std::string_view bytes) {
  if (bytes.size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("event id: expected 16 bytes, got ", bytes.size()));
  }
  Uuid id;
  std::memcpy(id.bytes_.data(), bytes.data(), 16);
  return id;
}

bool Uuid::IsNil() const {
  for (uint8_t b : bytes_) {
    if (b != 0) return false;
  }
  return true;
}

std::string Uuid::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < bytes_.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes_[i] >> 4]);
    out.push_back(kHex[bytes_[i] & 0xf]);
  }
  return out;
}

}  // namespace eventstore
