// EventStore::ReadStreamPages, run on every backend of AllTestBackends(): the
// events ReadStream(stream, options) returns (same window, retention and
// deletion rules, same decoding and upcasting), in the same order, handed
// over in pages of at most page_size events, from one snapshot of the
// stream. A page error stops the read and is returned, and leaves the store
// usable.
//
// Tests whose names start with "Concurrent" are the ones CI also runs under
// ThreadSanitizer.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/stream_lifecycle.h"
#include "eventstore/test/v1/events.pb.h"
#include "eventstore/test/v1/legacy.pb.h"
#include "eventstore/type_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/conformance_events.h"
#include "tests/support/split_moved_upcaster.h"
#include "tests/support/status_matchers.h"
#include "tests/support/store_test.h"
#include "tests/support/test_backends.h"

namespace eventstore {
namespace {

using ::eventstore::test::AllTestBackends;
using ::eventstore::test::Batch;
using ::eventstore::test::StatusIs;
using ::eventstore::test::TestBackendName;
using ::eventstore::test::Versions;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Everything a read returns of an event, as one comparable string.
std::string Describe(const RecordedEvent& e) {
  return absl::StrCat(e.stream, "#", e.version, " @", e.position.ToString(),
                      " ", e.id.ToString(), " ", e.type, " ",
                      absl::CHexEscape(e.payload), " ",
                      absl::ToUnixMicros(e.recorded_at), " ",
                      e.checksum.has_value() ? absl::StrCat(*e.checksum) : "-",
                      " ", absl::CHexEscape(e.metadata.SerializeAsString()),
                      " ", e.damage.ToString());
}

std::vector<std::string> Describe(const std::vector<RecordedEvent>& events) {
  std::vector<std::string> out;
  for (const RecordedEvent& e : events) out.push_back(Describe(e));
  return out;
}

ReadStreamOptions Forward(std::optional<int64_t> from = std::nullopt,
                          int64_t max_count = kUnlimited) {
  ReadStreamOptions o;
  o.from_version = from;
  o.max_count = max_count;
  return o;
}

ReadStreamOptions Backward(std::optional<int64_t> from = std::nullopt,
                           int64_t max_count = kUnlimited) {
  ReadStreamOptions o = Forward(from, max_count);
  o.direction = Direction::kBackward;
  return o;
}

std::string Name(const ReadStreamOptions& o) {
  return absl::StrCat(
      o.direction == Direction::kForward ? "forward" : "backward", " from ",
      o.from_version.has_value() ? absl::StrCat(*o.from_version) : "default",
      " max ", o.max_count);
}

// The options every comparison runs with, for a stream of about 10 events.
std::vector<ReadStreamOptions> AllOptions() {
  return {Forward(),
          Backward(),
          Forward(4),
          Backward(7),
          Forward(std::nullopt, 5),
          Backward(std::nullopt, 5),
          Forward(3, 4),
          Backward(8, 4),
          Forward(20),
          Backward(0),
          Forward(std::nullopt, 0)};
}

constexpr int64_t kPageSizes[] = {1, 3, 5, 10, 11, 1000};

// What ReadStreamPages handed over.
struct Paged {
  absl::Status status;
  std::vector<std::vector<RecordedEvent>> pages;

  std::vector<RecordedEvent> Concatenated() const {
    std::vector<RecordedEvent> all;
    for (const auto& page : pages) {
      all.insert(all.end(), page.begin(), page.end());
    }
    return all;
  }
};

Paged ReadPages(EventStore& store, const std::string& stream,
                const ReadStreamOptions& options, int64_t page_size) {
  Paged paged;
  paged.status = store.ReadStreamPages(
      stream, options, page_size,
      [&](std::vector<RecordedEvent> page) -> absl::Status {
        paged.pages.push_back(std::move(page));
        return absl::OkStatus();
      });
  return paged;
}

// ReadStreamPages(stream, options, size) for every option and page size
// returns what ReadStream returns, in pages of 1 to size events.
void ExpectPagesMatchReadStream(EventStore& store, const std::string& stream) {
  for (const ReadStreamOptions& options : AllOptions()) {
    SCOPED_TRACE(Name(options));
    absl::StatusOr<std::vector<RecordedEvent>> whole =
        store.ReadStream(stream, options);
    ASSERT_OK(whole);
    for (int64_t size : kPageSizes) {
      SCOPED_TRACE(absl::StrCat("page_size ", size));
      const Paged paged = ReadPages(store, stream, options, size);
      ASSERT_OK(paged.status);
      for (const auto& page : paged.pages) {
        EXPECT_FALSE(page.empty());
        EXPECT_LE(static_cast<int64_t>(page.size()), size);
      }
      EXPECT_THAT(Describe(paged.Concatenated()),
                  ElementsAreArray(Describe(*whole)));
    }
  }
}

class ReadStreamPagesConformanceTest : public test::StoreTest {
 protected:
  void AppendBatch(const std::string& stream, int n) {
    ASSERT_OK(store().Append(stream, ExpectedVersion::Any(), Batch(n, stream)));
  }
};

TEST_P(ReadStreamPagesConformanceTest, PagesConcatenateToReadStream) {
  AppendBatch("order-1", 4);
  AppendBatch("order-2", 3);
  AppendBatch("order-1", 6);
  ExpectPagesMatchReadStream(store(), "order-1");

  // Exact pages: 10 events in pages of 5, 3 + 3 + 3 + 1, or one page.
  const auto sizes = [&](int64_t page_size) {
    std::vector<size_t> out;
    for (const auto& page :
         ReadPages(store(), "order-1", {}, page_size).pages) {
      out.push_back(page.size());
    }
    return out;
  };
  EXPECT_THAT(sizes(5), ElementsAre(5, 5));
  EXPECT_THAT(sizes(3), ElementsAre(3, 3, 3, 1));
  EXPECT_THAT(sizes(11), ElementsAre(10));
  const Paged paged = ReadPages(store(), "order-1", {}, 4);
  ASSERT_OK(paged.status);
  EXPECT_THAT(Versions(paged.Concatenated()),
              ElementsAreArray(test::Range(1, 10)));
}

TEST_P(ReadStreamPagesConformanceTest, RetentionAppliesAsToReadStream) {
  AppendBatch("order-1", 10);
  StreamMetadata keep_four;
  keep_four.max_count = 4;
  ASSERT_OK(store().SetStreamMetadata("order-1", keep_four));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> visible,
                       store().ReadStream("order-1"));
  EXPECT_THAT(Versions(visible), ElementsAre(7, 8, 9, 10));
  ExpectPagesMatchReadStream(store(), "order-1");

