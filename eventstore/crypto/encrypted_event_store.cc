#include "eventstore/crypto/encrypted_event_store.h"

#include <deque>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "eventstore/crypto/encrypted_snapshot_store.h"
#include "eventstore/crypto/key_cache.h"
#include "eventstore/crypto/payload_cipher.h"
#include "eventstore/crypto/pipelined_decryption.h"
#include "eventstore/crypto/subject_cipher.h"
#include "eventstore/internal/event_checksum.h"
#include "eventstore/status_macros.h"

namespace eventstore::crypto {
namespace {

using internal::CachedSubject;
using internal::KeyCache;
using internal::SubjectKey;

absl::Status ForgottenSubjectError(std::string_view subject) {
  return absl::FailedPreconditionError(absl::StrCat(
      "data subject '", std::string(subject),
      "' was forgotten (crypto-shredded): no event of it can be appended "
      "any more"));
}

bool HasSubjectOrEncryption(absl::Span<const EventData> events) {
  for (const EventData& e : events) {
    if (!e.metadata.subject_id().empty() ||
        !e.metadata.payload_encryption().empty()) {
      return true;
    }
  }
  return false;
}

bool HasEncrypted(const std::vector<RecordedEvent>& events) {
  for (const RecordedEvent& e : events) {
    if (!e.metadata.payload_encryption().empty()) return true;
  }
  return false;
}

}  // namespace

class EncryptedEventStore::Impl final : public internal::SnapshotKeySource {
 public:
  // REQUIRES: options.master_key is set.
  Impl(EventStore* target, const EncryptionOptions& options)
      : target_(target),
        master_(*options.master_key),
        previous_(options.previous_keys),
        cache_(options.key_cache_size) {}

  // How a subject's events read.
  struct ReadKey {
    std::shared_ptr<const SubjectKey> key;  // null: forgotten or damaged
    absl::Status damage;                    // the wrapped key is damaged
  };

  // What one append writes into the key table (AppendRequest::subject_keys)
  // and, once it committed, what this store caches.
  class KeyWrites {
   public:
    absl::Span<const SubjectKeyWrite> writes() const { return writes_; }

   private:
    friend class Impl;
    struct Entry {
      std::string subject;
      std::string wrapped;                    // empty: the key is stored
      std::shared_ptr<const SubjectKey> key;  // set with `wrapped`
    };
    std::deque<Entry> entries_;  // stable addresses: writes_ views them
    std::vector<SubjectKeyWrite> writes_;
  };

  // `in` with its subjects' payloads encrypted: `out` refers to `in`'s
  // events when none has a subject, else to `storage`, and to `keys`'
  // writes.
  absl::Status Prepare(const AppendRequest& in, std::vector<EventData>& storage,
                       KeyWrites& keys, AppendRequest& out);
  // Caches what `keys` wrote, once their append (to `stream`) committed.
  void Committed(const KeyWrites& keys, std::string_view stream);

  // How one read decrypts: the keys it resolved and its buffers. One per
  // read, used by one thread at a time.
  struct DecryptState {
    absl::flat_hash_map<std::string, ReadKey> keys;
    internal::PayloadOpener opener;
    std::string plain;
  };
  // Decrypts `events` in place (see the header for each outcome).
  absl::Status Decrypt(std::vector<RecordedEvent>& events, DecryptState& state);
  absl::Status Decrypt(std::vector<RecordedEvent>& events) {
    if (!HasEncrypted(events)) return absl::OkStatus();
    DecryptState state;
    return Decrypt(events, state);
  }

  absl::StatusOr<ForgetSubjectResult> Forget(std::string_view subject) {
    ES_ASSIGN_OR_RETURN(ForgetSubjectResult result,
                        target_->subject_keys().Forget(subject));
    cache_.Put(subject, nullptr);
    return result;
  }

  // SnapshotKeySource:
  absl::StatusOr<std::shared_ptr<const SubjectKey>> KeyUnlessForgotten(
      std::string_view subject) override;
  absl::StatusOr<std::shared_ptr<const SubjectKey>> KeyToRead(
      std::string_view subject) override {
    ES_ASSIGN_OR_RETURN(ReadKey key, KeyForRead(subject));
    if (!key.damage.ok()) return key.damage;
    return key.key;
  }

