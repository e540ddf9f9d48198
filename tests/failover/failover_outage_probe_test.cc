// The outage probe of issue 11 as a test: a real PostgreSQL server stopped
// for 1, 3 and 5 s while 4 writer threads append at full speed through a
// FailoverEventStore (private streams of their own and streams they all
// share) and a rival writer appends to the shared streams directly on the
// primary. Asserts that every acknowledged append is in the primary exactly
// once or parked whole, that nothing is duplicated, that nothing on a
// private stream is parked, that every stream's versions run 1..n, and how
// long the store takes to get back to kPrimary after each outage (printed).

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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

#ifdef EVENTSTORE_TEST_POSTGRES
using ::testing::IsEmpty;
using Mode = FailoverStatus::Mode;

constexpr int kWriters = 4;
constexpr int kPrivateEach = 4;  // private streams per writer
constexpr int kShared = 3;       // streams every writer and the rival write
// Recovery is awaited this long; the issue's target is 10 s after a 5 s
// outage, the bound is generous for a loaded CI machine.
constexpr absl::Duration kRecoveryBound = absl::Seconds(30);

std::string PrivateStream(int writer, int k) {
  return absl::StrCat("probe-private-", writer, "-", k);
}
std::string SharedStream(int k) { return absl::StrCat("probe-shared-", k); }

// One append acknowledged (an OK result) to a writer.
struct Ack {
  std::string stream;
  std::vector<Uuid> ids;
  bool journaled = false;
};

// What one writer thread did; only that thread touches it until joined.
struct WriterLog {
  std::vector<Ack> acks;
  // Unexpected outcomes (the first 20), and how many there were.
  std::vector<std::string> errors;
  int64_t error_count = 0;
  // Appends refused with a wrong expected version (shared streams only),
  // then retried after reading the version again.
  int64_t conflicts = 0;

  void Error(std::string what) {
    if (++error_count <= 20) errors.push_back(std::move(what));
  }
};

// One or two events (alternately) with fresh ids, payloads `tag`/0, /1.
std::vector<EventData> Batch(const std::string& tag, int64_t i) {
  std::vector<EventData> events;
  for (int e = 0; e < 1 + i % 2; ++e) {
    events.push_back(Event(absl::StrCat(tag, "/", e)));
  }
  return events;
}

Ack Acknowledged(std::string stream, const std::vector<EventData>& events,
                 bool journaled) {
  Ack ack;
  ack.stream = std::move(stream);
  for (const EventData& e : events) ack.ids.push_back(e.id);
  ack.journaled = journaled;
  return ack;
}

