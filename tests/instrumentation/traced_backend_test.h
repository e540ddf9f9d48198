// TracedBackendTest: a fixture parameterised over TestBackends whose store_
// is the parameter's backend behind InstrumentedEventStore, with spans
// recorded in tracer_ and the backend label kTracedBackendLabel.
//
//   class TracedStoreTest : public test::TracedBackendTest {};
//   TEST_P(TracedStoreTest, ...) {
//     ASSERT_OK(store_->Append(...));
//     EXPECT_THAT(tracer_->ended("eventstore.append"), SizeIs(1));
//   }

#ifndef EVENTSTORE_TESTS_INSTRUMENTATION_TRACED_BACKEND_TEST_H_
#define EVENTSTORE_TESTS_INSTRUMENTATION_TRACED_BACKEND_TEST_H_

#include <memory>
#include <utility>

#include "eventstore/event_store.h"
#include "eventstore/instrumented_event_store.h"
#include "gtest/gtest.h"
#include "tests/support/recording_tracer.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore::test {

inline constexpr char kTracedBackendLabel[] = "label-under-test";

class TracedBackendTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> opened,
                         GetParam().open(nullptr));
    InstrumentOptions options;
    options.tracer = tracer_;
    options.backend_label = kTracedBackendLabel;
    store_ = Instrument(std::move(opened), std::move(options));
    ASSERT_NE(store_, nullptr);
  }

  std::shared_ptr<RecordingTracer> tracer_ =
      std::make_shared<RecordingTracer>();
  std::unique_ptr<EventStore> store_;
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_INSTRUMENTATION_TRACED_BACKEND_TEST_H_
