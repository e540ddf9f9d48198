// GoogleTest assertions and matchers for absl::Status and absl::StatusOr<T>.
//
// Abseil 20220623 (Debian's) ships none, so the tests define them once here.
//
//   EXPECT_OK(store->HeadPosition());            // a Status or a StatusOr
//   ASSERT_OK(status);
//   ASSERT_OK_AND_ASSIGN(AppendResult r, store->Append(...));
//   EXPECT_THAT(store->Append(...),
//               StatusIs(absl::StatusCode::kAborted, HasSubstr("order-1")));
//   EXPECT_THAT(status, IsOk());
//
// A failure prints the expression and the whole status (code, message and
// payloads).

#ifndef EVENTSTORE_TESTS_SUPPORT_STATUS_MATCHERS_H_
#define EVENTSTORE_TESTS_SUPPORT_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace eventstore::test {
namespace status_internal {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// The predicate-formatter behind EXPECT_OK and ASSERT_OK.
template <typename T>
::testing::AssertionResult IsOkFormat(const char* expression, const T& value) {
  const absl::Status& status = GetStatus(value);
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "Expected " << expression << " to be OK, but it is " << status;
}

class StatusIsImpl {
 public:
  StatusIsImpl(absl::StatusCode code,
               ::testing::Matcher<const std::string&> message)
      : code_(code), message_(std::move(message)) {}

  template <typename T>
  bool MatchAndExplain(const T& value,
                       ::testing::MatchResultListener* listener) const {
    const absl::Status& status = GetStatus(value);
    *listener << "whose status is " << status;
    if (status.code() != code_) return false;
    const std::string message(status.message());
    ::testing::StringMatchResultListener inner;
    if (!message_.MatchAndExplain(message, &inner)) {
      if (!inner.str().empty())
        *listener << ", and the message " << inner.str();
      return false;
    }
    return true;
  }

  void DescribeTo(std::ostream* os) const {
    *os << "has status code " << absl::StatusCodeToString(code_)
        << " and a message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "does not have status code " << absl::StatusCodeToString(code_)
        << " or has a message that ";
    message_.DescribeNegationTo(os);
  }

 private:
  absl::StatusCode code_;
  ::testing::Matcher<const std::string&> message_;
};

class IsOkImpl {
 public:
  template <typename T>
  bool MatchAndExplain(const T& value,
                       ::testing::MatchResultListener* listener) const {
    const absl::Status& status = GetStatus(value);
    *listener << "whose status is " << status;
    return status.ok();
  }
  void DescribeTo(std::ostream* os) const { *os << "is OK"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "is not OK"; }
};

}  // namespace status_internal

// Matches a Status or StatusOr whose code is `code` and whose message
// matches `message` (a matcher or a string to equal).
template <typename MessageMatcher>
::testing::PolymorphicMatcher<status_internal::StatusIsImpl> StatusIs(
    absl::StatusCode code, MessageMatcher&& message) {
  return ::testing::MakePolymorphicMatcher(status_internal::StatusIsImpl(
      code, ::testing::MatcherCast<const std::string&>(
                std::forward<MessageMatcher>(message))));
}
// Matches a Status or StatusOr whose code is `code`, whatever the message.
inline ::testing::PolymorphicMatcher<status_internal::StatusIsImpl> StatusIs(
    absl::StatusCode code) {
  return StatusIs(code, ::testing::A<const std::string&>());
}

// Matches an OK Status or StatusOr.
inline ::testing::PolymorphicMatcher<status_internal::IsOkImpl> IsOk() {
  return ::testing::MakePolymorphicMatcher(status_internal::IsOkImpl());
}

}  // namespace eventstore::test

// Checks that `expr` (an absl::Status or absl::StatusOr<T>) is OK.
#define EXPECT_OK(expr) \
  EXPECT_PRED_FORMAT1(::eventstore::test::status_internal::IsOkFormat, expr)
#define ASSERT_OK(expr) \
  ASSERT_PRED_FORMAT1(::eventstore::test::status_internal::IsOkFormat, expr)

#define ES_TEST_CONCAT_INNER_(a, b) a##b
#define ES_TEST_CONCAT_(a, b) ES_TEST_CONCAT_INNER_(a, b)

#define ES_TEST_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr)       \
  auto statusor = (rexpr);                                             \
  ASSERT_PRED_FORMAT1(::eventstore::test::status_internal::IsOkFormat, \
                      statusor)                                        \
      << "in: " #rexpr;                                                \
  lhs = *std::move(statusor)

// Evaluates `rexpr` (an absl::StatusOr<T>); fails the test (returning from
// the enclosing void function) when it is not OK, else moves its value into
// `lhs`, a declaration or an lvalue.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ES_TEST_ASSERT_OK_AND_ASSIGN_IMPL_(    \
      ES_TEST_CONCAT_(es_test_statusor_, __LINE__), lhs, rexpr)

#endif  // EVENTSTORE_TESTS_SUPPORT_STATUS_MATCHERS_H_
