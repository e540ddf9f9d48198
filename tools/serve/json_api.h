// The read-only JSON API that `eventstore serve` exposes under /api/ (see
// docs/http-api.md for every endpoint, parameter, response shape and error).
//
//   httplib::Server server;
//   eventstore::tools::RegisterJsonApi(server, *store);
//   server.listen("127.0.0.1", 8113);
//
// Every handler is a GET that reads the store; none writes, and none runs
// SQL built from request text. Bad query parameters answer 400 with
// {"error": "...", "parameter": "name"}; an unknown /api/ path answers 404;
// a store error answers 500 or 503 (kUnavailable) with its message masked of
// secrets. Positions are rendered as strings so that JavaScript keeps their
// 64 bits. Authentication is the server's business, not this API's.

#ifndef EVENTSTORE_TOOLS_SERVE_JSON_API_H_
#define EVENTSTORE_TOOLS_SERVE_JSON_API_H_

#include <functional>

#include "eventstore/event_store.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace eventstore::tools {

struct JsonApiOptions {
  // Page size when a request gives no `limit`. Default 100.
  int default_page = 100;
  // Largest page a request may ask for; a larger `limit` is a 400 naming
  // the cap. Default 1,000: bounds the memory and time one request takes.
  int max_page = 1000;
  // Longest long-poll a request may ask for (`wait` on /api/events), in
  // seconds; a larger `wait` is a 400 naming the cap. Default 30.
  int max_wait_seconds = 30;
  // Long-polls waiting at once, at most; one more answers 503 with
  // Retry-After, so that waiting requests never take every worker thread of
  // the server. Default 4.
  int max_concurrent_waits = 4;
  // Asked by a waiting long-poll every 250 ms: true ends the wait at once
  // (the request answers what it has), so that stopping the server is not
  // held up by waiting requests. Null: waits run their course.
  std::function<bool()> stopping;
};

// Registers GET handlers for /api/... on `server`, then a catch-all that
// answers any other /api/ path 404 and any other method 405 (so register
// other /api/ routes before calling this). `store` outlives the server.
// Handlers run on the server's worker threads; EventStore is thread-safe.
// A server error handler (set_error_handler) must leave responses that
// already have a body alone, or it replaces these JSON errors.
void RegisterJsonApi(httplib::Server& server, EventStore& store,
                     const JsonApiOptions& options = {});

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_JSON_API_H_
