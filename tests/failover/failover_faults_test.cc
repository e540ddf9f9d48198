// FailoverEventStore faults during replay (issue 11), against a real
// PostgreSQL server: the primary stopped again after some but not all
// journaled appends were replayed (before a page reached it, and after a
// page committed but before its answer arrived), and the process killed
// with SIGKILL mid-replay (between a committed page and its checkpoint, and
// at an arbitrary moment). Each time, a later replay writes every journaled
// append into the primary exactly once.
//
// Two faults of the at-once refusal of a journaled append (over a SQLite
// primary behind a switch): an append at the version a read returned,
// behind a pending append that will be parked; an append whose outcome is
// unknown (committed, then the connection broke) while another writer of
// its stream journaled one.
//
// The process killed during replication (a StoreReplica copying) is tested
// in store_replica_test.cc.

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/failover_event_store.h"
#include "eventstore/forwarding_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/failover/failover_fixture.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "backends/postgres/postgres_event_store.h"
#include "tests/support/postgres_server.h"
#endif

namespace eventstore::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Mode = FailoverStatus::Mode;

class FailoverFaultsTest : public FailoverFixture {};

// A rival writer appended to the primary during the outage, so the
// journaled append of a stream will be parked; reads leave it out, and an
// append at the version read (which will replay, behind the parked one) is
// taken, not refused as contradicting the pending appends.
TEST_F(FailoverFaultsTest,
       AnAppendAtTheVersionReadIsTakenWhenThePendingOneWillBeParked) {
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  auto store = OpenFailover(options);
  ASSERT_NE(store, nullptr);
  ASSERT_OK(
      store->Append("shared", ExpectedVersion::NoStream(), {Event("placed")}));
  primary_->down = true;
  ASSERT_OK_AND_ASSIGN(
      AppendResult mine,
      store->Append("shared", ExpectedVersion::Exactly(1), {Event("mine")}));
  ASSERT_TRUE(mine.journaled);
  primary_->down = false;
  ASSERT_OK(database_->Append("shared", ExpectedVersion::Exactly(1),
                              {Event("theirs-1"), Event("theirs-2")}));

  // "mine" will be parked: the read leaves it out.
  ASSERT_OK_AND_ASSIGN(int64_t version, store->StreamVersion("shared"));
  EXPECT_EQ(version, 3);
  absl::StatusOr<AppendResult> next = store->Append(
      "shared", ExpectedVersion::Exactly(version), {Event("next")});
  EXPECT_OK(next) << "the store read version " << version
                  << " and refused an append at it";

  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().parked, 1);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       database_->ReadStream("shared"));
  EXPECT_THAT(PayloadsOf(events),
              ElementsAre("placed", "theirs-1", "theirs-2", "next"));
}

// A primary whose Append goes through `hook` (given the request and the
// real store).
class AppendHookPrimary final : public ForwardingEventStore {
 public:
  using Hook = std::function<absl::StatusOr<AppendResult>(const AppendRequest&,
                                                          EventStore&)>;
  AppendHookPrimary(EventStore* target, Hook hook)
      : ForwardingEventStore(target), target_(target), hook_(std::move(hook)) {}

  absl::StatusOr<AppendResult> Append(const AppendRequest& request) override {
    return hook_(request, *target_);
  }

 private:
  EventStore* const target_;
  const Hook hook_;
};

