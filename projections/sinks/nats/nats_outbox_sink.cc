#include "projections/sinks/nats/nats_outbox_sink.h"

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
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
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/status_macros.h"
#include "projections/sinks/nats/internal/nats_names.h"

namespace eventstore {
namespace {

// The header JetStream deduplicates by (jsPubOptions.MsgId sets it).
constexpr char kMsgIdHeader[] = "Nats-Msg-Id";
// After SendBatch took back the messages still unacknowledged, how long it
// waits for acknowledgement callbacks already under way to finish.
constexpr absl::Duration kCallbackGrace = absl::Seconds(5);

// --- RAII for libnats handles -----------------------------------------------

struct OptionsDeleter {
  void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
};
struct ConnectionDeleter {
  void operator()(natsConnection* c) const { natsConnection_Destroy(c); }
};
struct JsCtxDeleter {
  void operator()(jsCtx* js) const { jsCtx_Destroy(js); }
};
struct MsgDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
struct PubAckDeleter {
  void operator()(jsPubAck* a) const { jsPubAck_Destroy(a); }
};
struct StreamInfoDeleter {
  void operator()(jsStreamInfo* s) const { jsStreamInfo_Destroy(s); }
};
struct AccountInfoDeleter {
  void operator()(jsAccountInfo* a) const { jsAccountInfo_Destroy(a); }
};
struct StatisticsDeleter {
  void operator()(natsStatistics* s) const { natsStatistics_Destroy(s); }
};
using OptionsPtr = std::unique_ptr<natsOptions, OptionsDeleter>;
using ConnectionPtr = std::unique_ptr<natsConnection, ConnectionDeleter>;
using JsCtxPtr = std::unique_ptr<jsCtx, JsCtxDeleter>;
using MsgPtr = std::unique_ptr<natsMsg, MsgDeleter>;
using PubAckPtr = std::unique_ptr<jsPubAck, PubAckDeleter>;
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, StreamInfoDeleter>;
using AccountInfoPtr = std::unique_ptr<jsAccountInfo, AccountInfoDeleter>;
using StatisticsPtr = std::unique_ptr<natsStatistics, StatisticsDeleter>;

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// libnats's text for `s`: the calling thread's last error when it is about
// `s` (it carries details, such as sizes), else the status's generic text.
// libnats prefixes its last error with where it arose ("(conn.c:2088): "),
// which says nothing to our users: that part is left out.
std::string NatsErrorText(natsStatus s) {
  natsStatus last = NATS_OK;
  const char* text = nats_GetLastError(&last);
  if (last != s || text == nullptr || text[0] == '\0') {
    return natsStatus_GetText(s);
  }
  absl::string_view view(text);
  const size_t location_end = view.find("): ");
  if (absl::StartsWith(view, "(") && location_end != absl::string_view::npos &&
      location_end < 40) {
    view.remove_prefix(location_end + 3);
  }
  return std::string(view);
}

absl::Status ValidateOptions(const NatsOutboxSinkOptions& options) {
  if (options.url.empty()) {
    return absl::InvalidArgumentError("url: is empty (nats://host:port)");
  }
  if (std::string problem =
          internal::NatsSubjectProblem(options.subject_prefix + "x");
      !problem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject_prefix: '", options.subject_prefix,
                     "' makes no valid NATS subject: ", problem));
  }
  if (!internal::IsNatsHeaderValue(options.msg_id_prefix)) {
    return absl::InvalidArgumentError(
        "msg_id_prefix: holds a line break or NUL, which a NATS header "
        "cannot carry");
  }
  if (options.ack_timeout < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("ack_timeout: must be at least 1 ms");
  }
  if (options.connect_timeout < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("connect_timeout: must be at least 1 ms");
  }
  if (options.reconnect_wait < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("reconnect_wait: is negative");
  }
  if (options.max_in_flight < 1) {
    return absl::InvalidArgumentError("max_in_flight: must be positive");
  }
  const NatsStreamOptions& stream = options.stream;
  if (stream.name.empty()) return absl::OkStatus();
  if (!internal::IsNatsStreamName(stream.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream.name: '", stream.name,
                     "' is not letters, digits, '-' and '_'"));
  }
  if (stream.subjects.empty() &&
      (options.subject_prefix.empty() ||
       !absl::EndsWith(options.subject_prefix, "."))) {
    return absl::InvalidArgumentError(
        "stream.subjects: is empty, and subject_prefix does not end with '.' "
        "(the default subjects are subject_prefix + \">\")");
  }
  if (stream.duplicate_window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "stream.duplicate_window: must be positive");
  }
  return absl::OkStatus();
}

