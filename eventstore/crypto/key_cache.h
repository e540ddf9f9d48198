// KeyCache: the subject keys an EncryptedEventStore has unwrapped, and the
// subjects it knows to be forgotten, so that reading many events of a
// subject unwraps its key once. Thread-safe; bounded (least recently used
// entries go first); an evicted key is wiped once no reader holds it (a
// SubjectKey wipes itself when its last shared_ptr goes).

#ifndef EVENTSTORE_CRYPTO_KEY_CACHE_H_
#define EVENTSTORE_CRYPTO_KEY_CACHE_H_

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "eventstore/crypto/subject_cipher.h"
#include "eventstore/internal/mutex.h"

namespace eventstore::crypto::internal {

// What is known of a subject: its key, or that it was forgotten (key null).
struct CachedSubject {
  std::shared_ptr<const SubjectKey> key;
  bool forgotten() const { return key == nullptr; }
};

class KeyCache {
 public:
  // Keeps at most `capacity` subjects (0: none).
  explicit KeyCache(int64_t capacity);
  KeyCache(const KeyCache&) = delete;
  KeyCache& operator=(const KeyCache&) = delete;

  // The subject's entry, nullopt when not cached.
  std::optional<CachedSubject> Find(std::string_view subject);
  // Caches the subject's key, or that it was forgotten (null key). A
  // subject cached as forgotten stays so (forgetting is final).
  void Put(std::string_view subject, std::shared_ptr<const SubjectKey> key);

  // Whether (subject, stream) was recorded in the key table by this store
  // (SubjectKeyStore::AddStream), and noting that it was: bounded too.
  bool StreamRecorded(std::string_view subject, std::string_view stream);
  void NoteStreamRecorded(std::string_view subject, std::string_view stream);

 private:
  using Lru = std::list<std::string>;
  struct Entry {
    CachedSubject subject;
    Lru::iterator lru;
  };
  static std::string StreamKey(std::string_view subject,
                               std::string_view stream);

  const int64_t capacity_;
  eventstore::internal::Mutex mu_;
  // Most recently used first.
  Lru lru_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace eventstore::crypto::internal

#endif  // EVENTSTORE_CRYPTO_KEY_CACHE_H_
