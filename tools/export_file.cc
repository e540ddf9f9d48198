#include "tools/export_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "eventstore/internal/record_status.h"
#include "eventstore/status_macros.h"
#include "eventstore/store_inspector.h"

namespace eventstore::tools {
namespace {

// Why `name` could not be opened, from the `error` (errno) open left.
absl::Status CannotOpen(const std::string& name, int error) {
  const std::string message =
      absl::StrCat("cannot open '", name, "': ", std::strerror(error));
  if (error == ENOENT) return absl::NotFoundError(message);
  if (error == EACCES || error == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  return absl::UnavailableError(message);
}

// A record longer than this is taken for corruption, not allocated.
constexpr uint64_t kMaxRecordBytes = uint64_t{1} << 30;
constexpr int kPageSize = 500;

using Case = v1::ExportRecord::RecordCase;

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t m) { return absl::FromUnixMicros(m); }

void SetPosition(Position p, v1::ExportPosition* out) {
  out->set_commit(p.commit());
  out->set_prepare(p.prepare());
}
Position GetPosition(const v1::ExportPosition& p) {
  return Position::FromParts(p.commit(), p.prepare());
}

// The order of record kinds in a file.
int Rank(Case c) {
  switch (c) {
    case v1::ExportRecord::kHeader:
      return 0;
    case v1::ExportRecord::kEvent:
      return 1;
    case v1::ExportRecord::kStreamRow:
      return 2;
    case v1::ExportRecord::kSubjectKey:
      return 3;
    case v1::ExportRecord::kType:
      return 4;
    case v1::ExportRecord::kCheckpoint:
      return 5;
    case v1::ExportRecord::kDeadLetter:
      return 6;
    case v1::ExportRecord::kOutboxEntry:
      return 7;
    case v1::ExportRecord::kSnapshot:
      return 8;
    case v1::ExportRecord::kTrailer:
      return 9;
    case v1::ExportRecord::RECORD_NOT_SET:
      break;
  }
  return -1;
}

void Count(Case c, v1::ExportCounts& counts) {
  switch (c) {
    case v1::ExportRecord::kEvent:
      counts.set_events(counts.events() + 1);
      break;
    case v1::ExportRecord::kType:
      counts.set_types(counts.types() + 1);
      break;
    case v1::ExportRecord::kCheckpoint:
      counts.set_checkpoints(counts.checkpoints() + 1);
      break;
    case v1::ExportRecord::kDeadLetter:
      counts.set_dead_letters(counts.dead_letters() + 1);
      break;
    case v1::ExportRecord::kOutboxEntry:
      counts.set_outbox_entries(counts.outbox_entries() + 1);
      break;
    case v1::ExportRecord::kSnapshot:
      counts.set_snapshots(counts.snapshots() + 1);
      break;
    case v1::ExportRecord::kStreamRow:
      counts.set_stream_rows(counts.stream_rows() + 1);
      break;
    case v1::ExportRecord::kSubjectKey:
      counts.set_subject_keys(counts.subject_keys() + 1);
      break;
    default:
      break;
  }
}

bool SameCounts(const v1::ExportCounts& a, const v1::ExportCounts& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

// Whether `held` matches what `announced` says of a file of
// `format_version`: the same counts, except that from version 2 on the
// announced events are an upper bound (the rows stored; the file leaves
// out what deletions and retention hide).
bool CountsMatch(uint32_t format_version, const v1::ExportCounts& announced,
                 const v1::ExportCounts& held) {
  if (format_version < 2) return SameCounts(announced, held);
  if (held.events() > announced.events()) return false;
  v1::ExportCounts a = announced;
  a.set_events(held.events());
  return SameCounts(a, held);
}

std::string Describe(const v1::ExportCounts& c) {
  std::string out = absl::StrCat(
      c.events(), " events, ", c.types(), " types, ", c.checkpoints(),
      " checkpoints, ", c.dead_letters(), " dead letters, ", c.outbox_entries(),
      " outbox entries, ", c.snapshots(), " snapshots");
  if (c.stream_rows() != 0 || c.subject_keys() != 0) {
    absl::StrAppend(&out, ", ", c.stream_rows(), " stream rows, ",
                    c.subject_keys(), " subject keys");
  }
  return out;
}

constexpr char kLive[] = "live";
constexpr char kSoftDeleted[] = "soft-deleted";
constexpr char kHardDeleted[] = "hard-deleted";

std::optional<StreamStatus> ParseStreamStatus(const std::string& name) {
  if (name == kLive) return StreamStatus::kLive;
  if (name == kSoftDeleted) return StreamStatus::kSoftDeleted;
  if (name == kHardDeleted) return StreamStatus::kHardDeleted;
  return std::nullopt;
}

// Writes records with their length prefixes, keeping the checksum.
class ExportWriter {
 public:
  explicit ExportWriter(std::ostream& out) : out_(out) {}

  absl::Status Write(const v1::ExportRecord& record) {
    record.SerializeToString(&buffer_);
    std::string prefix;
    uint64_t n = buffer_.size();
    do {
      uint8_t byte = n & 0x7f;
      n >>= 7;
      if (n != 0) byte |= 0x80;
      prefix.push_back(static_cast<char>(byte));
    } while (n != 0);
    if (record.record_case() != v1::ExportRecord::kTrailer) {
      crc_.Update(prefix);
      crc_.Update(buffer_);
      Count(record.record_case(), counts_);
    }
    out_.write(prefix.data(), static_cast<std::streamsize>(prefix.size()));
    out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    if (!out_) return absl::UnavailableError("writing the export failed");
    return absl::OkStatus();
  }

  absl::Status Finish() {
    v1::ExportRecord trailer;
    *trailer.mutable_trailer()->mutable_counts() = counts_;
    trailer.mutable_trailer()->set_checksum(crc_.value());
    ES_RETURN_IF_ERROR(Write(trailer));
    out_.flush();
    if (!out_) return absl::UnavailableError("writing the export failed");
    return absl::OkStatus();
  }

  const v1::ExportCounts& counts() const { return counts_; }

 private:
  std::ostream& out_;
  Crc64 crc_;
  v1::ExportCounts counts_;
  std::string buffer_;
};

}  // namespace

// --- ExportStore -------------------------------------------------------------

absl::StatusOr<v1::ExportCounts> ExportStore(EventStore& store,
                                             const std::string& source,
                                             std::ostream& out,
                                             ProgressReporter* progress,
                                             bool with_keys) {
  EventImporter& importer = store.importer();
  ES_ASSIGN_OR_RETURN(Position head, store.HeadPosition());
  ES_ASSIGN_OR_RETURN(std::string store_id, importer.StoreId());
  ES_ASSIGN_OR_RETURN(int64_t events, importer.CountEvents(head));
  if (progress != nullptr) progress->SetTotal(events);
  ES_ASSIGN_OR_RETURN(EventImporter::TableCounts tables,
                      importer.CountTables());
  ES_ASSIGN_OR_RETURN(std::vector<RecordedType> types,
                      store.inspector().RecordedTypes());

  const int64_t subject_keys =
      with_keys ? tables.subject_keys : tables.forgotten_subjects;
  // Version 1 when there is nothing of version 2's to write, so that older
  // tools read the file.
  const uint32_t format_version = tables.stream_rows == 0 && subject_keys == 0
                                      ? kExportFormatVersionPlain
                                      : kExportFormatVersion;

  v1::ExportRecord record;
  v1::ExportHeader* header = record.mutable_header();
  header->set_format_version(format_version);
  header->set_with_keys(with_keys && subject_keys > 0);
  header->set_source(source);
  header->set_source_store_id(store_id);
  header->set_created_at_micros(Micros(absl::Now()));
  header->set_writer("eventstore export");
  v1::ExportCounts* counts = header->mutable_counts();
  counts->set_events(events);
  counts->set_types(static_cast<int64_t>(types.size()));
  counts->set_checkpoints(tables.checkpoints);
  counts->set_dead_letters(tables.dead_letters);
  counts->set_outbox_entries(tables.outbox);
  counts->set_snapshots(tables.snapshots);
  counts->set_stream_rows(tables.stream_rows);
  counts->set_subject_keys(subject_keys);
  const v1::ExportCounts expected = *counts;
  ExportWriter writer(out);
  ES_RETURN_IF_ERROR(writer.Write(record));

  StoreSource reader(store, source, head);
  Position from = Position::Start();
  int64_t written = 0;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::vector<RecordedEvent> page,
                        reader.NextEvents(from, 1000));
    if (page.empty()) break;
    written += static_cast<int64_t>(page.size());
    for (const RecordedEvent& e : page) {
      v1::ExportEvent* x = record.mutable_event();
      x->set_id(std::string(e.id.bytes()));
      x->set_stream(e.stream);
      x->set_version(e.version);
      x->set_type(e.type);
      x->set_payload(e.payload);
      *x->mutable_metadata() = e.metadata;
      x->set_recorded_at_micros(Micros(e.recorded_at));
      SetPosition(e.position, x->mutable_position());
      if (e.checksum.has_value()) {
        x->set_checksum(*e.checksum);
      } else {
        x->clear_checksum();
      }
      ES_RETURN_IF_ERROR(writer.Write(record));
    }
    from = page.back().position;
    if (progress != nullptr) progress->Update(written);
  }
  if (progress != nullptr) progress->Finish(written);
  ES_RETURN_IF_ERROR(reader.StreamRows(
      [&](absl::Span<const StreamRowRecord> page) -> absl::Status {
        for (const StreamRowRecord& r : page) {
          v1::ExportStreamRow* x = record.mutable_stream_row();
          x->Clear();
          x->set_stream(r.stream);
          x->set_state(std::string(StreamStatusName(r.state)));
          if (r.metadata.truncate_before.has_value()) {
            x->set_truncate_before(*r.metadata.truncate_before);
          }
          if (r.metadata.max_count.has_value()) {
            x->set_max_count(*r.metadata.max_count);
          }
          if (r.metadata.max_age.has_value()) {
            x->set_max_age_micros(
                absl::ToInt64Microseconds(*r.metadata.max_age));
          }
          x->set_version_floor(r.version_floor);
          if (r.deleted_at.has_value()) {
            x->set_deleted_at_micros(Micros(*r.deleted_at));
          }
          x->set_updated_at_micros(Micros(r.updated_at));
          ES_RETURN_IF_ERROR(writer.Write(record));
        }
        return absl::OkStatus();
      }));
  int64_t live_left_out = 0;
  ES_RETURN_IF_ERROR(reader.SubjectKeys(
      with_keys,
      [&](const std::vector<SubjectKeyRecord>& page) -> absl::Status {
        for (const SubjectKeyRecord& k : page) {
          v1::ExportSubjectKey* x = record.mutable_subject_key();
          x->Clear();
          x->set_subject(k.subject);
          x->set_wrapped_key(k.wrapped_key);
          x->set_master_key_id(k.master_key_id);
          x->set_created_at_micros(Micros(k.created_at));
          if (k.forgotten_at.has_value()) {
            x->set_forgotten_at_micros(Micros(*k.forgotten_at));
          }
          ES_RETURN_IF_ERROR(writer.Write(record));
        }
        return absl::OkStatus();
      },
      live_left_out));
  for (const RecordedType& t : types) {
    v1::ExportType* x = record.mutable_type();
    x->set_type(t.type);
    x->set_descriptor_set(t.descriptor_set);
    x->set_recorded_at_micros(Micros(t.recorded_at));
    ES_RETURN_IF_ERROR(writer.Write(record));
  }
  ES_ASSIGN_OR_RETURN(std::vector<Checkpoint> checkpoints,
                      reader.Checkpoints());
  for (const Checkpoint& c : checkpoints) {
    v1::ExportCheckpoint* x = record.mutable_checkpoint();
    x->set_projection(c.projection);
    SetPosition(c.position, x->mutable_position());
    x->set_events_processed(c.events_processed);
    x->set_updated_at_micros(Micros(c.updated_at));
    ES_RETURN_IF_ERROR(writer.Write(record));
  }
  ES_RETURN_IF_ERROR(reader.DeadLetters(
      [&](absl::Span<const DeadLetter> page) -> absl::Status {
        for (const DeadLetter& d : page) {
          v1::ExportDeadLetter* x = record.mutable_dead_letter();
          x->Clear();
          x->set_projection(d.projection);
          x->set_event_id(std::string(d.event_id.bytes()));
          x->set_stream(d.stream);
          x->set_version(d.version);
          SetPosition(d.position, x->mutable_position());
          x->set_event_type(d.event_type);
          x->set_status(internal::DeadLetterStatusName(d.status));
          x->set_error(d.error);
          x->set_failure_count(d.failure_count);
          x->set_first_failed_at_micros(Micros(d.first_failed_at));
          x->set_last_failed_at_micros(Micros(d.last_failed_at));
          x->set_resolved_by(d.resolved_by);
          if (d.resolved_at != absl::InfinitePast()) {
            x->set_resolved_at_micros(Micros(d.resolved_at));
          }
          ES_RETURN_IF_ERROR(writer.Write(record));
        }
        return absl::OkStatus();
      }));
  ES_RETURN_IF_ERROR(
      reader.Outbox([&](absl::Span<const OutboxEntry> page) -> absl::Status {
        for (const OutboxEntry& e : page) {
          v1::ExportOutboxEntry* x = record.mutable_outbox_entry();
          x->Clear();
          x->set_id(e.id);
          x->set_destination(e.message.destination);
          x->set_key(e.message.key);
          x->set_payload(e.message.payload);
          x->mutable_headers()->insert(e.message.headers.begin(),
                                       e.message.headers.end());
          x->set_status(internal::OutboxStatusName(e.status));
          x->set_created_at_micros(Micros(e.created_at));
          x->set_attempts(e.attempts);
          x->set_last_error(e.last_error);
          if (e.published_at != absl::InfinitePast()) {
            x->set_published_at_micros(Micros(e.published_at));
          }
          x->set_claimed_by(e.claimed_by);
          if (e.lease_until != absl::InfinitePast()) {
            x->set_lease_until_micros(Micros(e.lease_until));
          }
          ES_RETURN_IF_ERROR(writer.Write(record));
        }
        return absl::OkStatus();
      }));
  ES_RETURN_IF_ERROR(
      reader.Snapshots([&](absl::Span<const Snapshot> page) -> absl::Status {
        for (const Snapshot& s : page) {
          v1::ExportSnapshot* x = record.mutable_snapshot();
          x->set_stream(s.stream);
          x->set_schema_version(s.schema_version);
          x->set_version(s.version);
          x->set_type(s.type);
          x->set_state(s.state);
          x->set_taken_at_micros(Micros(s.taken_at));
          ES_RETURN_IF_ERROR(writer.Write(record));
        }
        return absl::OkStatus();
      }));
  if (!CountsMatch(format_version, expected, writer.counts())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the store changed while it was exported (counted ", Describe(expected),
        "; wrote ", Describe(writer.counts()), "); export again"));
  }
  ES_RETURN_IF_ERROR(writer.Finish());
  return writer.counts();
}

