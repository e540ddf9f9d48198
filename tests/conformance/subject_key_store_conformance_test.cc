// The SubjectKeyStore contract (subject_key_store.h), run on every backend
// of AllTestBackends(): one wrapped key per data subject, the first stored
// wins; a forgotten subject keeps a record without key and never gets one
// again; forgetting removes the snapshots of the subject's streams.

#include <atomic>
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
#include "eventstore/event_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/subject_key_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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

// Binary, as a real wrapped key is.
// The StatusOr is OK and its value matches `matcher`.
MATCHER_P(IsOkAndHolds, matcher, "") {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

const std::string kKeyA("wrapped\0A\xff\x80", 11);
const std::string kKeyB("wrapped\0B\x01\xfe", 11);
constexpr char kMk1[] = "mk-2026-01";
constexpr char kMk2[] = "mk-2026-02";

Snapshot MakeSnapshot(const std::string& stream, int32_t schema_version) {
  Snapshot s;
  s.stream = stream;
  s.version = 3;
  s.type = "eventstore.test.v1.OrderState";
  s.state = "state";
  s.schema_version = schema_version;
  s.taken_at = absl::FromUnixMicros(1700000000000000);
  return s;
}

SubjectKeyRecord Live(const std::string& subject, const std::string& key,
                      const std::string& master_key_id, int64_t created_us) {
  SubjectKeyRecord r;
  r.subject = subject;
  r.wrapped_key = key;
  r.master_key_id = master_key_id;
  r.created_at = absl::FromUnixMicros(created_us);
  return r;
}

SubjectKeyRecord Forgotten(const std::string& subject, int64_t created_us,
                           int64_t forgotten_us) {
  SubjectKeyRecord r;
  r.subject = subject;
  r.created_at = absl::FromUnixMicros(created_us);
  r.forgotten_at = absl::FromUnixMicros(forgotten_us);
  return r;
}

void ExpectSameRecord(const SubjectKeyRecord& actual,
                      const SubjectKeyRecord& expected) {
  EXPECT_EQ(actual.subject, expected.subject);
  EXPECT_EQ(actual.wrapped_key, expected.wrapped_key);
  EXPECT_EQ(actual.master_key_id, expected.master_key_id);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.forgotten_at, expected.forgotten_at);
}

std::vector<std::string> SubjectsOf(
    const std::vector<SubjectKeyRecord>& records) {
  std::vector<std::string> out;
  for (const SubjectKeyRecord& r : records) out.push_back(r.subject);
  return out;
}

class SubjectKeyStoreConformanceTest : public test::StoreTest {
 protected:
  SubjectKeyStore& keys() { return store_->subject_keys(); }

  std::optional<SubjectKeyRecord> MustFind(const std::string& subject) {
    absl::StatusOr<std::optional<SubjectKeyRecord>> r = keys().Find(subject);
    EXPECT_OK(r) << subject;
    return r.ok() ? *r : std::nullopt;
  }

  bool HasSnapshot(const std::string& stream, int32_t schema_version) {
    absl::StatusOr<std::optional<Snapshot>> s =
        store_->snapshots().Load(stream, schema_version);
    EXPECT_OK(s) << stream;
    return s.ok() && s->has_value();
  }
};

TEST_P(SubjectKeyStoreConformanceTest, FindAbsentIsNullopt) {
  EXPECT_FALSE(MustFind("user-1").has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<SubjectKeyRecord> all, keys().List("", 10));
  EXPECT_THAT(all, IsEmpty());
}

TEST_P(SubjectKeyStoreConformanceTest, InsertStoresTheKeyAndFindReturnsIt) {
  const absl::Time before = absl::Now() - absl::Seconds(5);
  ASSERT_OK_AND_ASSIGN(SubjectKeyRecord inserted,
                       keys().Insert("user-1", kKeyA, kMk1));
  EXPECT_EQ(inserted.subject, "user-1");
  EXPECT_EQ(inserted.wrapped_key, kKeyA);
  EXPECT_EQ(inserted.master_key_id, kMk1);
  EXPECT_FALSE(inserted.forgotten());
  EXPECT_GE(inserted.created_at, before);
  EXPECT_LE(inserted.created_at, absl::Now() + absl::Seconds(5));

  std::optional<SubjectKeyRecord> found = MustFind("user-1");
  ASSERT_TRUE(found.has_value());
  ExpectSameRecord(*found, inserted);
  EXPECT_FALSE(MustFind("user-2").has_value());
}

