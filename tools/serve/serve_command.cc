// serve: an HTTP server over a store: Prometheus metrics, health checks,
// the read-only JSON API and the web console, whose few writes need
// --allow-writes (docs/cli.md, section serve).

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/instrumented_event_store.h"
#include "eventstore/prometheus/prometheus_instrumentation.h"
#include "tools/cli_support.h"
#include "tools/command.h"
#include "tools/master_key_option.h"
#include "tools/serve/bearer_token.h"
#include "tools/serve/listen_address.h"
#include "tools/serve/serve_server.h"

namespace eventstore::tools {
namespace {

constexpr char kCommand[] = "serve";

struct ServeArgs {
  std::string url;
  std::string listen = absl::StrCat("127.0.0.1:", kDefaultServePort);
  std::string token_file;
  bool insecure = false;
  bool allow_writes = false;
  int threads = 8;
  std::string master_key_file;
};

// The `backend` label of the process's metrics.
std::string BackendLabel(const std::string& url) {
  return absl::StartsWith(url, "sqlite:") ? "sqlite" : "postgres";
}

// SIGINT and SIGTERM, blocked in every thread (those started later inherit
// the mask) so that only SignalWatcher's sigwait receives them.
class SignalWatcher {
 public:
  SignalWatcher() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, &old_mask_);
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;
  ~SignalWatcher() {
    Finish();
    // A signal that came after the watcher ended stays pending; the
    // process is exiting anyway.
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

  // Calls server->Stop() from a thread of its own when a signal arrives
  // (or arrived since construction). `server` must outlive Finish().
  void Start(ServeServer* server) {
    thread_ = std::thread([this, server] {
      int signal = 0;
      if (sigwait(&signals_, &signal) == 0 && !finishing_.load()) {
        server->Stop();
      }
    });
  }

  // Ends the watcher thread (waking it when no signal came).
  void Finish() {
    if (!thread_.joinable()) return;
    finishing_.store(true);
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  sigset_t signals_;
  sigset_t old_mask_;
  std::atomic<bool> finishing_{false};
  std::thread thread_;
};

int RunServe(const ServeArgs& args) {
  absl::StatusOr<std::string> url = ResolveUrl(args.url);
  if (!url.ok()) return PrintError(kCommand, url.status());
  absl::StatusOr<ListenAddress> listen = ParseListenAddress(args.listen);
  if (!listen.ok()) return PrintError(kCommand, listen.status(), *url);
  if (!listen->IsLoopback() && args.token_file.empty() && !args.insecure) {
    PrintErrorMessage(
        kCommand,
        absl::StrCat("--listen: ", listen->ToString(),
                     " is not a loopback address; give --token-file FILE so "
                     "that every client must send the token, or --insecure "
                     "to serve the store to anyone who can reach it"),
        *url);
    return kExitUsage;
  }
  ServeOptions options;
  options.listen = *listen;
  options.threads = args.threads;
  options.url = *url;
  options.allow_writes = args.allow_writes;
  if (!args.token_file.empty()) {
    absl::StatusOr<BearerToken> token = BearerToken::FromFile(args.token_file);
    if (!token.ok()) return PrintError(kCommand, token.status(), *url);
    options.token = *std::move(token);
  }

  // Before any thread starts (the store's own included).
  SignalWatcher signals;

  absl::StatusOr<std::shared_ptr<PrometheusInstrumentation>> metrics =
      PrometheusInstrumentation::Create();
  if (!metrics.ok()) return PrintError(kCommand, metrics.status(), *url);
  // Read-only unless the console may write (dead letters, outbox,
  // checkpoints).
  OpenStoreOptions open_options =
      args.allow_writes ? OpenStoreOptions() : ReadOnlyStore();
  open_options.instrumentation = *metrics;
  absl::StatusOr<std::unique_ptr<EventStore>> opened =
      OpenStore(*url, open_options);
  if (!opened.ok()) return PrintError(kCommand, opened.status(), *url);
  // A failover store shows its mode in /readyz and the console; looked for
  // before Instrument() wraps it. (OpenStore refuses failover: URLs today:
  // opening one would replay the application's journal. A program that
  // embeds ServeServer over its own FailoverEventStore sets this itself.)
  options.failover = dynamic_cast<FailoverEventStore*>(opened->get());
  std::unique_ptr<EventStore> store =
      Instrument(*std::move(opened), *metrics, BackendLabel(*url));
  // With a master key, the JSON API shows encrypted payloads decrypted.
  absl::StatusOr<std::unique_ptr<EventStore>> view =
      DecryptingView(*store, args.master_key_file);
  if (!view.ok()) return PrintError(kCommand, view.status(), *url);
  EventStore& served_store = *view != nullptr ? **view : *store;

  absl::StatusOr<std::unique_ptr<ServeServer>> server =
      ServeServer::Create(served_store, *metrics, std::move(options));
  if (!server.ok()) return PrintError(kCommand, server.status(), *url);
  absl::StatusOr<int> port = (*server)->Bind();
  if (!port.ok()) return PrintError(kCommand, port.status(), *url);
  signals.Start(server->get());
  // The one line on stdout: tests and scripts wait for it.
  std::cout << "listening on " << (*server)->BaseUrl() << std::endl;
  std::cerr << "eventstore serve: serving " << MaskUrl(*url)
            << (args.allow_writes
                    ? " with the console's writes allowed (--allow-writes)"
                    : " read-only")
            << "; stop with SIGINT or SIGTERM" << std::endl;
  const absl::Status served = (*server)->Run();
  signals.Finish();
  if (!served.ok()) return PrintError(kCommand, served, *url);
  std::cerr << "eventstore serve: stopped" << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      kCommand,
      "Serve the store over HTTP: the web console at /, Prometheus /metrics, "
      "/healthz, /readyz and the JSON API under /api/");
  AddUrlArgument(*cmd, args->url);
  cmd->add_option("--listen", args->listen,
                  absl::StrCat("HOST:PORT to listen on (an IP address or "
                               "localhost; port 0 picks a free one). "
                               "Default 127.0.0.1:",
                               kDefaultServePort));
  cmd->add_option("--token-file", args->token_file,
                  "File holding a token: every path but /healthz and the "
                  "console's page then requires 'Authorization: Bearer "
                  "TOKEN'");
  cmd->add_flag("--allow-writes", args->allow_writes,
                "Open the store writable and let the web console retry and "
                "resolve dead letters, retry failed outbox messages and "
                "reset projections (each needs the console's CSRF token and "
                "an operator name, and is logged to stderr)");
  cmd->add_flag("--insecure", args->insecure,
                "Allow a non-loopback --listen address without --token-file");
  cmd->add_option("--threads", args->threads,
                  "Worker threads: requests served at once. Default 8")
      ->check(AtLeastOne(1024));
  AddMasterKeyFileOption(*cmd, args->master_key_file);
  SetExample(*cmd,
             "eventstore serve sqlite:events.db\n"
             "eventstore serve 'postgresql://app@db/shop' --listen "
             "0.0.0.0:8113 --token-file /etc/eventstore/token");
  cmd->callback([args, &exit_code] { exit_code = RunServe(*args); });
}

}  // namespace eventstore::tools
