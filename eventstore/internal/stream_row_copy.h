// Backend-neutral checks of EventImporter::PutStreamRows (copies of the
// streams table), shared by every backend so that they refuse alike.

#ifndef EVENTSTORE_INTERNAL_STREAM_ROW_COPY_H_
#define EVENTSTORE_INTERNAL_STREAM_ROW_COPY_H_

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "eventstore/event_importer.h"
#include "eventstore/limits.h"

namespace eventstore::internal {

// kInvalidArgument naming the row ("rows[3].metadata.max_count: ...") for a
// stream name that breaks `limits`, metadata out of range
// (ValidateStreamMetadata), a negative version floor, or a stream given
// twice.
absl::Status ValidateStreamRows(const StoreLimits& limits,
                                absl::Span<const StreamRowRecord> rows);

}  // namespace eventstore::internal

#endif  // EVENTSTORE_INTERNAL_STREAM_ROW_COPY_H_
