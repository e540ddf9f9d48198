// ProgressReporter: the progress of a long copy (`eventstore migrate`,
// `import`, `export`) on stderr: a bar redrawn in place with the rate and
// the time left on a terminal, else a plain line now and then.
//
//   ProgressReporter progress(std::cerr, "export", quiet,
//                             /*bar=*/std::nullopt, absl::Seconds(2), total);
//   for (...) progress.Update(events_done);
//   progress.Finish(events_done);

#ifndef EVENTSTORE_TOOLS_PROGRESS_REPORTER_H_
#define EVENTSTORE_TOOLS_PROGRESS_REPORTER_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "tools/output_format.h"  // Grouped

namespace eventstore::tools {

class ProgressReporter {
 public:
  // Lines start "eventstore <command>: ". `bar`: a bar redrawn in place
  // (nullopt: when stderr is a terminal), at most every 100 ms; else a line
  // every `interval`. `total`: the events expected, for the percentage and
  // the time left (nullopt when unknown). Nothing at all when `quiet`.
  ProgressReporter(std::ostream& out, std::string command, bool quiet,
                   std::optional<bool> bar, absl::Duration interval,
                   std::optional<int64_t> total);

  // Sets the events expected, when they were not known at construction.
  void SetTotal(int64_t total) { total_ = total; }

  // `done` events so far: prints when the interval has passed.
  void Update(int64_t done);

  // Ends the bar's line (after a last redraw); nothing for plain lines.
  void Finish(int64_t done);

 private:
  void Print(int64_t done, absl::Time now);

  std::ostream& out_;
  const bool quiet_;
  const bool bar_;
  const absl::Duration interval_;
  const std::string command_;
  std::optional<int64_t> total_;
  const absl::Time start_;
  absl::Time last_;
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_PROGRESS_REPORTER_H_
