// RawPostgres: a bare libpq connection for tests that must act behind the
// store's back (roll back on purpose, hold a transaction open, terminate
// sessions, tamper with the schema).
//
//   ASSERT_OK_AND_ASSIGN(auto raw, RawPostgres::Connect(url));
//   ASSERT_OK_AND_ASSIGN(auto rows, raw->Query("SELECT count(*) FROM
//   s.events")); EXPECT_EQ(rows[0][0], "3");

#ifndef EVENTSTORE_TESTS_SUPPORT_RAW_POSTGRES_H_
#define EVENTSTORE_TESTS_SUPPORT_RAW_POSTGRES_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct pg_conn;

namespace eventstore::test {

class RawPostgres {
 public:
  // Connects to `url` (a libpq URI) with application_name "eventstore-test",
  // so that tests terminating the store's sessions can spare this one.
  static absl::StatusOr<std::unique_ptr<RawPostgres>> Connect(
      const std::string& url);
  RawPostgres(const RawPostgres&) = delete;
  RawPostgres& operator=(const RawPostgres&) = delete;
  ~RawPostgres();

  // Runs SQL (several statements allowed) returning no rows.
  absl::Status Exec(std::string_view sql);
  // Runs one query; rows of text values ("" for NULL).
  absl::StatusOr<std::vector<std::vector<std::string>>> Query(
      std::string_view sql);

 private:
  explicit RawPostgres(pg_conn* conn) : conn_(conn) {}
  pg_conn* conn_;
};

// A schema name no other test uses: "t_" and 16 random hex digits.
std::string UniqueSchemaName();

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_SUPPORT_RAW_POSTGRES_H_
