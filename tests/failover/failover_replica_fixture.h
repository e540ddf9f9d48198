// FailoverReplicaFixture: the fixture of the tests of a FailoverEventStore
// with a replica (FailoverOptions::replica): the failover fixture's
// switchable SQLite primary (down means its log too) with a SQLite replica
// file, and (FailoverPostgresReplicaFixture) a real PostgreSQL server with
// a SQLite replica of the "account-" streams; and what the tests compare:
// events as the primary recorded them, journaled events, whole ReadAll
// reads, WrongExpectedVersionError details.
//
//   class FailoverReplicaReadsTest : public test::FailoverReplicaFixture {};
//   TEST_F(FailoverReplicaReadsTest, ...) {
//     auto store = OpenWithReplica({"order-"});
//     ...
//     CatchUp(*store);  // the replica holds the primary's head
//     primary_->down = true;
//   }

#ifndef EVENTSTORE_TESTS_FAILOVER_FAILOVER_REPLICA_FIXTURE_H_
#define EVENTSTORE_TESTS_FAILOVER_FAILOVER_REPLICA_FIXTURE_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/errors.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/store_replica.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/failover/failover_fixture.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {

inline constexpr absl::Duration kCatchUpTimeout = absl::Seconds(30);

inline std::vector<Uuid> IdsOf(const std::vector<RecordedEvent>& events) {
  std::vector<Uuid> out;
  for (const RecordedEvent& e : events) out.push_back(e.id);
  return out;
}

// Expects `got` to be `want` as the primary recorded them: ids, streams,
// versions, types, payloads, positions and recorded_at.
inline void ExpectSameEvents(const std::vector<RecordedEvent>& got,
                             const std::vector<RecordedEvent>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id) << i;
    EXPECT_EQ(got[i].stream, want[i].stream) << i;
    EXPECT_EQ(got[i].version, want[i].version) << i;
    EXPECT_EQ(got[i].type, want[i].type) << i;
    EXPECT_EQ(got[i].payload, want[i].payload) << i;
    EXPECT_EQ(got[i].position, want[i].position) << i;
    EXPECT_EQ(got[i].recorded_at, want[i].recorded_at) << i;
  }
}

// Expects `got` to be journaled events not replayed yet: `payloads` in
// `stream` at `versions`, with empty positions and no journal bookkeeping.
inline void ExpectJournaled(const std::vector<RecordedEvent>& got,
                            const std::string& stream,
                            const std::vector<std::string>& payloads,
                            const std::vector<int64_t>& versions) {
  EXPECT_THAT(PayloadsOf(got), ::testing::ElementsAreArray(payloads));
  EXPECT_THAT(VersionsOf(got), ::testing::ElementsAreArray(versions));
  for (const RecordedEvent& e : got) {
    EXPECT_EQ(e.stream, stream) << e.payload;
    EXPECT_TRUE(e.position.IsStart()) << e.payload;
    EXPECT_TRUE(e.metadata.properties().empty()) << e.payload;
  }
}

struct ReadToEndResult {
  std::vector<RecordedEvent> events;
  // The next_position of the last page.
  Position next;
  // The size of every page, in order.
  std::vector<size_t> pages;
};

// ReadAll pages from `options.from_position` until end_of_log.
inline absl::StatusOr<ReadToEndResult> ReadToEnd(EventStore& store,
                                                 ReadAllOptions options) {
  ReadToEndResult result;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
    if (!page.ok()) return page.status();
    result.pages.push_back(page->events.size());
    for (RecordedEvent& e : page->events) result.events.push_back(std::move(e));
    result.next = page->next_position;
    if (page->end_of_log) return result;
    options.from_position = page->next_position;
  }
  return absl::InternalError("ReadToEnd: no end_of_log after 1000 pages");
}

// The WrongExpectedVersionError details of `status`, or a failure.
inline WrongExpectedVersionInfo WrongVersion(const absl::Status& status) {
  EXPECT_TRUE(IsWrongExpectedVersion(status)) << status;
  std::optional<WrongExpectedVersionInfo> info =
      GetWrongExpectedVersion(status);
  return info.value_or(WrongExpectedVersionInfo{});
}

