// PostgreSQL-specific behaviour of AppendRequest::subject_keys and
// ReadStreamPages (backends/postgres/postgres_event_store.cc), beyond the
// backend-neutral conformance suites:
// - a key another session is inserting (not yet committed) when the append
//   runs: ON CONFLICT waits for it under READ COMMITTED, and a different key
//   committed meanwhile is reported as a conflict, never accepted unseen;
// - an append that inserts one subject's key and conflicts on another's
//   leaves neither, also inside an AppendEach batch;
// - a server that goes away while an append waits leaves no key row
//   without its events;
// - ReadStreamPages hands its connection back clean (no transaction, no
//   cursor) after a page's error, and recovers from a server restart in the
//   middle of a read;
// - ReadStreamPages of a 5,000-event stream in pages of 100 returns what
//   ReadStream returns.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "backends/postgres/postgres_event_store.h"
#include "eventstore/errors.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_message.h"
#include "eventstore/sql_transaction.h"
#include "eventstore/subject_key_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/conformance_events.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {
namespace {

using ::testing::ElementsAre;

const std::string kKeyA("wrapped\0A\xff", 9);
const std::string kKeyB("wrapped\0B\x01", 9);
constexpr char kMk[] = "mk-1";

// `n` events with their ids set (so that an append can be repeated).
std::vector<EventData> Events(int n, const std::string& tag) {
  std::vector<EventData> events = Batch(n, tag);
  for (EventData& e : events) e.id = Uuid::Generate();
  return events;
}

absl::StatusOr<std::unique_ptr<EventStore>> OpenStore(const std::string& url,
                                                      const std::string& schema,
                                                      int pool_size = 4) {
  PostgresOptions options;
  options.conninfo = url;
  options.schema = schema;
  options.pool_size = pool_size;
  options.connect_timeout = absl::Seconds(3);
  return PostgresEventStore::Open(options);
}

// One text value of the first row of `sql`.
std::string One(RawPostgres& raw, const std::string& sql) {
  absl::StatusOr<std::vector<std::vector<std::string>>> rows = raw.Query(sql);
  EXPECT_OK(rows.status());
  if (!rows.ok() || rows->empty() || (*rows)[0].empty()) return "<none>";
  return (*rows)[0][0];
}

// Waits (up to 30 s) until a session other than `raw`'s waits on a lock;
// its pid, or "" when none did.
std::string WaitForALockWaiter(RawPostgres& raw) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    absl::StatusOr<std::vector<std::vector<std::string>>> rows = raw.Query(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
        "pid <> pg_backend_pid()");
    if (!rows.ok()) return "";
    if (!rows->empty()) return (*rows)[0][0];
    absl::SleepFor(absl::Milliseconds(10));
  }
  return "";
}

// The pid of the store's session, through a SqlTransaction (with a pool of
// one connection: the only one).
absl::StatusOr<std::string> SessionPid(EventStore& store) {
  absl::StatusOr<std::unique_ptr<SqlTransaction>> tx = store.BeginTransaction();
  if (!tx.ok()) return tx.status();
  absl::StatusOr<SqlRows> rows = (*tx)->Query(
      "SELECT pg_backend_pid()::text, (SELECT count(*)::text "
      "FROM pg_cursors WHERE name <> '')");
  if (!rows.ok()) return rows.status();
  absl::Status committed = (*tx)->Commit();
  if (!committed.ok()) return committed;
  if ((*rows)[0][1] != "0") {
    return absl::InternalError(
        absl::StrCat("the session has ", *(*rows)[0][1], " open cursors"));
  }
  return *(*rows)[0][0];
}

struct Described {
  std::string id;
  int64_t version;
  std::string position;
  friend bool operator==(const Described& a, const Described& b) {
    return a.id == b.id && a.version == b.version && a.position == b.position;
  }
};

std::vector<Described> Describe(const std::vector<RecordedEvent>& events) {
  std::vector<Described> out;
  for (const RecordedEvent& e : events) {
    out.push_back({e.id.ToString(), e.version, e.position.ToString()});
  }
  return out;
}

class PgSubjectAppendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(url_, SharedPostgresUrl());
    schema_ = UniqueSchemaName();
    ASSERT_OK_AND_ASSIGN(store_, OpenStore(url_, schema_));
    ASSERT_OK_AND_ASSIGN(raw_, RawPostgres::Connect(url_));
  }

  absl::StatusOr<AppendResult> AppendWithKeys(
      const std::string& stream, ExpectedVersion expected,
      const std::vector<EventData>& events,
      const std::vector<SubjectKeyWrite>& keys) {
    AppendRequest request{stream, expected, events};
    request.subject_keys = keys;
    return store_->Append(request);
  }

  std::string Count(const std::string& table, const std::string& where) {
    return One(*raw_, absl::StrCat("SELECT count(*) FROM ", schema_, ".", table,
                                   " WHERE ", where));
  }

  std::string url_;
  std::string schema_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<RawPostgres> raw_;
};

// Another session inserts a different key for the subject and holds it
// uncommitted while the append runs: the append's insert waits for it, and
// once it commits the append is a conflict (the key it waited for is not in
// its snapshot: it must not be taken for its own). Rolled back instead, the
// append's own key is stored.
TEST_F(PgSubjectAppendTest, ConcurrentDifferentKeyIsAConflictNeverAccepted) {
  for (const bool commit : {true, false}) {
    SCOPED_TRACE(commit ? "the other key commits" : "the other key rolls back");
    const std::string subject = commit ? "user-c" : "user-r";
    const std::string stream = absl::StrCat("order-", subject);
    ASSERT_OK(raw_->Exec(absl::StrCat(
        "BEGIN; INSERT INTO ", schema_,
        ".subject_keys (subject, wrapped_key, master_key_id) VALUES ('",
        subject, "', '\\x4242'::bytea, 'mk-other')")));
    const std::vector<EventData> events = Events(2, "a");
    absl::StatusOr<AppendResult> result;
    std::thread writer([&] {
      result = AppendWithKeys(stream, ExpectedVersion::NoStream(), events,
                              {{subject, kKeyA, kMk}});
    });
    const bool waited = !WaitForALockWaiter(*raw_).empty();
    ASSERT_OK(raw_->Exec(commit ? "COMMIT" : "ROLLBACK"));
    writer.join();
    ASSERT_TRUE(waited) << "the append never waited for the other session";
    ASSERT_OK_AND_ASSIGN(std::optional<SubjectKeyRecord> stored,
                         store_->subject_keys().Find(subject));
    ASSERT_TRUE(stored.has_value());
    if (commit) {
      EXPECT_TRUE(IsSubjectKeyConflict(result.status())) << result.status();
      EXPECT_EQ(stored->wrapped_key, "BB");
      EXPECT_EQ(stored->master_key_id, "mk-other");
      EXPECT_EQ(Count("events", absl::StrCat("stream = '", stream, "'")), "0");
      EXPECT_EQ(
          Count("subject_streams", absl::StrCat("subject = '", subject, "'")),
          "0");
      // Told the stored key, the writer tries again with it.
      ASSERT_OK(AppendWithKeys(stream, ExpectedVersion::NoStream(), events,
                               {{subject, "", ""}}));
    } else {
      ASSERT_OK(result.status());
      EXPECT_EQ(result->next_expected_version, 2);
      EXPECT_EQ(stored->wrapped_key, kKeyA);
      EXPECT_EQ(stored->master_key_id, kMk);
    }
    EXPECT_EQ(Count("events", absl::StrCat("stream = '", stream, "'")), "2");
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> streams,
                         store_->subject_keys().Streams(subject));
    EXPECT_THAT(streams, ElementsAre(stream));
  }
}

