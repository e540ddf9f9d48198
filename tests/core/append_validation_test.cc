#include "eventstore/internal/append_validation.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "eventstore/event_data.h"
#include "eventstore/outbox_message.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore::internal {
namespace {

using ::eventstore::test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

EventData Event(const std::string& order_id = "o-1") {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

absl::Status Check(const StoreLimits& limits, std::string_view stream,
                   const std::vector<EventData>& events,
                   ExpectedVersion expected = ExpectedVersion::Any()) {
  return PrepareAppend(limits, AppendRequest{stream, expected, events})
      .status();
}

// --- stream names ------------------------------------------------------------

TEST(ValidateStreamNameTest, AcceptsOrdinaryAndUnicodeNames) {
  const StoreLimits limits;
  for (const char* good :
       {"order-1", "a", "Order_2/items:3", "caf\xc3\xa9-1",     // é
        "\xe6\xb3\xa8\xe6\x96\x87-7",                           // 注文
        "\xf0\x9f\x93\xa6-box",                                 // U+1F4E6
        "100%_done", "[x]*?", "'quoted'\"", "\xef\xbf\xbd"}) {  // U+FFFD
    SCOPED_TRACE(good);
    EXPECT_OK(ValidateStreamName(limits, good));
  }
}

TEST(ValidateStreamNameTest, EmptyIsInvalid) {
  EXPECT_THAT(
      ValidateStreamName(StoreLimits(), ""),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream")));
}

TEST(ValidateStreamNameTest, LengthLimitIsInclusive) {
  const StoreLimits limits;
  EXPECT_OK(ValidateStreamName(limits, std::string(255, 's')));
  EXPECT_THAT(ValidateStreamName(limits, std::string(256, 's')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("stream"), HasSubstr("255"))));
  StoreLimits small;
  small.max_stream_name_bytes = 4;
  EXPECT_OK(ValidateStreamName(small, "abcd"));
  EXPECT_THAT(ValidateStreamName(small, "abcde"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // Bytes, not characters: "éé" is four bytes, "ééé" six.
  EXPECT_OK(ValidateStreamName(small, "\xc3\xa9\xc3\xa9"));
  EXPECT_THAT(ValidateStreamName(small, "\xc3\xa9\xc3\xa9\xc3\xa9"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ValidateStreamNameTest, ControlAndWhiteSpaceCharactersAreInvalid) {
  for (const std::string& bad :
       {std::string("a b"), std::string("a\tb"), std::string("a\nb"),
        std::string("a\rb"), std::string("a\x01"), std::string("\x1f"),
        std::string("a\x7f"), std::string("a\0b", 3), std::string(" a"),
        std::string("a ")}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(
        ValidateStreamName(StoreLimits(), bad),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream")));
  }
}

TEST(ValidateStreamNameTest, MalformedUtf8IsInvalid) {
  for (const char* bad : {
           "a\xff",                 // never valid
           "a\x80",                 // lone continuation byte
           "a\xc3",                 // truncated two-byte sequence
           "a\xc3(",                // bad continuation
           "\xc0\x80",              // overlong NUL (two bytes)
           "\xc1\xbf",              // overlong
           "\xe2\x82",              // truncated three-byte sequence
           "\xf0\x9f\x93",          // truncated four-byte sequence
           "\xf5\x80\x80\x80",      // above U+10FFFF
           "\xf8\x88\x80\x80\x80",  // five-byte form
       }) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(ValidateStreamName(StoreLimits(), bad),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("stream"), HasSubstr("UTF-8"))));
  }
}

// RFC 3629 forbids these too. PostgreSQL refuses them in a text column, so a
// stream accepted by SQLite with such a name could not be migrated.
TEST(ValidateStreamNameTest, SurrogatesAndOverlongFormsAreInvalidUtf8) {
  for (const char* bad : {
           "\xed\xa0\x80",      // U+D800, a surrogate
           "\xed\xbf\xbf",      // U+DFFF
           "\xe0\x80\xaf",      // overlong '/' (three bytes)
           "\xe0\x9f\xbf",      // overlong U+07FF
           "\xf0\x80\x80\xaf",  // overlong '/' (four bytes)
           "\xf0\x8f\xbf\xbf",  // overlong U+FFFF
           "\xf4\x90\x80\x80",  // U+110000
       }) {
    SCOPED_TRACE(::testing::PrintToString(std::string(bad)));
    EXPECT_THAT(
        ValidateStreamName(StoreLimits(), bad),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
  }
}

// --- PrepareAppend -----------------------------------------------------------

TEST(PrepareAppendTest, KeepsIdsAndSourcesAndSerializesMetadata) {
  std::vector<EventData> events = {Event("a"), Event("b")};
  events[1].metadata.set_tenant_id("acme");
  (*events[1].metadata.mutable_properties())["k"] = "v";
  ASSERT_OK_AND_ASSIGN(
      std::vector<PreparedEvent> prepared,
      PrepareAppend(
          StoreLimits(),
          AppendRequest{"order-1", ExpectedVersion::NoStream(), events}));
  ASSERT_EQ(prepared.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(prepared[i].source, &events[i]);
    EXPECT_EQ(prepared[i].id, events[i].id);
  }
  EXPECT_EQ(prepared[0].metadata, "");
  v1::EventMetadata parsed;
  ASSERT_TRUE(parsed.ParseFromString(prepared[1].metadata));
  EXPECT_EQ(parsed.tenant_id(), "acme");
  EXPECT_EQ(parsed.properties().at("k"), "v");
}

TEST(PrepareAppendTest, GeneratesDistinctIdsForNilIds) {
  std::vector<EventData> events = {Event("a"), Event("b"), Event("c")};
  for (EventData& e : events) e.id = Uuid();
  ASSERT_OK_AND_ASSIGN(
      std::vector<PreparedEvent> prepared,
      PrepareAppend(StoreLimits(),
                    AppendRequest{"order-1", ExpectedVersion::Any(), events}));
  absl::flat_hash_set<Uuid> ids;
  for (const PreparedEvent& p : prepared) {
    EXPECT_FALSE(p.id.IsNil());
    ids.insert(p.id);
  }
  EXPECT_EQ(ids.size(), 3u);
}

TEST(PrepareAppendTest, EmptyBatchIsInvalid) {
  EXPECT_THAT(
      Check(StoreLimits(), "order-1", {}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("events")));
}

TEST(PrepareAppendTest, BadStreamNameIsInvalid) {
  EXPECT_THAT(
      Check(StoreLimits(), "", {Event()}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream")));
  EXPECT_THAT(
      Check(StoreLimits(), "a\nb", {Event()}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stream")));
}

TEST(PrepareAppendTest, BatchSizeLimitIsInclusive) {
  StoreLimits limits;
  limits.max_batch_events = 3;
  EXPECT_OK(Check(limits, "s", {Event(), Event(), Event()}));
  EXPECT_THAT(Check(limits, "s", {Event(), Event(), Event(), Event()}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("events"), HasSubstr("3"))));
}

TEST(PrepareAppendTest, DuplicateIdInBatchIsInvalid) {
  std::vector<EventData> events = {Event("a"), Event("b"), Event("c")};
  events[2].id = events[0].id;
  EXPECT_THAT(Check(StoreLimits(), "s", events),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("events[2].id"),
                             HasSubstr(events[0].id.ToString()))));
}

TEST(PrepareAppendTest, NegativeExactVersionIsInvalid) {
  EXPECT_THAT(
      Check(StoreLimits(), "s", {Event()}, ExpectedVersion::Exactly(-1)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("expected version")));
  EXPECT_OK(Check(StoreLimits(), "s", {Event()}, ExpectedVersion::Exactly(0)));
}

TEST(PrepareAppendTest, EventTypeRules) {
  StoreLimits limits;
  limits.max_event_type_bytes = 10;
  std::vector<EventData> events = {Event()};
  for (const char* good : {"a.B_c9", "x", "abcdefghij"}) {
    events[0].type = good;
    EXPECT_OK(Check(limits, "s", events)) << good;
  }
  for (const char* bad :
       {"", "abcdefghijk", "a-b", "a b", "a/b", "caf\xc3\xa9", "a\nb"}) {
    SCOPED_TRACE(bad);
    events[0].type = bad;
    EXPECT_THAT(Check(limits, "s", events),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("events[0].type")));
  }
}

TEST(PrepareAppendTest, PayloadLimitIsInclusiveAndNamesTheEvent) {
  StoreLimits limits;
  limits.max_payload_bytes = 100;
  std::vector<EventData> events = {Event(), Event()};
  events[1].payload = std::string(100, 'x');
  EXPECT_OK(Check(limits, "s", events));
  events[1].payload = std::string(101, 'x');
  EXPECT_THAT(Check(limits, "s", events),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("events[1].payload"), HasSubstr("101"),
                             HasSubstr("100"))));
}

TEST(PrepareAppendTest, DefaultPayloadLimitIsFourMebibytes) {
  std::vector<EventData> events = {Event()};
  events[0].payload = std::string(4 << 20, 'x');
  EXPECT_OK(Check(StoreLimits(), "s", events));
  events[0].payload.push_back('x');
  EXPECT_THAT(
      Check(StoreLimits(), "s", events),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("payload")));
}

TEST(PrepareAppendTest, MetadataLimitCountsSerializedBytes) {
  StoreLimits limits;
  limits.max_metadata_bytes = 64;
  std::vector<EventData> events = {Event()};
  events[0].metadata.set_actor(std::string(40, 'a'));
  EXPECT_OK(Check(limits, "s", events));
  (*events[0].metadata.mutable_properties())["key"] = std::string(40, 'v');
  EXPECT_THAT(Check(limits, "s", events),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("events[0].metadata")));
}

// --- trace context in metadata -----------------------------------------------

constexpr char kTraceparent[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(PrepareAppendTest, AcceptsValidTraceContext) {
  std::vector<EventData> events = {Event("a"), Event("b")};
  events[0].metadata.set_traceparent(kTraceparent);
  events[0].metadata.set_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
  events[1].metadata.set_traceparent(
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future");
  EXPECT_OK(Check(StoreLimits(), "s", events));
}

TEST(PrepareAppendTest, InvalidTraceparentNamesTheEvent) {
  std::vector<EventData> events = {Event("a"), Event("b")};
  events[0].metadata.set_traceparent(kTraceparent);
  events[1].metadata.set_traceparent(
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");
  EXPECT_THAT(
      Check(StoreLimits(), "s", events),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("events[1].metadata.traceparent: "),
                     HasSubstr("trace-id"), HasSubstr("4BF92F3577B34DA6"))));
}

TEST(PrepareAppendTest, TracestateLimitIsInclusive) {
  std::vector<EventData> events = {Event()};
  events[0].metadata.set_traceparent(kTraceparent);
  events[0].metadata.set_tracestate("k=" + std::string(510, 'v'));
  EXPECT_OK(Check(StoreLimits(), "s", events));
  events[0].metadata.set_tracestate("k=" + std::string(511, 'v'));
  EXPECT_THAT(Check(StoreLimits(), "s", events),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("events[0].metadata.tracestate: "),
                             HasSubstr("513"), HasSubstr("512"))));
}