 private:
  const MasterKey* MasterById(std::string_view id) const;
  absl::Status WrongMasterKeyError(std::string_view subject,
                                   std::string_view needed) const;
  // The key `record` wraps (not forgotten).
  absl::StatusOr<std::shared_ptr<const SubjectKey>> Unwrap(
      const SubjectKeyRecord& record) const;
  // The key to encrypt the subject's events of `stream` with: the stored
  // one, or a new one that `keys` stores with the append. Adds to `keys`
  // the stream's record unless this store knows it is written.
  absl::StatusOr<std::shared_ptr<const SubjectKey>> KeyForAppend(
      const std::string& subject, std::string_view stream, KeyWrites& keys);
  absl::StatusOr<ReadKey> KeyForRead(std::string_view subject);

  EventStore* const target_;
  const MasterKey master_;
  const std::vector<MasterKey> previous_;
  KeyCache cache_;
};

const MasterKey* EncryptedEventStore::Impl::MasterById(
    std::string_view id) const {
  if (master_.id() == id) return &master_;
  for (const MasterKey& key : previous_) {
    if (key.id() == id) return &key;
  }
  return nullptr;
}

absl::Status EncryptedEventStore::Impl::WrongMasterKeyError(
    std::string_view subject, std::string_view needed) const {
  std::string have = master_.id();
  for (const MasterKey& key : previous_) absl::StrAppend(&have, ", ", key.id());
  return absl::FailedPreconditionError(absl::StrCat(
      "the key of data subject '", std::string(subject),
      "' is wrapped by master key ", std::string(needed),
      ", which this store was not given (it has master key ", have,
      "): open it with that master key, or pass it in previous_keys while "
      "rotating (RotateMasterKey)"));
}

absl::StatusOr<std::shared_ptr<const SubjectKey>>
EncryptedEventStore::Impl::Unwrap(const SubjectKeyRecord& record) const {
  const MasterKey* master = MasterById(record.master_key_id);
  if (master == nullptr) {
    return WrongMasterKeyError(record.subject, record.master_key_id);
  }
  return internal::UnwrapSubjectKey(*master, record.subject,
                                    record.wrapped_key);
}

absl::StatusOr<std::shared_ptr<const SubjectKey>>
EncryptedEventStore::Impl::KeyForAppend(const std::string& subject,
                                        std::string_view stream,
                                        KeyWrites& keys) {
  std::shared_ptr<const SubjectKey> key;
  if (std::optional<CachedSubject> cached = cache_.Find(subject)) {
    if (cached->forgotten()) return ForgottenSubjectError(subject);
    key = std::move(cached->key);
  } else {
    ES_ASSIGN_OR_RETURN(std::optional<SubjectKeyRecord> record,
                        target_->subject_keys().Find(subject));
    if (!record.has_value()) {
      // A new subject: its key is stored with the append, which fails with
      // SubjectKeyConflictError should another writer store one first.
      key = SubjectKey::Generate();
      keys.entries_.push_back(
          {subject, internal::WrapSubjectKey(master_, subject, *key), key});
      return key;
    }
    if (record->forgotten()) {
      cache_.Put(subject, nullptr);
      return ForgottenSubjectError(subject);
    }
    ES_ASSIGN_OR_RETURN(key, Unwrap(*record));
    cache_.Put(subject, key);
  }
  // Recorded with the append, so that a stream holding the subject's
  // events is always known when the subject is forgotten.
  if (!cache_.StreamRecorded(subject, stream)) {
    keys.entries_.push_back({subject, std::string(), nullptr});
  }
  return key;
}

void EncryptedEventStore::Impl::Committed(const KeyWrites& keys,
                                          std::string_view stream) {
  for (const KeyWrites::Entry& entry : keys.entries_) {
    if (entry.key != nullptr) cache_.Put(entry.subject, entry.key);
    cache_.NoteStreamRecorded(entry.subject, stream);
  }
}

absl::StatusOr<std::shared_ptr<const SubjectKey>>
EncryptedEventStore::Impl::KeyUnlessForgotten(std::string_view subject) {
  if (std::optional<CachedSubject> cached = cache_.Find(subject)) {
    return cached->key;
  }
  SubjectKeyStore& keys = target_->subject_keys();
  ES_ASSIGN_OR_RETURN(std::optional<SubjectKeyRecord> record,
                      keys.Find(subject));
  std::shared_ptr<const SubjectKey> key;
  if (!record.has_value()) {
    key = SubjectKey::Generate();
    const std::string wrapped =
        internal::WrapSubjectKey(master_, subject, *key);
    ES_ASSIGN_OR_RETURN(record, keys.Insert(subject, wrapped, master_.id()));
    // Another writer may have stored the subject's key first: use that.
    if (!record->forgotten() && record->wrapped_key != wrapped) key = nullptr;
  }
  if (record->forgotten()) {
    cache_.Put(subject, nullptr);
    return nullptr;
  }
  if (key == nullptr) {
    ES_ASSIGN_OR_RETURN(key, Unwrap(*record));
  }
  cache_.Put(subject, key);
  return key;
}

absl::StatusOr<EncryptedEventStore::Impl::ReadKey>
EncryptedEventStore::Impl::KeyForRead(std::string_view subject) {
  if (std::optional<CachedSubject> cached = cache_.Find(subject)) {
    return ReadKey{cached->key, absl::OkStatus()};
  }
  ES_ASSIGN_OR_RETURN(std::optional<SubjectKeyRecord> record,
                      target_->subject_keys().Find(subject));
  if (!record.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data subject '", std::string(subject),
        "' has encrypted events but no key in this store's key table (were "
        "the events copied without their keys?)"));
  }
  if (record->forgotten()) {
    cache_.Put(subject, nullptr);
    return ReadKey{nullptr, absl::OkStatus()};
  }
  absl::StatusOr<std::shared_ptr<const SubjectKey>> key = Unwrap(*record);
  if (absl::IsDataLoss(key.status())) {
    return ReadKey{nullptr, key.status()};
  }
  if (!key.ok()) return key.status();
  cache_.Put(subject, *key);
  return ReadKey{*std::move(key), absl::OkStatus()};
}

