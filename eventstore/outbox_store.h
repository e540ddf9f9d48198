// OutboxStore: the queue of outbox messages and their publishing state.
//
// Messages enter it with an append (AppendRequest::outbox), or alone with
// Enqueue. A publisher claims a batch under a lease, sends it, and marks
// each message published or failed; two publishers never hold the same
// message at once (PostgreSQL: FOR UPDATE SKIP LOCKED).
//
//   ES_ASSIGN_OR_RETURN(std::vector<OutboxEntry> batch,
//                       store->outbox().Claim("worker-1", 100,
//                                             absl::Seconds(30)));
//   for (const OutboxEntry& e : batch) {
//     absl::Status sent = sink.Send(e.message);
//     if (sent.ok()) store->outbox().MarkPublished(e.id);
//     else store->outbox().MarkFailed(e.id, sent.message());
//   }

#ifndef EVENTSTORE_OUTBOX_STORE_H_
#define EVENTSTORE_OUTBOX_STORE_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "eventstore/outbox_message.h"

namespace eventstore {

enum class OutboxStatus { kPending, kPublished, kFailed };

struct OutboxEntry {
  // Increasing in enqueue order.
  int64_t id = 0;
  OutboxMessage message;
  OutboxStatus status = OutboxStatus::kPending;
  absl::Time created_at;
  // Failed sends so far.
  int32_t attempts = 0;
  // The last failure's text.
  std::string last_error;
  absl::Time published_at = absl::InfinitePast();
  // The publisher holding the lease and until when (empty / InfinitePast
  // when unclaimed).
  std::string claimed_by;
  absl::Time lease_until = absl::InfinitePast();
};

struct OutboxStats {
  int64_t pending = 0;
  int64_t published = 0;
  int64_t failed = 0;
  // created_at of the oldest pending message; InfinitePast when none.
  absl::Time oldest_pending = absl::InfinitePast();
};

// What waits to be published, for monitoring (OutboxStore::Backlog).
struct OutboxBacklog {
  // Messages in status kPending, claimed or not.
  int64_t pending = 0;
  // How long ago the first pending message in enqueue (id) order was
  // enqueued, by the database's clock; zero when none is pending.
  absl::Duration oldest_pending_age;
};

// Which messages OutboxStore::List returns, for tools (the JSON API of
// `eventstore serve`).
struct OutboxListOptions {
  // Only messages in this status; nullopt (the default): any status.
  std::optional<OutboxStatus> status;
  // Exclusive: only messages whose id is larger (for paging: the last id of
  // the page before). Default 0: from the first.
  int64_t after_id = 0;
  // Most messages returned. Default 100.
  int limit = 100;
};

class OutboxStore {
 public:
  virtual ~OutboxStore() = default;