// An append whose outcome is unknown (the primary committed it, then the
// connection broke: kUnavailable) while another writer of the same stream
// journaled an append in between: the unknown one is journaled too (its
// replay is a no-op, by id), never refused as a conflict, since it may
// have committed (it did here).
TEST_F(FailoverFaultsTest, AnAppendOfUnknownOutcomeIsJournaledNotRefused) {
  ASSERT_OK(
      database_->Append("s", ExpectedVersion::NoStream(), {Event("placed")}));
  absl::Notification committed;
  absl::Notification release;
  std::atomic<bool> other_down{true};
  std::atomic<bool> hold{true};  // the first "in-doubt" append only
  auto primary = std::make_unique<AppendHookPrimary>(
      database_.get(),
      [&](const AppendRequest& request,
          EventStore& target) -> absl::StatusOr<AppendResult> {
        if (request.stream == "other" && other_down) {
          return absl::UnavailableError("test primary: connection refused");
        }
        if (request.events.front().payload != "in-doubt" ||
            !hold.exchange(false)) {
          return target.Append(request);
        }
        absl::StatusOr<AppendResult> result = target.Append(request);
        committed.Notify();
        release.WaitForNotification();
        if (!result.ok()) return result;
        return absl::UnavailableError(
            "test primary: connection lost after the commit");
      });
  FailoverOptions options;
  options.allow_fallback = true;
  options.health_check_interval = absl::ZeroDuration();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<FailoverEventStore> store,
                       CreateFailoverOver(std::move(primary),
                                          dir_->File("journal.db"), options));

  absl::StatusOr<AppendResult> in_doubt;
  std::thread writer([&] {
    in_doubt =
        store->Append("s", ExpectedVersion::Exactly(1), {Event("in-doubt")});
  });
  ASSERT_TRUE(committed.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // Meanwhile the primary fails for another append (kFallback), and a
  // second writer of "s" journals its append at the version it knew.
  ASSERT_OK_AND_ASSIGN(
      AppendResult other,
      store->Append("other", ExpectedVersion::NoStream(), {Event("other")}));
  EXPECT_TRUE(other.journaled);
  ASSERT_OK_AND_ASSIGN(
      AppendResult rival,
      store->Append("s", ExpectedVersion::Exactly(1), {Event("rival")}));
  EXPECT_TRUE(rival.journaled);
  release.Notify();
  writer.join();
  other_down = false;

  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> events,
                       database_->ReadStream("s"));
  ASSERT_THAT(PayloadsOf(events), ElementsAre("placed", "in-doubt"));
  EXPECT_OK(in_doubt) << "refused, yet committed in the primary";
  ASSERT_OK(store->ReplayNow());
  EXPECT_EQ(store->Status().parked, 1);  // "rival": "s" is at 2
  ASSERT_OK_AND_ASSIGN(events, database_->ReadStream("s"));
  EXPECT_THAT(PayloadsOf(events), ElementsAre("placed", "in-doubt"));
}

#ifdef EVENTSTORE_TEST_POSTGRES

// A primary that runs `hook` around its AppendEach calls (the replay's
// batches): before(n) ahead of the n-th call (from 1), after(n) once it
// returned; after's status, when not OK, replaces the call's result.
class HookedPrimary final : public ForwardingEventStore {
 public:
  HookedPrimary(std::unique_ptr<EventStore> target,
                std::function<void(int)> before,
                std::function<absl::Status(int)> after)
      : ForwardingEventStore(target.get()),
        owned_(std::move(target)),
        before_(std::move(before)),
        after_(std::move(after)) {}

  absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> AppendEach(
      absl::Span<const AppendRequest> requests) override {
    const int n = ++calls_;
    if (before_) before_(n);
    absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>> result =
        ForwardingEventStore::AppendEach(requests);
    if (after_) {
      absl::Status replaced = after_(n);
      if (!replaced.ok()) return replaced;
    }
    return result;
  }

 private:
  const std::unique_ptr<EventStore> owned_;
  const std::function<void(int)> before_;
  const std::function<absl::Status(int)> after_;
  std::atomic<int> calls_{0};
};

// One journaled append: its stream and its events' payloads.
struct Written {
  std::string stream;
  std::vector<std::string> payloads;
};

