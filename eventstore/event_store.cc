#include "eventstore/event_store.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/event_importer.h"
#include "eventstore/internal/read_pages.h"
#include "eventstore/store_inspector.h"
#include "eventstore/subject_key_store.h"

namespace eventstore {

absl::Status EventStore::ReadStreamPages(std::string_view stream,
                                         const ReadStreamOptions& options,
                                         int64_t page_size, PageVisitor page) {
  if (page_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: ", page_size, " is not 1 or more"));
  }
  absl::StatusOr<std::vector<RecordedEvent>> events =
      ReadStream(stream, options);
  if (!events.ok()) return events.status();
  return internal::HandOverInPages(*std::move(events), page_size, page);
}

absl::Status EventStore::ReadStreamInto(std::string_view stream,
                                        const ReadStreamOptions& options,
                                        std::vector<RecordedEvent>& events) {
  absl::StatusOr<std::vector<RecordedEvent>> read = ReadStream(stream, options);
  if (!read.ok()) return read.status();
  events = *std::move(read);
  return absl::OkStatus();
}

absl::Status EventStore::ReadAllInto(const ReadAllOptions& options,
                                     ReadAllPage& page) {
  absl::StatusOr<ReadAllPage> read = ReadAll(options);
  if (!read.ok()) return read.status();
  page = *std::move(read);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<absl::StatusOr<AppendResult>>>
EventStore::AppendEach(absl::Span<const AppendRequest> requests) {
  if (requests.empty()) {
    return absl::InvalidArgumentError("AppendEach: no appends given");
  }
  std::vector<absl::StatusOr<AppendResult>> results;
  results.reserve(requests.size());
  for (const AppendRequest& request : requests) {
    absl::StatusOr<AppendResult> result = Append(request);
    if (absl::IsUnavailable(result.status())) return result.status();
    results.push_back(std::move(result));
  }
  return results;
}

absl::StatusOr<bool> EventStore::WaitForEvents(Position after,
                                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<Position> head = HeadPosition();
    if (!head.ok()) return head.status();
    if (*head > after) return true;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    absl::SleepFor(std::min(left, absl::Milliseconds(50)));
  }
}

namespace {

// The inspector of a store that has none.
class UnimplementedInspector final : public StoreInspector {
 public:
  absl::StatusOr<StoreInfo> Info(const InfoOptions&) override {
    return Unimplemented();
  }
  absl::StatusOr<Position> PositionBeforeLast(int64_t,
                                              const ReadAllFilter&) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<StreamSummary>> ListStreams(
      const ListStreamsOptions&) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<RecordedType>> RecordedTypes() override {
    return Unimplemented();
  }

 private:
  static absl::Status Unimplemented() {
    return absl::UnimplementedError("this store has no inspector");
  }
};

}  // namespace

StoreLimits EventStore::limits() const { return StoreLimits(); }

StoreInspector& EventStore::inspector() {
  static UnimplementedInspector* const inspector = new UnimplementedInspector;
  return *inspector;
}

namespace {

// The importer of a store that has none.
class UnimplementedImporter final : public EventImporter {
 public:
  absl::StatusOr<std::string> StoreId() override { return Unimplemented(); }
  absl::StatusOr<int64_t> CountEvents(Position) override {
    return Unimplemented();
  }
  absl::StatusOr<TableCounts> CountTables() override { return Unimplemented(); }
  absl::StatusOr<std::vector<DeadLetter>> ListDeadLetters(
      const DeadLetterCursor&, int) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<OutboxEntry>> ListOutbox(int64_t, int) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<Snapshot>> ListSnapshots(const SnapshotCursor&,
                                                      int) override {
    return Unimplemented();
  }
  absl::StatusOr<std::optional<MigrationState>> GetMigration(
      std::string_view) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<MigrationState>> ListMigrations() override {
    return Unimplemented();
  }
  absl::Status ImportEvents(std::string_view, std::string_view,
                            absl::Span<const RecordedEvent>) override {
    return Unimplemented();
  }
  absl::StatusOr<Position> TranslatePosition(std::string_view,
                                             Position) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<Position>> SourcePositions(
      std::string_view, absl::Span<const Position>) override {
    return Unimplemented();
  }
  absl::Status PutRecordedTypes(absl::Span<const RecordedType>) override {
    return Unimplemented();
  }
  absl::StatusOr<PutCounts> PutCheckpoints(
      absl::Span<const Checkpoint>) override {
    return Unimplemented();
  }
  absl::StatusOr<PutCounts> PutDeadLetters(
      absl::Span<const DeadLetter>) override {
    return Unimplemented();
  }
  absl::Status PutSnapshots(absl::Span<const Snapshot>) override {
    return Unimplemented();
  }
  absl::StatusOr<PutCounts> PutOutboxEntries(absl::Span<const OutboxEntry>,
                                             bool) override {
    return Unimplemented();
  }

