// FailoverFixture: the fixture of the failover tests. A FailoverEventStore
// over an in-memory SQLite primary reached through a SwitchablePrimary (a
// switch that makes it unreachable) and a SQLite journal in a temp dir;
// (FailoverPostgresFixture) the same over a real PostgreSQL server; and the
// helpers the failover tests share (events, payloads, polling).
//
//   class FailoverEventStoreTest : public test::FailoverFixture { ... };
//   TEST_F(FailoverEventStoreTest, ...) {
//     auto store = OpenFailover(options);
//     primary_->down = true;
//     ...
//   }

#ifndef EVENTSTORE_TESTS_FAILOVER_FAILOVER_FIXTURE_H_
#define EVENTSTORE_TESTS_FAILOVER_FAILOVER_FIXTURE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_backends.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"
#endif

namespace eventstore::test {

inline constexpr char kTickType[] = "eventstore.test.v1.Tick";

// An event of type kTickType with a fresh id and `payload`.
inline EventData Event(std::string payload) {
  EventData e;
  e.id = Uuid::Generate();
  e.type = kTickType;
  e.payload = std::move(payload);
  return e;
}

// An OK StatusOr holding `value`.
MATCHER_P(IsOkHolding, value, "") {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  *result_listener << "holds " << ::testing::PrintToString(*arg);
  return *arg == value;
}

// The payloads of `events`, in order.
inline std::vector<std::string> PayloadsOf(
    const std::vector<RecordedEvent>& events) {
  std::vector<std::string> out;
  for (const RecordedEvent& e : events) out.push_back(e.payload);
  return out;
}

// The versions of `events`, in order.
inline std::vector<int64_t> VersionsOf(
    const std::vector<RecordedEvent>& events) {
  std::vector<int64_t> out;
  for (const RecordedEvent& e : events) out.push_back(e.version);
  return out;
}

// The payloads of `stream` as `store` reads them; a failure when it cannot.
inline std::vector<std::string> ReadPayloads(EventStore& store,
                                             const std::string& stream) {
  absl::StatusOr<std::vector<RecordedEvent>> events = store.ReadStream(stream);
  EXPECT_OK(events);
  return events.ok() ? PayloadsOf(*events) : std::vector<std::string>{};
}

// A primary that can be made unreachable: while `down`, every call that
// reaches the database fails with kUnavailable and the error of
// set_error() ("test primary: connection refused" unless set).
// `commit_then_fail` makes the next append commit and then report
// kUnavailable (a connection lost after the commit); `fail_after` lets
// that many appends through, then goes down; while `internal_error` is
// set, appends fail with kInternal (an error that stops a replay without
// parking the append). `appends` counts the appends that reached the
// database, `append_each_calls` the AppendEach calls (each refused with
// kInvalidArgument, as the backends do, when its appends hold more than
// limits().max_batch_events events; else one Append per request).
class SwitchablePrimary final : public ForwardingEventStore {
 public:
  explicit SwitchablePrimary(EventStore* target)
      : ForwardingEventStore(target) {}

  std::atomic<bool> down{false};
  std::atomic<bool> commit_then_fail{false};
  std::atomic<int> fail_after{-1};
  std::atomic<int> appends{0};
  std::atomic<bool> internal_error{false};
  std::atomic<int> append_each_calls{0};
  // While set, AppendEach (the replay's call) waits, counted in
  // stalled_append_each, until it is cleared: a replay held mid-batch.
  std::atomic<bool> stall_append_each{false};
  std::atomic<int> stalled_append_each{0};
  // While set together with `down`, ReadAll and WaitForEvents fail too (the
  // whole primary is unreachable, as a replica following it sees it).
  // Default false: the global log stays readable during an outage.
  std::atomic<bool> log_down_too{false};

  void set_error(std::string error) {
    internal::MutexLock lock(&mutex_);
    error_ = std::move(error);
  }

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    if (fail_after.load() == 0) down = true;
    if (down) return Unreachable();
    if (internal_error) return absl::InternalError("test primary: disk full");
    if (fail_after.load() > 0) --fail_after;
    ++appends;
    absl::StatusOr<AppendResult> result = ForwardingEventStore::Append(request);
    if (result.ok() && commit_then_fail.exchange(false)) return Unreachable();
    return result;
  }
  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests) override {
    ++append_each_calls;
    if (stall_append_each) {
      ++stalled_append_each;
      while (stall_append_each) absl::SleepFor(absl::Milliseconds(1));
    }
    size_t events = 0;
    for (const AppendRequest& request : requests) {
      events += request.events.size();
    }
    if (events > limits().max_batch_events) {
      return absl::InvalidArgumentError("test primary: batch too large");
    }
    return EventStore::AppendEach(requests);
  }
  absl::StatusOr<Position> HeadPosition() override {
    if (down) return Unreachable();
    return ForwardingEventStore::HeadPosition();
  }
  absl::StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream, const ReadStreamOptions& options) override {
    if (down) return Unreachable();
    return ForwardingEventStore::ReadStream(stream, options);
  }
  absl::StatusOr<int64_t> StreamVersion(std::string_view stream) override {
    if (down) return Unreachable();
    return ForwardingEventStore::StreamVersion(stream);
  }
  absl::StatusOr<bool> EventExists(const Uuid& id) override {
    if (down) return Unreachable();
    return ForwardingEventStore::EventExists(id);
  }
  absl::StatusOr<ReadAllPage> ReadAll(const ReadAllOptions& options) override {
    if (down && log_down_too) return Unreachable();
    return ForwardingEventStore::ReadAll(options);
  }
  absl::StatusOr<bool> WaitForEvents(Position after,
                                     absl::Duration timeout) override {
    if (down && log_down_too) return Unreachable();
    return ForwardingEventStore::WaitForEvents(after, timeout);
  }

 private:
  absl::Status Unreachable() const {
    internal::MutexLock lock(&mutex_);
    return absl::UnavailableError(error_);
  }

  mutable internal::Mutex mutex_;
  std::string error_ ABSL_GUARDED_BY(mutex_) =
      "test primary: connection refused";
};

