#include "tests/sinks/rabbitmq/rabbitmq_test_helpers.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "tests/support/wait_until.h"

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

// Whether every thread of process `pid` is stopped (state T in
// /proc/PID/task/TID/stat); false when they cannot be read.
bool AllThreadsStopped(pid_t pid) {
  const std::string tasks = absl::StrCat("/proc/", pid, "/task");
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return false;
  bool stopped = true;
  int threads = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat(tasks, "/", entry->d_name, "/stat"));
    std::stringstream text;
    text << in.rdbuf();
    // "TID (comm) STATE ...": comm may hold spaces and parentheses.
    const std::string stat = text.str();
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat.size()) continue;
    ++threads;
    if (stat[paren + 2] != 'T') stopped = false;
  }
  closedir(dir);
  return stopped && threads > 0;
}

// Writes all of `data` to `fd`; false when the peer is gone.
bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t written = send(fd, data, size, MSG_NOSIGNAL);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    data += written;
    size -= static_cast<size_t>(written);
  }
  return true;
}

uint32_t BigEndian(const std::string& s, size_t at, size_t bytes) {
  uint32_t value = 0;
  for (size_t i = 0; i < bytes; ++i) {
    value = (value << 8) | static_cast<unsigned char>(s[at + i]);
  }
  return value;
}

}  // namespace

absl::StatusOr<pid_t> PauseBroker(const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/rabbit.pid");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text.str()), &pid) ||
      pid <= 0) {
    return absl::InternalError(
        absl::StrCat("no broker pid in ", path, ": \"", text.str(), "\""));
  }
  if (kill(pid, SIGSTOP) != 0) {
    return absl::InternalError(absl::StrCat("kill -STOP ", pid, " failed"));
  }
  if (!WaitUntil([&] { return AllThreadsStopped(pid); }, absl::Seconds(10))) {
    kill(pid, SIGCONT);
    return absl::DeadlineExceededError(
        absl::StrCat("the broker (pid ", pid, ") did not stop"));
  }
  return pid;
}

absl::StatusOr<std::unique_ptr<AmqpProxy>> AmqpProxy::Start(int broker_port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("proxy: socket failed");
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)) !=
          0 ||
      listen(fd, 4) != 0 ||
      getsockname(fd, reinterpret_cast<struct sockaddr*>(&address), &length) !=
          0) {
    close(fd);
    return absl::InternalError("proxy: cannot listen on 127.0.0.1");
  }
  int wake[2];
  if (pipe(wake) != 0) {
    close(fd);
    return absl::InternalError("proxy: pipe failed");
  }
  std::unique_ptr<AmqpProxy> proxy(new AmqpProxy(
      fd, ntohs(address.sin_port), broker_port, wake[0], wake[1]));
  proxy->thread_ = std::thread([p = proxy.get()] { p->Run(); });
  return proxy;
}

AmqpProxy::AmqpProxy(int listen_fd, int port, int broker_port, int wake_read,
                     int wake_write)
    : listen_fd_(listen_fd),
      port_(port),
      broker_port_(broker_port),
      wake_read_(wake_read),
      wake_write_(wake_write) {}

AmqpProxy::~AmqpProxy() {
  const char byte = 0;
  (void)!write(wake_write_, &byte, 1);
  thread_.join();
  close(listen_fd_);
  close(wake_read_);
  close(wake_write_);
}

void AmqpProxy::Run() {
  while (true) {
    struct pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    const int broker = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(broker_port_));
    bool serving = false;
    if (broker >= 0 &&
        connect(broker, reinterpret_cast<struct sockaddr*>(&address),
                sizeof(address)) == 0) {
      serving = true;
    }
    const bool go_on = !serving || Serve(client, broker);
    if (broker >= 0) close(broker);
    close(client);
    if (!go_on) return;
  }
}

bool AmqpProxy::Serve(int client, int broker) {
  // What the broker sent and the client did not get yet: AMQP frames (type
  // 1 byte, channel 2, size 4, payload, end 0xCE), passed on whole.
  std::string from_broker;
  bool channel_closed = false;
  char buffer[65536];
  while (true) {
    struct pollfd fds[3] = {
        {client, POLLIN, 0}, {broker, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (fds[2].revents != 0) return false;
    if (fds[0].revents != 0) {
      const ssize_t n = recv(client, buffer, sizeof(buffer), 0);
      if (n <= 0) return true;
      if (!WriteAll(broker, buffer, static_cast<size_t>(n))) return true;
    }
    if (fds[1].revents != 0) {
      const ssize_t n = recv(broker, buffer, sizeof(buffer), 0);
      if (n <= 0) return true;
      from_broker.append(buffer, static_cast<size_t>(n));
      size_t at = 0;
      while (from_broker.size() - at >= 7) {
        const size_t size = 8 + BigEndian(from_broker, at + 3, 4);
        if (from_broker.size() - at < size) break;
        const bool method = from_broker[at] == 1 && size >= 12;
        const uint32_t channel = BigEndian(from_broker, at + 1, 2);
        const uint32_t id =
            method ? BigEndian(from_broker, at + 7, 4) : uint32_t{0};
        if (id == AMQP_CHANNEL_CLOSE_METHOD && channel != 0) {
          channel_closed = true;
        }
        if (id == AMQP_BASIC_ACK_METHOD && channel_closed && armed_) {
          armed_ = false;
          cut_ = true;
          // What came before the ack still reaches the client.
          WriteAll(client, from_broker.data(), at);
          return true;
        }
        at += size;
      }
      if (!WriteAll(client, from_broker.data(), at)) return true;
      from_broker.erase(0, at);
    }
  }
}

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
