// QueryParams: the query parameters of one JSON API request, read strictly
// (docs/http-api.md): each parameter an endpoint does not take, each value
// that does not parse or is out of range, and a parameter given twice where
// one value is expected, is an error naming the parameter, which the API
// answers 400 {"error": "...", "parameter": "name"}.
//
//   QueryParams params(request, {"from", "limit"});
//   const int64_t limit = params.Int("limit", 100, 1, 1000);
//   const std::optional<Position> from = params.PositionOf("from");
//   if (!params.ok()) return BadParameter(response, *params.error());
//
// After the first error every getter returns its fallback and the error
// stays the first one. Not thread-safe; one per request.

#ifndef EVENTSTORE_TOOLS_SERVE_JSON_API_PARAMS_H_
#define EVENTSTORE_TOOLS_SERVE_JSON_API_PARAMS_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "eventstore/position.h"

namespace httplib {
struct Request;
}  // namespace httplib

namespace eventstore::tools {

// Why a parameter was refused.
struct ParamError {
  std::string parameter;
  std::string message;
};

class QueryParams {
 public:
  // Reads `request`'s parameters (already URL-decoded by httplib); any whose
  // name is not in `known` is an error.
  QueryParams(const httplib::Request& request,
              std::initializer_list<std::string_view> known);

  // A whole number in [min, max] written in decimal digits; `fallback` when
  // absent. The error says "not a whole number", "must not be negative",
  // "must be at least min" or "must be at most max (`what_max`)".
  int64_t Int(std::string_view name, int64_t fallback, int64_t min, int64_t max,
              std::string_view what_max = {});
  // A position ("N" or "C/P", Position::Parse); nullopt when absent.
  std::optional<Position> PositionOf(std::string_view name);
  // The text; `fallback` when absent. Refused when not UTF-8, when it holds
  // a control character, or when longer than `max_bytes`.
  std::string Text(std::string_view name, std::string_view fallback = {},
                   size_t max_bytes = 255);
  // One of `choices`; `fallback` when absent.
  std::string OneOf(std::string_view name, std::string_view fallback,
                    std::initializer_list<std::string_view> choices);
  // Every value of a repeatable parameter, each checked as Text.
  std::vector<std::string> All(std::string_view name, size_t max_values = 100);
  // True when the parameter was given.
  bool Has(std::string_view name) const;

  // Records `message` as the error of `parameter` unless one is recorded.
  void Fail(std::string_view parameter, std::string message);
  // Records `status`'s message (kInvalidArgument from a validation of the
  // library's, e.g. a stream name) as the error of `parameter`.
  void Fail(std::string_view parameter, const absl::Status& status);

  bool ok() const { return !error_.has_value(); }
  const std::optional<ParamError>& error() const { return error_; }

 private:
  // The one value of `name`, or nullopt when absent or in error.
  std::optional<std::string> One(std::string_view name);

  const httplib::Request& request_;
  std::optional<ParamError> error_;
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_SERVE_JSON_API_PARAMS_H_
