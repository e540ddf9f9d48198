#include "tests/support/test_backends.h"

#include <sqlite3.h>

#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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

// Sends every call to the wrapped store, its own batches and reads into a
// buffer included (ForwardingEventStore leaves those to EventStore's
// defaults, for decorators that change reads). The two owners below.
class ForwardEverything : public ForwardingEventStore {
 public:
  using ForwardingEventStore::ForwardingEventStore;

  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests) override {
    return target()->AppendEach(requests);
  }
  absl::Status ReadStreamInto(std::string_view stream,
                              const ReadStreamOptions& options,
                              std::vector<RecordedEvent>& events) override {
    return target()->ReadStreamInto(stream, options, events);
  }
  absl::Status ReadAllInto(const ReadAllOptions& options,
                           ReadAllPage& page) override {
    return target()->ReadAllInto(options, page);
  }
};

// Owns a store and the temporary directory of its files; the store is
// closed before the directory is removed.
class StoreInTempDir final : public ForwardEverything {
 public:
  StoreInTempDir(std::unique_ptr<TempDir> dir,
                 std::unique_ptr<EventStore> store)
      : ForwardEverything(store.get()),
        dir_(std::move(dir)),
        store_(std::move(store)) {}

  std::string path() const { return dir_->File("events.db"); }

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

// `column` must be a plain identifier: it is pasted into the SQL.
absl::Status CheckColumn(std::string_view column) {
  for (char c : column) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "overwrite_column: bad column '", std::string(column), "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status OverwriteSqliteColumn(EventStore& store, std::string_view stream,
                                   int64_t version, std::string_view column,
                                   std::optional<std::string> bytes) {
  ES_RETURN_IF_ERROR(CheckColumn(column));
  auto* owned = dynamic_cast<StoreInTempDir*>(&store);
  if (owned == nullptr) {
    return absl::InvalidArgumentError(
        "overwrite_column: not a store of sqlite_file");
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(owned->path().c_str(), &db, SQLITE_OPEN_READWRITE,
                      nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return absl::InternalError("overwrite_column: cannot open the file");
  }
  sqlite3_busy_timeout(db, 10000);
  const std::string sql =
      absl::StrCat("UPDATE events SET ", std::string(column),
                   " = ?1 WHERE stream = ?2 AND version = ?3");
  sqlite3_stmt* stmt = nullptr;
  absl::Status status;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    status = absl::InternalError(
        absl::StrCat("overwrite_column: ", sqlite3_errmsg(db)));
  } else {
    if (bytes.has_value()) {
      sqlite3_bind_blob(stmt, 1, bytes->data(), static_cast<int>(bytes->size()),
                        SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(stmt, 1);
    }
    sqlite3_bind_text(stmt, 2, stream.data(), static_cast<int>(stream.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt, 3, version);
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      status = absl::InternalError(
          absl::StrCat("overwrite_column: ", sqlite3_errmsg(db)));
    } else if (sqlite3_changes(db) != 1) {
      status = absl::NotFoundError("overwrite_column: no such event");
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return status;
}

#ifdef EVENTSTORE_TEST_POSTGRES
// A new schema on the shared throwaway server (or EVENTSTORE_TEST_PG_URL).
absl::StatusOr<std::unique_ptr<EventStore>> OpenPostgresIn(
    const std::string& url, const std::string& schema,
    std::shared_ptr<const TypeRegistry> registry) {
  PostgresOptions options;
  options.conninfo = url;
  options.schema = schema;
  options.pool_size = 12;
  options.type_registry = std::move(registry);
  return PostgresEventStore::Open(options);
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenPostgres(
    std::shared_ptr<const TypeRegistry> registry) {
  ES_ASSIGN_OR_RETURN(std::string url, SharedPostgresUrl());
  return OpenPostgresIn(url, UniqueSchemaName(), std::move(registry));
}

// A PostgreSQL store that knows where it lives.
class StoreInSchema final : public ForwardEverything {
 public:
  StoreInSchema(std::string url, std::string schema,
                std::unique_ptr<EventStore> store)
      : ForwardEverything(store.get()),
        url_(std::move(url)),
        schema_(std::move(schema)),
        store_(std::move(store)) {}

  const std::string& url() const { return url_; }
  const std::string& schema() const { return schema_; }

 private:
  std::string url_;
  std::string schema_;
  std::unique_ptr<EventStore> store_;
};

absl::StatusOr<std::unique_ptr<EventStore>> OpenPostgresWithRawAccess(
    std::shared_ptr<const TypeRegistry> registry) {
  ES_ASSIGN_OR_RETURN(std::string url, SharedPostgresUrl());
  std::string schema = UniqueSchemaName();
  ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> store,
                      OpenPostgresIn(url, schema, std::move(registry)));
  return std::make_unique<StoreInSchema>(std::move(url), std::move(schema),
                                         std::move(store));
}

absl::Status OverwritePostgresColumn(EventStore& store, std::string_view stream,
                                     int64_t version, std::string_view column,
                                     std::optional<std::string> bytes) {
  ES_RETURN_IF_ERROR(CheckColumn(column));
  auto* located = dynamic_cast<StoreInSchema*>(&store);
  if (located == nullptr) {
    return absl::InvalidArgumentError(
        "overwrite_column: not a store of RawAccessTestBackends' postgres");
  }
  ES_ASSIGN_OR_RETURN(std::unique_ptr<RawPostgres> raw,
                      RawPostgres::Connect(located->url()));
  // Hex literals and a dollar-quoted stream name: no escaping to get wrong.
  const std::string value =
      bytes.has_value()
          ? absl::StrCat("decode('", absl::BytesToHexString(*bytes),
                         "', 'hex')")
          : std::string("NULL");
  ES_ASSIGN_OR_RETURN(
      auto rows,
      raw->Query(absl::StrCat("UPDATE \"", located->schema(), "\".events SET ",
                              std::string(column), " = ", value,
                              " WHERE stream = $es$", std::string(stream),
                              "$es$ AND version = ", version, " RETURNING 1")));
  if (rows.size() != 1) {
    return absl::NotFoundError("overwrite_column: no such event");
  }
  return absl::OkStatus();
}
#endif

}  // namespace

std::vector<TestBackend> AllTestBackends() {
  return {
      {"sqlite_memory", OpenSqliteMemory, nullptr},
      {"sqlite_file", OpenSqliteFile, nullptr},
#ifdef EVENTSTORE_TEST_POSTGRES
      {"postgres", OpenPostgres, nullptr},
#endif
  };
}

std::vector<TestBackend> RawAccessTestBackends() {
  std::vector<TestBackend> backends;
  backends.push_back({"sqlite_file", OpenSqliteFile, OverwriteSqliteColumn});
#ifdef EVENTSTORE_TEST_POSTGRES
  backends.push_back(
      {"postgres", OpenPostgresWithRawAccess, OverwritePostgresColumn});
#endif
  return backends;
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenWithoutChecksumVerification(
    EventStore& store) {
  if (auto* owned = dynamic_cast<StoreInTempDir*>(&store)) {
    SqliteOptions options;
    options.path = owned->path();
    options.synchronous = SqliteOptions::Synchronous::kNormal;
    options.verify_checksums = false;
    return SqliteEventStore::Open(options);
  }
#ifdef EVENTSTORE_TEST_POSTGRES
  if (auto* located = dynamic_cast<StoreInSchema*>(&store)) {
    PostgresOptions options;
    options.conninfo = located->url();
    options.schema = located->schema();
    options.pool_size = 2;
    options.verify_checksums = false;
    return PostgresEventStore::Open(options);
  }
#endif
  return absl::InvalidArgumentError(
      "OpenWithoutChecksumVerification: not a store of RawAccessTestBackends");
}

TestBackend FailoverTestBackend() {
  return {"failover_sqlite",
          [](std::shared_ptr<const TypeRegistry> registry)
              -> absl::StatusOr<std::unique_ptr<EventStore>> {
            ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> primary,
                                OpenSqliteMemory(std::move(registry)));
            ES_ASSIGN_OR_RETURN(
                std::unique_ptr<EventStore> journal,
                OpenFailoverJournal(":memory:", primary->limits()));
            FailoverOptions options;
            options.limits = primary->limits();
            options.allow_fallback = true;
            options.health_check_interval = absl::ZeroDuration();
            ES_ASSIGN_OR_RETURN(
                std::unique_ptr<FailoverEventStore> store,
                FailoverEventStore::Create(std::move(primary),
                                           std::move(journal), options));
            return std::unique_ptr<EventStore>(std::move(store));
          },
          nullptr};
}

std::vector<TestBackend> AllTestBackendsAndFailover() {
  std::vector<TestBackend> backends = AllTestBackends();
  backends.push_back(FailoverTestBackend());
  return backends;
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenFailoverJournal(
    const std::string& path, const StoreLimits& limits) {
  SqliteOptions options;
  options.path = path;
  options.limits = FailoverEventStore::JournalLimits(limits);
  return SqliteEventStore::Open(options);
}

std::string TestBackendName(const ::testing::TestParamInfo<TestBackend>& info) {
  return info.param.name;
}

void PrintTo(const TestBackend& backend, std::ostream* os) {
  *os << backend.name;
}

}  // namespace eventstore::test
