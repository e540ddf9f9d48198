// W3C trace context in event metadata (EventMetadata::traceparent and
// ::tracestate, tracing.h), run on every backend of AllTestBackends() and
// on a FailoverEventStore: a trace context that is not valid is refused
// before anything is written, a valid one is stored and read back, and an
// append copies its first event's trace context into the headers of the
// outbox messages that have none. Also through a failover journal: the
// messages get the headers when the journal is replayed into the primary.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/tracing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::AllTestBackendsAndFailover;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kTraceparent[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kOtherTraceparent[] =
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
constexpr char kPlacedType[] = "eventstore.test.v1.OrderPlaced";

using Headers = std::map<std::string, std::string>;

EventData Placed(const std::string& order_id,
                 const std::string& traceparent = "",
                 const std::string& tracestate = "") {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  EventData event = EventData::From(placed);
  event.metadata.set_traceparent(traceparent);
  event.metadata.set_tracestate(tracestate);
  return event;
}

OutboxMessage Message(const std::string& key, Headers headers = {}) {
  OutboxMessage message;
  message.destination = "billing";
  message.key = key;
  message.payload = "payload " + key;
  message.headers = std::move(headers);
  return message;
}

absl::StatusOr<AppendResult> AppendWith(
    EventStore& store, const std::string& stream,
    const std::vector<EventData>& events,
    const std::vector<OutboxMessage>& messages) {
  AppendRequest request;
  request.stream = stream;
  request.expected = ExpectedVersion::Any();
  request.events = events;
  request.outbox = messages;
  return store.Append(request);
}

class TraceContextConformanceTest : public test::StoreTest {
 protected:
  // Nothing of an append was written: no stream, no event in the log, no
  // outbox message.
  void ExpectNothingWritten(const std::string& stream) {
    absl::StatusOr<int64_t> version = store().StreamVersion(stream);
    ASSERT_OK(version);
    EXPECT_EQ(*version, 0);
    absl::StatusOr<Position> head = store().HeadPosition();
    ASSERT_OK(head);
    EXPECT_EQ(*head, Position::Start());
    absl::StatusOr<std::vector<OutboxEntry>> pending =
        store().outbox().Pending(10);
    ASSERT_OK(pending);
    EXPECT_THAT(*pending, IsEmpty());
  }
};

TEST_P(TraceContextConformanceTest, StoresAndReadsBackTraceContext) {
  ASSERT_OK(store().Append(
      "order-1", ExpectedVersion::NoStream(),
      {Placed("a", kTraceparent, "rojo=00f067aa0ba902b7"), Placed("b")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store().ReadStream("order-1"));
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].metadata.traceparent(), kTraceparent);
  EXPECT_EQ(events[0].metadata.tracestate(), "rojo=00f067aa0ba902b7");
  EXPECT_EQ(events[1].metadata.traceparent(), "");
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, store().ReadAll(ReadAllOptions()));
  ASSERT_THAT(page.events, SizeIs(2));
  EXPECT_EQ(page.events[0].metadata.traceparent(), kTraceparent);
}

