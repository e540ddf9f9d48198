// The transactional outbox (AppendRequest::outbox, outbox_store.h), run on
// every backend of AllTestBackends(): messages commit with their append or
// not at all, and publishers claim, publish and fail them without ever
// holding the same message at once.
//
// Tests whose names start with "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/outbox_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// How far a timestamp written by the database may stand from the test's
// own clock (the PostgreSQL server runs on this machine).
constexpr absl::Duration kClockSlack = absl::Seconds(5);
constexpr absl::Duration kLongLease = absl::Seconds(60);

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  return EventData::From(placed);
}

std::vector<EventData> Batch(int n, const std::string& tag) {
  std::vector<EventData> events;
  for (int i = 0; i < n; ++i) events.push_back(Placed(absl::StrCat(tag, i)));
  return events;
}

OutboxMessage Message(const std::string& destination, const std::string& key,
                      const std::string& payload,
                      std::map<std::string, std::string> headers = {}) {
  OutboxMessage m;
  m.destination = destination;
  m.key = key;
  m.payload = payload;
  m.headers = std::move(headers);
  return m;
}

std::vector<OutboxMessage> Messages(int n, const std::string& tag) {
  std::vector<OutboxMessage> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(Message("topic", absl::StrCat(tag, "-", i),
                          absl::StrCat("payload ", tag, " ", i)));
  }
  return out;
}

std::vector<int64_t> Ids(const std::vector<OutboxEntry>& entries) {
  std::vector<int64_t> ids;
  for (const OutboxEntry& e : entries) ids.push_back(e.id);
  return ids;
}

std::vector<std::string> Keys(const std::vector<OutboxEntry>& entries) {
  std::vector<std::string> keys;
  for (const OutboxEntry& e : entries) keys.push_back(e.message.key);
  return keys;
}

void ExpectSameMessage(const OutboxMessage& actual,
                       const OutboxMessage& expected) {
  EXPECT_EQ(actual.destination, expected.destination);
  EXPECT_EQ(actual.key, expected.key);
  EXPECT_EQ(actual.payload, expected.payload);
  EXPECT_EQ(actual.headers, expected.headers);
}

class OutboxConformanceTest : public test::StoreTest {
 protected:
  OutboxStore& outbox() { return store_->outbox(); }

  absl::StatusOr<AppendResult> AppendWith(
      const std::string& stream, ExpectedVersion expected,
      const std::vector<EventData>& events,
      const std::vector<OutboxMessage>& messages) {
    AppendRequest request;
    request.stream = stream;
    request.expected = expected;
    request.events = events;
    request.outbox = messages;
    return store().Append(request);
  }

  std::vector<OutboxEntry> MustPending(int limit = 1000) {
    absl::StatusOr<std::vector<OutboxEntry>> pending = outbox().Pending(limit);
    EXPECT_OK(pending);
    return pending.ok() ? *std::move(pending) : std::vector<OutboxEntry>();
  }

  std::vector<OutboxEntry> MustClaim(const std::string& worker, int limit,
                                     absl::Duration lease) {
    absl::StatusOr<std::vector<OutboxEntry>> claimed =
        outbox().Claim(worker, limit, lease);
    EXPECT_OK(claimed) << worker;
    return claimed.ok() ? *std::move(claimed) : std::vector<OutboxEntry>();
  }

  OutboxStats MustStats() {
    absl::StatusOr<OutboxStats> stats = outbox().Stats();
    EXPECT_OK(stats);
    return stats.ok() ? *stats : OutboxStats();
  }
};

// --- enqueueing with an append -----------------------------------------------

TEST_P(OutboxConformanceTest, AppendEnqueuesItsMessages) {
  const std::vector<OutboxMessage> messages = {
      Message("billing", "order-1", std::string("bin\0ary\xff", 8),
              {{"content-type", "application/x-protobuf"}, {"trace", "t-1"}}),
      Message("shipping", "", "second")};
  const absl::Time before = absl::Now();
  ASSERT_OK(AppendWith("order-1", ExpectedVersion::NoStream(), Batch(2, "o"),
                       messages));
  const absl::Time after = absl::Now();

  const std::vector<OutboxEntry> pending = MustPending();
  ASSERT_THAT(pending, SizeIs(2));
  EXPECT_LT(pending[0].id, pending[1].id);
  for (size_t i = 0; i < pending.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("message ", i));
    // The append adds its first event's type as a header.
    OutboxMessage expected = messages[i];
    expected.headers[kEventTypeHeader] = "eventstore.test.v1.OrderPlaced";
    ExpectSameMessage(pending[i].message, expected);
    EXPECT_EQ(pending[i].status, OutboxStatus::kPending);
    EXPECT_EQ(pending[i].attempts, 0);
    EXPECT_EQ(pending[i].last_error, "");
    EXPECT_EQ(pending[i].published_at, absl::InfinitePast());
    EXPECT_EQ(pending[i].claimed_by, "");
    EXPECT_EQ(pending[i].lease_until, absl::InfinitePast());
    EXPECT_GE(pending[i].created_at, before - kClockSlack);
    EXPECT_LE(pending[i].created_at, after + kClockSlack);
  }
  // The events went in too.
  ASSERT_OK_AND_ASSIGN(int64_t version, store().StreamVersion("order-1"));
  EXPECT_EQ(version, 2);
}