// --- ExportReader ------------------------------------------------------------

absl::StatusOr<std::optional<v1::ExportRecord>> ExportReader::Next() {
  before_last_ = crc_.value();
  std::string prefix;
  uint64_t length = 0;
  for (int shift = 0;; shift += 7) {
    const int c = in_.get();
    if (c == std::char_traits<char>::eof()) {
      if (prefix.empty()) return std::nullopt;
      return absl::DataLossError(absl::StrCat(
          "'", name_, "' is truncated: it ends inside record ", records_ + 1,
          " (at byte ", offset_ + static_cast<int64_t>(prefix.size()), ")"));
    }
    prefix.push_back(static_cast<char>(c));
    if (shift > 63) {
      return absl::DataLossError(
          absl::StrCat("'", name_, "' is corrupt: record ", records_ + 1,
                       " at byte ", offset_, " has a bad length"));
    }
    length |= static_cast<uint64_t>(c & 0x7f) << shift;
    if ((c & 0x80) == 0) break;
  }
  if (length > kMaxRecordBytes) {
    return absl::DataLossError(absl::StrCat("'", name_, "' is corrupt: record ",
                                            records_ + 1, " at byte ", offset_,
                                            " claims ", length, " bytes"));
  }
  std::string body(length, '\0');
  in_.read(body.data(), static_cast<std::streamsize>(length));
  if (static_cast<uint64_t>(in_.gcount()) != length) {
    return absl::DataLossError(
        absl::StrCat("'", name_, "' is truncated: record ", records_ + 1,
                     " at byte ", offset_, " should have ", length,
                     " bytes but the file ends after ", in_.gcount()));
  }
  v1::ExportRecord record;
  if (!record.ParseFromString(body) ||
      record.record_case() == v1::ExportRecord::RECORD_NOT_SET) {
    return absl::DataLossError(absl::StrCat("'", name_, "' is corrupt: record ",
                                            records_ + 1, " at byte ", offset_,
                                            " does not parse"));
  }
  crc_.Update(prefix);
  crc_.Update(body);
  offset_ += static_cast<int64_t>(prefix.size() + length);
  ++records_;
  return record;
}

