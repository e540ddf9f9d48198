#include "tools/serve/console_api.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/lease.h"
#include "eventstore/outbox_store.h"
#include "eventstore/store_inspector.h"
#include "eventstore/uuid.h"
#include "tools/cli_support.h"
#include "tools/output_format.h"
#include "tools/record_json.h"
#include "tools/serve/json_api_params.h"
#include "tools/serve/json_response.h"

namespace eventstore::tools {
namespace {

constexpr char kCsrfHeader[] = "X-Eventstore-Csrf";
// Any path byte, as in json_api.cc: a projection name may hold '/'.
#define ES_ANY "[\\s\\S]"

std::string SecondsJson(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleSeconds(d));
}

// A projection name from the path: what the stores take (UTF-8, no control
// character, at most 255 bytes), else a 400 naming `projection`.
bool CheckProjection(QueryParams& params, const std::string& projection) {
  if (projection.empty()) {
    params.Fail("projection", "empty");
  } else if (projection.size() > 255) {
    params.Fail("projection", "longer than 255 bytes");
  } else {
    for (const char c : projection) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) {
        params.Fail("projection", "holds a control character");
        break;
      }
    }
  }
  return params.ok();
}

class ConsoleApi {
 public:
  ConsoleApi(EventStore& store, ConsoleApiOptions options)
      : store_(store), options_(std::move(options)) {}

  void Console(const httplib::Request& req, httplib::Response& res);
  void Activity(const httplib::Request& req, httplib::Response& res);

  // What a write does once it is allowed: validates its path, changes the
  // store, answers; returns what the log says it did.
  using Action = std::string (ConsoleApi::*)(const httplib::Request& req,
                                             httplib::Response& res,
                                             const std::string& operator_name);
  // The checks every write passes first (see console_api.h), then `action`,
  // then a line in the log.
  void Write(const httplib::Request& req, httplib::Response& res,
             Action action);

  std::string RetryDeadLetter(const httplib::Request& req,
                              httplib::Response& res,
                              const std::string& operator_name);
  std::string ResolveDeadLetter(const httplib::Request& req,
                                httplib::Response& res,
                                const std::string& operator_name);
  std::string RetryOutboxMessage(const httplib::Request& req,
                                 httplib::Response& res,
                                 const std::string& operator_name);
  std::string ResetProjection(const httplib::Request& req,
                              httplib::Response& res,
                              const std::string& operator_name);
  std::string RebuildProjection(const httplib::Request& req,
                                httplib::Response& res,
                                const std::string& operator_name);

 private:
  // The dead letter of the path, after `mark` changed it.
  std::string DeadLetterWrite(
      const httplib::Request& req, httplib::Response& res, const char* verb,
      const std::function<absl::Status(const std::string&, const Uuid&)>& mark);

  EventStore& store_;
  const ConsoleApiOptions options_;
};

void ConsoleApi::Console(const httplib::Request& req, httplib::Response& res) {
  QueryParams params(req, {});
  if (!params.ok()) {
    return SendError(res, 400, params.error()->message,
                     params.error()->parameter);
  }
  std::string failover = "null";
  if (options_.failover != nullptr) {
    const FailoverStatus status = options_.failover->Status();
    failover = JsonObject()
                   .Str("mode", FailoverModeName(status.mode))
                   .Int("journal_pending", status.pending)
                   .Build();
  }
  const ActivityOptions activity = options_.activity != nullptr
                                       ? options_.activity->options()
                                       : ActivityOptions();
  SendJson(res, 200,
           JsonObject()
               .Bool("allow_writes", options_.allow_writes)
               .Raw("csrf_token", options_.allow_writes
                                      ? JsonQuote(options_.csrf_token)
                                      : std::string("null"))
               .Raw("failover", failover)
               .Raw("activity_interval_seconds", SecondsJson(activity.interval))
               .Raw("lag_interval_seconds", SecondsJson(activity.lag_interval))
               .Build());
}

