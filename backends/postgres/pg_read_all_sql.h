// ReadAll's statements on PostgreSQL, exposed so that tests can EXPLAIN the
// exact SQL the store prepares (tests/postgres/pg_category_read_test.cc).
//
// Internal to the PostgreSQL backend.

#ifndef EVENTSTORE_BACKENDS_POSTGRES_PG_READ_ALL_SQL_H_
#define EVENTSTORE_BACKENDS_POSTGRES_PG_READ_ALL_SQL_H_

#include <optional>
#include <string>
#include <string_view>

namespace eventstore::postgres {

// The category a stream prefix selects exactly, or nullopt: "order" for
// "order-", when the prefix is a non-empty name without '-' followed by one
// '-' at its end. A stream starts with such a prefix if and only if its
// category (the index expression split_part(stream, '-', 1), schema
// version 7: the name up to its first '-', or the whole name) is that name
// and the stream is not named just that.
std::optional<std::string> CategoryOfPrefix(std::string_view prefix);

// ReadAll's statement, with "$S" for the quoted schema. Parameters:
// $1::xid8, $2::bigint the position to read after, $3::text the stream
// prefix (or NULL), $4::text[] the event types (or NULL), $5::text the
// tenant (or NULL), $6::bigint the page size. With `by_category`, also
// $7::text, CategoryOfPrefix($3), and $3 must not be NULL: the prefix is
// tested as split_part(stream, '-', 1) = $7 AND stream <> $7, which selects
// exactly the rows starts_with(stream, $3) does, so that the planner walks
// the index events_by_category in log order.
std::string ReadAllSql(bool by_category);

}  // namespace eventstore::postgres

#endif  // EVENTSTORE_BACKENDS_POSTGRES_PG_READ_ALL_SQL_H_