absl::StatusOr<v1::ExportHeader> VerifyExportFile(const std::string& path,
                                                  const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return CannotOpen(name, errno);
  }
  ExportReader reader(in, name);
  ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> first, reader.Next());
  if (!first.has_value() || !first->has_header()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "'", name, "' is not an eventstore export file (",
        first.has_value() ? "it does not start with a header" : "it is empty",
        ")"));
  }
  const v1::ExportHeader header = first->header();
  if (header.format_version() < kExportFormatVersionPlain ||
      header.format_version() > kExportFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "'", name, "' has export format version ", header.format_version(),
        "; this eventstore reads versions ", kExportFormatVersionPlain, " to ",
        kExportFormatVersion));
  }
  v1::ExportCounts seen;
  int rank = 0;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> record, reader.Next());
    if (!record.has_value()) {
      return absl::DataLossError(
          absl::StrCat("'", name, "' is truncated: it ends after ",
                       reader.records(), " records without its trailer"));
    }
    const int r = Rank(record->record_case());
    const bool newer_kind =
        record->has_stream_row() || record->has_subject_key();
    if (r < rank || r == 0 ||
        (newer_kind && header.format_version() < kExportFormatVersion)) {
      return absl::DataLossError(
          absl::StrCat("'", name, "' is corrupt: record ", reader.records(),
                       " is out of order"));
    }
    rank = r;
    if (!record->has_trailer()) {
      Count(record->record_case(), seen);
      continue;
    }
    const v1::ExportTrailer& trailer = record->trailer();
    if (trailer.checksum() != reader.checksum_before_last()) {
      return absl::DataLossError(absl::StrCat(
          "'", name, "' is corrupt: its checksum does not match its content"));
    }
    if (!SameCounts(seen, trailer.counts()) ||
        !CountsMatch(header.format_version(), header.counts(), seen)) {
      return absl::DataLossError(absl::StrCat(
          "'", name, "' is inconsistent: its header announces ",
          Describe(header.counts()), " but it holds ", Describe(seen)));
    }
    if (in.peek() != std::char_traits<char>::eof()) {
      return absl::DataLossError(
          absl::StrCat("'", name, "' is corrupt: bytes follow its trailer"));
    }
    return header;
  }
}

