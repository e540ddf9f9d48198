// AppendRequest::subject_keys, run on every backend of AllTestBackends(): a
// data subject's key table rows (subject_key_store.h, SubjectKeyWrite)
// commit in the append's own transaction, only when its events are
// inserted. A key that is not the subject's stored one (another writer's,
// or a forgotten record) fails the append with SubjectKeyConflictError and
// writes nothing; our own key stored already (a retry) is no conflict.
//
// Tests whose names start with "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/subject_key_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/conformance_events.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackendName;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Binary, as a real wrapped key is.
const std::string kKeyA("wrapped\0A\xff\x80", 11);
const std::string kKeyB("wrapped\0B\x01\xfe", 11);
constexpr char kMk1[] = "mk-2026-01";
constexpr char kMk2[] = "mk-2026-02";

// `n` events with ids set, so that the append can be retried.
std::vector<EventData> Events(int n, const std::string& tag) {
  std::vector<EventData> events = test::Batch(n, tag);
  for (EventData& e : events) e.id = Uuid::Generate();
  return events;
}

class SubjectKeyAppendConformanceTest : public test::StoreTest {
 protected:
  absl::StatusOr<AppendResult> AppendWithKeys(
      const std::string& stream, ExpectedVersion expected,
      const std::vector<EventData>& events,
      const std::vector<SubjectKeyWrite>& writes) {
    AppendRequest request;
    request.stream = stream;
    request.expected = expected;
    request.events = events;
    request.subject_keys = writes;
    return store().Append(request);
  }

  std::optional<SubjectKeyRecord> MustFind(const std::string& subject) {
    absl::StatusOr<std::optional<SubjectKeyRecord>> r =
        store().subject_keys().Find(subject);
    EXPECT_OK(r);
    return r.ok() ? *r : std::nullopt;
  }

  std::vector<std::string> MustStreams(const std::string& subject) {
    absl::StatusOr<std::vector<std::string>> r =
        store().subject_keys().Streams(subject);
    EXPECT_OK(r);
    return r.ok() ? *r : std::vector<std::string>();
  }

  int64_t MustVersion(const std::string& stream) {
    absl::StatusOr<int64_t> v = store().StreamVersion(stream);
    EXPECT_OK(v);
    return v.ok() ? *v : -1;
  }

  // True when no event of `events` is stored.
  bool NoneStored(const std::vector<EventData>& events) {
    for (const EventData& e : events) {
      absl::StatusOr<bool> exists = store().EventExists(e.id);
      EXPECT_OK(exists);
      if (!exists.ok() || *exists) return false;
    }
    return true;
  }
};

TEST_P(SubjectKeyAppendConformanceTest, NewKeyIsStoredWithTheEvents) {
  const absl::Time before = absl::Now() - absl::Seconds(1);
  const std::vector<EventData> events = Events(2, "a");
  ASSERT_OK_AND_ASSIGN(AppendResult r,
                       AppendWithKeys("order-1", ExpectedVersion::NoStream(),
                                      events, {{"user-1", kKeyA, kMk1}}));
  EXPECT_EQ(r.next_expected_version, 2);
  EXPECT_FALSE(r.idempotent_retry);

  std::optional<SubjectKeyRecord> record = MustFind("user-1");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->subject, "user-1");
  EXPECT_EQ(record->wrapped_key, kKeyA);
  EXPECT_EQ(record->master_key_id, kMk1);
  EXPECT_FALSE(record->forgotten());
  EXPECT_GE(record->created_at, before);
  EXPECT_LE(record->created_at, absl::Now() + absl::Seconds(1));
  EXPECT_THAT(MustStreams("user-1"), ElementsAre("order-1"));
  ASSERT_OK_AND_ASSIGN(std::optional<std::string> subject,
                       store().subject_keys().SubjectOfStream("order-1"));
  EXPECT_EQ(subject, "user-1");
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       store().ReadStream("order-1"));
  EXPECT_THAT(test::Ids(read), ElementsAre(events[0].id, events[1].id));
}

TEST_P(SubjectKeyAppendConformanceTest, SeveralSubjectsInOneAppend) {
  ASSERT_OK(AppendWithKeys("order-1", ExpectedVersion::NoStream(),
                           Events(1, "a"),
                           {{"user-1", kKeyA, kMk1}, {"user-2", kKeyB, kMk2}}));
  std::optional<SubjectKeyRecord> one = MustFind("user-1");
  std::optional<SubjectKeyRecord> two = MustFind("user-2");
  ASSERT_TRUE(one.has_value());
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(one->wrapped_key, kKeyA);
  EXPECT_EQ(two->wrapped_key, kKeyB);
  EXPECT_EQ(two->master_key_id, kMk2);
  EXPECT_THAT(MustStreams("user-1"), ElementsAre("order-1"));
  EXPECT_THAT(MustStreams("user-2"), ElementsAre("order-1"));
}

