#include "eventstore/tracing.h"

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace eventstore {
namespace {

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsAllZeros(absl::string_view text) {
  return text.find_first_not_of('0') == absl::string_view::npos;
}

}  // namespace

absl::Status ValidateTraceparent(std::string_view traceparent) {
  if (traceparent.empty()) {
    return absl::InvalidArgumentError("traceparent: is empty");
  }
  std::vector<absl::string_view> fields = absl::StrSplit(
      absl::string_view(traceparent.data(), traceparent.size()), '-');
  if (fields.size() < 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("traceparent: ", fields.size(),
                     " fields separated by '-', expected "
                     "version-traceid-parentid-flags"));
  }
  const absl::string_view version = fields[0];
  if (version.size() != 2 || !IsLowerHex(version)) {
    return absl::InvalidArgumentError(
        "traceparent: the version is not 2 lowercase hex digits");
  }
  if (version == "ff") {
    return absl::InvalidArgumentError("traceparent: version ff is invalid");
  }
  if (version == "00" && fields.size() != 4) {
    return absl::InvalidArgumentError(
        "traceparent: version 00 has more than 4 fields");
  }
  if (fields[1].size() != 32 || !IsLowerHex(fields[1])) {
    return absl::InvalidArgumentError(
        "traceparent: the trace-id is not 32 lowercase hex digits");
  }
  if (IsAllZeros(fields[1])) {
    return absl::InvalidArgumentError("traceparent: the trace-id is all zeros");
  }
  if (fields[2].size() != 16 || !IsLowerHex(fields[2])) {
    return absl::InvalidArgumentError(
        "traceparent: the parent-id is not 16 lowercase hex digits");
  }
  if (IsAllZeros(fields[2])) {
    return absl::InvalidArgumentError(
        "traceparent: the parent-id is all zeros");
  }
  if (fields[3].size() != 2 || !IsLowerHex(fields[3])) {
    return absl::InvalidArgumentError(
        "traceparent: the flags are not 2 lowercase hex digits");
  }
  return absl::OkStatus();
}

absl::Status ValidateTracestate(std::string_view tracestate) {
  if (tracestate.size() > kMaxTracestateBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("tracestate: ", tracestate.size(),
                     " characters, over the limit of ", kMaxTracestateBytes));
  }
  for (size_t i = 0; i < tracestate.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(tracestate[i]);
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tracestate: byte ", i, " (0x", absl::Hex(c, absl::kZeroPad2),
          ") is not printable ASCII"));
    }
  }
  return absl::OkStatus();
}

ScopedSpan::ScopedSpan(Tracer* tracer, std::string_view name, SpanKind kind,
                       const TraceContext& parent) {
  if (tracer == nullptr) return;
  if (parent.empty()) {
    span_ = tracer->StartSpan(name, kind, parent);
  } else if (!ValidateTraceparent(parent.traceparent).ok()) {
    span_ = tracer->StartSpan(name, kind, TraceContext{});
  } else if (!ValidateTracestate(parent.tracestate).ok()) {
    span_ = tracer->StartSpan(name, kind, TraceContext{parent.traceparent, ""});
  } else {
    span_ = tracer->StartSpan(name, kind, parent);
  }
}

ScopedSpan::~ScopedSpan() {
  if (span_ != nullptr) span_->End();
}

void ScopedSpan::SetAttribute(std::string_view key, std::string_view value) {
  if (span_ != nullptr) span_->SetAttribute(key, value);
}

void ScopedSpan::SetAttribute(std::string_view key, int64_t value) {
  if (span_ != nullptr) span_->SetAttribute(key, value);
}

void ScopedSpan::SetStatus(const absl::Status& status) {
  if (span_ != nullptr && !status.ok()) span_->SetError(status);
}

TraceContext ScopedSpan::context() const {
  if (span_ == nullptr) return {};
  return span_->context();
}

}  // namespace eventstore
