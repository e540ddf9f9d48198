#include "tools/serve/serve_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/store_inspector.h"
#include "tools/cli_support.h"
#include "tools/output_format.h"
#include "tools/serve/console_api.h"
#include "tools/serve/console_files.h"

namespace eventstore::tools {
namespace {

constexpr char kJson[] = "application/json";
// The Prometheus text exposition format.
constexpr char kPrometheusText[] = "text/plain; version=0.0.4; charset=utf-8";

void SetJsonError(httplib::Response& res, int status,
                  std::string_view message) {
  res.status = status;
  res.set_content(JsonObject().Str("error", message).Build() + "\n", kJson);
}

// The text of an error httplib answered itself.
std::string_view ErrorText(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 413:
      return "request too large";
    case 414:
      return "request line too long";
    case 416:
      return "range not satisfiable";
    default:
      return status < 500 ? "bad request" : "internal error";
  }
}

// What the console's shell is served with: it runs only its own script and
// style, talks only to this server, and may not be framed.
constexpr char kConsolePolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'";

// Paths served without the token: /healthz, and the console's shell (a
// browser's navigation cannot send a bearer token; the shell holds nothing
// about the store).
bool NeedsNoToken(const std::string& path) {
  return path == "/healthz" || FindConsoleFile(path) != nullptr;
}

// httplib takes timeouts as seconds and microseconds.
template <typename Setter>
void SetTimeout(absl::Duration d, Setter set) {
  const int64_t us = absl::ToInt64Microseconds(d);
  set(static_cast<time_t>(us / 1000000), static_cast<time_t>(us % 1000000));
}

}  // namespace

// The worker pool httplib runs connections on: a fixed httplib::ThreadPool.
// Its on_idle, which httplib calls from the accept loop every idle
// interval, stops the server when Stop() came before the loop started
// (Server::stop() does nothing then).
class ServeServer::WorkerQueue final : public httplib::TaskQueue {
 public:
  WorkerQueue(ServeServer* server, size_t threads)
      : server_(server), pool_(threads) {}
  void enqueue(std::function<void()> fn) override {
    pool_.enqueue(std::move(fn));
  }
  void shutdown() override { pool_.shutdown(); }
  void on_idle() override {
    if (server_->stop_requested_.load()) server_->http_->stop();
  }

 private:
  ServeServer* const server_;
  httplib::ThreadPool pool_;
};

Readiness CheckReadiness(EventStore& store, const FailoverEventStore* failover,
                         const std::string& url) {
  std::optional<FailoverStatus> mode;
  if (failover != nullptr) mode = failover->Status();
  JsonObject body;
  const auto add_mode = [&] {
    if (!mode.has_value()) return;
    body.Str("mode", FailoverModeName(mode->mode))
        .Int("journal_pending", mode->pending);
  };
  if (mode.has_value() && mode->mode != FailoverStatus::Mode::kPrimary) {
    // The store takes appends into its journal: still serving.
    body.Str("status", "degraded");
    add_mode();
    if (!mode->last_error.ok()) {
      body.Str("error",
               MaskSecrets(std::string(mode->last_error.message()), url));
    }
    return {200, body.Build() + "\n"};
  }
  // A cheap query: the head of the log (one indexed lookup).
  const absl::StatusOr<Position> head = store.HeadPosition();
  if (!head.ok()) {
    body.Str("status", "unavailable")
        .Str("error", MaskSecrets(std::string(head.status().message()), url));
    add_mode();
    return {503, body.Build() + "\n"};
  }
  body.Str("status", "ready").Str("head", head->ToString());
  add_mode();
  return {200, body.Build() + "\n"};
}

absl::StatusOr<std::unique_ptr<ServeServer>> ServeServer::Create(
    EventStore& store, std::shared_ptr<PrometheusInstrumentation> metrics,
    ServeOptions options) {
  if (metrics == nullptr) {
    return absl::InvalidArgumentError("serve: no metrics given");
  }
  if (options.threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--threads: must be a whole number 1 or more, not ", options.threads));
  }
  absl::StatusOr<std::unique_ptr<StoreMetrics>> store_metrics =
      StoreMetrics::Create(*metrics->registry());
  if (!store_metrics.ok()) return store_metrics.status();
  std::string csrf_token;
  if (options.allow_writes) {
    absl::StatusOr<std::string> token = NewCsrfToken();
    if (!token.ok()) return token.status();
    csrf_token = *std::move(token);
  }
  std::unique_ptr<ServeServer> server(new ServeServer(store, std::move(metrics),
                                                      *std::move(store_metrics),
                                                      std::move(options)));
  server->csrf_token_ = std::move(csrf_token);
  server->Route();
  return server;
}

ServeServer::ServeServer(EventStore& store,
                         std::shared_ptr<PrometheusInstrumentation> metrics,
                         std::unique_ptr<StoreMetrics> store_metrics,
                         ServeOptions options)
    : store_(store),
      metrics_(std::move(metrics)),
      store_metrics_(std::move(store_metrics)),
      options_(std::move(options)),
      http_(std::make_unique<httplib::Server>()),
      activity_(store, ActivityOptions{
                           options_.activity_interval, options_.lag_interval,
                           options_.activity_samples, options_.lag_samples}) {}

ServeServer::~ServeServer() { activity_.Stop(); }

void ServeServer::Log(std::string_view line) {
  absl::MutexLock lock(&log_mutex_);
  PrintErrorMessage("serve", line, options_.url);
}