// --- the sink --------------------------------------------------------------

class NatsSinkImpl final : public NatsOutboxSink {
 public:
  explicit NatsSinkImpl(NatsOutboxSinkOptions options)
      : options_(std::move(options)),
        masker_(options_.url),
        masked_url_(MaskNatsUrl(options_.url)) {}

  ~NatsSinkImpl() override {
    // Every batch took back its unacknowledged messages, so no
    // acknowledgement callback can reach this object any more.
    js_.reset();
    if (connection_ != nullptr) natsConnection_Close(connection_.get());
    connection_.reset();
  }

  absl::Status Open();

  absl::Status Send(const OutboxEntry& entry) override;
  std::vector<absl::Status> SendBatch(
      absl::Span<const OutboxEntry> entries) override;
  bool PipelinesBatches() const override { return true; }
  void BeginBatch(absl::Span<const OutboxEntry> entries) override;
  std::vector<absl::Status> EndBatch() override;
  NatsOutboxSinkStats stats() const override;
  const std::string& masked_url() const override { return masked_url_; }

 private:
  // A batch begun (BeginBatch) and not ended: its fields are guarded by
  // mu_ (acknowledgements arrive on libnats's threads).
  struct Batch {
    // Nats-Msg-Id -> index in the batch, for the messages handed over.
    absl::flat_hash_map<std::string, size_t> index_by_msg_id;
    std::vector<absl::Status> results;
    std::vector<bool> resolved;
    // index -> the index of the earlier entry with its id (same message).
    std::vector<size_t> same_as;
    // Handed over and not resolved yet.
    size_t outstanding = 0;
  };

