// PostgreSQL binary wire formats for the few types the backend exchanges.
//
// The backend sends parameters and reads results in binary format: bytea
// and uuid need no hex encoding, integers no parsing.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_BINARY_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_BINARY_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace eventstore::postgres {

// Type OIDs (pg_type.dat).
inline constexpr uint32_t kBoolOid = 16;
inline constexpr uint32_t kByteaOid = 17;
inline constexpr uint32_t kInt8Oid = 20;
inline constexpr uint32_t kTextOid = 25;
inline constexpr uint32_t kUuidOid = 2950;

inline void PutUint32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

inline void PutUint64(std::string& out, uint64_t v) {
  PutUint32(out, static_cast<uint32_t>(v >> 32));
  PutUint32(out, static_cast<uint32_t>(v));
}

inline uint64_t GetUint64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(p[i]);
  return v;
}

// int8 / xid8 in binary.
inline std::string EncodeInt64(int64_t v) {
  std::string out;
  PutUint64(out, static_cast<uint64_t>(v));
  return out;
}

// timestamptz: microseconds since 2000-01-01 00:00:00 UTC.
inline constexpr int64_t kPostgresEpochUnixMicros = 946684800LL * 1000000;
inline absl::Time DecodeTimestamp(const char* p) {
  return absl::FromUnixMicros(static_cast<int64_t>(GetUint64(p)) +
                              kPostgresEpochUnixMicros);
}
// REQUIRES: `t` is finite (whole microseconds are kept).
inline std::string EncodeTimestamp(absl::Time t) {
  return EncodeInt64(absl::ToUnixMicros(t) - kPostgresEpochUnixMicros);
}

// Builds a one-dimensional array in binary format, element by element.
class ArrayBuilder {
 public:
  ArrayBuilder(uint32_t element_oid, size_t count)
      : element_oid_(element_oid), count_(count) {}
  void Add(std::string_view element) {
    PutUint32(body_, static_cast<uint32_t>(element.size()));
    body_.append(element.data(), element.size());
  }
  void AddNull() {
    has_null_ = true;
    PutUint32(body_, 0xffffffffu);
  }
  // The encoded array; REQUIRES: exactly `count` elements were added.
  std::string Finish() const {
    std::string out;
    out.reserve(20 + body_.size());
    PutUint32(out, 1);  // dimensions
    PutUint32(out, has_null_ ? 1 : 0);
    PutUint32(out, element_oid_);
    PutUint32(out, static_cast<uint32_t>(count_));
    PutUint32(out, 1);  // lower bound
    out += body_;
    return out;
  }
  void Reserve(size_t bytes) { body_.reserve(bytes); }

 private:
  uint32_t element_oid_;
  size_t count_;
  bool has_null_ = false;
  std::string body_;
};

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_BINARY_H_
