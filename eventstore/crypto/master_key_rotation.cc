// RotateMasterKey (declared in encrypted_event_store.h).

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "eventstore/crypto/encrypted_event_store.h"
#include "eventstore/crypto/subject_cipher.h"
#include "eventstore/status_macros.h"
#include "eventstore/subject_key_store.h"

namespace eventstore::crypto {
namespace {

constexpr int64_t kBatchSize = 500;

const MasterKey* FindKey(const std::vector<MasterKey>& keys,
                         std::string_view id) {
  for (const MasterKey& key : keys) {
    if (key.id() == id) return &key;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<MasterKeyRotation> RotateMasterKey(
    EventStore& store, const std::vector<MasterKey>& old_keys,
    const MasterKey& new_key) {
  SubjectKeyStore& keys = store.subject_keys();
  MasterKeyRotation result;
  std::set<std::string> missing;
  std::string after;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::vector<SubjectKeyRecord> batch,
                        keys.List(after, kBatchSize));
    for (const SubjectKeyRecord& record : batch) {
      if (record.forgotten()) {
        ++result.forgotten;
        continue;
      }
      if (record.master_key_id == new_key.id()) {
        ++result.already_current;
        continue;
      }
      const MasterKey* old_key = FindKey(old_keys, record.master_key_id);
      if (old_key == nullptr) {
        missing.insert(record.master_key_id);
        continue;
      }
      ES_ASSIGN_OR_RETURN(
          std::shared_ptr<const internal::SubjectKey> subject_key,
          internal::UnwrapSubjectKey(*old_key, record.subject,
                                     record.wrapped_key));
      const std::string wrapped =
          internal::WrapSubjectKey(new_key, record.subject, *subject_key);
      ES_ASSIGN_OR_RETURN(bool replaced,
                          keys.Rewrap(record.subject, record.master_key_id,
                                      wrapped, new_key.id()));
      if (replaced) {
        ++result.rewrapped;
        continue;
      }
      // Changed meanwhile: rewrapped by a concurrent rotation, or forgotten.
      ES_ASSIGN_OR_RETURN(std::optional<SubjectKeyRecord> now,
                          keys.Find(record.subject));
      if (!now.has_value() || now->forgotten()) {
        ++result.forgotten;
      } else if (now->master_key_id == new_key.id()) {
        ++result.already_current;
      } else {
        missing.insert(now->master_key_id);
      }
    }
    if (static_cast<int64_t>(batch.size()) < kBatchSize) break;
    after = batch.back().subject;
  }
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "master key rotation: ", result.rewrapped,
        " subject keys rewrapped, but some are wrapped by master key ",
        absl::StrJoin(missing, ", "),
        ", which is not among the old keys given; rerun with it"));
  }
  return result;
}

}  // namespace eventstore::crypto
