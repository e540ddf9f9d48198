// RabbitMqOutboxSink: publishing with confirms over librabbitmq.
//
// One connection, one channel in confirm mode at a time. A batch is
// published whole (BeginBatch: consecutive delivery tags, in batch order,
// after the batches begun before), and each message is tracked by its tag
// until settled; EndBatch reads frames until the oldest batch is settled:
// basic.ack and basic.nack settle one tag or, with `multiple`, every tag up
// to theirs, whichever batch it is in; a basic.return (mandatory flag,
// nothing bound) comes before the ack of the message it returns and marks
// it failed. A channel.close from the broker takes back every unsettled
// message of every batch in flight: the culprit is one of them (a message
// that closes the channel is never acked), found by publishing them again,
// in order, one at a time on a new channel (Recover).

#include "projections/sinks/rabbitmq/rabbitmq_outbox_sink.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
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
  // Where its status goes (in its batch's statuses).
  absl::Status* status = nullptr;
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

  void BeginBatch(absl::Span<const OutboxEntry> entries);
  std::vector<absl::Status> EndBatch();

  const std::string& masked_url() const { return masked_url_; }

  RabbitMqOutboxSinkStats stats() const {
    internal::MutexLock lock(&stats_mu_);
    return stats_;
  }

 private:
  // A batch begun and not ended.
  struct Batch {
    // One per entry; final once the batch's messages are all settled.
    std::vector<absl::Status> statuses;
    // The entries that could be prepared, in batch order; never resized
    // once the batch is begun (Tracked points into it).
    std::vector<Prepared> prepared;
    // Messages published and not yet settled.
    size_t unsettled = 0;
  };
  // A message published on the channel and not yet settled, by delivery
  // tag.
  struct Tracked {
    Prepared* message = nullptr;
    Batch* batch = nullptr;
    bool settled = false;
    // The broker returned it (basic.return, before its ack): why.
    std::string returned;
  };
  // How waiting for confirms ended.
  enum class Outcome {
    // What was waited for is settled.
    kSettled,
    // The broker closed the channel; the messages unsettled then are in
    // `closed_unsettled_`, in publishing order, neither confirmed nor
    // failed.
    kChannelClosed,
    // The connection is gone (dropped); every unsettled message failed.
    kConnectionLost,
  };

  absl::Status ConnectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  absl::StatusOr<Prepared> Prepare(absl::Status* status,
                                   const OutboxEntry& entry);
  // Publishes `messages` in order on the channel (connecting first when
  // needed), each tracked until settled; a message known not to go is
  // failed without being sent. Returns false when the connection was lost
  // (every unsettled message failed, and the ones of `messages` not
  // reached with them).
  // The messages count as `batch`'s (none's when null) while unsettled.
  bool PublishAll(absl::Span<Prepared* const> messages, Batch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // Publishes one message; an error means the connection is unusable.
  int Publish(const Prepared& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // Reads the broker's frames, settling tracked messages, until
  // `batch->unsettled` is 0 (every tracked message when null).
  Outcome Await(const Batch* batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // Settles the tracked messages with tag `tag` (and every earlier one
  // when `multiple`).
  void Settle(uint64_t tag, bool multiple, bool ack)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // Fails every unsettled message with kUnavailable (`why`) and drops the
  // connection.
  void Lose(const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // After the broker closed the channel (reply `reply_code`,
  // `reply_text`) with `unsettled` (in order) neither confirmed nor
  // failed: finds the culprit and settles the others, sending them again
  // on a new channel (see the overview).
  void Recover(int reply_code, std::string reply_text,
               std::vector<Prepared*> unsettled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // Waits until `batch` is settled, recovering from a closed channel.
  void Finish(const Batch* batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  void Fail(absl::Span<Prepared* const> messages, const absl::Status& status);
  // Forgets the connection; the next send connects again.
  void Drop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_) { connection_.reset(); }
  void Count(int64_t confirmed, int64_t failed, int64_t returned,
             int64_t channels_closed, int64_t connections);

  const RabbitMqOutboxSinkOptions options_;
  const Endpoint endpoint_;
  const std::string masked_url_;

  internal::Mutex send_mu_;
  std::unique_ptr<RabbitMqConnection> connection_ ABSL_GUARDED_BY(send_mu_);
  // Begun and not ended, oldest first.
  std::deque<std::unique_ptr<Batch>> batches_ ABSL_GUARDED_BY(send_mu_);
  // The messages published on the channel since tracked_first_tag_, in
  // tag order; settled ones leave from the front.
  std::deque<Tracked> tracked_ ABSL_GUARDED_BY(send_mu_);
  uint64_t tracked_first_tag_ ABSL_GUARDED_BY(send_mu_) = 1;
  // Set by Await when it returns kChannelClosed.
  int closed_reply_code_ ABSL_GUARDED_BY(send_mu_) = 0;
  std::string closed_reply_text_ ABSL_GUARDED_BY(send_mu_);
  std::vector<Prepared*> closed_unsettled_ ABSL_GUARDED_BY(send_mu_);
  // The connection was lost with a batch in flight: later batches are not
  // sent until every batch begun is ended, so that none overtakes the
  // retry of what was lost.
  bool hold_ ABSL_GUARDED_BY(send_mu_) = false;

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
    absl::Status* status, const OutboxEntry& entry) {
  Prepared prepared;
  prepared.status = status;
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

void RabbitMqOutboxSink::Impl::Fail(absl::Span<Prepared* const> messages,
                                    const absl::Status& status) {
  for (Prepared* message : messages) *message->status = status;
  Count(0, static_cast<int64_t>(messages.size()), 0, 0, 0);
}

void RabbitMqOutboxSink::Impl::Lose(const std::string& why) {
  int64_t failed = 0;
  for (Tracked& tracked : tracked_) {
    if (tracked.settled) continue;
    *tracked.message->status = absl::UnavailableError(
        absl::StrCat("RabbitMQ at ", masked_url_, ": ", why,
                     "; the message was not confirmed"));
    if (tracked.batch != nullptr) --tracked.batch->unsettled;
    ++failed;
  }
  tracked_.clear();
  Count(0, failed, 0, 0, 0);
  Drop();
  if (!batches_.empty()) hold_ = true;
}

bool RabbitMqOutboxSink::Impl::PublishAll(absl::Span<Prepared* const> messages,
                                          Batch* batch) {
  const auto unsent = [&](size_t from, std::string_view why) {
    Fail(messages.subspan(from),
         absl::UnavailableError(absl::StrCat("RabbitMQ at ", masked_url_,
                                             ": not sent, ", ToAbsl(why))));
  };
  if (connection_ == nullptr) {
    absl::Status connected = ConnectLocked();
    if (!connected.ok()) {
      Fail(messages, connected);
      if (!batches_.empty()) hold_ = true;
      return false;
    }
  }
  RabbitMqConnection& connection = *connection_;
  if (!connection.channel_open()) {
    // The channel (and with it the tags of what it carried) is new.
    tracked_.clear();
    absl::Status channel = connection.EnsureChannel();
    if (!channel.ok()) {
      Lose(std::string(channel.message()));
      unsent(0, "the connection failed");
      return false;
    }
  }
  if (tracked_.empty()) tracked_first_tag_ = connection.next_tag();

  // What is known not to go is not sent (and takes no delivery tag): a
  // message to a missing exchange, or larger than the broker took before,
  // would close the channel; one whose headers cannot fit a frame would
  // make librabbitmq fail half-way through it.
  absl::flat_hash_map<std::string, absl::Status> exchanges;
  for (const Prepared* message : messages) {
    const std::string& exchange = message->route.exchange;
    if (exchanges.contains(exchange)) continue;
    absl::Status checked = connection.CheckExchange(exchange);
    if (absl::IsUnavailable(checked)) {
      Lose(std::string(checked.message()));
      unsent(0, "the connection failed");
      return false;
    }
    exchanges.emplace(exchange, std::move(checked));
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    Prepared& message = *messages[i];
    absl::Status refused;
    if (const absl::Status& exchange = exchanges[message.route.exchange];
        !exchange.ok()) {
      refused = absl::Status(
          exchange.code(),
          absl::StrCat("RabbitMQ at ", masked_url_, ": ", exchange.message()));
    } else if (const size_t size = message.entry->message.payload.size();
               connection.max_message_size() > 0 &&
               size > connection.max_message_size()) {
      refused = absl::InvalidArgumentError(absl::StrCat(
          "message size ", size, " is larger than RabbitMQ's max_message_size ",
          connection.max_message_size(),
          " (learned when it refused a message with: ",
          connection.size_refusal(), ")"));
    } else if (const size_t header_bytes =
                   HeaderFrameBytes(message.entry->message, message.message_id,
                                    options_.content_type);
               header_bytes > connection.frame_max()) {
      refused = absl::InvalidArgumentError(
          absl::StrCat("headers: about ", header_bytes,
                       " bytes, more than fit in one AMQP frame of ",
                       connection.frame_max(), " bytes"));
    }
    if (!refused.ok()) {
      Fail(absl::MakeConstSpan(&messages[i], 1), refused);
      continue;
    }
    const int sent = Publish(message);
    if (sent != AMQP_STATUS_OK) {
      // Counted with the others unsettled.
      Lose(absl::StrCat("lost the connection while publishing: ",
                        amqp_error_string2(sent)));
      *message.status = absl::UnavailableError(
          absl::StrCat("RabbitMQ at ", masked_url_,
                       ": lost the connection while publishing the message: ",
                       amqp_error_string2(sent)));
      Count(0, 1, 0, 0, 0);
      unsent(i + 1, "the connection was lost with an earlier message");
      return false;
    }
    connection.CountPublished();
    Tracked tracked;
    tracked.message = &message;
    tracked.batch = batch;
    tracked_.push_back(std::move(tracked));
    if (batch != nullptr) ++batch->unsettled;
  }
  return true;
}

void RabbitMqOutboxSink::Impl::Settle(uint64_t tag, bool multiple, bool ack) {
  if (tag < tracked_first_tag_) return;
  uint64_t last = tag - tracked_first_tag_;
  if (last >= tracked_.size()) {
    // Not a tag of ours (the broker never does this).
    if (!multiple) return;
    last = tracked_.size() - 1;
  }
  const uint64_t first = multiple ? 0 : last;
  int64_t confirmed = 0, failed = 0, bounced = 0;
  for (uint64_t t = first; t <= last; ++t) {
    Tracked& tracked = tracked_[t];
    if (tracked.settled) continue;
    tracked.settled = true;
    if (tracked.batch != nullptr) --tracked.batch->unsettled;
    absl::Status& status = *tracked.message->status;
    if (!ack) {
      status = absl::UnavailableError(absl::StrCat(
          "RabbitMQ at ", masked_url_,
          " nacked the message (it could not take it: an internal error, "
          "or a queue full with overflow reject-publish)"));
      ++failed;
    } else if (!tracked.returned.empty()) {
      status = absl::FailedPreconditionError(tracked.returned);
      ++failed;
      ++bounced;
    } else {
      status = absl::OkStatus();
      ++confirmed;
    }
  }
  Count(confirmed, failed, bounced, 0, 0);
  while (!tracked_.empty() && tracked_.front().settled) {
    tracked_.pop_front();
    ++tracked_first_tag_;
  }
}

RabbitMqOutboxSink::Impl::Outcome RabbitMqOutboxSink::Impl::Await(
    const Batch* batch) {
  const auto done = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return batch != nullptr ? batch->unsettled == 0 : tracked_.empty();
  };
  absl::Time deadline = absl::Now() + options_.confirm_timeout;
  while (!done()) {
    RabbitMqConnection& connection = *connection_;
    // The frame of the previous turn is done with.
    amqp_maybe_release_buffers(connection.state());
    const timeval tv = Timeval(deadline - absl::Now());
    amqp_frame_t frame;
    const int read =
        amqp_simple_wait_frame_noblock(connection.state(), &frame, &tv);
    if (read == AMQP_STATUS_TIMEOUT) {
      Lose(absl::StrCat("no confirm within ",
                        absl::FormatDuration(options_.confirm_timeout),
                        " (confirm_timeout)"));
      return Outcome::kConnectionLost;
    }
    if (read != AMQP_STATUS_OK) {
      Lose(absl::StrCat("lost the connection: ", amqp_error_string2(read)));
      return Outcome::kConnectionLost;
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
        Lose(why);
        return Outcome::kConnectionLost;
      }
      // connection.blocked and the like: nothing to do.
      continue;
    }
    // A frame of a channel closed earlier.
    if (frame.channel != connection.channel()) continue;
    switch (method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* ack = static_cast<const amqp_basic_ack_t*>(method.decoded);
        Settle(ack->delivery_tag, ack->multiple != 0, /*ack=*/true);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* nack =
            static_cast<const amqp_basic_nack_t*>(method.decoded);
        Settle(nack->delivery_tag, nack->multiple != 0, /*ack=*/false);
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
          Lose(absl::StrCat("reading a returned message: ",
                            ReplyText(body, &code)));
          return Outcome::kConnectionLost;
        }
        if (message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
          const std::string id = FromBytes(message.properties.message_id);
          for (Tracked& tracked : tracked_) {
            if (!tracked.settled && tracked.message->message_id == id) {
              tracked.returned = why;
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
        closed_reply_code_ = close->reply_code;
        closed_reply_text_ = FromBytes(close->reply_text);
        connection.ChannelClosedByBroker();
        Count(0, 0, 0, 1, 0);
        closed_unsettled_.clear();
        for (Tracked& tracked : tracked_) {
          if (tracked.settled) continue;
          closed_unsettled_.push_back(tracked.message);
          // Recover settles them.
          if (tracked.batch != nullptr) --tracked.batch->unsettled;
        }
        tracked_.clear();
        return Outcome::kChannelClosed;
      }
      default:
        break;
    }
  }
  amqp_maybe_release_buffers(connection_->state());
  return Outcome::kSettled;
}

void RabbitMqOutboxSink::Impl::Recover(int reply_code, std::string reply_text,
                                       std::vector<Prepared*> unsettled) {
  // After a close that did not name its culprit, the unsettled ones go one
  // message per round until the next close does; then the rest goes as a
  // batch again.
  bool one_at_a_time = false;
  // Whether the unsettled messages were sent again as a batch after a
  // close whose reply taught us something.
  bool relearned = false;
  // Not sent in the round the channel closed in.
  std::vector<Prepared*> rest;
  while (true) {
    // What the reply teaches (the broker's size limit, an exchange gone)
    // keeps the culprit from being sent again.
    bool learned = false;
    if (reply_code == AMQP_PRECONDITION_FAILED) {
      learned = connection_->LearnMaxMessageSize(reply_text);
    } else if (reply_code == AMQP_NOT_FOUND) {
      connection_->ForgetExchanges();
      learned = true;
    }
    std::vector<Prepared*> queue;
    if (unsettled.size() == 1) {
      // A message that closes the channel is never acked, so when one
      // message is left unsettled, it is the culprit.
      const Prepared& culprit = *unsettled[0];
      *culprit.status = absl::Status(
          CodeOfReply(reply_code),
          absl::StrCat(
              "RabbitMQ at ", masked_url_, " refused the message (exchange \"",
              culprit.route.exchange, "\", routing key \"",
              culprit.route.routing_key,
              "\") and closed the channel: ", reply_code, " ", reply_text));
      Count(0, 1, 0, 0, 0);
      // Found: the rest goes as a batch again.
      one_at_a_time = false;
      queue = std::move(rest);
    } else {
      // Else send the unsettled ones again, in order: as a batch when the
      // reply taught us what to leave out (once per call: should the
      // channel close again, that lesson was not the whole story), else one
      // at a time.
      queue = std::move(unsettled);
      queue.insert(queue.end(), rest.begin(), rest.end());
      one_at_a_time = !learned || relearned;
      relearned = relearned || learned;
    }
    rest.clear();
    size_t next = 0;
    while (next < queue.size()) {
      const size_t size = one_at_a_time ? 1 : queue.size() - next;
      const absl::Span<Prepared* const> round =
          absl::MakeConstSpan(queue).subspan(next, size);
      const Outcome outcome = PublishAll(round, nullptr)
                                  ? Await(nullptr)
                                  : Outcome::kConnectionLost;
      if (outcome == Outcome::kConnectionLost) {
        // The round's messages failed with the connection.
        Fail(absl::MakeConstSpan(queue).subspan(next + size),
             absl::UnavailableError(absl::StrCat(
                 "RabbitMQ at ", masked_url_,
                 ": not sent, the connection was lost with an earlier "
                 "message of the batch")));
        return;
      }
      if (outcome == Outcome::kChannelClosed) break;
      next += size;
    }
    if (next >= queue.size()) return;
    const size_t size = one_at_a_time ? 1 : queue.size() - next;
    reply_code = closed_reply_code_;
    reply_text = std::move(closed_reply_text_);
    unsettled = std::move(closed_unsettled_);
    rest.assign(queue.begin() + static_cast<std::ptrdiff_t>(next + size),
                queue.end());
  }
}

void RabbitMqOutboxSink::Impl::Finish(const Batch* batch) {
  if (batch->unsettled == 0 || connection_ == nullptr) return;
  if (Await(batch) != Outcome::kChannelClosed) return;
  // Every batch in flight had its unsettled messages taken back: they are
  // settled (sent again, or failed) before this returns.
  Recover(closed_reply_code_, std::move(closed_reply_text_),
          std::move(closed_unsettled_));
}

void RabbitMqOutboxSink::Impl::BeginBatch(
    absl::Span<const OutboxEntry> entries) {
  internal::MutexLock lock(&send_mu_);
  auto owned = std::make_unique<Batch>();
  Batch& batch = *owned;
  batch.statuses.assign(
      entries.size(), absl::InternalError("the RabbitMQ sink did not send it"));
  batch.prepared.reserve(entries.size());
  int64_t invalid = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    absl::StatusOr<Prepared> prepared = Prepare(&batch.statuses[i], entries[i]);
    if (prepared.ok()) {
      batch.prepared.push_back(*std::move(prepared));
    } else {
      batch.statuses[i] = prepared.status();
      ++invalid;
    }
  }
  Count(0, invalid, 0, 0, 0);
  std::vector<Prepared*> messages;
  messages.reserve(batch.prepared.size());
  for (Prepared& prepared : batch.prepared) messages.push_back(&prepared);
  batches_.push_back(std::move(owned));
  if (hold_) {
    Fail(messages, absl::UnavailableError(absl::StrCat(
                       "RabbitMQ at ", masked_url_,
                       ": not sent, the connection was lost with an earlier "
                       "batch in flight")));
    return;
  }
  PublishAll(messages, &batch);
}

std::vector<absl::Status> RabbitMqOutboxSink::Impl::EndBatch() {
  internal::MutexLock lock(&send_mu_);
  if (batches_.empty()) return {};
  Finish(batches_.front().get());
  std::vector<absl::Status> statuses = std::move(batches_.front()->statuses);
  batches_.pop_front();
  if (batches_.empty()) hold_ = false;
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
  return SendBatch(absl::MakeConstSpan(&entry, 1))[0];
}

std::vector<absl::Status> RabbitMqOutboxSink::SendBatch(
    absl::Span<const OutboxEntry> entries) {
  impl_->BeginBatch(entries);
  return impl_->EndBatch();
}

void RabbitMqOutboxSink::BeginBatch(absl::Span<const OutboxEntry> entries) {
  impl_->BeginBatch(entries);
}

std::vector<absl::Status> RabbitMqOutboxSink::EndBatch() {
  return impl_->EndBatch();
}

const std::string& RabbitMqOutboxSink::masked_url() const {
  return impl_->masked_url();
}

RabbitMqOutboxSinkStats RabbitMqOutboxSink::stats() const {
  return impl_->stats();
}

}  // namespace eventstore
