// Reading fields of JSON answers parsed into google.protobuf.Struct
// (JsonStringToMessage), for tests of the JSON API: a missing field reads
// as an empty Value, so that a test's expectation fails, not the test.
//
//   EXPECT_EQ(Str(Field(body, "dead_letter"), "status"), "retrying");

#ifndef EVENTSTORE_TESTS_TOOLS_JSON_FIELDS_H_
#define EVENTSTORE_TESTS_TOOLS_JSON_FIELDS_H_

#include <string>

#include "google/protobuf/struct.pb.h"

namespace eventstore::test {

inline const google::protobuf::Value& Field(const google::protobuf::Struct& s,
                                            const std::string& key) {
  static const google::protobuf::Value* const kMissing =
      new google::protobuf::Value();
  auto it = s.fields().find(key);
  return it == s.fields().end() ? *kMissing : it->second;
}
inline const google::protobuf::Value& Field(const google::protobuf::Value& v,
                                            const std::string& key) {
  return Field(v.struct_value(), key);
}
inline std::string Str(const google::protobuf::Value& v,
                       const std::string& key) {
  return Field(v, key).string_value();
}
inline double Num(const google::protobuf::Value& v, const std::string& key) {
  return Field(v, key).number_value();
}
inline const google::protobuf::ListValue& List(
    const google::protobuf::Struct& s, const std::string& key) {
  return Field(s, key).list_value();
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_TOOLS_JSON_FIELDS_H_
