// The web console's part of the JSON API of `eventstore serve`
// (docs/http-api.md, "Console"): what the page needs beside the read-only
// API (tools/serve/json_api.h), and the few writes an operator may make
// from it when the server runs with --allow-writes.
//
//   ConsoleApiOptions options;
//   options.allow_writes = true;
//   options.csrf_token = *NewCsrfToken();
//   options.activity = &sampler;
//   RegisterConsoleApi(server, *store, options);
//   RegisterJsonApi(server, *store);  // after: its catch-alls come last
//
// GET /api/console   what the page is allowed and how it is served
// GET /api/activity  the charts' samples (tools/serve/activity_sampler.h)
// POST /api/dead-letters/{projection}/{event_id}/retry | resolve
// POST /api/outbox/messages/{id}/retry
// POST /api/projections/{projection}/reset
// POST /api/projections/{projection}/rebuild   (202: its runner rebuilds)
//
// A write is refused, in this order: 403 when the server is read-only;
// 403 without the header `X-Eventstore-Csrf: <csrf_token>` (a page of
// another site cannot send it: a custom header needs a CORS preflight,
// which this server never grants), or with an `Origin` header other than
// "http://" + the request's Host; 400 without a form parameter
// `operator` (1..100 bytes of UTF-8 text), who is logged and, for a
// resolved dead letter or a requested rebuild, recorded. Store errors map as
// the read-only API's: 404 kNotFound, 409 kFailedPrecondition or kAborted, 503
// kUnavailable, 500 otherwise, masked of secrets.
//
// Thread safety: the handlers run on the server's worker threads.

#ifndef EVENTSTORE_TOOLS_SERVE_CONSOLE_API_H_
#define EVENTSTORE_TOOLS_SERVE_CONSOLE_API_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "eventstore/failover_event_store.h"
#include "tools/serve/activity_sampler.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace eventstore::tools {

struct ConsoleApiOptions {
  // Whether the POST endpoints write. Default false: each answers 403.
  bool allow_writes = false;
  // What every write must send in X-Eventstore-Csrf; /api/console tells
  // the page. REQUIRES: not empty when allow_writes.
  std::string csrf_token;
  // A failover store to report (its mode and journal), or null. Not owned.
  const FailoverEventStore* failover = nullptr;
  // The sampler /api/activity answers from, or null (then 404). Not owned.
  const ActivitySampler* activity = nullptr;
  // Writes one line about a write to the server's log (who, what, the
  // outcome); null: not logged. Called from worker threads.
  std::function<void(std::string_view line)> log;
};

// Registers the handlers above on `server`. Call before RegisterJsonApi,
// whose catch-alls would answer these paths first. `store` and whatever
// the options point to outlive the server.
void RegisterConsoleApi(httplib::Server& server, EventStore& store,
                        ConsoleApiOptions options);

// A fresh CSRF token: 32 random bytes (OpenSSL RAND_bytes) as 64 hex
// digits. kInternal when the random generator fails.
absl::StatusOr<std::string> NewCsrfToken();

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_CONSOLE_API_H_