  StreamMetadata truncated;
  truncated.truncate_before = 3;
  ASSERT_OK(store().SetStreamMetadata("order-1", truncated));
  ExpectPagesMatchReadStream(store(), "order-1");
  const Paged paged = ReadPages(store(), "order-1", {}, 3);
  ASSERT_OK(paged.status);
  EXPECT_THAT(Versions(paged.Concatenated()),
              ElementsAreArray(test::Range(3, 10)));
}

TEST_P(ReadStreamPagesConformanceTest, DeletedStreamAsReadStream) {
  AppendBatch("order-1", 5);
  ASSERT_OK(store().DeleteStream("order-1", ExpectedVersion::Exactly(5),
                                 DeleteMode::kSoft));
  for (const ReadStreamOptions& options : {Forward(), Backward()}) {
    int calls = 0;
    EXPECT_OK(store().ReadStreamPages("order-1", options, 2,
                                      [&](std::vector<RecordedEvent>) {
                                        ++calls;
                                        return absl::OkStatus();
                                      }));
    EXPECT_EQ(calls, 0);
  }
  ExpectPagesMatchReadStream(store(), "order-1");

  // Written again: only the new events, as ReadStream returns them.
  AppendBatch("order-1", 3);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> revived,
                       store().ReadStream("order-1"));
  EXPECT_EQ(revived.size(), 3u);
  ExpectPagesMatchReadStream(store(), "order-1");
}

TEST_P(ReadStreamPagesConformanceTest, UpcastersApplyAsToReadStream) {
  auto registry = std::make_shared<TypeRegistry>();
  registry->Register<test::v1::NewName>();
  registry->Register<test::v1::StreetChanged>();
  registry->Register<test::v1::CityChanged>();
  registry->AddRename("eventstore.test.v1.OldName",
                      "eventstore.test.v1.NewName");
  // One stored event becomes two.
  registry->AddUpcaster(test::kCustomerMovedV1Type, test::SplitMovedUpcaster());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       GetParam().open(registry));
  std::vector<EventData> batch;
  for (int i = 0; i < 4; ++i) {
    test::v1::OldName old;
    old.set_value(absl::StrCat("name ", i));
    test::v1::CustomerMovedV1 moved;
    moved.set_street(absl::StrCat("street ", i));
    moved.set_city(absl::StrCat("city ", i));
    batch.push_back(EventData::From(old));
    batch.push_back(EventData::From(moved));
  }
  ASSERT_OK(store->Append("customer-1", ExpectedVersion::NoStream(), batch));
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> whole,
                       store->ReadStream("customer-1"));
  ASSERT_EQ(whole.size(), 12u);
  EXPECT_EQ(whole[0].type, "eventstore.test.v1.NewName");
  ExpectPagesMatchReadStream(*store, "customer-1");
}

TEST_P(ReadStreamPagesConformanceTest, AbsentStreamNeverCallsPage) {
  AppendBatch("order-1", 2);
  for (const ReadStreamOptions& options : AllOptions()) {
    SCOPED_TRACE(Name(options));
    int calls = 0;
    EXPECT_OK(store().ReadStreamPages("order-absent", options, 3,
                                      [&](std::vector<RecordedEvent>) {
                                        ++calls;
                                        return absl::OkStatus();
                                      }));
    EXPECT_EQ(calls, 0);
  }
}

