// FailoverEventStore recovery that converges (issue 11): a new append goes
// straight to the primary while recovering when nothing is pending for its
// stream, reads of a stream include its pending journaled appends, an
// expected version that contradicts them is refused at once, and an
// application writing only its own streams never has an append parked.
// The primary is a SQLite store behind a switch; the FailoverPostgres*
// tests stop and start a real PostgreSQL server.

#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/errors.h"
#include "eventstore/failover_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/failover/failover_fixture.h"
#include "tests/support/status_matchers.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#endif

namespace eventstore::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using Mode = FailoverStatus::Mode;

class FailoverConvergenceTest : public FailoverFixture {
 protected:
  std::unique_ptr<FailoverEventStore> Open(
      absl::Duration interval = absl::ZeroDuration()) {
    FailoverOptions options;
    options.allow_fallback = true;
    options.health_check_interval = interval;
    return OpenFailover(options);
  }
};

TEST_F(FailoverConvergenceTest,
       WhileRecoveringAStreamWithNothingPendingGoesStraightToThePrimary) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    primary_->down = true;
    ASSERT_OK(store->Append("a", ExpectedVersion::NoStream(), {Event("a1")}));
    ASSERT_OK(store->Append("a", ExpectedVersion::Exactly(1), {Event("a2")}));
  }
  // Left in the journal: the next store (over a primary that answers)
  // starts recovering.
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(store->Status().mode, Mode::kRecovering);
  const int appends_before = primary_->appends;

  ASSERT_OK_AND_ASSIGN(
      AppendResult direct,
      store->Append("b", ExpectedVersion::NoStream(), {Event("b1")}));
  EXPECT_FALSE(direct.journaled);
  EXPECT_EQ(direct.next_expected_version, 1);
  EXPECT_EQ(primary_->appends, appends_before + 1);
  EXPECT_THAT(PrimaryPayloads("b"), ElementsAre("b1"));

  // Behind the pending appends of its stream.
  ASSERT_OK_AND_ASSIGN(
      AppendResult behind,
      store->Append("a", ExpectedVersion::Exactly(2), {Event("a3")}));
  EXPECT_TRUE(behind.journaled);
  EXPECT_EQ(behind.next_expected_version, 3);
  EXPECT_EQ(primary_->appends, appends_before + 1);
  EXPECT_THAT(PrimaryPayloads("a"), IsEmpty());
  EXPECT_EQ(store->Status().pending, 3);

  ASSERT_OK(store->ReplayNow());
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.parked, 0);
  EXPECT_EQ(status.pending, 0);
  EXPECT_THAT(PrimaryPayloads("a"), ElementsAre("a1", "a2", "a3"));

  // Once its pending appends are replayed, a stream goes to the primary.
  ASSERT_OK_AND_ASSIGN(
      AppendResult after,
      store->Append("a", ExpectedVersion::Exactly(3), {Event("a4")}));
  EXPECT_FALSE(after.journaled);
}

TEST_F(FailoverConvergenceTest, ReadsIncludeTheStreamsPendingJournal) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK(store->Append("o", ExpectedVersion::NoStream(), {Event("p")}));
  primary_->down = true;
  EventData q = Event("q");
  ASSERT_OK(store->Append("o", ExpectedVersion::Exactly(1), {q}));
  ASSERT_OK_AND_ASSIGN(
      AppendResult r,
      store->Append("o", ExpectedVersion::Any(), {Event("r1"), Event("r2")}));
  EXPECT_EQ(r.next_expected_version, 4);
  primary_->down = false;  // answers, not replayed yet

  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("o"));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("p", "q", "r1", "r2"));
  EXPECT_THAT(VersionsOf(events), ElementsAre(1, 2, 3, 4));
  EXPECT_NE(events[0].position, Position());
  EXPECT_EQ(events[1].position, Position());  // not in the primary yet
  EXPECT_EQ(events[1].id, q.id);
  EXPECT_EQ(events[1].stream, "o");
  EXPECT_TRUE(events[1].metadata.properties().empty());
  EXPECT_THAT(store->StreamVersion("o"), IsOkHolding(4));
  EXPECT_THAT(store->EventExists(q.id), IsOkHolding(true));
  EXPECT_THAT(store->EventExists(Uuid::Generate()), IsOkHolding(false));

  ReadStreamOptions backward;
  backward.direction = Direction::kBackward;
  backward.max_count = 2;
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("o", backward));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("r2", "r1"));
  ReadStreamOptions from;
  from.from_version = 2;
  from.max_count = 2;
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("o", from));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("q", "r1"));

  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().parked, 0);
  ASSERT_OK_AND_ASSIGN(events, store->ReadStream("o"));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("p", "q", "r1", "r2"));
  EXPECT_NE(events[3].position, Position());
}

