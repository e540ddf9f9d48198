// EncryptedEventStore on every backend (tests/support/test_backends.h):
// round trip, what is stored, forgetting a subject, wrong and missing
// master keys, damaged ciphertexts, and the key cache.

#include "eventstore/crypto/encrypted_event_store.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eventstore/crypto/master_key.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/subject_key_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/crypto_test_support.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_backends.h"

namespace eventstore::crypto {
namespace {

using ::eventstore::crypto::test::CountingStore;
using ::eventstore::crypto::test::Options;
using ::eventstore::crypto::test::SubjectEvent;
using ::eventstore::test::AllTestBackends;
using ::eventstore::test::OpenWithoutChecksumVerification;
using ::eventstore::test::RawAccessTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::v1::OrderPlaced;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

class EncryptedEventStoreTest : public eventstore::test::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    absl::StatusOr<std::unique_ptr<EncryptedEventStore>> encrypted =
        EncryptedEventStore::Create(store_.get(), Options(key_));
    ASSERT_OK(encrypted);
    encrypted_ = *std::move(encrypted);
  }

  // A second EncryptedEventStore over the same database (its own cache).
  std::unique_ptr<EncryptedEventStore> Another(EncryptionOptions options) {
    absl::StatusOr<std::unique_ptr<EncryptedEventStore>> store =
        EncryptedEventStore::Create(store_.get(), std::move(options));
    EXPECT_OK(store);
    return store.ok() ? *std::move(store) : nullptr;
  }

  MasterKey key_ = MasterKey::Generate();
  std::unique_ptr<EncryptedEventStore> encrypted_;
};

int64_t VersionOf(EventStore& store, std::string_view stream) {
  absl::StatusOr<int64_t> version = store.StreamVersion(stream);
  EXPECT_OK(version);
  return version.ok() ? *version : -1;
}

std::string OrderOf(const RecordedEvent& e) {
  absl::StatusOr<OrderPlaced> placed = e.As<OrderPlaced>();
  return placed.ok() ? placed->order_id() : placed.status().ToString();
}

TEST_P(EncryptedEventStoreTest, RoundTripDecryptsAndPlainEventsPassUntouched) {
  const std::vector<EventData> events = {SubjectEvent("alice", "secret-1"),
                                         SubjectEvent("", "plain-2"),
                                         SubjectEvent("bob", "secret-3")};
  ASSERT_OK(encrypted_->Append("order-1", ExpectedVersion::NoStream(), events));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       encrypted_->ReadStream("order-1"));
  ASSERT_THAT(read, SizeIs(3));
  EXPECT_EQ(OrderOf(read[0]), "secret-1");
  EXPECT_EQ(read[0].payload_state, PayloadState::kDecrypted);
  EXPECT_EQ(read[0].id, events[0].id);
  EXPECT_EQ(read[0].metadata.subject_id(), "alice");
  EXPECT_EQ(OrderOf(read[1]), "plain-2");
  EXPECT_EQ(read[1].payload_state, PayloadState::kAsStored);
  EXPECT_TRUE(read[1].metadata.payload_encryption().empty());
  EXPECT_EQ(OrderOf(read[2]), "secret-3");

  ASSERT_OK_AND_ASSIGN(ReadAllPage page, encrypted_->ReadAll(ReadAllOptions()));
  ASSERT_THAT(page.events, SizeIs(3));
  EXPECT_EQ(OrderOf(page.events[2]), "secret-3");
  EXPECT_EQ(page.events[2].payload_state, PayloadState::kDecrypted);

  // A fresh store object (nothing cached) reads them too.
  std::unique_ptr<EncryptedEventStore> fresh = Another(Options(key_));
  ASSERT_NE(fresh, nullptr);
  ASSERT_OK_AND_ASSIGN(read, fresh->ReadStream("order-1"));
  EXPECT_EQ(OrderOf(read[0]), "secret-1");
}

