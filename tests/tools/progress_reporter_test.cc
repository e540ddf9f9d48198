// ProgressReporter: the bar and the plain lines of migrate, import and
// export; and ExportStore reporting its progress.

#include "tools/progress_reporter.h"

#include <memory>
#include <sstream>
#include <string>

#include "absl/time/time.h"
#include "eventstore/open_event_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/tools/fill_store.h"
#include "tools/export_file.h"

namespace eventstore::tools {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

TEST(GroupedTest, GroupsThousands) {
  EXPECT_EQ(Grouped(0), "0");
  EXPECT_EQ(Grouped(999), "999");
  EXPECT_EQ(Grouped(1000), "1,000");
  EXPECT_EQ(Grouped(1234567), "1,234,567");
  EXPECT_EQ(Grouped(-1000), "-1,000");
}

TEST(ProgressReporterTest, PlainLinesNameTheCommandAndThePercentage) {
  std::ostringstream out;
  ProgressReporter progress(out, "export", /*quiet=*/false, /*bar=*/false,
                            absl::ZeroDuration(), /*total=*/4000);
  progress.Update(1000);
  progress.Finish(4000);  // plain lines: nothing more
  EXPECT_THAT(out.str(), StartsWith("eventstore export: 1,000/4,000 events "
                                    "(25%), "));
  EXPECT_THAT(out.str(), HasSubstr(" events/s"));
  EXPECT_THAT(out.str(), Not(HasSubstr("\r")));
  EXPECT_EQ(out.str().back(), '\n');
}

TEST(ProgressReporterTest, UnknownTotalShowsTheCountOnly) {
  std::ostringstream out;
  ProgressReporter progress(out, "import", false, false, absl::ZeroDuration(),
                            std::nullopt);
  progress.Update(1500);
  EXPECT_THAT(out.str(), StartsWith("eventstore import: 1,500 events, "));
  EXPECT_THAT(out.str(), Not(HasSubstr("%")));
}

TEST(ProgressReporterTest, BarIsRedrawnInPlaceAndEndedByFinish) {
  std::ostringstream out;
  ProgressReporter progress(out, "migrate", false, /*bar=*/true,
                            absl::ZeroDuration(), 1000);
  progress.Update(500);  // within 100 ms of the start: not drawn
  progress.Finish(1000);
  EXPECT_THAT(out.str(), StartsWith("\r[##############################] "
                                    "100%  1,000/1,000 events"));
  EXPECT_EQ(out.str().back(), '\n');
}

TEST(ProgressReporterTest, QuietPrintsNothing) {
  std::ostringstream out;
  ProgressReporter progress(out, "export", /*quiet=*/true, true,
                            absl::ZeroDuration(), 10);
  progress.Update(5);
  progress.Finish(10);
  EXPECT_THAT(out.str(), IsEmpty());
}

TEST(ProgressReporterTest, ExportReportsEachPage) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<EventStore> store,
                       OpenEventStore("sqlite::memory:"));
  test::FillStore(*store, 5, 500, 100);  // 2,500 events
  std::ostringstream file;
  std::ostringstream log;
  ProgressReporter progress(log, "export", false, false, absl::ZeroDuration(),
                            std::nullopt);  // ExportStore counts them
  ASSERT_OK_AND_ASSIGN(v1::ExportCounts counts,
                       ExportStore(*store, "memory", file, &progress));
  EXPECT_EQ(counts.events(), 2500);
  EXPECT_THAT(log.str(), HasSubstr("eventstore export: 1,000/2,500 events "
                                   "(40%)"));
  EXPECT_THAT(log.str(), HasSubstr("2,500/2,500 events (100%)"));
}

}  // namespace
}  // namespace eventstore::tools