  // Enqueues messages outside of an append, atomically.
  virtual absl::Status Enqueue(absl::Span<const OutboxMessage> messages) = 0;
  // Pending messages, oldest first, at most `limit` (claimed or not).
  virtual absl::StatusOr<std::vector<OutboxEntry>> Pending(int limit) = 0;
  // Claims up to `limit` pending messages, oldest first, whose lease is
  // free or expired, for `worker` until now + `lease`.
  virtual absl::StatusOr<std::vector<OutboxEntry>> Claim(
      std::string_view worker, int limit, absl::Duration lease) = 0;
  virtual absl::Status MarkPublished(int64_t id) = 0;
  // Marks every message of `ids` published, atomically (a publisher marks a
  // whole sent batch at once): one statement on PostgreSQL, one
  // transaction (one commit) on SQLite. A message
  // already published stays as it is; an id that names no message is
  // kNotFound and nothing is marked. This default calls MarkPublished for
  // each id (not atomically).
  virtual absl::Status MarkAllPublished(absl::Span<const int64_t> ids);
  // Marks `published` published as MarkAllPublished does, then claims up to
  // `limit` pending messages as Claim does, atomically: one transaction
  // (one commit) on SQLite, one statement on PostgreSQL. A publisher that
  // keeps a batch in flight settles the batch before it and takes the next
  // one in one write, rather than two (OutboxPublisher). A message of
  // `published` is never claimed by this call. An id that names no message
  // is kNotFound: nothing is marked and nothing claimed. Empty `published`:
  // the same as Claim. This default calls MarkAllPublished, then Claim (not
  // atomically).
  virtual absl::StatusOr<std::vector<OutboxEntry>> MarkPublishedAndClaim(
      absl::Span<const int64_t> published, std::string_view worker, int limit,
      absl::Duration lease);
  // Records a failed send: counts the attempt, keeps the error, frees the
  // lease. After `max_attempts` attempts the message becomes kFailed and is
  // no longer claimed; before, it stays pending for a later retry.
  virtual absl::Status MarkFailed(int64_t id, std::string_view error,
                                  int32_t max_attempts) = 0;
  // Gives claimed messages back without counting an attempt: frees their
  // leases and keeps `error` as their last error; they stay pending and may
  // be claimed again at once. For sends that failed because the receiver
  // could not be reached (a broker down or restarting), which say nothing
  // about the messages: an outage of any length gives none of them up; and
  // for claimed messages a publisher did not send (it was stopped), with an
  // empty `error`, which keeps each message's last error as it was. A
  // message that is not pending is left as it is. This default answers
  // kUnimplemented (the publisher then records a failed attempt); the
  // backends override it.
  virtual absl::Status Release(absl::Span<const int64_t> ids,
                               std::string_view error);
  // Deletes published messages published more than `age` ago; returns how
  // many.
  virtual absl::StatusOr<int64_t> DeletePublishedOlderThan(
      absl::Duration age) = 0;
  virtual absl::StatusOr<OutboxStats> Stats() = 0;
  // The pending messages: how many, and the age of the first one. Unlike
  // Stats(), reads only pending rows, through the index of pending
  // messages (its cost grows with the backlog, not with the messages
  // published), so that a publisher may call it after its polls. This
  // default derives it from Stats(); the backends override it.
  virtual absl::StatusOr<OutboxBacklog> Backlog();
  // Messages in id (enqueue) order that pass `options`, whatever their
  // status, claimed or not. kInvalidArgument for a negative limit. This
  // default answers kUnimplemented; the backends override it.
  virtual absl::StatusOr<std::vector<OutboxEntry>> List(
      const OutboxListOptions& options);
  // Gives a failed message (kFailed: given up after the publisher's
  // attempts) another chance, after its cause was fixed: it becomes
  // pending again with no attempts counted, no lease and its last error
  // kept, and is claimed like a new one (in its id order). Atomic: one
  // statement on PostgreSQL, one transaction on SQLite. kNotFound when no
  // message has `id`; kFailedPrecondition naming its status when it is not
  // kFailed (nothing changes). This default answers kUnimplemented; the
  // backends override it.
  virtual absl::Status Retry(int64_t id);
};

inline absl::StatusOr<OutboxBacklog> OutboxStore::Backlog() {
  absl::StatusOr<OutboxStats> stats = Stats();
  if (!stats.ok()) return stats.status();
  OutboxBacklog backlog;
  backlog.pending = stats->pending;
  if (stats->pending > 0 && stats->oldest_pending != absl::InfinitePast()) {
    backlog.oldest_pending_age =
        std::max(absl::ZeroDuration(), absl::Now() - stats->oldest_pending);
  }
  return backlog;
}

inline absl::Status OutboxStore::MarkAllPublished(
    absl::Span<const int64_t> ids) {
  for (const int64_t id : ids) {
    absl::Status marked = MarkPublished(id);
    if (!marked.ok()) return marked;
  }
  return absl::OkStatus();
}

inline absl::StatusOr<std::vector<OutboxEntry>>
OutboxStore::MarkPublishedAndClaim(absl::Span<const int64_t> published,
                                   std::string_view worker, int limit,
                                   absl::Duration lease) {
  absl::Status marked = MarkAllPublished(published);
  if (!marked.ok()) return marked;
  return Claim(worker, limit, lease);
}

inline absl::Status OutboxStore::Release(absl::Span<const int64_t>,
                                         std::string_view) {
  return absl::UnimplementedError("this outbox store cannot release messages");
}

inline absl::StatusOr<std::vector<OutboxEntry>> OutboxStore::List(
    const OutboxListOptions&) {
  return absl::UnimplementedError("this outbox store cannot list messages");
}

inline absl::Status OutboxStore::Retry(int64_t) {
  return absl::UnimplementedError("this outbox store cannot retry messages");
}

}  // namespace eventstore

#endif  // EVENTSTORE_OUTBOX_STORE_H_