TEST_P(OutboxConformanceTest, AppendCopiesItsFirstEventsMetadataIntoHeaders) {
  std::vector<EventData> events = Batch(2, "o");
  events[0].metadata.set_correlation_id("workflow-1");
  events[0].metadata.set_causation_id("command-1");
  events[1].metadata.set_correlation_id("not-the-first");
  const std::vector<OutboxMessage> messages = {
      Message("billing", "order-1", "a"),
      Message("billing", "order-1", "b", {{kCorrelationIdHeader, "own"}})};
  ASSERT_OK(
      AppendWith("order-1", ExpectedVersion::NoStream(), events, messages));
  const std::vector<OutboxEntry> pending = MustPending();
  ASSERT_THAT(pending, SizeIs(2));
  EXPECT_EQ(pending[0].message.headers,
            (std::map<std::string, std::string>{
                {kCausationIdHeader, "command-1"},
                {kCorrelationIdHeader, "workflow-1"},
                {kEventTypeHeader, "eventstore.test.v1.OrderPlaced"}}));
  // A header the message has is kept.
  EXPECT_EQ(pending[1].message.headers.at(kCorrelationIdHeader), "own");
  // Enqueued without an append: the message's headers as they are.
  ASSERT_OK(outbox().Enqueue(Messages(1, "alone")));
  EXPECT_TRUE(MustPending().back().message.headers.empty());
}

TEST_P(OutboxConformanceTest, PendingIsOldestFirstAcrossAppends) {
  ASSERT_OK(AppendWith("a", ExpectedVersion::Any(), Batch(1, "a"),
                       Messages(2, "first")));
  ASSERT_OK(AppendWith("b", ExpectedVersion::Any(), Batch(1, "b"), {}));
  ASSERT_OK(AppendWith("a", ExpectedVersion::Any(), Batch(1, "c"),
                       Messages(1, "second")));
  const std::vector<OutboxEntry> pending = MustPending();
  EXPECT_THAT(Keys(pending), ElementsAre("first-0", "first-1", "second-0"));
  const std::vector<int64_t> ids = Ids(pending);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_THAT(Keys(MustPending(2)), ElementsAre("first-0", "first-1"));
}

TEST_P(OutboxConformanceTest, WrongExpectedVersionEnqueuesNothing) {
  ASSERT_OK(AppendWith("s", ExpectedVersion::NoStream(), Batch(1, "a"),
                       Messages(1, "kept")));
  absl::StatusOr<AppendResult> r = AppendWith(
      "s", ExpectedVersion::NoStream(), Batch(2, "b"), Messages(3, "lost"));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kAborted));
  EXPECT_TRUE(IsWrongExpectedVersion(r.status())) << r.status();
  r = AppendWith("s", ExpectedVersion::Exactly(7), Batch(2, "c"),
                 Messages(3, "lost"));
  EXPECT_TRUE(IsWrongExpectedVersion(r.status())) << r.status();
  EXPECT_THAT(Keys(MustPending()), ElementsAre("kept-0"));
  EXPECT_EQ(MustStats().pending, 1);
}

TEST_P(OutboxConformanceTest, IdempotentRetryEnqueuesNothingAgain) {
  const std::vector<EventData> events = Batch(2, "e");
  const std::vector<OutboxMessage> messages = Messages(2, "once");
  ASSERT_OK_AND_ASSIGN(
      AppendResult first,
      AppendWith("s", ExpectedVersion::NoStream(), events, messages));
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSERT_OK_AND_ASSIGN(
        AppendResult retried,
        AppendWith("s", ExpectedVersion::NoStream(), events, messages));
    EXPECT_EQ(retried, first);
  }
  EXPECT_THAT(Keys(MustPending()), ElementsAre("once-0", "once-1"));
  // Also after the first copies were published.
  for (const OutboxEntry& e : MustClaim("w", 10, kLongLease)) {
    ASSERT_OK(outbox().MarkPublished(e.id));
  }
  ASSERT_OK(AppendWith("s", ExpectedVersion::NoStream(), events, messages));
  EXPECT_THAT(MustPending(), IsEmpty());
  const OutboxStats stats = MustStats();
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(stats.published, 2);
}

TEST_P(OutboxConformanceTest, DuplicateIdAppendEnqueuesNothing) {
  const std::vector<EventData> events = Batch(2, "e");
  ASSERT_OK(AppendWith("s", ExpectedVersion::NoStream(), events,
                       Messages(1, "kept")));
  // The same ids on another stream: not a retry.
  absl::StatusOr<AppendResult> r =
      AppendWith("t", ExpectedVersion::Any(), events, Messages(2, "duplicate"));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kAlreadyExists));
  // One new event and one reused id.
  std::vector<EventData> mixed = Batch(1, "new");
  mixed.push_back(events[1]);
  r = AppendWith("u", ExpectedVersion::Any(), mixed, Messages(1, "mixed"));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(Keys(MustPending()), ElementsAre("kept-0"));
}