class FailoverPostgresOutageProbeTest : public FailoverPostgresFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(FailoverPostgresFixture::SetUp());
    FailoverOptions options;
    options.allow_fallback = true;
    options.health_check_interval = absl::Milliseconds(50);
    store_ = OpenFailoverOverServer(options);
    ASSERT_NE(store_, nullptr);
  }

  // Writer `w`: appends at full speed with Exactly(version), the version
  // loaded from the store first. Two appends in three go to one of its
  // private streams: when the store cannot tell the version (kUnavailable:
  // the primary is down and nothing is journaled for the stream), it uses
  // the version its own last append left, since nobody else writes there;
  // when the store can, that version must be its own last one (it reads
  // its own writes). Every third goes to a shared stream, retried with the
  // version read again while the expected version is wrong; skipped when
  // the version cannot be read.
  void Write(int w, WriterLog& log) {
    std::vector<int64_t> known(kPrivateEach, -1);
    for (int64_t i = 0; !stop_; ++i) {
      const std::string tag = absl::StrCat("w", w, "-", i);
      if (i % 3 == 2) {
        WriteShared(SharedStream(static_cast<int>(i / 3 % kShared)), tag, i,
                    log);
        continue;
      }
      const int k = static_cast<int>(i % kPrivateEach);
      const std::string stream = PrivateStream(w, k);
      absl::StatusOr<int64_t> version = store_->StreamVersion(stream);
      int64_t expected = -1;
      if (version.ok()) {
        if (known[k] >= 0 && *version != known[k]) {
          log.Error(absl::StrCat(stream, ": read version ", *version,
                                 ", its own last append left ", known[k]));
        }
        expected = *version;
      } else if (absl::IsUnavailable(version.status()) && known[k] >= 0) {
        expected = known[k];
      } else if (absl::IsUnavailable(version.status())) {
        std::this_thread::yield();
        continue;
      } else {
        log.Error(absl::StrCat(
            stream, ": StreamVersion: ", version.status().ToString()));
        continue;
      }
      const std::vector<EventData> events = Batch(tag, i);
      absl::StatusOr<AppendResult> r =
          store_->Append(stream, ExpectedVersion::Exactly(expected), events);
      if (!r.ok()) {
        log.Error(absl::StrCat(stream, ": Append: ", r.status().ToString()));
        known[k] = -1;
        continue;
      }
      known[k] = r->next_expected_version;
      log.acks.push_back(Acknowledged(stream, events, r->journaled));
      Count(r->journaled);
    }
  }

  void WriteShared(const std::string& stream, const std::string& tag, int64_t i,
                   WriterLog& log) {
    for (int attempt = 0; attempt < 1000 && !stop_; ++attempt) {
      absl::StatusOr<int64_t> version = store_->StreamVersion(stream);
      if (absl::IsUnavailable(version.status())) {
        std::this_thread::yield();
        return;
      }
      if (!version.ok()) {
        log.Error(absl::StrCat(
            stream, ": StreamVersion: ", version.status().ToString()));
        return;
      }
      const std::vector<EventData> events =
          Batch(absl::StrCat(tag, "-", attempt), i);
      absl::StatusOr<AppendResult> r =
          store_->Append(stream, ExpectedVersion::Exactly(*version), events);
      if (r.ok()) {
        log.acks.push_back(Acknowledged(stream, events, r->journaled));
        Count(r->journaled);
        return;
      }
      if (!IsWrongExpectedVersion(r.status())) {
        log.Error(absl::StrCat(stream, ": Append: ", r.status().ToString()));
        return;
      }
      ++log.conflicts;
    }
  }

  // The rival: appends to the shared streams directly on the primary while
  // it is up. An append whose outcome is unknown (kUnavailable) is not
  // acknowledged; it may or may not be in the primary.
  void Rival(WriterLog& log) {
    for (int64_t i = 0; !stop_; ++i) {
      const std::string stream = SharedStream(static_cast<int>(i % kShared));
      absl::StatusOr<int64_t> version = rival_->StreamVersion(stream);
      if (absl::IsUnavailable(version.status())) {
        // Down: try again soon, without spinning on refused connections.
        absl::SleepFor(absl::Milliseconds(1));
        continue;
      }
      if (!version.ok()) {
        log.Error(absl::StrCat(
            stream, ": StreamVersion: ", version.status().ToString()));
        continue;
      }
      const std::vector<EventData> events = Batch(absl::StrCat("rival-", i), i);
      absl::StatusOr<AppendResult> r =
          rival_->Append(stream, ExpectedVersion::Exactly(*version), events);
      if (r.ok()) {
        log.acks.push_back(Acknowledged(stream, events, false));
        ++rival_acked_;
      } else if (IsWrongExpectedVersion(r.status())) {
        ++log.conflicts;
      } else if (!absl::IsUnavailable(r.status())) {
        log.Error(absl::StrCat(stream, ": Append: ", r.status().ToString()));
      }
    }
  }

  void Count(bool journaled) {
    ++acked_;
    if (journaled) {
      ++acked_journaled_;
    } else {
      ++acked_direct_;
    }
  }

  void StartWriters() {
    for (int w = 0; w < kWriters; ++w) {
      threads_.emplace_back([this, w] { Write(w, logs_[w]); });
    }
    threads_.emplace_back([this] { Rival(rival_log_); });
  }

  void StopWriters() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  void TearDown() override { StopWriters(); }

  // Stops the server for `outage`, starts it again, and waits until the
  // store is back in kPrimary (at most kRecoveryBound) and the writers have
  // appended 200 more times straight to the primary. Prints and checks
  // that the writers appended during the outage, and the time back to
  // kPrimary after the server started. When `again` is set, the server is
  // stopped a second time for `again` as soon as the store has replayed a
  // batch and still has appends pending (stopped again during replay),
  // before the wait for kPrimary.
  void Outage(absl::Duration outage,
              absl::Duration again = absl::ZeroDuration()) {
    const FailoverStatus before = store_->Status();
    const int64_t journaled_before = acked_journaled_;
    absl::Time stopping = absl::Now();
    ASSERT_OK(server_->Stop());
    // The outage itself: its length is what is probed, not a wait for
    // something to happen.
    absl::SleepFor(stopping + outage - absl::Now());
    const FailoverStatus during = store_->Status();
    const int64_t journaled_during = acked_journaled_ - journaled_before;
    ASSERT_OK(server_->StartAgain());
    absl::Time up = absl::Now();
    std::string replay_cut;
    if (again > absl::ZeroDuration()) {
      FailoverStatus mid;
      ASSERT_TRUE(PollUntil(
          [&] {
            mid = store_->Status();
            return mid.mode == Mode::kRecovering &&
                   mid.replayed > during.replayed && mid.pending > 0;
          },
          kRecoveryBound))
          << "no batch replayed with appends still pending";
      stopping = absl::Now();
      ASSERT_OK(server_->Stop());
      absl::SleepFor(stopping + again - absl::Now());
      ASSERT_OK(server_->StartAgain());
      up = absl::Now();
      replay_cut =
          absl::StrCat(", stopped again for ", absl::FormatDuration(again),
                       " after ", mid.replayed - during.replayed,
                       " replayed with ", mid.pending, " pending");
    }
    const bool back =
        PollUntil([&] { return store_->Status().mode == Mode::kPrimary; },
                  kRecoveryBound);
    const absl::Duration recovery = absl::Now() - up;
    const FailoverStatus after = store_->Status();
    std::cout << "[ probe    ] outage " << absl::FormatDuration(outage) << ": "
              << journaled_during << " appends journaled during it, "
              << during.pending << " pending at its end" << replay_cut
              << "; back in kPrimary "
              << (back ? absl::FormatDuration(recovery)
                       : absl::StrCat("not within ",
                                      absl::FormatDuration(kRecoveryBound)))
              << " after the server started again (" << after.replayed
              << " replayed, " << after.parked << " parked since start)"
              << std::endl;
    EXPECT_GT(journaled_during, 0) << "no writer appended during the outage";
    EXPECT_GT(during.journaled, before.journaled);
    ASSERT_TRUE(back) << FailoverModeName(after.mode) << " with "
                      << after.pending << " pending, " << after.last_error;
    EXPECT_LT(recovery, kRecoveryBound);
    // The writers go on, straight to the primary again.
    const int64_t direct = acked_direct_;
    ASSERT_TRUE(PollUntil([&] { return acked_direct_ >= direct + 200; },
                          absl::Seconds(30)))
        << "writers stalled after the outage";
  }

  // Stops the writers, waits for kPrimary, and checks what they wrote:
  // every acknowledged append in the primary exactly once, whole and in
  // order, or (journaled, on a shared stream) parked whole; nothing
  // duplicated; every stream's versions 1..n; no writer errors.
  void StopAndVerify(absl::Time began) {
    StopWriters();
    ASSERT_TRUE(
        PollUntil([&] { return store_->Status().mode == Mode::kPrimary; },
                  kRecoveryBound));
    const FailoverStatus status = store_->Status();
    EXPECT_EQ(status.pending, 0);

    // The primary's log, and what replay parked.
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> log, WholeLog(*rival_));
    absl::flat_hash_map<Uuid, const RecordedEvent*> in_primary;
    int64_t duplicates = 0;
    for (const RecordedEvent& e : log) {
      if (!in_primary.emplace(e.id, &e).second) ++duplicates;
    }
    EXPECT_EQ(duplicates, 0);
    ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> dead,
                         ReplayDeadLetters(store_->journal()));
    absl::flat_hash_set<Uuid> parked_ids;
    for (const DeadLetter& d : dead) {
      EXPECT_TRUE(parked_ids.insert(d.event_id).second) << d.event_id;
      EXPECT_FALSE(absl::StrContains(d.stream, "private"))
          << "parked on a private stream: " << d.stream << " (" << d.error
          << ")";
    }

    int64_t acks = 0;
    int64_t parked_acks = 0;
    int64_t journaled_acks = 0;
    int64_t lost = 0;
    std::vector<std::string> wrong;
    absl::flat_hash_set<Uuid> acked_ids;
    std::vector<const WriterLog*> all_logs;
    for (const WriterLog& l : logs_) all_logs.push_back(&l);
    all_logs.push_back(&rival_log_);
    for (const WriterLog* l : all_logs) {
      for (const Ack& ack : l->acks) {
        ++acks;
        if (ack.journaled) ++journaled_acks;
        int present = 0;
        int parked = 0;
        for (size_t i = 0; i < ack.ids.size(); ++i) {
          acked_ids.insert(ack.ids[i]);
          parked += parked_ids.contains(ack.ids[i]) ? 1 : 0;
          auto it = in_primary.find(ack.ids[i]);
          if (it == in_primary.end()) continue;
          ++present;
          const RecordedEvent& e = *it->second;
          auto first = in_primary.find(ack.ids[0]);
          if (e.stream != ack.stream || first == in_primary.end() ||
              e.version != first->second->version + static_cast<int64_t>(i)) {
            wrong.push_back(absl::StrCat(ack.stream, ": event ", i, " of ",
                                         ack.ids[0].ToString(), " at ",
                                         e.stream, "@", e.version));
          }
        }
        const int size = static_cast<int>(ack.ids.size());
        if (present == size && parked == 0) continue;
        if (present == 0 && parked == size && ack.journaled) {
          ++parked_acks;
          continue;
        }
        ++lost;
        wrong.push_back(absl::StrCat(
            ack.stream, ": append ", ack.ids[0].ToString(), " (", size,
            " events, journaled ", ack.journaled, "): ", present,
            " in the primary, ", parked, " parked"));
      }
    }
    EXPECT_EQ(lost, 0);
    EXPECT_EQ(parked_acks, status.parked);
    EXPECT_EQ(static_cast<int64_t>(parked_ids.size()),
              static_cast<int64_t>(dead.size()));
    wrong.resize(std::min<size_t>(wrong.size(), 20));
    EXPECT_THAT(wrong, IsEmpty());
    // The writers' events in the primary were all acknowledged to them (the
    // rival's may include appends whose outcome it never learnt).
    int64_t unacknowledged = 0;
    for (const RecordedEvent& e : log) {
      if (absl::StartsWith(e.payload, "w") && !acked_ids.contains(e.id)) {
        ++unacknowledged;
      }
    }
    EXPECT_EQ(unacknowledged, 0);

    // Every stream's versions run 1..n.
    std::vector<std::string> streams;
    for (int k = 0; k < kShared; ++k) streams.push_back(SharedStream(k));
    for (int w = 0; w < kWriters; ++w) {
      for (int k = 0; k < kPrivateEach; ++k) {
        streams.push_back(PrivateStream(w, k));
      }
    }
    for (const std::string& stream : streams) {
      ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                           rival_->ReadStream(stream));
      for (size_t i = 0; i < events.size(); ++i) {
        ASSERT_EQ(events[i].version, static_cast<int64_t>(i) + 1)
            << stream << " has a gap";
      }
    }

    int64_t conflicts = 0;
    for (int w = 0; w < kWriters; ++w) {
      EXPECT_THAT(logs_[w].errors, IsEmpty())
          << "writer " << w << ": " << logs_[w].error_count << " errors";
      conflicts += logs_[w].conflicts;
    }
    EXPECT_THAT(rival_log_.errors, IsEmpty());
    std::cout << "[ probe    ] " << acks << " appends acknowledged ("
              << journaled_acks << " journaled, " << rival_log_.acks.size()
              << " by the rival), " << log.size() << " events in the primary; "
              << status.replayed << " replayed, " << parked_acks
              << " parked (shared streams), " << conflicts
              << " conflicts retried by the writers; "
              << absl::FormatDuration(absl::Now() - began) << " in all"
              << std::endl;
  }

  // Waits until the writers and the rival are under way.
  void WaitForTraffic() {
    ASSERT_TRUE(PollUntil([&] { return acked_ >= 300 && rival_acked_ >= 20; },
                          absl::Seconds(60)))
        << acked_ << " appends and " << rival_acked_
        << " rival appends in 60 s";
  }

  // rival_ (of the fixture) writes the shared streams directly on the
  // primary, and reads it at the end.
  std::unique_ptr<FailoverEventStore> store_;
  std::vector<WriterLog> logs_ = std::vector<WriterLog>(kWriters);
  WriterLog rival_log_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_{0};
  std::atomic<int64_t> acked_journaled_{0};
  std::atomic<int64_t> acked_direct_{0};
  std::atomic<int64_t> rival_acked_{0};
};

TEST_F(FailoverPostgresOutageProbeTest,
       OutagesOfOneThreeAndFiveSecondsLoseNothingAndRecover) {
  const absl::Time began = absl::Now();
  StartWriters();
  ASSERT_NO_FATAL_FAILURE(WaitForTraffic());
  for (const absl::Duration outage :
       {absl::Seconds(1), absl::Seconds(3), absl::Seconds(5)}) {
    ASSERT_NO_FATAL_FAILURE(Outage(outage));
  }
  StopAndVerify(began);
}

// The primary stopped again during the replay after an outage (a batch
// replayed, appends still pending), while the writers go on.
TEST_F(FailoverPostgresOutageProbeTest,
       StoppedAgainDuringTheReplayLosesNothingAndRecovers) {
  const absl::Time began = absl::Now();
  StartWriters();
  ASSERT_NO_FATAL_FAILURE(WaitForTraffic());
  ASSERT_NO_FATAL_FAILURE(Outage(absl::Seconds(3), absl::Seconds(1)));
  StopAndVerify(began);
}
#endif

}  // namespace
}  // namespace eventstore::test