TEST_P(EncryptedEventStoreTest, StoredPayloadIsSealedCiphertext) {
  EventData event = SubjectEvent("alice", "the-secret-order");
  ASSERT_OK(
      encrypted_->Append("order-1", ExpectedVersion::NoStream(), {event}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> raw,
                       store_->ReadStream("order-1"));
  ASSERT_THAT(raw, SizeIs(1));
  EXPECT_TRUE(raw[0].sealed());
  EXPECT_EQ(raw[0].metadata.payload_encryption(), kPayloadEncryptionXChaCha20);
  EXPECT_THAT(raw[0].payload, Not(HasSubstr("the-secret-order")));
  EXPECT_EQ(raw[0].payload.size(), event.payload.size() + 24 + 16);
  EXPECT_THAT(raw[0].As<OrderPlaced>(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // The key table holds the key only wrapped, by this master key.
  ASSERT_OK_AND_ASSIGN(std::optional<SubjectKeyRecord> record,
                       store_->subject_keys().Find("alice"));
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->master_key_id, key_.id());
  EXPECT_EQ(record->wrapped_key.size(), 24u + 32u + 16u);
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> streams,
                       store_->subject_keys().Streams("alice"));
  EXPECT_EQ(streams, std::vector<std::string>{"order-1"});
}

TEST_P(EncryptedEventStoreTest, NilIdsGetTheStoredIdBeforeEncryption) {
  EventData event = SubjectEvent("alice", "o-1");
  event.id = Uuid();
  ASSERT_OK(
      encrypted_->Append("order-1", ExpectedVersion::NoStream(), {event}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       encrypted_->ReadStream("order-1"));
  ASSERT_THAT(read, SizeIs(1));
  EXPECT_FALSE(read[0].damaged()) << read[0].damage;
  EXPECT_EQ(OrderOf(read[0]), "o-1");
}

TEST_P(EncryptedEventStoreTest, AppendEachEncryptsEachRequest) {
  const std::vector<EventData> a = {SubjectEvent("alice", "a-1")};
  const std::vector<EventData> b = {SubjectEvent("", "b-1")};
  EventData refused = SubjectEvent("carol", "c-1");
  refused.metadata.set_payload_encryption("made-up");
  const std::vector<EventData> c = {refused};
  const std::vector<AppendRequest> requests = {
      {"s-a", ExpectedVersion::NoStream(), a, {}},
      {"s-c", ExpectedVersion::NoStream(), c, {}},
      {"s-b", ExpectedVersion::NoStream(), b, {}}};
  ASSERT_OK_AND_ASSIGN(auto results, encrypted_->AppendEach(requests));
  ASSERT_THAT(results, SizeIs(3));
  EXPECT_OK(results[0]);
  EXPECT_THAT(results[1], StatusIs(absl::StatusCode::kInvalidArgument,
                                   HasSubstr("payload_encryption")));
  EXPECT_OK(results[2]);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> raw,
                       store_->ReadStream("s-a"));
  ASSERT_THAT(raw, SizeIs(1));
  EXPECT_TRUE(raw[0].sealed());
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       encrypted_->ReadStream("s-a"));
  EXPECT_EQ(OrderOf(read[0]), "a-1");
  EXPECT_EQ(VersionOf(*store_, "s-c"), 0);
}