TEST_P(OutboxConformanceTest, InvalidMessageWritesNothing) {
  std::vector<OutboxMessage> messages = Messages(2, "m");
  messages[1].destination = "";
  const std::vector<EventData> events = Batch(2, "e");
  absl::StatusOr<AppendResult> r =
      AppendWith("s", ExpectedVersion::Any(), events, messages);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MustPending(), IsEmpty());
  ASSERT_OK_AND_ASSIGN(int64_t version, store().StreamVersion("s"));
  EXPECT_EQ(version, 0);
  ASSERT_OK_AND_ASSIGN(Position head, store().HeadPosition());
  EXPECT_EQ(head, Position::Start());
  ASSERT_OK_AND_ASSIGN(bool exists, store().EventExists(events[0].id));
  EXPECT_FALSE(exists);

  // A destination over 255 bytes.
  messages[1].destination = std::string(256, 'd');
  r = AppendWith("s", ExpectedVersion::Any(), events, messages);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MustPending(), IsEmpty());
  ASSERT_OK_AND_ASSIGN(version, store().StreamVersion("s"));
  EXPECT_EQ(version, 0);

  // The same events then append fine: nothing of them was kept.
  messages[1].destination = "ok";
  ASSERT_OK(AppendWith("s", ExpectedVersion::NoStream(), events, messages));
  EXPECT_THAT(MustPending(), SizeIs(2));
}

// --- Enqueue alone -----------------------------------------------------------

TEST_P(OutboxConformanceTest, EnqueueAlone) {
  const std::vector<OutboxMessage> messages = {
      Message("d1", "k1", "p1", {{"h", "v"}}), Message("d2", "k2", "p2"),
      Message("d3", "", "")};
  ASSERT_OK(outbox().Enqueue(messages));
  std::vector<OutboxEntry> pending = MustPending();
  ASSERT_THAT(pending, SizeIs(3));
  for (size_t i = 0; i < pending.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("message ", i));
    ExpectSameMessage(pending[i].message, messages[i]);
    EXPECT_EQ(pending[i].status, OutboxStatus::kPending);
  }
  EXPECT_LT(pending[0].id, pending[1].id);
  EXPECT_LT(pending[1].id, pending[2].id);
  ASSERT_OK(outbox().Enqueue(Messages(1, "later")));
  EXPECT_THAT(Keys(MustPending()), ElementsAre("k1", "k2", "", "later-0"));
  EXPECT_THAT(Keys(MustPending(1)), ElementsAre("k1"));
  // No events were written.
  ASSERT_OK_AND_ASSIGN(Position head, store().HeadPosition());
  EXPECT_EQ(head, Position::Start());
}

TEST_P(OutboxConformanceTest, EnqueueOfAnInvalidMessageEnqueuesNothing) {
  std::vector<OutboxMessage> messages = Messages(3, "m");
  messages[2].destination = "";
  EXPECT_THAT(outbox().Enqueue(messages),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(MustPending(), IsEmpty());
  EXPECT_EQ(MustStats().pending, 0);
}

// --- claiming ----------------------------------------------------------------

TEST_P(OutboxConformanceTest, ClaimGivesEachMessageToOneWorker) {
  ASSERT_OK(outbox().Enqueue(Messages(5, "m")));
  const std::vector<int64_t> all = Ids(MustPending());
  ASSERT_THAT(all, SizeIs(5));

  const absl::Time before = absl::Now();
  const std::vector<OutboxEntry> first = MustClaim("w1", 3, kLongLease);
  const absl::Time after = absl::Now();
  EXPECT_THAT(Ids(first), ElementsAre(all[0], all[1], all[2]));
  EXPECT_THAT(Keys(first), ElementsAre("m-0", "m-1", "m-2"));
  for (const OutboxEntry& e : first) {
    EXPECT_EQ(e.status, OutboxStatus::kPending);
    EXPECT_EQ(e.claimed_by, "w1");
    EXPECT_GE(e.lease_until, before + kLongLease - kClockSlack);
    EXPECT_LE(e.lease_until, after + kLongLease + kClockSlack);
    EXPECT_EQ(e.message.destination, "topic");
  }

  const std::vector<OutboxEntry> second = MustClaim("w2", 10, kLongLease);
  EXPECT_THAT(Ids(second), ElementsAre(all[3], all[4]));
  for (const OutboxEntry& e : second) EXPECT_EQ(e.claimed_by, "w2");
  EXPECT_THAT(MustClaim("w3", 10, kLongLease), IsEmpty());
  // The first worker claiming again gets nothing more either.
  EXPECT_THAT(MustClaim("w1", 10, kLongLease), IsEmpty());

  // Pending lists claimed messages too, with their holders.
  const std::vector<OutboxEntry> pending = MustPending();
  EXPECT_EQ(Ids(pending), all);
  ASSERT_THAT(pending, SizeIs(5));
  EXPECT_EQ(pending[0].claimed_by, "w1");
  EXPECT_EQ(pending[4].claimed_by, "w2");
  EXPECT_GT(pending[0].lease_until, before);
  EXPECT_EQ(MustStats().pending, 5);
}

TEST_P(OutboxConformanceTest, ClaimRespectsLimitOldestFirst) {
  ASSERT_OK(outbox().Enqueue(Messages(4, "a")));
  ASSERT_OK(outbox().Enqueue(Messages(2, "b")));
  EXPECT_THAT(Keys(MustClaim("w", 1, kLongLease)), ElementsAre("a-0"));
  EXPECT_THAT(Keys(MustClaim("w", 2, kLongLease)), ElementsAre("a-1", "a-2"));
  EXPECT_THAT(Keys(MustClaim("w", 100, kLongLease)),
              ElementsAre("a-3", "b-0", "b-1"));
}

TEST_P(OutboxConformanceTest, ExpiredLeaseLetsAnotherWorkerClaim) {
  ASSERT_OK(outbox().Enqueue(Messages(2, "m")));
  const std::vector<OutboxEntry> first =
      MustClaim("w1", 1, absl::Milliseconds(1));
  ASSERT_THAT(Keys(first), ElementsAre("m-0"));
  absl::SleepFor(absl::Milliseconds(50));
  const std::vector<OutboxEntry> second = MustClaim("w2", 10, kLongLease);
  EXPECT_THAT(Keys(second), ElementsAre("m-0", "m-1"));
  ASSERT_THAT(second, SizeIs(2));
  EXPECT_EQ(second[0].id, first[0].id);
  EXPECT_EQ(second[0].claimed_by, "w2");
  EXPECT_THAT(MustClaim("w1", 10, kLongLease), IsEmpty());
}

// --- publishing and failing
// ----------------------------------------------------

TEST_P(OutboxConformanceTest, MarkPublishedRemovesFromPending) {
  ASSERT_OK(outbox().Enqueue(Messages(3, "m")));
  const std::vector<OutboxEntry> claimed = MustClaim("w", 2, kLongLease);
  ASSERT_THAT(claimed, SizeIs(2));
  ASSERT_OK(outbox().MarkPublished(claimed[0].id));

  EXPECT_THAT(Keys(MustPending()), ElementsAre("m-1", "m-2"));
  OutboxStats stats = MustStats();
  EXPECT_EQ(stats.pending, 2);
  EXPECT_EQ(stats.published, 1);
  EXPECT_EQ(stats.failed, 0);

  ASSERT_OK(outbox().MarkPublished(claimed[1].id));
  EXPECT_THAT(Keys(MustPending()), ElementsAre("m-2"));
  // A published message is never claimed again, even once its lease ends.
  EXPECT_THAT(Keys(MustClaim("other", 10, kLongLease)), ElementsAre("m-2"));
  stats = MustStats();
  EXPECT_EQ(stats.pending, 1);
  EXPECT_EQ(stats.published, 2);
}

TEST_P(OutboxConformanceTest, MarkAllPublishedMarksTheBatchAtOnce) {
  ASSERT_OK(outbox().Enqueue(Messages(5, "m")));
  const std::vector<OutboxEntry> claimed = MustClaim("w", 4, kLongLease);
  ASSERT_THAT(claimed, SizeIs(4));
  ASSERT_OK(outbox().MarkPublished(claimed[0].id));
  // Already published (claimed[0]) stays so; an empty batch does nothing.
  ASSERT_OK(outbox().MarkAllPublished({}));
  const std::vector<int64_t> ids = {claimed[0].id, claimed[1].id,
                                    claimed[2].id};
  ASSERT_OK(outbox().MarkAllPublished(ids));
  EXPECT_THAT(Keys(MustPending()), ElementsAre("m-3", "m-4"));
  EXPECT_EQ(MustStats().published, 3);

  // An id that names no message: kNotFound naming it, and nothing marked.
  const int64_t missing = claimed.back().id + 1000;
  const std::vector<int64_t> with_missing = {claimed[3].id, missing};
  EXPECT_THAT(
      outbox().MarkAllPublished(with_missing),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr(absl::StrCat(missing))));
  EXPECT_THAT(Keys(MustPending()), ElementsAre("m-3", "m-4"));
  EXPECT_EQ(MustStats().published, 3);
}

