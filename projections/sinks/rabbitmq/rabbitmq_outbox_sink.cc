// RabbitMqOutboxSink: publishing with confirms over librabbitmq.
//
// One connection, one channel in confirm mode at a time. A batch is
// published whole (delivery tags first_tag, first_tag + 1, ... in batch
// order), then frames are read until every message is settled: basic.ack
// and basic.nack settle one tag or, with `multiple`, every tag up to theirs;
// a basic.return (mandatory flag, nothing bound) comes before the ack of
// the message it returns and marks it failed. A channel.close from the
// broker ends the round: the culprit is one of the unsettled messages (a
// message that closes the channel is never acked), found by publishing the
// unsettled ones again one at a time on a new channel.

#include "projections/sinks/rabbitmq/rabbitmq_outbox_sink.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/status_macros.h"

namespace eventstore {
namespace {

// AMQP short strings (exchange, routing key, message_id, correlation_id,
// type, header names) hold at most 255 bytes.
constexpr size_t kMaxShortString = 255;
constexpr size_t kMaxMessageIdPrefix = 200;
// The frame size we ask for (RabbitMQ's default too); the broker may
// lower it.
constexpr int kFrameMax = 131072;
// Room in a content header frame for what is not a header: frame
// overhead, flags, the fixed properties.
constexpr size_t kHeaderFrameReserve = 2048;
// Shown to operators in the broker's connection list.
constexpr char kConnectionName[] = "eventstore outbox sink";

// Debian's Abseil has its own absl::string_view, which StrCat takes and
// std::string_view does not convert to.
absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

amqp_bytes_t Bytes(std::string_view s) {
  amqp_bytes_t bytes;
  bytes.len = s.size();
  bytes.bytes = const_cast<char*>(s.data());
  return bytes;
}

std::string FromBytes(amqp_bytes_t bytes) {
  if (bytes.len == 0) return "";
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

timeval Timeval(absl::Duration d) {
  return absl::ToTimeval(std::max(d, absl::ZeroDuration()));
}

// Where to connect, from the URL.
struct Endpoint {
  std::string host;
  int port = 5672;
  std::string user;
  std::string password;
  std::string vhost;
};

absl::StatusOr<Endpoint> ParseUrl(const std::string& url) {
  // A malformed URL is not shown: where a password ends in it is unsure.
  const std::string expected =
      "expected amqp://user:password@host:port/vhost (the URL is not shown: "
      "it may hold a password)";
  if (url.empty()) return absl::InvalidArgumentError("url: empty");
  std::vector<char> buffer(url.begin(), url.end());
  buffer.push_back('\0');
  amqp_connection_info info;
  if (amqp_parse_url(buffer.data(), &info) != AMQP_STATUS_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("url: not an AMQP URL; ", expected));
  }
  if (info.ssl) {
    return absl::InvalidArgumentError(
        "url: amqps:// (TLS) is not supported yet; use amqp://");
  }
  Endpoint endpoint;
  endpoint.host = info.host;
  endpoint.port = info.port;
  endpoint.user = info.user;
  endpoint.password = info.password;
  endpoint.vhost = info.vhost;
  // RabbitMQ has no vhost "", which "amqp://host/" names by the AMQP URI
  // spec; everyone who writes it means the default one.
  if (endpoint.vhost.empty()) endpoint.vhost = "/";
  if (endpoint.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("url: no host; ", expected));
  }
  return endpoint;
}

// The text of a failed librabbitmq RPC; `code` gets the broker's reply
// code when the broker closed the channel or connection, else 0.
std::string ReplyText(const amqp_rpc_reply_t& reply, int* code) {
  *code = 0;
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* close =
            static_cast<const amqp_connection_close_t*>(reply.reply.decoded);
        *code = close->reply_code;
        return absl::StrCat(
            "the broker closed the connection: ", close->reply_code, " ",
            FromBytes(close->reply_text));
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* close =
            static_cast<const amqp_channel_close_t*>(reply.reply.decoded);
        *code = close->reply_code;
        return absl::StrCat(
            "the broker closed the channel: ", close->reply_code, " ",
            FromBytes(close->reply_text));
      }
      return absl::StrCat("unexpected method 0x", absl::Hex(reply.reply.id));
  }
  return "unknown reply";
}

// The status code for a channel or connection the broker closed with
// `reply_code` (AMQP 0-9-1 reply codes).
absl::StatusCode CodeOfReply(int reply_code) {
  switch (reply_code) {
    case AMQP_ACCESS_REFUSED:  // 403
    case AMQP_NOT_ALLOWED:     // 530: the vhost
      return absl::StatusCode::kPermissionDenied;
    case AMQP_NOT_FOUND:  // 404: the exchange
      return absl::StatusCode::kNotFound;
    case AMQP_PRECONDITION_FAILED:  // 406: over max_message_size
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kUnavailable;
  }
}

