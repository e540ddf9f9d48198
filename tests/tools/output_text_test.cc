// How the tool writes counts for people (Grouped, CountOf) and tables that
// grow while following (RecordWriter streaming).

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tools/output_format.h"

namespace eventstore::tools {
namespace {

TEST(CountOfTest, SingularForOnePluralOtherwiseGrouped) {
  EXPECT_EQ(CountOf(0, "stream"), "0 streams");
  EXPECT_EQ(CountOf(1, "stream"), "1 stream");
  EXPECT_EQ(CountOf(2, "event"), "2 events");
  EXPECT_EQ(CountOf(1204, "stream"), "1,204 streams");
  EXPECT_EQ(CountOf(1, "entry", "entries"), "1 entry");
  EXPECT_EQ(CountOf(3, "entry", "entries"), "3 entries");
  EXPECT_EQ(CountOf(1, "problem"), "1 problem");
}

TEST(GroupedTest, ExtremesKeepTheirSign) {
  EXPECT_EQ(Grouped(INT64_MIN), "-9,223,372,036,854,775,808");
  EXPECT_EQ(Grouped(INT64_MAX), "9,223,372,036,854,775,807");
  EXPECT_EQ(Grouped(-12), "-12");
}

// The start column of each cell of each line: aligned when they agree.
std::vector<std::vector<size_t>> ColumnStarts(const std::string& text) {
  std::vector<std::vector<size_t>> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<size_t> starts = {0};
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] != ' ' && line[i - 1] == ' ' && i >= 2 &&
          line[i - 2] == ' ') {
        starts.push_back(i);
      }
    }
    out.push_back(starts);
  }
  return out;
}

TEST(RecordWriterTest, StreamingTableAlignsBufferedRowsAndLaterOnes) {
  std::ostringstream out;
  RecordWriter writer(out, OutputFormat::kTable, {"POS", "STREAM", "DATA"},
                      /*streaming=*/true);
  writer.SetMinWidths({6, 12, 0});
  writer.Add({"1", "order-1", "{}"}, "{}");
  writer.Add({"22", "a-rather-long-stream", "{}"}, "{}");
  EXPECT_EQ(out.str(), "") << "buffered until Flush";
  writer.Flush();
  writer.Add({"333", "order-3", "{\"x\":1}"}, "{}");
  writer.Add({"4444", "order-4", "{}"}, "{}");
  writer.Finish();
  const std::vector<std::vector<size_t>> starts = ColumnStarts(out.str());
  ASSERT_EQ(starts.size(), 5u) << out.str();
  for (const auto& line : starts) EXPECT_EQ(line, starts[0]) << out.str();
}

TEST(RecordWriterTest, StreamingTableWithoutRowsPrintsTheHeaderOnFlush) {
  std::ostringstream out;
  RecordWriter writer(out, OutputFormat::kTable, {"POS", "STREAM"},
                      /*streaming=*/true);
  writer.Flush();
  EXPECT_EQ(out.str().substr(0, 3), "POS");
  writer.Finish();
}

}  // namespace
}  // namespace eventstore::tools
