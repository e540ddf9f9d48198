// ServeServer: the HTTP server of `eventstore serve` (docs/cli.md, section
// serve), over cpp-httplib.
//
//   ServeOptions options;
//   options.listen = {"127.0.0.1", 0};
//   absl::StatusOr<std::unique_ptr<ServeServer>> server =
//       ServeServer::Create(*store, metrics, options);
//   absl::StatusOr<int> port = (*server)->Bind();
//   std::thread stopper([&] { WaitForSignal(); (*server)->Stop(); });
//   absl::Status served = (*server)->Run();  // until Stop()
//
// Paths: GET /metrics (the PrometheusInstrumentation's registry, with the
// store-level gauges of StoreMetrics read on each scrape), /healthz (200
// "ok"), /readyz (200 or 503 with a small JSON, see Readiness below), the
// web console's shell (/, /console.js, /console.css: tools/serve/web/,
// built in), and the JSON API under /api/ (tools/serve/json_api.h, and
// tools/serve/console_api.h for the console's endpoints and its writes).
// Unknown paths answer 404, methods other than GET and HEAD 405 (but POST
// under /api/, which the console API answers: 403 unless allow_writes),
// all with a JSON error. With a token, every path but /healthz and the
// console's shell answers 401 without `Authorization: Bearer <token>`,
// before anything else is looked at; the body says nothing about the
// store. The shell needs no token because a browser's navigation cannot
// send one, and it is the same for every store: the page asks for the
// token and sends it with each API request.
//
// An ActivitySampler (tools/serve/activity_sampler.h) samples the store
// from Run() until it returns, for GET /api/activity.
//
// Workers: a fixed pool of `threads`; each connection is read and written
// with timeouts, and kept alive for a bounded time and number of requests,
// so that slow or half-open clients hold a worker for a bounded time only.
//
// Thread safety: Stop() may be called from any thread, at any time (also
// before Run()); the other methods from one thread.

#ifndef EVENTSTORE_TOOLS_SERVE_SERVE_SERVER_H_
#define EVENTSTORE_TOOLS_SERVE_SERVE_SERVER_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/prometheus/prometheus_instrumentation.h"
#include "tools/serve/activity_sampler.h"
#include "tools/serve/bearer_token.h"
#include "tools/serve/json_api.h"
#include "tools/serve/listen_address.h"
#include "tools/serve/store_metrics.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace eventstore::tools {

struct ServeOptions {
  // Where to listen. Default 127.0.0.1:kDefaultServePort. The loopback
  // rule (no token, no --insecure) is the command's to enforce.
  ListenAddress listen{"127.0.0.1", kDefaultServePort};
  // When set, every path but /healthz and the console's shell requires it.
  // Default none.
  std::optional<BearerToken> token;
  // Worker threads: requests served at once. Default 8.
  int threads = 8;
  // How long a worker waits for a client's next bytes, and for a client to
  // take the response's. Default 5 s each: a stalled client holds a worker
  // no longer.
  absl::Duration read_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(5);
  // How long an idle kept-alive connection keeps its worker, and how many
  // requests one connection may make. Defaults 5 s and 100.
  absl::Duration keep_alive_timeout = absl::Seconds(5);
  size_t keep_alive_max_count = 100;
  // Largest request body accepted (GETs, and the console's small form
  // POSTs). Default 64 KiB.
  size_t max_request_bytes = 64 << 10;
  // Pages of the JSON API.
  eventstore::tools::JsonApiOptions json_api;
  // Whether the console's writes (POST /api/..., console_api.h) are
  // allowed: `--allow-writes`. Default false: every POST is 403. The store
  // must then be opened writable.
  bool allow_writes = false;
  // How often /api/activity's samples are taken: appended events every
  // activity_interval, each projection's lag every lag_interval; how many
  // of each are kept. Defaults 1 s, 5 s, 600 and 120 (10 minutes).
  absl::Duration activity_interval = absl::Seconds(1);
  absl::Duration lag_interval = absl::Seconds(5);
  size_t activity_samples = 600;
  size_t lag_samples = 120;
  // A failover store to report in /readyz and /api/console (its mode and
  // journal depth); null for a plain store. `eventstore serve` sets it
  // when the store it opened is one. Not owned; must outlive the server.
  FailoverEventStore* failover = nullptr;
  // The URL the store was opened from, only to mask its credentials out of
  // error messages. Default empty.
  std::string url;
};

// What /readyz answers: the HTTP status and the JSON body.
//   200 {"status":"ready","backend":...}            the database answered
//   503 {"status":"unavailable","error":...}        it did not
// With a failover store, "mode" and "journal_pending" are added; in
// fallback (or recovering) mode the answer is 200 with status "degraded":
// the store still takes appends (into its journal), so a load balancer
// should keep sending traffic, while the body tells monitors why.
struct Readiness {
  int http_status = 200;
  std::string body;
};
Readiness CheckReadiness(EventStore& store, const FailoverEventStore* failover,
                         const std::string& url);

class ServeServer {
 public:
  // `store` and `metrics` (the instrumentation `store` reports to, whose
  // registry also gets the store-level gauges) must outlive the server.
  // kInvalidArgument for threads < 1; kAlreadyExists when the registry
  // holds a conflicting family.
  static absl::StatusOr<std::unique_ptr<ServeServer>> Create(
      EventStore& store, std::shared_ptr<PrometheusInstrumentation> metrics,
      ServeOptions options);
  ServeServer(const ServeServer&) = delete;
  ServeServer& operator=(const ServeServer&) = delete;
  ~ServeServer();

  // Binds options.listen; returns the port bound (the free one chosen for
  // port 0). kUnavailable naming the address when it cannot be bound.
  absl::StatusOr<int> Bind();

  // "http://HOST:PORT" of the bound address. REQUIRES: Bind() succeeded.
  std::string BaseUrl() const;

  // Serves until Stop(), then waits for the requests in progress to end.
  // REQUIRES: Bind() succeeded.
  absl::Status Run();

  // Makes Run() return (soon, if it has not started listening yet).
  // Not async-signal-safe: call it from a thread, not a signal handler.
  void Stop();

 private:
  class WorkerQueue;
  ServeServer(EventStore& store,
              std::shared_ptr<PrometheusInstrumentation> metrics,
              std::unique_ptr<StoreMetrics> store_metrics,
              ServeOptions options);
  void Route();
  // Writes "eventstore serve: <line>" to stderr, masked, one at a time.
  void Log(std::string_view line);

  EventStore& store_;
  const std::shared_ptr<PrometheusInstrumentation> metrics_;
  const std::unique_ptr<StoreMetrics> store_metrics_;
  const ServeOptions options_;
  const std::unique_ptr<httplib::Server> http_;
  // Samples the store for /api/activity while Run() serves.
  ActivitySampler activity_;
  // What each write must send in X-Eventstore-Csrf (with allow_writes).
  std::string csrf_token_;
  std::atomic<bool> stop_requested_{false};
  // Serialises the messages /metrics and the writes log to stderr (a
  // stream buffer is not thread-safe).
  absl::Mutex log_mutex_;
  // Whether the last scrape read the store's gauges.
  bool store_read_ok_ ABSL_GUARDED_BY(log_mutex_) = true;
  int port_ = -1;
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_SERVE_SERVER_H_