TEST_P(TraceContextConformanceTest, InvalidTraceparentIsRefusedBeforeWriting) {
  const std::vector<EventData> events = {
      Placed("a", kTraceparent),
      Placed("b", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")};
  EXPECT_THAT(AppendWith(store(), "order-1", events, {Message("k")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("events[1].metadata.traceparent"),
                             HasSubstr("parent-id is all zeros"))));
  ExpectNothingWritten("order-1");
}

TEST_P(TraceContextConformanceTest, InvalidTracestateIsRefusedBeforeWriting) {
  EXPECT_THAT(
      store().Append("order-1", ExpectedVersion::Any(),
                     {Placed("a", kTraceparent, std::string(513, 'x'))}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("events[0].metadata.tracestate"),
                     HasSubstr("over the limit of 512"))));
  EXPECT_THAT(store().Append("order-1", ExpectedVersion::Any(),
                             {Placed("a", kTraceparent, "k=\x01")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("events[0].metadata.tracestate"),
                             HasSubstr("not printable ASCII"))));
  EXPECT_THAT(store().Append("order-1", ExpectedVersion::Any(),
                             {Placed("a", "", "k=v")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("events[0].metadata.tracestate: set "
                                 "without a traceparent")));
  ExpectNothingWritten("order-1");
}

TEST_P(TraceContextConformanceTest, OutboxMessagesGetTheFirstEventsContext) {
  const std::vector<EventData> events = {Placed("a", kTraceparent, "rojo=1"),
                                         Placed("b", kOtherTraceparent)};
  const std::vector<OutboxMessage> messages = {
      Message("bare", {{"x", "1"}}),
      Message("own", {{"traceparent", kOtherTraceparent}}),
      Message("stale", {{"tracestate", "old=1"}})};
  ASSERT_OK(AppendWith(store(), "order-1", events, messages));

  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store().outbox().Pending(10));
  ASSERT_THAT(pending, SizeIs(3));
  EXPECT_EQ(pending[0].message.key, "bare");
  // Each also gets the first event's type (OutboxWithEventHeaders).
  EXPECT_EQ(pending[0].message.headers, (Headers{{"event-type", kPlacedType},
                                                 {"traceparent", kTraceparent},
                                                 {"tracestate", "rojo=1"},
                                                 {"x", "1"}}));
  EXPECT_EQ(pending[1].message.headers,
            (Headers{{"event-type", kPlacedType},
                     {"traceparent", kOtherTraceparent}}));
  EXPECT_EQ(pending[2].message.headers, (Headers{{"event-type", kPlacedType},
                                                 {"traceparent", kTraceparent},
                                                 {"tracestate", "rojo=1"}}));
  EXPECT_EQ(pending[0].message.payload, "payload bare");
}

TEST_P(TraceContextConformanceTest, OutboxGetsNoTraceContextWithoutOne) {
  const std::vector<OutboxMessage> messages = {Message("a", {{"x", "1"}}),
                                               Message("b")};
  // The second event's context does not count: only the first event's.
  ASSERT_OK(AppendWith(store(), "order-1",
                       {Placed("a"), Placed("b", kTraceparent)}, messages));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store().outbox().Pending(10));
  ASSERT_THAT(pending, SizeIs(2));
  EXPECT_EQ(pending[0].message.headers,
            (Headers{{"event-type", kPlacedType}, {"x", "1"}}));
  EXPECT_EQ(pending[1].message.headers, (Headers{{"event-type", kPlacedType}}));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, TraceContextConformanceTest,
                         ::testing::ValuesIn(AllTestBackendsAndFailover()),
                         TestBackendName);

// --- through a failover journal ----------------------------------------------

// A primary whose appends fail with kUnavailable while `down`.
class UnreachablePrimary final : public ForwardingEventStore {
 public:
  explicit UnreachablePrimary(EventStore* target)
      : ForwardingEventStore(target) {}

  std::atomic<bool> down{false};

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    if (down) return absl::UnavailableError("test primary: unreachable");
    return ForwardingEventStore::Append(request);
  }
  absl::StatusOr<Position> HeadPosition() override {
    if (down) return absl::UnavailableError("test primary: unreachable");
    return ForwardingEventStore::HeadPosition();
  }
};

// The backend under test as the primary, a SQLite journal.
class TraceContextFailoverJournalTest : public test::StoreTest {};

TEST_P(TraceContextFailoverJournalTest, ReplayedOutboxMessagesGetTheContext) {
  auto primary = std::make_unique<UnreachablePrimary>(store_.get());
  UnreachablePrimary* const primary_switch = primary.get();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> journal,
                       test::OpenFailoverJournal(":memory:", store().limits()));
  FailoverOptions options;
  options.limits = store().limits();
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<FailoverEventStore> failover,
                       FailoverEventStore::Create(std::move(primary),
                                                  std::move(journal), options));

  primary_switch->down = true;
  // Refused by the journal as by any backend.
  EXPECT_THAT(failover->Append("order-1", ExpectedVersion::Any(),
                               {Placed("a", "00-zz")}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("events[0].metadata.traceparent")));
  ASSERT_OK(AppendWith(*failover, "order-1", {Placed("a", kTraceparent, "s=1")},
                       {Message("k")}));
  EXPECT_EQ(failover->Status().mode, FailoverStatus::Mode::kFallback);
  EXPECT_EQ(failover->Status().journaled, 1);

  primary_switch->down = false;
  ASSERT_OK(failover->ReplayNow());
  EXPECT_EQ(failover->Status().mode, FailoverStatus::Mode::kPrimary);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store().ReadStream("order-1"));
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].metadata.traceparent(), kTraceparent);
  EXPECT_EQ(events[0].metadata.tracestate(), "s=1");
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> pending,
                       store().outbox().Pending(10));
  ASSERT_THAT(pending, SizeIs(1));
  EXPECT_EQ(pending[0].message.headers, (Headers{{"event-type", kPlacedType},
                                                 {"traceparent", kTraceparent},
                                                 {"tracestate", "s=1"}}));
  failover.reset();  // before the primary it wraps
}

INSTANTIATE_TEST_SUITE_P(AllBackends, TraceContextFailoverJournalTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