TEST_P(SubjectKeyAppendConformanceTest, OwnKeyStoredAlreadyIsNoConflict) {
  ASSERT_OK_AND_ASSIGN(SubjectKeyRecord inserted,
                       store().subject_keys().Insert("user-1", kKeyA, kMk1));
  ASSERT_OK(AppendWithKeys("order-2", ExpectedVersion::NoStream(),
                           Events(1, "a"), {{"user-1", kKeyA, kMk1}}));
  // The same key once more, for another stream (a retry of a write whose
  // key committed with an earlier append).
  ASSERT_OK(AppendWithKeys("order-1", ExpectedVersion::NoStream(),
                           Events(1, "b"), {{"user-1", kKeyA, kMk1}}));

  std::optional<SubjectKeyRecord> record = MustFind("user-1");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->wrapped_key, kKeyA);
  EXPECT_EQ(record->master_key_id, kMk1);
  EXPECT_EQ(record->created_at, inserted.created_at);
  EXPECT_THAT(MustStreams("user-1"), ElementsAre("order-1", "order-2"));
  EXPECT_EQ(MustVersion("order-1"), 1);
  EXPECT_EQ(MustVersion("order-2"), 1);
}

TEST_P(SubjectKeyAppendConformanceTest, AnotherStoredKeyConflictsUntouched) {
  ASSERT_OK(store().Append("order-1", ExpectedVersion::NoStream(),
                           Events(1, "first")));
  ASSERT_OK(store().subject_keys().Insert("user-1", kKeyA, kMk1));
  struct Case {
    const char* name;
    SubjectKeyWrite write;
  };
  const std::vector<Case> cases = {
      {"another key", {"user-1", kKeyB, kMk1}},
      {"another master key id", {"user-1", kKeyA, kMk2}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::vector<EventData> events = Events(2, "x");
    absl::StatusOr<AppendResult> r =
        AppendWithKeys("order-1", ExpectedVersion::Exactly(1), events,
                       {{"user-2", kKeyB, kMk2}, c.write});
    EXPECT_TRUE(IsSubjectKeyConflict(r.status())) << r.status();
    EXPECT_THAT(r.status(),
                StatusIs(absl::StatusCode::kAborted, HasSubstr("user-1")));
    // Nothing written: no events, no stream row, no other subject's key.
    EXPECT_TRUE(NoneStored(events));
    EXPECT_EQ(MustVersion("order-1"), 1);
    EXPECT_THAT(MustStreams("user-1"), IsEmpty());
    EXPECT_FALSE(MustFind("user-2").has_value());
    std::optional<SubjectKeyRecord> record = MustFind("user-1");
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->wrapped_key, kKeyA);
    EXPECT_EQ(record->master_key_id, kMk1);
  }
  // The store goes on: the stored key is accepted.
  ASSERT_OK(AppendWithKeys("order-1", ExpectedVersion::Exactly(1),
                           Events(1, "y"), {{"user-1", kKeyA, kMk1}}));
  EXPECT_THAT(MustStreams("user-1"), ElementsAre("order-1"));
}

TEST_P(SubjectKeyAppendConformanceTest, ForgottenSubjectConflicts) {
  ASSERT_OK(store().subject_keys().Insert("user-1", kKeyA, kMk1));
  ASSERT_OK(store().subject_keys().Forget("user-1"));
  ASSERT_OK(store().subject_keys().Forget("user-never-keyed"));
  for (const std::string subject : {"user-1", "user-never-keyed"}) {
    SCOPED_TRACE(subject);
    for (const std::string& key : {kKeyA, kKeyB}) {
      const std::vector<EventData> events = Events(1, "x");
      absl::StatusOr<AppendResult> r = AppendWithKeys(
          "order-1", ExpectedVersion::Any(), events, {{subject, key, kMk1}});
      EXPECT_TRUE(IsSubjectKeyConflict(r.status())) << r.status();
      EXPECT_TRUE(NoneStored(events));
    }
    std::optional<SubjectKeyRecord> record = MustFind(subject);
    ASSERT_TRUE(record.has_value());
    EXPECT_TRUE(record->forgotten());
    EXPECT_THAT(record->wrapped_key, IsEmpty());
    EXPECT_THAT(MustStreams(subject), IsEmpty());
  }
  EXPECT_EQ(MustVersion("order-1"), 0);
}

