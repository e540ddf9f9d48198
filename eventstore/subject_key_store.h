// SubjectKeyStore: the key table of crypto-shredding, a repository over the
// store's own database (EventStore::subject_keys()).
//
// Each data subject (EventMetadata.subject_id) has one data key, stored
// here only wrapped (encrypted) with the application's master key; this
// repository never sees a key in the clear and does no cryptography (that
// is eventstore/crypto/, over libsodium). Forgetting a subject deletes its
// wrapped key for good and leaves a marker, so that the subject can never
// get a key again: its events stay unreadable.
//
// Tables (schema version 6, both backends):
//   subject_keys    (subject PK, wrapped_key NULL once forgotten,
//                    master_key_id NULL once forgotten, created_at,
//                    forgotten_at NULL until forgotten)
//   subject_streams (subject, stream, PK (subject, stream)): the streams
//                    that hold a subject's events, so that forgetting it
//                    removes their snapshots.

#ifndef EVENTSTORE_SUBJECT_KEY_STORE_H_
#define EVENTSTORE_SUBJECT_KEY_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace eventstore {

struct SubjectKeyRecord {
  std::string subject;
  // The data key encrypted with the master key; empty once forgotten.
  std::string wrapped_key;
  // Which master key wrapped it (MasterKey::id()); empty once forgotten.
  std::string master_key_id;
  absl::Time created_at;
  // Set once the subject was forgotten.
  std::optional<absl::Time> forgotten_at;

  bool forgotten() const { return forgotten_at.has_value(); }
};

struct ForgetSubjectResult {
  // False when the subject was forgotten already (nothing changed).
  bool forgotten_now = false;
  // Snapshots removed, of the streams that hold the subject's events.
  int64_t snapshots_removed = 0;
  // Those streams.
  std::vector<std::string> streams;
};

// A data subject's key table rows that an append writes in its own
// transaction (AppendRequest::subject_keys), so that a new subject's key,
// the record of its stream and the events it encrypts commit together.
// Written by crypto::EncryptedEventStore; applications do not set it.
struct SubjectKeyWrite {
  std::string_view subject;
  // The subject's new key (wrapped) and the master key that wrapped it, to
  // be stored as Insert would. The append then commits only if this key is
  // the subject's stored one afterwards: when the subject already has
  // another record (another writer stored a key first, or it was
  // forgotten), nothing is written and the append fails with
  // SubjectKeyConflictError. Empty: the subject's key is known to be stored
  // already; only its stream is recorded.
  std::string_view wrapped_key;
  std::string_view master_key_id;
};

// The refusal of an append whose SubjectKeyWrite carried a key that is not
// the subject's stored one (kAborted naming the subject): the caller reads
// the stored record (Find) and tries again with it.
absl::Status SubjectKeyConflictError(std::string_view subject);
bool IsSubjectKeyConflict(const absl::Status& status);

class SubjectKeyStore {
 public:
  virtual ~SubjectKeyStore() = default;

  // The subject's record (a forgotten one included), nullopt when it never
  // had a key.
  virtual absl::StatusOr<std::optional<SubjectKeyRecord>> Find(
      std::string_view subject) = 0;

  // Stores `wrapped_key` for the subject unless it has a record already,
  // and returns the record that is stored: the new one, or the existing
  // one when another writer stored a key first (the caller then uses that
  // key). A forgotten subject is refused with kFailedPrecondition ("was
  // forgotten"): it can never get a key again. kInvalidArgument for an
  // empty subject, key or master key id.
  virtual absl::StatusOr<SubjectKeyRecord> Insert(
      std::string_view subject, std::string_view wrapped_key,
      std::string_view master_key_id) = 0;

  // Records that `stream` holds events of the subject (idempotent).
  virtual absl::Status AddStream(std::string_view subject,
                                 std::string_view stream) = 0;

  // The streams recorded for the subject, in name order.
  virtual absl::StatusOr<std::vector<std::string>> Streams(
      std::string_view subject) = 0;

  // The subject recorded for `stream` (AddStream), nullopt when none. When
  // several subjects were recorded for one stream, the first in byte order
  // of their ids. kInvalidArgument for an invalid stream name.
  virtual absl::StatusOr<std::optional<std::string>> SubjectOfStream(
      std::string_view stream) = 0;

  // In one transaction: deletes the subject's wrapped key (keeping the
  // record as forgotten) and the snapshots of its streams. A subject that
  // never had a key gets a forgotten record too, so that it can never get
  // one. Forgetting again changes no record (forgotten_now false) but
  // still removes the snapshots of the subject's streams, should any have
  // been saved since.
  virtual absl::StatusOr<ForgetSubjectResult> Forget(
      std::string_view subject) = 0;

  // Up to `limit` records with subject > `after`, in subject order
  // (forgotten ones included): for master key rotation and export.
  virtual absl::StatusOr<std::vector<SubjectKeyRecord>> List(
      std::string_view after, int64_t limit) = 0;

  // Replaces the subject's wrapped key when it is still wrapped by
  // `expected_master_key_id` (a compare-and-set, for rotation). Returns
  // false, changing nothing, when it is not (rewrapped by someone else, or
  // forgotten meanwhile).
  virtual absl::StatusOr<bool> Rewrap(std::string_view subject,
                                      std::string_view expected_master_key_id,
                                      std::string_view wrapped_key,
                                      std::string_view master_key_id) = 0;

  // Writes `records` exactly as given (forgotten ones included), keeping a
  // record already stored for the same subject unless it is to become
  // forgotten; for migration and import with --with-keys. Returns how many
  // rows changed.
  virtual absl::StatusOr<int64_t> Put(
      const std::vector<SubjectKeyRecord>& records) = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_SUBJECT_KEY_STORE_H_