// Bytes the properties of a message with these headers take in its
// content header frame, roughly but never less.
size_t HeaderFrameBytes(const OutboxMessage& message,
                        const std::string& message_id,
                        const std::string& content_type) {
  size_t bytes = kHeaderFrameReserve + message_id.size() + content_type.size();
  for (const auto& [name, value] : message.headers) {
    // name (short string), field kind, value (long string), and the same
    // again for correlation_id / type.
    bytes += 1 + name.size() + 1 + 4 + value.size();
    if (name == kCorrelationIdHeader || name == kEventTypeHeader) {
      bytes += value.size();
    }
  }
  return bytes;
}

// An entry ready to publish.
struct Prepared {
  // In the batch (and its statuses).
  size_t index = 0;
  const OutboxEntry* entry = nullptr;
  RabbitMqRoute route;
  std::string message_id;
};

}  // namespace

absl::StatusOr<RabbitMqRoute> RabbitMqRouteOf(const OutboxMessage& message) {
  RabbitMqRoute route;
  const std::string& destination = message.destination;
  const size_t slash = destination.find('/');
  if (slash == std::string::npos) {
    route.exchange = destination;
    route.routing_key = message.key;
  } else {
    route.exchange = destination.substr(0, slash);
    route.routing_key = destination.substr(slash + 1);
    if (route.routing_key.empty()) route.routing_key = message.key;
  }
  if (route.exchange.size() > kMaxShortString) {
    return absl::InvalidArgumentError(
        absl::StrCat("destination: exchange name of ", route.exchange.size(),
                     " bytes; AMQP allows at most 255"));
  }
  if (route.routing_key.size() > kMaxShortString) {
    return absl::InvalidArgumentError(
        absl::StrCat("routing key of ", route.routing_key.size(),
                     " bytes; AMQP allows at most 255"));
  }
  return route;
}

std::string MaskAmqpUrl(std::string_view url) {
  std::string out(url);
  const size_t scheme = out.find("://");
  if (scheme == std::string::npos) return out;
  const size_t start = scheme + 3;
  const size_t end = out.find_first_of("/?#", start);
  const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
  if (at == std::string::npos || at < start) return out;
  const size_t colon = out.find(':', start);
  if (colon != std::string::npos && colon < at) {
    out.replace(colon + 1, at - colon - 1, "***");
  }
  return out;
}

// --- the connection ---------------------------------------------------------

// One AMQP connection with, most of the time, one channel in confirm mode.
class RabbitMqConnection {
 public:
  // Connects and logs in; see RabbitMqOutboxSink::Connect for the errors.
  static absl::StatusOr<std::unique_ptr<RabbitMqConnection>> Open(
      const Endpoint& endpoint, const std::string& masked_url,
      absl::Duration timeout);

  RabbitMqConnection(const RabbitMqConnection&) = delete;
  RabbitMqConnection& operator=(const RabbitMqConnection&) = delete;
  // Closes the socket, without a word to the broker.
  ~RabbitMqConnection() { amqp_destroy_connection(state_); }

  // Says goodbye (connection.close, waiting for close-ok at most the RPC
  // timeout). Do not use the connection afterwards.
  void Close() { amqp_connection_close(state_, AMQP_REPLY_SUCCESS); }

  // Opens a new channel in confirm mode, unless one is open.
  absl::Status EnsureChannel();
  // The broker closed the channel; close-ok is sent.
  void ChannelClosedByBroker();

  // Whether exchange `name` exists: OK, or kNotFound with the broker's
  // reply; kUnavailable when the connection failed. Each name is asked
  // once per connection (a passive exchange.declare on a channel of its
  // own), so that a message to a missing exchange does not close the
  // publishing channel and lose the confirms of the others in flight.
  absl::Status CheckExchange(const std::string& name);

  // The broker's max_message_size once it refused a message for its size
  // (0 before), and its words then.
  size_t max_message_size() const { return max_message_size_; }
  const std::string& size_refusal() const { return size_refusal_; }
  // Learns the limit from a 406 reply text such as "PRECONDITION_FAILED -
  // message size 20000 is larger than configured max size 16384".
  // Returns whether it did.
  bool LearnMaxMessageSize(const std::string& reply_text);
  // Asks again about every exchange (one was deleted under us).
  void ForgetExchanges() { known_exchanges_.clear(); }