TEST_P(OutboxConformanceTest, ReleaseGivesMessagesBackWithoutAnAttempt) {
  ASSERT_OK(outbox().Enqueue(Messages(3, "m")));
  const std::vector<OutboxEntry> claimed = MustClaim("w", 3, kLongLease);
  ASSERT_THAT(claimed, SizeIs(3));
  ASSERT_OK(outbox().MarkPublished(claimed[2].id));
  ASSERT_OK(outbox().Release({}, "nothing"));
  const std::vector<int64_t> ids = {claimed[0].id, claimed[1].id,
                                    claimed[2].id};
  ASSERT_OK(outbox().Release(ids, "UNAVAILABLE: broker down"));

  // Claimable again at once (the lease was long), attempts unchanged.
  const std::vector<OutboxEntry> again = MustClaim("other", 10, kLongLease);
  EXPECT_THAT(Keys(again), ElementsAre("m-0", "m-1"));
  for (const OutboxEntry& e : again) {
    EXPECT_EQ(e.attempts, 0);
    EXPECT_EQ(e.status, OutboxStatus::kPending);
    EXPECT_EQ(e.last_error, "UNAVAILABLE: broker down");
  }
  // The published one stays published.
  OutboxStats stats = MustStats();
  EXPECT_EQ(stats.published, 1);
  EXPECT_EQ(stats.pending, 2);
}

TEST_P(OutboxConformanceTest, ReleaseWithNoErrorKeepsTheLastError) {
  ASSERT_OK(outbox().Enqueue(Messages(2, "m")));
  const std::vector<OutboxEntry> claimed = MustClaim("w", 2, kLongLease);
  ASSERT_THAT(claimed, SizeIs(2));
  ASSERT_OK(outbox().MarkFailed(claimed[0].id, "INTERNAL: refused", 10));
  ASSERT_THAT(Keys(MustClaim("w", 2, kLongLease)), ElementsAre("m-0"));
  // What a stopped publisher gives back unsent: the lease goes, the last
  // error stays (none for the message that never failed).
  const std::vector<int64_t> ids = {claimed[0].id, claimed[1].id};
  ASSERT_OK(outbox().Release(ids, ""));
  const std::vector<OutboxEntry> again = MustClaim("other", 10, kLongLease);
  ASSERT_THAT(again, SizeIs(2));
  EXPECT_EQ(again[0].last_error, "INTERNAL: refused");
  EXPECT_EQ(again[0].attempts, 1);
  EXPECT_EQ(again[1].last_error, "");
  EXPECT_EQ(again[1].attempts, 0);
}

