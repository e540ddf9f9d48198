// PipelinedDecryption: decrypts the pages of one read on a second thread
// while the reading thread reads the next ones, so that a long encrypted
// stream reads in about the time of the longer of the two rather than their
// sum. A read of one page decrypts it on the caller's thread, in Finish:
// no thread is started for short reads.
//
//   PipelinedDecryption pipeline(decrypt_page);
//   absl::Status read = store.ReadStreamPages(stream, options, 256,
//       [&](std::vector<RecordedEvent> page) {
//         pipeline.Add(std::move(page));
//         return absl::OkStatus();
//       });
//   absl::StatusOr<std::vector<RecordedEvent>> events =
//       pipeline.Finish(read);
//
// Add never waits for the decryption (the queue is not bounded), so that a
// decryption that needs the store (a key lookup) cannot wait on a read that
// waits on it.

#ifndef EVENTSTORE_CRYPTO_PIPELINED_DECRYPTION_H_
#define EVENTSTORE_CRYPTO_PIPELINED_DECRYPTION_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/internal/mutex.h"
#include "eventstore/recorded_event.h"

namespace eventstore::crypto::internal {

class PipelinedDecryption {
 public:
  // Decrypts one page in place; called for the pages in order, on one
  // thread at a time. Its first error ends the decryption.
  using DecryptPage = std::function<absl::Status(std::vector<RecordedEvent>&)>;

  explicit PipelinedDecryption(DecryptPage decrypt);
  PipelinedDecryption(const PipelinedDecryption&) = delete;
  PipelinedDecryption& operator=(const PipelinedDecryption&) = delete;
  // Waits for the thread, if Finish was not called.
  ~PipelinedDecryption();

  // The read's next page.
  void Add(std::vector<RecordedEvent> page);

  // Waits until every page is decrypted. The events in order; else `read`
  // when it is not OK, else the decryption's first error.
  absl::StatusOr<std::vector<RecordedEvent>> Finish(absl::Status read);

 private:
  void Run();
  void Close();

  const DecryptPage decrypt_;
  // The first page, held until a second one starts the thread.
  std::vector<RecordedEvent> first_;
  bool started_ = false;
  std::thread worker_;

  eventstore::internal::Mutex mu_;
  std::condition_variable_any added_;
  std::deque<std::vector<RecordedEvent>> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  // The worker's until it is joined.
  std::vector<RecordedEvent> out_;
  absl::Status status_;
};

}  // namespace eventstore::crypto::internal

#endif  // EVENTSTORE_CRYPTO_PIPELINED_DECRYPTION_H_