TEST_P(SubjectKeyStoreConformanceTest, InsertKeepsTheFirstKeyStored) {
  ASSERT_OK_AND_ASSIGN(SubjectKeyRecord first,
                       keys().Insert("user-1", kKeyA, kMk1));
  ASSERT_OK_AND_ASSIGN(SubjectKeyRecord second,
                       keys().Insert("user-1", kKeyB, kMk2));
  ExpectSameRecord(second, first);
  std::optional<SubjectKeyRecord> found = MustFind("user-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->wrapped_key, kKeyA);
  EXPECT_EQ(found->master_key_id, kMk1);
}

TEST_P(SubjectKeyStoreConformanceTest, ConcurrentInsertsAgreeOnOneKey) {
  constexpr int kThreads = 4;
  for (int round = 0; round < 5; ++round) {
    const std::string subject = absl::StrCat("user-", round);
    std::vector<absl::StatusOr<SubjectKeyRecord>> results(
        kThreads, absl::UnknownError("not run"));
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        // Start together, so that the inserts race.
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        results[t] = keys().Insert(subject, absl::StrCat("key-", t), kMk1);
      });
    }
    for (std::thread& t : threads) t.join();

    std::optional<SubjectKeyRecord> stored = MustFind(subject);
    ASSERT_TRUE(stored.has_value());
    EXPECT_THAT(stored->wrapped_key, ::testing::StartsWith("key-"));
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_OK(results[t]) << "thread " << t;
      ExpectSameRecord(*results[t], *stored);
    }
  }
}

TEST_P(SubjectKeyStoreConformanceTest, ForgetDropsTheKeyAndRefusesANewOne) {
  ASSERT_OK_AND_ASSIGN(SubjectKeyRecord inserted,
                       keys().Insert("user-1", kKeyA, kMk1));
  const absl::Time before = absl::Now() - absl::Seconds(5);
  ASSERT_OK_AND_ASSIGN(ForgetSubjectResult forget, keys().Forget("user-1"));
  EXPECT_TRUE(forget.forgotten_now);
  EXPECT_EQ(forget.snapshots_removed, 0);
  EXPECT_THAT(forget.streams, IsEmpty());

  std::optional<SubjectKeyRecord> found = MustFind("user-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->forgotten());
  EXPECT_EQ(found->wrapped_key, "");
  EXPECT_EQ(found->master_key_id, "");
  EXPECT_EQ(found->created_at, inserted.created_at);
  EXPECT_GE(*found->forgotten_at, before);

  EXPECT_THAT(
      keys().Insert("user-1", kKeyB, kMk1),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("forgotten")));
  // The refusal wrote nothing.
  std::optional<SubjectKeyRecord> after = MustFind("user-1");
  ASSERT_TRUE(after.has_value());
  ExpectSameRecord(*after, *found);
}

TEST_P(SubjectKeyStoreConformanceTest, ForgettingASubjectWithoutKeyBlocksIt) {
  ASSERT_OK_AND_ASSIGN(ForgetSubjectResult forget, keys().Forget("user-9"));
  EXPECT_TRUE(forget.forgotten_now);
  std::optional<SubjectKeyRecord> found = MustFind("user-9");
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->forgotten());
  EXPECT_EQ(found->wrapped_key, "");
  EXPECT_THAT(keys().Insert("user-9", kKeyA, kMk1),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("can never get a key again")));
}

TEST_P(SubjectKeyStoreConformanceTest, ForgettingAgainChangesNothing) {
  ASSERT_OK(keys().Insert("user-1", kKeyA, kMk1));
  ASSERT_OK_AND_ASSIGN(ForgetSubjectResult first, keys().Forget("user-1"));
  EXPECT_TRUE(first.forgotten_now);
  std::optional<SubjectKeyRecord> once = MustFind("user-1");
  ASSERT_TRUE(once.has_value());
  ASSERT_OK_AND_ASSIGN(ForgetSubjectResult second, keys().Forget("user-1"));
  EXPECT_FALSE(second.forgotten_now);
  EXPECT_EQ(second.snapshots_removed, 0);
  std::optional<SubjectKeyRecord> twice = MustFind("user-1");
  ASSERT_TRUE(twice.has_value());
  ExpectSameRecord(*twice, *once);
}