TEST_F(FailoverConvergenceTest,
       DuringAnOutageTheJournalAnswersOnlyWhatItKnowsExactly) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  EventData n1 = Event("n1");
  ASSERT_OK(store->Append("new", ExpectedVersion::NoStream(), {n1}));
  ASSERT_OK(store->Append("new", ExpectedVersion::Any(), {Event("n2")}));
  ASSERT_OK(store->Append("old", ExpectedVersion::Exactly(4), {Event("o5")}));
  ASSERT_OK(store->Append("any", ExpectedVersion::Any(), {Event("a")}));

  // The whole stream is in the journal.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("new"));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("n1", "n2"));
  EXPECT_THAT(VersionsOf(events), ElementsAre(1, 2));
  EXPECT_THAT(store->StreamVersion("new"), IsOkHolding(2));
  // Its version is known, its first four events are not.
  EXPECT_THAT(store->StreamVersion("old"), IsOkHolding(5));
  EXPECT_THAT(store->ReadStream("old"),
              StatusIs(absl::StatusCode::kUnavailable));
  // Nothing known.
  EXPECT_THAT(store->StreamVersion("any"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->ReadStream("any"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->ReadStream("untouched"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(store->EventExists(n1.id), IsOkHolding(true));
  EXPECT_THAT(store->EventExists(Uuid::Generate()),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(FailoverConvergenceTest,
       AnExpectedVersionContradictingThePendingJournalIsRefusedAtOnce) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  const std::vector<EventData> first = {Event("1")};
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), first));
  ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(1), {Event("2")}));

  absl::StatusOr<AppendResult> stale =
      store->Append("s", ExpectedVersion::Exactly(1), {Event("stale")});
  ASSERT_TRUE(IsWrongExpectedVersion(stale.status())) << stale.status();
  std::optional<WrongExpectedVersionInfo> info =
      GetWrongExpectedVersion(stale.status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->stream, "s");
  EXPECT_EQ(info->actual, 2);
  EXPECT_TRUE(IsWrongExpectedVersion(
      store->Append("s", ExpectedVersion::NoStream(), {Event("again")})
          .status()));
  EXPECT_EQ(store->Status().journaled, 2);

  // What holds is journaled; a retry of a pending append is no conflict.
  ASSERT_OK(store->Append("s", ExpectedVersion::Exactly(2), {Event("3")}));
  ASSERT_OK(store->Append("s", ExpectedVersion::StreamExists(), {Event("4")}));
  ASSERT_OK(store->Append("s", ExpectedVersion::NoStream(), first));
  EXPECT_EQ(store->Status().journaled, 4);

  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().parked, 0);
  EXPECT_THAT(PrimaryPayloads("s"), ElementsAre("1", "2", "3", "4"));
}

TEST_F(FailoverConvergenceTest, ReplayBatchesWithinThePrimarysBatchLimit) {
  SqliteOptions limited;
  limited.path = ":memory:";
  limited.limits.max_batch_events = 2;
  ASSERT_OK_AND_ASSIGN(database_, SqliteEventStore::Open(limited));
  auto store = Open();
  ASSERT_NE(store, nullptr);
  primary_->down = true;
  for (const char* stream : {"a", "b", "c", "d", "e"}) {
    ASSERT_OK(
        store->Append(stream, ExpectedVersion::NoStream(), {Event(stream)}));
  }
  ASSERT_OK(store->Append("big", ExpectedVersion::NoStream(),
                          {Event("big-1"), Event("big-2")}));
  primary_->down = false;
  ASSERT_OK(store->ReplayNow());
  // [a b] [c d] [e] [big]: one page, in calls of at most 2 events.
  EXPECT_EQ(primary_->append_each_calls, 4);
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.replayed, 6);
  EXPECT_EQ(status.parked, 0);
  EXPECT_THAT(PrimaryPayloads("e"), ElementsAre("e"));
  EXPECT_THAT(PrimaryPayloads("big"), ElementsAre("big-1", "big-2"));
}