void ConsoleApi::Activity(const httplib::Request& req, httplib::Response& res) {
  QueryParams params(req, {});
  if (!params.ok()) {
    return SendError(res, 400, params.error()->message,
                     params.error()->parameter);
  }
  if (options_.activity == nullptr) {
    return SendError(res, 404, "this server samples no activity");
  }
  SendJson(res, 200, options_.activity->Json());
}

void ConsoleApi::Write(const httplib::Request& req, httplib::Response& res,
                       Action action) {
  if (!options_.allow_writes) {
    return SendError(res, 403,
                     "the server is read-only: start it with --allow-writes");
  }
  const std::string csrf = req.get_header_value(kCsrfHeader);
  if (csrf.size() != options_.csrf_token.size() ||
      CRYPTO_memcmp(csrf.data(), options_.csrf_token.data(), csrf.size()) !=
          0) {
    return SendError(
        res, 403,
        absl::StrCat("missing or wrong ", kCsrfHeader,
                     " header: send the csrf_token of GET /api/console"));
  }
  // A browser names the page's origin on every cross-origin request (and
  // on same-origin POSTs); when it is named, it must be this server as the
  // client reached it.
  if (req.has_header("Origin")) {
    const std::string origin = req.get_header_value("Origin");
    const std::string expected =
        absl::StrCat("http://", req.get_header_value("Host"));
    if (origin != expected) {
      return SendError(
          res, 403,
          absl::StrCat("origin ", JsonQuote(origin.substr(0, 200)),
                       " may not write here: only pages of ", expected));
    }
  }
  QueryParams params(req, {"operator"});
  const std::string operator_name = params.Text("operator", "", 100);
  if (params.ok() && operator_name.empty()) {
    params.Fail("operator",
                "required: the name of who makes the change (1 to 100 bytes)");
  }
  if (!params.ok()) {
    return SendError(res, 400, params.error()->message,
                     params.error()->parameter);
  }
  const std::string what = ((*this).*action)(req, res, operator_name);
  if (options_.log && !what.empty()) {
    // 200 done, 202 requested (a rebuild the runner makes later).
    std::string outcome = absl::StrCat(res.status);
    if (res.status == 200) outcome = "done";
    if (res.status == 202) outcome = "requested";
    options_.log(absl::StrCat("operator ", JsonQuote(operator_name), ": ", what,
                              ": ", outcome));
  }
}

std::string ConsoleApi::DeadLetterWrite(
    const httplib::Request& req, httplib::Response& res, const char* verb,
    const std::function<absl::Status(const std::string&, const Uuid&)>& mark) {
  const std::string projection = req.matches[1];
  const std::string id_text = req.matches[2];
  QueryParams params(req, {"operator"});
  CheckProjection(params, projection);
  absl::StatusOr<Uuid> id = Uuid::Parse(id_text);
  if (!id.ok()) {
    params.Fail("event_id", absl::StrCat(JsonQuote(id_text), " is not a UUID"));
  }
  if (!params.ok()) {
    SendError(res, 400, params.error()->message, params.error()->parameter);
    return "";
  }
  const std::string what = absl::StrCat(
      verb, " dead letter ", JsonQuote(projection), " ", id->ToString());
  const absl::Status marked = mark(projection, *id);
  if (!marked.ok()) {
    SendStoreError(res, marked);
    return what;
  }
  absl::StatusOr<std::optional<DeadLetter>> letter =
      store_.dead_letters().Get(projection, *id);
  if (!letter.ok()) {
    SendStoreError(res, letter.status());
  } else if (!letter->has_value()) {
    // Deleted between the two calls.
    SendError(res, 404,
              absl::StrCat("projection ", JsonQuote(projection),
                           " has no dead letter for event ", id->ToString()));
  } else {
    SendJson(res, 200,
             JsonObject().Raw("dead_letter", DeadLetterJson(**letter)).Build());
  }
  return what;
}

