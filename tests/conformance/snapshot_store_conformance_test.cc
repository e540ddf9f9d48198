// The SnapshotStore contract (snapshot_store.h), run on every backend of
// AllTestBackends(): one snapshot per (stream, schema version), never
// replaced by an older one.

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "eventstore/event_store.h"
#include "eventstore/snapshot_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::TestBackend;
using ::eventstore::test::TestBackendName;

constexpr char kStateType[] = "eventstore.test.v1.OrderState";

// A snapshot with a whole-microsecond taken_at (what the stores keep).
Snapshot MakeSnapshot(const std::string& stream, int64_t version,
                      int32_t schema_version, const std::string& state) {
  Snapshot s;
  s.stream = stream;
  s.version = version;
  s.type = kStateType;
  s.state = state;
  s.schema_version = schema_version;
  s.taken_at = absl::FromUnixMicros(1700000000123456 + version);
  return s;
}

void ExpectSameSnapshot(const Snapshot& actual, const Snapshot& expected) {
  EXPECT_EQ(actual.stream, expected.stream);
  EXPECT_EQ(actual.version, expected.version);
  EXPECT_EQ(actual.type, expected.type);
  EXPECT_EQ(actual.state, expected.state);
  EXPECT_EQ(actual.schema_version, expected.schema_version);
  EXPECT_EQ(actual.taken_at, expected.taken_at);
}

class SnapshotStoreConformanceTest : public test::StoreTest {
 protected:
  SnapshotStore& snapshots() { return store_->snapshots(); }

  std::optional<Snapshot> MustLoad(const std::string& stream,
                                   int32_t schema_version) {
    absl::StatusOr<std::optional<Snapshot>> s =
        snapshots().Load(stream, schema_version);
    EXPECT_OK(s) << stream << " schema " << schema_version;
    return s.ok() ? *s : std::nullopt;
  }
};

TEST_P(SnapshotStoreConformanceTest, LoadAbsentIsNullopt) {
  EXPECT_FALSE(MustLoad("order-1", 1).has_value());
  EXPECT_FALSE(MustLoad("order-1", 0).has_value());
}

TEST_P(SnapshotStoreConformanceTest, SaveLoadRoundTrip) {
  const Snapshot saved =
      MakeSnapshot("order-1", 42, 3, std::string("st\0ate\xff\x80", 8));
  ASSERT_OK(snapshots().Save(saved));
  std::optional<Snapshot> loaded = MustLoad("order-1", 3);
  ASSERT_TRUE(loaded.has_value());
  ExpectSameSnapshot(*loaded, saved);
  // Other streams have none.
  EXPECT_FALSE(MustLoad("order-2", 3).has_value());
  EXPECT_FALSE(MustLoad("order-10", 3).has_value());
}

TEST_P(SnapshotStoreConformanceTest, EmptyStateRoundTrips) {
  const Snapshot saved = MakeSnapshot("order-1", 1, 1, "");
  ASSERT_OK(snapshots().Save(saved));
  std::optional<Snapshot> loaded = MustLoad("order-1", 1);
  ASSERT_TRUE(loaded.has_value());
  ExpectSameSnapshot(*loaded, saved);
}

TEST_P(SnapshotStoreConformanceTest, NewerReplacesOlder) {
  ASSERT_OK(snapshots().Save(MakeSnapshot("s", 5, 1, "five")));
  const Snapshot newer = MakeSnapshot("s", 9, 1, "nine");
  ASSERT_OK(snapshots().Save(newer));
  std::optional<Snapshot> loaded = MustLoad("s", 1);
  ASSERT_TRUE(loaded.has_value());
  ExpectSameSnapshot(*loaded, newer);
}

TEST_P(SnapshotStoreConformanceTest, OlderDoesNotReplaceNewer) {
  const Snapshot newer = MakeSnapshot("s", 9, 1, "nine");
  ASSERT_OK(snapshots().Save(newer));
  // Not an error (a slow writer lost the race): the newer one stays.
  ASSERT_OK(snapshots().Save(MakeSnapshot("s", 5, 1, "five")));
  std::optional<Snapshot> loaded = MustLoad("s", 1);
  ASSERT_TRUE(loaded.has_value());
  ExpectSameSnapshot(*loaded, newer);
}

TEST_P(SnapshotStoreConformanceTest, SameVersionReplaces) {
  ASSERT_OK(snapshots().Save(MakeSnapshot("s", 9, 1, "first")));
  Snapshot again = MakeSnapshot("s", 9, 1, "second");
  again.taken_at += absl::Seconds(1);
  ASSERT_OK(snapshots().Save(again));
  std::optional<Snapshot> loaded = MustLoad("s", 1);
  ASSERT_TRUE(loaded.has_value());
  ExpectSameSnapshot(*loaded, again);
}

TEST_P(SnapshotStoreConformanceTest, SchemaVersionsAreKeptApart) {
  const Snapshot v1 = MakeSnapshot("s", 20, 1, "old shape");
  const Snapshot v2 = MakeSnapshot("s", 7, 2, "new shape");
  ASSERT_OK(snapshots().Save(v1));
  ASSERT_OK(snapshots().Save(v2));
  std::optional<Snapshot> loaded1 = MustLoad("s", 1);
  ASSERT_TRUE(loaded1.has_value());
  ExpectSameSnapshot(*loaded1, v1);
  // A lower version under schema 2 is not compared with schema 1's.
  std::optional<Snapshot> loaded2 = MustLoad("s", 2);
  ASSERT_TRUE(loaded2.has_value());
  ExpectSameSnapshot(*loaded2, v2);
  EXPECT_FALSE(MustLoad("s", 3).has_value());
  EXPECT_FALSE(MustLoad("s", 0).has_value());
}

TEST_P(SnapshotStoreConformanceTest, DeleteRemovesEverySchemaVersion) {
  ASSERT_OK(snapshots().Save(MakeSnapshot("s", 5, 1, "a")));
  ASSERT_OK(snapshots().Save(MakeSnapshot("s", 6, 2, "b")));
  const Snapshot other = MakeSnapshot("s-other", 3, 1, "c");
  ASSERT_OK(snapshots().Save(other));
  ASSERT_OK(snapshots().Delete("s"));
  EXPECT_FALSE(MustLoad("s", 1).has_value());
  EXPECT_FALSE(MustLoad("s", 2).has_value());
  std::optional<Snapshot> kept = MustLoad("s-other", 1);
  ASSERT_TRUE(kept.has_value());
  ExpectSameSnapshot(*kept, other);
  // Deleting what is absent is fine; saving afterwards starts afresh, so a
  // lower version than the deleted one is taken.
  ASSERT_OK(snapshots().Delete("s"));
  ASSERT_OK(snapshots().Delete("never-snapshotted"));
  const Snapshot fresh = MakeSnapshot("s", 2, 1, "fresh");
  ASSERT_OK(snapshots().Save(fresh));
  std::optional<Snapshot> loaded = MustLoad("s", 1);
  ASSERT_TRUE(loaded.has_value());
  ExpectSameSnapshot(*loaded, fresh);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, SnapshotStoreConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