TEST_P(OutboxConformanceTest,
       MarkPublishedAndClaimSettlesOneBatchTakesTheNext) {
  ASSERT_OK(outbox().Enqueue(Messages(7, "m")));
  const std::vector<OutboxEntry> first = MustClaim("w", 3, kLongLease);
  ASSERT_THAT(Keys(first), ElementsAre("m-0", "m-1", "m-2"));
  // m-1 failed to send and is not marked; m-0 and m-2 are.
  const std::vector<int64_t> delivered = {first[0].id, first[2].id};
  const absl::Time before = absl::Now();
  ASSERT_OK_AND_ASSIGN(
      std::vector<OutboxEntry> second,
      outbox().MarkPublishedAndClaim(delivered, "w", 3, kLongLease));
  const absl::Time after = absl::Now();
  // The next three in id order; m-1 is still leased to "w", not claimed.
  EXPECT_THAT(Keys(second), ElementsAre("m-3", "m-4", "m-5"));
  for (const OutboxEntry& e : second) {
    EXPECT_EQ(e.status, OutboxStatus::kPending);
    EXPECT_EQ(e.claimed_by, "w");
    EXPECT_GE(e.lease_until, before + kLongLease - kClockSlack);
    EXPECT_LE(e.lease_until, after + kLongLease + kClockSlack);
    EXPECT_EQ(e.message.destination, "topic");
  }
  OutboxStats stats = MustStats();
  EXPECT_EQ(stats.published, 2);
  EXPECT_EQ(stats.pending, 5);
  EXPECT_THAT(Keys(MustPending()),
              ElementsAre("m-1", "m-3", "m-4", "m-5", "m-6"));
  // Claimed: another worker gets only what is left.
  EXPECT_THAT(Keys(MustClaim("other", 10, kLongLease)), ElementsAre("m-6"));

  // No ids: a plain claim (nothing left here). Marking the last batch with
  // nothing left to claim, and a repeated id, are fine.
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> none,
                       outbox().MarkPublishedAndClaim({}, "w", 3, kLongLease));
  EXPECT_THAT(none, IsEmpty());
  const std::vector<int64_t> last = {second[0].id, second[1].id, second[2].id,
                                     second[2].id};
  ASSERT_OK_AND_ASSIGN(
      none, outbox().MarkPublishedAndClaim(last, "w", 3, kLongLease));
  EXPECT_THAT(none, IsEmpty());
  stats = MustStats();
  EXPECT_EQ(stats.published, 5);
  EXPECT_EQ(stats.pending, 2);
}

TEST_P(OutboxConformanceTest, MarkPublishedAndClaimNeverClaimsWhatItMarks) {
  ASSERT_OK(outbox().Enqueue(Messages(3, "m")));
  // A lease already over: the messages are claimable again, yet those being
  // marked published are not claimed by the same call.
  const std::vector<OutboxEntry> first =
      MustClaim("w", 2, absl::Milliseconds(1));
  ASSERT_THAT(first, SizeIs(2));
  absl::SleepFor(absl::Milliseconds(50));
  const std::vector<int64_t> delivered = {first[0].id};
  ASSERT_OK_AND_ASSIGN(
      std::vector<OutboxEntry> next,
      outbox().MarkPublishedAndClaim(delivered, "w", 10, kLongLease));
  EXPECT_THAT(Keys(next), ElementsAre("m-1", "m-2"));
  OutboxStats stats = MustStats();
  EXPECT_EQ(stats.published, 1);
  EXPECT_EQ(stats.pending, 2);
}

TEST_P(OutboxConformanceTest, MarkPublishedAndClaimWithAMissingIdDoesNothing) {
  ASSERT_OK(outbox().Enqueue(Messages(4, "m")));
  const std::vector<OutboxEntry> first = MustClaim("w", 2, kLongLease);
  ASSERT_THAT(first, SizeIs(2));
  const int64_t missing = first.back().id + 1000;
  const std::vector<int64_t> with_missing = {first[0].id, missing};
  EXPECT_THAT(
      outbox().MarkPublishedAndClaim(with_missing, "w", 10, kLongLease),
      StatusIs(absl::StatusCode::kNotFound, HasSubstr(absl::StrCat(missing))));
  // Nothing marked, nothing claimed.
  EXPECT_EQ(MustStats().published, 0);
  EXPECT_THAT(Keys(MustClaim("other", 10, kLongLease)),
              ElementsAre("m-2", "m-3"));
}