// Writers that load the version of their own streams and append with
// Exactly(version), while the primary goes down and up under them and the
// health check replays: nothing parked, lost or duplicated, and no append
// overtakes a journaled one of its stream (each stream is in order).
TEST_F(FailoverConvergenceTest, ConcurrentOwnStreamWritersNeverPark) {
  auto store = Open(absl::Milliseconds(2));
  ASSERT_NE(store, nullptr);
  constexpr int kWriters = 4;
  constexpr int kStreamsEach = 3;
  constexpr int kOutages = 4;
  std::atomic<bool> done{false};
  std::atomic<int64_t> acknowledged{0};
  // kOutages outages of 20 journaled appends or more, each after 100
  // appends or more (while the health check replays the last one).
  std::thread flipper([&] {
    for (int outage = 0; outage < kOutages; ++outage) {
      const int64_t before = acknowledged;
      EXPECT_TRUE(PollUntil([&] { return acknowledged >= before + 100; },
                            absl::Seconds(30)));
      const int64_t journaled = store->Status().journaled;
      primary_->down = true;
      EXPECT_TRUE(
          PollUntil([&] { return store->Status().journaled >= journaled + 20; },
                    absl::Seconds(30)));
      primary_->down = false;
    }
    done = true;
  });
  std::vector<int> appended(kWriters, 0);
  std::vector<std::vector<std::string>> errors(kWriters);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      // Each stream's version as last known; every third append loads it
      // again (through the store: primary + pending journal).
      std::vector<int64_t> known(kStreamsEach, -1);
      for (int i = 0; !done;) {
        const int s = i % kStreamsEach;
        const std::string stream = absl::StrCat("writer-", w, "-", s);
        if (known[s] < 0 || i % 3 == 0) {
          absl::StatusOr<int64_t> version = store->StreamVersion(stream);
          if (version.ok()) {
            if (known[s] >= 0 && *version != known[s]) {
              errors[w].push_back(absl::StrCat(stream, " read version ",
                                               *version, ", wrote up to ",
                                               known[s]));
              return;
            }
            known[s] = *version;
          } else if (!absl::IsUnavailable(version.status())) {
            errors[w].push_back(version.status().ToString());
            return;
          } else if (known[s] < 0) {
            std::this_thread::yield();
            continue;  // the primary is down and the journal does not know
          }
        }
        absl::StatusOr<AppendResult> r =
            store->Append(stream, ExpectedVersion::Exactly(known[s]),
                          {Event(absl::StrCat(i))});
        if (!r.ok()) {
          errors[w].push_back(r.status().ToString());
          return;
        }
        known[s] = r->next_expected_version;
        appended[w] = ++i;
        ++acknowledged;
      }
    });
  }
  flipper.join();
  for (std::thread& t : writers) t.join();
  EXPECT_TRUE(PollUntil([&] { return store->Status().mode == Mode::kPrimary; },
                        absl::Seconds(60)));
  const FailoverStatus status = store->Status();
  EXPECT_GT(status.journaled, 0) << "no outage was seen";
  EXPECT_EQ(status.parked, 0) << status.last_error;
  EXPECT_EQ(status.pending, 0);
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_THAT(errors[w], IsEmpty());
    for (int s = 0; s < kStreamsEach; ++s) {
      std::vector<std::string> expected;
      for (int i = s; i < appended[w]; i += kStreamsEach) {
        expected.push_back(absl::StrCat(i));
      }
      EXPECT_EQ(PrimaryPayloads(absl::StrCat("writer-", w, "-", s)), expected)
          << "writer " << w << " stream " << s;
    }
  }
}