TEST_P(EncryptedEventStoreTest, ForgetSubjectLeavesForgottenEventsInPlace) {
  ASSERT_OK(encrypted_->Append(
      "user-1", ExpectedVersion::NoStream(),
      {SubjectEvent("alice", "a-1"), SubjectEvent("bob", "b-1"),
       SubjectEvent("alice", "a-2")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> before,
                       encrypted_->ReadStream("user-1"));
  Snapshot snapshot;
  snapshot.stream = "user-1";
  snapshot.version = 3;
  snapshot.type = "eventstore.test.v1.OrderPlaced";
  snapshot.state = "state";
  snapshot.schema_version = 1;
  ASSERT_OK(store_->snapshots().Save(snapshot));

  ASSERT_OK_AND_ASSIGN(ForgetSubjectResult forgot,
                       encrypted_->ForgetSubject("alice"));
  EXPECT_TRUE(forgot.forgotten_now);
  EXPECT_EQ(forgot.streams, std::vector<std::string>{"user-1"});
  EXPECT_EQ(forgot.snapshots_removed, 1);
  ASSERT_OK_AND_ASSIGN(auto loaded, store_->snapshots().Load("user-1", 1));
  EXPECT_FALSE(loaded.has_value());

  // Through this object, through a fresh one (nothing cached) and in
  // ReadAll alike.
  std::unique_ptr<EncryptedEventStore> fresh = Another(Options(key_));
  ASSERT_NE(fresh, nullptr);
  for (EncryptedEventStore* reader : {encrypted_.get(), fresh.get()}) {
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> after,
                         reader->ReadStream("user-1"));
    ASSERT_THAT(after, SizeIs(3));
    for (size_t i = 0; i < after.size(); ++i) {
      EXPECT_EQ(after[i].id, before[i].id);
      EXPECT_EQ(after[i].version, before[i].version);
      EXPECT_EQ(after[i].position, before[i].position);
      EXPECT_EQ(after[i].type, before[i].type);
    }
    EXPECT_TRUE(after[0].forgotten());
    EXPECT_TRUE(after[0].payload.empty());
    EXPECT_FALSE(after[0].damaged());
    EXPECT_THAT(
        after[0].As<OrderPlaced>(),
        StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("alice")));
    EXPECT_EQ(OrderOf(after[1]), "b-1");
    EXPECT_TRUE(after[2].forgotten());
    ASSERT_OK_AND_ASSIGN(ReadAllPage page, reader->ReadAll(ReadAllOptions()));
    ASSERT_THAT(page.events, SizeIs(3));
    EXPECT_TRUE(page.events[0].forgotten());
    EXPECT_EQ(page.events[1].payload_state, PayloadState::kDecrypted);
  }

  // New events of the subject are refused, by either object, and nothing
  // is written.
  for (EncryptedEventStore* writer : {encrypted_.get(), fresh.get()}) {
    EXPECT_THAT(
        writer->Append("user-2", ExpectedVersion::Any(),
                       {SubjectEvent("alice", "a-3")}),
        StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("'alice'")));
  }
  EXPECT_EQ(VersionOf(*store_, "user-2"), 0);
  // Forgetting again changes nothing.
  ASSERT_OK_AND_ASSIGN(forgot, encrypted_->ForgetSubject("alice"));
  EXPECT_FALSE(forgot.forgotten_now);
}