 private:
  static absl::Status Unimplemented() {
    return absl::UnimplementedError("this store has no importer");
  }
};

}  // namespace

EventImporter& EventStore::importer() {
  static UnimplementedImporter* const importer = new UnimplementedImporter;
  return *importer;
}

namespace {

absl::Status LifecycleUnimplemented(std::string_view what) {
  return absl::UnimplementedError(
      absl::StrCat(std::string(what), ": this store has no stream lifecycle"));
}

// The key table of a store that has none.
class UnimplementedSubjectKeys final : public SubjectKeyStore {
 public:
  absl::StatusOr<std::optional<SubjectKeyRecord>> Find(
      std::string_view) override {
    return Unimplemented();
  }
  absl::StatusOr<SubjectKeyRecord> Insert(std::string_view, std::string_view,
                                          std::string_view) override {
    return Unimplemented();
  }
  absl::Status AddStream(std::string_view, std::string_view) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<std::string>> Streams(std::string_view) override {
    return Unimplemented();
  }
  absl::StatusOr<std::optional<std::string>> SubjectOfStream(
      std::string_view) override {
    return Unimplemented();
  }
  absl::StatusOr<ForgetSubjectResult> Forget(std::string_view) override {
    return Unimplemented();
  }
  absl::StatusOr<std::vector<SubjectKeyRecord>> List(std::string_view,
                                                     int64_t) override {
    return Unimplemented();
  }
  absl::StatusOr<bool> Rewrap(std::string_view, std::string_view,
                              std::string_view, std::string_view) override {
    return Unimplemented();
  }
  absl::StatusOr<int64_t> Put(const std::vector<SubjectKeyRecord>&) override {
    return Unimplemented();
  }

 private:
  static absl::Status Unimplemented() {
    return absl::UnimplementedError("this store has no subject key table");
  }
};

}  // namespace

absl::StatusOr<DeleteResult> EventStore::DeleteStream(std::string_view,
                                                      ExpectedVersion,
                                                      DeleteMode) {
  return LifecycleUnimplemented("DeleteStream");
}

absl::Status EventStore::SetStreamMetadata(std::string_view,
                                           const StreamMetadata&) {
  return LifecycleUnimplemented("SetStreamMetadata");
}

absl::StatusOr<StreamInfo> EventStore::GetStreamInfo(std::string_view) {
  return LifecycleUnimplemented("GetStreamInfo");
}

absl::StatusOr<ScavengeResult> EventStore::Scavenge(const ScavengeOptions&) {
  return LifecycleUnimplemented("Scavenge");
}

absl::StatusOr<std::vector<StreamRowRecord>> EventImporter::ListStreamRows(
    std::string_view, int) {
  return LifecycleUnimplemented("ListStreamRows");
}

absl::StatusOr<PutCounts> EventImporter::PutStreamRows(
    absl::Span<const StreamRowRecord>) {
  return LifecycleUnimplemented("PutStreamRows");
}

SubjectKeyStore& EventStore::subject_keys() {
  static UnimplementedSubjectKeys* const keys = new UnimplementedSubjectKeys;
  return *keys;
}

}  // namespace eventstore