TEST_P(SubjectKeyAppendConformanceTest, WriteWithoutKeyRecordsOnlyTheStream) {
  ASSERT_OK(AppendWithKeys("order-1", ExpectedVersion::NoStream(),
                           Events(1, "a"), {{"user-1", "", ""}}));
  ASSERT_OK(AppendWithKeys("order-1", ExpectedVersion::Exactly(1),
                           Events(1, "b"), {{"user-1", "", ""}}));
  ASSERT_OK(AppendWithKeys("order-0", ExpectedVersion::NoStream(),
                           Events(1, "c"), {{"user-1", "", ""}}));
  EXPECT_FALSE(MustFind("user-1").has_value());
  EXPECT_THAT(MustStreams("user-1"), ElementsAre("order-0", "order-1"));
  EXPECT_EQ(MustVersion("order-1"), 2);

  // A forgotten subject's events may still be written without a key (the
  // stream is recorded, so that forgetting finds its snapshots).
  ASSERT_OK(store().subject_keys().Forget("user-2"));
  ASSERT_OK(AppendWithKeys("order-2", ExpectedVersion::NoStream(),
                           Events(1, "d"), {{"user-2", "", ""}}));
  EXPECT_THAT(MustStreams("user-2"), ElementsAre("order-2"));
}

TEST_P(SubjectKeyAppendConformanceTest, WrongExpectedVersionWritesNoKeyRows) {
  ASSERT_OK(store().Append("order-1", ExpectedVersion::NoStream(),
                           Events(1, "first")));
  const std::vector<EventData> events = Events(1, "x");
  absl::StatusOr<AppendResult> r =
      AppendWithKeys("order-1", ExpectedVersion::NoStream(), events,
                     {{"user-1", kKeyA, kMk1}, {"user-2", "", ""}});
  EXPECT_TRUE(IsWrongExpectedVersion(r.status())) << r.status();
  EXPECT_FALSE(IsSubjectKeyConflict(r.status()));
  EXPECT_TRUE(NoneStored(events));
  EXPECT_FALSE(MustFind("user-1").has_value());
  EXPECT_THAT(MustStreams("user-1"), IsEmpty());
  EXPECT_THAT(MustStreams("user-2"), IsEmpty());
  EXPECT_EQ(MustVersion("order-1"), 1);
}

TEST_P(SubjectKeyAppendConformanceTest, InvalidWritesAreRefusedUntouched) {
  struct Case {
    const char* name;
    std::vector<SubjectKeyWrite> writes;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"empty subject",
       {{"user-1", kKeyA, kMk1}, {"", kKeyA, kMk1}},
       "subject_keys[1].subject"},
      {"subject twice",
       {{"user-1", kKeyA, kMk1}, {"user-2", "", ""}, {"user-1", "", ""}},
       "subject_keys[2].subject"},
      {"master key id without key",
       {{"user-1", "", kMk1}},
       "subject_keys[0].master_key_id"},
      {"key without master key id",
       {{"user-2", "", ""}, {"user-1", kKeyA, ""}},
       "subject_keys[1].master_key_id"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::vector<EventData> events = Events(1, "x");
    EXPECT_THAT(
        AppendWithKeys("order-1", ExpectedVersion::Any(), events, c.writes)
            .status(),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)));
    EXPECT_TRUE(NoneStored(events));
  }
  EXPECT_EQ(MustVersion("order-1"), 0);
  EXPECT_FALSE(MustFind("user-1").has_value());
  EXPECT_THAT(MustStreams("user-1"), IsEmpty());
  EXPECT_THAT(MustStreams("user-2"), IsEmpty());
}

