#include "tools/serve/json_api.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/outbox_store.h"
#include "eventstore/store_inspector.h"
#include "eventstore/uuid.h"
#include "tools/cli_support.h"
#include "tools/json_renderer.h"
#include "tools/output_format.h"
#include "tools/record_json.h"
#include "tools/serve/json_api_params.h"
#include "tools/serve/json_response.h"

namespace eventstore::tools {
namespace {

using tools::DeadLetterJson;
using tools::JsonObject;
using tools::JsonQuote;
using tools::JsonRenderer;
using tools::OutboxEntryJson;

// How often a long-poll looks at JsonApiOptions::stopping.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(250);
// Any path byte, line breaks included ('.' leaves them out), so that a
// stream name holding one reaches the validation and its 400.
#define ES_ANY "[\\s\\S]"

void BadParameter(httplib::Response& res, const ParamError& error) {
  SendError(res, 400, error.message, error.parameter);
}

std::string JsonArray(const std::vector<std::string>& items) {
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

// `value` as a JSON string, or null.
std::string StringOrNull(const std::optional<std::string>& value) {
  return value.has_value() ? JsonQuote(*value) : "null";
}

// Answers 200 with one page of a list: {"<items_key>": [render(row)...],
// "<cursor_key>": cursor(last row) or null}. `rows` was read with a limit
// of `limit` + 1: a row past `limit` means a next page exists, and is not
// sent.
template <typename Row, typename Render, typename Cursor>
void SendPage(httplib::Response& res, std::vector<Row>& rows, int64_t limit,
              std::string_view items_key, Render render,
              std::string_view cursor_key, Cursor cursor) {
  std::optional<std::string> next;
  if (static_cast<int64_t>(rows.size()) > limit) {
    rows.resize(static_cast<size_t>(limit));
    next = cursor(rows.back());
  }
  std::vector<std::string> items;
  items.reserve(rows.size());
  for (const Row& row : rows) items.push_back(render(row));
  SendJson(res, 200,
           JsonObject()
               .Raw(items_key, JsonArray(items))
               .Raw(cursor_key, StringOrNull(next))
               .Build());
}

// A protobuf type name: [A-Za-z0-9_.], as the store takes them.
bool IsTypeName(std::string_view type) {
  return std::all_of(type.begin(), type.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.';
  });
}

// The events rendered through the descriptors the store recorded. The
// renderer is made after the events were read, so that it knows every type
// among them.
absl::StatusOr<std::string> EventsJson(
    EventStore& store, const std::vector<RecordedEvent>& events) {
  std::vector<std::string> items;
  items.reserve(events.size());
  if (!events.empty()) {
    absl::StatusOr<std::unique_ptr<JsonRenderer>> renderer =
        JsonRenderer::ForStore(store);
    if (!renderer.ok()) return renderer.status();
    for (const RecordedEvent& e : events) {
      items.push_back((*renderer)->RenderEvent(e));
    }
  }
  return JsonArray(items);
}

// The cursor of the dead letters after `key`: "MICROS.COMMIT.PREPARE.
// PROJECTION", URL-safe base64 so that it is opaque and needs no escaping.
std::string DeadLetterCursor(const DeadLetterKey& key) {
  return absl::WebSafeBase64Escape(absl::StrCat(
      absl::ToUnixMicros(key.first_failed_at), ".", key.position.commit(), ".",
      key.position.prepare(), ".", key.projection));
}

// The key a DeadLetterCursor holds; nullopt when `cursor` is not one.
std::optional<DeadLetterKey> ParseDeadLetterCursor(const std::string& cursor) {
  std::string text;
  if (!absl::WebSafeBase64Unescape(cursor, &text)) return std::nullopt;
  std::vector<std::string> parts =
      absl::StrSplit(text, absl::MaxSplits('.', 3));
  int64_t micros = 0;
  uint64_t commit = 0;
  uint64_t prepare = 0;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &micros) ||
      !absl::SimpleAtoi(parts[1], &commit) ||
      !absl::SimpleAtoi(parts[2], &prepare)) {
    return std::nullopt;
  }
  return DeadLetterKey{absl::FromUnixMicros(micros),
                       Position::FromParts(commit, prepare), parts[3]};
}