TEST(PrepareAppendTest, TracestateMustBePrintableAscii) {
  std::vector<EventData> events = {Event()};
  events[0].metadata.set_traceparent(kTraceparent);
  events[0].metadata.set_tracestate(std::string("k=v\n", 4));
  EXPECT_THAT(Check(StoreLimits(), "s", events),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("events[0].metadata.tracestate: "),
                             HasSubstr("byte 3"), HasSubstr("0x0a"))));
  events[0].metadata.set_tracestate("caf\xc3\xa9=1");
  EXPECT_THAT(Check(StoreLimits(), "s", events),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("events[0].metadata.tracestate: byte 3")));
}

TEST(PrepareAppendTest, TracestateWithoutTraceparentIsInvalid) {
  std::vector<EventData> events = {Event()};
  events[0].metadata.set_tracestate("k=v");
  EXPECT_THAT(
      Check(StoreLimits(), "s", events),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("events[0].metadata.tracestate: set without")));
}

// --- OutboxWithEventHeaders --------------------------------------------------

constexpr char kOrderPlaced[] = "eventstore.test.v1.OrderPlaced";

OutboxMessage Message(std::map<std::string, std::string> headers = {}) {
  OutboxMessage message;
  message.destination = "billing";
  message.payload = "p";
  message.headers = std::move(headers);
  return message;
}

