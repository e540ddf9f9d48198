// eventstore/version.h: generated from project(VERSION ...), consistent.

#include "eventstore/version.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace eventstore {
namespace {

TEST(VersionTest, StringAndNumberAgreeWithTheParts) {
  EXPECT_EQ(
      std::string(EVENTSTORE_VERSION_STRING),
      absl::StrCat(EVENTSTORE_VERSION_MAJOR, ".", EVENTSTORE_VERSION_MINOR, ".",
                   EVENTSTORE_VERSION_PATCH));
  EXPECT_EQ(EVENTSTORE_VERSION_NUMBER, EVENTSTORE_VERSION_MAJOR * 10000 +
                                           EVENTSTORE_VERSION_MINOR * 100 +
                                           EVENTSTORE_VERSION_PATCH);
  // Usable in #if.
#if EVENTSTORE_VERSION_NUMBER < 100
  ADD_FAILURE() << "older than 0.1.0: " << EVENTSTORE_VERSION_STRING;
#endif
}

}  // namespace
}  // namespace eventstore
