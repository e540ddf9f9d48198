// RotateMasterKey on every backend: the old key stops working, the new one
// works, a rerun changes nothing, more subjects than one batch, a key
// wrapped by an unknown master key, and appends running during a rotation.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eventstore/crypto/encrypted_event_store.h"
#include "eventstore/crypto/master_key.h"
#include "eventstore/crypto/subject_cipher.h"
#include "eventstore/event_store.h"
#include "eventstore/subject_key_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/crypto_test_support.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore::crypto {
namespace {

using ::eventstore::crypto::test::Options;
using ::eventstore::crypto::test::SubjectEvent;
using ::eventstore::test::AllTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::v1::OrderPlaced;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class MasterKeyRotationTest : public eventstore::test::StoreTest {
 protected:
  std::unique_ptr<EncryptedEventStore> Encrypted(EncryptionOptions options) {
    absl::StatusOr<std::unique_ptr<EncryptedEventStore>> store =
        EncryptedEventStore::Create(store_.get(), std::move(options));
    EXPECT_OK(store);
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Every event of the log read through `reader`: their order ids.
  absl::StatusOr<std::vector<std::string>> ReadOrders(EventStore& reader) {
    std::vector<std::string> orders;
    ReadAllOptions options;
    while (true) {
      absl::StatusOr<ReadAllPage> page = reader.ReadAll(options);
      if (!page.ok()) return page.status();
      for (const RecordedEvent& e : page->events) {
        absl::StatusOr<OrderPlaced> placed = e.As<OrderPlaced>();
        if (!placed.ok()) return placed.status();
        orders.push_back(placed->order_id());
      }
      if (page->end_of_log) return orders;
      options.from_position = page->next_position;
    }
  }

  MasterKey old_ = MasterKey::Generate();
  MasterKey new_ = MasterKey::Generate();
};

TEST_P(MasterKeyRotationTest, OldKeyStopsWorkingNewKeyWorksRerunIsNoop) {
  std::unique_ptr<EncryptedEventStore> before = Encrypted(Options(old_));
  ASSERT_NE(before, nullptr);
  for (const char* subject : {"alice", "bob", "carol"}) {
    ASSERT_OK(before->Append(absl::StrCat("user-", subject),
                             ExpectedVersion::NoStream(),
                             {SubjectEvent(subject, subject)}));
  }
  ASSERT_OK(before->ForgetSubject("carol"));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> raw_before,
                       store_->ReadStream("user-alice"));

  ASSERT_OK_AND_ASSIGN(MasterKeyRotation rotation,
                       RotateMasterKey(*store_, {old_}, new_));
  EXPECT_EQ(rotation.rewrapped, 2);
  EXPECT_EQ(rotation.already_current, 0);
  EXPECT_EQ(rotation.forgotten, 1);

  // No event was touched.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> raw_after,
                       store_->ReadStream("user-alice"));
  EXPECT_EQ(raw_after[0].payload, raw_before[0].payload);

  std::unique_ptr<EncryptedEventStore> with_old = Encrypted(Options(old_));
  EXPECT_THAT(
      with_old->ReadStream("user-alice"),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(new_.id())));
  std::unique_ptr<EncryptedEventStore> with_new = Encrypted(Options(new_));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       with_new->ReadStream("user-bob"));
  EXPECT_EQ(read[0].As<OrderPlaced>()->order_id(), "bob");
  ASSERT_OK_AND_ASSIGN(read, with_new->ReadStream("user-carol"));
  EXPECT_TRUE(read[0].forgotten());

  ASSERT_OK_AND_ASSIGN(rotation, RotateMasterKey(*store_, {old_}, new_));
  EXPECT_EQ(rotation.rewrapped, 0);
  EXPECT_EQ(rotation.already_current, 2);
  EXPECT_EQ(rotation.forgotten, 1);
}

TEST_P(MasterKeyRotationTest, RotatesMoreSubjectsThanOneBatch) {
  // Keys put straight into the key table, as an application would have.
  constexpr int kSubjects = 1234;
  std::vector<SubjectKeyRecord> records;
  for (int i = 0; i < kSubjects; ++i) {
    SubjectKeyRecord record;
    record.subject = absl::StrCat("subject-", i);
    record.master_key_id = old_.id();
    record.wrapped_key = internal::WrapSubjectKey(
        old_, record.subject, *internal::SubjectKey::Generate());
    record.created_at = absl::Now();
    records.push_back(std::move(record));
  }
  ASSERT_OK(store_->subject_keys().Put(records).status());
  std::unique_ptr<EncryptedEventStore> writer = Encrypted(Options(old_));
  ASSERT_OK(writer->Append("user-7", ExpectedVersion::NoStream(),
                           {SubjectEvent("subject-7", "seven")}));

  ASSERT_OK_AND_ASSIGN(MasterKeyRotation rotation,
                       RotateMasterKey(*store_, {old_}, new_));
  EXPECT_EQ(rotation.rewrapped, kSubjects);
  ASSERT_OK_AND_ASSIGN(std::vector<SubjectKeyRecord> listed,
                       store_->subject_keys().List("", kSubjects + 10));
  ASSERT_THAT(listed, SizeIs(kSubjects));
  for (const SubjectKeyRecord& record : listed) {
    ASSERT_EQ(record.master_key_id, new_.id()) << record.subject;
  }
  std::unique_ptr<EncryptedEventStore> reader = Encrypted(Options(new_));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> orders, ReadOrders(*reader));
  EXPECT_EQ(orders, std::vector<std::string>{"seven"});
}

