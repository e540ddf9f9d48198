// `eventstore migrate`, `export` and `import` of a store that uses the
// stream lifecycle and crypto-shredding, run as the real binary: deleted
// streams (soft, revived, hard), retention, encrypted payloads and the key
// table are carried as they are, so that the copy reads, refuses and
// numbers exactly as the source; live subject keys only with --with-keys,
// forgotten subjects always; `eventstore verify` passes on both sides. The
// PostgreSQL tests (names containing "postgres") start their own server.

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eventstore/event_importer.h"
#include "eventstore/open_event_store.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/subject_key_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"
#include "tests/support/raw_postgres.h"
#include "tests/support/status_matchers.h"
#include "tests/support/temp_dir.h"
#include "tests/tools/cli_process.h"
#include "tests/tools/cli_store_test.h"
#include "tools/crc64.h"
#include "tools/export_file.h"

namespace eventstore {
namespace {

using ::eventstore::test::CliResult;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A plain event; its type's descriptor is recorded with it, as `eventstore
// verify` wants.
EventData Plain(const std::string& text) {
  test::v1::OrderPlaced placed;
  placed.set_order_id(text);
  return EventData::From(placed);
}

// An event as an EncryptedEventStore writes it: an opaque payload (nonce,
// ciphertext, tag) under its subject's metadata.
EventData Sealed(const std::string& subject, int seed) {
  EventData e;
  e.type = "eventstore.test.v1.OrderPlaced";
  e.payload.resize(56);
  for (size_t i = 0; i < e.payload.size(); ++i) {
    e.payload[i] = static_cast<char>((seed * 131 + i * 29 + 7) & 0xff);
  }
  e.metadata.set_subject_id(subject);
  e.metadata.set_payload_encryption(std::string(kPayloadEncryptionXChaCha20));
  return e;
}

std::vector<int64_t> Versions(EventStore& store, const std::string& stream) {
  absl::StatusOr<std::vector<RecordedEvent>> events = store.ReadStream(stream);
  EXPECT_OK(events);
  std::vector<int64_t> out;
  if (!events.ok()) return out;
  for (const RecordedEvent& e : *events) out.push_back(e.version);
  return out;
}

// Fills `store` with every case a copy must carry:
//   plain-1   3 events
//   soft-1    3 events, soft-deleted (marker 4), revived with 5 and 6
//   gone-1    2 events, soft-deleted (marker 3)
//   hard-1    2 events, hard-deleted (marker 3)
//   capped-1  max_count 2 and max_age 1 day, 5 events (4 and 5 read)
//   secret-1  encrypted events of user-7 (live key) and user-8 (forgotten)
void FillLifecycle(EventStore& store) {
  ASSERT_OK(store.Append("plain-1", ExpectedVersion::NoStream(),
                         {Plain("a"), Plain("b"), Plain("c")}));
  ASSERT_OK(store.Append("soft-1", ExpectedVersion::NoStream(),
                         {Plain("a"), Plain("b"), Plain("c")}));
  ASSERT_OK(store.DeleteStream("soft-1", ExpectedVersion::Exactly(3),
                               DeleteMode::kSoft));
  ASSERT_OK(store.Append("soft-1", ExpectedVersion::NoStream(),
                         {Plain("d"), Plain("e")}));
  ASSERT_OK(store.Append("gone-1", ExpectedVersion::NoStream(),
                         {Plain("a"), Plain("b")}));
  ASSERT_OK(store.DeleteStream("gone-1", ExpectedVersion::Exactly(2),
                               DeleteMode::kSoft));
  ASSERT_OK(store.Append("hard-1", ExpectedVersion::NoStream(),
                         {Plain("a"), Plain("b")}));
  ASSERT_OK(store.DeleteStream("hard-1", ExpectedVersion::Exactly(2),
                               DeleteMode::kHard));
  StreamMetadata capped;
  capped.max_count = 2;
  capped.max_age = absl::Hours(24);
  ASSERT_OK(store.SetStreamMetadata("capped-1", capped));
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(store.Append("capped-1", ExpectedVersion::Any(),
                           {Plain(absl::StrCat("reading-", i))}));
  }
  ASSERT_OK(store.Append("secret-1", ExpectedVersion::NoStream(),
                         {Sealed("user-7", 1), Sealed("user-8", 2)}));
  SubjectKeyRecord live;
  live.subject = "user-7";
  live.wrapped_key = std::string(72, '\x5a');
  live.master_key_id = "mk-1";
  live.created_at = absl::FromUnixMicros(1700000000000000);
  SubjectKeyRecord forgotten;
  forgotten.subject = "user-8";
  forgotten.created_at = absl::FromUnixMicros(1700000000000000);
  forgotten.forgotten_at = absl::FromUnixMicros(1700000100000000);
  ASSERT_OK(store.subject_keys().Put({live, forgotten}).status());
}

class LifecycleTransferTest : public test::CliStoreTest {
 protected:
  void SetUp() override {
    test::CliStoreTest::SetUp();
    source_url_ = SqliteUrl("source.db");
    std::unique_ptr<EventStore> source = Open(source_url_);
    ASSERT_NE(source, nullptr);
    FillLifecycle(*source);
  }