TEST_P(SubjectKeyStoreConformanceTest, ForgettingAgainRemovesLateSnapshots) {
  ASSERT_OK(keys().AddStream("user-1", "order-1"));
  ASSERT_OK(keys().Forget("user-1"));
  std::optional<SubjectKeyRecord> once = MustFind("user-1");
  ASSERT_TRUE(once.has_value());
  // A snapshot saved after the subject was forgotten.
  ASSERT_OK(store_->snapshots().Save(MakeSnapshot("order-1", 1)));
  ASSERT_OK_AND_ASSIGN(ForgetSubjectResult again, keys().Forget("user-1"));
  EXPECT_FALSE(again.forgotten_now);
  EXPECT_EQ(again.snapshots_removed, 1);
  EXPECT_THAT(again.streams, ElementsAre("order-1"));
  EXPECT_FALSE(HasSnapshot("order-1", 1));
  std::optional<SubjectKeyRecord> twice = MustFind("user-1");
  ASSERT_TRUE(twice.has_value());
  ExpectSameRecord(*twice, *once);
}

TEST_P(SubjectKeyStoreConformanceTest, AddStreamIsIdempotentAndListedInOrder) {
  ASSERT_OK(keys().AddStream("user-1", "order-2"));
  ASSERT_OK(keys().AddStream("user-1", "Order-9"));
  ASSERT_OK(keys().AddStream("user-1", "order-10"));
  ASSERT_OK(keys().AddStream("user-1", "order-2"));
  ASSERT_OK(keys().AddStream("user-2", "order-3"));
  // Byte order: upper case first, "order-10" before "order-2".
  EXPECT_THAT(keys().Streams("user-1"),
              IsOkAndHolds(ElementsAre("Order-9", "order-10", "order-2")));
  EXPECT_THAT(keys().Streams("user-2"), IsOkAndHolds(ElementsAre("order-3")));
  EXPECT_THAT(keys().Streams("user-3"), IsOkAndHolds(IsEmpty()));
}

TEST_P(SubjectKeyStoreConformanceTest,
       SubjectOfStreamIsTheRecordedSubjectFirstInByteOrder) {
  EXPECT_THAT(keys().SubjectOfStream("order-1"),
              IsOkAndHolds(std::optional<std::string>()));
  ASSERT_OK(keys().AddStream("user-b", "order-1"));
  ASSERT_OK(keys().AddStream("user-c", "order-2"));
  EXPECT_THAT(keys().SubjectOfStream("order-1"),
              IsOkAndHolds(std::optional<std::string>("user-b")));
  // Several subjects for one stream: the first in byte order (upper case
  // before lower case), whatever the order they were recorded in.
  ASSERT_OK(keys().AddStream("user-a", "order-1"));
  ASSERT_OK(keys().AddStream("User-z", "order-1"));
  EXPECT_THAT(keys().SubjectOfStream("order-1"),
              IsOkAndHolds(std::optional<std::string>("User-z")));
  EXPECT_THAT(keys().SubjectOfStream("order-2"),
              IsOkAndHolds(std::optional<std::string>("user-c")));
  // Only the exact stream name.
  EXPECT_THAT(keys().SubjectOfStream("Order-1"),
              IsOkAndHolds(std::optional<std::string>()));
  // A forgotten subject stays recorded for its streams.
  ASSERT_OK(keys().Forget("user-c").status());
  EXPECT_THAT(keys().SubjectOfStream("order-2"),
              IsOkAndHolds(std::optional<std::string>("user-c")));
}