// --- ExportFileSource
// ----------------------------------------------------------

ExportFileSource::ExportFileSource(std::string name, v1::ExportHeader header)
    : name_(std::move(name)), header_(std::move(header)) {}

absl::StatusOr<std::unique_ptr<ExportFileSource>> ExportFileSource::Open(
    const std::string& path, const std::string& name) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) {
    return CannotOpen(name, errno);
  }
  ExportReader header_reader(probe, name);
  ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> first,
                      header_reader.Next());
  if (!first.has_value() || !first->has_header()) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", name, "' is not an eventstore export file"));
  }
  std::unique_ptr<ExportFileSource> source(
      new ExportFileSource(name, first->header()));
  source->in_.open(path, std::ios::binary);
  if (!source->in_) {
    return CannotOpen(name, errno);
  }
  source->reader_ = std::make_unique<ExportReader>(source->in_, name);
  ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> skipped,
                      source->reader_->Next());
  (void)skipped;
  return source;
}

absl::StatusOr<std::optional<v1::ExportRecord>> ExportFileSource::Take(
    Case kind) {
  if (!pending_.has_value()) {
    ES_ASSIGN_OR_RETURN(pending_, reader_->Next());
    if (!pending_.has_value()) {
      return absl::DataLossError(
          absl::StrCat("'", name_, "' ended before its trailer"));
    }
  }
  if (pending_->record_case() != kind) return std::nullopt;
  std::optional<v1::ExportRecord> out = std::move(pending_);
  pending_.reset();
  return out;
}