absl::Status EncryptedEventStore::Impl::Prepare(const AppendRequest& in,
                                                std::vector<EventData>& storage,
                                                KeyWrites& keys,
                                                AppendRequest& out) {
  out = in;
  if (!HasSubjectOrEncryption(in.events)) return absl::OkStatus();
  if (!in.subject_keys.empty()) {
    return absl::InvalidArgumentError(
        "subject_keys: set by the EncryptedEventStore itself; append the "
        "events with their subject_id only");
  }
  // Copies of the events, each subject's payload sealed with its key
  // (resolved once per run of one subject's events).
  const size_t n = in.events.size();
  storage.resize(n);
  absl::flat_hash_map<std::string, std::shared_ptr<const SubjectKey>> resolved;
  const std::string* last_subject = nullptr;
  const SubjectKey* last_key = nullptr;
  internal::PayloadSealer sealer;  // one nonce prefix for the append
  for (size_t i = 0; i < n; ++i) {
    const EventData& src = in.events[i];
    EventData& e = storage[i];
    if (!src.metadata.payload_encryption().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events[", i,
          "].metadata.payload_encryption: set by the EncryptedEventStore "
          "itself; append the plain payload with only subject_id set"));
    }
    // The id is part of the associated data: it must be the stored one.
    e.id = src.id.IsNil() ? Uuid::Generate() : src.id;
    e.type = src.type;
    e.metadata = src.metadata;
    e.descriptor = src.descriptor;
    const std::string& subject = src.metadata.subject_id();
    if (subject.empty()) {
      e.payload = src.payload;
      continue;
    }
    if (last_subject == nullptr || *last_subject != subject) {
      auto it = resolved.find(subject);
      if (it == resolved.end()) {
        ES_ASSIGN_OR_RETURN(std::shared_ptr<const SubjectKey> key,
                            KeyForAppend(subject, in.stream, keys));
        it = resolved.emplace(subject, std::move(key)).first;
      }
      last_subject = &it->first;
      last_key = it->second.get();
    }
    e.metadata.set_payload_encryption(std::string(kPayloadEncryptionXChaCha20));
    e.payload = sealer.Seal(*last_key, e.id, subject, src.payload);
  }
  keys.writes_.clear();
  for (const KeyWrites::Entry& entry : keys.entries_) {
    keys.writes_.push_back(
        {entry.subject, entry.wrapped,
         entry.wrapped.empty() ? std::string_view() : master_.id()});
  }
  out.events = storage;
  out.subject_keys = keys.writes_;
  return absl::OkStatus();
}