TEST_P(SubjectKeyStoreConformanceTest,
       ForgetRemovesTheSnapshotsOfTheSubjectsStreamsOnly) {
  ASSERT_OK(keys().Insert("user-1", kKeyA, kMk1));
  ASSERT_OK(keys().Insert("user-2", kKeyB, kMk1));
  ASSERT_OK(keys().AddStream("user-1", "order-1"));
  ASSERT_OK(keys().AddStream("user-1", "order-2"));
  ASSERT_OK(keys().AddStream("user-2", "order-3"));
  for (const char* stream : {"order-1", "order-2", "order-3", "order-4"}) {
    ASSERT_OK(store_->snapshots().Save(MakeSnapshot(stream, 1)));
  }
  ASSERT_OK(store_->snapshots().Save(MakeSnapshot("order-1", 2)));

  ASSERT_OK_AND_ASSIGN(ForgetSubjectResult forget, keys().Forget("user-1"));
  EXPECT_TRUE(forget.forgotten_now);
  EXPECT_EQ(forget.snapshots_removed, 3);
  EXPECT_THAT(forget.streams, ElementsAre("order-1", "order-2"));

  EXPECT_FALSE(HasSnapshot("order-1", 1));
  EXPECT_FALSE(HasSnapshot("order-1", 2));
  EXPECT_FALSE(HasSnapshot("order-2", 1));
  EXPECT_TRUE(HasSnapshot("order-3", 1));
  EXPECT_TRUE(HasSnapshot("order-4", 1));
  // The other subject keeps its key; the streams stay recorded.
  std::optional<SubjectKeyRecord> other = MustFind("user-2");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->wrapped_key, kKeyB);
  EXPECT_THAT(keys().Streams("user-1"),
              IsOkAndHolds(ElementsAre("order-1", "order-2")));
}

TEST_P(SubjectKeyStoreConformanceTest, RewrapIsACompareAndSet) {
  ASSERT_OK_AND_ASSIGN(SubjectKeyRecord inserted,
                       keys().Insert("user-1", kKeyA, kMk1));
  // Not wrapped by kMk2: nothing changes.
  EXPECT_THAT(keys().Rewrap("user-1", kMk2, kKeyB, "mk-3"),
              IsOkAndHolds(false));
  std::optional<SubjectKeyRecord> unchanged = MustFind("user-1");
  ASSERT_TRUE(unchanged.has_value());
  ExpectSameRecord(*unchanged, inserted);

  EXPECT_THAT(keys().Rewrap("user-1", kMk1, kKeyB, kMk2), IsOkAndHolds(true));
  std::optional<SubjectKeyRecord> rewrapped = MustFind("user-1");
  ASSERT_TRUE(rewrapped.has_value());
  EXPECT_EQ(rewrapped->wrapped_key, kKeyB);
  EXPECT_EQ(rewrapped->master_key_id, kMk2);
  EXPECT_EQ(rewrapped->created_at, inserted.created_at);
  // A second rotation from the old master key loses.
  EXPECT_THAT(keys().Rewrap("user-1", kMk1, kKeyA, kMk2), IsOkAndHolds(false));
  // A subject without a record, and a forgotten one, are never rewrapped.
  EXPECT_THAT(keys().Rewrap("user-2", kMk1, kKeyA, kMk2), IsOkAndHolds(false));
  EXPECT_FALSE(MustFind("user-2").has_value());
  ASSERT_OK(keys().Forget("user-1"));
  EXPECT_THAT(keys().Rewrap("user-1", kMk2, kKeyA, kMk1), IsOkAndHolds(false));
  std::optional<SubjectKeyRecord> forgotten = MustFind("user-1");
  ASSERT_TRUE(forgotten.has_value());
  EXPECT_TRUE(forgotten->forgotten());
  EXPECT_EQ(forgotten->wrapped_key, "");
}

