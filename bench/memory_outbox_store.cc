#include "bench/memory_outbox_store.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace eventstore::bench {

absl::Status MemoryOutboxStore::Enqueue(
    absl::Span<const OutboxMessage> messages) {
  internal::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  for (const OutboxMessage& message : messages) {
    OutboxEntry& entry = entries_.emplace_back();
    entry.id = static_cast<int64_t>(entries_.size());
    entry.message = message;
    entry.created_at = now;
  }
  return absl::OkStatus();
}

OutboxEntry* MemoryOutboxStore::Find(int64_t id) {
  if (id < 1 || id > static_cast<int64_t>(entries_.size())) return nullptr;
  return &entries_[static_cast<size_t>(id - 1)];
}

absl::StatusOr<std::vector<OutboxEntry>> MemoryOutboxStore::Pending(int limit) {
  internal::MutexLock lock(&mu_);
  std::vector<OutboxEntry> pending;
  for (size_t i = first_pending_;
       i < entries_.size() && static_cast<int>(pending.size()) < limit; ++i) {
    if (entries_[i].status == OutboxStatus::kPending) {
      pending.push_back(entries_[i]);
    }
  }
  return pending;
}

std::vector<OutboxEntry> MemoryOutboxStore::ClaimLocked(std::string_view worker,
                                                        int limit,
                                                        absl::Time now,
                                                        absl::Duration lease) {
  while (first_pending_ < entries_.size() &&
         entries_[first_pending_].status != OutboxStatus::kPending) {
    ++first_pending_;
  }
  std::vector<OutboxEntry> claimed;
  for (size_t i = first_pending_;
       i < entries_.size() && static_cast<int>(claimed.size()) < limit; ++i) {
    OutboxEntry& entry = entries_[i];
    if (entry.status != OutboxStatus::kPending || entry.lease_until > now) {
      continue;
    }
    entry.claimed_by = std::string(worker);
    entry.lease_until = now + lease;
    claimed.push_back(entry);
  }
  return claimed;
}

absl::StatusOr<std::vector<OutboxEntry>> MemoryOutboxStore::Claim(
    std::string_view worker, int limit, absl::Duration lease) {
  internal::MutexLock lock(&mu_);
  return ClaimLocked(worker, limit, absl::Now(), lease);
}

absl::Status MemoryOutboxStore::MarkAllLocked(absl::Span<const int64_t> ids,
                                              absl::Time now) {
  for (const int64_t id : ids) {
    if (Find(id) == nullptr) {
      return absl::NotFoundError(absl::StrCat("no outbox message ", id));
    }
  }
  for (const int64_t id : ids) {
    OutboxEntry& entry = *Find(id);
    if (entry.status == OutboxStatus::kPublished) continue;
    entry.status = OutboxStatus::kPublished;
    entry.published_at = now;
    entry.claimed_by.clear();
    entry.lease_until = absl::InfinitePast();
  }
  return absl::OkStatus();
}

absl::Status MemoryOutboxStore::MarkPublished(int64_t id) {
  return MarkAllPublished({id});
}

absl::Status MemoryOutboxStore::MarkAllPublished(
    absl::Span<const int64_t> ids) {
  internal::MutexLock lock(&mu_);
  return MarkAllLocked(ids, absl::Now());
}

absl::StatusOr<std::vector<OutboxEntry>>
MemoryOutboxStore::MarkPublishedAndClaim(absl::Span<const int64_t> published,
                                         std::string_view worker, int limit,
                                         absl::Duration lease) {
  internal::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  if (absl::Status marked = MarkAllLocked(published, now); !marked.ok()) {
    return marked;
  }
  return ClaimLocked(worker, limit, now, lease);
}

absl::Status MemoryOutboxStore::MarkFailed(int64_t id, std::string_view error,
                                           int32_t max_attempts) {
  internal::MutexLock lock(&mu_);
  OutboxEntry* entry = Find(id);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("no outbox message ", id));
  }
  if (entry->status != OutboxStatus::kPending) {
    return absl::FailedPreconditionError(
        absl::StrCat("outbox message ", id, " is no longer pending"));
  }
  ++entry->attempts;
  entry->last_error = std::string(error);
  entry->claimed_by.clear();
  entry->lease_until = absl::InfinitePast();
  if (entry->attempts >= max_attempts) entry->status = OutboxStatus::kFailed;
  return absl::OkStatus();
}

absl::Status MemoryOutboxStore::Release(absl::Span<const int64_t> ids,
                                        std::string_view error) {
  internal::MutexLock lock(&mu_);
  for (const int64_t id : ids) {
    OutboxEntry* entry = Find(id);
    if (entry == nullptr || entry->status != OutboxStatus::kPending) continue;
    if (!error.empty()) entry->last_error = std::string(error);
    entry->claimed_by.clear();
    entry->lease_until = absl::InfinitePast();
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MemoryOutboxStore::DeletePublishedOlderThan(
    absl::Duration) {
  return absl::UnimplementedError("the bench's memory outbox deletes nothing");
}

absl::StatusOr<OutboxStats> MemoryOutboxStore::Stats() {
  internal::MutexLock lock(&mu_);
  OutboxStats stats;
  for (const OutboxEntry& entry : entries_) {
    switch (entry.status) {
      case OutboxStatus::kPending:
        if (stats.pending++ == 0) stats.oldest_pending = entry.created_at;
        break;
      case OutboxStatus::kPublished:
        ++stats.published;
        break;
      case OutboxStatus::kFailed:
        ++stats.failed;
        break;
    }
  }
  return stats;
}

}  // namespace eventstore::bench