absl::Status EncryptedEventStore::Impl::Decrypt(
    std::vector<RecordedEvent>& events, DecryptState& state) {
  // The last subject's entry, so that a run of one subject's events (the
  // usual stream) looks it up once.
  const std::string* last_subject = nullptr;
  const ReadKey* last_key = nullptr;
  for (RecordedEvent& e : events) {
    const std::string& encryption = e.metadata.payload_encryption();
    if (encryption.empty() || e.damaged()) continue;
    if (encryption != kPayloadEncryptionXChaCha20) {
      eventstore::internal::MarkDamaged(
          "crypto",
          absl::StrCat("unknown payload encryption '", encryption, "'"), e);
      continue;
    }
    const std::string& subject = e.metadata.subject_id();
    if (subject.empty()) {
      eventstore::internal::MarkDamaged(
          "crypto", "an encrypted payload without a data subject", e);
      continue;
    }
    if (last_subject == nullptr || *last_subject != subject) {
      auto it = state.keys.find(subject);
      if (it == state.keys.end()) {
        ES_ASSIGN_OR_RETURN(ReadKey key, KeyForRead(subject));
        it = state.keys.emplace(subject, std::move(key)).first;
      }
      last_subject = &it->first;
      last_key = &it->second;
    }
    const ReadKey& key = *last_key;
    if (!key.damage.ok()) {
      eventstore::internal::MarkDamaged("crypto",
                                        std::string(key.damage.message()), e);
      continue;
    }
    if (key.key == nullptr) {
      e.payload.clear();
      e.payload.shrink_to_fit();
      e.payload_state = PayloadState::kForgotten;
      e.checksum.reset();
      continue;
    }
    if (!state.opener.Open(*key.key, e.id, subject, e.payload, &state.plain)) {
      eventstore::internal::MarkDamaged(
          "crypto",
          absl::StrCat("its encrypted payload does not authenticate with the "
                       "key of data subject '",
                       subject, "' (altered, or not this event's own payload)"),
          e);
      continue;
    }
    e.payload.swap(state.plain);
    e.payload_state = PayloadState::kDecrypted;
    // The stored checksum covers the ciphertext, not what is returned.
    e.checksum.reset();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EncryptedEventStore>>
EncryptedEventStore::Create(EventStore* target, EncryptionOptions options) {
  if (target == nullptr) {
    return absl::InvalidArgumentError("EncryptedEventStore: no target store");
  }
  if (!options.master_key.has_value()) {
    return absl::InvalidArgumentError(
        "EncryptedEventStore: EncryptionOptions.master_key is required");
  }
  absl::StatusOr<std::vector<SubjectKeyRecord>> probe =
      target->subject_keys().List("", 1);
  if (absl::IsUnimplemented(probe.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("EncryptedEventStore: the store has no subject key "
                     "table (",
                     probe.status().message(), ")"));
  }
  if (!probe.ok()) return probe.status();
  auto impl = std::make_unique<Impl>(target, options);
  return std::unique_ptr<EncryptedEventStore>(
      new EncryptedEventStore(target, nullptr, std::move(impl)));
}

absl::StatusOr<std::unique_ptr<EncryptedEventStore>> EncryptedEventStore::Open(
    std::unique_ptr<EventStore> target, EncryptionOptions options) {
  ES_ASSIGN_OR_RETURN(std::unique_ptr<EncryptedEventStore> store,
                      Create(target.get(), options));
  store->owned_ = std::move(target);
  return store;
}

EncryptedEventStore::EncryptedEventStore(EventStore* target,
                                         std::unique_ptr<EventStore> owned,
                                         std::unique_ptr<Impl> impl)
    : ForwardingEventStore(target),
      owned_(std::move(owned)),
      impl_(std::move(impl)),
      snapshots_(std::make_unique<internal::EncryptedSnapshotStore>(
          target, impl_.get())) {}

EncryptedEventStore::~EncryptedEventStore() = default;

absl::StatusOr<AppendResult> EncryptedEventStore::Append(
    const AppendRequest& request) {
  // A new subject's key is stored with the append; when another writer
  // stored one first, the next attempt finds and uses that one.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    std::vector<EventData> storage;
    Impl::KeyWrites keys;
    AppendRequest prepared;
    ES_RETURN_IF_ERROR(impl_->Prepare(request, storage, keys, prepared));
    absl::StatusOr<AppendResult> result = target()->Append(prepared);
    if (result.ok()) {
      impl_->Committed(keys, request.stream);
      return result;
    }
    if (!IsSubjectKeyConflict(result.status()) || attempt == kAttempts) {
      return result;
    }
  }
}

absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>>
EncryptedEventStore::AppendEach(absl::Span<const AppendRequest> requests) {
  if (requests.empty()) return target()->AppendEach(requests);
  std::vector<absl::StatusOr<AppendResult>> results(requests.size());
  std::vector<std::vector<EventData>> storage(requests.size());
  std::deque<Impl::KeyWrites> keys(requests.size());
  std::vector<AppendRequest> prepared;
  std::vector<size_t> index;
  prepared.reserve(requests.size());
  index.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    AppendRequest out;
    absl::Status status = impl_->Prepare(requests[i], storage[i], keys[i], out);
    if (!status.ok()) {
      results[i] = std::move(status);
      continue;
    }
    prepared.push_back(out);
    index.push_back(i);
  }
  if (prepared.empty()) return results;
  ES_ASSIGN_OR_RETURN(std::vector<absl::StatusOr<AppendResult>> inner,
                      target()->AppendEach(prepared));
  for (size_t j = 0; j < inner.size() && j < index.size(); ++j) {
    const size_t i = index[j];
    if (inner[j].ok()) {
      impl_->Committed(keys[i], requests[i].stream);
    } else if (IsSubjectKeyConflict(inner[j].status())) {
      // Alone, with the key another writer stored.
      results[i] = Append(requests[i]);
      continue;
    }
    results[i] = std::move(inner[j]);
  }
  return results;
}