absl::StatusOr<std::optional<int64_t>> ExportFileSource::EventsAfter(
    Position after) {
  if (after.IsStart()) {
    return std::optional<int64_t>(header_.counts().events());
  }
  return std::optional<int64_t>();
}

absl::StatusOr<std::vector<RecordedEvent>> ExportFileSource::NextEvents(
    Position after, int max) {
  std::vector<RecordedEvent> out;
  while (static_cast<int>(out.size()) < max) {
    ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> record,
                        Take(v1::ExportRecord::kEvent));
    if (!record.has_value()) break;
    const v1::ExportEvent& x = record->event();
    const Position position = GetPosition(x.position());
    if (position <= after) continue;
    absl::StatusOr<Uuid> id = Uuid::FromBytes(x.id());
    if (!id.ok()) {
      return absl::DataLossError(absl::StrCat("'", name_, "': an event of '",
                                              x.stream(), "' has a bad id"));
    }
    RecordedEvent& e = out.emplace_back();
    e.id = *id;
    e.stream = x.stream();
    e.version = x.version();
    e.type = x.type();
    e.payload = x.payload();
    e.metadata = x.metadata();
    e.recorded_at = FromMicros(x.recorded_at_micros());
    e.position = position;
    if (x.has_checksum()) e.checksum = x.checksum();
  }
  return out;
}