class FailoverPostgresFaultsTest : public ::testing::Test {
 protected:
  static constexpr int kStreams = 4;

  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, PostgresServer::Start({}));
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
  }

  std::string JournalPath() const { return dir_->File("journal.db"); }

  // A failover store over `primary` (the server's, when null) and the
  // journal, replaying only when told (ReplayNow), `page` journal events
  // per batch.
  std::unique_ptr<FailoverEventStore> Open(
      std::unique_ptr<EventStore> primary = nullptr, int64_t page = 4) {
    if (primary == nullptr) {
      absl::StatusOr<std::unique_ptr<EventStore>> opened =
          OpenPostgresPrimary(*server_);
      EXPECT_OK(opened);
      if (!opened.ok()) return nullptr;
      primary = std::move(*opened);
    }
    FailoverOptions options;
    options.allow_fallback = true;
    options.health_check_interval = absl::ZeroDuration();
    options.replay_page_size = page;
    absl::StatusOr<std::unique_ptr<FailoverEventStore>> store =
        CreateFailoverOver(std::move(primary), JournalPath(), options);
    EXPECT_OK(store);
    return store.ok() ? std::move(*store) : nullptr;
  }

  // `count` appends journaled through `store` while the server is down,
  // round robin over kStreams streams, with Exactly(version); every third
  // holds two events. Each stream's first event ("s<k>-0") was appended to
  // the primary before the outage, through the store.
  void JournalAppends(FailoverEventStore& store, int count) {
    if (server_->running()) {
      for (int k = 0; k < kStreams; ++k) {
        ASSERT_OK(Append(store, k, {absl::StrCat("s", k, "-0")}));
      }
      ASSERT_OK(server_->Stop());
    }
    for (int i = 0; i < count; ++i) {
      const int k = i % kStreams;
      std::vector<std::string> payloads = {absl::StrCat("s", k, "-", i + 1)};
      if (i % 3 == 0) payloads.push_back(absl::StrCat("s", k, "-", i + 1, "b"));
      ASSERT_OK_AND_ASSIGN(AppendResult r, Append(store, k, payloads));
      ASSERT_TRUE(r.journaled);
    }
  }

  absl::StatusOr<AppendResult> Append(FailoverEventStore& store, int k,
                                      std::vector<std::string> payloads) {
    const std::string stream = absl::StrCat("fault-", k);
    std::vector<EventData> events;
    for (const std::string& p : payloads) events.push_back(Event(p));
    ES_ASSIGN_OR_RETURN(
        AppendResult r,
        store.Append(stream, ExpectedVersion::Exactly(versions_[k]), events));
    versions_[k] = r.next_expected_version;
    written_.push_back({stream, std::move(payloads)});
    return r;
  }

  // The primary holds every append written (through the store), each
  // exactly once, in order, each stream's versions 1..n; nothing parked.
  void ExpectEverythingOnce(FailoverEventStore& store) {
    const FailoverStatus status = store.Status();
    EXPECT_EQ(status.mode, Mode::kPrimary);
    EXPECT_EQ(status.pending, 0);
    EXPECT_EQ(status.parked, 0) << status.last_error;
    ASSERT_OK_AND_ASSIGN(std::vector<DeadLetter> parked,
                         ReplayDeadLetters(store.journal()));
    EXPECT_THAT(parked, IsEmpty());
    std::map<std::string, std::vector<std::string>> expected;
    for (const Written& w : written_) {
      for (const std::string& p : w.payloads) expected[w.stream].push_back(p);
    }
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> reader,
                         OpenPostgresPrimary(*server_));
    ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> log, WholeLog(*reader));
    absl::flat_hash_set<Uuid> ids;
    std::map<std::string, std::vector<std::string>> got;
    for (const RecordedEvent& e : log) {
      EXPECT_TRUE(ids.insert(e.id).second) << "twice: " << e.id;
      std::vector<std::string>& payloads = got[e.stream];
      payloads.push_back(e.payload);
      EXPECT_EQ(e.version, static_cast<int64_t>(payloads.size()))
          << e.stream << " " << e.payload;
    }
    EXPECT_EQ(got, expected);
  }

  // The events in the primary's streams now (-1 when it cannot be read),
  // read through `reader`.
  static int64_t PrimaryEvents(EventStore& reader) {
    int64_t n = 0;
    for (int k = 0; k < kStreams; ++k) {
      absl::StatusOr<int64_t> version =
          reader.StreamVersion(absl::StrCat("fault-", k));
      if (!version.ok()) return -1;
      n += *version;
    }
    return n;
  }
  int64_t PrimaryEvents() {
    absl::StatusOr<std::unique_ptr<EventStore>> reader =
        OpenPostgresPrimary(*server_);
    EXPECT_OK(reader);
    return reader.ok() ? PrimaryEvents(**reader) : -1;
  }

  // The events of written_[from, from + count).
  int64_t WrittenEvents(size_t from = 0, size_t count = SIZE_MAX) const {
    int64_t n = 0;
    for (size_t i = from; i < written_.size() && i - from < count; ++i) {
      n += static_cast<int64_t>(written_[i].payloads.size());
    }
    return n;
  }

  std::unique_ptr<PostgresServer> server_;
  std::unique_ptr<TempDir> dir_;
  int64_t versions_[kStreams] = {0, 0, 0, 0};
  std::vector<Written> written_;
};

