#include "eventstore/internal/stream_row_copy.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "eventstore/internal/append_validation.h"

namespace eventstore::internal {

absl::Status ValidateStreamRows(const StoreLimits& limits,
                                absl::Span<const StreamRowRecord> rows) {
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < rows.size(); ++i) {
    const StreamRowRecord& row = rows[i];
    const std::string prefix = absl::StrCat("rows[", i, "]");
    absl::Status status = ValidateStreamName(limits, row.stream);
    if (status.ok()) status = ValidateStreamMetadata(row.metadata);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, ": ", status.message()));
    }
    if (row.version_floor < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, ".version_floor: ", row.version_floor,
                       " is negative (stream '", row.stream, "')"));
    }
    if (!seen.insert(row.stream).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          prefix, ": stream '", row.stream, "' is given twice in the batch"));
    }
  }
  return absl::OkStatus();
}

}  // namespace eventstore::internal