void ServeServer::Route() {
  httplib::Server& http = *http_;
  const size_t threads = static_cast<size_t>(options_.threads);
  http.new_task_queue = [this, threads] {
    return new WorkerQueue(this, threads);
  };
  SetTimeout(options_.read_timeout,
             [&](time_t s, time_t us) { http.set_read_timeout(s, us); });
  SetTimeout(options_.write_timeout,
             [&](time_t s, time_t us) { http.set_write_timeout(s, us); });
  http.set_keep_alive_timeout(static_cast<time_t>(
      std::max<int64_t>(1, absl::ToInt64Seconds(options_.keep_alive_timeout))));
  http.set_keep_alive_max_count(options_.keep_alive_max_count);
  http.set_payload_max_length(options_.max_request_bytes);
  // SO_REUSEADDR (a restart binds at once) but not httplib's default
  // SO_REUSEPORT, with which a second server, anyone's, could bind the same
  // port and take a share of the connections.
  http.set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // How often the accept loop wakes up when idle (WorkerQueue::on_idle).
  http.set_idle_interval(0, 200000);

  // Authentication first, then the method: an unauthenticated client learns
  // nothing, not even which paths exist.
  http.set_pre_routing_handler([this](const httplib::Request& req,
                                      httplib::Response& res) {
    if (options_.token.has_value() && !NeedsNoToken(req.path) &&
        !options_.token->Authorizes(req.get_header_value("Authorization"))) {
      res.set_header("WWW-Authenticate", "Bearer");
      SetJsonError(res, 401, "unauthorized");
      return httplib::Server::HandlerResponse::Handled;
    }
    // POSTs under /api/ go to the console API (its writes, 403 when
    // read-only) or the JSON API's catch-all (405).
    const bool api_post =
        req.method == "POST" && absl::StartsWith(req.path, "/api/");
    if (req.method != "GET" && req.method != "HEAD" && !api_post) {
      res.set_header("Allow", "GET, HEAD");
      SetJsonError(res, 405,
                   absl::StrCat("method ", req.method,
                                " not allowed: this server only reads"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  });
  http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const Readiness ready =
        CheckReadiness(store_, options_.failover, options_.url);
    res.status = ready.http_status;
    res.set_content(ready.body, kJson);
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::string text;
    // A database that does not answer leaves eventstore_store_up at 0 and
    // the process's own metrics still served; stderr says so when the
    // state changes, not on every scrape.
    const absl::Status read =
        store_metrics_->Refresh(store_, [&] { text = metrics_->Render(); });
    absl::MutexLock lock(&log_mutex_);
    if (store_read_ok_ != read.ok()) {
      store_read_ok_ = read.ok();
      if (read.ok()) {
        PrintErrorMessage("serve", "the store answers again", options_.url);
      } else {
        PrintErrorMessage(
            "serve",
            absl::StrCat("cannot read the store's gauges (eventstore_store_up "
                         "is 0): ",
                         read.message()),
            options_.url);
      }
    }
    res.set_content(text, kPrometheusText);
  });
  // The console's shell, built into the binary.
  const auto shell = [](const httplib::Request& req, httplib::Response& res) {
    const ConsoleFile* file = FindConsoleFile(req.path);
    if (file == nullptr) return;  // not one of the routes below
    res.set_header("Cache-Control", "no-cache");
    res.set_header("Content-Security-Policy", kConsolePolicy);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    res.set_content(std::string(file->body), std::string(file->content_type));
  };
  http.Get("/", shell);
  http.Get("/console.js", shell);
  http.Get("/console.css", shell);

  // The console's endpoints first: the JSON API's catch-alls come last.
  ConsoleApiOptions console;
  console.allow_writes = options_.allow_writes;
  console.csrf_token = csrf_token_;
  console.failover = options_.failover;
  console.activity = &activity_;
  console.log = [this](std::string_view line) { Log(line); };
  RegisterConsoleApi(http, store_, std::move(console));

  // Long polls end when the server stops (SIGTERM does not wait for them),
  // and at most half the workers wait at once, so the rest keep answering.
  tools::JsonApiOptions api = options_.json_api;
  if (!api.stopping) api.stopping = [this] { return stop_requested_.load(); };
  api.max_concurrent_waits = std::max(1, options_.threads / 2);
  tools::RegisterJsonApi(http, store_, api);

  // Any other error without a body of its own (404 for an unknown path,
  // 400 for a request httplib could not parse, 413...) gets a JSON one.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 404) {
          SetJsonError(res, 404, "not found");
        } else {
          SetJsonError(res, res.status, ErrorText(res.status));
        }
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        SetJsonError(res, 500, "internal error");
      });
}

absl::StatusOr<int> ServeServer::Bind() {
  const ListenAddress& listen = options_.listen;
  int port = -1;
  if (listen.port == 0) {
    port = http_->bind_to_any_port(listen.host);
  } else if (http_->bind_to_port(listen.host, listen.port)) {
    port = listen.port;
  }
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "--listen: cannot listen on ", listen.ToString(),
        " (the port is taken, or the address is not one of this machine's)"));
  }
  port_ = port;
  return port;
}

std::string ServeServer::BaseUrl() const {
  ListenAddress bound = options_.listen;
  bound.port = port_;
  return absl::StrCat("http://", bound.ToString());
}

absl::Status ServeServer::Run() {
  if (port_ <= 0) return absl::FailedPreconditionError("serve: not bound");
  if (stop_requested_.load()) return absl::OkStatus();
  activity_.Start();
  const bool listened = http_->listen_after_bind();
  activity_.Stop();
  if (!listened && !stop_requested_.load()) {
    return absl::UnavailableError(
        absl::StrCat("serve: the server on ", BaseUrl(), " stopped"));
  }
  return absl::OkStatus();
}

void ServeServer::Stop() {
  stop_requested_.store(true);
  http_->stop();
}

}  // namespace eventstore::tools
