// RunningServeServer: an `eventstore serve` server (tools/serve/
// serve_server.h) in the test's process, serving on a thread of its own
// until destroyed, for tests that talk HTTP to it.
//
//   ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServeServer> server,
//                        RunningServeServer::Start(*store, options));
//   httplib::Client client(server->base_url());

#ifndef EVENTSTORE_TESTS_TOOLS_RUNNING_SERVE_SERVER_H_
#define EVENTSTORE_TESTS_TOOLS_RUNNING_SERVE_SERVER_H_

#include <httplib.h>

#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/prometheus/prometheus_instrumentation.h"
#include "tests/support/wait_until.h"
#include "tools/serve/serve_server.h"

namespace eventstore::test {

// A ServeServer serving on a thread of its own until destroyed.
class RunningServeServer {
 public:
  // Binds `options.listen` (give port 0 for a free one).
  static absl::StatusOr<std::unique_ptr<RunningServeServer>> Start(
      EventStore& store, tools::ServeOptions options) {
    // One registry per server: each server registers the store gauges.
    absl::StatusOr<std::shared_ptr<PrometheusInstrumentation>> metrics =
        PrometheusInstrumentation::Create();
    if (!metrics.ok()) return metrics.status();
    absl::StatusOr<std::unique_ptr<tools::ServeServer>> server =
        tools::ServeServer::Create(store, *metrics, options);
    if (!server.ok()) return server.status();
    absl::StatusOr<int> port = (*server)->Bind();
    if (!port.ok()) return port.status();
    auto running = std::unique_ptr<RunningServeServer>(
        new RunningServeServer(*std::move(metrics), *std::move(server), *port));
    running->thread_ =
        std::thread([r = running.get()] { r->served_ = r->server_->Run(); });
    // Bind() listens already; this only makes a server that cannot answer
    // fail here rather than in the browser.
    const bool healthy = WaitUntil(
        [&] {
          httplib::Client client("127.0.0.1", *port);
          httplib::Result r = client.Get("/healthz");
          return r && r->status == 200;
        },
        absl::Seconds(30));
    if (!healthy) {
      return absl::UnavailableError(
          absl::StrCat(running->base_url(), "/healthz did not answer 200"));
    }
    return running;
  }
  RunningServeServer(const RunningServeServer&) = delete;
  RunningServeServer& operator=(const RunningServeServer&) = delete;
  ~RunningServeServer() { Stop().IgnoreError(); }

  const std::string& base_url() const { return base_url_; }
  int port() const { return port_; }

  // Stops the server; what Run() returned.
  absl::Status Stop() {
    if (thread_.joinable()) {
      server_->Stop();
      thread_.join();
    }
    return served_;
  }

 private:
  RunningServeServer(std::shared_ptr<PrometheusInstrumentation> metrics,
                     std::unique_ptr<tools::ServeServer> server, int port)
      : metrics_(std::move(metrics)),
        server_(std::move(server)),
        port_(port),
        base_url_(absl::StrCat("http://127.0.0.1:", port)) {}

  std::shared_ptr<PrometheusInstrumentation> metrics_;
  std::unique_ptr<tools::ServeServer> server_;
  int port_;
  std::string base_url_;
  std::thread thread_;
  absl::Status served_;
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_TOOLS_RUNNING_SERVE_SERVER_H_