TEST_P(EncryptedEventStoreTest,
       SubjectForgottenElsewhereIsForgottenAfterCache) {
  // Cache size 0: nothing is kept, so a forget through another object shows
  // at the next read.
  std::unique_ptr<EncryptedEventStore> uncached = Another(Options(key_, {}, 0));
  ASSERT_NE(uncached, nullptr);
  ASSERT_OK(uncached->Append("user-1", ExpectedVersion::NoStream(),
                             {SubjectEvent("alice", "a-1")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       uncached->ReadStream("user-1"));
  EXPECT_EQ(OrderOf(read[0]), "a-1");
  ASSERT_OK(encrypted_->ForgetSubject("alice"));
  ASSERT_OK_AND_ASSIGN(read, uncached->ReadStream("user-1"));
  EXPECT_TRUE(read[0].forgotten());
}

TEST_P(EncryptedEventStoreTest, WrongMasterKeyIsRefusedNamingBothIds) {
  ASSERT_OK(encrypted_->Append("user-1", ExpectedVersion::NoStream(),
                               {SubjectEvent("alice", "a-1")}));
  MasterKey wrong = MasterKey::Generate();
  std::unique_ptr<EncryptedEventStore> other = Another(Options(wrong));
  ASSERT_NE(other, nullptr);
  absl::StatusOr<std::vector<RecordedEvent>> read = other->ReadStream("user-1");
  EXPECT_THAT(read,
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(key_.id()), HasSubstr(wrong.id()),
                             HasSubstr("alice"), Not(HasSubstr(key_.ToHex())),
                             Not(HasSubstr(wrong.ToHex())))));
  EXPECT_THAT(other->ReadAll(ReadAllOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // An append for the subject is refused; nothing is written, plain or not.
  EXPECT_THAT(
      other->Append("user-1", ExpectedVersion::Any(),
                    {SubjectEvent("alice", "a-2")}),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(key_.id())));
  EXPECT_EQ(VersionOf(*store_, "user-1"), 1);
  // A new subject gets a key wrapped by the other master key, readable by
  // it only.
  ASSERT_OK(other->Append("user-2", ExpectedVersion::NoStream(),
                          {SubjectEvent("bob", "b-1")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> bob,
                       other->ReadStream("user-2"));
  EXPECT_EQ(OrderOf(bob[0]), "b-1");
  EXPECT_THAT(encrypted_->ReadStream("user-2"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_P(EncryptedEventStoreTest, WithoutMasterKeySubjectEventsAreRefused) {
  EXPECT_THAT(store_->Append("user-1", ExpectedVersion::NoStream(),
                             {SubjectEvent("alice", "a-1")}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(VersionOf(*store_, "user-1"), 0);
  EncryptionOptions none;
  EXPECT_THAT(
      EncryptedEventStore::Create(store_.get(), std::move(none)),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("master_key")));
}

TEST_P(EncryptedEventStoreTest, ReadsResolveEachSubjectOnceNotPerEvent) {
  CountingStore counting(store_.get());
  // 50 new events (new ids) each time.
  auto events = [] {
    std::vector<EventData> events;
    for (int i = 0; i < 50; ++i) {
      events.push_back(
          SubjectEvent(i % 2 == 0 ? "alice" : "bob", absl::StrCat("o-", i)));
    }
    return events;
  };
  // Cache size 0: one lookup per subject per read call still.
  for (int64_t cache_size : {int64_t{0}, int64_t{10}}) {
    SCOPED_TRACE(cache_size);
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<EncryptedEventStore> encrypted,
        EncryptedEventStore::Create(&counting, Options(key_, {}, cache_size)));
    const std::string stream = absl::StrCat("s-", cache_size);
    counting.stream_records = 0;
    counting.key_writes = 0;
    for (int i = 0; i < 5; ++i) {
      ASSERT_OK(encrypted->Append(stream, ExpectedVersion::Any(), events()));
    }
    // Each (subject, stream) recorded once, with the first append, not once
    // per append; each new key stored once, by the append, not apart.
    EXPECT_EQ(counting.stream_records.load(), 2);
    // alice and bob get their keys in the first round (cache size 0).
    EXPECT_EQ(counting.key_writes.load(), cache_size == 0 ? 2 : 0);
    EXPECT_EQ(counting.keys().add_streams.load(), 0);
    counting.keys().finds = 0;
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                         encrypted->ReadStream(stream));
    ASSERT_THAT(read, SizeIs(250));
    EXPECT_EQ(OrderOf(read[249]), "o-49");
    EXPECT_EQ(counting.keys().finds.load(), cache_size == 0 ? 2 : 0);
  }
}

TEST_P(EncryptedEventStoreTest, OpenOwnsTheTarget) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> inner,
                       GetParam().open(nullptr));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EncryptedEventStore> owned,
      EncryptedEventStore::Open(std::move(inner), Options(key_)));
  ASSERT_OK(owned->Append("user-1", ExpectedVersion::NoStream(),
                          {SubjectEvent("alice", "a-1")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       owned->ReadStream("user-1"));
  EXPECT_EQ(OrderOf(read[0]), "a-1");
}

TEST_P(EncryptedEventStoreTest, AFailedAppendStoresNoKeyAndNoStreamRecord) {
  ASSERT_OK(encrypted_->Append("order-1", ExpectedVersion::NoStream(),
                               {SubjectEvent("", "plain")}));
  EXPECT_THAT(encrypted_->Append("order-1", ExpectedVersion::NoStream(),
                                 {SubjectEvent("carol", "o-1")}),
              StatusIs(absl::StatusCode::kAborted));
  ASSERT_OK_AND_ASSIGN(std::optional<SubjectKeyRecord> record,
                       store_->subject_keys().Find("carol"));
  EXPECT_FALSE(record.has_value());
  // The next append gives carol a key, stored with it.
  ASSERT_OK(encrypted_->Append("order-1", ExpectedVersion::Exactly(1),
                               {SubjectEvent("carol", "o-2")}));
  ASSERT_OK_AND_ASSIGN(record, store_->subject_keys().Find("carol"));
  ASSERT_TRUE(record.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> streams,
                       store_->subject_keys().Streams("carol"));
  EXPECT_EQ(streams, std::vector<std::string>{"order-1"});
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       encrypted_->ReadStream("order-1"));
  ASSERT_THAT(read, SizeIs(2));
  EXPECT_EQ(OrderOf(read[1]), "o-2");
}

TEST_P(EncryptedEventStoreTest, ConcurrentWritersOfANewSubjectShareOneKey) {
  // Four store objects (each its own key cache, as four processes would
  // have), each appending the same new subject's events to its own streams
  // at once: one key wins, the others encrypt again with it.
  constexpr int kWriters = 4;
  constexpr int kAppends = 5;
  std::vector<std::unique_ptr<EncryptedEventStore>> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.push_back(Another(Options(key_)));
    ASSERT_NE(writers.back(), nullptr);
  }
  std::atomic<int> ready{0};
  std::vector<absl::Status> results(kWriters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      ++ready;
      while (ready.load() < kWriters) std::this_thread::yield();
      for (int a = 0; a < kAppends && results[w].ok(); ++a) {
        results[w] =
            writers[w]
                ->Append(absl::StrCat("user-", w), ExpectedVersion::Any(),
                         {SubjectEvent("dave", absl::StrCat(w, "-", a))})
                .status();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int w = 0; w < kWriters; ++w) EXPECT_OK(results[w]) << w;
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> streams,
                       store_->subject_keys().Streams("dave"));
  EXPECT_THAT(streams, SizeIs(kWriters));
  // Every event reads with the one stored key, through a fresh object.
  std::unique_ptr<EncryptedEventStore> reader = Another(Options(key_));
  ASSERT_NE(reader, nullptr);
  for (int w = 0; w < kWriters; ++w) {
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                         reader->ReadStream(absl::StrCat("user-", w)));
    ASSERT_THAT(read, SizeIs(kAppends));
    for (int a = 0; a < kAppends; ++a) {
      EXPECT_EQ(read[a].payload_state, PayloadState::kDecrypted);
      EXPECT_EQ(OrderOf(read[a]), absl::StrCat(w, "-", a));
    }
  }
}

TEST_P(EncryptedEventStoreTest, LongStreamsReadInPagesDecryptEveryEvent) {
  // More than one read page (256 events), with two subjects, plain events
  // and a forgotten subject, read forward, backward and from a version.
  std::vector<EventData> batch;
  for (int i = 0; i < 700; ++i) {
    const char* subject = i % 5 == 0 ? "" : i % 5 < 3 ? "erin" : "frank";
    batch.push_back(SubjectEvent(subject, absl::StrCat("o-", i)));
    if (batch.size() == 100) {
      ASSERT_OK(encrypted_->Append("ledger", ExpectedVersion::Any(), batch));
      batch.clear();
    }
  }
  ASSERT_OK(encrypted_->ForgetSubject("frank"));
  auto check = [](const RecordedEvent& e) {
    const int i = static_cast<int>(e.version) - 1;
    if (i % 5 >= 3) {
      EXPECT_TRUE(e.forgotten()) << i;
    } else {
      EXPECT_EQ(OrderOf(e), absl::StrCat("o-", i));
    }
  };
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       encrypted_->ReadStream("ledger"));
  ASSERT_THAT(read, SizeIs(700));
  for (size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].version, static_cast<int64_t>(i) + 1);
    check(read[i]);
  }
  ReadStreamOptions backward;
  backward.direction = Direction::kBackward;
  backward.from_version = 650;
  backward.max_count = 600;
  ASSERT_OK_AND_ASSIGN(read, encrypted_->ReadStream("ledger", backward));
  ASSERT_THAT(read, SizeIs(600));
  EXPECT_EQ(read.front().version, 650);
  EXPECT_EQ(read.back().version, 51);
  for (const RecordedEvent& e : read) check(e);
  // ReadStreamPages (the default over ReadStream) hands the same events.
  int64_t seen = 0;
  ASSERT_OK(encrypted_->ReadStreamPages("ledger", ReadStreamOptions(), 300,
                                        [&](std::vector<RecordedEvent> page) {
                                          for (const RecordedEvent& e : page) {
                                            EXPECT_EQ(e.version, ++seen);
                                            check(e);
                                          }
                                          return absl::OkStatus();
                                        }));
  EXPECT_EQ(seen, 700);
  // ReadAll decrypts the same.
  ReadAllOptions all;
  all.max_count = 700;
  ASSERT_OK_AND_ASSIGN(ReadAllPage page, encrypted_->ReadAll(all));
  ASSERT_THAT(page.events, SizeIs(700));
  for (const RecordedEvent& e : page.events) check(e);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, EncryptedEventStoreTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

