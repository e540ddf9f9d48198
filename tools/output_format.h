// How `eventstore` commands print what they found: --format table|json|jsonl,
// a small JSON builder, and a writer for lists of records.
//
//   OutputFormat format = OutputFormat::kTable;
//   AddFormatOption(*cmd, format);
//   ...
//   RecordWriter out(std::cout, format, {"STREAM", "VERSION"});
//   for (const StreamSummary& s : streams) {
//     out.Add({s.stream, absl::StrCat(s.version)},
//             JsonObject().Str("stream", s.stream).Int("version", s.version)
//                 .Build());
//   }
//   out.Finish();
//
// table: aligned columns under a header, for people. json: one JSON array
// of objects. jsonl: one JSON object per line, for pipes (jq, grep).

#ifndef EVENTSTORE_TOOLS_OUTPUT_FORMAT_H_
#define EVENTSTORE_TOOLS_OUTPUT_FORMAT_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace eventstore::tools {

enum class OutputFormat { kTable, kJson, kJsonl };

// Adds "--format table|json|jsonl" (default: the value `format` holds).
CLI::Option* AddFormatOption(CLI::App& cmd, OutputFormat& format);

// `s` as a JSON string literal, quoted and escaped; bytes that are not
// UTF-8 become U+FFFD.
std::string JsonQuote(std::string_view s);

// A time as RFC 3339 in UTC with microseconds ("2024-05-01T12:00:00.000001Z"),
// or "-" for an infinite time (unset).
std::string TimeText(absl::Time t);

// A duration for people: "0s", "1.5s", "3m20s", "2h5m0s", "3d4h".
std::string DurationText(absl::Duration d);

// A size for people: "812 B", "12.0 KiB", "3.4 MiB", "1.2 GiB".
std::string FormatBytes(int64_t bytes);

// A count for people, digits grouped by thousands: "1,234,567". Every count
// the tool prints for people (tables, summaries, progress) goes through it;
// positions, versions and ids, which commands take back as arguments, and
// JSON numbers are never grouped.
std::string Grouped(int64_t n);

// A count with its noun: "0 streams", "1 stream", "1,204 streams".
// `plural` defaults to `singular` + "s".
std::string CountOf(int64_t n, std::string_view singular,
                    std::string_view plural = {});

// Builds one JSON object, keys in the order added.
class JsonObject {
 public:
  JsonObject& Str(std::string_view key, std::string_view value);
  JsonObject& Int(std::string_view key, int64_t value);
  JsonObject& Bool(std::string_view key, bool value);
  // A time as TimeText, or null when infinite.
  JsonObject& Time(std::string_view key, absl::Time value);
  // `json` must be a JSON value (an object, array, literal).
  JsonObject& Raw(std::string_view key, std::string_view json);
  std::string Build() const { return "{" + body_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string body_;
};

// Writes a list of records in one format. Table rows are buffered until
// Finish() so that each column is as wide as its widest cell. When
// `streaming` (tail --follow), rows are buffered the same way until Flush(),
// which prints them; each row after it is printed at once in the widths
// Flush() chose, a column widening (for the rows after) only for a cell
// wider than it (Flush() comes by itself after 1000 rows). SetMinWidths() gives
// widths that fit the usual cells, so that streamed rows line up.
class RecordWriter {
 public:
  RecordWriter(std::ostream& out, OutputFormat format,
               std::vector<std::string> columns, bool streaming = false);
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  // The least width of each column of a table (0: its header's).
  void SetMinWidths(std::vector<size_t> widths);
  // One record: its table cells (one per column) and its JSON object.
  void Add(std::vector<std::string> cells, const std::string& json);
  // Streaming: prints what is buffered (a table's header at least), and
  // from then on each record as it is added.
  void Flush();
  // Prints what is buffered (and closes the JSON array). Call once.
  void Finish();
  int64_t count() const { return count_; }

 private:
  void PrintRow(const std::vector<std::string>& cells);
  // widths_ from the header, the minimums and the buffered rows.
  void ComputeWidths();

  std::ostream& out_;
  const OutputFormat format_;
  const std::vector<std::string> columns_;
  const bool streaming_;
  std::vector<size_t> widths_;
  std::vector<std::vector<std::string>> rows_;
  int64_t count_ = 0;
  bool flushed_ = false;
};

// Cuts `s` to at most `max` bytes for a table cell, ending in "...", and
// makes control characters visible as spaces.
std::string Cell(std::string_view s, size_t max = 60);

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_OUTPUT_FORMAT_H_
