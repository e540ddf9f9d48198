// Helpers of the crypto tests: events with a data subject, encryption
// options, and a store whose key table counts its calls.

#ifndef EVENTSTORE_TESTS_CRYPTO_CRYPTO_TEST_SUPPORT_H_
#define EVENTSTORE_TESTS_CRYPTO_CRYPTO_TEST_SUPPORT_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eventstore/crypto/encrypted_event_store.h"
#include "eventstore/crypto/master_key.h"
#include "eventstore/event_data.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/subject_key_store.h"
#include "eventstore/test/v1/events.pb.h"

namespace eventstore::crypto::test {

// An OrderPlaced for `order_id`, about data subject `subject` (none when
// empty).
inline EventData SubjectEvent(const std::string& subject,
                              const std::string& order_id) {
  eventstore::test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  v1::EventMetadata metadata;
  metadata.set_subject_id(subject);
  return EventData::From(placed, metadata);
}

inline EncryptionOptions Options(const MasterKey& key,
                                 std::vector<MasterKey> previous = {},
                                 int64_t cache_size = 10000) {
  EncryptionOptions options;
  options.master_key = key;
  options.previous_keys = std::move(previous);
  options.key_cache_size = cache_size;
  return options;
}

// A SubjectKeyStore that forwards to another and counts Find, AddStream and
// SubjectOfStream.
class CountingKeyStore : public SubjectKeyStore {
 public:
  explicit CountingKeyStore(SubjectKeyStore* target) : target_(target) {}

  std::atomic<int64_t> finds{0};
  std::atomic<int64_t> add_streams{0};
  std::atomic<int64_t> subject_of_streams{0};

  absl::StatusOr<std::optional<SubjectKeyRecord>> Find(
      std::string_view subject) override {
    ++finds;
    return target_->Find(subject);
  }
  absl::StatusOr<SubjectKeyRecord> Insert(
      std::string_view subject, std::string_view wrapped_key,
      std::string_view master_key_id) override {
    return target_->Insert(subject, wrapped_key, master_key_id);
  }
  absl::Status AddStream(std::string_view subject,
                         std::string_view stream) override {
    ++add_streams;
    return target_->AddStream(subject, stream);
  }
  absl::StatusOr<std::vector<std::string>> Streams(
      std::string_view subject) override {
    return target_->Streams(subject);
  }
  absl::StatusOr<std::optional<std::string>> SubjectOfStream(
      std::string_view stream) override {
    ++subject_of_streams;
    return target_->SubjectOfStream(stream);
  }
  absl::StatusOr<ForgetSubjectResult> Forget(
      std::string_view subject) override {
    return target_->Forget(subject);
  }
  absl::StatusOr<std::vector<SubjectKeyRecord>> List(std::string_view after,
                                                     int64_t limit) override {
    return target_->List(after, limit);
  }
  absl::StatusOr<bool> Rewrap(std::string_view subject,
                              std::string_view expected_master_key_id,
                              std::string_view wrapped_key,
                              std::string_view master_key_id) override {
    return target_->Rewrap(subject, expected_master_key_id, wrapped_key,
                           master_key_id);
  }
  absl::StatusOr<int64_t> Put(
      const std::vector<SubjectKeyRecord>& records) override {
    return target_->Put(records);
  }

 private:
  SubjectKeyStore* const target_;
};

// `target` with its key table behind a CountingKeyStore.
class CountingStore : public ForwardingEventStore {
 public:
  explicit CountingStore(EventStore* target)
      : ForwardingEventStore(target), keys_(&target->subject_keys()) {}
  SubjectKeyStore& subject_keys() override { return keys_; }
  CountingKeyStore& keys() { return keys_; }

  // Counts the key table rows appends carry (AppendRequest::subject_keys):
  // each records a subject's stream, and some store a new key.
  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    for (const SubjectKeyWrite& write : request.subject_keys) {
      ++stream_records;
      if (!write.wrapped_key.empty()) ++key_writes;
    }
    return ForwardingEventStore::Append(request);
  }
  std::atomic<int64_t> stream_records{0};
  std::atomic<int64_t> key_writes{0};

 private:
  CountingKeyStore keys_;
};

}  // namespace eventstore::crypto::test

#endif  // EVENTSTORE_TESTS_CRYPTO_CRYPTO_TEST_SUPPORT_H_
