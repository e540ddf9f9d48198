// EncryptedEventStore::snapshots() on every backend
// (tests/support/test_backends.h): the state of a snapshot of a stream that
// holds a data subject's events is stored encrypted with the subject's key;
// other snapshots pass untouched; after ForgetSubject a snapshot loads as
// absent and the aggregate still loads; a state moved or altered does not
// load; the plaintext never reaches the SQLite files.

#include "eventstore/crypto/encrypted_snapshot_store.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/aggregate_repository.h"
#include "eventstore/crypto/encrypted_event_store.h"
#include "eventstore/crypto/master_key.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/test/v1/bank.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/aggregates/bank_account.h"
#include "tests/crypto/crypto_test_support.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_backends.h"

namespace eventstore::crypto {
namespace {

using ::eventstore::crypto::internal::kEncryptedSnapshotTypePrefix;
using ::eventstore::crypto::test::CountingStore;
using ::eventstore::crypto::test::Options;
using ::eventstore::crypto::test::SubjectEvent;
using ::eventstore::test::AllTestBackends;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackendName;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kStateType[] = "eventstore.test.v1.AccountState";

Snapshot MakeSnapshot(const std::string& stream, int64_t version,
                      const std::string& state) {
  Snapshot s;
  s.stream = stream;
  s.version = version;
  s.type = kStateType;
  s.state = state;
  s.schema_version = 1;
  s.taken_at = absl::FromUnixMicros(1700000000000000);
  return s;
}

// A snapshotting account whose stream may also hold events of other types
// (the OrderPlaced of a data subject that records the stream for it).
class SubjectAccount : public eventstore::test::SnapshotAccount {
 public:
  explicit SubjectAccount(std::string id) : SnapshotAccount(std::move(id)) {
    IgnoreUnknownEventTypes();
  }
};

class EncryptedSnapshotTest : public eventstore::test::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(
        encrypted_, EncryptedEventStore::Create(store_.get(), Options(key_)));
  }

  // Appends an event of `subject` to `stream`, which records the stream
  // for the subject.
  void AppendSubjectEvent(const std::string& stream,
                          const std::string& subject) {
    ASSERT_OK(
        encrypted_->Append(stream, ExpectedVersion::Any(),
                           {SubjectEvent(subject, "order-of-" + subject)}));
  }

  // The snapshot as the inner store holds it.
  std::optional<Snapshot> Stored(const std::string& stream) {
    absl::StatusOr<std::optional<Snapshot>> s =
        store_->snapshots().Load(stream, 1);
    EXPECT_OK(s);
    return s.ok() ? *s : std::nullopt;
  }

  MasterKey key_ = MasterKey::Generate();
  std::unique_ptr<EncryptedEventStore> encrypted_;
};

TEST_P(EncryptedSnapshotTest, SubjectStreamSnapshotIsStoredEncrypted) {
  AppendSubjectEvent("user-1", "alice");
  const std::string state = "snapshot-state-of-alice-4c1d";
  ASSERT_OK(encrypted_->snapshots().Save(MakeSnapshot("user-1", 1, state)));

  const std::optional<Snapshot> stored = Stored("user-1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->type,
            absl::StrCat(kEncryptedSnapshotTypePrefix, kStateType));
  EXPECT_THAT(stored->state, Not(HasSubstr(state)));
  EXPECT_GE(stored->state.size(), 4 + 5 + 24 + state.size() + 16);
  EXPECT_EQ(stored->version, 1);

  // Through this object and a fresh one (nothing cached).
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EncryptedEventStore> fresh,
      EncryptedEventStore::Create(store_.get(), Options(key_)));
  for (EncryptedEventStore* reader : {encrypted_.get(), fresh.get()}) {
    ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> loaded,
                         reader->snapshots().Load("user-1", 1));
    ASSERT_TRUE(loaded.has_value());
    EXPECT_EQ(loaded->type, kStateType);
    EXPECT_EQ(loaded->state, state);
    EXPECT_EQ(loaded->version, 1);
    EXPECT_EQ(loaded->schema_version, 1);
    EXPECT_EQ(loaded->stream, "user-1");
  }
  // Another schema version has none; Delete goes through.
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> other,
                       encrypted_->snapshots().Load("user-1", 2));
  EXPECT_FALSE(other.has_value());
  ASSERT_OK(encrypted_->snapshots().Delete("user-1"));
  EXPECT_FALSE(Stored("user-1").has_value());
}

