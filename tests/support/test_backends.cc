#include "tests/support/test_backends.h"

#include <memory>
#include <string_view>
#include <utility>

#include "backends/sqlite/sqlite_event_store.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/lease.h"
#include "eventstore/outbox_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/status_macros.h"
#include "tests/support/temp_dir.h"

namespace eventstore::test {
namespace {

// Owns a store and the temporary directory of its files; the store is
// closed before the directory is removed.
class StoreInTempDir final : public ForwardingEventStore {
 public:
  StoreInTempDir(std::unique_ptr<TempDir> dir,
                 std::unique_ptr<EventStore> store)
      : ForwardingEventStore(store.get()),
        dir_(std::move(dir)),
        store_(std::move(store)) {}

 private:
  // Declared first, destroyed last.
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<EventStore> store_;
};

absl::StatusOr<std::unique_ptr<EventStore>> OpenSqliteMemory(
    std::shared_ptr<const TypeRegistry> registry) {
  SqliteOptions options;
  options.path = ":memory:";
  options.type_registry = std::move(registry);
  return SqliteEventStore::Open(options);
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenSqliteFile(
    std::shared_ptr<const TypeRegistry> registry) {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<TempDir> dir, TempDir::Create());
  SqliteOptions options;
  options.path = dir->File("events.db");
  options.synchronous = SqliteOptions::Synchronous::kNormal;
  options.type_registry = std::move(registry);
  ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> store,
                      SqliteEventStore::Open(options));
  return std::make_unique<StoreInTempDir>(std::move(dir), std::move(store));
}

#ifdef EVENTSTORE_TEST_POSTGRES
// A new schema on the shared throwaway server (or EVENTSTORE_TEST_PG_URL).
absl::StatusOr<std::unique_ptr<EventStore>> OpenPostgres(
    std::shared_ptr<const TypeRegistry> registry) {
  ES_ASSIGN_OR_RETURN(std::string url, SharedPostgresUrl());
  PostgresOptions options;
  options.conninfo = url;
  options.schema = UniqueSchemaName();
  options.pool_size = 12;
  options.type_registry = std::move(registry);
  return PostgresEventStore::Open(options);
}
#endif

}  // namespace

std::vector<TestBackend> AllTestBackends() {
  return {
      {"sqlite_memory", OpenSqliteMemory},
      {"sqlite_file", OpenSqliteFile},
#ifdef EVENTSTORE_TEST_POSTGRES
      {"postgres", OpenPostgres},
#endif
  };
}

TestBackend FailoverTestBackend() {
  return {"failover_sqlite",
          [](std::shared_ptr<const TypeRegistry> registry)
              -> absl::StatusOr<std::unique_ptr<EventStore>> {
            ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> primary,
                                OpenSqliteMemory(std::move(registry)));
            ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> journal,
                                OpenSqliteMemory(nullptr));
            FailoverOptions options;
            options.allow_fallback = true;
            options.health_check_interval = absl::ZeroDuration();
            ES_ASSIGN_OR_RETURN(
                std::unique_ptr<FailoverEventStore> store,
                FailoverEventStore::Create(std::move(primary),
                                           std::move(journal), options));
            return std::unique_ptr<EventStore>(std::move(store));
          }};
}

std::string TestBackendName(const ::testing::TestParamInfo<TestBackend>& info) {
  return info.param.name;
}

void PrintTo(const TestBackend& backend, std::ostream* os) {
  *os << backend.name;
}

}  // namespace eventstore::test