#ifdef EVENTSTORE_TEST_POSTGRES
class FailoverPostgresConvergenceTest : public FailoverPostgresFixture {
 protected:
  std::unique_ptr<FailoverEventStore> OpenFailover(absl::Duration interval) {
    FailoverOptions options;
    options.allow_fallback = true;
    options.health_check_interval = interval;
    return OpenFailoverOverServer(options);
  }
};

// Four writer threads, each loading and appending to its own streams at
// full speed through a 5 s outage and the recovery after it: nothing
// parked, lost or duplicated, and back to kPrimary while they write (the
// time is printed; the target is 10 s).
TEST_F(FailoverPostgresConvergenceTest,
       OwnStreamsThroughAnOutageNeverParkAndRecoveryConverges) {
  auto store = OpenFailover(absl::Milliseconds(100));
  ASSERT_NE(store, nullptr);
  constexpr int kWriters = 4;
  constexpr int kStreamsEach = 8;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> acknowledged{0};
  // Per writer: the payloads acknowledged per stream, in order.
  std::vector<std::map<std::string, std::vector<std::string>>> written(
      kWriters);
  std::vector<std::vector<std::string>> errors(kWriters);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; !stop; ++i) {
        const std::string stream =
            absl::StrCat("own-", w, "-", i % kStreamsEach);
        // Only this writer writes the stream: its version is the count of
        // appends acknowledged. When the store can answer (the primary is
        // up, or the stream's journal knows), it must say the same; when
        // it cannot (kUnavailable: down, nothing pending for the stream),
        // the writer goes on with its own count, so that appends reach the
        // journal whatever each thread was doing when the server stopped.
        const int64_t own = static_cast<int64_t>(written[w][stream].size());
        absl::StatusOr<int64_t> version = store->StreamVersion(stream);
        if (absl::IsUnavailable(version.status())) version = own;
        if (!version.ok()) {
          errors[w].push_back(version.status().ToString());
          return;
        }
        if (*version != own) {
          errors[w].push_back(absl::StrCat(stream, ": the store reads version ",
                                           *version, ", ", own,
                                           " appends were acknowledged"));
          return;
        }
        const std::string payload = absl::StrCat(i);
        absl::StatusOr<AppendResult> r = store->Append(
            stream, ExpectedVersion::Exactly(*version), {Event(payload)});
        if (!r.ok()) {
          errors[w].push_back(r.status().ToString());
          return;
        }
        written[w][stream].push_back(payload);
        ++acknowledged;
      }
    });
  }
  ASSERT_TRUE(
      PollUntil([&] { return acknowledged >= 400; }, absl::Seconds(60)));
  ASSERT_OK(server_->Stop());
  const absl::Time outage_end = absl::Now() + absl::Seconds(5);
  EXPECT_TRUE(PollUntil(
      [&] {
        return absl::Now() >= outage_end && store->Status().journaled > 0;
      },
      absl::Seconds(60)));
  const FailoverStatus at_restart = store->Status();
  ASSERT_OK(server_->StartAgain());
  const absl::Time up = absl::Now();
  const bool converged =
      PollUntil([&] { return store->Status().mode == Mode::kPrimary; },
                absl::Seconds(60));
  const absl::Duration recovery = absl::Now() - up;
  const int64_t during = acknowledged;
  stop = true;
  for (std::thread& t : writers) t.join();
  std::cout << "[ converge ] journaled during the 5 s outage: "
            << at_restart.journaled
            << ", pending at restart: " << at_restart.pending
            << "; back in kPrimary " << absl::FormatDuration(recovery)
            << " after the server started again, 4 writers appending ("
            << during << " appends acknowledged by then)" << std::endl;
  EXPECT_TRUE(converged) << "still " << FailoverModeName(store->Status().mode)
                         << " with " << store->Status().pending
                         << " pending after 60 s";
  ASSERT_TRUE(PollUntil([&] { return store->Status().mode == Mode::kPrimary; },
                        absl::Seconds(60)));

  const FailoverStatus status = store->Status();
  EXPECT_GT(status.journaled, 0);
  EXPECT_EQ(status.parked, 0) << status.last_error;
  EXPECT_EQ(status.pending, 0);
  for (int w = 0; w < kWriters; ++w) {
    EXPECT_THAT(errors[w], IsEmpty());
    for (const auto& [stream, payloads] : written[w]) {
      EXPECT_EQ(PrimaryPayloads(stream), payloads) << stream;
    }
  }
}