TEST_P(EncryptedSnapshotTest, SnapshotWithoutSubjectPassesUntouched) {
  ASSERT_OK(encrypted_->Append("plain-1", ExpectedVersion::NoStream(),
                               {SubjectEvent("", "plain-order")}));
  ASSERT_OK(
      encrypted_->snapshots().Save(MakeSnapshot("plain-1", 1, "plain-state")));
  const std::optional<Snapshot> stored = Stored("plain-1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->type, kStateType);
  EXPECT_EQ(stored->state, "plain-state");
  // A plaintext snapshot saved through the inner store (before encryption
  // was on) loads as it is.
  ASSERT_OK(store_->snapshots().Save(MakeSnapshot("old-1", 2, "old-state")));
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> loaded,
                       encrypted_->snapshots().Load("old-1", 1));
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->state, "old-state");
}

TEST_P(EncryptedSnapshotTest, TheEncryptedTypePrefixIsRefused) {
  Snapshot s = MakeSnapshot("plain-1", 1, "state");
  s.type = absl::StrCat(kEncryptedSnapshotTypePrefix, kStateType);
  EXPECT_THAT(
      encrypted_->snapshots().Save(s),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("type"),
                     HasSubstr(std::string(kEncryptedSnapshotTypePrefix)))));
  EXPECT_FALSE(Stored("plain-1").has_value());
}

TEST_P(EncryptedSnapshotTest, MovedOrAlteredStateDoesNotLoad) {
  AppendSubjectEvent("user-1", "alice");
  AppendSubjectEvent("user-2", "alice");
  ASSERT_OK(encrypted_->snapshots().Save(MakeSnapshot("user-1", 1, "s1")));
  std::optional<Snapshot> stored = Stored("user-1");
  ASSERT_TRUE(stored.has_value());

  // To another stream of the same subject.
  Snapshot moved = *stored;
  moved.stream = "user-2";
  ASSERT_OK(store_->snapshots().Save(moved));
  EXPECT_THAT(encrypted_->snapshots().Load("user-2", 1),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("user-2"), HasSubstr("authenticate"))));
  // To another version of the same stream.
  Snapshot relabelled = *stored;
  relabelled.version = 7;
  ASSERT_OK(store_->snapshots().Save(relabelled));
  EXPECT_THAT(encrypted_->snapshots().Load("user-1", 1),
              StatusIs(absl::StatusCode::kDataLoss));
  // A flipped byte, and a truncated state.
  Snapshot flipped = *stored;
  flipped.version = 8;
  flipped.state.back() = static_cast<char>(flipped.state.back() ^ 1);
  ASSERT_OK(store_->snapshots().Save(flipped));
  EXPECT_THAT(encrypted_->snapshots().Load("user-1", 1),
              StatusIs(absl::StatusCode::kDataLoss));
  Snapshot truncated = *stored;
  truncated.version = 9;
  truncated.state = truncated.state.substr(0, 2);
  ASSERT_OK(store_->snapshots().Save(truncated));
  EXPECT_THAT(encrypted_->snapshots().Load("user-1", 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
}

TEST_P(EncryptedSnapshotTest, AggregateLoadsAfterTheSubjectIsForgotten) {
  AppendSubjectEvent("account-a1", "alice");
  AggregateRepositoryOptions options;
  options.snapshot_every = 2;
  std::vector<std::string> snapshot_errors;
  options.on_snapshot_error = [&](std::string_view stream,
                                  const absl::Status& error) {
    snapshot_errors.push_back(
        absl::StrCat(std::string(stream), ": ", error.ToString()));
  };
  AggregateRepository<SubjectAccount> accounts(*encrypted_, options);
  ASSERT_OK(accounts
                .Update("account-a1",
                        [](SubjectAccount& a) -> absl::Status {
                          if (absl::Status s = a.Open("owner"); !s.ok()) {
                            return s;
                          }
                          return a.Deposit(4242);
                        })
                .status());
  // Version 3 passed 2: a snapshot was taken, encrypted.
  std::optional<Snapshot> stored = Stored("account-a1");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->version, 3);
  EXPECT_THAT(stored->type,
              StartsWith(std::string(kEncryptedSnapshotTypePrefix)));
  eventstore::test::v1::AccountState plain_state;
  plain_state.set_owner("owner");
  plain_state.set_balance(4242);
  plain_state.set_transactions(1);
  EXPECT_THAT(stored->state, Not(HasSubstr(plain_state.SerializeAsString())));
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SubjectAccount> loaded,
                         accounts.Load("account-a1"));
    EXPECT_TRUE(loaded->restored());
    EXPECT_EQ(loaded->state().balance(), 4242);
    EXPECT_EQ(loaded->version(), 3);
  }

  ASSERT_OK(encrypted_->ForgetSubject("alice"));
  EXPECT_FALSE(Stored("account-a1").has_value());
  // A snapshot saved while the subject was being forgotten (written back
  // here behind the store's back) loads as absent, not as an error.
  ASSERT_OK(store_->snapshots().Save(*stored));
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EncryptedEventStore> fresh,
      EncryptedEventStore::Create(store_.get(), Options(key_)));
  for (EncryptedEventStore* reader : {encrypted_.get(), fresh.get()}) {
    ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> loaded,
                         reader->snapshots().Load("account-a1", 1));
    EXPECT_FALSE(loaded.has_value());
    AggregateRepository<SubjectAccount> repo(*reader, options);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<SubjectAccount> account,
                         repo.Load("account-a1"));
    EXPECT_FALSE(account->restored());
    EXPECT_EQ(account->version(), 3);
    EXPECT_EQ(account->state().balance(), 4242);
  }
  ASSERT_OK(store_->snapshots().Delete("account-a1"));

  // Saving the aggregate again: its snapshot is not stored (the subject is
  // forgotten), and that is no error.
  ASSERT_OK(
      accounts
          .Update("account-a1", [](SubjectAccount& a) { return a.Deposit(1); })
          .status());
  EXPECT_FALSE(Stored("account-a1").has_value());
  ASSERT_OK(encrypted_->snapshots().Save(MakeSnapshot("account-a1", 9, "x")));
  EXPECT_FALSE(Stored("account-a1").has_value());
  EXPECT_THAT(snapshot_errors, ::testing::IsEmpty());
}

