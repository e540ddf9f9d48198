// SqliteEventFilter: a ReadAllFilter as SQL conditions on the events table,
// with every value bound as a parameter.
//
// Internal to the SQLite backend; ReadAll and CheckpointStore::Lag share it
// so that both apply the same filter semantics.
//
//   SqliteEventFilter where(options.filter);
//   std::string sql = absl::StrCat(
//       "SELECT count(*) FROM events WHERE position > ?", where.sql());
//   ES_ASSIGN_OR_RETURN(ScopedStatement stmt, conn.Cached(sql));
//   stmt->BindInt64(1, from);
//   where.Bind(*stmt, 2);

#ifndef EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_FILTER_H_
#define EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_FILTER_H_

#include <optional>
#include <string>

#include "backends/sqlite/sqlite_statement.h"
#include "eventstore/event_store.h"

namespace eventstore::sqlite {

class SqliteEventFilter {
 public:
  // `filter` must outlive this object and the statements it is bound to.
  explicit SqliteEventFilter(const ReadAllFilter& filter);

  // " AND ..." conditions with anonymous parameters ("?"), to follow a
  // WHERE clause; empty for the empty filter. The text depends only on
  // which fields are set and how many types there are, so the statements
  // built from it stay few and are cached.
  const std::string& sql() const { return sql_; }

  // Binds the filter's values to parameters `index`, `index` + 1, ...;
  // returns the index after the last one bound.
  int Bind(SqliteStatement& stmt, int index) const;

 private:
  const ReadAllFilter& filter_;
  // The smallest string above every name with the stream prefix, if any.
  std::optional<std::string> upper_;
  std::string sql_;
};

}  // namespace eventstore::sqlite

#endif  // EVENTSTORE_BACKENDS_SQLITE_SQLITE_EVENT_FILTER_H_
