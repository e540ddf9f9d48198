#include "tools/progress_reporter.h"

#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace eventstore::tools {
namespace {

std::string Clock(absl::Duration d) {
  const int64_t s = std::max<int64_t>(0, absl::ToInt64Seconds(d));
  if (s >= 3600) {
    return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  }
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

}  // namespace

ProgressReporter::ProgressReporter(std::ostream& out, std::string command,
                                   bool quiet, std::optional<bool> bar,
                                   absl::Duration interval,
                                   std::optional<int64_t> total)
    : out_(out),
      quiet_(quiet),
      bar_(bar.value_or(isatty(STDERR_FILENO) == 1)),
      interval_(bar_ ? absl::Milliseconds(100) : interval),
      command_(std::move(command)),
      total_(total),
      start_(absl::Now()),
      last_(start_) {}

void ProgressReporter::Update(int64_t done) {
  if (quiet_) return;
  const absl::Time now = absl::Now();
  if (now - last_ < interval_) return;
  last_ = now;
  Print(done, now);
}

void ProgressReporter::Finish(int64_t done) {
  if (quiet_ || !bar_) return;
  Print(done, absl::Now());
  out_ << "\n" << std::flush;
}

void ProgressReporter::Print(int64_t done, absl::Time now) {
  const double seconds = absl::ToDoubleSeconds(now - start_);
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
  std::string eta;
  double fraction = -1;
  if (total_.has_value() && *total_ > 0) {
    fraction =
        std::min(1.0, static_cast<double>(done) / static_cast<double>(*total_));
    if (rate > 0) {
      eta = Clock(absl::Seconds(static_cast<double>(*total_ - done) / rate));
    }
  }
  const std::string count =
      total_.has_value()
          ? absl::StrCat(Grouped(done), "/", Grouped(*total_), " events")
          : absl::StrCat(Grouped(done), " events");
  const std::string speed =
      absl::StrCat(Grouped(static_cast<int64_t>(rate)), " events/s");
  if (bar_) {
    constexpr int kWidth = 30;
    const int filled =
        fraction < 0 ? 0 : static_cast<int>(fraction * kWidth + 0.5);
    out_ << "\r[" << std::string(filled, '#')
         << std::string(kWidth - filled, '.') << "] "
         << (fraction < 0
                 ? std::string("  ?%")
                 : absl::StrFormat("%3d%%", static_cast<int>(fraction * 100)))
         << "  " << count << "  " << speed
         << (eta.empty() ? "" : absl::StrCat("  ETA ", eta)) << "\x1b[K"
         << std::flush;
  } else {
    out_ << "eventstore " << command_ << ": " << count;
    if (fraction >= 0) {
      out_ << " (" << static_cast<int>(fraction * 100) << "%)";
    }
    out_ << ", " << speed;
    if (!eta.empty()) out_ << ", about " << eta << " left";
    out_ << std::endl;
  }
}

}  // namespace eventstore::tools