// The server stops again as the replay's third batch is about to reach it
// (two batches replayed), then starts: the replay resumes where it stopped,
// behind it what was journaled during the second outage.
TEST_F(FailoverPostgresFaultsTest, StoppedAgainMidReplayReplaysEverythingOnce) {
  std::atomic<int> stop_before{-1};
  absl::Status stopped;
  auto primary = OpenPostgresPrimary(*server_);
  ASSERT_OK(primary);
  auto store = Open(std::make_unique<HookedPrimary>(
      std::move(*primary),
      [&](int n) {
        if (n == stop_before) stopped = server_->Stop();
      },
      nullptr));
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(JournalAppends(*store, 20));
  ASSERT_EQ(store->Status().pending, 20);

  ASSERT_OK(server_->StartAgain());
  stop_before = 3;
  EXPECT_THAT(store->ReplayNow(), StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(stopped);
  FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kFallback);
  // Pages of 4 journal events: [1+1 1] [1 1+1] [1 1 1+1] ...
  EXPECT_GT(status.replayed, 0);
  EXPECT_LT(status.replayed, 20);
  EXPECT_EQ(status.pending, 20 - status.replayed);
  const int64_t replayed_first = status.replayed;

  // Journaled during the second outage, behind the rest.
  for (int k = 0; k < kStreams; ++k) {
    ASSERT_OK_AND_ASSIGN(AppendResult r,
                         Append(*store, k, {absl::StrCat("s", k, "-late")}));
    EXPECT_TRUE(r.journaled);
  }
  ASSERT_OK(server_->StartAgain());
  ASSERT_OK(store->ReplayNow());
  status = store->Status();
  EXPECT_EQ(status.replayed, 24);
  EXPECT_GT(status.replayed, replayed_first);
  ExpectEverythingOnce(*store);
}

// The server stops right after a batch committed, before its answer
// reaches the store (the connection lost after the commit): the batch's
// outcome is unknown, so it stays pending and replays again as no-ops.
TEST_F(FailoverPostgresFaultsTest,
       StoppedAfterABatchCommittedReplaysItAgainAsNoOps) {
  std::atomic<int> stop_after{-1};
  auto primary = OpenPostgresPrimary(*server_);
  ASSERT_OK(primary);
  auto store = Open(std::make_unique<HookedPrimary>(
      std::move(*primary), nullptr, [&](int n) -> absl::Status {
        if (n != stop_after) return absl::OkStatus();
        ES_RETURN_IF_ERROR(server_->Stop());
        return absl::UnavailableError(
            "test: the connection was lost after the commit");
      }));
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(JournalAppends(*store, 20));

  ASSERT_OK(server_->StartAgain());
  stop_after = 2;
  EXPECT_THAT(store->ReplayNow(), StatusIs(absl::StatusCode::kUnavailable));
  FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kFallback);
  EXPECT_GT(status.replayed, 0);  // the first batch
  const int64_t pending = status.pending;
  EXPECT_EQ(pending, 20 - status.replayed);

  ASSERT_OK(server_->StartAgain());
  // The second batch is in the primary already, yet still pending.
  EXPECT_GT(PrimaryEvents(),
            WrittenEvents(0, kStreams + static_cast<size_t>(status.replayed)));
  ASSERT_OK(store->ReplayNow());
  status = store->Status();
  EXPECT_EQ(status.replayed, 20);
  ExpectEverythingOnce(*store);
}

// Runs `replay` in a child process (forked now: the test holds no threads
// and no open store) and returns its pid; the child exits 0 when the replay
// finished, >0 when it failed.
pid_t Child(const std::function<int()>& replay) {
  const pid_t child = fork();
  if (child == 0) _exit(replay());
  return child;
}

