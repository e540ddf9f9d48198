// The `eventstore` binary's data lifecycle commands (delete,
// stream-metadata, scavenge, forget, keygen, rotate-master-key) and the
// rendering of encrypted and forgotten events (read, tail), run as a
// process on a SQLite file and on the test PostgreSQL server (the
// instantiation named Postgres, one ctest group).
//
// Sealed events are appended through the plain store, as an
// EncryptedEventStore stores them: metadata.subject_id and
// payload_encryption set, an opaque payload. The tests of --master-key-file,
// keygen and rotate-master-key need eventstore::crypto
// (EVENTSTORE_TEST_CRYPTO); without it they check that the commands say
// they were not built in.

#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/recorded_event.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/subject_key_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/cli_process.h"
#ifdef EVENTSTORE_TEST_POSTGRES
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#endif
#ifdef EVENTSTORE_TEST_CRYPTO
#include "eventstore/crypto/encrypted_event_store.h"
#include "eventstore/crypto/master_key.h"
#endif

namespace eventstore {
namespace {

using ::eventstore::test::CliResult;
using ::eventstore::test::ReadWholeFile;
using ::eventstore::test::RunCli;
using ::eventstore::test::TempDir;
using ::google::protobuf::Value;
using ::testing::HasSubstr;
using ::testing::Not;

Value Json(const std::string& text) {
  Value value;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &value);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in: " << text;
  return value;
}

std::vector<Value> JsonLines(const std::string& text) {
  std::vector<Value> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty()) out.push_back(Json(std::string(line)));
  }
  return out;
}

bool Has(const Value& v, const std::string& name) {
  return v.struct_value().fields().contains(name);
}

const Value& Field(const Value& v, const std::string& name) {
  static const Value* const kNull = new Value;
  auto it = v.struct_value().fields().find(name);
  return it == v.struct_value().fields().end() ? *kNull : it->second;
}

std::string Str(const Value& v, const std::string& name) {
  return Field(v, name).string_value();
}

double Num(const Value& v, const std::string& name) {
  return Field(v, name).number_value();
}

EventData Placed(const std::string& order_id) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  placed.mutable_total()->set_currency("EUR");
  placed.mutable_total()->set_units(10);
  return EventData::From(placed);
}

// An event as EncryptedEventStore stores it: the subject's id and the
// cipher in the metadata, an opaque payload (a 24-byte nonce, 8 bytes of
// ciphertext, a 16-byte tag).
EventData Sealed(const std::string& subject, int i) {
  EventData e = Placed(absl::StrCat("sealed-", i));
  e.metadata.set_subject_id(subject);
  e.metadata.set_payload_encryption(std::string(kPayloadEncryptionXChaCha20));
  e.payload = std::string(48, static_cast<char>(0xA0 + i));
  return e;
}

// The ciphertext of Sealed(i) as base64, which no output may show.
std::string SealedBase64(int i) {
  return absl::Base64Escape(std::string(48, static_cast<char>(0xA0 + i)));
}

class LifecycleCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TempDir::Create());
    if (GetParam() == "sqlite") {
      url_ = "sqlite://" + dir_->File("events.db");
    } else {
#ifdef EVENTSTORE_TEST_POSTGRES
      ASSERT_OK_AND_ASSIGN(const std::string base, test::SharedPostgresUrl());
      url_ = absl::StrCat(base, "?schema=", test::UniqueSchemaName());
#endif
    }
    ASSERT_FALSE(url_.empty());
    ASSERT_OK_AND_ASSIGN(store_, OpenEventStore(url_));
    // order-1 (2 events), order-2 (1 event).
    ASSERT_OK(store_->Append("order-1", ExpectedVersion::NoStream(),
                             {Placed("1"), Placed("1b")}));
    ASSERT_OK(
        store_->Append("order-2", ExpectedVersion::NoStream(), {Placed("2")}));
  }

  CliResult Run(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {}) {
    return RunCli(args, env);
  }

  std::unique_ptr<TempDir> dir_;
  std::string url_;
  std::unique_ptr<EventStore> store_;
};

// --- delete ------------------------------------------------------------------