// Options of a failover store with a replica in `replica` copying the
// streams with `prefixes` (none: all), polling often so that tests catch
// up quickly, and no health check (recovery by ReplayNow()).
inline FailoverOptions ReplicaFailoverOptions(
    std::shared_ptr<EventStore> replica, std::vector<std::string> prefixes) {
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  options.replica = std::move(replica);
  options.replica_options.stream_prefixes = std::move(prefixes);
  options.replica_options.poll_interval = absl::Milliseconds(10);
  options.replica_options.max_backoff = absl::Milliseconds(50);
  return options;
}

// A SQLite store in the file `path`, for a replica; null, with a failure
// recorded, if it cannot be opened.
inline std::shared_ptr<EventStore> OpenSqliteReplica(const std::string& path) {
  SqliteOptions sqlite;
  sqlite.path = path;
  absl::StatusOr<std::unique_ptr<EventStore>> replica =
      SqliteEventStore::Open(sqlite);
  EXPECT_OK(replica);
  return replica.ok() ? std::shared_ptr<EventStore>(std::move(*replica))
                      : nullptr;
}

class FailoverReplicaFixture : public FailoverFixture {
 protected:
  // A failover store over the fixture's primary with a SQLite replica
  // (replica.db in dir_) of the streams with `prefixes`.
  std::unique_ptr<FailoverEventStore> OpenWithReplica(
      std::vector<std::string> prefixes,
      absl::Duration staleness = absl::ZeroDuration()) {
    replica_store_ = OpenSqliteReplica(dir_->File("replica.db"));
    if (replica_store_ == nullptr) return nullptr;
    FailoverOptions options =
        ReplicaFailoverOptions(replica_store_, std::move(prefixes));
    options.replica_read_staleness = staleness;
    std::unique_ptr<FailoverEventStore> store = OpenFailover(options);
    // Down means the whole primary, its log too (the replica's reads).
    if (primary_ != nullptr) primary_->log_down_too = true;
    return store;
  }

  // Waits until the store's replica holds the primary's events up to
  // `position` (the primary's head when Start()).
  void CatchUp(FailoverEventStore& store,
               Position position = Position::Start()) {
    if (position.IsStart()) {
      ASSERT_OK_AND_ASSIGN(position, database_->HeadPosition());
    }
    ASSERT_NE(store.replica(), nullptr);
    ASSERT_TRUE(store.replica()->WaitForPosition(position, kCatchUpTimeout))
        << "the replica is at "
        << store.replica()->replica_position().ToString() << ", waited for "
        << position.ToString() << ": " << store.replica()->Status().last_error;
  }

  // Events of `stream` in the primary, read directly.
  std::vector<RecordedEvent> PrimaryStream(const std::string& stream) {
    absl::StatusOr<std::vector<RecordedEvent>> events =
        database_->ReadStream(stream);
    EXPECT_OK(events);
    return events.ok() ? std::move(*events) : std::vector<RecordedEvent>{};
  }

  std::shared_ptr<EventStore> replica_store_;
};

#ifdef EVENTSTORE_TEST_POSTGRES
// A PostgreSQL server (stopped and started by the tests), a failover store
// over it with a SQLite replica of the "account-" streams, and another
// writer on it (rival_).
class FailoverPostgresReplicaFixture : public FailoverPostgresFixture {
 protected:
  std::unique_ptr<FailoverEventStore> OpenFailover() {
    std::shared_ptr<EventStore> replica =
        OpenSqliteReplica(dir_->File("replica.db"));
    if (replica == nullptr) return nullptr;
    return OpenFailoverOverServer(
        ReplicaFailoverOptions(std::move(replica), {"account-"}));
  }
};
#endif  // EVENTSTORE_TEST_POSTGRES

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_FAILOVER_FAILOVER_REPLICA_FIXTURE_H_