// --- a ciphertext altered behind the store's back ---------------------------

class EncryptedDamageTest : public EncryptedEventStoreTest {};

TEST_P(EncryptedDamageTest, TamperedCiphertextIsOneDamagedEvent) {
  ASSERT_OK(encrypted_->Append(
      "user-1", ExpectedVersion::NoStream(),
      {SubjectEvent("alice", "a-1"), SubjectEvent("alice", "a-2")}));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> raw,
                       store_->ReadStream("user-1"));
  std::string altered = raw[0].payload;
  altered[30] = static_cast<char>(altered[30] ^ 1);
  ASSERT_OK(
      GetParam().overwrite_column(*store_, "user-1", 1, "payload", altered));
  // Verified checksums catch it first; without them, the AEAD tag does.
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> unverified,
                       OpenWithoutChecksumVerification(*store_));
  {
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<EncryptedEventStore> reader,
        EncryptedEventStore::Create(unverified.get(), Options(key_)));
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                         reader->ReadStream("user-1"));
    ASSERT_THAT(read, SizeIs(2));
    EXPECT_TRUE(read[0].damaged());
    EXPECT_THAT(read[0].damage,
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr("alice"), HasSubstr("authenticate"))));
    EXPECT_THAT(read[0].As<OrderPlaced>(),
                StatusIs(absl::StatusCode::kDataLoss));
    EXPECT_EQ(OrderOf(read[1]), "a-2");
    // A payload moved to another event does not authenticate either.
    ASSERT_OK(GetParam().overwrite_column(*store_, "user-1", 1, "payload",
                                          raw[1].payload));
    ASSERT_OK_AND_ASSIGN(read, reader->ReadStream("user-1"));
    EXPECT_TRUE(read[0].damaged());
    EXPECT_FALSE(read[1].damaged());
  }
  unverified.reset();
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       encrypted_->ReadStream("user-1"));
  EXPECT_TRUE(read[0].damaged());
  EXPECT_EQ(OrderOf(read[1]), "a-2");
}