  amqp_connection_state_t state() const { return state_; }
  amqp_channel_t channel() const { return channel_; }
  bool channel_open() const { return channel_open_; }
  // The delivery tag of the next message published on the channel.
  uint64_t next_tag() const { return next_tag_; }
  void CountPublished() { ++next_tag_; }
  size_t frame_max() const {
    const int max = amqp_get_frame_max(state_);
    return static_cast<size_t>(max > 0 ? max : kFrameMax);
  }

 private:
  explicit RabbitMqConnection(amqp_connection_state_t state) : state_(state) {}

  // A channel number not used before on this connection (unless they wrap
  // around, long after the broker forgot the old one).
  amqp_channel_t NewChannelNumber();

  amqp_connection_state_t state_;
  amqp_channel_t last_channel_ = 0;
  amqp_channel_t channel_ = 0;
  bool channel_open_ = false;
  uint64_t next_tag_ = 1;
  amqp_channel_t check_channel_ = 0;
  bool check_channel_open_ = false;
  absl::flat_hash_set<std::string> known_exchanges_;
  size_t max_message_size_ = 0;
  std::string size_refusal_;
};

absl::StatusOr<std::unique_ptr<RabbitMqConnection>> RabbitMqConnection::Open(
    const Endpoint& endpoint, const std::string& masked_url,
    absl::Duration timeout) {
  amqp_connection_state_t state = amqp_new_connection();
  if (state == nullptr) {
    return absl::ResourceExhaustedError("amqp_new_connection: out of memory");
  }
  std::unique_ptr<RabbitMqConnection> connection(new RabbitMqConnection(state));
  const auto unreachable = [&](std::string_view why) {
    return absl::UnavailableError(absl::StrCat(
        "RabbitMQ at ", masked_url, " is unreachable: ", ToAbsl(why)));
  };
  amqp_socket_t* socket = amqp_tcp_socket_new(state);
  if (socket == nullptr) return unreachable("cannot create a socket");
  const timeval tv = Timeval(timeout);
  const int opened = amqp_socket_open_noblock(socket, endpoint.host.c_str(),
                                              endpoint.port, &tv);
  if (opened != AMQP_STATUS_OK) return unreachable(amqp_error_string2(opened));
  amqp_set_handshake_timeout(state, &tv);
  amqp_set_rpc_timeout(state, &tv);

  amqp_table_entry_t property;
  property.key = amqp_cstring_bytes("connection_name");
  property.value.kind = AMQP_FIELD_KIND_UTF8;
  property.value.value.bytes = amqp_cstring_bytes(kConnectionName);
  amqp_table_t properties;
  properties.num_entries = 1;
  properties.entries = &property;
  // No heartbeats: librabbitmq only services them inside its calls, so an
  // idle sink (the publisher waiting for messages) would be dropped. A dead
  // broker is noticed by the socket or by confirm_timeout.
  const amqp_rpc_reply_t login = amqp_login_with_properties(
      state, endpoint.vhost.c_str(), /*channel_max=*/0, kFrameMax,
      /*heartbeat=*/0, &properties, AMQP_SASL_METHOD_PLAIN,
      endpoint.user.c_str(), endpoint.password.c_str());
  if (login.reply_type != AMQP_RESPONSE_NORMAL) {
    int code = 0;
    const std::string text = ReplyText(login, &code);
    if (code == AMQP_ACCESS_REFUSED || code == AMQP_NOT_ALLOWED) {
      return absl::PermissionDeniedError(absl::StrCat(
          "RabbitMQ at ", masked_url, " refused the login or vhost \"",
          endpoint.vhost, "\": ", text));
    }
    return unreachable(absl::StrCat("logging in: ", text));
  }
  return connection;
}

amqp_channel_t RabbitMqConnection::NewChannelNumber() {
  int max = amqp_get_channel_max(state_);
  if (max <= 0) max = 65535;
  last_channel_ = static_cast<amqp_channel_t>(last_channel_ % max + 1);
  return last_channel_;
}

absl::Status RabbitMqConnection::EnsureChannel() {
  if (channel_open_) return absl::OkStatus();
  // A new number each time: frames still on their way for a channel the
  // broker closed are then recognisably stale.
  channel_ = NewChannelNumber();
  int code = 0;
  amqp_channel_open(state_, channel_);
  amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    return absl::UnavailableError(
        absl::StrCat("opening a channel: ", ReplyText(reply, &code)));
  }
  amqp_confirm_select(state_, channel_);
  reply = amqp_get_rpc_reply(state_);
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    return absl::UnavailableError(absl::StrCat(
        "turning on publisher confirms: ", ReplyText(reply, &code)));
  }
  channel_open_ = true;
  next_tag_ = 1;
  return absl::OkStatus();
}

