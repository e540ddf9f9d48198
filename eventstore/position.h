// Position: where an event stands in the global log.
//
// A position is a pair (commit, prepare), compared commit first. The SQLite
// backend commits one writer at a time, so both parts are the event's global
// sequence number. The PostgreSQL backend lets concurrent writers commit
// together; there `commit` orders transactions and `prepare` the events
// inside one, so that a reader resuming from a stored position never skips an
// event that committed after it read (docs/architecture.md). Positions are
// strictly increasing along the log and may have gaps.
//
//   absl::StatusOr<ReadAllPage> page = store.ReadAll({.from_position = p});
//   std::string saved = p.ToString();               // for a checkpoint
//   absl::StatusOr<Position> back = Position::Parse(saved);

#ifndef EVENTSTORE_POSITION_H_
#define EVENTSTORE_POSITION_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>

#include "absl/status/statusor.h"

namespace eventstore {

class Position {
 public:
  // Before the first event: ReadAll from Start() returns the whole log.
  constexpr Position() = default;
  static constexpr Position Start() { return Position(); }
  // A position whose two parts are the same sequence number.
  static constexpr Position At(uint64_t sequence) {
    return Position(sequence, sequence);
  }
  static constexpr Position FromParts(uint64_t commit, uint64_t prepare) {
    return Position(commit, prepare);
  }
  // Parses ToString()'s output: "N" or "C/P".
  static absl::StatusOr<Position> Parse(std::string_view text);

  uint64_t commit() const { return commit_; }
  uint64_t prepare() const { return prepare_; }
  bool IsStart() const { return commit_ == 0 && prepare_ == 0; }

  // "N" when both parts are equal, otherwise "C/P".
  std::string ToString() const;

  friend bool operator==(Position a, Position b) {
    return a.commit_ == b.commit_ && a.prepare_ == b.prepare_;
  }
  friend bool operator!=(Position a, Position b) { return !(a == b); }
  friend bool operator<(Position a, Position b) {
    return std::tie(a.commit_, a.prepare_) < std::tie(b.commit_, b.prepare_);
  }
  friend bool operator>(Position a, Position b) { return b < a; }
  friend bool operator<=(Position a, Position b) { return !(b < a); }
  friend bool operator>=(Position a, Position b) { return !(a < b); }
  friend std::ostream& operator<<(std::ostream& os, Position p) {
    return os << p.ToString();
  }
  template <typename H>
  friend H AbslHashValue(H h, Position p) {
    return H::combine(std::move(h), p.commit_, p.prepare_);
  }

 private:
  constexpr Position(uint64_t commit, uint64_t prepare)
      : commit_(commit), prepare_(prepare) {}

  uint64_t commit_ = 0;
  uint64_t prepare_ = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_POSITION_H_