TEST(OutboxWithEventHeadersTest, CopiesFirstEventsContextIntoBareMessages) {
  std::vector<EventData> events = {Event("a"), Event("b")};
  events[0].metadata.set_traceparent(kTraceparent);
  events[0].metadata.set_tracestate("rojo=1");
  events[1].metadata.set_traceparent(
      "00-11111111111111111111111111111111-2222222222222222-00");
  const std::vector<OutboxMessage> outbox = {
      Message({{"x", "1"}}),
      Message({{"traceparent",
                "00-33333333333333333333333333333333-4444444444444444-01"}}),
      Message({{"tracestate", "stale=1"}})};
  std::vector<OutboxMessage> copies;
  absl::Span<const OutboxMessage> out = OutboxWithEventHeaders(
      AppendRequest{"s", ExpectedVersion::Any(), events, outbox}, copies);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out.data(), copies.data());
  EXPECT_EQ(out[0].headers,
            (std::map<std::string, std::string>{{"event-type", kOrderPlaced},
                                                {"traceparent", kTraceparent},
                                                {"tracestate", "rojo=1"},
                                                {"x", "1"}}));
  std::map<std::string, std::string> own = outbox[1].headers;
  own["event-type"] = kOrderPlaced;
  EXPECT_EQ(out[1].headers, own);
  EXPECT_EQ(out[2].headers,
            (std::map<std::string, std::string>{{"event-type", kOrderPlaced},
                                                {"traceparent", kTraceparent},
                                                {"tracestate", "rojo=1"}}));
  EXPECT_EQ(out[0].payload, "p");
  EXPECT_EQ(out[0].destination, "billing");
}

