// StoreTest: the fixture of the conformance tests, parameterised over
// AllTestBackends(), with a fresh store per test.
//
//   class OutboxConformanceTest : public test::StoreTest { ... };
//   TEST_P(OutboxConformanceTest, ...) { store().outbox()...; }
//   INSTANTIATE_TEST_SUITE_P(AllBackends, OutboxConformanceTest,
//                            ::testing::ValuesIn(AllTestBackends()),
//                            TestBackendName);

#ifndef EVENTSTORE_TESTS_SUPPORT_STORE_TEST_H_
#define EVENTSTORE_TESTS_SUPPORT_STORE_TEST_H_

#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore::test {

class StoreTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  // Opens the parameter's backend (no type registry) into store_. A
  // fixture that overrides it calls it first and returns when
  // HasFatalFailure().
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EventStore>> store =
        GetParam().open(nullptr);
    ASSERT_OK(store);
    store_ = *std::move(store);
  }

  EventStore& store() { return *store_; }

  std::unique_ptr<EventStore> store_;
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_STORE_TEST_H_