TEST_P(LifecycleCliTest, SoftDeleteHidesTheStreamUntilWrittenAgain) {
  Snapshot snapshot;
  snapshot.stream = "order-1";
  snapshot.version = 2;
  snapshot.type = "eventstore.test.v1.OrderPlaced";
  snapshot.taken_at = absl::Now();
  ASSERT_OK(store_->snapshots().Save(snapshot));

  CliResult r = Run({"delete", url_, "order-1", "--expected-version", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("deleted (soft): 'order-1'"));
  EXPECT_THAT(r.out, HasSubstr("at version 3"));
  EXPECT_THAT(r.out, HasSubstr("1 snapshot removed"));

  r = Run({"read", url_, "order-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("'order-1' does not exist"));

  r = Run({"delete", url_, "order-2", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value json = Json(r.out);
  EXPECT_EQ(Str(json, "stream"), "order-2");
  EXPECT_EQ(Str(json, "mode"), "soft");
  EXPECT_EQ(Num(json, "marker_version"), 2);
  EXPECT_FALSE(Str(json, "position").empty());
  EXPECT_EQ(Num(json, "snapshots_removed"), 0);

  // Written again, numbering on after the marker.
  ASSERT_OK_AND_ASSIGN(
      AppendResult again,
      store_->Append("order-1", ExpectedVersion::NoStream(), {Placed("1c")}));
  EXPECT_EQ(again.next_expected_version, 4);
  r = Run({"stream-metadata", url_, "order-1", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Str(Json(r.out), "state"), "live");
}

TEST_P(LifecycleCliTest, DeleteRefusesBadInput) {
  // An unknown stream.
  CliResult r = Run({"delete", url_, "order-404"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("eventstore delete: "));
  EXPECT_THAT(r.err, HasSubstr("order-404"));
  // A wrong expected version: nothing deleted.
  r = Run({"delete", url_, "order-1", "--expected-version", "7"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("order-1"));
  ASSERT_OK_AND_ASSIGN(int64_t version, store_->StreamVersion("order-1"));
  EXPECT_EQ(version, 2);
  // Not a version.
  r = Run({"delete", url_, "order-1", "--expected-version", "soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--expected-version: 'soon' is not a version"));
  // The stream missing after the URL.
  r = Run({"delete", url_});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("STREAM is missing"));
  ASSERT_OK_AND_ASSIGN(version, store_->StreamVersion("order-1"));
  EXPECT_EQ(version, 2);
}

TEST_P(LifecycleCliTest, HardDeleteRefusesEveryLaterWrite) {
  CliResult r = Run(
      {"delete", url_, "order-1", "--hard", "--expected-version", "exists"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("deleted (hard): 'order-1'"));
  EXPECT_TRUE(IsHardDeletedStream(
      store_->Append("order-1", ExpectedVersion::Any(), {Placed("x")})
          .status()));

  r = Run({"delete", url_, "order-1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("order-1"));
  r = Run({"stream-metadata", url_, "order-1", "--set", "--max-count", "3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("order-1"));
  r = Run({"stream-metadata", url_, "order-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("hard-deleted"));
}

TEST_P(LifecycleCliTest, LifecycleCommandsRefuseAFailoverUrl) {
  const std::string failover = absl::StrCat(
      "failover:", url_, url_.find('?') == std::string::npos ? "?" : "&",
      "journal=sqlite://", dir_->File("journal.db"));
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"delete", failover, "order-1"},
           {"stream-metadata", failover, "order-1", "--set", "--max-count",
            "1"},
           {"scavenge", failover},
           {"forget", failover, "user-1"}}) {
    const CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("a failover URL is for applications"))
        << args[0];
  }
  ASSERT_OK_AND_ASSIGN(StreamInfo info, store_->GetStreamInfo("order-1"));
  EXPECT_EQ(info.metadata, StreamMetadata());
}

// --- stream-metadata ---------------------------------------------------------

TEST_P(LifecycleCliTest, StreamMetadataShowsAndSetsRetention) {
  CliResult r = Run({"stream-metadata", url_, "order-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("state            live"));
  EXPECT_THAT(r.out, HasSubstr("version          2"));
  EXPECT_THAT(r.out, HasSubstr("max count        -"));

  r = Run({"stream-metadata", url_, "order-1", "--set", "--max-count", "1",
           "--max-age", "90d"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("max count        1"));
  EXPECT_THAT(r.out, HasSubstr("max age          90d"));
  // Reads honour it at once.
  r = Run({"read", url_, "order-1", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value events = Json(r.out);
  ASSERT_EQ(events.list_value().values_size(), 1);
  EXPECT_EQ(Num(events.list_value().values(0), "version"), 2);

  // The values not given keep theirs.
  r = Run({"stream-metadata", url_, "order-1", "--set", "--truncate-before",
           "2", "--max-age", "12h", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Value json = Json(r.out);
  EXPECT_EQ(Num(json, "max_count"), 1);
  EXPECT_EQ(Num(json, "max_age_seconds"), 12 * 3600);
  EXPECT_EQ(Num(json, "truncate_before"), 2);
  ASSERT_OK_AND_ASSIGN(StreamInfo info, store_->GetStreamInfo("order-1"));
  EXPECT_EQ(info.metadata.max_age, absl::Hours(12));

  // --clear removes them all first.
  r = Run({"stream-metadata", url_, "order-1", "--set", "--clear", "--format",
           "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json = Json(r.out);
  EXPECT_TRUE(Has(json, "max_count"));
  EXPECT_EQ(Field(json, "max_count").kind_case(), Value::kNullValue);
  EXPECT_EQ(Field(json, "max_age_seconds").kind_case(), Value::kNullValue);
  ASSERT_OK_AND_ASSIGN(info, store_->GetStreamInfo("order-1"));
  EXPECT_EQ(info.metadata, StreamMetadata());
}

TEST_P(LifecycleCliTest, StreamMetadataRefusesBadInput) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"stream-metadata", url_, "order-1", "--set", "--max-age", "3x"},
       "--max-age: '3x' is not a duration"},
      {{"stream-metadata", url_, "order-1", "--set", "--max-age", "0s"},
       "must be a positive duration"},
      {{"stream-metadata", url_, "order-1", "--set", "--max-age", "5w"},
       "--max-age: '5w' is not a duration"},
      {{"stream-metadata", url_, "order-1", "--set", "--max-count", "0"},
       "must be a whole number 1 or more"},
      {{"stream-metadata", url_, "order-1", "--set", "--truncate-before", "-1"},
       "must be a whole number 0 or more"},
      {{"stream-metadata", url_, "order-1", "--max-count", "3"},
       "give --set with them"},
      {{"stream-metadata", url_, "order-1", "--set"},
       "--set: give --max-count"},
  };
  for (const auto& [args, message] : cases) {
    const CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, 2) << message << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr(message));
  }
  ASSERT_OK_AND_ASSIGN(StreamInfo info, store_->GetStreamInfo("order-1"));
  EXPECT_EQ(info.metadata, StreamMetadata());

  const CliResult unknown = Run({"stream-metadata", url_, "order-404"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("stream 'order-404' does not exist"));
}

// --- scavenge ----------------------------------------------------------------

TEST_P(LifecycleCliTest, ScavengeRemovesWhatRetentionHides) {
  std::vector<EventData> events;
  for (int i = 0; i < 30; ++i) events.push_back(Placed(absl::StrCat(i)));
  ASSERT_OK(store_->Append("sensor-1", ExpectedVersion::NoStream(), events));
  CliResult r =
      Run({"stream-metadata", url_, "sensor-1", "--set", "--max-count", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // Bounded: stops after about --max-events, says how to go on.
  r = Run({"scavenge", url_, "--batch-size", "10", "--max-events", "10",
           "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Value json = Json(r.out);
  EXPECT_GE(Num(json, "events_removed"), 10);
  EXPECT_LT(Num(json, "events_removed"), 25);
  EXPECT_FALSE(Field(json, "complete").bool_value());
  EXPECT_THAT(r.err, HasSubstr("run it again to go on"));
  const double first = Num(json, "events_removed");

  r = Run({"scavenge", url_, "--batch-size", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(
      r.out, HasSubstr(absl::StrCat("scavenged: ", static_cast<int>(25 - first),
                                    " events "
                                    "removed from 1 stream")));
  EXPECT_THAT(r.out, HasSubstr("events/s"));

  r = Run({"scavenge", url_, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json = Json(r.out);
  EXPECT_EQ(Num(json, "events_removed"), 0);
  EXPECT_TRUE(Field(json, "complete").bool_value());
  EXPECT_TRUE(Has(json, "events_per_second"));

  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> kept,
                       store_->ReadStream("sensor-1", ReadStreamOptions()));
  ASSERT_EQ(kept.size(), 5u);
  EXPECT_EQ(kept.front().version, 26);
}

TEST_P(LifecycleCliTest, ScavengeRefusesABadBatchSize) {
  for (const char* size : {"0", "100001", "ten"}) {
    const CliResult r = Run({"scavenge", url_, "--batch-size", size});
    EXPECT_EQ(r.exit_code, 2) << size;
    EXPECT_THAT(r.err, HasSubstr("--batch-size")) << size;
    EXPECT_THAT(r.err, HasSubstr("must be a whole number from 1 to 100000"))
        << size;
  }
}

// --- forget, and how sealed and forgotten events show ------------------------

class SealedEventsTest : public LifecycleCliTest {
 protected:
  void SetUp() override {
    LifecycleCliTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_OK(store_->Append("user-7", ExpectedVersion::NoStream(),
                             {Sealed("user-7", 1), Sealed("user-7", 2)}));
    ASSERT_OK(store_->subject_keys().AddStream("user-7", "user-7"));
  }

  // No output shows a payload of the sealed events.
  void ExpectNoCiphertext(const CliResult& r) {
    for (int i : {1, 2}) {
      EXPECT_THAT(r.out, Not(HasSubstr(SealedBase64(i))));
      EXPECT_THAT(r.err, Not(HasSubstr(SealedBase64(i))));
    }
  }
};

TEST_P(SealedEventsTest, SealedEventsShowAsEncryptedWithoutAPayload) {
  CliResult r = Run({"read", url_, "user-7", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNoCiphertext(r);
  const Value events = Json(r.out);
  ASSERT_EQ(events.list_value().values_size(), 2);
  for (const Value& e : events.list_value().values()) {
    EXPECT_EQ(Str(e, "payload_state"), "encrypted");
    EXPECT_FALSE(Has(e, "data"));
    EXPECT_FALSE(Has(e, "data_base64"));
    EXPECT_FALSE(Has(e, "data_error"));
    EXPECT_EQ(Str(Field(e, "metadata"), "subject_id"), "user-7");
  }
  r = Run({"read", url_, "user-7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[encrypted]"));
  ExpectNoCiphertext(r);

  // Plain events are unchanged.
  r = Run({"read", url_, "order-1", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Value plain = Json(r.out).list_value().values(0);
  EXPECT_FALSE(Has(plain, "payload_state"));
  EXPECT_EQ(Str(Field(plain, "data"), "order_id"), "1");
}

TEST_P(SealedEventsTest, ForgetMakesTheSubjectsEventsShowAsForgotten) {
  Snapshot snapshot;
  snapshot.stream = "user-7";
  snapshot.version = 2;
  snapshot.type = "eventstore.test.v1.OrderPlaced";
  snapshot.taken_at = absl::Now();
  ASSERT_OK(store_->snapshots().Save(snapshot));

  CliResult r = Run({"forget", url_, "user-7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("forgot subject 'user-7'"));
  EXPECT_THAT(r.out, HasSubstr("1 stream (user-7)"));
  EXPECT_THAT(r.out, HasSubstr("1 snapshot removed"));
  ASSERT_OK_AND_ASSIGN(std::optional<Snapshot> gone,
                       store_->snapshots().Load("user-7", 0));
  EXPECT_FALSE(gone.has_value());

  r = Run({"read", url_, "user-7", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNoCiphertext(r);
  const std::vector<Value> lines = JsonLines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  for (const Value& e : lines) {
    EXPECT_EQ(Str(e, "payload_state"), "forgotten");
    EXPECT_FALSE(Has(e, "data"));
    EXPECT_FALSE(Has(e, "data_base64"));
    EXPECT_FALSE(Has(e, "data_error"));
    EXPECT_EQ(Str(e, "stream"), "user-7");
  }
  r = Run({"read", url_, "user-7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[forgotten]"));
  EXPECT_THAT(r.out, Not(HasSubstr("[encrypted]")));
  r = Run({"tail", url_, "--prefix", "user-", "--format", "jsonl"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const Value& e : JsonLines(r.out)) {
    EXPECT_EQ(Str(e, "payload_state"), "forgotten");
  }
  r = Run({"tail", url_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("[forgotten]"));
  ExpectNoCiphertext(r);

  // Again: nothing changes, and that is no error.
  r = Run({"forget", url_, "user-7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("subject 'user-7' was already forgotten"));
  r = Run({"forget", url_, "user-7", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(Field(Json(r.out), "forgotten_now").bool_value());

  // The events keep their place in the log.
  ASSERT_OK_AND_ASSIGN(int64_t version, store_->StreamVersion("user-7"));
  EXPECT_EQ(version, 2);
}

TEST_P(SealedEventsTest, VerifyDoesNotDecodeCiphertext) {
  const CliResult r = Run({"verify", url_, "--payloads"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("no problem found"));
}

TEST_P(SealedEventsTest, ForgetNeedsASubject) {
  const CliResult r = Run({"forget", url_});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("SUBJECT is missing"));
}

// --- keygen, rotate-master-key, --master-key-file ----------------------------

#ifdef EVENTSTORE_TEST_CRYPTO

class MasterKeyCliTest : public LifecycleCliTest {
 protected:
  // Writes a new key with `eventstore keygen`; returns its path.
  std::string Keygen(const std::string& name) {
    const std::string path = dir_->File(name);
    const CliResult r = Run({"keygen", path});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path;
  }

  // The key's text, which no output may show.
  std::string KeyText(const std::string& path) {
    std::string text = ReadWholeFile(path);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
      text.pop_back();
    }
    return text;
  }

  // Appends an event of subject user-9 to user-9 through an
  // EncryptedEventStore with the key in `key_file`.
  void AppendEncrypted(const std::string& key_file) {
    ASSERT_OK_AND_ASSIGN(crypto::MasterKey key,
                         crypto::MasterKey::FromFile(key_file));
    crypto::EncryptionOptions options;
    options.master_key = key;
    ASSERT_OK_AND_ASSIGN(
        std::unique_ptr<crypto::EncryptedEventStore> encrypted,
        crypto::EncryptedEventStore::Create(store_.get(), std::move(options)));
    EventData e = Placed("secret-order-9");
    e.metadata.set_subject_id("user-9");
    ASSERT_OK(encrypted->Append("user-9", ExpectedVersion::NoStream(), {e}));
  }

  void ExpectNoKey(const CliResult& r, const std::vector<std::string>& keys) {
    for (const std::string& key : keys) {
      ASSERT_EQ(key.size(), 64u);
      EXPECT_THAT(r.out, Not(HasSubstr(key)));
      EXPECT_THAT(r.err, Not(HasSubstr(key)));
    }
  }
};

TEST_P(MasterKeyCliTest, KeygenWritesAPrivateFileAndNeverOverwrites) {
  const std::string path = dir_->File("master.key");
  CliResult r = Run({"keygen", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string key = KeyText(path);
  EXPECT_EQ(key.size(), 64u);
  EXPECT_THAT(r.out, HasSubstr("key id"));
  ExpectNoKey(r, {key});
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);

  r = Run({"keygen", path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("exists"));
  EXPECT_EQ(KeyText(path), key);
}

TEST_P(MasterKeyCliTest, MasterKeyFileDecrypts) {
  const std::string key_file = Keygen("master.key");
  const std::string key = KeyText(key_file);
  AppendEncrypted(key_file);

  CliResult r = Run({"read", url_, "user-9", "--master-key-file", key_file,
                     "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectNoKey(r, {key});
  Value e = Json(r.out).list_value().values(0);
  EXPECT_EQ(Str(e, "payload_state"), "decrypted");
  EXPECT_EQ(Str(Field(e, "data"), "order_id"), "secret-order-9");

  // From the environment.
  r = Run({"tail", url_, "--format", "jsonl"},
          {{"EVENTSTORE_MASTER_KEY_FILE", key_file}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("secret-order-9"));

  // Without the key: sealed.
  r = Run({"read", url_, "user-9", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("secret-order-9")));
  EXPECT_EQ(Str(Json(r.out).list_value().values(0), "payload_state"),
            "encrypted");

  // Forgotten: no key brings it back.
  r = Run({"forget", url_, "user-9"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Run({"read", url_, "user-9", "--master-key-file", key_file, "--format",
           "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("secret-order-9")));
  EXPECT_EQ(Str(Json(r.out).list_value().values(0), "payload_state"),
            "forgotten");
}

TEST_P(MasterKeyCliTest, BadKeyFilesAreRefusedWithoutShowingThem) {
  const std::string key_file = Keygen("master.key");
  AppendEncrypted(key_file);
  const std::string other_file = Keygen("other.key");
  const std::string garbage = dir_->File("garbage.key");
  const std::string garbage_text =
      "7d0c6a2e4f7b4c1e9a570b7f7e3c5d21-not-a-key-7d0c6a2e4f7b4c1e9a57";
  ASSERT_EQ(test::RunShell(
                absl::StrCat("printf '%s' '", garbage_text, "' > ", garbage)),
            0);
  const std::vector<std::string> keys = {KeyText(key_file),
                                         KeyText(other_file)};

  CliResult r = Run(
      {"read", url_, "user-9", "--master-key-file", dir_->File("missing.key")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("--master-key-file"));
  EXPECT_THAT(r.err, HasSubstr("missing.key"));

  r = Run({"read", url_, "user-9", "--master-key-file", garbage});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("garbage.key"));
  EXPECT_THAT(r.err, Not(HasSubstr("not-a-key")));

  // A key that did not wrap the subject's key.
  r = Run({"read", url_, "user-9", "--master-key-file", other_file});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, Not(HasSubstr("secret-order-9")));
  ExpectNoKey(r, keys);

  r = Run({"rotate-master-key", url_, "--old-key-file", garbage,
           "--new-key-file", other_file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--old-key-file"));
  EXPECT_THAT(r.err, Not(HasSubstr("not-a-key")));
  ExpectNoKey(r, keys);
}

TEST_P(MasterKeyCliTest, RotateMasterKeyRewrapsWithoutRewritingEvents) {
  const std::string old_file = Keygen("old.key");
  AppendEncrypted(old_file);
  const std::string new_file = Keygen("new.key");
  const std::vector<std::string> keys = {KeyText(old_file), KeyText(new_file)};
  ASSERT_OK_AND_ASSIGN(Position head, store_->HeadPosition());

  CliResult r = Run({"rotate-master-key", url_, "--old-key-file", old_file,
                     "--new-key-file", new_file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 subject key rewrapped"));
  ExpectNoKey(r, keys);
  ASSERT_OK_AND_ASSIGN(Position after, store_->HeadPosition());
  EXPECT_EQ(after, head);

  r = Run({"read", url_, "user-9", "--master-key-file", new_file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("secret-order-9"));
  r = Run({"read", url_, "user-9", "--master-key-file", old_file});
  EXPECT_EQ(r.exit_code, 1);

  r = Run({"rotate-master-key", url_, "--old-key-file", old_file,
           "--new-key-file", new_file, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Num(Json(r.out), "already_current"), 1);
  EXPECT_EQ(Num(Json(r.out), "rewrapped"), 0);

  r = Run({"rotate-master-key", url_, "--old-key-file", old_file});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--new-key-file"));
}

INSTANTIATE_TEST_SUITE_P(Sqlite, MasterKeyCliTest, ::testing::Values("sqlite"));
#ifdef EVENTSTORE_TEST_POSTGRES
INSTANTIATE_TEST_SUITE_P(Postgres, MasterKeyCliTest,
                         ::testing::Values("postgres"));
#endif

#else  // !EVENTSTORE_TEST_CRYPTO

TEST(CryptoNotBuiltCliTest, CryptoCommandsSayTheyWereNotBuiltIn) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TempDir> dir, TempDir::Create());
  const std::string url = "sqlite://" + dir->File("events.db");
  ASSERT_OK(OpenEventStore(url).status());
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"keygen", dir->File("k")},
           {"read", url, "order-1", "--master-key-file", dir->File("k")}}) {
    const CliResult r = RunCli(args);
    EXPECT_NE(r.exit_code, 0) << args[0];
    EXPECT_THAT(r.err, HasSubstr("not built into this eventstore")) << args[0];
  }
}

#endif  // EVENTSTORE_TEST_CRYPTO

INSTANTIATE_TEST_SUITE_P(Sqlite, LifecycleCliTest, ::testing::Values("sqlite"));
INSTANTIATE_TEST_SUITE_P(Sqlite, SealedEventsTest, ::testing::Values("sqlite"));
#ifdef EVENTSTORE_TEST_POSTGRES
INSTANTIATE_TEST_SUITE_P(Postgres, LifecycleCliTest,
                         ::testing::Values("postgres"));
INSTANTIATE_TEST_SUITE_P(Postgres, SealedEventsTest,
                         ::testing::Values("postgres"));
#endif

}  // namespace
}  // namespace eventstore