// Holds one of a bounded number of long-poll slots while alive.
class WaitSlot {
 public:
  WaitSlot(std::atomic<int>& waiting, int max) : waiting_(waiting) {
    held_ = waiting_.fetch_add(1) < max;
    if (!held_) waiting_.fetch_sub(1);
  }
  WaitSlot(const WaitSlot&) = delete;
  WaitSlot& operator=(const WaitSlot&) = delete;
  ~WaitSlot() {
    if (held_) waiting_.fetch_sub(1);
  }
  bool held() const { return held_; }

 private:
  std::atomic<int>& waiting_;
  bool held_ = false;
};

// The handlers, sharing the store and the options. Thread-safe: the only
// state is the count of waiting long-polls.
class JsonApi {
 public:
  JsonApi(EventStore& store, JsonApiOptions options)
      : store_(store), options_(std::move(options)) {}

  void Info(const httplib::Request& req, httplib::Response& res);
  void Streams(const httplib::Request& req, httplib::Response& res);
  void StreamEvents(const httplib::Request& req, httplib::Response& res);
  void Events(const httplib::Request& req, httplib::Response& res);
  void Checkpoints(const httplib::Request& req, httplib::Response& res);
  void DeadLetters(const httplib::Request& req, httplib::Response& res);
  void DeadLetterOne(const httplib::Request& req, httplib::Response& res);
  void Outbox(const httplib::Request& req, httplib::Response& res);
  void OutboxMessages(const httplib::Request& req, httplib::Response& res);

 private:
  // `limit`: 1..max_page, default_page when absent.
  int64_t Limit(QueryParams& params, std::optional<int64_t> fallback = {}) {
    return params.Int("limit", fallback.value_or(options_.default_page), 1,
                      options_.max_page, "the server's largest page");
  }
  // The event types of repeated `type` parameters, each a type name.
  std::vector<std::string> Types(QueryParams& params) {
    std::vector<std::string> types = params.All("type");
    for (const std::string& t : types) {
      if (!IsTypeName(t)) {
        params.Fail("type", absl::StrCat(JsonQuote(t),
                                         " is not a protobuf type name "
                                         "([A-Za-z0-9_.])"));
      }
    }
    return types;
  }
  bool Stopping() const { return options_.stopping && options_.stopping(); }

  EventStore& store_;
  const JsonApiOptions options_;
  std::atomic<int> waiting_{0};
};

void JsonApi::Info(const httplib::Request& req, httplib::Response& res) {
  QueryParams params(req, {});
  if (!params.ok()) return BadParameter(res, *params.error());
  absl::StatusOr<StoreInfo> info = store_.inspector().Info();
  if (!info.ok()) return SendStoreError(res, info.status());
  absl::StatusOr<std::vector<RecordedType>> types =
      store_.inspector().RecordedTypes();
  if (!types.ok()) return SendStoreError(res, types.status());
  // The inspector masks the location's password; masked again with what
  // the process knows, in case a location ever holds more.
  info->location = tools::ProcessMasker().Mask(info->location);
  SendJson(
      res, 200,
      tools::StoreInfoJson(*info, static_cast<int64_t>(types->size()))
          .Raw("api", JsonObject()
                          .Int("default_page", options_.default_page)
                          .Int("max_page", options_.max_page)
                          .Int("max_wait_seconds", options_.max_wait_seconds)
                          .Build())
          .Build());
}