TEST_P(MasterKeyRotationTest, KeyOfAnUnknownMasterKeyIsReportedOthersRotate) {
  MasterKey unknown = MasterKey::Generate();
  std::unique_ptr<EncryptedEventStore> a = Encrypted(Options(old_));
  std::unique_ptr<EncryptedEventStore> b = Encrypted(Options(unknown));
  ASSERT_OK(a->Append("user-a", ExpectedVersion::NoStream(),
                      {SubjectEvent("alice", "a")}));
  ASSERT_OK(b->Append("user-b", ExpectedVersion::NoStream(),
                      {SubjectEvent("bob", "b")}));
  absl::StatusOr<MasterKeyRotation> rotation =
      RotateMasterKey(*store_, {old_}, new_);
  EXPECT_THAT(rotation, StatusIs(absl::StatusCode::kFailedPrecondition,
                                 HasSubstr(unknown.id())));
  EXPECT_THAT(rotation.status().message(),
              ::testing::Not(HasSubstr(unknown.ToHex())));
  ASSERT_OK_AND_ASSIGN(std::optional<SubjectKeyRecord> alice,
                       store_->subject_keys().Find("alice"));
  EXPECT_EQ(alice->master_key_id, new_.id());
  // Given that key too, the rerun finishes the job.
  ASSERT_OK_AND_ASSIGN(MasterKeyRotation rerun,
                       RotateMasterKey(*store_, {old_, unknown}, new_));
  EXPECT_EQ(rerun.rewrapped, 1);
  EXPECT_EQ(rerun.already_current, 1);
}

// Applications keep appending (already on the new key, the old one among
// previous_keys) while the rotation runs; old subjects keep being written
// too. Afterwards the new key alone reads everything.
TEST_P(MasterKeyRotationTest, ConcurrentAppendsDuringRotation) {
  std::unique_ptr<EncryptedEventStore> old_app = Encrypted(Options(old_));
  ASSERT_NE(old_app, nullptr);
  constexpr int kOldSubjects = 40;
  for (int i = 0; i < kOldSubjects; ++i) {
    ASSERT_OK(old_app->Append(
        absl::StrCat("old-", i), ExpectedVersion::Any(),
        {SubjectEvent(absl::StrCat("old-", i), absl::StrCat("old-", i))}));
  }
  std::unique_ptr<EncryptedEventStore> app =
      Encrypted(Options(new_, {old_}, 8));
  ASSERT_NE(app, nullptr);
  std::atomic<bool> done{false};
  std::atomic<int> appended{0};
  std::thread writer([&] {
    for (int i = 0; !done.load() || i < 20; ++i) {
      const std::string subject =
          i % 2 == 0 ? absl::StrCat("new-", i) : absl::StrCat("old-", i % 40);
      absl::StatusOr<AppendResult> r =
          app->Append(absl::StrCat("w-", i), ExpectedVersion::Any(),
                      {SubjectEvent(subject, subject)});
      EXPECT_OK(r);
      if (!r.ok()) return;
      ++appended;
      if (i > 400) return;
    }
  });
  ASSERT_OK_AND_ASSIGN(MasterKeyRotation rotation,
                       RotateMasterKey(*store_, {old_}, new_));
  done = true;
  writer.join();
  EXPECT_EQ(rotation.rewrapped, kOldSubjects);
  EXPECT_GE(appended.load(), 20);

  std::unique_ptr<EncryptedEventStore> reader = Encrypted(Options(new_));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> orders, ReadOrders(*reader));
  EXPECT_THAT(orders, SizeIs(kOldSubjects + appended.load()));
  ASSERT_OK_AND_ASSIGN(MasterKeyRotation rerun,
                       RotateMasterKey(*store_, {old_}, new_));
  EXPECT_EQ(rerun.rewrapped, 0);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, MasterKeyRotationTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore::crypto