// A FailoverEventStore with `options` over `primary` and a SQLite journal
// in the file `journal_path`; options.limits is set to the primary's, and
// the journal sized for them (OpenFailoverJournal).
inline absl::StatusOr<std::unique_ptr<FailoverEventStore>> CreateFailoverOver(
    std::unique_ptr<EventStore> primary, const std::string& journal_path,
    FailoverOptions options) {
  options.limits = primary->limits();
  ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> journal,
                      OpenFailoverJournal(journal_path, options.limits));
  return FailoverEventStore::Create(std::move(primary), std::move(journal),
                                    options);
}

class FailoverFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    SqliteOptions options;
    options.path = ":memory:";
    ASSERT_OK_AND_ASSIGN(database_, SqliteEventStore::Open(options));
  }

  // A failover store with `options` over database_ (through a switch, kept
  // in primary_) and the journal file journal.db in dir_; null, with a
  // failure recorded, if it cannot be created.
  std::unique_ptr<FailoverEventStore> OpenFailover(
      const FailoverOptions& options) {
    auto primary = std::make_unique<SwitchablePrimary>(database_.get());
    primary_ = primary.get();
    absl::StatusOr<std::unique_ptr<FailoverEventStore>> store =
        CreateFailoverOver(std::move(primary), dir_->File("journal.db"),
                           options);
    EXPECT_OK(store);
    return store.ok() ? std::move(*store) : nullptr;
  }

  // The payloads of `stream` in the primary, read directly.
  std::vector<std::string> PrimaryPayloads(const std::string& stream) {
    return ReadPayloads(*database_, stream);
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<EventStore> database_;
  SwitchablePrimary* primary_ = nullptr;
};

// Polls `done` every 2 ms until it holds or `timeout` passes; whether it
// held.
template <typename Condition>
bool PollUntil(Condition done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// Every event of `store`'s global log, in order.
inline absl::StatusOr<std::vector<RecordedEvent>> WholeLog(EventStore& store) {
  std::vector<RecordedEvent> out;
  ReadAllOptions options;
  while (true) {
    ES_ASSIGN_OR_RETURN(ReadAllPage page, store.ReadAll(options));
    for (RecordedEvent& event : page.events) out.push_back(std::move(event));
    if (page.end_of_log || page.events.empty()) return out;
    options.from_position = page.next_position;
  }
}

// The journal events a failover store's replay parked (its journal's dead
// letters under FailoverEventStore::kReplayName, not resolved).
inline absl::StatusOr<std::vector<DeadLetter>> ReplayDeadLetters(
    EventStore& journal) {
  return journal.dead_letters().List(FailoverEventStore::kReplayName,
                                     DeadLetterStatus::kParked, 1000000);
}

#ifdef EVENTSTORE_TEST_POSTGRES
// A PostgreSQL store on `server` (2 s to connect: a stopped server refuses
// at once anyway).
inline absl::StatusOr<std::unique_ptr<EventStore>> OpenPostgresPrimary(
    const PostgresServer& server) {
  PostgresOptions options;
  options.conninfo = server.url();
  options.connect_timeout = absl::Seconds(2);
  return PostgresEventStore::Open(options);
}

// The fixture of the failover tests over a real PostgreSQL server (stopped
// and started by the tests): the server, a temp dir for the journal, and
// another writer on the server.
class FailoverPostgresFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, PostgresServer::Start({}));
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    ASSERT_OK_AND_ASSIGN(rival_, OpenPostgresPrimary(*server_));
  }

  // A failover store with `options` over a new connection to the server and
  // the journal file journal.db in dir_; null, with a failure recorded, if
  // it cannot be created.
  std::unique_ptr<FailoverEventStore> OpenFailoverOverServer(
      const FailoverOptions& options) {
    absl::StatusOr<std::unique_ptr<EventStore>> primary =
        OpenPostgresPrimary(*server_);
    EXPECT_OK(primary);
    if (!primary.ok()) return nullptr;
    absl::StatusOr<std::unique_ptr<FailoverEventStore>> store =
        CreateFailoverOver(std::move(*primary), dir_->File("journal.db"),
                           options);
    EXPECT_OK(store);
    return store.ok() ? std::move(*store) : nullptr;
  }

  // The payloads of `stream` in the primary, read directly (by rival_).
  std::vector<std::string> PrimaryPayloads(const std::string& stream) {
    return ReadPayloads(*rival_, stream);
  }

  std::unique_ptr<PostgresServer> server_;
  std::unique_ptr<TempDir> dir_;
  // Another writer on the primary; also reads it directly.
  std::unique_ptr<EventStore> rival_;
};
#endif

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_FAILOVER_FAILOVER_FIXTURE_H_