// Two stores (two pools) race new keys for the same subjects: per subject
// exactly one key wins, every event stored is of a winning append, and a
// losing append wrote nothing.
TEST_F(PgSubjectAppendTest, ConcurrentKeysFromTwoStoresOneWinsPerSubject) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> other,
                       OpenStore(url_, schema_));
  constexpr int kSubjects = 40;
  std::vector<absl::StatusOr<AppendResult>> results[2];
  std::atomic<int> ready{0};
  auto run = [&](int side, EventStore& store) {
    ready++;
    while (ready.load() < 2) std::this_thread::yield();
    for (int i = 0; i < kSubjects; ++i) {
      const std::string subject = absl::StrCat("user-", i);
      const std::vector<EventData> events = Events(1, absl::StrCat(side));
      const std::string stream = absl::StrCat("order-", i, "-", side);
      AppendRequest request{stream, ExpectedVersion::NoStream(), events};
      const std::vector<SubjectKeyWrite> keys = {
          {subject, side == 0 ? kKeyA : kKeyB, kMk}};
      request.subject_keys = keys;
      results[side].push_back(store.Append(request));
    }
  };
  std::thread a(run, 0, std::ref(*store_));
  std::thread b(run, 1, std::ref(*other));
  a.join();
  b.join();
  for (int i = 0; i < kSubjects; ++i) {
    SCOPED_TRACE(i);
    const std::string subject = absl::StrCat("user-", i);
    ASSERT_OK_AND_ASSIGN(std::optional<SubjectKeyRecord> stored,
                         store_->subject_keys().Find(subject));
    ASSERT_TRUE(stored.has_value())
        << results[0][i].status() << " / " << results[1][i].status();
    const int winner = stored->wrapped_key == kKeyA ? 0 : 1;
    ASSERT_OK(results[winner][i].status());
    EXPECT_TRUE(IsSubjectKeyConflict(results[1 - winner][i].status()))
        << results[1 - winner][i].status();
    EXPECT_EQ(Count("events",
                    absl::StrCat("stream = 'order-", i, "-", 1 - winner, "'")),
              "0");
    ASSERT_OK_AND_ASSIGN(std::vector<std::string> streams,
                         store_->subject_keys().Streams(subject));
    EXPECT_THAT(streams, ElementsAre(absl::StrCat("order-", i, "-", winner)));
  }
}

// A batch whose second append would store one subject's key and conflicts
// on another's: that append alone fails, and neither key row is written.
TEST_F(PgSubjectAppendTest,
       AppendEachConflictAfterANewKeyUndoesThatAppendOnly) {
  ASSERT_OK(store_->subject_keys().Insert("user-taken", kKeyA, kMk));
  const std::vector<EventData> a = Events(1, "a");
  const std::vector<EventData> b = Events(2, "b");
  const std::vector<EventData> c = Events(1, "c");
  const std::vector<SubjectKeyWrite> first = {{"user-1", kKeyA, kMk}};
  const std::vector<SubjectKeyWrite> second = {{"user-2", kKeyA, kMk},
                                               {"user-taken", kKeyB, kMk}};
  const std::vector<SubjectKeyWrite> third = {{"user-3", kKeyB, kMk}};
  std::vector<AppendRequest> requests(3);
  requests[0] = {"order-a", ExpectedVersion::NoStream(), a, {}, first};
  requests[1] = {"order-b", ExpectedVersion::NoStream(), b, {}, second};
  requests[2] = {"order-c", ExpectedVersion::NoStream(), c, {}, third};
  ASSERT_OK_AND_ASSIGN(std::vector<absl::StatusOr<AppendResult>> results,
                       store_->AppendEach(requests));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_OK(results[0]);
  EXPECT_TRUE(IsSubjectKeyConflict(results[1].status())) << results[1].status();
  EXPECT_THAT(std::string(results[1].status().message()),
              ::testing::HasSubstr("user-taken"));
  EXPECT_OK(results[2]);
  EXPECT_EQ(Count("subject_keys", "subject = 'user-2'"), "0");
  EXPECT_EQ(Count("subject_streams", "stream = 'order-b'"), "0");
  EXPECT_EQ(Count("events", "stream = 'order-b'"), "0");
  EXPECT_EQ(Count("subject_keys", "subject IN ('user-1', 'user-3')"), "2");
  // The same alone, outside a batch.
  absl::StatusOr<AppendResult> alone =
      AppendWithKeys("order-b", ExpectedVersion::NoStream(), b, second);
  EXPECT_TRUE(IsSubjectKeyConflict(alone.status())) << alone.status();
  EXPECT_EQ(Count("subject_keys", "subject = 'user-2'"), "0");
  EXPECT_EQ(Count("events", "stream = 'order-b'"), "0");
}

// Keys and outbox messages in one append (the statement with both): both
// written with the events; on a conflict neither.
TEST_F(PgSubjectAppendTest, KeysWithOutboxMessages) {
  OutboxMessage message;
  message.destination = "orders";
  message.payload = "placed";
  const std::vector<OutboxMessage> outbox = {message};
  const std::vector<EventData> events = Events(2, "o");
  const std::vector<SubjectKeyWrite> keys = {{"user-o", kKeyA, kMk}};
  AppendRequest request{"order-o", ExpectedVersion::NoStream(), events, outbox,
                        keys};
  ASSERT_OK_AND_ASSIGN(AppendResult r, store_->Append(request));
  EXPECT_EQ(r.next_expected_version, 2);
  EXPECT_EQ(Count("outbox", "true"), "1");
  EXPECT_EQ(Count("subject_keys", "subject = 'user-o'"), "1");
  EXPECT_EQ(Count("subject_streams", "stream = 'order-o'"), "1");

  const std::vector<EventData> more = Events(1, "p");
  const std::vector<SubjectKeyWrite> other = {{"user-o", kKeyB, kMk}};
  AppendRequest conflicting{"order-o", ExpectedVersion::Exactly(2), more,
                            outbox, other};
  absl::StatusOr<AppendResult> refused = store_->Append(conflicting);
  EXPECT_TRUE(IsSubjectKeyConflict(refused.status())) << refused.status();
  EXPECT_EQ(Count("outbox", "true"), "1");
  EXPECT_EQ(Count("events", "stream = 'order-o'"), "2");
}

