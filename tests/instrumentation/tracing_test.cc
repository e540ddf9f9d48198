// Tracing (tracing.h): W3C trace context validation, ScopedSpan, and the
// spans InstrumentedEventStore starts on every backend.

#include "eventstore/tracing.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/command_context.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/instrumented_event_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/instrumentation/traced_backend_test.h"
#include "tests/support/recording_instrumentation.h"
#include "tests/support/recording_tracer.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::AllTestBackendsAndFailover;
using ::eventstore::test::RecordedSpan;
using ::eventstore::test::RecordingInstrumentation;
using ::eventstore::test::RecordingTracer;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// The examples of the W3C Trace Context recommendation.
constexpr char kValid[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kValidTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";

// --- ValidateTraceparent -----------------------------------------------------

TEST(ValidateTraceparentTest, AcceptsVersion00) {
  EXPECT_OK(ValidateTraceparent(kValid));
  EXPECT_OK(ValidateTraceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
  // Flags this version does not define are still two hex digits.
  EXPECT_OK(ValidateTraceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09"));
}

TEST(ValidateTraceparentTest, AcceptsFutureVersionWithExtraFields) {
  EXPECT_OK(ValidateTraceparent(
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  EXPECT_OK(ValidateTraceparent(
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-"
      "future-will-be-like"));
}

TEST(ValidateTraceparentTest, RefusesVersion00WithExtraFields) {
  EXPECT_THAT(ValidateTraceparent(std::string(kValid) + "-extra"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("version 00 has more than 4 fields")));
}

TEST(ValidateTraceparentTest, RefusesVersionFf) {
  EXPECT_THAT(
      ValidateTraceparent(
          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version ff")));
}

TEST(ValidateTraceparentTest, RefusesUppercase) {
  for (const char* bad :
       {"0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(ValidateTraceparent(bad),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("lowercase hex")));
  }
}

TEST(ValidateTraceparentTest, RefusesAllZeroIds) {
  EXPECT_THAT(ValidateTraceparent(
                  "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("trace-id is all zeros")));
  EXPECT_THAT(ValidateTraceparent(
                  "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("parent-id is all zeros")));
}

TEST(ValidateTraceparentTest, RefusesWrongLengths) {
  EXPECT_THAT(
      ValidateTraceparent(
          "000-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("version")));
  EXPECT_THAT(
      ValidateTraceparent(
          "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("trace-id")));
  EXPECT_THAT(
      ValidateTraceparent(
          "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("trace-id")));
  EXPECT_THAT(
      ValidateTraceparent(
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("parent-id")));
  EXPECT_THAT(ValidateTraceparent(
                  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("flags")));
  // A future version's fourth field is still exactly two digits.
  EXPECT_THAT(ValidateTraceparent(
                  "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("flags")));
}

TEST(ValidateTraceparentTest, RefusesTooFewFieldsAndEmpty) {
  EXPECT_THAT(
      ValidateTraceparent(
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3 fields")));
  EXPECT_THAT(ValidateTraceparent(""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("traceparent: is empty")));
  EXPECT_THAT(ValidateTraceparent(" 00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                  "00f067aa0ba902b7-01"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- ValidateTracestate ------------------------------------------------------

TEST(ValidateTracestateTest, AcceptsEmptyListsAndTheLimit) {
  EXPECT_OK(ValidateTracestate(""));
  EXPECT_OK(ValidateTracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
  EXPECT_OK(ValidateTracestate(std::string(kMaxTracestateBytes, 'a')));
}

TEST(ValidateTracestateTest, RefusesLongOrUnprintable) {
  EXPECT_THAT(ValidateTracestate(std::string(kMaxTracestateBytes + 1, 'a')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tracestate: 513 characters")));
  EXPECT_THAT(
      ValidateTracestate("a=\t"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byte 2 (0x09)")));
  EXPECT_THAT(
      ValidateTracestate("a=\x7f"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byte 2 (0x7f)")));
}

// --- ScopedSpan --------------------------------------------------------------

TEST(ScopedSpanTest, WithoutTracerDoesNothing) {
  ScopedSpan span(nullptr, "x", SpanKind::kInternal, TraceContext{kValid, ""});
  EXPECT_FALSE(span);
  span.SetAttribute("k", "v");
  span.SetAttribute("n", int64_t{1});
  span.SetStatus(absl::InternalError("boom"));
  EXPECT_TRUE(span.context().empty());
}

TEST(ScopedSpanTest, EndsExactlyOnceWhenDestroyed) {
  RecordingTracer tracer;
  {
    ScopedSpan span(&tracer, "work", SpanKind::kProducer);
    EXPECT_TRUE(span);
    span.SetAttribute("k", "v");
    span.SetAttribute("n", int64_t{7});
    EXPECT_EQ(tracer.started(), 1);
    EXPECT_THAT(tracer.ended(), IsEmpty());
  }
  std::vector<RecordedSpan> spans = tracer.ended();
  ASSERT_THAT(spans, SizeIs(1));
  EXPECT_EQ(spans[0].name, "work");
  EXPECT_EQ(spans[0].kind, SpanKind::kProducer);
  EXPECT_EQ(spans[0].end_calls, 1);
  EXPECT_EQ(spans[0].string_attributes.at("k"), "v");
  EXPECT_EQ(spans[0].int_attributes.at("n"), 7);
  EXPECT_OK(spans[0].error);
  EXPECT_TRUE(spans[0].parent.empty());
}

TEST(ScopedSpanTest, SetStatusRecordsOnlyErrors) {
  RecordingTracer tracer;
  {
    ScopedSpan(&tracer, "ok", SpanKind::kInternal).SetStatus(absl::OkStatus());
  }
  {
    ScopedSpan span(&tracer, "failed", SpanKind::kInternal);
    span.SetStatus(absl::UnavailableError("down"));
  }
  EXPECT_OK(tracer.ended("ok").at(0).error);
  EXPECT_THAT(tracer.ended("failed").at(0).error,
              StatusIs(absl::StatusCode::kUnavailable, "down"));
}

TEST(ScopedSpanTest, PassesValidParentAndGivesChildContext) {
  RecordingTracer tracer;
  TraceContext child;
  {
    ScopedSpan span(&tracer, "child", SpanKind::kConsumer,
                    TraceContext{kValid, "rojo=1"});
    child = span.context();
  }
  const RecordedSpan span = tracer.ended().at(0);
  EXPECT_EQ(span.parent.traceparent, kValid);
  EXPECT_EQ(span.parent.tracestate, "rojo=1");
  EXPECT_EQ(span.trace_id(), kValidTraceId);
  EXPECT_EQ(child.traceparent, span.context.traceparent);
  EXPECT_OK(ValidateTraceparent(child.traceparent));
}

TEST(ScopedSpanTest, PassesNoInvalidParent) {
  RecordingTracer tracer;
  for (const char* bad :
       {"garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}) {
    ScopedSpan span(&tracer, bad, SpanKind::kInternal,
                    TraceContext{bad, "rojo=1"});
  }
  ASSERT_THAT(tracer.ended(), SizeIs(3));
  for (const RecordedSpan& span : tracer.ended()) {
    SCOPED_TRACE(span.name);
    EXPECT_TRUE(span.parent.empty());
    EXPECT_EQ(span.parent.tracestate, "");
  }
}

TEST(ScopedSpanTest, DropsInvalidTracestateKeepsTraceparent) {
  RecordingTracer tracer;
  {
    ScopedSpan span(&tracer, "x", SpanKind::kInternal,
                    TraceContext{kValid, "a=\n"});
  }
  const RecordedSpan span = tracer.ended().at(0);
  EXPECT_EQ(span.parent.traceparent, kValid);
  EXPECT_EQ(span.parent.tracestate, "");
}

// --- CommandContext::trace ---------------------------------------------------

TEST(CommandContextTraceTest, CopiesValidTraceContextIntoMetadata) {
  CommandContext context;
  context.trace = TraceContext{kValid, "rojo=1"};
  const v1::EventMetadata metadata = context.ToMetadata();
  EXPECT_EQ(metadata.traceparent(), kValid);
  EXPECT_EQ(metadata.tracestate(), "rojo=1");
}

TEST(CommandContextTraceTest, EventsOwnTraceContextIsKept) {
  CommandContext context;
  context.trace = TraceContext{kValid, "rojo=1"};
  v1::EventMetadata metadata;
  const std::string own =
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  metadata.set_traceparent(own);
  context.FillIn(metadata);
  EXPECT_EQ(metadata.traceparent(), own);
  EXPECT_EQ(metadata.tracestate(), "");
}

TEST(CommandContextTraceTest, InvalidTraceparentIsIgnored) {
  CommandContext context;
  context.correlation_id = "c-1";
  context.trace = TraceContext{
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "rojo=1"};
  const v1::EventMetadata metadata = context.ToMetadata();
  EXPECT_EQ(metadata.traceparent(), "");
  EXPECT_EQ(metadata.tracestate(), "");
  EXPECT_EQ(metadata.correlation_id(), "c-1");
}

TEST(CommandContextTraceTest, InvalidTracestateIsDropped) {
  CommandContext context;
  context.trace =
      TraceContext{kValid, std::string(kMaxTracestateBytes + 1, 'a')};
  const v1::EventMetadata metadata = context.ToMetadata();
  EXPECT_EQ(metadata.traceparent(), kValid);
  EXPECT_EQ(metadata.tracestate(), "");
}

// --- InstrumentedEventStore's spans, on every backend ------------------------

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

class TracedStoreTest : public test::TracedBackendTest {};

TEST_P(TracedStoreTest, AppendSpanContinuesTheFirstEventsTrace) {
  std::vector<EventData> events = {Placed("a"), Placed("b")};
  events[0].metadata.set_traceparent(kValid);
  events[0].metadata.set_tracestate("rojo=1");
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::NoStream(), events));

  std::vector<RecordedSpan> spans = tracer_->ended("eventstore.append");
  ASSERT_THAT(spans, SizeIs(1));
  const RecordedSpan& span = spans[0];
  EXPECT_EQ(span.kind, SpanKind::kClient);
  EXPECT_EQ(span.end_calls, 1);
  EXPECT_EQ(span.parent.traceparent, kValid);
  EXPECT_EQ(span.parent.tracestate, "rojo=1");
  EXPECT_EQ(span.trace_id(), kValidTraceId);
  EXPECT_EQ(span.string_attributes.at("eventstore.backend"),
            "label-under-test");
  EXPECT_EQ(span.string_attributes.at("eventstore.stream"), "order-1");
  EXPECT_EQ(span.int_attributes.at("eventstore.events"), 2);
  EXPECT_EQ(span.string_attributes.at("eventstore.expected_version"),
            ExpectedVersion::NoStream().ToString());
  EXPECT_EQ(span.string_attributes.at("eventstore.outcome"), "ok");
  EXPECT_OK(span.error);
}

TEST_P(TracedStoreTest, AppendWithoutTraceContextStartsWithoutParent) {
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::Any(), {Placed("a")}));
  const RecordedSpan span = tracer_->ended("eventstore.append").at(0);
  EXPECT_TRUE(span.parent.empty());
  EXPECT_EQ(span.string_attributes.at("eventstore.expected_version"),
            ExpectedVersion::Any().ToString());
}

TEST_P(TracedStoreTest, FailedAppendSetsErrorAndOutcome) {
  ASSERT_OK(
      store_->Append("order-1", ExpectedVersion::NoStream(), {Placed("a")}));
  absl::StatusOr<AppendResult> lost =
      store_->Append("order-1", ExpectedVersion::Exactly(5), {Placed("b")});
  ASSERT_TRUE(IsWrongExpectedVersion(lost.status()));

  std::vector<RecordedSpan> spans = tracer_->ended("eventstore.append");
  ASSERT_THAT(spans, SizeIs(2));
  EXPECT_EQ(spans[1].string_attributes.at("eventstore.outcome"),
            "wrong_expected_version");
  EXPECT_EQ(spans[1].string_attributes.at("eventstore.expected_version"),
            ExpectedVersion::Exactly(5).ToString());
  EXPECT_EQ(spans[1].error, lost.status());
}

TEST_P(TracedStoreTest, InvalidTraceparentIsRefusedAndSpanHasNoParent) {
  std::vector<EventData> events = {Placed("a")};
  events[0].metadata.set_traceparent("not-a-traceparent");
  EXPECT_THAT(store_->Append("order-1", ExpectedVersion::Any(), events),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("events[0].metadata.traceparent")));
  const RecordedSpan span = tracer_->ended("eventstore.append").at(0);
  EXPECT_TRUE(span.parent.empty());
  EXPECT_EQ(span.string_attributes.at("eventstore.outcome"), "other");
  EXPECT_EQ(span.error.code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(TracedStoreTest, ReadSpansCountEventsReturned) {
  ASSERT_OK(store_->Append("order-1", ExpectedVersion::NoStream(),
                           {Placed("a"), Placed("b"), Placed("c")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       store_->ReadStream("order-1"));
  ASSERT_THAT(read, SizeIs(3));
  ReadAllOptions options;
  options.from_position = read[0].position;
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store_->ReadAll(options));
  ASSERT_THAT(page.events, SizeIs(2));

  const RecordedSpan stream = tracer_->ended("eventstore.read_stream").at(0);
  EXPECT_EQ(stream.kind, SpanKind::kClient);
  EXPECT_EQ(stream.string_attributes.at("eventstore.backend"),
            "label-under-test");
  EXPECT_EQ(stream.string_attributes.at("eventstore.stream"), "order-1");
  EXPECT_EQ(stream.int_attributes.at("eventstore.events"), 3);
  EXPECT_OK(stream.error);

  const RecordedSpan all = tracer_->ended("eventstore.read_all").at(0);
  EXPECT_EQ(all.kind, SpanKind::kClient);
  EXPECT_EQ(all.string_attributes.at("eventstore.backend"), "label-under-test");
  EXPECT_EQ(all.string_attributes.at("eventstore.from_position"),
            read[0].position.ToString());
  EXPECT_EQ(all.int_attributes.at("eventstore.events"), 2);
  EXPECT_EQ(all.end_calls, 1);
}

TEST_P(TracedStoreTest, FailedReadSetsError) {
  ReadStreamOptions options;
  options.max_count = -1;
  absl::StatusOr<std::vector<RecordedEvent>> read =
      store_->ReadStream("order-1", options);
  ASSERT_FALSE(read.ok());
  const RecordedSpan span = tracer_->ended("eventstore.read_stream").at(0);
  EXPECT_EQ(span.error, read.status());
  EXPECT_EQ(span.int_attributes.at("eventstore.events"), 0);
}

TEST_P(TracedStoreTest, MetricsAndSpansTogether) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> opened,
                       GetParam().open(nullptr));
  auto metrics = std::make_shared<RecordingInstrumentation>();
  InstrumentOptions options;
  options.instrumentation = metrics;
  options.tracer = tracer_;
  options.backend_label = "both";
  std::unique_ptr<EventStore> store =
      Instrument(std::move(opened), std::move(options));
  ASSERT_OK(store->Append("order-1", ExpectedVersion::Any(), {Placed("a")}));
  ASSERT_THAT(metrics->appends(), SizeIs(1));
  EXPECT_EQ(metrics->appends()[0].backend, "both");
  EXPECT_EQ(tracer_->ended("eventstore.append")
                .at(0)
                .string_attributes.at("eventstore.backend"),
            "both");
}

TEST_P(TracedStoreTest, ConcurrentAppendsEachEndOneSpanInTheirTrace) {
  constexpr int kThreads = 4;
  constexpr int kAppends = 10;
  std::vector<std::string> traceparents;
  for (int t = 0; t < kThreads; ++t) {
    // Trace ids 000...01 to 000...04.
    traceparents.push_back(absl::StrCat("00-", std::string(31, '0'), t + 1,
                                        "-00f067aa0ba902b7-01"));
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        std::vector<EventData> events = {Placed(absl::StrCat(t, "-", i))};
        events[0].metadata.set_traceparent(traceparents[t]);
        EXPECT_OK(store_->Append(absl::StrCat("order-", t),
                                 ExpectedVersion::Any(), events));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::vector<RecordedSpan> spans = tracer_->ended("eventstore.append");
  ASSERT_THAT(spans, SizeIs(kThreads * kAppends));
  std::map<std::string, int> per_stream;
  for (const RecordedSpan& span : spans) {
    EXPECT_EQ(span.end_calls, 1);
    const std::string& stream = span.string_attributes.at("eventstore.stream");
    ++per_stream[stream];
    const int t = std::stoi(stream.substr(6));
    EXPECT_EQ(span.parent.traceparent, traceparents[t]);
  }
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(per_stream[absl::StrCat("order-", t)], kAppends);
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, TracedStoreTest,
                         ::testing::ValuesIn(AllTestBackendsAndFailover()),
                         TestBackendName);

// --- Instrument() ------------------------------------------------------------

TEST(InstrumentTest, WithNothingAttachedReturnsTheStoreItself) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> opened,
                       AllTestBackends().front().open(nullptr));
  EventStore* const raw = opened.get();
  std::unique_ptr<EventStore> store =
      Instrument(std::move(opened), InstrumentOptions{});
  EXPECT_EQ(store.get(), raw);
  EXPECT_EQ(Instrument(nullptr,
                       InstrumentOptions{
                           nullptr, std::make_shared<RecordingTracer>(), "x"}),
            nullptr);
}

TEST(InstrumentTest, TracerAloneMakesADecoratorThatMeasuresNothingElse) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> opened,
                       AllTestBackends().front().open(nullptr));
  EventStore* const raw = opened.get();
  auto tracer = std::make_shared<RecordingTracer>();
  std::unique_ptr<EventStore> store =
      Instrument(std::move(opened), InstrumentOptions{nullptr, tracer, "s"});
  ASSERT_NE(store.get(), raw);
  ASSERT_OK(store->Append("s-1", ExpectedVersion::Any(), {Placed("a")}));
  EXPECT_EQ(tracer->started(), 1);
}

}  // namespace
}  // namespace eventstore