absl::Status RabbitMqConnection::CheckExchange(const std::string& name) {
  // The default exchange always exists.
  if (name.empty() || known_exchanges_.contains(name)) {
    return absl::OkStatus();
  }
  int code = 0;
  if (!check_channel_open_) {
    check_channel_ = NewChannelNumber();
    amqp_channel_open(state_, check_channel_);
    const amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
      return absl::UnavailableError(
          absl::StrCat("opening a channel: ", ReplyText(reply, &code)));
    }
    check_channel_open_ = true;
  }
  amqp_exchange_declare(state_, check_channel_, Bytes(name),
                        amqp_cstring_bytes("direct"), /*passive=*/1,
                        /*durable=*/0, /*auto_delete=*/0, /*internal=*/0,
                        amqp_empty_table);
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
    known_exchanges_.insert(name);
    return absl::OkStatus();
  }
  const std::string text = ReplyText(reply, &code);
  if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
      reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    amqp_channel_close_ok_t close_ok;
    close_ok.dummy = 0;
    amqp_send_method(state_, check_channel_, AMQP_CHANNEL_CLOSE_OK_METHOD,
                     &close_ok);
    check_channel_open_ = false;
    if (code == AMQP_NOT_FOUND) {
      return absl::NotFoundError(
          absl::StrCat("no exchange \"", name, "\": ", text));
    }
    // Not ours to judge (say, no permission to declare): publishing will
    // tell.
    return absl::OkStatus();
  }
  return absl::UnavailableError(
      absl::StrCat("checking exchange \"", name, "\": ", text));
}

bool RabbitMqConnection::LearnMaxMessageSize(const std::string& reply_text) {
  static constexpr char kMarker[] = "max size ";
  const size_t at = reply_text.rfind(kMarker);
  if (at == std::string::npos) return false;
  uint64_t limit = 0;
  const std::string digits = reply_text.substr(at + sizeof(kMarker) - 1);
  if (!absl::SimpleAtoi(digits, &limit) || limit == 0) return false;
  max_message_size_ = static_cast<size_t>(limit);
  size_refusal_ = reply_text;
  return true;
}