void JsonApi::Streams(const httplib::Request& req, httplib::Response& res) {
  QueryParams params(req, {"prefix", "after", "limit"});
  ListStreamsOptions options;
  options.prefix = params.Text("prefix");
  options.after = params.Text("after");
  const int64_t limit = Limit(params);
  if (!params.ok()) return BadParameter(res, *params.error());
  // One more than asked: whether a next page exists.
  options.limit = limit + 1;
  absl::StatusOr<std::vector<StreamSummary>> streams =
      store_.inspector().ListStreams(options);
  if (!streams.ok()) return SendStoreError(res, streams.status());
  SendPage(res, *streams, limit, "streams", tools::StreamSummaryJson,
           "next_after", [](const StreamSummary& s) { return s.stream; });
}

void JsonApi::StreamEvents(const httplib::Request& req,
                           httplib::Response& res) {
  const std::string stream = req.matches[1];
  QueryParams params(req, {"from", "limit", "direction"});
  const absl::Status valid =
      internal::ValidateStreamName(store_.limits(), stream);
  if (!valid.ok()) params.Fail("stream", valid);
  const std::optional<int64_t> from =
      params.Has("from")
          ? std::optional<int64_t>(
                params.Int("from", 1, 1, std::numeric_limits<int64_t>::max()))
          : std::nullopt;
  const int64_t limit = Limit(params);
  const bool backward = params.OneOf("direction", "forward",
                                     {"forward", "backward"}) == "backward";
  if (!params.ok()) return BadParameter(res, *params.error());
  absl::StatusOr<int64_t> version = store_.StreamVersion(stream);
  if (!version.ok()) return SendStoreError(res, version.status());
  if (*version == 0) {
    return SendError(
        res, 404,
        absl::StrCat("stream ", JsonQuote(stream), " does not exist"));
  }
  ReadStreamOptions options;
  options.from_version = from;
  options.max_count = limit;
  options.direction = backward ? Direction::kBackward : Direction::kForward;
  absl::StatusOr<std::vector<RecordedEvent>> events =
      store_.ReadStream(stream, options);
  if (!events.ok()) return SendStoreError(res, events.status());
  absl::StatusOr<std::string> items = EventsJson(store_, *events);
  if (!items.ok()) return SendStoreError(res, items.status());
  // The next page starts past the last event read, when the page was full
  // and the stream goes on.
  std::string next_from = "null";
  if (static_cast<int64_t>(events->size()) == limit) {
    const int64_t last = events->back().version;
    if (!backward && last < *version) next_from = absl::StrCat(last + 1);
    if (backward && last > 1) next_from = absl::StrCat(last - 1);
  }
  SendJson(res, 200,
           JsonObject()
               .Str("stream", stream)
               .Int("version", *version)
               .Str("direction", backward ? "backward" : "forward")
               .Raw("events", *items)
               .Raw("next_from", next_from)
               .Build());
}

