// The backends the conformance suite runs on.
//
//   INSTANTIATE_TEST_SUITE_P(AllBackends, MyTest,
//                            ::testing::ValuesIn(AllTestBackends()),
//                            TestBackendName);
//   ASSERT_OK_AND_ASSIGN(auto store, GetParam().open(nullptr));
//
// Each call of `open` gives a fresh, empty store that nothing else uses; its
// files (or schema) go away when the store is destroyed. A backend added
// here is covered by every conformance test, which rely only on the
// EventStore interface and this factory.

#ifndef EVENTSTORE_TESTS_SUPPORT_TEST_BACKENDS_H_
#define EVENTSTORE_TESTS_SUPPORT_TEST_BACKENDS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "eventstore/type_registry.h"
#include "gtest/gtest.h"

namespace eventstore::test {

struct TestBackend {
  // A valid test-name part: letters, digits and '_'.
  std::string name;
  // Opens a fresh empty store; `registry` (may be null) is the store's type
  // registry, whose upcasters apply to reads.
  std::function<absl::StatusOr<std::unique_ptr<EventStore>>(
      std::shared_ptr<const TypeRegistry> registry)>
      open;
  // Set by RawAccessTestBackends() only: overwrites column `column` of the
  // events table (payload, metadata, id, checksum, ...) in the row of
  // (`stream`, `version`) of `store`, one that this backend's `open`
  // returned, behind the store's back; `bytes` is stored as a blob/bytea
  // (PostgreSQL: for bytea columns only), nullopt as NULL. kNotFound when no
  // row matched. For tests of rows damaged by hand.
  std::function<absl::Status(EventStore& store, std::string_view stream,
                             int64_t version, std::string_view column,
                             std::optional<std::string> bytes)>
      overwrite_column;
};

// "sqlite_memory" (":memory:"), "sqlite_file" (a new file in a new
// temporary directory per open, synchronous = NORMAL, removed with the
// store) and, when built with PostgreSQL, "postgres" (a new schema on the
// shared throwaway server). Default StoreLimits.
std::vector<TestBackend> AllTestBackends();

// The backends whose database a test can reach behind the store's back,
// with `overwrite_column` set: "sqlite_file" and, when built with
// PostgreSQL, "postgres".
std::vector<TestBackend> RawAccessTestBackends();

// A second store on the database of `store`, one that a
// RawAccessTestBackends() backend's `open` returned, opened with
// verify_checksums off (SqliteOptions, PostgresOptions). Destroy it before
// `store`. kInvalidArgument for any other store.
absl::StatusOr<std::unique_ptr<EventStore>> OpenWithoutChecksumVerification(
    EventStore& store);

// "failover_sqlite": a FailoverEventStore (fallback allowed) over a SQLite
// memory store, with a SQLite memory journal, while the primary is up: the
// decorator must pass the whole contract through unchanged.
TestBackend FailoverTestBackend();

// AllTestBackends() and FailoverTestBackend().
std::vector<TestBackend> AllTestBackendsAndFailover();

// A SQLite store in the file `path` (":memory:" for none) to be the journal
// of a FailoverEventStore over a primary with `limits`: its limits are
// FailoverEventStore::JournalLimits(limits).
absl::StatusOr<std::unique_ptr<EventStore>> OpenFailoverJournal(
    const std::string& path, const StoreLimits& limits);

// For INSTANTIATE_TEST_SUITE_P: the backend's name.
std::string TestBackendName(const ::testing::TestParamInfo<TestBackend>& info);

// So that gtest prints a parameter as its name.
void PrintTo(const TestBackend& backend, std::ostream* os);

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_TEST_BACKENDS_H_
