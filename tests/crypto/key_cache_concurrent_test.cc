// The key cache under many threads (run under ThreadSanitizer: the names
// contain "Concurrent"): the cache alone, and an EncryptedEventStore with a
// cache smaller than its subjects, written, read and forgotten from several
// threads at once.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "eventstore/crypto/encrypted_event_store.h"
#include "eventstore/crypto/key_cache.h"
#include "eventstore/crypto/master_key.h"
#include "eventstore/crypto/subject_cipher.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/crypto/crypto_test_support.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore::crypto {
namespace {

using ::eventstore::crypto::internal::KeyCache;
using ::eventstore::crypto::internal::SubjectKey;
using ::eventstore::crypto::test::Options;
using ::eventstore::crypto::test::SubjectEvent;
using ::eventstore::test::AllTestBackends;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::v1::OrderPlaced;

TEST(KeyCacheTest, EvictsLeastRecentlyUsedAndForgottenStaysForgotten) {
  KeyCache cache(2);
  auto a = SubjectKey::Generate();
  cache.Put("a", a);
  cache.Put("b", SubjectKey::Generate());
  ASSERT_TRUE(cache.Find("a").has_value());  // a is now the most recent
  cache.Put("c", SubjectKey::Generate());
  EXPECT_FALSE(cache.Find("b").has_value());
  EXPECT_EQ(cache.Find("a")->key, a);
  cache.Put("a", nullptr);
  EXPECT_TRUE(cache.Find("a")->forgotten());
  cache.Put("a", SubjectKey::Generate());  // a stale reader's key
  EXPECT_TRUE(cache.Find("a")->forgotten());

  KeyCache none(0);
  none.Put("a", a);
  EXPECT_FALSE(none.Find("a").has_value());
}

TEST(KeyCacheConcurrentTest, PutFindAndEvictFromManyThreads) {
  KeyCache cache(4);
  std::vector<std::thread> threads;
  std::atomic<int> hits{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string subject = absl::StrCat("s-", (i * 7 + t) % 11);
        if (std::optional<internal::CachedSubject> found =
                cache.Find(subject)) {
          // An entry found stays usable even when evicted meanwhile.
          if (found->key != nullptr && found->key->data()[0] == 0 &&
              found->key->data()[1] == 0) {
            ++hits;  // touch the bytes
          }
        } else {
          cache.Put(subject, i % 50 == 0 ? nullptr : SubjectKey::Generate());
        }
        if (!cache.StreamRecorded(subject, "stream")) {
          cache.NoteStreamRecorded(subject, "stream");
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_GE(hits.load(), 0);
  int cached = 0;
  for (int s = 0; s < 11; ++s) {
    if (cache.Find(absl::StrCat("s-", s)).has_value()) ++cached;
  }
  EXPECT_LE(cached, 4);
}

class EncryptedStoreConcurrentTest : public eventstore::test::StoreTest {};

TEST_P(EncryptedStoreConcurrentTest, ThreadsShareASmallCache) {
  const MasterKey key = MasterKey::Generate();
  // 3 cached keys for 12 subjects: keys are evicted while other threads use
  // them.
  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<EncryptedEventStore> store,
      EncryptedEventStore::Create(store_.get(), Options(key, {}, 3)));
  ASSERT_OK(store->Append("doomed", ExpectedVersion::NoStream(),
                          {SubjectEvent("doomed", "d-0")}));
  constexpr int kThreads = 4;
  constexpr int kRounds = 15;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string stream = absl::StrCat("thread-", t);
      for (int i = 0; i < kRounds; ++i) {
        const std::string subject = absl::StrCat("s-", (i + 3 * t) % 12);
        EXPECT_OK(store->Append(stream, ExpectedVersion::Any(),
                                {SubjectEvent(subject, absl::StrCat(t, "/", i)),
                                 SubjectEvent("", "plain")}));
        absl::StatusOr<std::vector<RecordedEvent>> read =
            store->ReadStream(stream);
        ASSERT_OK(read);
        ASSERT_EQ(read->size(), static_cast<size_t>(2 * (i + 1)));
        for (int j = 0; j <= i; ++j) {
          absl::StatusOr<OrderPlaced> placed =
              (*read)[static_cast<size_t>(2 * j)].As<OrderPlaced>();
          ASSERT_OK(placed);
          EXPECT_EQ(placed->order_id(), absl::StrCat(t, "/", j));
        }
        absl::StatusOr<std::vector<RecordedEvent>> doomed =
            store->ReadStream("doomed");
        ASSERT_OK(doomed);
        EXPECT_TRUE((*doomed)[0].forgotten() ||
                    (*doomed)[0].payload_state == PayloadState::kDecrypted);
        if (t == 0 && i == kRounds / 2) {
          EXPECT_OK(store->ForgetSubject("doomed"));
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> doomed,
                       store->ReadStream("doomed"));
  EXPECT_TRUE(doomed[0].forgotten());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, EncryptedStoreConcurrentTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore::crypto