void JsonApi::Events(const httplib::Request& req, httplib::Response& res) {
  QueryParams params(
      req, {"from", "last", "limit", "type", "prefix", "tenant", "wait"});
  ReadAllOptions options;
  const std::optional<Position> from = params.PositionOf("from");
  std::optional<int64_t> last;
  if (params.Has("last")) {
    if (params.Has("from")) {
      params.Fail("last", "give either from or last, not both");
    }
    last = params.Int("last", 0, 0, options_.max_page,
                      "the server's largest page");
  }
  // With `last` alone, the page holds those last events.
  const int64_t limit =
      Limit(params, last.has_value() && *last > 0 ? last : std::nullopt);
  options.filter.event_types = Types(params);
  options.filter.stream_prefix = params.Text("prefix");
  options.filter.tenant_id = params.Text("tenant");
  const int64_t wait_seconds = params.Int(
      "wait", 0, 0, options_.max_wait_seconds, "the server's longest wait");
  if (!params.ok()) return BadParameter(res, *params.error());
  options.max_count = limit;
  if (last.has_value()) {
    absl::StatusOr<Position> start =
        *last > 0 ? store_.inspector().PositionBeforeLast(*last, options.filter)
                  : store_.HeadPosition();
    if (!start.ok()) return SendStoreError(res, start.status());
    options.from_position = *start;
  } else {
    options.from_position = from.value_or(Position::Start());
  }

  // Where a long-poll waits from. Unfiltered: the page's start, so that any
  // event ReadAll would return after it ends the wait (on PostgreSQL an
  // event below the head may become visible only later). Filtered: the
  // head read before the page, so that events the filter leaves out do not
  // wake the wait over and over.
  const bool filtered = !options.filter.event_types.empty() ||
                        !options.filter.stream_prefix.empty() ||
                        !options.filter.tenant_id.empty();
  absl::StatusOr<Position> head = store_.HeadPosition();
  if (!head.ok()) return SendStoreError(res, head.status());
  absl::StatusOr<ReadAllPage> page = store_.ReadAll(options);
  if (!page.ok()) return SendStoreError(res, page.status());
  if (page->events.empty() && wait_seconds > 0) {
    WaitSlot slot(waiting_, options_.max_concurrent_waits);
    if (!slot.held()) {
      res.set_header("Retry-After", "1");
      return SendError(res, 503,
                       absl::StrCat("too many long-polls waiting (at most ",
                                    options_.max_concurrent_waits,
                                    "); retry, or read without wait"));
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(wait_seconds);
    Position waited_from = filtered ? std::max(*head, options.from_position)
                                    : options.from_position;
    while (!Stopping()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      absl::StatusOr<bool> more =
          store_.WaitForEvents(waited_from, std::min(left, kWaitSlice));
      if (!more.ok()) return SendStoreError(res, more.status());
      if (!*more) continue;
      head = store_.HeadPosition();
      if (!head.ok()) return SendStoreError(res, head.status());
      page = store_.ReadAll(options);
      if (!page.ok()) return SendStoreError(res, page.status());
      if (!page->events.empty()) break;
      if (filtered) waited_from = std::max(*head, options.from_position);
    }
  }
  absl::StatusOr<std::string> items = EventsJson(store_, page->events);
  if (!items.ok()) return SendStoreError(res, items.status());
  SendJson(res, 200,
           JsonObject()
               .Raw("events", *items)
               .Str("from", options.from_position.ToString())
               .Str("next_from", page->next_position.ToString())
               .Str("head", std::max(*head, page->next_position).ToString())
               .Bool("end_of_log", page->end_of_log)
               .Build());
}

void JsonApi::Checkpoints(const httplib::Request& req, httplib::Response& res) {
  QueryParams params(req, {"type", "prefix"});
  ReadAllFilter filter;
  filter.event_types = Types(params);
  filter.stream_prefix = params.Text("prefix");
  if (!params.ok()) return BadParameter(res, *params.error());
  absl::StatusOr<std::vector<Checkpoint>> checkpoints =
      store_.checkpoints().List();
  if (!checkpoints.ok()) return SendStoreError(res, checkpoints.status());
  absl::StatusOr<std::vector<DeadLetterCount>> counts =
      store_.dead_letters().Counts();
  if (!counts.ok()) return SendStoreError(res, counts.status());
  absl::flat_hash_map<std::string, DeadLetterCount> parked;
  for (const DeadLetterCount& c : *counts) parked[c.projection] = c;
  // What the lag counts: the store does not know a projection's filter.
  const std::string lag_counts =
      tools::LagCountsText(filter.event_types, filter.stream_prefix);
  std::vector<std::string> items;
  for (const Checkpoint& cp : *checkpoints) {
    absl::StatusOr<ProjectionLag> lag =
        store_.checkpoints().Lag(cp.projection, filter);
    if (!lag.ok()) return SendStoreError(res, lag.status());
    std::string item =
        tools::CheckpointJson(cp, *lag, lag_counts, parked[cp.projection]);
    // Who runs it: the holder of its runner's lease. A store that cannot
    // tell says why, and the list is still shown.
    item.pop_back();  // the closing '}'
    absl::StatusOr<std::optional<LeaseHolder>> holder =
        store_.inspector().FindLeaseHolder(
            absl::StrCat("projection:", cp.projection));
    if (!holder.ok()) {
      absl::StrAppend(&item, ",\"lease_holder\":null,\"lease_holder_error\":",
                      JsonQuote(tools::ProcessMasker().Mask(
                          std::string(holder.status().message()))));
    } else if (!holder->has_value()) {
      absl::StrAppend(&item, ",\"lease_holder\":null");
    } else {
      absl::StrAppend(&item, ",\"lease_holder\":",
                      JsonObject()
                          .Int("pid", (*holder)->pid)
                          .Str("detail", (*holder)->detail)
                          .Build());
    }
    items.push_back(item + "}");
  }
  SendJson(res, 200, JsonObject().Raw("checkpoints", JsonArray(items)).Build());
}

void JsonApi::DeadLetters(const httplib::Request& req, httplib::Response& res) {
  QueryParams params(req, {"projection", "status", "limit", "cursor"});
  DeadLetterListOptions options;
  options.projection = params.Text("projection");
  const std::string status =
      params.OneOf("status", "unresolved",
                   {"unresolved", "parked", "retrying", "resolved", "all"});
  const int64_t limit = Limit(params);
  const std::string cursor = params.Text("cursor", "", 2048);
  if (!cursor.empty()) {
    options.after = ParseDeadLetterCursor(cursor);
    if (!options.after.has_value()) {
      params.Fail("cursor", "not a next_cursor of this API");
    }
  }
  if (!params.ok()) return BadParameter(res, *params.error());
  if (status == "unresolved") {
    options.statuses = {DeadLetterStatus::kParked, DeadLetterStatus::kRetrying};
  } else if (status != "all") {
    options.statuses = {*internal::ParseDeadLetterStatus(status)};
  }
  // One more than asked: whether a next page exists.
  options.limit = static_cast<int>(limit + 1);
  absl::StatusOr<std::vector<DeadLetter>> letters =
      store_.dead_letters().ListPage(options);
  if (!letters.ok()) return SendStoreError(res, letters.status());
  SendPage(res, *letters, limit, "dead_letters", DeadLetterJson, "next_cursor",
           [](const DeadLetter& d) {
             return DeadLetterCursor(DeadLetterKey::Of(d));
           });
}

void JsonApi::DeadLetterOne(const httplib::Request& req,
                            httplib::Response& res) {
  const std::string projection = req.matches[1];
  const std::string id_text = req.matches[2];
  QueryParams params(req, {});
  absl::StatusOr<Uuid> id = Uuid::Parse(id_text);
  if (!id.ok()) {
    params.Fail("event_id", absl::StrCat(JsonQuote(id_text), " is not a UUID"));
  }
  if (!params.ok()) return BadParameter(res, *params.error());
  absl::StatusOr<std::optional<DeadLetter>> letter =
      store_.dead_letters().Get(projection, *id);
  if (!letter.ok()) return SendStoreError(res, letter.status());
  if (!letter->has_value()) {
    return SendError(
        res, 404,
        absl::StrCat("projection ", JsonQuote(projection),
                     " has no dead letter for event ", id->ToString()));
  }
  const DeadLetter& d = **letter;
  // The event as `dlq show` shows it; null when it is no longer stored.
  std::string event = "null";
  if (internal::ValidateStreamName(store_.limits(), d.stream).ok() &&
      d.version > 0) {
    ReadStreamOptions read;
    read.from_version = d.version;
    read.max_count = 1;
    absl::StatusOr<std::vector<RecordedEvent>> events =
        store_.ReadStream(d.stream, read);
    if (!events.ok()) return SendStoreError(res, events.status());
    if (!events->empty() && events->front().id == d.event_id) {
      absl::StatusOr<std::string> items = EventsJson(store_, *events);
      if (!items.ok()) return SendStoreError(res, items.status());
      // The one element of the array.
      event = items->substr(1, items->size() - 2);
    }
  }
  SendJson(res, 200,
           JsonObject()
               .Raw("dead_letter", DeadLetterJson(d))
               .Raw("event", event)
               .Build());
}

void JsonApi::Outbox(const httplib::Request& req, httplib::Response& res) {
  QueryParams params(req, {});
  if (!params.ok()) return BadParameter(res, *params.error());
  absl::StatusOr<OutboxStats> stats = store_.outbox().Stats();
  if (!stats.ok()) return SendStoreError(res, stats.status());
  SendJson(res, 200, tools::OutboxStatsJson(*stats, absl::Now()));
}

void JsonApi::OutboxMessages(const httplib::Request& req,
                             httplib::Response& res) {
  QueryParams params(req, {"status", "limit", "cursor"});
  const std::string status = params.OneOf(
      "status", "pending", {"pending", "published", "failed", "all"});
  const int64_t limit = Limit(params);
  // The cursor is the last id of the page before.
  const int64_t after_id =
      params.Int("cursor", 0, 0, std::numeric_limits<int64_t>::max());
  if (!params.ok()) return BadParameter(res, *params.error());
  OutboxListOptions options;
  if (status != "all") options.status = internal::ParseOutboxStatus(status);
  options.after_id = after_id;
  // One more than asked: whether a next page exists.
  options.limit = static_cast<int>(limit + 1);
  absl::StatusOr<std::vector<OutboxEntry>> entries =
      store_.outbox().List(options);
  if (!entries.ok()) return SendStoreError(res, entries.status());
  SendPage(res, *entries, limit, "messages", OutboxEntryJson, "next_cursor",
           [](const OutboxEntry& e) { return absl::StrCat(e.id); });
}

}  // namespace

