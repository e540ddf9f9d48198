#include "eventstore/expected_version.h"

#include "absl/strings/str_cat.h"

namespace eventstore {

ExpectedVersion ExpectedVersion::FromWire(int64_t wire) {
  switch (wire) {
    case -2:
      return NoStream();
    case -3:
      return StreamExists();
    default:
      return wire >= 0 ? Exactly(wire) : Any();
  }
}

bool ExpectedVersion::Matches(int64_t current) const {
  switch (kind_) {
    case Kind::kAny:
      return true;
    case Kind::kNoStream:
      return current == 0;
    case Kind::kStreamExists:
      return current > 0;
    case Kind::kExactly:
      return current == version_;
  }
  return false;
}

int64_t ExpectedVersion::ToWire() const {
  switch (kind_) {
    case Kind::kAny:
      return -1;
    case Kind::kNoStream:
      return -2;
    case Kind::kStreamExists:
      return -3;
    case Kind::kExactly:
      return version_;
  }
  return -1;
}

std::string ExpectedVersion::ToString() const {
  switch (kind_) {
    case Kind::kAny:
      return "any";
    case Kind::kNoStream:
      return "no stream";
    case Kind::kStreamExists:
      return "stream exists";
    case Kind::kExactly:
      return absl::StrCat(version_);
  }
  return "any";
}

}  // namespace eventstore