TEST_P(SubjectKeyAppendConformanceTest, AppendEachConflictFailsAlone) {
  ASSERT_OK(store().subject_keys().Insert("user-2", kKeyA, kMk1));
  const std::vector<EventData> a = Events(1, "a");
  const std::vector<EventData> b = Events(2, "b");
  const std::vector<EventData> c = Events(1, "c");
  const std::vector<EventData> d = Events(1, "d");
  const std::vector<SubjectKeyWrite> new_key = {{"user-1", kKeyA, kMk1}};
  const std::vector<SubjectKeyWrite> other_key = {{"user-2", kKeyB, kMk1}};
  const std::vector<SubjectKeyWrite> no_key = {{"user-1", "", ""}};
  // The key the first append stored is the stored one for the fourth.
  const std::vector<SubjectKeyWrite> key_of_first = {{"user-1", kKeyB, kMk1}};
  std::vector<AppendRequest> requests(4);
  requests[0] = {"order-a", ExpectedVersion::NoStream(), a, {}, new_key};
  requests[1] = {"order-b", ExpectedVersion::NoStream(), b, {}, other_key};
  requests[2] = {"order-c", ExpectedVersion::NoStream(), c, {}, no_key};
  requests[3] = {"order-d", ExpectedVersion::NoStream(), d, {}, key_of_first};
  ASSERT_OK_AND_ASSIGN(std::vector<absl::StatusOr<AppendResult>> results,
                       store().AppendEach(requests));
  ASSERT_THAT(results, SizeIs(4));
  EXPECT_OK(results[0]);
  EXPECT_TRUE(IsSubjectKeyConflict(results[1].status())) << results[1].status();
  EXPECT_OK(results[2]);
  EXPECT_TRUE(IsSubjectKeyConflict(results[3].status())) << results[3].status();

  EXPECT_EQ(MustVersion("order-a"), 1);
  EXPECT_EQ(MustVersion("order-b"), 0);
  EXPECT_EQ(MustVersion("order-c"), 1);
  EXPECT_EQ(MustVersion("order-d"), 0);
  EXPECT_TRUE(NoneStored(b));
  EXPECT_TRUE(NoneStored(d));
  EXPECT_THAT(MustStreams("user-1"), ElementsAre("order-a", "order-c"));
  EXPECT_THAT(MustStreams("user-2"), IsEmpty());
  std::optional<SubjectKeyRecord> one = MustFind("user-1");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->wrapped_key, kKeyA);
  std::optional<SubjectKeyRecord> two = MustFind("user-2");
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->wrapped_key, kKeyA);
}

TEST_P(SubjectKeyAppendConformanceTest, RetryOfCommittedAppendReturnsOriginal) {
  const ExpectedVersion expectations[] = {ExpectedVersion::NoStream(),
                                          ExpectedVersion::Any()};
  for (int i = 0; i < 2; ++i) {
    const ExpectedVersion expected = expectations[i];
    SCOPED_TRACE(expected.ToString());
    const std::string stream = absl::StrCat("order-", i);
    const std::string subject = absl::StrCat("user-", i);
    const std::vector<EventData> batch = Events(2, stream);
    ASSERT_OK_AND_ASSIGN(
        AppendResult original,
        AppendWithKeys(stream, expected, batch, {{subject, kKeyA, kMk1}}));
    // The same request again, and once more with another key (a retry whose
    // caller made a new key): the events are recognised first.
    for (const std::string& key : {kKeyA, kKeyB}) {
      ASSERT_OK_AND_ASSIGN(
          AppendResult retry,
          AppendWithKeys(stream, expected, batch, {{subject, key, kMk1}}));
      EXPECT_EQ(retry, original);
      EXPECT_TRUE(retry.idempotent_retry);
    }
    EXPECT_EQ(MustVersion(stream), 2);
    std::optional<SubjectKeyRecord> record = MustFind(subject);
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->wrapped_key, kKeyA);
    EXPECT_THAT(MustStreams(subject), ElementsAre(stream));
  }
}

TEST_P(SubjectKeyAppendConformanceTest, ConcurrentNewKeysForOneSubject) {
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(round);
    const std::string subject = absl::StrCat("user-", round);
    const std::string streams[2] = {absl::StrCat("order-", round, "-a"),
                                    absl::StrCat("order-", round, "-b")};
    const std::string keys[2] = {kKeyA, kKeyB};
    const std::vector<EventData> events[2] = {Events(2, "a"), Events(2, "b")};
    absl::StatusOr<AppendResult> results[2];
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < 2) std::this_thread::yield();
        results[t] = AppendWithKeys(streams[t], ExpectedVersion::NoStream(),
                                    events[t], {{subject, keys[t], kMk1}});
      });
    }
    for (std::thread& t : threads) t.join();

    ASSERT_NE(results[0].ok(), results[1].ok())
        << results[0].status() << " / " << results[1].status();
    const int winner = results[0].ok() ? 0 : 1;
    const int loser = 1 - winner;
    EXPECT_TRUE(IsSubjectKeyConflict(results[loser].status()))
        << results[loser].status();
    std::optional<SubjectKeyRecord> record = MustFind(subject);
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->wrapped_key, keys[winner]);
    EXPECT_THAT(MustStreams(subject), ElementsAre(streams[winner]));
    EXPECT_EQ(MustVersion(streams[winner]), 2);
    // No orphan events: the loser wrote nothing.
    EXPECT_EQ(MustVersion(streams[loser]), 0);
    EXPECT_TRUE(NoneStored(events[loser]));
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, SubjectKeyAppendConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