std::string ConsoleApi::RetryDeadLetter(const httplib::Request& req,
                                        httplib::Response& res,
                                        const std::string&) {
  return DeadLetterWrite(
      req, res, "retry", [this](const std::string& projection, const Uuid& id) {
        return store_.dead_letters().MarkRetrying(projection, id);
      });
}

std::string ConsoleApi::ResolveDeadLetter(const httplib::Request& req,
                                          httplib::Response& res,
                                          const std::string& operator_name) {
  return DeadLetterWrite(req, res, "resolve",
                         [&](const std::string& projection, const Uuid& id) {
                           return store_.dead_letters().MarkResolved(
                               projection, id, operator_name);
                         });
}

std::string ConsoleApi::RetryOutboxMessage(const httplib::Request& req,
                                           httplib::Response& res,
                                           const std::string&) {
  const std::string id_text = req.matches[1];
  int64_t id = 0;
  if (!absl::SimpleAtoi(id_text, &id) || id <= 0) {
    SendError(res, 400,
              absl::StrCat(JsonQuote(id_text.substr(0, 100)),
                           " is not an outbox message id (a whole number)"),
              "id");
    return "";
  }
  const std::string what = absl::StrCat("retry outbox message ", id);
  const absl::Status retried = store_.outbox().Retry(id);
  if (!retried.ok()) {
    SendStoreError(res, retried);
    return what;
  }
  // The message as the list shows it.
  OutboxListOptions list;
  list.after_id = id - 1;
  list.limit = 1;
  absl::StatusOr<std::vector<OutboxEntry>> entries = store_.outbox().List(list);
  if (!entries.ok()) {
    SendStoreError(res, entries.status());
  } else if (entries->empty() || entries->front().id != id) {
    SendError(res, 404, absl::StrCat("no outbox message has id ", id));
  } else {
    SendJson(
        res, 200,
        JsonObject().Raw("message", OutboxEntryJson(entries->front())).Build());
  }
  return what;
}

std::string ConsoleApi::ResetProjection(const httplib::Request& req,
                                        httplib::Response& res,
                                        const std::string&) {
  const std::string projection = req.matches[1];
  QueryParams params(req, {"operator"});
  if (!CheckProjection(params, projection)) {
    SendError(res, 400, params.error()->message, params.error()->parameter);
    return "";
  }
  const std::string what =
      absl::StrCat("reset projection ", JsonQuote(projection));
  absl::StatusOr<std::optional<Checkpoint>> checkpoint =
      store_.checkpoints().Get(projection);
  if (!checkpoint.ok()) {
    SendStoreError(res, checkpoint.status());
    return what;
  }
  if (!checkpoint->has_value()) {
    SendError(res, 404,
              absl::StrCat("projection ", JsonQuote(projection),
                           " has no checkpoint"));
    return what;
  }
  // The runner's lease: held while the checkpoint is reset, so that no
  // runner saves a checkpoint over the reset one meanwhile.
  const std::string lease_name = absl::StrCat("projection:", projection);
  absl::StatusOr<std::unique_ptr<Lease>> lease =
      store_.TryAcquireLease(lease_name);
  if (!lease.ok()) {
    SendStoreError(res, lease.status());
    return what;
  }
  if (*lease == nullptr) {
    std::string holder = "another process";
    absl::StatusOr<std::optional<LeaseHolder>> found =
        store_.inspector().FindLeaseHolder(lease_name);
    if (found.ok() && found->has_value()) {
      holder = absl::StrCat("pid ", (*found)->pid);
      if (!(*found)->detail.empty()) {
        absl::StrAppend(&holder, " (", (*found)->detail, ")");
      }
    }
    SendError(res, 409,
              ProcessMasker().Mask(
                  absl::StrCat("projection ", JsonQuote(projection),
                               " is running: its lease is held by ", holder,
                               "; stop its runner, then reset it")));
    return what;
  }
  const absl::Status reset = store_.checkpoints().Reset(projection);
  lease->reset();
  if (!reset.ok()) {
    SendStoreError(res, reset);
    return what;
  }
  SendJson(
      res, 200,
      JsonObject().Str("projection", projection).Bool("reset", true).Build());
  return what;
}