  static void OnAck(jsCtx* js, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error,
                    void* closure);
  void HandleAck(natsMsg* msg, jsPubAck* ack, jsPubAckErr* error);
  // Records the outcome of the message with `msg_id` in the oldest batch
  // that awaits one for it; false (and nothing recorded) when none does.
  bool Resolve(const std::string& msg_id, absl::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The same within `batch` only.
  bool ResolveIn(Batch& batch, const std::string& msg_id, absl::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::string Subject(const OutboxEntry& entry) const {
    return absl::StrCat(options_.subject_prefix, entry.message.destination);
  }
  std::string MsgId(const OutboxEntry& entry) const {
    return absl::StrCat(options_.msg_id_prefix, entry.id);
  }
  // The message for `entry`, or kInvalidArgument naming what NATS cannot
  // carry.
  absl::StatusOr<MsgPtr> BuildMessage(const OutboxEntry& entry,
                                      const std::string& subject) const;
  // kUnavailable unless the connection is up.
  absl::Status CheckConnected() const;
  absl::Status StatusFromConnect(natsStatus s) const;
  // The status of a publish to `subject` of `bytes` that failed with `s`
  // (and JetStream's `code`, and libnats's or the server's `text`).
  absl::Status PublishError(natsStatus s, jsErrCode code, std::string_view text,
                            const std::string& subject, size_t bytes) const;
  absl::Status EnsureStream();

  const NatsOutboxSinkOptions options_;
  const internal::NatsCredentialMasker masker_;
  const std::string masked_url_;
  ConnectionPtr connection_;
  JsCtxPtr js_;

  // internal::Mutex rather than absl::Mutex: ThreadSanitizer sees it.
  mutable internal::Mutex mu_;
  // Notified when a batch has no outstanding message left.
  std::condition_variable_any all_resolved_;
  // The batches begun and not ended, oldest first.
  std::deque<std::unique_ptr<Batch>> batches_ ABSL_GUARDED_BY(mu_);
  NatsOutboxSinkStats stats_ ABSL_GUARDED_BY(mu_);
};

absl::Status NatsSinkImpl::StatusFromConnect(natsStatus s) const {
  const std::string text = masker_.Mask(NatsErrorText(s));
  switch (s) {
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
      return absl::UnauthenticatedError(absl::StrCat(
          "NATS at ", masked_url_, " refused the credentials: ", text));
    case NATS_INVALID_ARG:
    case NATS_ADDRESS_MISSING:
      return absl::InvalidArgumentError(absl::StrCat(
          "url: '", masked_url_, "' is not a usable NATS URL: ", text));
    default:
      return absl::UnavailableError(
          absl::StrCat("cannot connect to NATS at ", masked_url_, ": ", text));
  }
}

absl::Status NatsSinkImpl::Open() {
  natsOptions* raw_options = nullptr;
  if (natsOptions_Create(&raw_options) != NATS_OK) {
    return absl::ResourceExhaustedError("natsOptions_Create failed");
  }
  OptionsPtr nats_options(raw_options);
  natsStatus s = natsOptions_SetURL(nats_options.get(), options_.url.c_str());
  if (s != NATS_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("url: '", masked_url_,
                     "' is not a NATS URL: ", masker_.Mask(NatsErrorText(s))));
  }
  s = natsOptions_SetTimeout(nats_options.get(),
                             Millis(options_.connect_timeout));
  if (s == NATS_OK) {
    s = natsOptions_SetName(nats_options.get(),
                            options_.connection_name.c_str());
  }
  // One attempt now; after that, reconnect forever in the background.
  if (s == NATS_OK) {
    s = natsOptions_SetRetryOnFailedConnect(nats_options.get(), false, nullptr,
                                            nullptr);
  }
  if (s == NATS_OK) s = natsOptions_SetAllowReconnect(nats_options.get(), true);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(nats_options.get(), -1);
  if (s == NATS_OK) {
    s = natsOptions_SetReconnectWait(nats_options.get(),
                                     Millis(options_.reconnect_wait));
  }
  // Servers in the order given (the first is the preferred one).
  if (s == NATS_OK) s = natsOptions_SetNoRandomize(nats_options.get(), true);
  if (s != NATS_OK) {
    return absl::InternalError(
        absl::StrCat("setting NATS options: ", masker_.Mask(NatsErrorText(s))));
  }

  natsConnection* raw_connection = nullptr;
  s = natsConnection_Connect(&raw_connection, nats_options.get());
  connection_.reset(raw_connection);
  if (s != NATS_OK) {
    connection_.reset();
    return StatusFromConnect(s);
  }

  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = Millis(options_.ack_timeout);
  js_options.PublishAsync.MaxPending = options_.max_in_flight;
  js_options.PublishAsync.StallWait = Millis(options_.ack_timeout);
  js_options.PublishAsync.AckHandler = &NatsSinkImpl::OnAck;
  js_options.PublishAsync.AckHandlerClosure = this;
  jsCtx* raw_js = nullptr;
  s = natsConnection_JetStream(&raw_js, connection_.get(), &js_options);
  js_.reset(raw_js);
  if (s != NATS_OK) {
    js_.reset();
    return absl::InternalError(absl::StrCat("creating a JetStream context: ",
                                            masker_.Mask(NatsErrorText(s))));
  }

  // The account's JetStream information answers only when JetStream runs.
  jsAccountInfo* raw_info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  s = js_GetAccountInfo(&raw_info, js_.get(), nullptr, &code);
  AccountInfoPtr info(raw_info);
  if (s == NATS_NO_RESPONDERS || code == JSNotEnabledErr ||
      code == JSNotEnabledForAccountErr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "JetStream is not enabled on NATS at ", masked_url_,
        " (start nats-server with -js, or enable it for the account)"));
  }
  if (s != NATS_OK) {
    return absl::UnavailableError(
        absl::StrCat("asking NATS at ", masked_url_,
                     " for JetStream: ", masker_.Mask(NatsErrorText(s))));
  }
  return EnsureStream();
}