// A hard-deleted stream and a soft-deleted one: the first refuses the append
// and writes no key row; the second revives with its key.
TEST_F(PgSubjectAppendTest, DeletedStreamsAsWithoutKeys) {
  ASSERT_OK(
      store_->Append("order-h", ExpectedVersion::NoStream(), Events(1, "h")));
  ASSERT_OK(store_->DeleteStream("order-h", ExpectedVersion::Exactly(1),
                                 DeleteMode::kHard));
  absl::StatusOr<AppendResult> hard =
      AppendWithKeys("order-h", ExpectedVersion::Any(), Events(1, "x"),
                     {{"user-h", kKeyA, kMk}});
  EXPECT_TRUE(IsHardDeletedStream(hard.status())) << hard.status();
  EXPECT_EQ(Count("subject_keys", "subject = 'user-h'"), "0");
  EXPECT_EQ(Count("subject_streams", "subject = 'user-h'"), "0");

  ASSERT_OK(
      store_->Append("order-s", ExpectedVersion::NoStream(), Events(2, "s")));
  ASSERT_OK(store_->DeleteStream("order-s", ExpectedVersion::Exactly(2),
                                 DeleteMode::kSoft));
  ASSERT_OK_AND_ASSIGN(
      AppendResult revived,
      AppendWithKeys("order-s", ExpectedVersion::NoStream(), Events(1, "y"),
                     {{"user-s", kKeyA, kMk}}));
  EXPECT_EQ(revived.next_expected_version, 4);
  EXPECT_EQ(Count("subject_keys", "subject = 'user-s'"), "1");
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> read,
                       store_->ReadStream("order-s"));
  ASSERT_EQ(read.size(), 1u);
  EXPECT_EQ(read[0].version, 4);
}

// The append's session is terminated while its statement waits (its key
// inserted, its event blocked on another session's uncommitted row at the
// same version): nothing of it stays. The store runs it once more on a new
// connection; the other session's row then commits, so that run fails on
// the version (kAborted) and writes no key row either.
TEST_F(PgSubjectAppendTest, SessionGoneMidAppendLeavesNoKeyWithoutEvents) {
  ASSERT_OK(raw_->Exec(
      absl::StrCat("BEGIN; INSERT INTO ", schema_,
                   ".events (id, stream, version, type, payload) VALUES "
                   "(gen_random_uuid(), 'order-x', 1, 'x', '\\x00'::bytea)")));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawPostgres> killer,
                       RawPostgres::Connect(url_));
  const std::vector<EventData> events = Events(1, "x");
  absl::StatusOr<AppendResult> result;
  std::thread writer([&] {
    result = AppendWithKeys("order-x", ExpectedVersion::NoStream(), events,
                            {{"user-x", kKeyA, kMk}});
  });
  const std::string pid = WaitForALockWaiter(*raw_);
  if (!pid.empty()) {
    EXPECT_EQ(One(*killer,
                  absl::StrCat("SELECT pg_terminate_backend(", pid, ")::text")),
              "true");
  }
  ASSERT_OK(raw_->Exec("COMMIT"));
  writer.join();
  ASSERT_FALSE(pid.empty()) << "the append never waited for the other session";
  EXPECT_TRUE(IsWrongExpectedVersion(result.status())) << result.status();
  EXPECT_EQ(Count("subject_keys", "true"), "0");
  EXPECT_EQ(Count("subject_streams", "true"), "0");
  EXPECT_EQ(Count("events", "true"), "1");
}