// The child is killed after its replay's second batch committed in the
// primary and before the journal's checkpoint moved past it: a new store
// over the journal replays that batch again (as no-ops) and the rest.
TEST_F(FailoverPostgresFaultsTest,
       KilledBetweenACommittedBatchAndItsCheckpointReplaysEverythingOnce) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_NO_FATAL_FAILURE(JournalAppends(*store, 20));
  }
  ASSERT_OK(server_->StartAgain());
  const std::string marker = dir_->File("committed");
  const std::string url = server_->url();
  const std::string journal = JournalPath();
  const pid_t child = Child([&]() -> int {
    PostgresOptions pg;
    pg.conninfo = url;
    absl::StatusOr<std::unique_ptr<EventStore>> opened =
        PostgresEventStore::Open(pg);
    if (!opened.ok()) return 2;
    auto primary = std::make_unique<HookedPrimary>(
        std::move(*opened), nullptr, [&](int n) -> absl::Status {
          if (n == 2) {
            std::ofstream(marker) << "committed";
            while (true) pause();  // killed here
          }
          return absl::OkStatus();
        });
    FailoverOptions options;
    options.allow_fallback = true;
    options.health_check_interval = absl::ZeroDuration();
    options.replay_page_size = 4;
    absl::StatusOr<std::unique_ptr<FailoverEventStore>> store =
        CreateFailoverOver(std::move(primary), journal, options);
    if (!store.ok()) return 3;
    return (*store)->ReplayNow().ok() ? 0 : 4;
  });
  ASSERT_GT(child, 0);
  const bool committed = PollUntil(
      [&] { return std::filesystem::exists(marker); }, absl::Seconds(60));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  ASSERT_TRUE(committed) << "the child exited with " << wait_status;
  ASSERT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL);
  const int64_t in_primary = PrimaryEvents();
  EXPECT_GT(in_primary, kStreams);         // batches 1 and 2
  EXPECT_LT(in_primary, WrittenEvents());  // not the rest

  auto store = Open();
  ASSERT_NE(store, nullptr);
  FailoverStatus status = store->Status();
  EXPECT_EQ(status.mode, Mode::kRecovering);
  // Only the first batch is behind the checkpoint.
  EXPECT_GT(status.pending, 20 - 4);
  EXPECT_LT(status.pending, 20);
  ASSERT_OK(store->ReplayNow());
  ExpectEverythingOnce(*store);
}

// The child replays freely in small batches and is killed at whatever
// point it reached once a quarter of the journal is in the primary.
TEST_F(FailoverPostgresFaultsTest, KilledMidReplayReplaysEverythingOnce) {
  constexpr int kAppends = 400;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_NO_FATAL_FAILURE(JournalAppends(*store, kAppends));
  }
  ASSERT_OK(server_->StartAgain());
  const std::string url = server_->url();
  const std::string journal = JournalPath();
  const pid_t child = Child([&]() -> int {
    PostgresOptions pg;
    pg.conninfo = url;
    absl::StatusOr<std::unique_ptr<EventStore>> primary =
        PostgresEventStore::Open(pg);
    if (!primary.ok()) return 2;
    FailoverOptions options;
    options.allow_fallback = true;
    options.health_check_interval = absl::ZeroDuration();
    options.replay_page_size = 2;
    absl::StatusOr<std::unique_ptr<FailoverEventStore>> store =
        CreateFailoverOver(std::move(*primary), journal, options);
    if (!store.ok()) return 3;
    return (*store)->ReplayNow().ok() ? 0 : 4;
  });
  ASSERT_GT(child, 0);
  // Opened after the fork: the child shares no connection with it.
  absl::StatusOr<std::unique_ptr<EventStore>> reader =
      OpenPostgresPrimary(*server_);
  const int64_t total = WrittenEvents();
  int64_t seen = 0;
  const bool reached = reader.ok() && PollUntil(
                                          [&] {
                                            seen = PrimaryEvents(**reader);
                                            return seen >= total / 4;
                                          },
                                          absl::Seconds(60));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  ASSERT_OK(reader);
  ASSERT_TRUE(reached) << "the child replayed " << seen << " of " << total
                       << " events in 60 s; exit status " << wait_status;
  ASSERT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL)
      << "the child finished its replay before it was killed";
  const int64_t at_kill = PrimaryEvents(**reader);
  EXPECT_LT(at_kill, total) << "killed after the replay was done";

  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Status().mode, Mode::kRecovering);
  ASSERT_OK(store->ReplayNow());
  ExpectEverythingOnce(*store);
  std::cout << "[ faults   ] killed with " << at_kill << " of " << total
            << " events replayed" << std::endl;
}
#endif

}  // namespace
}  // namespace eventstore::test
