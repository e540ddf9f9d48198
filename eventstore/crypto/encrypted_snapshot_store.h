// EncryptedSnapshotStore: the snapshots of an EncryptedEventStore
// (EncryptedEventStore::snapshots()). Internal to eventstore/crypto/.
//
// Save: when the key table records a data subject for the snapshot's
// stream (SubjectKeyStore::SubjectOfStream), the state is stored encrypted
// with that subject's key; otherwise the snapshot passes untouched.
//
// Stored format of an encrypted snapshot (docs/lifecycle.md):
//   type  = kEncryptedSnapshotTypePrefix + the application's type
//   state = subject length (4 bytes, big endian) || subject ||
//           nonce (24 bytes) || ciphertext and 16-byte tag
// (subject_cipher.h: XChaCha20-Poly1305 with the subject's key, associated
// data SnapshotAad(stream, schema_version, version, subject, type)). The
// prefix contains '-' and ':', which no protobuf full name does, and Save
// refuses an application type that starts with it (kInvalidArgument), so a
// plaintext snapshot can never be taken for an encrypted one. The subject is
// kept with the state so that Load decrypts with the key it was saved with.
//
// Load decrypts. A forgotten subject's snapshot loads as absent (nullopt);
// one that does not authenticate is kDataLoss naming the stream; a key
// wrapped by a master key the store was not given is kFailedPrecondition
// (AggregateRepository ignores a snapshot that fails to load and replays
// the stream). A snapshot stored without the prefix (no subject, or saved
// before the store encrypted snapshots) is returned as stored.
//
// Saving a snapshot of a forgotten subject's stream writes nothing and
// returns OK: snapshots are a cache, and its events can no longer be read.
//
// Thread-safe when the key source and the target store are.

#ifndef EVENTSTORE_CRYPTO_ENCRYPTED_SNAPSHOT_STORE_H_
#define EVENTSTORE_CRYPTO_ENCRYPTED_SNAPSHOT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/crypto/subject_cipher.h"
#include "eventstore/event_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/subject_key_store.h"

namespace eventstore::crypto::internal {

inline constexpr char kEncryptedSnapshotTypePrefix[] =
    "eventstore-encrypted-v1:";

// The subject keys of an EncryptedEventStore (its key cache).
class SnapshotKeySource {
 public:
  virtual ~SnapshotKeySource() = default;
  // The subject's key, made and stored when it has none; null when the
  // subject was forgotten.
  virtual absl::StatusOr<std::shared_ptr<const SubjectKey>> KeyUnlessForgotten(
      std::string_view subject) = 0;
  // The key to read the subject's data with; null when forgotten.
  // kDataLoss when its wrapped key is damaged, kFailedPrecondition when
  // it has no key or one wrapped by an unknown master key.
  virtual absl::StatusOr<std::shared_ptr<const SubjectKey>> KeyToRead(
      std::string_view subject) = 0;
};

class EncryptedSnapshotStore final : public SnapshotStore {
 public:
  // `target` (whose snapshots() and subject_keys() it uses) and `keys` must
  // outlive it.
  EncryptedSnapshotStore(EventStore* target, SnapshotKeySource* keys)
      : target_(target), keys_(keys) {}

  absl::Status Save(const Snapshot& snapshot) override;
  absl::StatusOr<std::optional<Snapshot>> Load(std::string_view stream,
                                               int32_t schema_version) override;
  absl::Status Delete(std::string_view stream) override;

 private:
  EventStore* const target_;
  SnapshotKeySource* const keys_;
};

}  // namespace eventstore::crypto::internal

#endif  // EVENTSTORE_CRYPTO_ENCRYPTED_SNAPSHOT_STORE_H_