void RabbitMqConnection::ChannelClosedByBroker() {
  amqp_channel_close_ok_t close_ok;
  close_ok.dummy = 0;
  // Should this fail, the next read says why.
  amqp_send_method(state_, channel_, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
  channel_open_ = false;
}

// --- the sink ---------------------------------------------------------------

class RabbitMqOutboxSink::Impl {
 public:
  Impl(RabbitMqOutboxSinkOptions options, Endpoint endpoint,
       std::string masked_url)
      : options_(std::move(options)),
        endpoint_(std::move(endpoint)),
        masked_url_(std::move(masked_url)) {}

  ~Impl() {
    internal::MutexLock lock(&send_mu_);
    if (connection_ != nullptr) connection_->Close();
  }

  absl::Status Connect() {
    internal::MutexLock lock(&send_mu_);
    return ConnectLocked();
  }

  std::vector<absl::Status> SendBatch(absl::Span<const OutboxEntry> entries);

  const std::string& masked_url() const { return masked_url_; }

  RabbitMqOutboxSinkStats stats() const {
    internal::MutexLock lock(&stats_mu_);
    return stats_;
  }

 private:
  // How a round of publishing ended.
  struct Round {
    enum Outcome {
      // Every message of the round is settled.
      kSettled,
      // The broker closed the channel; `unsettled` (positions in the
      // round) are neither confirmed nor failed.
      kChannelClosed,
      // The connection is gone (dropped); the unsettled ones failed.
      kConnectionLost,
    };
    Outcome outcome = kSettled;
    std::vector<size_t> unsettled;
    int reply_code = 0;
    std::string reply_text;
  };

  absl::Status ConnectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  absl::StatusOr<Prepared> Prepare(size_t index, const OutboxEntry& entry);
  // Publishes `round` and collects its confirms; sets the statuses of the
  // messages it settles (and, when the connection is lost, of the others
  // of the round).
  Round PublishAndConfirm(absl::Span<const Prepared> round,
                          std::vector<absl::Status>& statuses)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // Publishes one message; an error means the connection is unusable.
  int Publish(const Prepared& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // Forgets the connection; the next send connects again.
  void Drop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_) { connection_.reset(); }
  void Count(int64_t confirmed, int64_t failed, int64_t returned,
             int64_t channels_closed, int64_t connections);

  const RabbitMqOutboxSinkOptions options_;
  const Endpoint endpoint_;
  const std::string masked_url_;

  internal::Mutex send_mu_;
  std::unique_ptr<RabbitMqConnection> connection_ ABSL_GUARDED_BY(send_mu_);

  mutable internal::Mutex stats_mu_;
  RabbitMqOutboxSinkStats stats_ ABSL_GUARDED_BY(stats_mu_);
};

absl::Status RabbitMqOutboxSink::Impl::ConnectLocked() {
  ES_ASSIGN_OR_RETURN(connection_,
                      RabbitMqConnection::Open(endpoint_, masked_url_,
                                               options_.connect_timeout));
  Count(0, 0, 0, 0, 1);
  absl::Status channel = connection_->EnsureChannel();
  if (!channel.ok()) {
    Drop();
    return absl::UnavailableError(
        absl::StrCat("RabbitMQ at ", masked_url_, ": ", channel.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Prepared> RabbitMqOutboxSink::Impl::Prepare(
    size_t index, const OutboxEntry& entry) {
  Prepared prepared;
  prepared.index = index;
  prepared.entry = &entry;
  ES_ASSIGN_OR_RETURN(prepared.route, RabbitMqRouteOf(entry.message));
  prepared.message_id = absl::StrCat(options_.message_id_prefix, entry.id);
  for (const auto& header : entry.message.headers) {
    if (header.first.size() > kMaxShortString) {
      return absl::InvalidArgumentError(
          absl::StrCat("header name of ", header.first.size(),
                       " bytes; AMQP allows at most 255"));
    }
  }
  return prepared;
}

int RabbitMqOutboxSink::Impl::Publish(const Prepared& message) {
  const OutboxMessage& m = message.entry->message;
  amqp_basic_properties_t properties = {};
  properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG |
                      AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
  properties.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  properties.message_id = Bytes(message.message_id);
  if (!options_.content_type.empty()) {
    properties._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    properties.content_type = Bytes(options_.content_type);
  }
  const absl::Time created_at = message.entry->created_at;
  if (created_at > absl::UnixEpoch() && created_at != absl::InfiniteFuture()) {
    properties._flags |= AMQP_BASIC_TIMESTAMP_FLAG;
    properties.timestamp =
        static_cast<uint64_t>(absl::ToUnixSeconds(created_at));
  }
  std::vector<amqp_table_entry_t> headers;
  headers.reserve(m.headers.size());
  for (const auto& [name, value] : m.headers) {
    amqp_table_entry_t header;
    header.key = Bytes(name);
    header.value.kind = AMQP_FIELD_KIND_UTF8;
    header.value.value.bytes = Bytes(value);
    headers.push_back(header);
    if (value.size() > kMaxShortString) continue;
    if (name == kCorrelationIdHeader) {
      properties._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
      properties.correlation_id = Bytes(value);
    } else if (name == kEventTypeHeader) {
      properties._flags |= AMQP_BASIC_TYPE_FLAG;
      properties.type = Bytes(value);
    }
  }
  properties.headers.num_entries = static_cast<int>(headers.size());
  properties.headers.entries = headers.data();
  return amqp_basic_publish(
      connection_->state(), connection_->channel(),
      Bytes(message.route.exchange), Bytes(message.route.routing_key),
      /*mandatory=*/1, /*immediate=*/0, &properties, Bytes(m.payload));
}

RabbitMqOutboxSink::Impl::Round RabbitMqOutboxSink::Impl::PublishAndConfirm(
    absl::Span<const Prepared> round, std::vector<absl::Status>& statuses) {
  Round result;
  RabbitMqConnection& connection = *connection_;
  const auto lose = [&](const std::string& why,
                        const std::vector<bool>& settled) {
    int64_t failed = 0;
    for (size_t i = 0; i < round.size(); ++i) {
      if (settled[i]) continue;
      statuses[round[i].index] = absl::UnavailableError(
          absl::StrCat("RabbitMQ at ", masked_url_, ": ", why,
                       "; the message was not confirmed"));
      ++failed;
    }
    Count(0, failed, 0, 0, 0);
    Drop();
    result.outcome = Round::kConnectionLost;
    return result;
  };

  std::vector<bool> settled(round.size(), false);
  size_t unsettled = round.size();
  absl::Status channel = connection.EnsureChannel();
  if (!channel.ok()) return lose(std::string(channel.message()), settled);

  // What is known not to go is not sent (and takes no delivery tag): a
  // message to a missing exchange, or larger than the broker took before,
  // would close the channel; one whose headers cannot fit a frame would
  // make librabbitmq fail half-way through it.
  const auto refuse = [&](size_t i, absl::Status status) {
    statuses[round[i].index] = std::move(status);
    settled[i] = true;
    --unsettled;
    Count(0, 1, 0, 0, 0);
  };
  absl::flat_hash_map<std::string, absl::Status> exchanges;
  for (const Prepared& message : round) {
    const std::string& exchange = message.route.exchange;
    if (exchanges.contains(exchange)) continue;
    absl::Status checked = connection.CheckExchange(exchange);
    if (absl::IsUnavailable(checked)) {
      return lose(std::string(checked.message()), settled);
    }
    exchanges.emplace(exchange, std::move(checked));
  }
  const uint64_t first_tag = connection.next_tag();
  // published[tag - first_tag]: the message's position in the round.
  std::vector<size_t> published;
  published.reserve(round.size());
  for (size_t i = 0; i < round.size(); ++i) {
    const Prepared& message = round[i];
    if (const absl::Status& exchange = exchanges[message.route.exchange];
        !exchange.ok()) {
      refuse(i, absl::Status(exchange.code(),
                             absl::StrCat("RabbitMQ at ", masked_url_, ": ",
                                          exchange.message())));
      continue;
    }
    const size_t size = message.entry->message.payload.size();
    if (connection.max_message_size() > 0 &&
        size > connection.max_message_size()) {
      refuse(i, absl::InvalidArgumentError(
                    absl::StrCat("message size ", size,
                                 " is larger than RabbitMQ's "
                                 "max_message_size ",
                                 connection.max_message_size(),
                                 " (learned when it refused a message with: ",
                                 connection.size_refusal(), ")")));
      continue;
    }
    const size_t header_bytes = HeaderFrameBytes(
        message.entry->message, message.message_id, options_.content_type);
    if (header_bytes > connection.frame_max()) {
      refuse(i, absl::InvalidArgumentError(
                    absl::StrCat("headers: about ", header_bytes,
                                 " bytes, more than fit in one AMQP frame of ",
                                 connection.frame_max(), " bytes")));
      continue;
    }
    const int sent = Publish(message);
    if (sent != AMQP_STATUS_OK) {
      return lose(absl::StrCat("lost the connection while publishing: ",
                               amqp_error_string2(sent)),
                  settled);
    }
    connection.CountPublished();
    published.push_back(i);
  }

  // Returned messages: their reply, by position, until their ack comes.
  std::vector<std::string> returned(round.size());
  const auto settle = [&](uint64_t tag, bool multiple, bool ack) {
    if (published.empty() || tag < first_tag) return;
    uint64_t last = tag - first_tag;
    if (last >= published.size()) {
      // Not a tag of ours (the broker never does this).
      if (!multiple) return;
      last = published.size() - 1;
    }
    const uint64_t first = multiple ? 0 : last;
    int64_t confirmed = 0, failed = 0, bounced = 0;
    for (uint64_t t = first; t <= last; ++t) {
      const size_t i = published[t];
      if (settled[i]) continue;
      settled[i] = true;
      --unsettled;
      absl::Status& status = statuses[round[i].index];
      if (!ack) {
        status = absl::UnavailableError(absl::StrCat(
            "RabbitMQ at ", masked_url_,
            " nacked the message (it could not take it: an internal error, "
            "or a queue full with overflow reject-publish)"));
        ++failed;
      } else if (!returned[i].empty()) {
        status = absl::FailedPreconditionError(returned[i]);
        ++failed;
        ++bounced;
      } else {
        status = absl::OkStatus();
        ++confirmed;
      }
    }
    Count(confirmed, failed, bounced, 0, 0);
  };

  absl::Time deadline = absl::Now() + options_.confirm_timeout;
  while (unsettled > 0) {
    // The frame of the previous turn is done with.
    amqp_maybe_release_buffers(connection.state());
    const timeval tv = Timeval(deadline - absl::Now());
    amqp_frame_t frame;
    const int read =
        amqp_simple_wait_frame_noblock(connection.state(), &frame, &tv);
    if (read == AMQP_STATUS_TIMEOUT) {
      return lose(absl::StrCat("no confirm within ",
                               absl::FormatDuration(options_.confirm_timeout),
                               " (confirm_timeout)"),
                  settled);
    }
    if (read != AMQP_STATUS_OK) {
      return lose(
          absl::StrCat("lost the connection: ", amqp_error_string2(read)),
          settled);
    }
    deadline = absl::Now() + options_.confirm_timeout;
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    const amqp_method_t& method = frame.payload.method;
    if (frame.channel == 0) {
      if (method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* close =
            static_cast<const amqp_connection_close_t*>(method.decoded);
        const std::string why = absl::StrCat(
            "the broker closed the connection: ", close->reply_code, " ",
            FromBytes(close->reply_text));
        amqp_connection_close_ok_t close_ok;
        close_ok.dummy = 0;
        amqp_send_method(connection.state(), 0, AMQP_CONNECTION_CLOSE_OK_METHOD,
                         &close_ok);
        return lose(why, settled);
      }
      // connection.blocked and the like: nothing to do.
      continue;
    }
    // A frame of a channel closed earlier.
    if (frame.channel != connection.channel()) continue;
    switch (method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* ack = static_cast<const amqp_basic_ack_t*>(method.decoded);
        settle(ack->delivery_tag, ack->multiple != 0, /*ack=*/true);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* nack =
            static_cast<const amqp_basic_nack_t*>(method.decoded);
        settle(nack->delivery_tag, nack->multiple != 0, /*ack=*/false);
        break;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        // A return carries no delivery tag: the message (its header and
        // body frames follow) is known by its message_id.
        const auto* back =
            static_cast<const amqp_basic_return_t*>(method.decoded);
        const std::string why = absl::StrCat(
            "RabbitMQ returned the message as unroutable: ", back->reply_code,
            " ", FromBytes(back->reply_text), " (exchange \"",
            FromBytes(back->exchange), "\", routing key \"",
            FromBytes(back->routing_key),
            "\"): no queue is bound for its routing key");
        amqp_message_t message;
        const amqp_rpc_reply_t body = amqp_read_message(
            connection.state(), connection.channel(), &message, 0);
        if (body.reply_type != AMQP_RESPONSE_NORMAL) {
          int code = 0;
          return lose(absl::StrCat("reading a returned message: ",
                                   ReplyText(body, &code)),
                      settled);
        }
        if (message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
          const std::string id = FromBytes(message.properties.message_id);
          for (size_t i = 0; i < round.size(); ++i) {
            if (!settled[i] && round[i].message_id == id) {
              returned[i] = why;
              break;
            }
          }
        }
        amqp_destroy_message(&message);
        break;
      }
      case AMQP_CHANNEL_CLOSE_METHOD: {
        const auto* close =
            static_cast<const amqp_channel_close_t*>(method.decoded);
        result.outcome = Round::kChannelClosed;
        result.reply_code = close->reply_code;
        result.reply_text = FromBytes(close->reply_text);
        connection.ChannelClosedByBroker();
        Count(0, 0, 0, 1, 0);
        for (size_t i = 0; i < round.size(); ++i) {
          if (!settled[i]) result.unsettled.push_back(i);
        }
        return result;
      }
      default:
        break;
    }
  }
  amqp_maybe_release_buffers(connection.state());
  return result;
}

std::vector<absl::Status> RabbitMqOutboxSink::Impl::SendBatch(
    absl::Span<const OutboxEntry> entries) {
  internal::MutexLock lock(&send_mu_);
  std::vector<absl::Status> statuses(
      entries.size(), absl::InternalError("the RabbitMQ sink did not send it"));
  std::vector<Prepared> pending;
  pending.reserve(entries.size());
  int64_t invalid = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    absl::StatusOr<Prepared> prepared = Prepare(i, entries[i]);
    if (prepared.ok()) {
      pending.push_back(*std::move(prepared));
    } else {
      statuses[i] = prepared.status();
      ++invalid;
    }
  }
  Count(0, invalid, 0, 0, 0);

  // After the broker closed the channel because of a message it did not
  // name, the unsettled ones go one message per round until the next close
  // names its culprit; then the rest goes as a batch again.
  bool one_at_a_time = false;
  // Whether the unsettled messages were sent again as a batch after a
  // close whose reply taught us something.
  bool relearned = false;
  size_t next = 0;
  while (next < pending.size()) {
    if (connection_ == nullptr) {
      absl::Status connected = ConnectLocked();
      if (!connected.ok()) {
        for (size_t i = next; i < pending.size(); ++i) {
          statuses[pending[i].index] = connected;
        }
        Count(0, static_cast<int64_t>(pending.size() - next), 0, 0, 0);
        break;
      }
    }
    const size_t size = one_at_a_time ? 1 : pending.size() - next;
    const absl::Span<const Prepared> round =
        absl::MakeConstSpan(pending).subspan(next, size);
    Round done = PublishAndConfirm(round, statuses);
    if (done.outcome == Round::kSettled) {
      next += size;
      continue;
    }
    if (done.outcome == Round::kConnectionLost) {
      // The rest was not sent; the broker is gone or stuck, so do not try
      // again before the next call.
      const size_t unsent = pending.size() - next - size;
      for (size_t i = next + size; i < pending.size(); ++i) {
        statuses[pending[i].index] = absl::UnavailableError(absl::StrCat(
            "RabbitMQ at ", masked_url_,
            ": not sent, the connection was lost with an earlier message of "
            "the batch"));
      }
      Count(0, static_cast<int64_t>(unsent), 0, 0, 0);
      break;
    }
    // The channel was closed. What the reply teaches (the broker's size
    // limit, an exchange gone) keeps the culprit from being sent again.
    bool learned = false;
    if (done.reply_code == AMQP_PRECONDITION_FAILED) {
      learned = connection_->LearnMaxMessageSize(done.reply_text);
    } else if (done.reply_code == AMQP_NOT_FOUND) {
      connection_->ForgetExchanges();
      learned = true;
    }
    // A message that closes the channel is never acked, so when one
    // message is left unsettled, it is the culprit.
    if (done.unsettled.size() == 1) {
      const Prepared& culprit = round[done.unsettled[0]];
      statuses[culprit.index] = absl::Status(
          CodeOfReply(done.reply_code),
          absl::StrCat("RabbitMQ at ", masked_url_,
                       " refused the message (exchange \"",
                       culprit.route.exchange, "\", routing key \"",
                       culprit.route.routing_key,
                       "\") and closed the channel: ", done.reply_code, " ",
                       done.reply_text));
      Count(0, 1, 0, 0, 0);
      next += size;
      // Found: the rest goes as a batch again.
      one_at_a_time = false;
      continue;
    }
    // Else send the unsettled ones again, in order: as a batch when the
    // reply taught us what to leave out (once per call: should the channel
    // close again, that lesson was not the whole story), else one at a
    // time.
    std::vector<Prepared> again;
    again.reserve(done.unsettled.size() + pending.size() - next - size);
    for (size_t i : done.unsettled) again.push_back(round[i]);
    for (size_t i = next + size; i < pending.size(); ++i) {
      again.push_back(std::move(pending[i]));
    }
    pending = std::move(again);
    next = 0;
    one_at_a_time = !learned || relearned;
    relearned = relearned || learned;
  }
  return statuses;
}

void RabbitMqOutboxSink::Impl::Count(int64_t confirmed, int64_t failed,
                                     int64_t returned, int64_t channels_closed,
                                     int64_t connections) {
  internal::MutexLock lock(&stats_mu_);
  stats_.confirmed += confirmed;
  stats_.failed += failed;
  stats_.returned += returned;
  stats_.channels_closed += channels_closed;
  stats_.connections += connections;
}

// --- RabbitMqOutboxSink -----------------------------------------------------

absl::StatusOr<std::unique_ptr<RabbitMqOutboxSink>> RabbitMqOutboxSink::Connect(
    RabbitMqOutboxSinkOptions options) {
  if (options.message_id_prefix.size() > kMaxMessageIdPrefix) {
    return absl::InvalidArgumentError(
        absl::StrCat("message_id_prefix: ", options.message_id_prefix.size(),
                     " bytes, more than 200"));
  }
  if (options.content_type.size() > kMaxShortString) {
    return absl::InvalidArgumentError("content_type: over 255 bytes");
  }
  if (options.confirm_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("confirm_timeout: must be positive");
  }
  if (options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("connect_timeout: must be positive");
  }
  ES_ASSIGN_OR_RETURN(Endpoint endpoint, ParseUrl(options.url));
  std::string masked_url = MaskAmqpUrl(options.url);
  // Should the URL be shaped so that the masking missed the password, show
  // it rebuilt from its parts instead.
  if (!endpoint.password.empty() &&
      masked_url.find(endpoint.password) != std::string::npos) {
    masked_url = absl::StrCat("amqp://", endpoint.user, ":***@", endpoint.host,
                              ":", endpoint.port, "/", endpoint.vhost);
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(endpoint),
                                     std::move(masked_url));
  ES_RETURN_IF_ERROR(impl->Connect());
  return std::unique_ptr<RabbitMqOutboxSink>(
      new RabbitMqOutboxSink(std::move(impl)));
}

RabbitMqOutboxSink::RabbitMqOutboxSink(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

RabbitMqOutboxSink::~RabbitMqOutboxSink() = default;

absl::Status RabbitMqOutboxSink::Send(const OutboxEntry& entry) {
  return impl_->SendBatch(absl::MakeConstSpan(&entry, 1))[0];
}

std::vector<absl::Status> RabbitMqOutboxSink::SendBatch(
    absl::Span<const OutboxEntry> entries) {
  return impl_->SendBatch(entries);
}

const std::string& RabbitMqOutboxSink::masked_url() const {
  return impl_->masked_url();
}

RabbitMqOutboxSinkStats RabbitMqOutboxSink::stats() const {
  return impl_->stats();
}

}  // namespace eventstore