TEST_P(OutboxConformanceTest, MarkPublishedAndClaimChecksItsArguments) {
  ASSERT_OK(outbox().Enqueue(Messages(2, "m")));
  const std::vector<OutboxEntry> first = MustClaim("w", 1, kLongLease);
  ASSERT_THAT(first, SizeIs(1));
  const std::vector<int64_t> delivered = {first[0].id};
  EXPECT_THAT(outbox().MarkPublishedAndClaim(delivered, "", 10, kLongLease),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(outbox().MarkPublishedAndClaim(delivered, "w", -1, kLongLease),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(MustStats().published, 0);
  // Limit 0: marks, claims nothing.
  ASSERT_OK_AND_ASSIGN(
      std::vector<OutboxEntry> none,
      outbox().MarkPublishedAndClaim(delivered, "w", 0, kLongLease));
  EXPECT_THAT(none, IsEmpty());
  EXPECT_EQ(MustStats().published, 1);
}

TEST_P(OutboxConformanceTest, MarkFailedRetriesUntilMaxAttempts) {
  ASSERT_OK(outbox().Enqueue(Messages(1, "m")));
  constexpr int kMaxAttempts = 3;
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    SCOPED_TRACE(absl::StrCat("attempt ", attempt));
    // Failing frees the lease: the next worker claims it at once.
    const std::string worker = absl::StrCat("w", attempt);
    const std::vector<OutboxEntry> claimed = MustClaim(worker, 10, kLongLease);
    ASSERT_THAT(claimed, SizeIs(1));
    EXPECT_EQ(claimed[0].attempts, attempt - 1);
    ASSERT_OK(outbox().MarkFailed(
        claimed[0].id, absl::StrCat("error ", attempt), kMaxAttempts));
    const std::vector<OutboxEntry> pending = MustPending();
    if (attempt < kMaxAttempts) {
      ASSERT_THAT(pending, SizeIs(1));
      EXPECT_EQ(pending[0].id, claimed[0].id);
      EXPECT_EQ(pending[0].status, OutboxStatus::kPending);
      EXPECT_EQ(pending[0].attempts, attempt);
      EXPECT_EQ(pending[0].last_error, absl::StrCat("error ", attempt));
      EXPECT_EQ(pending[0].claimed_by, "");
      EXPECT_EQ(pending[0].lease_until, absl::InfinitePast());
      EXPECT_EQ(MustStats().pending, 1);
    } else {
      EXPECT_THAT(pending, IsEmpty());
    }
  }
  // Failed for good: no longer claimed, counted as failed.
  EXPECT_THAT(MustClaim("w-last", 10, kLongLease), IsEmpty());
  const OutboxStats stats = MustStats();
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(stats.published, 0);
  EXPECT_EQ(stats.failed, 1);
  EXPECT_EQ(stats.oldest_pending, absl::InfinitePast());
}

TEST_P(OutboxConformanceTest, MarkFailedWithOneMaxAttemptFailsAtOnce) {
  ASSERT_OK(outbox().Enqueue(Messages(2, "m")));
  const std::vector<OutboxEntry> claimed = MustClaim("w", 1, kLongLease);
  ASSERT_THAT(claimed, SizeIs(1));
  ASSERT_OK(outbox().MarkFailed(claimed[0].id, "rejected by the sink", 1));
  EXPECT_THAT(Keys(MustPending()), ElementsAre("m-1"));
  EXPECT_THAT(Keys(MustClaim("w", 10, kLongLease)), ElementsAre("m-1"));
  const OutboxStats stats = MustStats();
  EXPECT_EQ(stats.pending, 1);
  EXPECT_EQ(stats.failed, 1);
}

TEST_P(OutboxConformanceTest, DeletePublishedOlderThan) {
  ASSERT_OK(outbox().Enqueue(Messages(4, "m")));
  const std::vector<OutboxEntry> claimed = MustClaim("w", 3, kLongLease);
  ASSERT_THAT(claimed, SizeIs(3));
  ASSERT_OK(outbox().MarkPublished(claimed[0].id));
  ASSERT_OK(outbox().MarkPublished(claimed[1].id));
  ASSERT_OK(outbox().MarkFailed(claimed[2].id, "x", 1));

  // Published just now: not older than an hour.
  ASSERT_OK_AND_ASSIGN(int64_t deleted,
                       outbox().DeletePublishedOlderThan(absl::Hours(1)));
  EXPECT_EQ(deleted, 0);
  EXPECT_EQ(MustStats().published, 2);

  absl::SleepFor(absl::Milliseconds(50));
  ASSERT_OK_AND_ASSIGN(
      deleted, outbox().DeletePublishedOlderThan(absl::Milliseconds(1)));
  EXPECT_EQ(deleted, 2);
  const OutboxStats stats = MustStats();
  EXPECT_EQ(stats.published, 0);
  // Pending and failed messages stay.
  EXPECT_EQ(stats.pending, 1);
  EXPECT_EQ(stats.failed, 1);
  EXPECT_THAT(Keys(MustPending()), ElementsAre("m-3"));
  ASSERT_OK_AND_ASSIGN(deleted,
                       outbox().DeletePublishedOlderThan(absl::ZeroDuration()));
  EXPECT_EQ(deleted, 0);
}

TEST_P(OutboxConformanceTest, StatsCountsAndOldestPending) {
  OutboxStats stats = MustStats();
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(stats.published, 0);
  EXPECT_EQ(stats.failed, 0);
  EXPECT_EQ(stats.oldest_pending, absl::InfinitePast());

  ASSERT_OK(outbox().Enqueue(Messages(1, "a")));
  absl::SleepFor(absl::Milliseconds(5));
  ASSERT_OK(outbox().Enqueue(Messages(2, "b")));
  const std::vector<OutboxEntry> pending = MustPending();
  ASSERT_THAT(pending, SizeIs(3));
  ASSERT_LT(pending[0].created_at, pending[1].created_at);
  stats = MustStats();
  EXPECT_EQ(stats.pending, 3);
  EXPECT_EQ(stats.oldest_pending, pending[0].created_at);

  // Once the oldest is published, the next one is the oldest pending.
  const std::vector<OutboxEntry> claimed = MustClaim("w", 1, kLongLease);
  ASSERT_THAT(claimed, SizeIs(1));
  ASSERT_OK(outbox().MarkPublished(claimed[0].id));
  stats = MustStats();
  EXPECT_EQ(stats.pending, 2);
  EXPECT_EQ(stats.published, 1);
  EXPECT_EQ(stats.failed, 0);
  EXPECT_EQ(stats.oldest_pending, pending[1].created_at);
}

TEST_P(OutboxConformanceTest, ListFiltersByStatusAndPagesById) {
  ASSERT_OK(outbox().Enqueue(Messages(5, "m")));
  const std::vector<OutboxEntry> claimed = MustClaim("w", 3, kLongLease);
  ASSERT_THAT(claimed, SizeIs(3));
  ASSERT_OK(outbox().MarkPublished(claimed[0].id));
  ASSERT_OK(outbox().MarkFailed(claimed[1].id, "rejected", 1));
  // m-2 stays pending and claimed; m-3 and m-4 pending, unclaimed.

  OutboxListOptions options;
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> all, outbox().List(options));
  EXPECT_THAT(Keys(all), ElementsAre("m-0", "m-1", "m-2", "m-3", "m-4"));
  EXPECT_EQ(all[0].status, OutboxStatus::kPublished);
  EXPECT_EQ(all[1].status, OutboxStatus::kFailed);
  EXPECT_EQ(all[1].last_error, "rejected");
  EXPECT_EQ(all[2].claimed_by, "w");
  ExpectSameMessage(all[4].message, Messages(5, "m")[4]);

  options.status = OutboxStatus::kFailed;
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> failed, outbox().List(options));
  EXPECT_THAT(Keys(failed), ElementsAre("m-1"));
  options.status = OutboxStatus::kPublished;
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> published,
                       outbox().List(options));
  EXPECT_THAT(Keys(published), ElementsAre("m-0"));

  // Pages: after the last id of the page before.
  options.status = OutboxStatus::kPending;
  options.limit = 2;
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> page, outbox().List(options));
  EXPECT_THAT(Keys(page), ElementsAre("m-2", "m-3"));
  options.after_id = page.back().id;
  ASSERT_OK_AND_ASSIGN(page, outbox().List(options));
  EXPECT_THAT(Keys(page), ElementsAre("m-4"));
  options.after_id = page.back().id;
  ASSERT_OK_AND_ASSIGN(page, outbox().List(options));
  EXPECT_THAT(page, IsEmpty());

  options.limit = -1;
  EXPECT_THAT(outbox().List(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(OutboxConformanceTest, RetryGivesAFailedMessageAnotherChance) {
  ASSERT_OK(outbox().Enqueue(Messages(2, "m")));
  // m-0 fails twice, for good at the second attempt.
  for (int attempt = 1; attempt <= 2; ++attempt) {
    const std::vector<OutboxEntry> claimed = MustClaim("w", 1, kLongLease);
    ASSERT_THAT(claimed, SizeIs(1));
    ASSERT_EQ(claimed[0].message.key, "m-0");
    ASSERT_OK(outbox().MarkFailed(claimed[0].id,
                                  absl::StrCat("rejected ", attempt), 2));
  }
  OutboxListOptions failed_only;
  failed_only.status = OutboxStatus::kFailed;
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> failed,
                       outbox().List(failed_only));
  ASSERT_THAT(failed, SizeIs(1));
  EXPECT_EQ(failed[0].attempts, 2);
  const int64_t id = failed[0].id;

  ASSERT_OK(outbox().Retry(id));
  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> all,
                       outbox().List(OutboxListOptions()));
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[0].id, id);
  EXPECT_EQ(all[0].status, OutboxStatus::kPending);
  EXPECT_EQ(all[0].attempts, 0);
  EXPECT_EQ(all[0].last_error, "rejected 2");
  EXPECT_EQ(all[0].claimed_by, "");
  EXPECT_EQ(all[0].lease_until, absl::InfinitePast());
  const OutboxStats stats = MustStats();
  EXPECT_EQ(stats.pending, 2);
  EXPECT_EQ(stats.failed, 0);
  // Claimed like a new message, in its place (oldest first), with the
  // publisher's full count of attempts ahead of it.
  const std::vector<OutboxEntry> claimed = MustClaim("w2", 10, kLongLease);
  EXPECT_THAT(Keys(claimed), ElementsAre("m-0", "m-1"));
  ASSERT_OK(outbox().MarkFailed(id, "rejected again", 2));
  EXPECT_EQ(MustStats().failed, 0);
  // Retried once more is an error now: it is pending.
  EXPECT_THAT(
      outbox().Retry(id),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("pending")));
}

