// Running the real `eventstore` binary from tests, and filling stores to
// copy.
//
//   CliResult r = RunCli({"migrate", "--from", a, "--to", b});
//   EXPECT_EQ(r.exit_code, 0) << r.err;
//
// EVENTSTORE_CLI (a compile definition) is the binary's path.

#ifndef EVENTSTORE_TESTS_TOOLS_CLI_RUNNER_H_
#define EVENTSTORE_TESTS_TOOLS_CLI_RUNNER_H_

#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {

struct CliResult {
  int exit_code = -1;  // -signal when killed
  std::string out;
  std::string err;
};

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts the binary with `args`, stdout and stderr going to `out_path` and
// `err_path`, stdin from /dev/null; returns its pid.
inline pid_t StartCli(const std::vector<std::string>& args,
                      const std::string& out_path,
                      const std::string& err_path) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv;
    std::string binary = EVENTSTORE_CLI;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

inline int WaitCli(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1000;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

// Runs the binary to completion in `dir` (for the output files).
inline CliResult RunCli(const std::vector<std::string>& args,
                        const std::string& dir) {
  const std::string out = dir + "/cli.out";
  const std::string err = dir + "/cli.err";
  CliResult r;
  r.exit_code = WaitCli(StartCli(args, out, err));
  r.out = ReadWholeFile(out);
  r.err = ReadWholeFile(err);
  return r;
}

// Runs a shell command line (for pipes); its exit code.
inline int RunShell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Appends `events_per_stream` events to each of `streams` streams
// "order-<i>", in rounds of `per_append` events per stream so that the
// streams interleave in the global log. Events carry metadata.
inline void FillStore(EventStore& store, int streams, int events_per_stream,
                      int per_append) {
  for (int done = 0; done < events_per_stream; done += per_append) {
    for (int s = 0; s < streams; ++s) {
      std::vector<EventData> batch;
      for (int i = done; i < done + per_append && i < events_per_stream; ++i) {
        test::v1::OrderPlaced placed;
        placed.set_order_id(absl::StrCat("order-", s, "/", i));
        eventstore::v1::EventMetadata meta;
        meta.set_correlation_id(absl::StrCat("c", s, "-", i));
        meta.set_tenant_id(s % 3 == 0 ? "acme" : "");
        (*meta.mutable_properties())["i"] = absl::StrCat(i);
        batch.push_back(EventData::From(placed, meta));
      }
      ASSERT_OK(store.Append(absl::StrCat("order-", s), ExpectedVersion::Any(),
                             batch));
    }
  }
}

// A checkpoint at the `n`th event (1-based) of the log, a dead letter, an
// outbox message and a snapshot.
inline void AddOtherRows(EventStore& store, int n) {
  ReadAllOptions options;
  options.max_count = n;
  absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
  ASSERT_OK(page);
  ASSERT_EQ(static_cast<int>(page->events.size()), n);
  const RecordedEvent& at = page->events.back();
  ASSERT_OK(store.checkpoints().Save("totals", at.position, n));
  ASSERT_OK(store.dead_letters().Add("totals", at, "handler failed"));
  OutboxMessage m;
  m.destination = "billing";
  m.key = at.stream;
  m.payload = "invoice";
  m.headers["h"] = "v";
  ASSERT_OK(store.outbox().Enqueue({&m, 1}));
  Snapshot s;
  s.stream = at.stream;
  s.version = at.version;
  s.type = "eventstore.test.v1.OrderState";
  s.state = "state";
  s.schema_version = 1;
  s.taken_at = absl::FromUnixMicros(1700000000000000);
  ASSERT_OK(store.snapshots().Save(s));
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_TOOLS_CLI_RUNNER_H_