absl::Status ExportFileSource::SkipTo(Case kind) {
  while (true) {
    if (!pending_.has_value()) {
      ES_ASSIGN_OR_RETURN(pending_, reader_->Next());
      if (!pending_.has_value()) {
        return absl::DataLossError(
            absl::StrCat("'", name_, "' ended before its trailer"));
      }
    }
    if (Rank(pending_->record_case()) >= Rank(kind)) return absl::OkStatus();
    pending_.reset();
  }
}

absl::Status ExportFileSource::StreamRows(
    const std::function<absl::Status(absl::Span<const StreamRowRecord>)>&
        page) {
  // Events left unread (the migrator stopped early) are skipped.
  ES_RETURN_IF_ERROR(SkipTo(v1::ExportRecord::kStreamRow));
  std::vector<StreamRowRecord> rows;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> record,
                        Take(v1::ExportRecord::kStreamRow));
    if (record.has_value()) {
      const v1::ExportStreamRow& x = record->stream_row();
      std::optional<StreamStatus> state = ParseStreamStatus(x.state());
      if (!state.has_value()) {
        return absl::DataLossError(
            absl::StrCat("'", name_, "': the row of stream '", x.stream(),
                         "' has an unknown state '", x.state(), "'"));
      }
      StreamRowRecord& r = rows.emplace_back();
      r.stream = x.stream();
      r.state = *state;
      if (x.has_truncate_before()) {
        r.metadata.truncate_before = x.truncate_before();
      }
      if (x.has_max_count()) r.metadata.max_count = x.max_count();
      if (x.has_max_age_micros()) {
        r.metadata.max_age = absl::Microseconds(x.max_age_micros());
      }
      r.version_floor = x.version_floor();
      if (x.has_deleted_at_micros()) {
        r.deleted_at = FromMicros(x.deleted_at_micros());
      }
      r.updated_at = FromMicros(x.updated_at_micros());
    }
    if (!rows.empty() &&
        (!record.has_value() || static_cast<int>(rows.size()) == kPageSize)) {
      ES_RETURN_IF_ERROR(page(rows));
      rows.clear();
    }
    if (!record.has_value()) return absl::OkStatus();
  }
}