INSTANTIATE_TEST_SUITE_P(RawBackends, EncryptedDamageTest,
                         ::testing::ValuesIn(RawAccessTestBackends()),
                         TestBackendName);

// --- what reaches the disk ---------------------------------------------------

TEST(EncryptedSqliteFileTest, PlaintextNeverReachesTheDatabaseFiles) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<eventstore::test::TempDir> dir,
                       eventstore::test::TempDir::Create());
  const std::string path = dir->File("events.db");
  const std::string marker = "marker-7f3a9c-personal-data";
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> inner,
                         OpenEventStore(absl::StrCat("sqlite://", path)));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EncryptedEventStore> store,
                         EncryptedEventStore::Open(
                             std::move(inner), Options(MasterKey::Generate())));
    for (int i = 0; i < 20; ++i) {
      ASSERT_OK(store->Append(
          "user-1", ExpectedVersion::Any(),
          {SubjectEvent("alice", marker), SubjectEvent("", "plain-control")}));
    }
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                         store->ReadStream("user-1"));
    EXPECT_EQ(OrderOf(read[0]), marker);
    ASSERT_OK(store->ForgetSubject("alice"));
    // Still open: the write-ahead log holds the pages too.
    std::string files;
    for (const char* suffix : {"", "-wal", "-journal"}) {
      files += eventstore::test::ReadFileBytes(path + suffix);
    }
    EXPECT_THAT(files, HasSubstr("plain-control"));
    EXPECT_THAT(files, Not(HasSubstr(marker)));
  }
  const std::string closed = eventstore::test::ReadFileBytes(path);
  EXPECT_THAT(closed, HasSubstr("plain-control"));
  EXPECT_THAT(closed, Not(HasSubstr(marker)));
}

}  // namespace
}  // namespace eventstore::crypto
