#include "eventstore/crypto/key_cache.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace eventstore::crypto::internal {

KeyCache::KeyCache(int64_t capacity) : capacity_(capacity < 0 ? 0 : capacity) {}

std::optional<CachedSubject> KeyCache::Find(std::string_view subject) {
  eventstore::internal::MutexLock lock(&mu_);
  auto it = entries_.find(absl::string_view(subject.data(), subject.size()));
  if (it == entries_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.subject;
}

void KeyCache::Put(std::string_view subject,
                   std::shared_ptr<const SubjectKey> key) {
  if (capacity_ == 0) return;
  // Keys evicted here are released after the lock (a wipe is cheap, but
  // need not hold the lock).
  std::shared_ptr<const SubjectKey> released;
  eventstore::internal::MutexLock lock(&mu_);
  auto it = entries_.find(absl::string_view(subject.data(), subject.size()));
  if (it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    if (!it->second.subject.forgotten()) {
      released = std::exchange(it->second.subject.key, std::move(key));
    }
    return;
  }
  if (static_cast<int64_t>(entries_.size()) >= capacity_) {
    auto last = entries_.find(lru_.back());
    released = std::move(last->second.subject.key);
    entries_.erase(last);
    lru_.pop_back();
  }
  lru_.emplace_front(subject);
  entries_.emplace(std::string(subject),
                   Entry{CachedSubject{std::move(key)}, lru_.begin()});
}

std::string KeyCache::StreamKey(std::string_view subject,
                                std::string_view stream) {
  // Length-prefixed, so that the pair is unambiguous.
  return absl::StrCat(subject.size(), ":", std::string(subject),
                      std::string(stream));
}

bool KeyCache::StreamRecorded(std::string_view subject,
                              std::string_view stream) {
  const std::string key = StreamKey(subject, stream);
  eventstore::internal::MutexLock lock(&mu_);
  return streams_.contains(key);
}

void KeyCache::NoteStreamRecorded(std::string_view subject,
                                  std::string_view stream) {
  std::string key = StreamKey(subject, stream);
  eventstore::internal::MutexLock lock(&mu_);
  // Bounded crudely: forgetting what was recorded only costs a redundant
  // (idempotent) AddStream later.
  if (static_cast<int64_t>(streams_.size()) >= capacity_ + 1024) {
    streams_.clear();
  }
  streams_.insert(std::move(key));
}

}  // namespace eventstore::crypto::internal
