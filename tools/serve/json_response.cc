#include "tools/serve/json_response.h"

#include <httplib.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "tools/cli_support.h"
#include "tools/output_format.h"

namespace eventstore::tools {

void SendJson(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body + "\n", "application/json");
}

void SendError(httplib::Response& res, int status, std::string_view message,
               std::string_view parameter) {
  JsonObject body;
  body.Str("error", message);
  if (!parameter.empty()) body.Str("parameter", parameter);
  SendJson(res, status, body.Build());
}

void SendStoreError(httplib::Response& res, const absl::Status& status) {
  int http = 500;
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      http = 404;
      break;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      http = 409;
      break;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      http = 503;
      res.set_header("Retry-After", "1");
      break;
    default:
      break;
  }
  SendError(res, http, ProcessMasker().Mask(std::string(status.message())));
}

}  // namespace eventstore::tools
