#include "eventstore/crypto/pipelined_decryption.h"

#include <iterator>
#include <utility>

namespace eventstore::crypto::internal {

PipelinedDecryption::PipelinedDecryption(DecryptPage decrypt)
    : decrypt_(std::move(decrypt)) {}

PipelinedDecryption::~PipelinedDecryption() { Close(); }

void PipelinedDecryption::Close() {
  if (!worker_.joinable()) return;
  {
    eventstore::internal::MutexLock lock(&mu_);
    closed_ = true;
  }
  added_.notify_one();
  worker_.join();
}

void PipelinedDecryption::Add(std::vector<RecordedEvent> page) {
  if (!started_ && first_.empty()) {
    first_ = std::move(page);
    return;
  }
  {
    eventstore::internal::MutexLock lock(&mu_);
    if (!started_) queue_.push_back(std::move(first_));
    queue_.push_back(std::move(page));
  }
  if (!started_) {
    started_ = true;
    worker_ = std::thread([this] { Run(); });
  } else {
    added_.notify_one();
  }
}

void PipelinedDecryption::Run() {
  for (;;) {
    std::vector<RecordedEvent> page;
    {
      std::unique_lock<eventstore::internal::Mutex> lock(mu_);
      added_.wait(lock, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return closed_ || !queue_.empty();
      });
      if (queue_.empty()) return;  // closed, and every page taken
      page = std::move(queue_.front());
      queue_.pop_front();
    }
    if (!status_.ok()) continue;  // drains the queue
    status_ = decrypt_(page);
    if (out_.empty()) {
      out_ = std::move(page);
    } else {
      out_.insert(out_.end(), std::make_move_iterator(page.begin()),
                  std::make_move_iterator(page.end()));
    }
  }
}

absl::StatusOr<std::vector<RecordedEvent>> PipelinedDecryption::Finish(
    absl::Status read) {
  if (!started_) {
    if (!read.ok()) return read;
    if (!first_.empty()) {
      absl::Status status = decrypt_(first_);
      if (!status.ok()) return status;
    }
    return std::move(first_);
  }
  Close();
  if (!read.ok()) return read;
  if (!status_.ok()) return status_;
  return std::move(out_);
}

}  // namespace eventstore::crypto::internal