absl::Status ExportFileSource::SubjectKeys(
    bool with_keys,
    const std::function<absl::Status(const std::vector<SubjectKeyRecord>&)>&
        page,
    int64_t& live_left_out) {
  ES_RETURN_IF_ERROR(SkipTo(v1::ExportRecord::kSubjectKey));
  std::vector<SubjectKeyRecord> records;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> record,
                        Take(v1::ExportRecord::kSubjectKey));
    if (record.has_value()) {
      const v1::ExportSubjectKey& x = record->subject_key();
      if (!with_keys && !x.has_forgotten_at_micros()) {
        ++live_left_out;
      } else {
        SubjectKeyRecord& k = records.emplace_back();
        k.subject = x.subject();
        k.wrapped_key = x.wrapped_key();
        k.master_key_id = x.master_key_id();
        k.created_at = FromMicros(x.created_at_micros());
        if (x.has_forgotten_at_micros()) {
          k.forgotten_at = FromMicros(x.forgotten_at_micros());
        }
      }
    }
    if (!records.empty() && (!record.has_value() ||
                             static_cast<int>(records.size()) == kPageSize)) {
      ES_RETURN_IF_ERROR(page(records));
      records.clear();
    }
    if (!record.has_value()) return absl::OkStatus();
  }
}

absl::StatusOr<std::vector<RecordedType>> ExportFileSource::Types() {
  std::vector<RecordedType> out;
  // Records left unread (the migrator stopped early) are skipped.
  ES_RETURN_IF_ERROR(SkipTo(v1::ExportRecord::kType));
  while (true) {
    ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> record,
                        Take(v1::ExportRecord::kType));
    if (!record.has_value()) return out;
    RecordedType& t = out.emplace_back();
    t.type = record->type().type();
    t.descriptor_set = record->type().descriptor_set();
    t.recorded_at = FromMicros(record->type().recorded_at_micros());
  }
}

absl::StatusOr<std::vector<Checkpoint>> ExportFileSource::Checkpoints() {
  std::vector<Checkpoint> out;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> record,
                        Take(v1::ExportRecord::kCheckpoint));
    if (!record.has_value()) return out;
    const v1::ExportCheckpoint& x = record->checkpoint();
    Checkpoint& c = out.emplace_back();
    c.projection = x.projection();
    c.position = GetPosition(x.position());
    c.events_processed = x.events_processed();
    c.updated_at = FromMicros(x.updated_at_micros());
  }
}

