#include "tests/sinks/nats/nats_test_helpers.h"

#include <nats/nats.h>

#include <atomic>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace eventstore::test {

absl::StatusOr<std::unique_ptr<StreamReader>> StreamReader::Connect(
    const std::string& url) {
  std::unique_ptr<StreamReader> reader(new StreamReader);
  natsOptions* options = nullptr;
  natsStatus s = natsOptions_Create(&options);
  if (s == NATS_OK) s = natsOptions_SetURL(options, url.c_str());
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(options, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(options, 50);
  if (s == NATS_OK) s = natsConnection_Connect(&reader->connection_, options);
  natsOptions_Destroy(options);
  if (s == NATS_OK) {
    s = natsConnection_JetStream(&reader->js_, reader->connection_, nullptr);
  }
  if (s != NATS_OK) {
    return absl::UnavailableError(
        absl::StrCat("the test's reader cannot connect to ", url, ": ",
                     natsStatus_GetText(s)));
  }
  return reader;
}

StreamReader::~StreamReader() {
  jsCtx_Destroy(js_);
  natsConnection_Destroy(connection_);
}

absl::StatusOr<uint64_t> StreamReader::Count(const std::string& stream) {
  jsStreamInfo* info = nullptr;
  natsStatus s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, nullptr);
  if (s != NATS_OK) {
    return absl::UnavailableError(
        absl::StrCat("stream info of ", stream, ": ", natsStatus_GetText(s)));
  }
  const uint64_t count = info->State.Msgs;
  jsStreamInfo_Destroy(info);
  return count;
}

absl::StatusOr<std::vector<StoredMessage>> StreamReader::ReadAll(
    const std::string& stream) {
  jsStreamInfo* info = nullptr;
  natsStatus s = js_GetStreamInfo(&info, js_, stream.c_str(), nullptr, nullptr);
  if (s != NATS_OK) {
    return absl::UnavailableError(
        absl::StrCat("stream info of ", stream, ": ", natsStatus_GetText(s)));
  }
  const uint64_t first = info->State.FirstSeq;
  const uint64_t last = info->State.LastSeq;
  const uint64_t count = info->State.Msgs;
  jsStreamInfo_Destroy(info);
  std::vector<StoredMessage> messages;
  for (uint64_t seq = first; count > 0 && seq <= last; ++seq) {
    natsMsg* msg = nullptr;
    s = js_GetMsg(&msg, js_, stream.c_str(), seq, nullptr, nullptr);
    if (s == NATS_NOT_FOUND) continue;
    if (s != NATS_OK) {
      return absl::UnavailableError(absl::StrCat(
          "message ", seq, " of ", stream, ": ", natsStatus_GetText(s)));
    }
    StoredMessage stored;
    stored.sequence = seq;
    stored.subject = natsMsg_GetSubject(msg);
    stored.data.assign(natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    const char** keys = nullptr;
    int key_count = 0;
    if (natsMsgHeader_Keys(msg, &keys, &key_count) == NATS_OK) {
      for (int i = 0; i < key_count; ++i) {
        const char* value = nullptr;
        if (natsMsgHeader_Get(msg, keys[i], &value) == NATS_OK) {
          stored.headers[keys[i]] = value;
        }
      }
      free(static_cast<void*>(keys));
    }
    natsMsg_Destroy(msg);
    messages.push_back(std::move(stored));
  }
  return messages;
}

int64_t EntryId(const StoredMessage& message, absl::string_view prefix) {
  auto it = message.headers.find("Nats-Msg-Id");
  if (it == message.headers.end()) return -1;
  absl::string_view id = it->second;
  int64_t value = -1;
  if (!absl::ConsumePrefix(&id, prefix) || !absl::SimpleAtoi(id, &value)) {
    return -1;
  }
  return value;
}

NatsOutboxSinkOptions FreshSinkOptions(const std::string& url) {
  static std::atomic<int> next{0};
  const std::string name = absl::StrCat("es", ++next);
  NatsOutboxSinkOptions options;
  options.url = url;
  options.subject_prefix = absl::StrCat(name, ".");
  options.msg_id_prefix = absl::StrCat(name, "/");
  options.stream.name = absl::StrCat("OUTBOX_", name);
  options.reconnect_wait = absl::Milliseconds(50);
  options.ack_timeout = absl::Seconds(5);
  return options;
}

OutboxMessage Message(const std::string& destination,
                      const std::string& payload) {
  OutboxMessage message;
  message.destination = destination;
  message.key = absl::StrCat("key-", payload);
  message.payload = payload;
  return message;
}

OutboxEntry Entry(int64_t id, OutboxMessage message) {
  OutboxEntry entry;
  entry.id = id;
  entry.message = std::move(message);
  return entry;
}

}  // namespace eventstore::test
