// Status propagation macros.
//
// Abseil 20220623, the version Debian ships, has no RETURN_IF_ERROR-style
// macros, so the project defines its own once, here.
//
//   absl::Status Save(...) {
//     ES_RETURN_IF_ERROR(Validate(...));
//     ES_ASSIGN_OR_RETURN(auto conn, pool.Acquire());
//     ...
//   }

#ifndef EVENTSTORE_STATUS_MACROS_H_
#define EVENTSTORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function when it is not OK.
#define ES_RETURN_IF_ERROR(expr)                    \
  do {                                              \
    ::absl::Status es_status_macro_value_ = (expr); \
    if (!es_status_macro_value_.ok()) {             \
      return es_status_macro_value_;                \
    }                                               \
  } while (false)

#define ES_STATUS_MACROS_CONCAT_INNER_(a, b) a##b
#define ES_STATUS_MACROS_CONCAT_(a, b) ES_STATUS_MACROS_CONCAT_INNER_(a, b)

#define ES_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) {                                 \
    return std::move(statusor).status();                \
  }                                                     \
  lhs = *std::move(statusor)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status when it is
// not OK, else moves its value into `lhs` (a declaration or an lvalue).
#define ES_ASSIGN_OR_RETURN(lhs, rexpr)                                       \
  ES_ASSIGN_OR_RETURN_IMPL_(ES_STATUS_MACROS_CONCAT_(es_statusor_, __LINE__), \
                            lhs, rexpr)

#endif  // EVENTSTORE_STATUS_MACROS_H_