  // Expects the store at `url` to read, refuse and number as the source,
  // to hold user-8 as forgotten and user-7's key only `with_keys`, and to
  // pass `eventstore verify`. Appends to it at the end.
  void ExpectLikeSource(const std::string& url, bool with_keys) {
    {
      std::unique_ptr<EventStore> source = Open(source_url_);
      std::unique_ptr<EventStore> target = Open(url);
      ASSERT_NE(source, nullptr);
      ASSERT_NE(target, nullptr);
      EXPECT_TRUE(Same(*source, *target));
      EXPECT_THAT(Versions(*target, "plain-1"), ElementsAre(1, 2, 3));
      EXPECT_THAT(Versions(*target, "soft-1"), ElementsAre(5, 6));
      EXPECT_THAT(Versions(*target, "gone-1"), IsEmpty());
      EXPECT_THAT(Versions(*target, "hard-1"), IsEmpty());
      EXPECT_THAT(Versions(*target, "capped-1"), ElementsAre(4, 5));
      for (const char* stream : {"soft-1", "gone-1", "hard-1", "capped-1"}) {
        SCOPED_TRACE(stream);
        ASSERT_OK_AND_ASSIGN(StreamInfo want, source->GetStreamInfo(stream));
        ASSERT_OK_AND_ASSIGN(StreamInfo got, target->GetStreamInfo(stream));
        EXPECT_EQ(got.state, want.state);
        EXPECT_EQ(got.version, want.version);
        EXPECT_EQ(got.last_version, want.last_version);
        EXPECT_EQ(got.metadata, want.metadata);
        EXPECT_EQ(got.deleted_at, want.deleted_at);
      }

      // Encrypted payloads, byte for byte, still sealed and intact.
      ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> want,
                           source->ReadStream("secret-1"));
      ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> got,
                           target->ReadStream("secret-1"));
      ASSERT_EQ(got.size(), 2u);
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].payload, want[i].payload);
        EXPECT_EQ(got[i].metadata.subject_id(), want[i].metadata.subject_id());
        EXPECT_TRUE(got[i].sealed());
        EXPECT_FALSE(got[i].damaged()) << got[i].damage;
        EXPECT_EQ(got[i].checksum, want[i].checksum);
      }

      // The key table: forgotten always, the live key only with keys.
      ASSERT_OK_AND_ASSIGN(std::optional<SubjectKeyRecord> user8,
                           target->subject_keys().Find("user-8"));
      ASSERT_TRUE(user8.has_value());
      EXPECT_TRUE(user8->forgotten());
      EXPECT_TRUE(user8->wrapped_key.empty());
      ASSERT_OK_AND_ASSIGN(std::optional<SubjectKeyRecord> user7,
                           target->subject_keys().Find("user-7"));
      if (with_keys) {
        ASSERT_TRUE(user7.has_value());
        EXPECT_FALSE(user7->forgotten());
        EXPECT_EQ(user7->wrapped_key, std::string(72, '\x5a'));
        EXPECT_EQ(user7->master_key_id, "mk-1");
      } else {
        EXPECT_FALSE(user7.has_value());
      }
    }
    CliResult verify = Run({"verify", url});
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;

    // It refuses and numbers as the source would.
    std::unique_ptr<EventStore> target = Open(url);
    ASSERT_NE(target, nullptr);
    EXPECT_TRUE(IsHardDeletedStream(
        target->Append("hard-1", ExpectedVersion::Any(), {Plain("x")})
            .status()));
    ASSERT_OK_AND_ASSIGN(
        AppendResult revived,
        target->Append("soft-1", ExpectedVersion::Exactly(6), {Plain("f")}));
    EXPECT_EQ(revived.next_expected_version, 7);
    ASSERT_OK_AND_ASSIGN(
        AppendResult again,
        target->Append("gone-1", ExpectedVersion::NoStream(), {Plain("c")}));
    EXPECT_EQ(again.next_expected_version, 4);
  }

  std::string source_url_;
};