// The server stops while an append with a new key waits inside its
// statement, as above. Whatever the append's outcome (the shutdown may end
// the other session first and let the append commit), its key row, its
// stream's record and its event are all there after the restart, or none
// is; repeated, the append goes through once.
TEST(PgSubjectAppendOutageTest, ServerGoneMidAppendLeavesNoKeyWithoutEvents) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start(PostgresServerOptions()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenStore(server->url(), "outage"));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RawPostgres> raw,
                       RawPostgres::Connect(server->url()));
  ASSERT_OK(raw->Exec(
      "BEGIN; INSERT INTO outage.events (id, stream, version, type, payload)"
      " VALUES (gen_random_uuid(), 'order-x', 1, 'x', '\\x00'::bytea)"));
  const std::vector<EventData> events = Events(1, "x");
  const std::vector<SubjectKeyWrite> keys = {{"user-x", kKeyA, kMk}};
  AppendRequest request{"order-x", ExpectedVersion::NoStream(), events};
  request.subject_keys = keys;
  absl::StatusOr<AppendResult> during;
  std::thread writer([&] { during = store->Append(request); });
  const bool waited = !WaitForALockWaiter(*raw).empty();
  ASSERT_OK(server->Stop());
  writer.join();
  ASSERT_TRUE(waited) << "the append never waited for the other session";
  if (!during.ok()) {
    EXPECT_EQ(during.status().code(), absl::StatusCode::kUnavailable)
        << during.status();
  }
  ASSERT_OK(server->StartAgain());
  ASSERT_OK_AND_ASSIGN(raw, RawPostgres::Connect(server->url()));
  const std::string keys_stored =
      One(*raw, "SELECT count(*) FROM outage.subject_keys");
  EXPECT_EQ(keys_stored, during.ok() ? "1" : keys_stored);
  EXPECT_EQ(One(*raw, "SELECT count(*) FROM outage.subject_streams"),
            keys_stored);
  EXPECT_EQ(One(*raw, "SELECT count(*) FROM outage.events"), keys_stored);

  ASSERT_OK_AND_ASSIGN(AppendResult r, store->Append(request));
  EXPECT_EQ(r.next_expected_version, 1);
  EXPECT_EQ(One(*raw, "SELECT count(*) FROM outage.subject_keys"), "1");
  EXPECT_EQ(One(*raw, "SELECT stream FROM outage.subject_streams"), "order-x");
  EXPECT_EQ(One(*raw, "SELECT count(*) FROM outage.events"), "1");
}

// A page's error stops the read and is returned; the connection goes back
// to the pool idle (no transaction, no cursor), and the next calls use it.
TEST_F(PgSubjectAppendTest, ReadStreamPagesPageErrorLeavesConnectionClean) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenStore(url_, schema_, /*pool_size=*/1));
  ASSERT_OK(
      store->Append("plain", ExpectedVersion::NoStream(), Events(30, "p")));
  ASSERT_OK(
      store->Append("kept", ExpectedVersion::NoStream(), Events(30, "k")));
  StreamMetadata metadata;
  metadata.truncate_before = 5;  // a streams row: the window read
  ASSERT_OK(store->SetStreamMetadata("kept", metadata));
  // 16 MB: the server is still sending when the read stops (its statement
  // is cancelled).
  for (int i = 0; i < 16; ++i) {
    std::vector<EventData> events = Events(1000, absl::StrCat(i));
    for (EventData& e : events) e.payload = std::string(1000, 'x');
    ASSERT_OK(store->Append("large", ExpectedVersion::Any(), events));
  }
  ASSERT_OK_AND_ASSIGN(const std::string pid, SessionPid(*store));
  for (int round = 0; round < 5; ++round) {
    for (const std::string stream : {"plain", "kept", "large"}) {
      SCOPED_TRACE(absl::StrCat(stream, " round ", round));
      int pages = 0;
      const absl::Status status = store->ReadStreamPages(
          stream, ReadStreamOptions(), 10,
          [&](std::vector<RecordedEvent> page) -> absl::Status {
            EXPECT_EQ(page.size(), 10u);
            if (++pages == 2) return absl::DataLossError("stop here");
            return absl::OkStatus();
          });
      EXPECT_THAT(status, StatusIs(absl::StatusCode::kDataLoss));
      EXPECT_EQ(std::string(status.message()), "stop here");
      EXPECT_EQ(pages, 2);
      EXPECT_EQ(One(*raw_, absl::StrCat("SELECT state FROM pg_stat_activity "
                                        "WHERE pid = ",
                                        pid)),
                "idle");
      // The same connection, with no cursor left open.
      ASSERT_OK_AND_ASSIGN(const std::string after, SessionPid(*store));
      EXPECT_EQ(after, pid);
      int64_t read = 0;
      ASSERT_OK(store->ReadStreamPages(
          stream, ReadStreamOptions(), 7,
          [&](std::vector<RecordedEvent> page) -> absl::Status {
            read += static_cast<int64_t>(page.size());
            return absl::OkStatus();
          }));
      EXPECT_EQ(read, stream == "plain" ? 30 : stream == "kept" ? 26 : 16000);
    }
  }
}

