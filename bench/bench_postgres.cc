#include "bench/bench_postgres.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"

namespace eventstore::bench {
namespace {

// $EVENTSTORE_BENCH_PG_URL, or null when unset or empty.
const char* NamedServerUrl() {
  const char* url = std::getenv("EVENTSTORE_BENCH_PG_URL");
  return url != nullptr && *url != '\0' ? url : nullptr;
}

}  // namespace

absl::StatusOr<std::string> StartBenchPostgres(
    std::unique_ptr<test::PostgresServer>* server) {
  if (const char* url = NamedServerUrl(); url != nullptr) return url;
  test::PostgresServerOptions options;
  options.durable = true;
  absl::StatusOr<std::unique_ptr<test::PostgresServer>> started =
      test::PostgresServer::Start(options);
  if (!started.ok()) return started.status();
  *server = *std::move(started);
  return (*server)->url();
}

absl::StatusOr<PostgresOptions> BenchPostgresOptions(
    const std::string& schema_prefix,
    std::unique_ptr<test::PostgresServer>* server) {
  absl::StatusOr<std::string> url = StartBenchPostgres(server);
  if (!url.ok()) return url.status();
  PostgresOptions options;
  options.conninfo = *std::move(url);
  if (NamedServerUrl() != nullptr) {
    options.schema =
        absl::StrCat(schema_prefix, "_", absl::ToUnixMillis(absl::Now()));
  }
  return options;
}

}  // namespace eventstore::bench
