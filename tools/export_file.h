// Export files (`eventstore export` / `eventstore import`): a store written
// as length-delimited eventstore.v1.ExportRecord messages
// (proto/eventstore/v1/export.proto) — a header with the format version,
// the source and the counts, the records, and a trailer with the counts
// again and a CRC-64 of everything before it.
//
//   // Export:
//   ES_ASSIGN_OR_RETURN(v1::ExportCounts counts,
//                       ExportStore(*store, MaskUrl(url), out));
//   // Import: check the whole file first, then copy it.
//   ES_ASSIGN_OR_RETURN(v1::ExportHeader header, VerifyExportFile(path));
//   ES_ASSIGN_OR_RETURN(auto source, ExportFileSource::Open(path, path));
//   Migrator(options, std::cerr).Run(*source, *target, MaskUrl(to));

#ifndef EVENTSTORE_TOOLS_EXPORT_FILE_H_
#define EVENTSTORE_TOOLS_EXPORT_FILE_H_

#include <cstdint>
#include <fstream>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eventstore/event_store.h"
#include "eventstore/v1/export.pb.h"
#include "tools/crc64.h"
#include "tools/migrator.h"
#include "tools/progress_reporter.h"

namespace eventstore::tools {

// The newest layout this code writes and reads (export.proto): version 2
// has stream rows and subject keys, and is written only when the store has
// some; otherwise the file is version 1, readable by older tools.
inline constexpr uint32_t kExportFormatVersion = 2;
inline constexpr uint32_t kExportFormatVersionPlain = 1;

// Writes the whole of `store` to `out`: the events up to the head when the
// export starts (as ReadAll returns them: deleted and retention-hidden
// events left out, deletion markers and encrypted payloads as stored), the
// streams table's rows, the key table's forgotten subjects (every record,
// wrapped keys included, when `with_keys`), the recorded types,
// checkpoints, dead letters, outbox entries and snapshots. `source` (no
// password) goes into the header. kFailedPrecondition when the store
// changed while it was written (the file's counts would not match: export
// again). Returns what was written. `progress`, when given, is told the
// number of events to write and hears of those written.
absl::StatusOr<v1::ExportCounts> ExportStore(
    EventStore& store, const std::string& source, std::ostream& out,
    ProgressReporter* progress = nullptr, bool with_keys = false);

// Reads an export file record by record, keeping the checksum of what it
// read. `name` is for messages.
class ExportReader {
 public:
  ExportReader(std::istream& in, std::string name)
      : in_(in), name_(std::move(name)) {}

  // The next record; nullopt at the end of the file (after a whole record).
  // kDataLoss naming the file when a record is cut short or does not parse.
  absl::StatusOr<std::optional<v1::ExportRecord>> Next();

  // CRC-64 of the bytes before the last record's length prefix.
  uint64_t checksum_before_last() const { return before_last_; }
  // Records read so far.
  int64_t records() const { return records_; }

 private:
  std::istream& in_;
  const std::string name_;
  Crc64 crc_;
  uint64_t before_last_ = 0;
  int64_t records_ = 0;
  int64_t offset_ = 0;
};

// Reads the whole file at `path` and checks it: a header of a known format
// version first, records in the documented order, a trailer whose counts
// match the header's and the records', a matching checksum, nothing after
// the trailer. kDataLoss (truncated, corrupt) or kFailedPrecondition (a
// newer format, not an export file) naming `name`; the header when the file
// is whole.
absl::StatusOr<v1::ExportHeader> VerifyExportFile(const std::string& path,
                                                  const std::string& name);

// A verified export file as a migration source.
class ExportFileSource final : public MigrationSource {
 public:
  // Opens `path` and reads its header. `name` is the description.
  static absl::StatusOr<std::unique_ptr<ExportFileSource>> Open(
      const std::string& path, const std::string& name);

  const std::string& description() const override { return name_; }
  absl::StatusOr<std::string> StoreId() override {
    return header_.source_store_id();
  }
  absl::StatusOr<std::optional<int64_t>> EventsAfter(Position after) override;
  absl::StatusOr<std::vector<RecordedEvent>> NextEvents(Position after,
                                                        int max) override;
  absl::Status StreamRows(
      const std::function<absl::Status(absl::Span<const StreamRowRecord>)>&
          page) override;
  absl::Status SubjectKeys(
      bool with_keys,
      const std::function<absl::Status(const std::vector<SubjectKeyRecord>&)>&
          page,
      int64_t& live_left_out) override;
  absl::StatusOr<std::vector<RecordedType>> Types() override;
  absl::StatusOr<std::vector<Checkpoint>> Checkpoints() override;
  absl::Status DeadLetters(
      const std::function<absl::Status(absl::Span<const DeadLetter>)>& page)
      override;
  absl::Status Outbox(
      const std::function<absl::Status(absl::Span<const OutboxEntry>)>& page)
      override;
  absl::Status Snapshots(
      const std::function<absl::Status(absl::Span<const Snapshot>)>& page)
      override;

 private:
  ExportFileSource(std::string name, v1::ExportHeader header);

  // The next record if it is of `kind` (consumed), else nullopt (kept).
  absl::StatusOr<std::optional<v1::ExportRecord>> Take(
      v1::ExportRecord::RecordCase kind);
  // Consumes the records of the kinds before `kind` that were left unread.
  absl::Status SkipTo(v1::ExportRecord::RecordCase kind);

  const std::string name_;
  const v1::ExportHeader header_;
  std::ifstream in_;
  std::unique_ptr<ExportReader> reader_;
  std::optional<v1::ExportRecord> pending_;
};

}  // namespace eventstore::tools

#endif  // EVENTSTORE_TOOLS_EXPORT_FILE_H_