absl::StatusOr<std::vector<RecordedEvent>> EncryptedEventStore::ReadStream(
    std::string_view stream, const ReadStreamOptions& options) {
  // Read in pages, each decrypted on a second thread while the next is
  // read (PipelinedDecryption).
  constexpr int64_t kPageSize = 256;
  Impl::DecryptState state;
  internal::PipelinedDecryption pipeline(
      [this, &state](std::vector<RecordedEvent>& page) {
        if (!HasEncrypted(page)) return absl::OkStatus();
        return impl_->Decrypt(page, state);
      });
  absl::Status read = target()->ReadStreamPages(
      stream, options, kPageSize, [&](std::vector<RecordedEvent> page) {
        pipeline.Add(std::move(page));
        return absl::OkStatus();
      });
  return pipeline.Finish(std::move(read));
}

absl::StatusOr<ReadAllPage> EncryptedEventStore::ReadAll(
    const ReadAllOptions& options) {
  ES_ASSIGN_OR_RETURN(ReadAllPage page, target()->ReadAll(options));
  ES_RETURN_IF_ERROR(impl_->Decrypt(page.events));
  return page;
}

SnapshotStore& EncryptedEventStore::snapshots() { return *snapshots_; }

absl::StatusOr<ForgetSubjectResult> EncryptedEventStore::ForgetSubject(
    std::string_view subject) {
  return impl_->Forget(subject);
}

}  // namespace eventstore::crypto
