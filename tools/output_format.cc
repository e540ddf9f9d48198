#include "tools/output_format.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace eventstore::tools {
namespace {

// Rows a streaming table holds before its first Flush, at most.
constexpr size_t kMaxBufferedStreamingRows = 1000;

// The length of the UTF-8 sequence starting at s[i], or 0 when it is not
// valid UTF-8.
size_t Utf8Length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  size_t n;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  // Overlong three-byte forms and surrogates, overlong / too large four.
  if (n == 3 && c == 0xe0 && byte(i + 1) < 0xa0) return 0;
  if (n == 3 && c == 0xed && byte(i + 1) >= 0xa0) return 0;
  if (n == 4 && c == 0xf0 && byte(i + 1) < 0x90) return 0;
  if (n == 4 && c == 0xf4 && byte(i + 1) >= 0x90) return 0;
  return n;
}

const char* FormatName(OutputFormat format) {
  switch (format) {
    case OutputFormat::kTable:
      return "table";
    case OutputFormat::kJson:
      return "json";
    case OutputFormat::kJsonl:
      return "jsonl";
  }
  return "table";
}

}  // namespace

CLI::Option* AddFormatOption(CLI::App& cmd, OutputFormat& format) {
  return cmd
      .add_option_function<std::string>(
          "--format",
          [&format](const std::string& name) {
            if (name == "json") {
              format = OutputFormat::kJson;
            } else if (name == "jsonl") {
              format = OutputFormat::kJsonl;
            } else {
              format = OutputFormat::kTable;
            }
          },
          "Output: table (aligned columns), json (one array) or jsonl (one "
          "object per line)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"table", "json", "jsonl"}))
      ->default_str(FormatName(format));
}

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  out.reserve(s.size() + 2);
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const size_t n = Utf8Length(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0xf]);
        } else {
          out.push_back(c);
        }
    }
    ++i;
  }
  out += "\"";
  return out;
}

std::string TimeText(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string DurationText(absl::Duration d) {
  if (d == absl::ZeroDuration()) return "0s";
  if (d >= absl::Hours(24)) {
    const int64_t hours = absl::ToInt64Hours(d);
    return absl::StrCat(hours / 24, "d", hours % 24, "h");
  }
  const absl::Duration unit =
      d >= absl::Minutes(1) ? absl::Seconds(1) : absl::Milliseconds(1);
  const absl::Duration shown = absl::Trunc(d, unit);
  // Under a millisecond: "0s", not absl's "0".
  return shown == absl::ZeroDuration() ? "0s" : absl::FormatDuration(shown);
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", value, kUnits[unit]);
  return text;
}

std::string Grouped(int64_t n) {
  const uint64_t magnitude =
      n < 0 ? uint64_t{0} - static_cast<uint64_t>(n) : static_cast<uint64_t>(n);
  const std::string digits = absl::StrCat(magnitude);
  std::string out = n < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string CountOf(int64_t n, std::string_view singular,
                    std::string_view plural) {
  std::string noun(n == 1 || plural.empty() ? singular : plural);
  if (n != 1 && plural.empty()) noun += "s";
  return absl::StrCat(Grouped(n), " ", noun);
}

void JsonObject::Key(std::string_view key) {
  if (!body_.empty()) body_ += ",";
  body_ += JsonQuote(key);
  body_ += ":";
}

JsonObject& JsonObject::Str(std::string_view key, std::string_view value) {
  Key(key);
  body_ += JsonQuote(value);
  return *this;
}

JsonObject& JsonObject::Int(std::string_view key, int64_t value) {
  Key(key);
  absl::StrAppend(&body_, value);
  return *this;
}

JsonObject& JsonObject::Bool(std::string_view key, bool value) {
  Key(key);
  body_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::Time(std::string_view key, absl::Time value) {
  if (value == absl::InfinitePast() || value == absl::InfiniteFuture()) {
    return Raw(key, "null");
  }
  return Str(key, TimeText(value));
}

JsonObject& JsonObject::Raw(std::string_view key, std::string_view json) {
  Key(key);
  body_.append(json.data(), json.size());
  return *this;
}

RecordWriter::RecordWriter(std::ostream& out, OutputFormat format,
                           std::vector<std::string> columns, bool streaming)
    : out_(out),
      // An array cannot be closed while following: one object per line.
      format_(streaming && format == OutputFormat::kJson ? OutputFormat::kJsonl
                                                         : format),
      columns_(std::move(columns)),
      streaming_(streaming) {}

void RecordWriter::SetMinWidths(std::vector<size_t> widths) {
  widths_ = std::move(widths);
}

void RecordWriter::ComputeWidths() {
  widths_.resize(columns_.size(), 0);
  for (size_t i = 0; i < columns_.size(); ++i) {
    widths_[i] = std::max(widths_[i], columns_[i].size());
  }
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size() && i < widths_.size(); ++i) {
      widths_[i] = std::max(widths_[i], row[i].size());
    }
  }
}

void RecordWriter::PrintRow(const std::vector<std::string>& cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size()) {
      const size_t width = i < widths_.size() ? widths_[i] : 0;
      if (cells[i].size() < width) line.append(width - cells[i].size(), ' ');
      line += "  ";
    }
  }
  out_ << line << "\n";
}

void RecordWriter::Add(std::vector<std::string> cells,
                       const std::string& json) {
  ++count_;
  switch (format_) {
    case OutputFormat::kJsonl:
      out_ << json << "\n";
      if (streaming_) out_.flush();
      return;
    case OutputFormat::kJson:
      out_ << (count_ == 1 ? "[\n  " : ",\n  ") << json;
      return;
    case OutputFormat::kTable:
      if (!streaming_ || !flushed_) {
        rows_.push_back(std::move(cells));
        // A long catch-up is not held back (nor held in memory) for widths.
        if (streaming_ && rows_.size() >= kMaxBufferedStreamingRows) Flush();
        return;
      }
      PrintRow(cells);
      // Later rows line up with each other past a wider cell.
      for (size_t i = 0; i < cells.size() && i < widths_.size(); ++i) {
        widths_[i] = std::max(widths_[i], cells[i].size());
      }
      out_.flush();
      return;
  }
}

void RecordWriter::Flush() {
  if (format_ == OutputFormat::kTable && !flushed_) {
    ComputeWidths();
    PrintRow(columns_);
    for (const auto& row : rows_) PrintRow(row);
    rows_.clear();
  }
  flushed_ = true;
  out_.flush();
}

void RecordWriter::Finish() {
  switch (format_) {
    case OutputFormat::kJsonl:
      break;
    case OutputFormat::kJson:
      out_ << (count_ == 0 ? "[]\n" : "\n]\n");
      break;
    case OutputFormat::kTable:
      if (!flushed_) Flush();
      break;
  }
  out_.flush();
}

std::string Cell(std::string_view s, size_t max) {
  std::string out(s);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (out.size() > max && max > 3) {
    size_t cut = max - 3;
    // Do not cut a UTF-8 sequence in half.
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) {
      --cut;
    }
    out = out.substr(0, cut) + "...";
  }
  return out;
}

}  // namespace eventstore::tools