TEST(OutboxWithEventHeadersTest, RemovesStaleTracestateWhenEventHasNone) {
  std::vector<EventData> events = {Event()};
  events[0].metadata.set_traceparent(kTraceparent);
  const std::vector<OutboxMessage> outbox = {
      Message({{"tracestate", "stale=1"}})};
  std::vector<OutboxMessage> copies;
  absl::Span<const OutboxMessage> out = OutboxWithEventHeaders(
      AppendRequest{"s", ExpectedVersion::Any(), events, outbox}, copies);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].headers,
            (std::map<std::string, std::string>{
                {"event-type", kOrderPlaced}, {"traceparent", kTraceparent}}));
}

TEST(OutboxWithEventHeadersTest, CopiesCorrelationAndCausationKeepingOwnOnes) {
  std::vector<EventData> events = {Event()};
  events[0].metadata.set_correlation_id("workflow-7");
  events[0].metadata.set_causation_id("command-9");
  const std::vector<OutboxMessage> outbox = {
      Message(), Message({{"correlation-id", "mine"}, {"event-type", "T"}})};
  std::vector<OutboxMessage> copies;
  absl::Span<const OutboxMessage> out = OutboxWithEventHeaders(
      AppendRequest{"s", ExpectedVersion::Any(), events, outbox}, copies);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].headers, (std::map<std::string, std::string>{
                                {"causation-id", "command-9"},
                                {"correlation-id", "workflow-7"},
                                {"event-type", kOrderPlaced}}));
  EXPECT_EQ(out[1].headers,
            (std::map<std::string, std::string>{{"causation-id", "command-9"},
                                                {"correlation-id", "mine"},
                                                {"event-type", "T"}}));
}

TEST(OutboxWithEventHeadersTest, CopiesNothingWhenNothingChanges) {
  std::vector<EventData> events = {Event()};
  std::vector<OutboxMessage> copies;
  // Every message has the event's type, and the event has no other
  // metadata to copy.
  events[0].metadata.set_actor("a");
  const std::vector<OutboxMessage> typed = {Message({{"event-type", "T"}})};
  EXPECT_EQ(
      OutboxWithEventHeaders(
          AppendRequest{"s", ExpectedVersion::Any(), events, typed}, copies)
          .data(),
      typed.data());
  // Every message has its own traceparent and correlation id.
  events[0].metadata.set_traceparent(kTraceparent);
  events[0].metadata.set_correlation_id("c");
  const std::vector<OutboxMessage> traced = {
      Message({{"traceparent",
                "00-33333333333333333333333333333333-4444444444444444-01"},
               {"correlation-id", "mine"},
               {"event-type", "T"}})};
  EXPECT_EQ(
      OutboxWithEventHeaders(
          AppendRequest{"s", ExpectedVersion::Any(), events, traced}, copies)
          .data(),
      traced.data());
  EXPECT_TRUE(copies.empty());
}

// --- ResolveStoredIds --------------------------------------------------------

class ResolveStoredIdsTest : public ::testing::Test {
 protected:
  ResolveStoredIdsTest() : events_({Event("a"), Event("b"), Event("c")}) {}

  std::vector<PreparedEvent> Prepared() const {
    std::vector<PreparedEvent> prepared;
    for (const EventData& e : events_) {
      PreparedEvent p;
      p.source = &e;
      p.id = e.id;
      prepared.push_back(p);
    }
    return prepared;
  }

  absl::StatusOr<AppendResult> Resolve(
      std::string_view stream, ExpectedVersion expected,
      const std::vector<std::optional<StoredEventRef>>& stored) const {
    const std::vector<PreparedEvent> prepared = Prepared();
    return ResolveStoredIds(AppendRequest{stream, expected, events_}, prepared,
                            stored);
  }