TEST_P(SubjectKeyStoreConformanceTest, ListPagesBySubjectInByteOrder) {
  for (const char* subject : {"user-2", "User-1", "user-10", "user-3"}) {
    ASSERT_OK(keys().Insert(subject, kKeyA, kMk1));
  }
  ASSERT_OK(keys().Forget("user-0"));  // forgotten ones are listed too
  ASSERT_OK_AND_ASSIGN(std::vector<SubjectKeyRecord> page1, keys().List("", 2));
  EXPECT_THAT(SubjectsOf(page1), ElementsAre("User-1", "user-0"));
  EXPECT_FALSE(page1[0].forgotten());
  EXPECT_EQ(page1[0].wrapped_key, kKeyA);
  EXPECT_TRUE(page1[1].forgotten());
  ASSERT_OK_AND_ASSIGN(std::vector<SubjectKeyRecord> page2,
                       keys().List(page1.back().subject, 2));
  EXPECT_THAT(SubjectsOf(page2), ElementsAre("user-10", "user-2"));
  ASSERT_OK_AND_ASSIGN(std::vector<SubjectKeyRecord> page3,
                       keys().List(page2.back().subject, 2));
  EXPECT_THAT(SubjectsOf(page3), ElementsAre("user-3"));
  EXPECT_THAT(keys().List("user-3", 2), IsOkAndHolds(IsEmpty()));
  ASSERT_OK_AND_ASSIGN(std::vector<SubjectKeyRecord> all, keys().List("", 100));
  EXPECT_EQ(all.size(), 5u);
}