TEST_P(ReadStreamPagesConformanceTest, InvalidArgumentsAreRefused) {
  AppendBatch("order-1", 2);
  int calls = 0;
  const auto count = [&](std::vector<RecordedEvent>) {
    ++calls;
    return absl::OkStatus();
  };
  for (int64_t size : {int64_t{0}, int64_t{-1}}) {
    EXPECT_THAT(
        store().ReadStreamPages("order-1", {}, size, count),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_size")));
  }
  EXPECT_THAT(
      store().ReadStreamPages("order-1", Forward(std::nullopt, -1), 3, count),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_count")));
  EXPECT_THAT(store().ReadStreamPages("order-1", Forward(-1), 3, count),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store().ReadStreamPages("", {}, 3, count),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(calls, 0);
}

TEST_P(ReadStreamPagesConformanceTest, PageErrorStopsTheReadAndIsReturned) {
  AppendBatch("order-1", 10);
  // More failed reads than a backend keeps connections: none is leaked.
  for (int round = 0; round < 12; ++round) {
    SCOPED_TRACE(round);
    int calls = 0;
    const absl::Status stop = absl::CancelledError(
        absl::StrCat("the consumer stopped in round ", round));
    const absl::Status status = store().ReadStreamPages(
        "order-1", round % 2 == 0 ? Forward() : Backward(), 3,
        [&](std::vector<RecordedEvent>) -> absl::Status {
          ++calls;
          return calls == 2 ? stop : absl::OkStatus();
        });
    EXPECT_EQ(status, stop);
    EXPECT_EQ(calls, 2);
  }
  // The store is usable at once: an append (on an in-memory database, the
  // read held the only connection), and a whole read.
  ASSERT_OK_AND_ASSIGN(AppendResult appended,
                       store().Append("order-1", ExpectedVersion::Exactly(10),
                                      Batch(1, "after")));
  EXPECT_EQ(appended.next_expected_version, 11);
  const Paged paged = ReadPages(store(), "order-1", {}, 4);
  ASSERT_OK(paged.status);
  EXPECT_THAT(Versions(paged.Concatenated()),
              ElementsAreArray(test::Range(1, 11)));

  // An error on the only page is returned too.
  EXPECT_THAT(store().ReadStreamPages("order-1", {}, 100,
                                      [](std::vector<RecordedEvent>) {
                                        return absl::DataLossError("no room");
                                      }),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no room")));
  ASSERT_OK(store().Append("order-1", ExpectedVersion::Exactly(11),
                           Batch(1, "again")));
}

// Appends that commit while the reader sits between pages are not seen: the
// read is one snapshot. On a store whose read holds its only connection
// (SQLite ":memory:"), the append waits for the read instead.
TEST_P(ReadStreamPagesConformanceTest, ConcurrentAppendsBetweenPagesUnseen) {
  AppendBatch("order-1", 6);
  ASSERT_OK_AND_ASSIGN(std::vector<RecordedEvent> before,
                       store().ReadStream("order-1"));
  const bool append_waits_for_read = GetParam().name == "sqlite_memory";

  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  bool appended = false;
  absl::Status append_status;
  std::thread appender;
  std::vector<RecordedEvent> seen;
  int calls = 0;
  const absl::Status status = store().ReadStreamPages(
      "order-1", {}, 2, [&](std::vector<RecordedEvent> page) -> absl::Status {
        seen.insert(seen.end(), page.begin(), page.end());
        if (++calls != 1) return absl::OkStatus();
        appender = std::thread([&] {
          {
            std::lock_guard<std::mutex> lock(mu);
            started = true;
          }
          cv.notify_all();
          absl::Status s =
              store()
                  .Append("order-1", ExpectedVersion::Any(), Batch(3, "late"))
                  .status();
          {
            std::lock_guard<std::mutex> lock(mu);
            append_status = s;
            appended = true;
          }
          cv.notify_all();
        });
        std::unique_lock<std::mutex> lock(mu);
        const bool done = cv.wait_for(lock, std::chrono::seconds(60), [&] {
          return append_waits_for_read ? started : appended;
        });
        if (!done) return absl::DeadlineExceededError("the append never ran");
        return append_waits_for_read ? absl::OkStatus() : append_status;
      });
  if (appender.joinable()) appender.join();
  ASSERT_OK(status);
  EXPECT_EQ(calls, 3);
  EXPECT_THAT(Describe(seen), ElementsAreArray(Describe(before)));
  ASSERT_OK(append_status);
  ASSERT_OK_AND_ASSIGN(int64_t version, store().StreamVersion("order-1"));
  EXPECT_EQ(version, 9);
  const Paged after = ReadPages(store(), "order-1", {}, 2);
  ASSERT_OK(after.status);
  EXPECT_THAT(Versions(after.Concatenated()),
              ElementsAreArray(test::Range(1, 9)));
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ReadStreamPagesConformanceTest,
                         ::testing::ValuesIn(AllTestBackends()),
                         TestBackendName);

}  // namespace
}  // namespace eventstore
