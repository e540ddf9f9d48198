#include "tools/serve/json_api_params.h"

#include <httplib.h>

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "eventstore/internal/utf8.h"
#include "tools/output_format.h"

namespace eventstore::tools {
namespace {

// `names` joined by ", " (absl::StrJoin takes no std::string_view here).
std::string JoinNames(std::initializer_list<std::string_view> names) {
  std::string out;
  for (std::string_view name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// `value` quoted for an error message, cut to 64 bytes.
std::string Quoted(std::string_view value) {
  if (value.size() > 64) {
    return absl::StrCat(tools::JsonQuote(value.substr(0, 64)), "...");
  }
  return tools::JsonQuote(value);
}

}  // namespace

QueryParams::QueryParams(const httplib::Request& request,
                         std::initializer_list<std::string_view> known)
    : request_(request) {
  for (const auto& [name, value] : request.params) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    Fail(name.empty() ? std::string_view("(empty name)")
                      : std::string_view(name),
         known.size() == 0
             ? std::string("this endpoint takes no parameter")
             : absl::StrCat("unknown parameter; this endpoint takes ",
                            JoinNames(known)));
    return;
  }
}

bool QueryParams::Has(std::string_view name) const {
  return request_.has_param(std::string(name));
}

std::optional<std::string> QueryParams::One(std::string_view name) {
  if (!ok()) return std::nullopt;
  const std::string key(name);
  const size_t count = request_.get_param_value_count(key);
  if (count == 0) return std::nullopt;
  if (count > 1) {
    Fail(name, absl::StrCat("given ", count, " times; give it once"));
    return std::nullopt;
  }
  return request_.get_param_value(key);
}

int64_t QueryParams::Int(std::string_view name, int64_t fallback, int64_t min,
                         int64_t max, std::string_view what_max) {
  std::optional<std::string> text = One(name);
  if (!text.has_value()) return fallback;
  const std::string_view digits = !text->empty() && (*text)[0] == '-'
                                      ? std::string_view(*text).substr(1)
                                      : std::string_view(*text);
  const bool all_digits =
      !digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
        return c >= '0' && c <= '9';
      });
  if (!all_digits) {
    Fail(name, absl::StrCat(Quoted(*text), " is not a whole number"));
    return fallback;
  }
  if (digits.size() != text->size()) {
    Fail(name, absl::StrCat(Quoted(*text), " must not be negative"));
    return fallback;
  }
  int64_t value = 0;
  if (!absl::SimpleAtoi(*text, &value) || value > max) {
    Fail(name, absl::StrCat(Quoted(*text), " must be at most ", max,
                            what_max.empty() ? "" : " (", std::string(what_max),
                            what_max.empty() ? "" : ")"));
    return fallback;
  }
  if (value < min) {
    Fail(name, absl::StrCat(Quoted(*text), " must be at least ", min));
    return fallback;
  }
  return value;
}

std::optional<Position> QueryParams::PositionOf(std::string_view name) {
  std::optional<std::string> text = One(name);
  if (!text.has_value()) return std::nullopt;
  absl::StatusOr<Position> position = Position::Parse(*text);
  if (!position.ok()) {
    Fail(name, absl::StrCat(Quoted(*text),
                            " is not a position (N or C/P, whole numbers)"));
    return std::nullopt;
  }
  return *position;
}

std::string QueryParams::Text(std::string_view name, std::string_view fallback,
                              size_t max_bytes) {
  std::optional<std::string> text = One(name);
  if (!text.has_value()) return std::string(fallback);
  if (text->size() > max_bytes) {
    Fail(name, absl::StrCat("longer than ", max_bytes, " bytes"));
    return std::string(fallback);
  }
  if (std::optional<size_t> bad = internal::FirstInvalidUtf8(*text)) {
    Fail(name, absl::StrCat("not valid UTF-8 (at byte ", *bad, ")"));
    return std::string(fallback);
  }
  for (size_t i = 0; i < text->size(); ++i) {
    const unsigned char c = static_cast<unsigned char>((*text)[i]);
    if (c < 0x20 || c == 0x7f) {
      Fail(name, absl::StrCat("holds a control character (at byte ", i, ")"));
      return std::string(fallback);
    }
  }
  return *std::move(text);
}

std::string QueryParams::OneOf(
    std::string_view name, std::string_view fallback,
    std::initializer_list<std::string_view> choices) {
  std::optional<std::string> text = One(name);
  if (!text.has_value()) return std::string(fallback);
  if (std::find(choices.begin(), choices.end(), *text) == choices.end()) {
    Fail(name,
         absl::StrCat(Quoted(*text), " is not one of ", JoinNames(choices)));
    return std::string(fallback);
  }
  return *std::move(text);
}

std::vector<std::string> QueryParams::All(std::string_view name,
                                          size_t max_values) {
  std::vector<std::string> values;
  if (!ok()) return values;
  const std::string key(name);
  const size_t count = request_.get_param_value_count(key);
  if (count > max_values) {
    Fail(name, absl::StrCat("given ", count, " times; at most ", max_values));
    return values;
  }
  for (size_t i = 0; i < count; ++i) {
    std::string value = request_.get_param_value(key, i);
    if (value.empty() || value.size() > 255) {
      Fail(name, value.empty() ? std::string("empty")
                               : std::string("longer than 255 bytes"));
      return {};
    }
    values.push_back(std::move(value));
  }
  return values;
}

void QueryParams::Fail(std::string_view parameter, std::string message) {
  if (error_.has_value()) return;
  error_ = ParamError{std::string(parameter), std::move(message)};
}

void QueryParams::Fail(std::string_view parameter, const absl::Status& status) {
  Fail(parameter, std::string(status.message()));
}

}  // namespace eventstore::tools
