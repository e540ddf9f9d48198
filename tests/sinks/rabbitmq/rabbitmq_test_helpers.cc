#include "tests/sinks/rabbitmq/rabbitmq_test_helpers.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace eventstore::test {
namespace {

std::string FromBytes(amqp_bytes_t bytes) {
  if (bytes.len == 0) return "";
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

amqp_bytes_t Bytes(const std::string& s) {
  amqp_bytes_t bytes;
  bytes.len = s.size();
  bytes.bytes = const_cast<char*>(s.data());
  return bytes;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AmqpClient>> AmqpClient::Connect(int port) {
  std::unique_ptr<AmqpClient> client(new AmqpClient());
  amqp_socket_t* socket = amqp_tcp_socket_new(client->conn_);
  struct timeval timeout = {10, 0};
  if (socket == nullptr ||
      amqp_socket_open_noblock(socket, "127.0.0.1", port, &timeout) !=
          AMQP_STATUS_OK) {
    return absl::UnavailableError(
        absl::StrCat("consumer: cannot connect to port ", port));
  }
  amqp_set_rpc_timeout(client->conn_, &timeout);
  amqp_rpc_reply_t login = amqp_login(client->conn_, "/", 0, 131072, 0,
                                      AMQP_SASL_METHOD_PLAIN, "guest", "guest");
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    return absl::UnavailableError("consumer: login failed");
  }
  amqp_channel_open(client->conn_, 1);
  if (absl::Status s = client->Check("channel.open"); !s.ok()) return s;
  return client;
}

AmqpClient::AmqpClient() : conn_(amqp_new_connection()) {}

AmqpClient::~AmqpClient() {
  amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn_);
}

absl::Status AmqpClient::DeclareExchange(const std::string& name) {
  amqp_exchange_declare(conn_, 1, Bytes(name), amqp_cstring_bytes("direct"),
                        /*passive=*/0, /*durable=*/1, /*auto_delete=*/0,
                        /*internal=*/0, amqp_empty_table);
  return Check("exchange.declare");
}

absl::Status AmqpClient::DeclareQueue(const std::string& name) {
  amqp_queue_declare(conn_, 1, Bytes(name), /*passive=*/0, /*durable=*/1,
                     /*exclusive=*/0, /*auto_delete=*/0, amqp_empty_table);
  return Check("queue.declare");
}

absl::Status AmqpClient::Bind(const std::string& queue,
                              const std::string& exchange,
                              const std::string& key) {
  amqp_queue_bind(conn_, 1, Bytes(queue), Bytes(exchange), Bytes(key),
                  amqp_empty_table);
  return Check("queue.bind");
}

absl::StatusOr<uint32_t> AmqpClient::Depth(const std::string& queue) {
  amqp_queue_declare_ok_t* ok = amqp_queue_declare(
      conn_, 1, Bytes(queue), /*passive=*/1,
      /*durable=*/1, /*exclusive=*/0, /*auto_delete=*/0, amqp_empty_table);
  if (absl::Status s = Check("queue.declare (passive)"); !s.ok()) return s;
  return ok->message_count;
}

absl::StatusOr<std::vector<Received>> AmqpClient::Drain(
    const std::string& queue) {
  std::vector<Received> received;
  while (true) {
    amqp_rpc_reply_t reply = amqp_basic_get(conn_, 1, Bytes(queue), 1);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
      return absl::InternalError(absl::StrCat("basic.get on ", queue));
    }
    if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) break;
    const auto* ok =
        static_cast<const amqp_basic_get_ok_t*>(reply.reply.decoded);
    Received r;
    r.exchange = FromBytes(ok->exchange);
    r.routing_key = FromBytes(ok->routing_key);
    amqp_message_t message;
    if (amqp_read_message(conn_, 1, &message, 0).reply_type !=
        AMQP_RESPONSE_NORMAL) {
      return absl::InternalError("reading a message");
    }
    const amqp_basic_properties_t& p = message.properties;
    r.body = FromBytes(message.body);
    if (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
      r.has_message_id = true;
      r.message_id = FromBytes(p.message_id);
    }
    if (p._flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
      r.correlation_id = FromBytes(p.correlation_id);
    }
    if (p._flags & AMQP_BASIC_TYPE_FLAG) r.type = FromBytes(p.type);
    if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
      r.content_type = FromBytes(p.content_type);
    }
    if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) {
      r.delivery_mode = p.delivery_mode;
    }
    if (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) r.timestamp = p.timestamp;
    if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
      for (int i = 0; i < p.headers.num_entries; ++i) {
        const amqp_table_entry_t& entry = p.headers.entries[i];
        r.headers[FromBytes(entry.key)] =
            entry.value.kind == AMQP_FIELD_KIND_UTF8 ||
                    entry.value.kind == AMQP_FIELD_KIND_BYTES
                ? FromBytes(entry.value.value.bytes)
                : "(not a string)";
      }
    }
    amqp_destroy_message(&message);
    amqp_maybe_release_buffers(conn_);
    received.push_back(std::move(r));
  }
  return received;
}

absl::Status AmqpClient::Check(const char* what) {
  amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn_);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("consumer: ", what, " failed"));
}

}  // namespace eventstore::test