std::string ConsoleApi::RebuildProjection(const httplib::Request& req,
                                          httplib::Response& res,
                                          const std::string& operator_name) {
  const std::string projection = req.matches[1];
  QueryParams params(req, {"operator"});
  if (!CheckProjection(params, projection)) {
    SendError(res, 400, params.error()->message, params.error()->parameter);
    return "";
  }
  const std::string what =
      absl::StrCat("request rebuild of projection ", JsonQuote(projection));
  // Unlike a reset, no lease is taken: the request is a flag the
  // projection's runner acts on between batches (or the next runner to
  // start does), so it is made while the runner holds its lease.
  const absl::Status requested =
      store_.checkpoints().RequestRebuild(projection, operator_name);
  if (!requested.ok()) {
    SendStoreError(res, requested);
    return what;
  }
  // The request as stored, as /api/checkpoints shows it (CheckpointJson):
  // an earlier request is kept, so it may name another operator; null and
  // "" when a runner has already started it.
  absl::StatusOr<std::optional<Checkpoint>> checkpoint =
      store_.checkpoints().Get(projection);
  if (!checkpoint.ok()) {
    SendStoreError(res, checkpoint.status());
    return what;
  }
  const bool pending = checkpoint->has_value() &&
                       (*checkpoint)->rebuild_requested_at.has_value();
  // Who will act on it: the runner holding the lease now, or (null) the
  // next one to start. Only looked at, and only informative: a store that
  // cannot tell answers null.
  std::string holder = "null";
  absl::StatusOr<std::optional<LeaseHolder>> found =
      store_.inspector().FindLeaseHolder(
          absl::StrCat("projection:", projection));
  if (found.ok() && found->has_value()) {
    holder = JsonObject()
                 .Int("pid", (*found)->pid)
                 .Str("detail", ProcessMasker().Mask((*found)->detail))
                 .Build();
  }
  SendJson(res, 202,
           JsonObject()
               .Str("projection", projection)
               .Time("rebuild_requested_at",
                     pending ? *(*checkpoint)->rebuild_requested_at
                             : absl::InfinitePast())
               .Str("rebuild_requested_by",
                    pending ? (*checkpoint)->rebuild_requested_by : "")
               .Raw("lease_holder", holder)
               .Build());
  return what;
}

}  // namespace

void RegisterConsoleApi(httplib::Server& server, EventStore& store,
                        ConsoleApiOptions options) {
  auto api = std::make_shared<ConsoleApi>(store, std::move(options));
  server.Get("/api/console",
             [api](const httplib::Request& req, httplib::Response& res) {
               api->Console(req, res);
             });
  server.Get("/api/activity",
             [api](const httplib::Request& req, httplib::Response& res) {
               api->Activity(req, res);
             });
  const auto write = [&](const char* pattern, ConsoleApi::Action action) {
    server.Post(pattern, [api, action](const httplib::Request& req,
                                       httplib::Response& res) {
      api->Write(req, res, action);
    });
  };
  // Paths are URL-decoded before they are matched: a projection name may
  // hold '/', so its part runs up to the event id.
  write("/api/dead-letters/(" ES_ANY "+)/([^/]+)/retry",
        &ConsoleApi::RetryDeadLetter);
  write("/api/dead-letters/(" ES_ANY "+)/([^/]+)/resolve",
        &ConsoleApi::ResolveDeadLetter);
  write("/api/outbox/messages/([^/]+)/retry", &ConsoleApi::RetryOutboxMessage);
  write("/api/projections/(" ES_ANY "+)/reset", &ConsoleApi::ResetProjection);
  write("/api/projections/(" ES_ANY "+)/rebuild",
        &ConsoleApi::RebuildProjection);
}

absl::StatusOr<std::string> NewCsrfToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::InternalError("serve: cannot make a CSRF token (RAND_bytes)");
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

#undef ES_ANY

}  // namespace eventstore::tools