TEST_P(OutboxConformanceTest, RetryOfAMessageNotFailedChangesNothing) {
  ASSERT_OK(outbox().Enqueue(Messages(2, "m")));
  const std::vector<OutboxEntry> claimed = MustClaim("w", 2, kLongLease);
  ASSERT_THAT(claimed, SizeIs(2));
  ASSERT_OK(outbox().MarkPublished(claimed[0].id));
  const int64_t published = claimed[0].id;
  const int64_t pending = claimed[1].id;

  EXPECT_THAT(
      outbox().Retry(pending),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("pending")));
  EXPECT_THAT(
      outbox().Retry(published),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("published")));
  EXPECT_THAT(outbox().Retry(pending + 1000),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(outbox().Retry(0), StatusIs(absl::StatusCode::kNotFound));

  ASSERT_OK_AND_ASSIGN(std::vector<OutboxEntry> all,
                       outbox().List(OutboxListOptions()));
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[0].status, OutboxStatus::kPublished);
  EXPECT_EQ(all[1].status, OutboxStatus::kPending);
  // The pending message keeps its lease: nobody else claims it.
  EXPECT_EQ(all[1].claimed_by, "w");
  EXPECT_EQ(all[1].lease_until, claimed[1].lease_until);
  EXPECT_THAT(MustClaim("other", 10, kLongLease), IsEmpty());
}

