#include "eventstore/subject_key_store.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace eventstore {
namespace {

// The payload that marks SubjectKeyConflictError's status.
constexpr char kConflictPayload[] = "eventstore.v1/subject-key-conflict";

}  // namespace

absl::Status SubjectKeyConflictError(std::string_view subject) {
  absl::Status status = absl::AbortedError(absl::StrCat(
      "data subject '", std::string(subject),
      "' already has a record in the key table (another writer stored its "
      "key first, or it was forgotten): nothing was written; read the "
      "stored record and try again"));
  status.SetPayload(kConflictPayload, absl::Cord(std::string(subject)));
  return status;
}

bool IsSubjectKeyConflict(const absl::Status& status) {
  return status.code() == absl::StatusCode::kAborted &&
         status.GetPayload(kConflictPayload).has_value();
}

}  // namespace eventstore