absl::Status ExportFileSource::DeadLetters(
    const std::function<absl::Status(absl::Span<const DeadLetter>)>& page) {
  std::vector<DeadLetter> rows;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> record,
                        Take(v1::ExportRecord::kDeadLetter));
    if (record.has_value()) {
      const v1::ExportDeadLetter& x = record->dead_letter();
      DeadLetter& d = rows.emplace_back();
      d.projection = x.projection();
      absl::StatusOr<Uuid> id = Uuid::FromBytes(x.event_id());
      if (!id.ok()) {
        return absl::DataLossError(
            absl::StrCat("'", name_, "': a dead letter of '", x.projection(),
                         "' has a bad event id"));
      }
      d.event_id = *id;
      d.stream = x.stream();
      d.version = x.version();
      d.position = GetPosition(x.position());
      d.event_type = x.event_type();
      d.status = internal::ParseDeadLetterStatus(x.status())
                     .value_or(DeadLetterStatus::kParked);
      d.error = x.error();
      d.failure_count = x.failure_count();
      d.first_failed_at = FromMicros(x.first_failed_at_micros());
      d.last_failed_at = FromMicros(x.last_failed_at_micros());
      d.resolved_by = x.resolved_by();
      if (x.has_resolved_at_micros()) {
        d.resolved_at = FromMicros(x.resolved_at_micros());
      }
    }
    if (!rows.empty() &&
        (!record.has_value() || static_cast<int>(rows.size()) == kPageSize)) {
      ES_RETURN_IF_ERROR(page(rows));
      rows.clear();
    }
    if (!record.has_value()) return absl::OkStatus();
  }
}

absl::Status ExportFileSource::Outbox(
    const std::function<absl::Status(absl::Span<const OutboxEntry>)>& page) {
  std::vector<OutboxEntry> rows;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> record,
                        Take(v1::ExportRecord::kOutboxEntry));
    if (record.has_value()) {
      const v1::ExportOutboxEntry& x = record->outbox_entry();
      OutboxEntry& e = rows.emplace_back();
      e.id = x.id();
      e.message.destination = x.destination();
      e.message.key = x.key();
      e.message.payload = x.payload();
      e.message.headers.insert(x.headers().begin(), x.headers().end());
      e.status = internal::ParseOutboxStatus(x.status())
                     .value_or(OutboxStatus::kPending);
      e.created_at = FromMicros(x.created_at_micros());
      e.attempts = x.attempts();
      e.last_error = x.last_error();
      if (x.has_published_at_micros()) {
        e.published_at = FromMicros(x.published_at_micros());
      }
      e.claimed_by = x.claimed_by();
      if (x.has_lease_until_micros()) {
        e.lease_until = FromMicros(x.lease_until_micros());
      }
    }
    if (!rows.empty() &&
        (!record.has_value() || static_cast<int>(rows.size()) == kPageSize)) {
      ES_RETURN_IF_ERROR(page(rows));
      rows.clear();
    }
    if (!record.has_value()) return absl::OkStatus();
  }
}

absl::Status ExportFileSource::Snapshots(
    const std::function<absl::Status(absl::Span<const Snapshot>)>& page) {
  std::vector<Snapshot> rows;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::optional<v1::ExportRecord> record,
                        Take(v1::ExportRecord::kSnapshot));
    if (record.has_value()) {
      const v1::ExportSnapshot& x = record->snapshot();
      Snapshot& s = rows.emplace_back();
      s.stream = x.stream();
      s.schema_version = x.schema_version();
      s.version = x.version();
      s.type = x.type();
      s.state = x.state();
      s.taken_at = FromMicros(x.taken_at_micros());
    }
    if (!rows.empty() &&
        (!record.has_value() || static_cast<int>(rows.size()) == kPageSize)) {
      ES_RETURN_IF_ERROR(page(rows));
      rows.clear();
    }
    if (!record.has_value()) return absl::OkStatus();
  }
}

}  // namespace eventstore::tools
