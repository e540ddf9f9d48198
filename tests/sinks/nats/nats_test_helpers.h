// Helpers of the NATS sink tests: a JetStream consumer over libnats that
// reads what a stream holds, and outbox messages and sink options with
// names of their own, so that the tests of one process share one server.
//
//   NatsOutboxSinkOptions options = FreshSinkOptions(server->url());
//   ... publish ...
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<StreamReader> reader,
//                        StreamReader::Connect(server->url()));
//   ASSERT_OK_AND_ASSIGN(std::vector<StoredMessage> stored,
//                        reader->ReadAll(options.stream.name));

#ifndef EVENTSTORE_TESTS_SINKS_NATS_NATS_TEST_HELPERS_H_
#define EVENTSTORE_TESTS_SINKS_NATS_NATS_TEST_HELPERS_H_

#include <nats/nats.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "projections/sinks/nats/nats_outbox_sink.h"
#include "tests/support/wait_until.h"

namespace eventstore::test {

// The shared server's max_payload (nats-server's default).
inline constexpr int64_t kNatsDefaultMaxPayload = 1 << 20;

// A message as JetStream stored it.
struct StoredMessage {
  uint64_t sequence = 0;
  std::string subject;
  std::string data;
  std::map<std::string, std::string> headers;
};

// Reads a stream the way a consumer would see it, through a connection of
// its own (which reconnects after a broker restart).
class StreamReader {
 public:
  static absl::StatusOr<std::unique_ptr<StreamReader>> Connect(
      const std::string& url);

  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;
  ~StreamReader();

  // Messages in `stream` (JetStream's count).
  absl::StatusOr<uint64_t> Count(const std::string& stream);
  // Every message of `stream`, in sequence order.
  absl::StatusOr<std::vector<StoredMessage>> ReadAll(const std::string& stream);

 private:
  StreamReader() = default;

  natsConnection* connection_ = nullptr;
  jsCtx* js_ = nullptr;
};

// The entry id in `message`'s Nats-Msg-Id (after `prefix`); -1 when none.
int64_t EntryId(const StoredMessage& message, absl::string_view prefix);

// Sink options for `url` with a subject prefix, message id prefix and
// stream (created by Connect) that no other test of the process uses.
NatsOutboxSinkOptions FreshSinkOptions(const std::string& url);

// A message to `destination` with `payload`, and key "key-<payload>".
OutboxMessage Message(const std::string& destination,
                      const std::string& payload);

OutboxEntry Entry(int64_t id, OutboxMessage message);

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SINKS_NATS_NATS_TEST_HELPERS_H_
