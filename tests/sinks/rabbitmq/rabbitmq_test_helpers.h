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
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
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

// Stops the broker of `dir` (a RabbitMqServer's directory; the broker
// writes its pid to rabbit.pid there) with SIGSTOP and waits until every
// thread of it is stopped: from then on it reads and answers nothing, while
// the kernel still accepts what is sent to it, so that messages published
// then are certainly unconfirmed when the broker is killed. Returns the pid
// (SIGCONT resumes it; RabbitMqServer::Kill() kills it stopped).
absl::StatusOr<pid_t> PauseBroker(const std::string& dir);

// A TCP proxy on 127.0.0.1 in front of the broker, for a sink that has one
// connection at a time: connections are served one after the other, bytes
// passed through both ways, except that a connection can be cut at an exact
// point of what the broker sends, which killing the broker cannot do.
//
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<AmqpProxy> proxy,
//                        AmqpProxy::Start(broker->port()));
//   options.url = absl::StrCat("amqp://guest:guest@127.0.0.1:", proxy->port());
//   proxy->CutAtTheFirstAckAfterAChannelClose();
class AmqpProxy {
 public:
  static absl::StatusOr<std::unique_ptr<AmqpProxy>> Start(int broker_port);

  AmqpProxy(const AmqpProxy&) = delete;
  AmqpProxy& operator=(const AmqpProxy&) = delete;
  // Stops the proxy and closes its connections.
  ~AmqpProxy();

  int port() const { return port_; }

  // Once: after the broker closed a channel (channel.close) of the
  // connection being served, the connection is cut (both sockets closed)
  // right before the broker's next basic.ack would reach the client. The
  // connections after are passed through.
  void CutAtTheFirstAckAfterAChannelClose() { armed_ = true; }
  // Whether that cut happened.
  bool cut() const { return cut_; }

 private:
  AmqpProxy(int listen_fd, int port, int broker_port, int wake_read,
            int wake_write);

  void Run();
  // Passes bytes between `client` and `broker` until either side closes,
  // the cut, or the proxy stops (false then).
  bool Serve(int client, int broker);

  const int listen_fd_;
  const int port_;
  const int broker_port_;
  // Written to by the destructor to wake the thread.
  const int wake_read_;
  const int wake_write_;
  std::atomic<bool> armed_{false};
  std::atomic<bool> cut_{false};
  std::thread thread_;
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SINKS_RABBITMQ_RABBITMQ_TEST_HELPERS_H_