TEST_F(LifecycleTransferTest, MigrateCarriesForgottenSubjectsButNoKeys) {
  const std::string target = SqliteUrl("target.db");
  CliResult r =
      Run({"migrate", "--from", source_url_, "--to", target, "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("identical on both sides"));
  EXPECT_THAT(r.err, HasSubstr("1 subject's key not copied"));
  EXPECT_THAT(r.err, HasSubstr("stream rows"));
  CliResult source_verify = Run({"verify", source_url_});
  EXPECT_EQ(source_verify.exit_code, 0) << source_verify.out;
  ExpectLikeSource(target, /*with_keys=*/false);
}

TEST_F(LifecycleTransferTest, MigrateWithKeysCarriesTheKeyTable) {
  const std::string target = SqliteUrl("target.db");
  CliResult r = Run({"migrate", "--from", source_url_, "--to", target,
                     "--with-keys", "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.err, Not(HasSubstr("not copied")));
  // A re-run resends nothing and leaves the rows as they are.
  CliResult again = Run({"migrate", "--from", source_url_, "--to", target,
                         "--with-keys", "--verify"});
  ASSERT_EQ(again.exit_code, 0) << again.err << again.out;
  EXPECT_THAT(again.err, HasSubstr("copied 0 events"));
  ExpectLikeSource(target, /*with_keys=*/true);
}

TEST_F(LifecycleTransferTest, ExportImportRoundTripWithAndWithoutKeys) {
  const std::string plain_file = dir_->File("plain.esx");
  CliResult r = Run({"export", source_url_, plain_file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("1 subject key record (forgotten subjects)"));
  ASSERT_OK_AND_ASSIGN(v1::ExportHeader header,
                       tools::VerifyExportFile(plain_file, "plain.esx"));
  EXPECT_EQ(header.format_version(), 2u);
  EXPECT_FALSE(header.with_keys());
  EXPECT_EQ(header.counts().subject_keys(), 1);
  EXPECT_EQ(header.counts().stream_rows(), 4);

  const std::string keyed_file = dir_->File("keyed.esx");
  r = Run({"export", "--with-keys", source_url_, keyed_file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_OK_AND_ASSIGN(header,
                       tools::VerifyExportFile(keyed_file, "keyed.esx"));
  EXPECT_TRUE(header.with_keys());
  EXPECT_EQ(header.counts().subject_keys(), 2);

  // Without --with-keys, import leaves the file's live keys out too.
  const std::string without = SqliteUrl("without.db");
  r = Run({"import", keyed_file, without});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("1 subject's key not copied"));
  ExpectLikeSource(without, /*with_keys=*/false);

  const std::string with = SqliteUrl("with.db");
  r = Run({"import", "--with-keys", keyed_file, with});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectLikeSource(with, /*with_keys=*/true);

  const std::string from_plain = SqliteUrl("from-plain.db");
  r = Run({"import", "--with-keys", plain_file, from_plain});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectLikeSource(from_plain, /*with_keys=*/false);
}

// A store without deletions, retention or keys exports format version 1,
// which older tools read.
TEST_F(LifecycleTransferTest, APlainStoreExportsFormatVersion1) {
  const std::string url = SqliteUrl("plain.db");
  {
    std::unique_ptr<EventStore> store = Open(url);
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->Append("plain-1", ExpectedVersion::NoStream(),
                            {Plain("a"), Plain("b")}));
  }
  const std::string file = dir_->File("plain-store.esx");
  CliResult r = Run({"export", url, file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_OK_AND_ASSIGN(v1::ExportHeader header,
                       tools::VerifyExportFile(file, "plain-store.esx"));
  EXPECT_EQ(header.format_version(), 1u);
  EXPECT_EQ(header.counts().events(), 2);
}

// Writes `records` as an export file with a matching trailer.
void WriteExportFile(const std::string& path,
                     std::vector<v1::ExportRecord> records) {
  std::string bytes;
  v1::ExportCounts counts;
  for (const v1::ExportRecord& record : records) {
    if (record.has_stream_row()) counts.set_stream_rows(1);
  }
  auto append = [&bytes](const v1::ExportRecord& record) {
    const std::string body = record.SerializeAsString();
    uint64_t n = body.size();
    do {
      uint8_t byte = n & 0x7f;
      n >>= 7;
      if (n != 0) byte |= 0x80;
      bytes.push_back(static_cast<char>(byte));
    } while (n != 0);
    bytes += body;
  };
  for (const v1::ExportRecord& record : records) append(record);
  tools::Crc64 crc;
  crc.Update(bytes);
  v1::ExportRecord trailer;
  *trailer.mutable_trailer()->mutable_counts() = counts;
  trailer.mutable_trailer()->set_checksum(crc.value());
  append(trailer);
  std::ofstream(path, std::ios::binary) << bytes;
}

// A version 1 file cannot hold stream rows: one that does is refused (an
// old reader refuses a version 2 file by its version).
TEST_F(LifecycleTransferTest, StreamRowsInAVersion1FileAreRefused) {
  std::vector<v1::ExportRecord> records(2);
  records[0].mutable_header()->set_format_version(1);
  records[0].mutable_header()->set_source_store_id("s");
  records[0].mutable_header()->mutable_counts()->set_stream_rows(1);
  records[1].mutable_stream_row()->set_stream("hard-1");
  records[1].mutable_stream_row()->set_state("hard-deleted");
  const std::string v1_file = dir_->File("v1.esx");
  WriteExportFile(v1_file, records);
  EXPECT_THAT(
      tools::VerifyExportFile(v1_file, "v1.esx"),
      test::StatusIs(absl::StatusCode::kDataLoss, HasSubstr("out of order")));
  // The same records as version 2 are whole.
  records[0].mutable_header()->set_format_version(2);
  const std::string v2_file = dir_->File("v2.esx");
  WriteExportFile(v2_file, records);
  EXPECT_OK(tools::VerifyExportFile(v2_file, "v2.esx").status());
  // A version from the future is refused by its number.
  records[0].mutable_header()->set_format_version(3);
  const std::string v3_file = dir_->File("v3.esx");
  WriteExportFile(v3_file, records);
  EXPECT_THAT(tools::VerifyExportFile(v3_file, "v3.esx"),
              test::StatusIs(absl::StatusCode::kFailedPrecondition,
                             HasSubstr("format version 3")));
}

// --- PostgreSQL --------------------------------------------------------------

class LifecycleTransferPgTest : public LifecycleTransferTest {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<test::PostgresServer>> server =
        test::PostgresServer::Start({});
    ASSERT_OK(server);
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  std::string PgUrl() const {
    return absl::StrCat(server_->url(), "?schema=", test::UniqueSchemaName());
  }

  static test::PostgresServer* server_;
};

test::PostgresServer* LifecycleTransferPgTest::server_ = nullptr;

TEST_F(LifecycleTransferPgTest, postgres_SqliteToPostgresToSqlite) {
  const std::string pg = PgUrl();
  CliResult r = Run({"migrate", "--from", source_url_, "--to", pg,
                     "--with-keys", "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("identical on both sides"));
  const std::string back = SqliteUrl("back.db");
  r = Run({"migrate", "--from", pg, "--to", back, "--verify"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_THAT(r.err, HasSubstr("1 subject's key not copied"));
  ExpectLikeSource(back, /*with_keys=*/false);
  ExpectLikeSource(pg, /*with_keys=*/true);
}

TEST_F(LifecycleTransferPgTest, postgres_ExportFromPostgresImportsAnywhere) {
  const std::string pg = PgUrl();
  CliResult r =
      Run({"migrate", "--from", source_url_, "--to", pg, "--with-keys"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string file = dir_->File("pg.esx");
  r = Run({"export", "--with-keys", pg, file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string pg_again = PgUrl();
  r = Run({"import", "--with-keys", file, pg_again});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectLikeSource(pg_again, /*with_keys=*/true);
  const std::string lite = SqliteUrl("from-pg.db");
  r = Run({"import", file, lite});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectLikeSource(lite, /*with_keys=*/false);
}

}  // namespace
}  // namespace eventstore
