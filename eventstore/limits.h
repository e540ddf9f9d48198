// StoreLimits: the bounds every backend enforces on an append.
//
// An append that breaks one fails with kInvalidArgument naming the field and
// the limit, and writes nothing.

#ifndef EVENTSTORE_LIMITS_H_
#define EVENTSTORE_LIMITS_H_

#include <cstddef>

namespace eventstore {

struct StoreLimits {
  // Longest stream name, in bytes. Names are non-empty UTF-8 with no control
  // characters or white space. Default 255.
  size_t max_stream_name_bytes = 255;
  // Longest event type name, in bytes. Types are protobuf full names
  // ([A-Za-z0-9_.]). Default 255.
  size_t max_event_type_bytes = 255;
  // Largest payload of one event. Default 4 MiB: larger blobs belong in a
  // blob store with a reference in the event.
  size_t max_payload_bytes = 4 << 20;
  // Largest serialized metadata of one event. Default 64 KiB.
  size_t max_metadata_bytes = 64 << 10;
  // Most events in one append. Default 10,000: a batch is one transaction,
  // and a huge one holds the writer lock for long.
  size_t max_batch_events = 10000;
};

}  // namespace eventstore

#endif  // EVENTSTORE_LIMITS_H_
