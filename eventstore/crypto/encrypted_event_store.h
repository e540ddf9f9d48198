// EncryptedEventStore: crypto-shredding over any EventStore. Events whose
// metadata names a data subject (EventMetadata.subject_id) are stored with
// their payload encrypted by that subject's own key (libsodium's
// XChaCha20-Poly1305, kPayloadEncryptionXChaCha20); each subject key is
// stored in the store's key table (EventStore::subject_keys()) wrapped by
// the application's MasterKey. Forgetting a subject deletes its key: every
// event of the subject keeps its place in the log, and reads return it with
// payload_state kForgotten (RecordedEvent::forgotten()).
//
//   EncryptionOptions options;
//   ES_ASSIGN_OR_RETURN(options.master_key,
//                       MasterKey::FromEnvironment("EVENTSTORE_MASTER_KEY"));
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<EncryptedEventStore> store,
//                       EncryptedEventStore::Open(std::move(inner), options));
//   EventData e = EventData::From(registered);
//   e.metadata.set_subject_id(user_id);     // encrypted with user_id's key
//   store->Append("user-" + user_id, ExpectedVersion::NoStream(), {e});
//   ...
//   store->ForgetSubject(user_id);           // GDPR art. 17
//
// Guarantees (docs/lifecycle.md):
// - A subject's payload is encrypted before it leaves this object; the
//   plaintext is never written to the database. Without a master key an
//   append of such an event is refused (PrepareAppend), never stored plain.
// - Reads decrypt. An event whose key is wrapped by a master key that this
//   store was not given (a wrong key) fails the read with kFailedPrecondition
//   naming the key ids; a ciphertext that does not authenticate is a damaged
//   event (kDataLoss in RecordedEvent::damage).
// - ForgetSubject is final: the subject can never get a key again
//   (SubjectKeyStore::Insert refuses it), so its old events can never be
//   read, and new events of the subject are refused (kFailedPrecondition).
// - A new subject's key, and each stream a subject's event is appended to,
//   are written to the key table in the append's own transaction
//   (AppendRequest::subject_keys): a new subject costs no extra round trip,
//   and no key is stored for an append that fails. When two writers give a
//   new subject a key at once, one append stores its key and the other is
//   encrypted again with that key and retried. snapshots() encrypts the
//   state of a snapshot of such a stream with the subject's key
//   (encrypted_snapshot_store.h has the format), so that the state's
//   plaintext never reaches the database either; snapshots of other streams
//   are stored as saved. After ForgetSubject the subject's snapshots are
//   removed, and one saved meanwhile loads as absent (nullopt), so loading
//   the aggregate replays its (forgotten) events; saving a snapshot of a
//   forgotten subject's stream stores nothing.
// - Keys unwrapped once are cached in memory (options.key_cache_size); a
//   subject forgotten through another store object or process may still be
//   readable here until its key leaves the cache: call ForgetSubject on
//   this object, or keep the cache small, when that matters.

#ifndef EVENTSTORE_CRYPTO_ENCRYPTED_EVENT_STORE_H_
#define EVENTSTORE_CRYPTO_ENCRYPTED_EVENT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "eventstore/crypto/master_key.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/subject_key_store.h"

namespace eventstore::crypto {
namespace internal {
class EncryptedSnapshotStore;
}  // namespace internal

struct EncryptionOptions {
  // Wraps new subject keys, and unwraps those it wrapped. Required.
  std::optional<MasterKey> master_key;
  // Also accepted to unwrap (during a master key rotation).
  std::vector<MasterKey> previous_keys;
  // Most unwrapped subject keys kept in memory (0: none kept).
  int64_t key_cache_size = 10000;
};

class EncryptedEventStore : public ForwardingEventStore {
 public:
  // Over `target`, which must outlive it. kInvalidArgument without a
  // master key; kFailedPrecondition when the target has no key table.
  static absl::StatusOr<std::unique_ptr<EncryptedEventStore>> Create(
      EventStore* target, EncryptionOptions options);
  // Over `target`, which it owns.
  static absl::StatusOr<std::unique_ptr<EncryptedEventStore>> Open(
      std::unique_ptr<EventStore> target, EncryptionOptions options);

  ~EncryptedEventStore() override;

  using EventStore::Append;
  using EventStore::ReadStream;
  // Encrypts the payload of each event with a subject_id (giving a nil id
  // a generated one first: the id is authenticated with the payload), then
  // appends. kFailedPrecondition naming the subject when it was forgotten,
  // or when its key is wrapped by a master key this store was not given;
  // kInvalidArgument for an event whose payload_encryption is already set.
  // Nothing is written when the call fails.
  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override;
  // As Append for each request (a request refused here fails alone).
  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests) override;
  // Read, then decrypted in place: payload_state kDecrypted (checksum
  // cleared: it covers the stored ciphertext), or kForgotten with an empty
  // payload, or a damaged event (kDataLoss) when the ciphertext does not
  // authenticate. kFailedPrecondition, failing the read, when a subject's
  // key is wrapped by a master key this store was not given (naming both
  // key ids) or is missing from the key table. Plain events pass untouched.
  // ReadStream reads the stream in pages (ReadStreamPages) and decrypts each
  // on a second thread while the next is read; ReadStreamPages is the
  // default over it (it holds the whole stream).
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override;
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override;

  // Snapshots encrypted as the header says; Save and Load look up the
  // stream's subject in the key table (SubjectOfStream) once per call.
  SnapshotStore& snapshots() override;

  // Forgets the subject for good (SubjectKeyStore::Forget) and drops its key
  // from this object's cache.
  absl::StatusOr<ForgetSubjectResult> ForgetSubject(std::string_view subject);

 private:
  class Impl;
  EncryptedEventStore(EventStore* target, std::unique_ptr<EventStore> owned,
                      std::unique_ptr<Impl> impl);

  std::unique_ptr<EventStore> owned_;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<internal::EncryptedSnapshotStore> snapshots_;
};

struct MasterKeyRotation {
  // Subject keys rewrapped with the new master key.
  int64_t rewrapped = 0;
  // Already wrapped by it.
  int64_t already_current = 0;
  // Forgotten subjects (nothing to rewrap).
  int64_t forgotten = 0;
};

// Rewraps every subject key of `store` with `new_key`, in batches, without
// touching any event. Each key must be wrapped by `new_key` or one of
// `old_keys`; otherwise kFailedPrecondition naming the key id it needs,
// after rewrapping the others. Safe to run again after an interruption, and
// while applications append (a key rewrapped concurrently is skipped).
absl::StatusOr<MasterKeyRotation> RotateMasterKey(
    EventStore& store, const std::vector<MasterKey>& old_keys,
    const MasterKey& new_key);

}  // namespace eventstore::crypto

#endif  // EVENTSTORE_CRYPTO_ENCRYPTED_EVENT_STORE_H_
