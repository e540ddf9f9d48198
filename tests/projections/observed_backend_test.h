// ObservedBackendTest: the base fixture of the projection and outbox
// observability tests, parameterised over AllTestBackends(). It holds the
// three recorders a component under test reports to; the fixture opens the
// store and puts metrics_, log_ and tracer_ into the component's options.
//
//   class OutboxObservabilityTest : public test::ObservedBackendTest { ... };
//   TEST_P(OutboxObservabilityTest, ...) {
//     ...
//     EXPECT_THAT(Logs(LogLevel::kWarning), SizeIs(1));
//   }

#ifndef EVENTSTORE_TESTS_PROJECTIONS_OBSERVED_BACKEND_TEST_H_
#define EVENTSTORE_TESTS_PROJECTIONS_OBSERVED_BACKEND_TEST_H_

#include <memory>
#include <vector>

#include "eventstore/log_sink.h"
#include "gtest/gtest.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/recording_log_sink.h"
#include "tests/support/recording_tracer.h"
#include "tests/support/test_backends.h"

namespace eventstore::test {

class ObservedBackendTest : public ::testing::TestWithParam<TestBackend> {
 protected:
  // The entries logged at `level`, of any component, in order.
  std::vector<LogEntry> Logs(LogLevel level) const {
    std::vector<LogEntry> out;
    for (const LogEntry& entry : log_->entries()) {
      if (entry.level == level) out.push_back(entry);
    }
    return out;
  }

  std::shared_ptr<RecordingInstrumentation> metrics_ =
      std::make_shared<RecordingInstrumentation>();
  std::shared_ptr<RecordingLogSink> log_ = std::make_shared<RecordingLogSink>();
  std::shared_ptr<RecordingTracer> tracer_ =
      std::make_shared<RecordingTracer>();
};

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_PROJECTIONS_OBSERVED_BACKEND_TEST_H_
