// Helpers of the RabbitMQ sink tests: a plain librabbitmq client that
// declares the topology and takes what the queues hold, the way a consumer
// of the sink would see it (the sink's own code is not used, so that the
// tests check it against the library rather than against itself).
//
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpClient> client,
//                        AmqpClient::Connect(broker->port()));
//   ASSERT_OK(client->DeclareQueue("orders"));
//   ... publish ...
//   ASSERT_OK_AND_ASSIGN(std::vector<Received> received,
//                        client->Drain("orders"));

#ifndef EVENTSTORE_TESTS_SINKS_RABBITMQ_RABBITMQ_TEST_HELPERS_H_
#define EVENTSTORE_TESTS_SINKS_RABBITMQ_RABBITMQ_TEST_HELPERS_H_

#include <amqp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace eventstore::test {

// A message as a consumer received it.
struct Received {
  std::string exchange;
  std::string routing_key;
  std::string body;
  bool has_message_id = false;
  std::string message_id;
  std::string correlation_id;
  std::string type;
  std::string content_type;
  int delivery_mode = 0;
  uint64_t timestamp = 0;
  std::map<std::string, std::string> headers;
};

// A plain librabbitmq client on 127.0.0.1, logged in as guest (which
// RabbitMQ lets in from loopback only): declares the topology, counts and
// takes messages.
class AmqpClient {
 public:
  static absl::StatusOr<std::unique_ptr<AmqpClient>> Connect(int port);

  AmqpClient(const AmqpClient&) = delete;
  AmqpClient& operator=(const AmqpClient&) = delete;
  ~AmqpClient();

  // A durable direct exchange.
  absl::Status DeclareExchange(const std::string& name);
  // A durable queue.
  absl::Status DeclareQueue(const std::string& name);
  absl::Status Bind(const std::string& queue, const std::string& exchange,
                    const std::string& key);

  // Messages ready in `queue` (a passive queue.declare).
  absl::StatusOr<uint32_t> Depth(const std::string& queue);

  // Takes every message in `queue` (basic.get without ack: they are
  // removed), in queue order. Every message a publisher got a confirm for
  // is in its queue already.
  absl::StatusOr<std::vector<Received>> Drain(const std::string& queue);

 private:
  AmqpClient();

  // The status of the last RPC on the connection.
  absl::Status Check(const char* what);

  amqp_connection_state_t conn_;
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SINKS_RABBITMQ_RABBITMQ_TEST_HELPERS_H_