TEST_P(SubjectKeyStoreConformanceTest, PutWritesRecordsAsGiven) {
  const std::vector<SubjectKeyRecord> records = {
      Live("user-1", kKeyA, kMk1, 1600000000000001),
      Forgotten("user-2", 1600000000000002, 1650000000000002),
      Live("user-3", kKeyB, kMk2, 1600000000000003)};
  EXPECT_THAT(keys().Put(records), IsOkAndHolds(3));
  ASSERT_OK_AND_ASSIGN(std::vector<SubjectKeyRecord> all, keys().List("", 10));
  ASSERT_EQ(all.size(), 3u);
  for (size_t i = 0; i < 3; ++i) ExpectSameRecord(all[i], records[i]);
  // Again: every record is kept as it is.
  EXPECT_THAT(keys().Put(records), IsOkAndHolds(0));
  EXPECT_THAT(keys().Put({}), IsOkAndHolds(0));
  // A forgotten subject still refuses a key.
  EXPECT_THAT(keys().Insert("user-2", kKeyA, kMk1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_P(SubjectKeyStoreConformanceTest, PutNeverRevivesAForgottenSubject) {
  ASSERT_OK(keys().Insert("user-1", kKeyA, kMk1));
  ASSERT_OK(keys().Forget("user-1"));
  std::optional<SubjectKeyRecord> forgotten = MustFind("user-1");
  ASSERT_TRUE(forgotten.has_value());
  EXPECT_THAT(keys().Put({Live("user-1", kKeyA, kMk1, 1600000000000000)}),
              IsOkAndHolds(0));
  std::optional<SubjectKeyRecord> after = MustFind("user-1");
  ASSERT_TRUE(after.has_value());
  ExpectSameRecord(*after, *forgotten);
}

TEST_P(SubjectKeyStoreConformanceTest, PutOfAForgottenRecordForgetsALiveOne) {
  ASSERT_OK_AND_ASSIGN(SubjectKeyRecord live,
                       keys().Insert("user-1", kKeyA, kMk1));
  ASSERT_OK(keys().AddStream("user-1", "order-1"));
  ASSERT_OK(store_->snapshots().Save(MakeSnapshot("order-1", 1)));
  ASSERT_OK(store_->snapshots().Save(MakeSnapshot("order-2", 1)));

  EXPECT_THAT(
      keys().Put({Forgotten("user-1", 1600000000000000, 1650000000000000)}),
      IsOkAndHolds(1));
  std::optional<SubjectKeyRecord> after = MustFind("user-1");
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->forgotten());
  EXPECT_EQ(after->wrapped_key, "");
  EXPECT_EQ(after->master_key_id, "");
  EXPECT_EQ(*after->forgotten_at, absl::FromUnixMicros(1650000000000000));
  EXPECT_EQ(after->created_at, live.created_at);
  EXPECT_FALSE(HasSnapshot("order-1", 1));
  EXPECT_TRUE(HasSnapshot("order-2", 1));
}

TEST_P(SubjectKeyStoreConformanceTest, PutRefusesADifferentKeyWritingNothing) {
  ASSERT_OK_AND_ASSIGN(SubjectKeyRecord stored,
                       keys().Insert("user-2", kKeyA, kMk1));
  // The same key: kept, not a conflict.
  EXPECT_THAT(keys().Put({Live("user-2", kKeyA, kMk1, 1600000000000000)}),
              IsOkAndHolds(0));
  const std::vector<SubjectKeyRecord> batch = {
      Live("user-1", kKeyB, kMk1, 1600000000000000),
      Live("user-2", kKeyB, kMk1, 1600000000000000)};
  EXPECT_THAT(keys().Put(batch), StatusIs(absl::StatusCode::kFailedPrecondition,
                                          HasSubstr("'user-2'")));
  // Nothing of the batch was written.
  EXPECT_FALSE(MustFind("user-1").has_value());
  std::optional<SubjectKeyRecord> after = MustFind("user-2");
  ASSERT_TRUE(after.has_value());
  ExpectSameRecord(*after, stored);
  // The same key wrapped by another master key is another key too.
  EXPECT_THAT(
      keys().Put({Live("user-2", kKeyA, kMk2, 1600000000000000)}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("'user-2'")));
}

TEST_P(SubjectKeyStoreConformanceTest, BadInputIsRefusedNamingTheField) {
  const auto invalid = [](const std::string& field) {
    return StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(field));
  };
  EXPECT_THAT(keys().Find(""), invalid("subject"));
  EXPECT_THAT(keys().Insert("", kKeyA, kMk1), invalid("subject"));
  EXPECT_THAT(keys().Insert("user-1", "", kMk1), invalid("wrapped_key"));
  EXPECT_THAT(keys().Insert("user-1", kKeyA, ""), invalid("master_key_id"));
  EXPECT_THAT(keys().Insert("user-\x01", kKeyA, kMk1), invalid("subject"));
  EXPECT_THAT(keys().Insert("user-\xff", kKeyA, kMk1), invalid("subject"));
  const std::string too_long(store_->limits().max_stream_name_bytes + 1, 'u');
  EXPECT_THAT(keys().Insert(too_long, kKeyA, kMk1), invalid("subject"));
  EXPECT_THAT(keys().Forget(too_long), invalid("subject"));
  EXPECT_THAT(keys().AddStream("", "order-1"), invalid("subject"));
  EXPECT_THAT(keys().AddStream("user-1", ""), invalid("stream"));
  EXPECT_THAT(keys().Streams(""), invalid("subject"));
  EXPECT_THAT(keys().SubjectOfStream(""), invalid("stream"));
  EXPECT_THAT(keys().Forget(""), invalid("subject"));
  EXPECT_THAT(keys().List("", 0), invalid("limit"));
  EXPECT_THAT(keys().List("", -1), invalid("limit"));
  EXPECT_THAT(keys().List("user-\xff", 10), invalid("after"));
  EXPECT_THAT(keys().Rewrap("", kMk1, kKeyA, kMk2), invalid("subject"));
  EXPECT_THAT(keys().Rewrap("user-1", "", kKeyA, kMk2),
              invalid("expected_master_key_id"));
  EXPECT_THAT(keys().Rewrap("user-1", kMk1, "", kMk2), invalid("wrapped_key"));
  EXPECT_THAT(keys().Rewrap("user-1", kMk1, kKeyA, ""),
              invalid("master_key_id"));
  EXPECT_THAT(
      keys().Put({Live("user-1", kKeyA, kMk1, 1), Live("", kKeyA, kMk1, 1)}),
      invalid("records[1].subject"));
  EXPECT_THAT(keys().Put({Live("user-1", "", kMk1, 1)}),
              invalid("records[0].wrapped_key"));
  EXPECT_THAT(keys().Put({Live("user-1", kKeyA, "", 1)}),
              invalid("records[0].master_key_id"));
  SubjectKeyRecord forgotten_with_key = Live("user-1", kKeyA, kMk1, 1);
  forgotten_with_key.forgotten_at = absl::FromUnixMicros(2);
  EXPECT_THAT(keys().Put({forgotten_with_key}),
              invalid("records[0].wrapped_key"));
  EXPECT_THAT(keys().Put({Live("user-1", kKeyA, kMk1, 1),
                          Live("user-1", kKeyA, kMk1, 1)}),
              invalid("twice"));
  // None of it was written.
  EXPECT_THAT(keys().List("", 10), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(keys().Streams("user-1"), IsOkAndHolds(IsEmpty()));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, SubjectKeyStoreConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
