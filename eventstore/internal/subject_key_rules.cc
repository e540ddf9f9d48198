#include "eventstore/internal/subject_key_rules.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "eventstore/internal/append_validation.h"
#include "eventstore/internal/utf8.h"
#include "eventstore/status_macros.h"

namespace eventstore::internal {
namespace {

// kInvalidArgument naming `field` when `text` is not valid UTF-8 or holds a
// control character.
absl::Status CheckText(std::string_view field, std::string_view text) {
  if (const std::optional<size_t> bad = FirstInvalidUtf8(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ": '", Shown(text),
                     "' is not valid UTF-8 at byte ", *bad));
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(field), ": '", Shown(text),
                       "' has a control character at byte ", i));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSubject(std::string_view field, const StoreLimits& limits,
                          std::string_view subject) {
  if (subject.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ": empty; give the data subject"));
  }
  if (subject.size() > limits.max_stream_name_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), ": ", subject.size(),
                     " bytes, over the limit of ", limits.max_stream_name_bytes,
                     " (the stream-name limit) ('", Shown(subject), "')"));
  }
  return CheckText(field, subject);
}

absl::Time OrNow(absl::Time t, absl::Time now) {
  return t == absl::InfinitePast() || t == absl::InfiniteFuture() ? now : t;
}

}  // namespace

absl::Status ValidateSubject(const StoreLimits& limits,
                             std::string_view subject) {
  return CheckSubject("subject", limits, subject);
}

absl::Status ValidateWrappedKey(std::string_view prefix,
                                std::string_view wrapped_key,
                                std::string_view master_key_id) {
  if (wrapped_key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(prefix), "wrapped_key: empty"));
  }
  const std::string field = absl::StrCat(std::string(prefix), "master_key_id");
  if (master_key_id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": empty; give the id of the master key that wrapped the key"));
  }
  if (master_key_id.size() > kMaxMasterKeyIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", master_key_id.size(),
                     " bytes, over the limit of ", kMaxMasterKeyIdBytes));
  }
  return CheckText(field, master_key_id);
}

absl::Status ValidateList(std::string_view after, int64_t limit) {
  if (const std::optional<size_t> bad = FirstInvalidUtf8(after)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "after: '", Shown(after), "' is not valid UTF-8 at byte ", *bad));
  }
  if (limit <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: ", limit, " is not positive"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SubjectKeyRecord>> PreparePut(
    const StoreLimits& limits, const std::vector<SubjectKeyRecord>& records,
    absl::Time now) {
  std::vector<SubjectKeyRecord> out;
  out.reserve(records.size());
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < records.size(); ++i) {
    const SubjectKeyRecord& r = records[i];
    const std::string prefix = absl::StrCat("records[", i, "].");
    ES_RETURN_IF_ERROR(
        CheckSubject(absl::StrCat(prefix, "subject"), limits, r.subject));
    if (!seen.insert(r.subject).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, "subject: '", Shown(r.subject),
                       "' appears twice in the batch"));
    }
    if (r.forgotten()) {
      if (!r.wrapped_key.empty() || !r.master_key_id.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            prefix, "wrapped_key: subject '", Shown(r.subject),
            "' is forgotten but the record still holds a key or master key "
            "id; a forgotten record holds neither"));
      }
    } else {
      ES_RETURN_IF_ERROR(
          ValidateWrappedKey(prefix, r.wrapped_key, r.master_key_id));
    }
    SubjectKeyRecord prepared = r;
    prepared.created_at = OrNow(r.created_at, now);
    if (r.forgotten()) prepared.forgotten_at = OrNow(*r.forgotten_at, now);
    out.push_back(std::move(prepared));
  }
  return out;
}

absl::StatusOr<PutAction> DecidePut(
    const std::optional<SubjectKeyRecord>& stored,
    const SubjectKeyRecord& incoming) {
  if (!stored.has_value()) return PutAction::kInsert;
  if (stored->forgotten()) return PutAction::kKeep;
  if (incoming.forgotten()) return PutAction::kForget;
  if (stored->wrapped_key == incoming.wrapped_key &&
      stored->master_key_id == incoming.master_key_id) {
    return PutAction::kKeep;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "subject '", Shown(incoming.subject),
      "' has a different key stored already (master key id '",
      Shown(stored->master_key_id), "', given '", Shown(incoming.master_key_id),
      "'): two stores encrypted its events independently; a stored key is "
      "never overwritten, nothing was written"));
}

absl::Status ForgottenSubjectError(std::string_view subject) {
  return absl::FailedPreconditionError(
      absl::StrCat("subject '", Shown(subject),
                   "' was forgotten: it can never get a key again"));
}

}  // namespace eventstore::internal