absl::Status NatsSinkImpl::EnsureStream() {
  const NatsStreamOptions& stream = options_.stream;
  if (stream.name.empty()) return absl::OkStatus();
  jsStreamInfo* raw_info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw_info, js_.get(), stream.name.c_str(),
                                  nullptr, &code);
  StreamInfoPtr info(raw_info);
  if (s == NATS_OK) return absl::OkStatus();
  if (s != NATS_NOT_FOUND) {
    return absl::UnavailableError(
        absl::StrCat("looking up JetStream stream '", stream.name, "' on ",
                     masked_url_, ": ", masker_.Mask(NatsErrorText(s))));
  }
  std::vector<std::string> subjects = stream.subjects;
  if (subjects.empty()) subjects.push_back(options_.subject_prefix + ">");
  std::vector<const char*> subject_ptrs;
  for (const std::string& subject : subjects) {
    subject_ptrs.push_back(subject.c_str());
  }
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = stream.name.c_str();
  config.Subjects = subject_ptrs.data();
  config.SubjectsLen = static_cast<int>(subject_ptrs.size());
  config.Storage = stream.file_storage ? js_FileStorage : js_MemoryStorage;
  config.Duplicates = absl::ToInt64Nanoseconds(stream.duplicate_window);
  code = static_cast<jsErrCode>(0);
  raw_info = nullptr;
  s = js_AddStream(&raw_info, js_.get(), &config, nullptr, &code);
  info.reset(raw_info);
  // Another publisher may have created it meanwhile.
  if (s == NATS_OK || code == JSStreamNameExistErr) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "creating JetStream stream '", stream.name, "' (subjects ",
      absl::StrJoin(subjects, ", "), ") on ", masked_url_, ": ",
      masker_.Mask(NatsErrorText(s)),
      code != 0 ? absl::StrCat(" (JetStream error ", code, ")") : ""));
}

absl::Status NatsSinkImpl::CheckConnected() const {
  const natsConnStatus status = natsConnection_Status(connection_.get());
  if (status == NATS_CONN_STATUS_CONNECTED) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "not connected to NATS at ", masked_url_,
      status == NATS_CONN_STATUS_CLOSED ? " (the connection is closed)"
                                        : " (reconnecting)"));
}

absl::StatusOr<MsgPtr> NatsSinkImpl::BuildMessage(
    const OutboxEntry& entry, const std::string& subject) const {
  const OutboxMessage& message = entry.message;
  if (std::string problem = internal::NatsSubjectProblem(subject);
      !problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "destination '", message.destination, "' makes no valid NATS subject",
        options_.subject_prefix.empty() ? ""
                                        : absl::StrCat(" ('", subject, "')"),
        ": ", problem));
  }
  if (message.payload.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload of ", message.payload.size(),
                     " bytes is too large for a NATS message"));
  }
  for (const auto& [name, value] : message.headers) {
    if (!internal::IsNatsHeaderName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("header name '", name,
                       "' is not one NATS can carry (printable ASCII, no "
                       "':' or space)"));
    }
    if (absl::StartsWithIgnoreCase(name, "Nats-")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "header '", name,
          "' is reserved: JetStream interprets Nats-* headers (the sink "
          "sets Nats-Msg-Id itself)"));
    }
    if (!internal::IsNatsHeaderValue(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("header '", name,
                       "' holds a line break or NUL, which NATS cannot "
                       "carry"));
    }
  }
  if (!internal::IsNatsHeaderValue(message.key)) {
    return absl::InvalidArgumentError(
        "key holds a line break or NUL, which a NATS header cannot carry");
  }

  natsMsg* raw = nullptr;
  natsStatus s =
      natsMsg_Create(&raw, subject.c_str(), nullptr, message.payload.data(),
                     static_cast<int>(message.payload.size()));
  MsgPtr msg(raw);
  for (auto it = message.headers.begin();
       s == NATS_OK && it != message.headers.end(); ++it) {
    s = natsMsgHeader_Set(msg.get(), it->first.c_str(), it->second.c_str());
  }
  if (s == NATS_OK && !message.key.empty()) {
    s = natsMsgHeader_Set(msg.get(), kNatsOutboxKeyHeader, message.key.c_str());
  }
  if (s != NATS_OK) {
    return absl::InternalError(
        absl::StrCat("building the NATS message: ", NatsErrorText(s)));
  }
  return msg;
}

