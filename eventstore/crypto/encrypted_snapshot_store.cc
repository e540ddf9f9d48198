#include "eventstore/crypto/encrypted_snapshot_store.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "eventstore/status_macros.h"

namespace eventstore::crypto::internal {
namespace {

constexpr size_t kSubjectLengthSize = 4;
constexpr size_t kPrefixSize = sizeof(kEncryptedSnapshotTypePrefix) - 1;

bool IsEncrypted(std::string_view type) {
  return absl::StartsWith(absl::string_view(type.data(), type.size()),
                          kEncryptedSnapshotTypePrefix);
}

absl::Status DamagedError(std::string_view stream, std::string_view why) {
  return absl::DataLossError(absl::StrCat("the encrypted snapshot of stream '",
                                          std::string(stream), "' ",
                                          std::string(why)));
}

}  // namespace

absl::Status EncryptedSnapshotStore::Save(const Snapshot& snapshot) {
  if (IsEncrypted(snapshot.type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "type: '", kEncryptedSnapshotTypePrefix,
        "' is reserved for encrypted snapshots; give the state's protobuf "
        "full name"));
  }
  ES_ASSIGN_OR_RETURN(std::optional<std::string> subject,
                      target_->subject_keys().SubjectOfStream(snapshot.stream));
  if (!subject.has_value()) return target_->snapshots().Save(snapshot);
  ES_ASSIGN_OR_RETURN(std::shared_ptr<const SubjectKey> key,
                      keys_->KeyUnlessForgotten(*subject));
  if (key == nullptr) return absl::OkStatus();  // forgotten: nothing stored
  Snapshot sealed;
  sealed.stream = snapshot.stream;
  sealed.version = snapshot.version;
  sealed.schema_version = snapshot.schema_version;
  sealed.taken_at = snapshot.taken_at;
  sealed.type = absl::StrCat(kEncryptedSnapshotTypePrefix, snapshot.type);
  const std::string ciphertext = EncryptSnapshotState(
      *key,
      SnapshotAad(snapshot.stream, snapshot.schema_version, snapshot.version,
                  *subject, snapshot.type),
      snapshot.state);
  sealed.state.reserve(kSubjectLengthSize + subject->size() +
                       ciphertext.size());
  const uint32_t length = static_cast<uint32_t>(subject->size());
  for (int i = 3; i >= 0; --i) {
    sealed.state.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  }
  sealed.state.append(*subject).append(ciphertext);
  return target_->snapshots().Save(sealed);
}

absl::StatusOr<std::optional<Snapshot>> EncryptedSnapshotStore::Load(
    std::string_view stream, int32_t schema_version) {
  ES_ASSIGN_OR_RETURN(std::optional<Snapshot> snapshot,
                      target_->snapshots().Load(stream, schema_version));
  if (!snapshot.has_value() || !IsEncrypted(snapshot->type)) return snapshot;
  const std::string_view state = snapshot->state;
  if (state.size() < kSubjectLengthSize) {
    return DamagedError(stream, "is truncated");
  }
  uint32_t length = 0;
  for (size_t i = 0; i < kSubjectLengthSize; ++i) {
    length = (length << 8) | static_cast<unsigned char>(state[i]);
  }
  if (state.size() - kSubjectLengthSize < length) {
    return DamagedError(stream, "is truncated");
  }
  const std::string subject(state.substr(kSubjectLengthSize, length));
  if (subject.empty()) return DamagedError(stream, "names no data subject");
  ES_ASSIGN_OR_RETURN(std::shared_ptr<const SubjectKey> key,
                      keys_->KeyToRead(subject));
  if (key == nullptr) return std::nullopt;  // forgotten
  const std::string type(snapshot->type.substr(kPrefixSize));
  std::string plain;
  if (!DecryptSnapshotState(
          *key,
          SnapshotAad(snapshot->stream, snapshot->schema_version,
                      snapshot->version, subject, type),
          state.substr(kSubjectLengthSize + length), &plain)) {
    return DamagedError(
        stream, absl::StrCat("does not authenticate with the key of data "
                             "subject '",
                             subject, "' (altered, or moved)"));
  }
  snapshot->type = type;
  snapshot->state = std::move(plain);
  return snapshot;
}

absl::Status EncryptedSnapshotStore::Delete(std::string_view stream) {
  return target_->snapshots().Delete(stream);
}

}  // namespace eventstore::crypto::internal
