#include "backends/sqlite/sqlite_event_filter.h"

#include <string>

namespace eventstore::sqlite {
namespace {

// The smallest string greater than every string starting with `prefix`, or
// nullopt when there is none (the prefix is all 0xff bytes).
std::optional<std::string> PrefixSuccessor(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) {
    prefix.pop_back();
  }
  if (prefix.empty()) return std::nullopt;
  prefix.back() =
      static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

}  // namespace

SqliteEventFilter::SqliteEventFilter(const ReadAllFilter& filter)
    : filter_(filter) {
  // A prefix is a range on the (stream, version) index: stream >= prefix
  // AND stream < successor (binary collation).
  if (!filter.stream_prefix.empty()) {
    sql_ += " AND stream >= ?";
    upper_ = PrefixSuccessor(filter.stream_prefix);
    if (upper_.has_value()) sql_ += " AND stream < ?";
  }
  if (!filter.tenant_id.empty()) sql_ += " AND tenant_id = ?";
  if (!filter.event_types.empty()) {
    sql_ += " AND type IN (?";
    for (size_t i = 1; i < filter.event_types.size(); ++i) sql_ += ", ?";
    sql_ += ")";
  }
}

int SqliteEventFilter::Bind(SqliteStatement& stmt, int index) const {
  if (!filter_.stream_prefix.empty()) {
    stmt.BindText(index++, filter_.stream_prefix);
    if (upper_.has_value()) stmt.BindText(index++, *upper_);
  }
  if (!filter_.tenant_id.empty()) stmt.BindText(index++, filter_.tenant_id);
  for (const std::string& type : filter_.event_types) {
    stmt.BindText(index++, type);
  }
  return index;
}

}  // namespace eventstore::sqlite