absl::Status NatsSinkImpl::PublishError(natsStatus s, jsErrCode code,
                                        std::string_view text,
                                        const std::string& subject,
                                        size_t bytes) const {
  const std::string reason = masker_.Mask(text);
  if (s == NATS_MAX_PAYLOAD) {
    // libnats's own text is left out: its size may count the payload
    // twice.
    return absl::InvalidArgumentError(absl::StrCat(
        "message to '", subject, "' (", bytes,
        " bytes of payload, plus headers) exceeds the NATS server's "
        "max_payload of ",
        natsConnection_GetMaxPayload(connection_.get()), " bytes"));
  }
  if (code == JSStreamMessageExceedsMaximumErr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JetStream refused the message to '", subject, "' (", bytes,
        " bytes of payload): ", reason, " (JetStream error ", code, ")"));
  }
  if (s == NATS_INVALID_SUBJECT) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", subject, "' is not a valid NATS subject: ", reason));
  }
  if (s == NATS_NO_RESPONDERS) {
    return absl::FailedPreconditionError(
        absl::StrCat("no JetStream stream on ", masked_url_,
                     " captures subject '", subject, "' (no responders)"));
  }
  if (code != 0 || s == NATS_ERR) {
    return absl::FailedPreconditionError(absl::StrCat(
        "JetStream refused the message to '", subject, "': ", reason,
        code != 0 ? absl::StrCat(" (JetStream error ", code, ")") : ""));
  }
  if (s == NATS_TIMEOUT) {
    return absl::UnavailableError(
        absl::StrCat("no acknowledgement from JetStream at ", masked_url_,
                     " within ", absl::FormatDuration(options_.ack_timeout),
                     " for a message to '", subject, "'"));
  }
  return absl::UnavailableError(absl::StrCat(
      "publishing to '", subject, "' on NATS at ", masked_url_, ": ", reason));
}

absl::Status NatsSinkImpl::Send(const OutboxEntry& entry) {
  const std::string subject = Subject(entry);
  absl::StatusOr<MsgPtr> msg = BuildMessage(entry, subject);
  absl::Status status = msg.status();
  if (status.ok()) status = CheckConnected();
  bool duplicate = false;
  if (status.ok()) {
    const std::string msg_id = MsgId(entry);
    jsPubOptions publish_options;
    jsPubOptions_Init(&publish_options);
    publish_options.MsgId = msg_id.c_str();
    publish_options.MaxWait = Millis(options_.ack_timeout);
    jsPubAck* raw_ack = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_PublishMsg(&raw_ack, js_.get(), msg->get(), &publish_options, &code);
    PubAckPtr ack(raw_ack);
    if (s == NATS_OK) {
      duplicate = ack != nullptr && ack->Duplicate;
    } else {
      status = PublishError(s, code, NatsErrorText(s), subject,
                            entry.message.payload.size());
    }
  }
  internal::MutexLock lock(&mu_);
  if (status.ok()) {
    ++stats_.acknowledged;
    if (duplicate) ++stats_.duplicates;
  } else {
    ++stats_.failed;
  }
  return status;
}

void NatsSinkImpl::OnAck(jsCtx*, natsMsg* msg, jsPubAck* ack,
                         jsPubAckErr* error, void* closure) {
  static_cast<NatsSinkImpl*>(closure)->HandleAck(msg, ack, error);
  // The handler owns the message.
  natsMsg_Destroy(msg);
}