// Four publishers claim small batches and publish them until the outbox is
// empty: every message is published exactly once.
TEST_P(OutboxConformanceTest, ConcurrentClaimersPublishEachMessageOnce) {
  constexpr int kMessages = 200;
  constexpr int kWorkers = 4;
  ASSERT_OK(outbox().Enqueue(Messages(kMessages, "m")));
  const std::vector<int64_t> all = Ids(MustPending(kMessages + 10));
  ASSERT_THAT(all, SizeIs(kMessages));

  struct Outcome {
    std::vector<int64_t> published;
    std::vector<std::string> errors;
  };
  std::vector<Outcome> outcomes(kWorkers);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      Outcome& out = outcomes[w];
      const std::string worker = absl::StrCat("worker-", w);
      ready.fetch_add(1);
      while (ready.load() < kWorkers) std::this_thread::yield();
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      while (absl::Now() < deadline) {
        absl::StatusOr<std::vector<OutboxEntry>> batch =
            outbox().Claim(worker, 7, kLongLease);
        if (!batch.ok()) {
          out.errors.push_back(batch.status().ToString());
          return;
        }
        if (batch->empty()) return;
        for (const OutboxEntry& e : *batch) {
          if (e.claimed_by != worker) {
            out.errors.push_back(absl::StrCat("message ", e.id, " claimed by '",
                                              e.claimed_by, "'"));
          }
          absl::Status published = outbox().MarkPublished(e.id);
          if (!published.ok()) {
            out.errors.push_back(published.ToString());
            return;
          }
          out.published.push_back(e.id);
        }
      }
      out.errors.push_back("deadline passed");
    });
  }
  for (std::thread& t : threads) t.join();

  std::vector<int64_t> published;
  for (int w = 0; w < kWorkers; ++w) {
    SCOPED_TRACE(absl::StrCat("worker ", w));
    EXPECT_THAT(outcomes[w].errors, IsEmpty());
    published.insert(published.end(), outcomes[w].published.begin(),
                     outcomes[w].published.end());
  }
  absl::flat_hash_set<int64_t> seen;
  for (int64_t id : published) {
    EXPECT_TRUE(seen.insert(id).second)
        << "message " << id << " published twice";
  }
  std::sort(published.begin(), published.end());
  EXPECT_THAT(published, ElementsAreArray(all));
  const OutboxStats stats = MustStats();
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(stats.published, kMessages);
  EXPECT_THAT(MustPending(), IsEmpty());
}

// Workers that mark each batch and claim the next in one call, as a
// pipelined publisher does: no message is claimed by two at once.
TEST_P(OutboxConformanceTest, ConcurrentMarkPublishedAndClaimClaimsEachOnce) {
  constexpr int kMessages = 300;
  constexpr int kWorkers = 4;
  ASSERT_OK(outbox().Enqueue(Messages(kMessages, "m")));
  const std::vector<int64_t> all = Ids(MustPending(kMessages + 10));
  ASSERT_THAT(all, SizeIs(kMessages));

  struct Outcome {
    std::vector<int64_t> claimed;
    std::vector<std::string> errors;
  };
  std::vector<Outcome> outcomes(kWorkers);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      Outcome& out = outcomes[w];
      const std::string worker = absl::StrCat("worker-", w);
      ready.fetch_add(1);
      while (ready.load() < kWorkers) std::this_thread::yield();
      std::vector<int64_t> to_mark;
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      while (absl::Now() < deadline) {
        absl::StatusOr<std::vector<OutboxEntry>> batch =
            outbox().MarkPublishedAndClaim(to_mark, worker, 7, kLongLease);
        if (!batch.ok()) {
          out.errors.push_back(batch.status().ToString());
          return;
        }
        if (batch->empty()) return;
        to_mark.clear();
        for (const OutboxEntry& e : *batch) {
          if (e.claimed_by != worker) {
            out.errors.push_back(absl::StrCat("message ", e.id, " claimed by '",
                                              e.claimed_by, "'"));
          }
          out.claimed.push_back(e.id);
          to_mark.push_back(e.id);
        }
      }
      out.errors.push_back("deadline passed");
    });
  }
  for (std::thread& t : threads) t.join();

  std::vector<int64_t> claimed;
  for (int w = 0; w < kWorkers; ++w) {
    SCOPED_TRACE(absl::StrCat("worker ", w));
    EXPECT_THAT(outcomes[w].errors, IsEmpty());
    claimed.insert(claimed.end(), outcomes[w].claimed.begin(),
                   outcomes[w].claimed.end());
  }
  absl::flat_hash_set<int64_t> seen;
  for (int64_t id : claimed) {
    EXPECT_TRUE(seen.insert(id).second) << "message " << id << " claimed twice";
  }
  std::sort(claimed.begin(), claimed.end());
  EXPECT_THAT(claimed, ElementsAreArray(all));
  // Each worker's last call marked its last batch and found nothing more.
  const OutboxStats stats = MustStats();
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(stats.published, kMessages);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, OutboxConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