  // The batch stored in `stream` at versions first..first+2, positions
  // 10*version.
  static std::vector<std::optional<StoredEventRef>> StoredAt(
      const std::string& stream, int64_t first) {
    std::vector<std::optional<StoredEventRef>> stored;
    for (int64_t v = first; v < first + 3; ++v) {
      stored.push_back(StoredEventRef{
          stream, v, Position::At(static_cast<uint64_t>(10 * v))});
    }
    return stored;
  }

  std::vector<EventData> events_;
};

TEST_F(ResolveStoredIdsTest, ExactRetryReturnsOriginalResult) {
  ASSERT_OK_AND_ASSIGN(AppendResult r, Resolve("s", ExpectedVersion::Exactly(4),
                                               StoredAt("s", 5)));
  EXPECT_EQ(r.next_expected_version, 7);
  EXPECT_EQ(r.first_position, Position::At(50));
  EXPECT_EQ(r.last_position, Position::At(70));
  EXPECT_TRUE(r.idempotent_retry);
}

TEST_F(ResolveStoredIdsTest, RetryUnderEachConsistentExpectedVersion) {
  EXPECT_OK(Resolve("s", ExpectedVersion::NoStream(), StoredAt("s", 1)));
  EXPECT_OK(Resolve("s", ExpectedVersion::Exactly(0), StoredAt("s", 1)));
  EXPECT_OK(Resolve("s", ExpectedVersion::Any(), StoredAt("s", 1)));
  EXPECT_OK(Resolve("s", ExpectedVersion::Any(), StoredAt("s", 9)));
  EXPECT_OK(Resolve("s", ExpectedVersion::StreamExists(), StoredAt("s", 2)));
}

TEST_F(ResolveStoredIdsTest, InconsistentExpectedVersionIsAlreadyExists) {
  // The ids were stored, but not by an append with this condition.
  EXPECT_THAT(Resolve("s", ExpectedVersion::Exactly(3), StoredAt("s", 5)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(Resolve("s", ExpectedVersion::Exactly(5), StoredAt("s", 5)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(Resolve("s", ExpectedVersion::NoStream(), StoredAt("s", 2)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(Resolve("s", ExpectedVersion::StreamExists(), StoredAt("s", 1)),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(ResolveStoredIdsTest, OtherStreamIsAlreadyExistsNamingIt) {
  EXPECT_THAT(
      Resolve("s", ExpectedVersion::Any(), StoredAt("other", 1)),
      StatusIs(absl::StatusCode::kAlreadyExists,
               AllOf(HasSubstr(events_[0].id.ToString()), HasSubstr("other"))));
}

TEST_F(ResolveStoredIdsTest, PartialOverlapIsAlreadyExists) {
  for (int missing = 0; missing < 3; ++missing) {
    SCOPED_TRACE(missing);
    std::vector<std::optional<StoredEventRef>> stored = StoredAt("s", 1);
    stored[missing].reset();
    EXPECT_THAT(Resolve("s", ExpectedVersion::Any(), stored),
                StatusIs(absl::StatusCode::kAlreadyExists));
  }
  // Only one of three stored.
  std::vector<std::optional<StoredEventRef>> one(3);
  one[1] = StoredEventRef{"s", 4, Position::At(4)};
  EXPECT_THAT(Resolve("s", ExpectedVersion::Any(), one),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr(events_[1].id.ToString())));
}

TEST_F(ResolveStoredIdsTest, OtherOrderOrGapIsAlreadyExists) {
  std::vector<std::optional<StoredEventRef>> swapped = StoredAt("s", 1);
  std::swap(swapped[0], swapped[1]);
  EXPECT_THAT(Resolve("s", ExpectedVersion::Any(), swapped),
              StatusIs(absl::StatusCode::kAlreadyExists));
  std::vector<std::optional<StoredEventRef>> gap = StoredAt("s", 1);
  gap[2]->version = 4;
  EXPECT_THAT(Resolve("s", ExpectedVersion::Any(), gap),
              StatusIs(absl::StatusCode::kAlreadyExists));
  std::vector<std::optional<StoredEventRef>> mixed = StoredAt("s", 1);
  mixed[2]->stream = "t";
  EXPECT_THAT(Resolve("s", ExpectedVersion::Any(), mixed),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

}  // namespace
}  // namespace eventstore::internal