void NatsSinkImpl::HandleAck(natsMsg* msg, jsPubAck* ack, jsPubAckErr* error) {
  const char* id = nullptr;
  if (msg == nullptr || natsMsgHeader_Get(msg, kMsgIdHeader, &id) != NATS_OK ||
      id == nullptr) {
    return;
  }
  absl::Status status;
  bool duplicate = false;
  if (error != nullptr && error->Err != NATS_OK) {
    const char* subject = natsMsg_GetSubject(msg);
    status = PublishError(
        error->Err, error->ErrCode,
        error->ErrText != nullptr ? error->ErrText
                                  : natsStatus_GetText(error->Err),
        subject != nullptr ? subject : "",
        static_cast<size_t>(std::max(0, natsMsg_GetDataLength(msg))));
  } else {
    duplicate = ack != nullptr && ack->Duplicate;
  }
  const bool acknowledged = status.ok();
  internal::MutexLock lock(&mu_);
  if (Resolve(id, std::move(status)) && acknowledged) {
    ++stats_.acknowledged;
    if (duplicate) ++stats_.duplicates;
  }
}

bool NatsSinkImpl::Resolve(const std::string& msg_id, absl::Status status) {
  for (const std::unique_ptr<Batch>& batch : batches_) {
    if (ResolveIn(*batch, msg_id, status)) return true;
  }
  return false;
}

bool NatsSinkImpl::ResolveIn(Batch& batch, const std::string& msg_id,
                             absl::Status status) {
  auto it = batch.index_by_msg_id.find(msg_id);
  if (it == batch.index_by_msg_id.end()) return false;
  const size_t index = it->second;
  if (batch.resolved[index]) return false;
  batch.resolved[index] = true;
  batch.results[index] = std::move(status);
  if (--batch.outstanding == 0) all_resolved_.notify_all();
  return true;
}

std::vector<absl::Status> NatsSinkImpl::SendBatch(
    absl::Span<const OutboxEntry> entries) {
  BeginBatch(entries);
  return EndBatch();
}

void NatsSinkImpl::BeginBatch(absl::Span<const OutboxEntry> entries) {
  auto owned = std::make_unique<Batch>();
  Batch& batch = *owned;
  batch.results.assign(entries.size(), absl::OkStatus());
  batch.resolved.assign(entries.size(), true);
  batch.same_as.resize(entries.size());
  std::vector<std::string> msg_ids(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    msg_ids[i] = MsgId(entries[i]);
    batch.same_as[i] = i;
  }
  {
    internal::MutexLock lock(&mu_);
    batches_.push_back(std::move(owned));
  }

  // Hands the messages over in order. After a failure of the connection,
  // the rest is not sent (it would overtake the failed one): kUnavailable.
  absl::Status connection_failure = CheckConnected();
  for (size_t i = 0; i < entries.size(); ++i) {
    const OutboxEntry& entry = entries[i];
    {
      internal::MutexLock lock(&mu_);
      auto seen = batch.index_by_msg_id.find(msg_ids[i]);
      if (seen != batch.index_by_msg_id.end()) {
        batch.same_as[i] = seen->second;
        continue;
      }
    }
    const std::string subject = Subject(entry);
    absl::StatusOr<MsgPtr> msg = BuildMessage(entry, subject);
    if (!msg.ok() || !connection_failure.ok()) {
      internal::MutexLock lock(&mu_);
      batch.results[i] = msg.ok() ? connection_failure : msg.status();
      continue;
    }
    {
      // Registered before the publish: its acknowledgement may come first.
      internal::MutexLock lock(&mu_);
      batch.index_by_msg_id[msg_ids[i]] = i;
      batch.resolved[i] = false;
      ++batch.outstanding;
    }
    jsPubOptions publish_options;
    jsPubOptions_Init(&publish_options);
    publish_options.MsgId = msg_ids[i].c_str();
    natsMsg* raw = msg->release();
    const natsStatus s = js_PublishMsgAsync(js_.get(), &raw, &publish_options);
    // On success the library took the message (and cleared `raw`).
    MsgPtr not_taken(raw);
    if (s != NATS_OK) {
      absl::Status failure =
          PublishError(s, static_cast<jsErrCode>(0), NatsErrorText(s), subject,
                       entry.message.payload.size());
      if (failure.code() == absl::StatusCode::kUnavailable) {
        connection_failure = failure;
      }
      internal::MutexLock lock(&mu_);
      batch.index_by_msg_id.erase(msg_ids[i]);
      batch.resolved[i] = true;
      batch.results[i] = std::move(failure);
      --batch.outstanding;
    }
  }
}