void RegisterJsonApi(httplib::Server& server, EventStore& store,
                     const JsonApiOptions& options) {
  auto api = std::make_shared<JsonApi>(store, options);
  using Method = void (JsonApi::*)(const httplib::Request&, httplib::Response&);
  const auto route = [&](const char* pattern, Method method) {
    server.Get(pattern, [api, method](const httplib::Request& req,
                                      httplib::Response& res) {
      ((*api).*method)(req, res);
    });
  };
  route("/api/info", &JsonApi::Info);
  route("/api/streams", &JsonApi::Streams);
  // The path is URL-decoded before it is matched: a stream name may hold
  // '/', so its part runs up to the last "/events".
  route("/api/streams/(" ES_ANY "+)/events", &JsonApi::StreamEvents);
  route("/api/events", &JsonApi::Events);
  route("/api/checkpoints", &JsonApi::Checkpoints);
  route("/api/dead-letters", &JsonApi::DeadLetters);
  route("/api/dead-letters/(" ES_ANY "+)/([^/]+)", &JsonApi::DeadLetterOne);
  route("/api/outbox", &JsonApi::Outbox);
  route("/api/outbox/messages", &JsonApi::OutboxMessages);
  const char* const kAnyApiPath = "/api(/" ES_ANY "*)?";
  server.Get(kAnyApiPath,
             [](const httplib::Request& req, httplib::Response& res) {
               SendError(res, 404,
                         absl::StrCat("no such API path: ",
                                      JsonQuote(req.path.substr(0, 200))));
             });
  const auto not_allowed = [](const httplib::Request& req,
                              httplib::Response& res) {
    res.set_header("Allow", "GET, HEAD");
    SendError(res, 405,
              absl::StrCat("method ", req.method,
                           " not allowed: the API only reads"));
  };
  server.Post(kAnyApiPath, not_allowed);
  server.Put(kAnyApiPath, not_allowed);
  server.Patch(kAnyApiPath, not_allowed);
  server.Delete(kAnyApiPath, not_allowed);
  server.Options(kAnyApiPath, not_allowed);
}

#undef ES_ANY

}  // namespace eventstore::tools
