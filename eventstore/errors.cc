#include "eventstore/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"
#include "eventstore/v1/errors.pb.h"

namespace eventstore {
namespace {

constexpr char kWrongExpectedVersionUrl[] =
    "type.googleapis.com/eventstore.v1.WrongExpectedVersion";

}  // namespace

absl::Status WrongExpectedVersionError(std::string_view stream,
                                       ExpectedVersion expected,
                                       int64_t actual) {
  absl::Status status = absl::AbortedError(
      absl::StrCat("wrong expected version for stream '", std::string(stream),
                   "': expected ", expected.ToString(), ", actual ", actual));
  v1::WrongExpectedVersion payload;
  payload.set_stream(std::string(stream));
  payload.set_expected(expected.ToWire());
  payload.set_actual(actual);
  status.SetPayload(kWrongExpectedVersionUrl,
                    absl::Cord(payload.SerializeAsString()));
  return status;
}

bool IsWrongExpectedVersion(const absl::Status& status) {
  return status.code() == absl::StatusCode::kAborted &&
         status.GetPayload(kWrongExpectedVersionUrl).has_value();
}

std::optional<WrongExpectedVersionInfo> GetWrongExpectedVersion(
    const absl::Status& status) {
  if (status.code() != absl::StatusCode::kAborted) return std::nullopt;
  absl::optional<absl::Cord> cord = status.GetPayload(kWrongExpectedVersionUrl);
  if (!cord.has_value()) return std::nullopt;
  v1::WrongExpectedVersion payload;
  if (!payload.ParseFromString(std::string(*cord))) return std::nullopt;
  WrongExpectedVersionInfo info;
  info.stream = payload.stream();
  info.expected = ExpectedVersion::FromWire(payload.expected());
  info.actual = payload.actual();
  return info;
}

}  // namespace eventstore