std::vector<absl::Status> NatsSinkImpl::EndBatch() {
  Batch* oldest = nullptr;
  {
    internal::MutexLock lock(&mu_);
    if (batches_.empty()) return {};
    oldest = batches_.front().get();
  }
  // Only this thread removes batches: `oldest` stays valid.
  Batch& batch = *oldest;

  // Waits for the acknowledgements, then takes back what has none.
  const auto all_resolved = [&batch]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return batch.outstanding == 0;  // evaluated holding mu_
  };
  const auto wait = [&](absl::Duration timeout) {
    std::unique_lock<internal::Mutex> lock(mu_);
    return all_resolved_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                                  all_resolved);
  };
  const bool done = wait(options_.ack_timeout);
  if (!done) {
    natsMsgList pending;
    if (js_PublishAsyncGetPendingList(&pending, js_.get()) == NATS_OK) {
      const absl::Status timeout = absl::UnavailableError(absl::StrCat(
          "no acknowledgement from JetStream at ", masked_url_, " within ",
          absl::FormatDuration(options_.ack_timeout),
          CheckConnected().ok() ? "" : " (the connection was lost)"));
      {
        internal::MutexLock lock(&mu_);
        for (int i = 0; i < pending.Count; ++i) {
          const char* id = nullptr;
          if (pending.Msgs[i] != nullptr &&
              natsMsgHeader_Get(pending.Msgs[i], kMsgIdHeader, &id) ==
                  NATS_OK &&
              id != nullptr) {
            // Every pending message is taken back; those of a later batch
            // are resolved when it ends.
            if (!ResolveIn(batch, id, timeout)) {
              for (const std::unique_ptr<Batch>& later : batches_) {
                if (later.get() != &batch && ResolveIn(*later, id, timeout)) {
                  break;
                }
              }
            }
          }
        }
      }
      natsMsgList_Destroy(&pending);
    }
    // Acknowledgements being handled when the list was taken.
    wait(kCallbackGrace);
  }

  const size_t size = batch.results.size();
  std::vector<absl::Status> results;
  {
    internal::MutexLock lock(&mu_);
    for (size_t i = 0; i < size; ++i) {
      if (!batch.resolved[i]) {
        batch.results[i] = absl::UnavailableError(absl::StrCat(
            "no acknowledgement from JetStream at ", masked_url_, " within ",
            absl::FormatDuration(options_.ack_timeout)));
      }
    }
    results.reserve(size);
    for (size_t i = 0; i < size; ++i) {
      results.push_back(batch.results[batch.same_as[i]]);
    }
    for (size_t i = 0; i < size; ++i) {
      if (batch.same_as[i] == i && !results[i].ok()) ++stats_.failed;
    }
    batches_.pop_front();
  }
  return results;
}

NatsOutboxSinkStats NatsSinkImpl::stats() const {
  NatsOutboxSinkStats stats;
  {
    internal::MutexLock lock(&mu_);
    stats = stats_;
  }
  natsStatistics* raw = nullptr;
  if (natsStatistics_Create(&raw) == NATS_OK) {
    StatisticsPtr statistics(raw);
    uint64_t reconnects = 0;
    if (natsConnection_GetStats(connection_.get(), statistics.get()) ==
            NATS_OK &&
        natsStatistics_GetCounts(statistics.get(), nullptr, nullptr, nullptr,
                                 nullptr, &reconnects) == NATS_OK) {
      stats.reconnects = static_cast<int64_t>(reconnects);
    }
  }
  return stats;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NatsOutboxSink>> NatsOutboxSink::Connect(
    NatsOutboxSinkOptions options) {
  ES_RETURN_IF_ERROR(ValidateOptions(options));
  auto sink = std::make_unique<NatsSinkImpl>(std::move(options));
  ES_RETURN_IF_ERROR(sink->Open());
  return std::unique_ptr<NatsOutboxSink>(std::move(sink));
}

}  // namespace eventstore
