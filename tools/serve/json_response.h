// How the JSON endpoints of `eventstore serve` answer (json_api.cc,
// console_api.cc): one JSON object a body, never cached, and store errors
// mapped to HTTP statuses with their secrets masked (docs/http-api.md,
// "Errors").
//
//   absl::StatusOr<Info> info = ...;
//   if (!info.ok()) return SendStoreError(res, info.status());
//   SendJson(res, 200, JsonObject().Int("events", info->events).Build());

#ifndef EVENTSTORE_TOOLS_SERVE_JSON_RESPONSE_H_
#define EVENTSTORE_TOOLS_SERVE_JSON_RESPONSE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace httplib {
struct Response;
}  // namespace httplib

namespace eventstore::tools {

// Answers `status` with `body` (one JSON object, a line) and
// Cache-Control: no-store: every answer is a snapshot of a changing store.
void SendJson(httplib::Response& res, int status, const std::string& body);

// Answers {"error": message} (with "parameter" when given).
void SendError(httplib::Response& res, int status, std::string_view message,
               std::string_view parameter = {});

// Answers a store error, its message masked of secrets: 404 kNotFound,
// 409 kFailedPrecondition or kAborted (the state does not allow it: look
// again, then retry), 503 with Retry-After: 1 kUnavailable or
// kDeadlineExceeded, 500 otherwise.
void SendStoreError(httplib::Response& res, const absl::Status& status);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_JSON_RESPONSE_H_