TEST_P(EncryptedSnapshotTest, SaveLooksUpTheSubjectLoadDoesNot) {
  CountingStore counting(store_.get());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EncryptedEventStore> store,
                       EncryptedEventStore::Create(&counting, Options(key_)));
  ASSERT_OK(store->Append("user-1", ExpectedVersion::NoStream(),
                          {SubjectEvent("alice", "a-1")}));
  ASSERT_OK(store->snapshots().Save(MakeSnapshot("user-1", 1, "s1")));
  EXPECT_EQ(counting.keys().subject_of_streams, 1);
  const int64_t finds = counting.keys().finds;
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> loaded,
                       store->snapshots().Load("user-1", 1));
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->state, "s1");
  // The subject is read from the stored snapshot, its key from the cache.
  EXPECT_EQ(counting.keys().subject_of_streams, 1);
  EXPECT_EQ(counting.keys().finds, finds);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, EncryptedSnapshotTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

// --- what reaches the disk ---------------------------------------------------

TEST(EncryptedSqliteSnapshotFileTest, PlaintextStateNeverReachesTheFiles) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<eventstore::test::TempDir> dir,
                       eventstore::test::TempDir::Create());
  const std::string path = dir->File("events.db");
  const std::string marker = "snapshot-marker-91be-personal-data";
  const auto files_hold = [&path]() {
    std::string files;
    for (const char* suffix : {"", "-wal", "-journal"}) {
      files += eventstore::test::ReadFileBytes(path + suffix);
    }
    return files;
  };
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> inner,
                         OpenEventStore(absl::StrCat("sqlite://", path)));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EncryptedEventStore> store,
                         EncryptedEventStore::Open(
                             std::move(inner), Options(MasterKey::Generate())));
    ASSERT_OK(store->Append("user-1", ExpectedVersion::NoStream(),
                            {SubjectEvent("alice", "a-1")}));
    for (int i = 1; i <= 20; ++i) {
      ASSERT_OK(store->snapshots().Save(
          MakeSnapshot("user-1", i, absl::StrCat(marker, "-", i))));
      ASSERT_OK(store->snapshots().Save(
          MakeSnapshot("plain-1", i, "plain-snapshot-control")));
    }
    ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> loaded,
                         store->snapshots().Load("user-1", 1));
    ASSERT_TRUE(loaded.has_value());
    EXPECT_EQ(loaded->state, absl::StrCat(marker, "-20"));
    // Before and after forgetting, with the store open (the write-ahead log
    // holds the pages too).
    std::string files = files_hold();
    EXPECT_THAT(files, HasSubstr("plain-snapshot-control"));
    EXPECT_THAT(files, Not(HasSubstr(marker)));
    ASSERT_OK(store->ForgetSubject("alice"));
    files = files_hold();
    EXPECT_THAT(files, HasSubstr("plain-snapshot-control"));
    EXPECT_THAT(files, Not(HasSubstr(marker)));
  }
  const std::string closed = eventstore::test::ReadFileBytes(path);
  EXPECT_THAT(closed, HasSubstr("plain-snapshot-control"));
  EXPECT_THAT(closed, Not(HasSubstr(marker)));
}

}  // namespace
}  // namespace eventstore::crypto