// The server restarts while a read is between two pages: the read fails
// (kUnavailable) once the pages that had arrived are handed over, the lost
// connection is not lent again, and the next read returns the whole
// stream.
TEST(PgReadStreamPagesOutageTest, ServerRestartMidReadThenReadsAgain) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<PostgresServer> server,
                       PostgresServer::Start(PostgresServerOptions()));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenStore(server->url(), "pages", /*pool_size=*/1));
  // 16 MB of payloads: more than the sockets buffer, so that the server is
  // still sending when the first page is handed over.
  for (int i = 0; i < 16; ++i) {
    std::vector<EventData> events = Events(1000, absl::StrCat(i));
    for (EventData& e : events) e.payload = std::string(1000, 'x');
    ASSERT_OK(store->Append("s", ExpectedVersion::Any(), events));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> whole,
                       store->ReadStream("s"));
  int pages = 0;
  const absl::Status status = store->ReadStreamPages(
      "s", ReadStreamOptions(), 10,
      [&](std::vector<RecordedEvent> page) -> absl::Status {
        if (++pages == 1) return server->Restart();
        return absl::OkStatus();
      });
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable));
  // The pages that had arrived before the server went away, not more.
  EXPECT_LT(pages, 1600);
  std::vector<RecordedEvent> paged;
  ASSERT_OK(store->ReadStreamPages(
      "s", ReadStreamOptions(), 10,
      [&](std::vector<RecordedEvent> page) -> absl::Status {
        paged.insert(paged.end(), page.begin(), page.end());
        return absl::OkStatus();
      }));
  EXPECT_EQ(Describe(paged), Describe(whole));
  // And the connection it used is a healthy one.
  ASSERT_OK(SessionPid(*store).status());
}

// 5,000 events in pages of 100, forward and backward, with and without a
// streams row: exactly ReadStream's events, in full pages but the last.
TEST_F(PgSubjectAppendTest, ReadStreamPagesOf5000MatchReadStream) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(store_->Append("big", ExpectedVersion::Any(),
                             Events(1000, absl::StrCat(i))));
  }
  for (const bool with_row : {false, true}) {
    if (with_row) {
      StreamMetadata metadata;
      metadata.truncate_before = 51;
      ASSERT_OK(store_->SetStreamMetadata("big", metadata));
    }
    for (const Direction direction :
         {Direction::kForward, Direction::kBackward}) {
      SCOPED_TRACE(absl::StrCat(
          with_row ? "row " : "no row ",
          direction == Direction::kForward ? "forward" : "backward"));
      ReadStreamOptions options;
      options.direction = direction;
      ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> whole,
                           store_->ReadStream("big", options));
      ASSERT_EQ(whole.size(), with_row ? 4950u : 5000u);
      std::vector<RecordedEvent> paged;
      std::vector<size_t> sizes;
      ASSERT_OK(store_->ReadStreamPages(
          "big", options, 100,
          [&](std::vector<RecordedEvent> page) -> absl::Status {
            sizes.push_back(page.size());
            paged.insert(paged.end(), std::make_move_iterator(page.begin()),
                         std::make_move_iterator(page.end()));
            return absl::OkStatus();
          }));
      EXPECT_EQ(sizes.size(), with_row ? 50u : 50u);
      for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_EQ(sizes[i], 100u);
      EXPECT_EQ(Describe(paged), Describe(whole));
      ASSERT_EQ(paged.size(), whole.size());
      for (size_t i = 0; i < paged.size(); ++i) {
        EXPECT_EQ(paged[i].payload, whole[i].payload);
        EXPECT_EQ(paged[i].type, whole[i].type);
        EXPECT_EQ(paged[i].recorded_at, whole[i].recorded_at);
        EXPECT_EQ(paged[i].metadata.SerializeAsString(),
                  whole[i].metadata.SerializeAsString());
      }
    }
  }
}

}  // namespace
}  // namespace eventstore::test