// Reads during recovery include the journaled appends; a stream with
// nothing pending is appended to the primary directly.
TEST_F(FailoverPostgresConvergenceTest, OwnJournaledWritesAreReadInRecovery) {
  {
    auto store = OpenFailover(absl::ZeroDuration());
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->Append("order-1", ExpectedVersion::NoStream(),
                            {Event("placed")}));
    ASSERT_OK(server_->Stop());
    ASSERT_OK_AND_ASSIGN(
        AppendResult paid,
        store->Append("order-1", ExpectedVersion::Exactly(1), {Event("paid")}));
    EXPECT_TRUE(paid.journaled);
    // During the outage the version is known from the journal.
    EXPECT_THAT(store->StreamVersion("order-1"), IsOkHolding(2));
    EXPECT_THAT(store->ReadStream("order-1"),
                StatusIs(absl::StatusCode::kUnavailable));
  }
  ASSERT_OK(server_->StartAgain());
  auto store = OpenFailover(absl::ZeroDuration());
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(store->Status().mode, Mode::kRecovering);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("order-1"));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("placed", "paid"));
  EXPECT_THAT(VersionsOf(events), ElementsAre(1, 2));
  ASSERT_OK_AND_ASSIGN(AppendResult shipped,
                       store->Append("order-1", ExpectedVersion::Exactly(2),
                                     {Event("shipped")}));
  EXPECT_TRUE(shipped.journaled);
  ASSERT_OK_AND_ASSIGN(
      AppendResult other,
      store->Append("order-2", ExpectedVersion::NoStream(), {Event("other")}));
  EXPECT_FALSE(other.journaled);
  EXPECT_THAT(PrimaryPayloads("order-1"), ElementsAre("placed"));

  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().mode, Mode::kPrimary);
  EXPECT_THAT(PrimaryPayloads("order-1"),
              ElementsAre("placed", "paid", "shipped"));
  EXPECT_THAT(PrimaryPayloads("order-2"), ElementsAre("other"));
}

// A rival writer on the primary during the outage: the journaled append
// whose expected version no longer holds is parked, not dropped.
TEST_F(FailoverPostgresConvergenceTest, ARivalWriterStillParksNotDrops) {
  auto store = OpenFailover(absl::ZeroDuration());
  ASSERT_NE(store, nullptr);
  ASSERT_OK(
      store->Append("shared", ExpectedVersion::NoStream(), {Event("placed")}));
  ASSERT_OK(server_->Stop());
  EventData mine = Event("mine");
  ASSERT_OK(store->Append("shared", ExpectedVersion::Exactly(1), {mine}));
  ASSERT_OK(store->Append("private", ExpectedVersion::NoStream(),
                          {Event("private")}));
  ASSERT_OK(server_->StartAgain());
  ASSERT_OK(
      rival_->Append("shared", ExpectedVersion::Exactly(1), {Event("theirs")}));
  // The read shows what replay will make of it: the rival's event, not mine.
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       store->ReadStream("shared"));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("placed", "theirs"));

  ASSERT_OK(store->ReplayNow());
  const FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kPrimary);
  EXPECT_EQ(status.parked, 1);
  EXPECT_EQ(status.replayed, 1);
  EXPECT_THAT(PrimaryPayloads("shared"), ElementsAre("placed", "theirs"));
  EXPECT_THAT(PrimaryPayloads("private"), ElementsAre("private"));
  ASSERT_OK_AND_ASSIGN(
      std::vector<DeadLetter> parked,
      store->journal().dead_letters().List(FailoverEventStore::kReplayName,
                                           DeadLetterStatus::kParked, 10));
  ASSERT_THAT(parked, SizeIs(1));
  EXPECT_EQ(parked[0].event_id, mine.id);
}
#endif

}  // namespace
}  // namespace eventstore::test
