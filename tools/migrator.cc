#include "tools/migrator.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <map>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "eventstore/status_macros.h"
#include "eventstore/store_inspector.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "tools/crc64.h"
#include "tools/progress_reporter.h"

namespace eventstore::tools {
namespace {

// The message's bytes with map entries in key order, so that equal
// messages give equal bytes.
std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

// Per-stream digests of a whole log, read once.
absl::StatusOr<std::map<std::string, StreamDigest>> DigestLog(
    EventStore& store) {
  absl::flat_hash_map<std::string, std::pair<StreamDigest, Crc64>> streams;
  ReadAllOptions options;
  options.max_count = 2000;
  while (true) {
    ES_ASSIGN_OR_RETURN(ReadAllPage page, store.ReadAll(options));
    for (const RecordedEvent& e : page.events) {
      auto& [digest, crc] = streams[e.stream];
      ++digest.events;
      crc.Update(e.id.bytes());
      crc.UpdateInt64(static_cast<int64_t>(e.type.size()));
      crc.Update(e.type);
      crc.UpdateInt64(static_cast<int64_t>(e.payload.size()));
      crc.Update(e.payload);
      const std::string metadata = DeterministicBytes(e.metadata);
      crc.UpdateInt64(static_cast<int64_t>(metadata.size()));
      crc.Update(metadata);
      crc.UpdateInt64(e.version);
    }
    if (page.events.empty() || page.end_of_log) break;
    options.from_position = page.next_position;
  }
  std::map<std::string, StreamDigest> out;
  for (auto& [stream, entry] : streams) {
    entry.first.checksum = entry.second.value();
    out.emplace(stream, entry.first);
  }
  return out;
}

// Every row of the store's streams table by stream; none for a store
// without a stream lifecycle.
absl::StatusOr<std::map<std::string, StreamRowRecord>> AllStreamRows(
    EventStore& store) {
  std::map<std::string, StreamRowRecord> out;
  std::string after;
  constexpr int kPage = 1000;
  while (true) {
    absl::StatusOr<std::vector<StreamRowRecord>> rows =
        store.importer().ListStreamRows(after, kPage);
    if (!rows.ok() &&
        rows.status().code() == absl::StatusCode::kUnimplemented) {
      return out;
    }
    if (!rows.ok()) return rows.status();
    for (StreamRowRecord& r : *rows) {
      after = r.stream;
      out.emplace(r.stream, std::move(r));
    }
    if (rows->size() < static_cast<size_t>(kPage)) return out;
  }
}

// The subjects the store's key table holds as forgotten; none for a store
// without a key table.
absl::StatusOr<std::vector<std::string>> ForgottenSubjects(EventStore& store) {
  std::vector<std::string> out;
  std::string after;
  constexpr int kPage = 1000;
  while (true) {
    absl::StatusOr<std::vector<SubjectKeyRecord>> records =
        store.subject_keys().List(after, kPage);
    if (!records.ok() &&
        records.status().code() == absl::StatusCode::kUnimplemented) {
      return out;
    }
    if (!records.ok()) return records.status();
    for (const SubjectKeyRecord& r : *records) {
      after = r.subject;
      if (r.forgotten()) out.push_back(r.subject);
    }
    if (records->size() < static_cast<size_t>(kPage)) return out;
  }
}

std::string DescribeRow(const StreamRowRecord& r) {
  std::string out(StreamStatusName(r.state));
  if (r.metadata.truncate_before.has_value()) {
    absl::StrAppend(&out, ", truncate_before ", *r.metadata.truncate_before);
  }
  if (r.metadata.max_count.has_value()) {
    absl::StrAppend(&out, ", max_count ", *r.metadata.max_count);
  }
  if (r.metadata.max_age.has_value()) {
    absl::StrAppend(&out, ", max_age ",
                    absl::FormatDuration(*r.metadata.max_age));
  }
  absl::StrAppend(&out, ", version floor ", r.version_floor);
  if (r.deleted_at.has_value()) {
    absl::StrAppend(&out, ", deleted at ",
                    absl::FormatTime(*r.deleted_at, absl::UTCTimeZone()));
  }
  return out;
}

bool SameRow(const StreamRowRecord& a, const StreamRowRecord& b) {
  return a.state == b.state && a.metadata == b.metadata &&
         a.version_floor == b.version_floor && a.deleted_at == b.deleted_at;
}

// "1 checkpoint", "2 checkpoints" (the tool's one CountOf).
std::string Counted(int64_t n, const char* singular, const char* plural) {
  return CountOf(n, singular, plural);
}

}  // namespace

// --- CheckpointSelection -----------------------------------------------------

bool CheckpointSelection::Includes(const std::string& projection) const {
  switch (mode) {
    case Mode::kNone:
      return false;
    case Mode::kAll:
      return true;
    case Mode::kNamed:
      return std::find(names.begin(), names.end(), projection) != names.end();
  }
  return false;
}

absl::StatusOr<CheckpointSelection> ParseCheckpointSelection(
    const std::string& text) {
  CheckpointSelection selection;
  if (text == "none") return selection;
  if (text == "all") {
    selection.mode = CheckpointSelection::Mode::kAll;
    return selection;
  }
  selection.mode = CheckpointSelection::Mode::kNamed;
  for (absl::string_view name : absl::StrSplit(text, ',')) {
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--checkpoints: '", text,
                       "' has an empty projection name; give none, all or "
                       "NAME[,NAME...]"));
    }
    selection.names.emplace_back(name);
  }
  return selection;
}

// --- StoreSource -------------------------------------------------------------

absl::StatusOr<std::string> StoreSource::StoreId() {
  return store_.importer().StoreId();
}

absl::StatusOr<std::optional<int64_t>> StoreSource::EventsAfter(
    Position after) {
  Position up_to = up_to_.value_or(Position::Start());
  if (!up_to_.has_value()) {
    ES_ASSIGN_OR_RETURN(up_to, store_.HeadPosition());
  }
  ES_ASSIGN_OR_RETURN(int64_t all, store_.importer().CountEvents(up_to));
  ES_ASSIGN_OR_RETURN(int64_t before, store_.importer().CountEvents(after));
  return std::optional<int64_t>(std::max<int64_t>(0, all - before));
}

absl::StatusOr<std::vector<RecordedEvent>> StoreSource::NextEvents(
    Position after, int max) {
  ReadAllOptions options;
  options.from_position = after;
  options.max_count = max;
  ES_ASSIGN_OR_RETURN(ReadAllPage page, store_.ReadAll(options));
  if (up_to_.has_value()) {
    while (!page.events.empty() && page.events.back().position > *up_to_) {
      page.events.pop_back();
    }
  }
  // A damaged event cannot be copied faithfully: the events before it are
  // returned, then the next call stops at it, naming it.
  for (size_t i = 0; i < page.events.size(); ++i) {
    const RecordedEvent& e = page.events[i];
    if (e.damaged() && i > 0) {
      page.events.resize(i);
      break;
    }
    if (e.damaged()) {
      return absl::DataLossError(absl::StrCat(
          e.damage.message(), "; nothing from position ", e.position.ToString(),
          " on was copied (`eventstore verify` lists ",
          "every damaged event; repair or delete the row, then run again)"));
    }
  }
  return std::move(page.events);
}

absl::Status StoreSource::StreamRows(
    const std::function<absl::Status(absl::Span<const StreamRowRecord>)>&
        page) {
  std::string after;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::vector<StreamRowRecord> rows,
                        store_.importer().ListStreamRows(after, kPageSize));
    if (!rows.empty()) ES_RETURN_IF_ERROR(page(rows));
    if (rows.size() < static_cast<size_t>(kPageSize)) return absl::OkStatus();
    after = rows.back().stream;
  }
}

absl::Status StoreSource::SubjectKeys(
    bool with_keys,
    const std::function<absl::Status(const std::vector<SubjectKeyRecord>&)>&
        page,
    int64_t& live_left_out) {
  std::string after;
  while (true) {
    absl::StatusOr<std::vector<SubjectKeyRecord>> records =
        store_.subject_keys().List(after, kPageSize);
    // A store without a key table has no subject to carry.
    if (!records.ok() &&
        records.status().code() == absl::StatusCode::kUnimplemented &&
        after.empty()) {
      return absl::OkStatus();
    }
    if (!records.ok()) return records.status();
    const bool last = records->size() < static_cast<size_t>(kPageSize);
    if (!records->empty()) after = records->back().subject;
    std::vector<SubjectKeyRecord> carried;
    for (SubjectKeyRecord& r : *records) {
      if (with_keys || r.forgotten()) {
        carried.push_back(std::move(r));
      } else {
        ++live_left_out;
      }
    }
    if (!carried.empty()) ES_RETURN_IF_ERROR(page(carried));
    if (last) return absl::OkStatus();
  }
}

absl::StatusOr<std::vector<RecordedType>> StoreSource::Types() {
  return store_.inspector().RecordedTypes();
}

absl::StatusOr<std::vector<Checkpoint>> StoreSource::Checkpoints() {
  return store_.checkpoints().List();
}

absl::Status StoreSource::DeadLetters(
    const std::function<absl::Status(absl::Span<const DeadLetter>)>& page) {
  DeadLetterCursor cursor;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::vector<DeadLetter> rows,
                        store_.importer().ListDeadLetters(cursor, kPageSize));
    if (!rows.empty()) ES_RETURN_IF_ERROR(page(rows));
    if (rows.size() < static_cast<size_t>(kPageSize)) return absl::OkStatus();
    cursor.projection = rows.back().projection;
    cursor.event_id = rows.back().event_id;
  }
}

absl::Status StoreSource::Outbox(
    const std::function<absl::Status(absl::Span<const OutboxEntry>)>& page) {
  int64_t after = 0;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::vector<OutboxEntry> rows,
                        store_.importer().ListOutbox(after, kPageSize));
    if (!rows.empty()) ES_RETURN_IF_ERROR(page(rows));
    if (rows.size() < static_cast<size_t>(kPageSize)) return absl::OkStatus();
    after = rows.back().id;
  }
}

absl::Status StoreSource::Snapshots(
    const std::function<absl::Status(absl::Span<const Snapshot>)>& page) {
  SnapshotCursor cursor;
  while (true) {
    ES_ASSIGN_OR_RETURN(std::vector<Snapshot> rows,
                        store_.importer().ListSnapshots(cursor, kPageSize));
    if (!rows.empty()) ES_RETURN_IF_ERROR(page(rows));
    if (rows.size() < static_cast<size_t>(kPageSize)) return absl::OkStatus();
    cursor.stream = rows.back().stream;
    cursor.schema_version = rows.back().schema_version;
  }
}

// --- Migrator ----------------------------------------------------------------

absl::StatusOr<MigrationReport> Migrator::Run(
    MigrationSource& source, EventStore& target,
    const std::string& target_description) {
  if (options_.batch_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--batch-size: ", options_.batch_size, " is not positive"));
  }
  const absl::Time start = absl::Now();
  MigrationReport report;
  EventImporter& importer = target.importer();
  ES_ASSIGN_OR_RETURN(report.migration_id, source.StoreId());
  ES_ASSIGN_OR_RETURN(std::string target_id, importer.StoreId());
  if (report.migration_id == target_id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the source ", source.description(), " and the target ",
        target_description, " are the same store (store id ", target_id, ")"));
  }
  ES_ASSIGN_OR_RETURN(std::optional<MigrationState> state,
                      importer.GetMigration(report.migration_id));
  ES_ASSIGN_OR_RETURN(Position target_head, target.HeadPosition());
  const bool foreign = !state.has_value() && !target_head.IsStart();
  if (foreign && !options_.force) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the target ", target_description,
        " already holds events that are not from an earlier run of this "
        "migration (source store id ",
        report.migration_id,
        "); nothing was written. Use an empty target, or --force to copy "
        "into it anyway"));
  }
  Position from = Position::Start();
  if (state.has_value()) {
    report.resumed = true;
    report.events_before = state->events;
    from = state->last_source_position;
    if (!options_.quiet) {
      progress_ << "eventstore " << options_.command << ": resuming after "
                << Counted(state->events, "event", "events")
                << " copied earlier (from " << state->source << ")"
                << std::endl;
    }
  }

  ES_ASSIGN_OR_RETURN(std::optional<int64_t> total, source.EventsAfter(from));
  ProgressReporter progress(progress_, options_.command, options_.quiet,
                            options_.progress_bar, options_.progress_interval,
                            total);
  // The next batch is read while the current one is written.
  const int batch_size = options_.batch_size;
  auto fetch = [&source, batch_size](Position after) {
    return std::async(std::launch::async, [&source, after, batch_size] {
      return source.NextEvents(after, batch_size);
    });
  };
  auto next = fetch(from);
  while (true) {
    ES_ASSIGN_OR_RETURN(std::vector<RecordedEvent> events, next.get());
    if (events.empty()) break;
    from = events.back().position;
    next = fetch(from);
    ES_RETURN_IF_ERROR(importer.ImportEvents(report.migration_id,
                                             source.description(), events));
    report.events_copied += static_cast<int64_t>(events.size());
    progress.Update(report.events_copied);
  }
  progress.Finish(report.events_copied);
  ES_RETURN_IF_ERROR(CopyLifecycle(source, target, report));

  absl::StatusOr<std::vector<RecordedType>> types = source.Types();
  if (types.ok()) {
    ES_RETURN_IF_ERROR(importer.PutRecordedTypes(*types));
    report.types = static_cast<int64_t>(types->size());
  } else if (types.status().code() == absl::StatusCode::kUnimplemented) {
    progress_ << "eventstore " << options_.command
              << ": warning: the source cannot list its recorded types ("
              << types.status().message() << "); they were not copied"
              << std::endl;
  } else {
    return types.status();
  }
  if (!options_.events_only) {
    ES_RETURN_IF_ERROR(CopyRest(source, target, report.migration_id,
                                /*keep_outbox_ids=*/!foreign, report));
  }
  report.elapsed = absl::Now() - start;
  if (!options_.quiet) {
    const double seconds = absl::ToDoubleSeconds(report.elapsed);
    progress_ << "eventstore " << options_.command << ": copied "
              << Counted(report.events_copied, "event", "events");
    if (report.resumed) {
      progress_ << " (" << Grouped(report.events_before)
                << " were copied earlier)";
    }
    progress_ << ", " << Counted(report.types, "type", "types");
    if (!options_.events_only) {
      progress_ << ", "
                << Counted(report.checkpoints, "checkpoint", "checkpoints")
                << ", "
                << Counted(report.dead_letters, "dead letter", "dead letters")
                << ", "
                << Counted(report.outbox_entries, "outbox entry",
                           "outbox entries")
                << ", " << Counted(report.snapshots, "snapshot", "snapshots");
    }
    if (report.stream_rows + report.stream_rows_kept > 0) {
      progress_ << ", "
                << Counted(report.stream_rows, "stream row", "stream rows");
    }
    if (report.subject_keys > 0) {
      progress_ << ", "
                << Counted(report.subject_keys, "subject key record",
                           "subject key records")
                << " (" << Grouped(report.forgotten_subjects) << " forgotten)";
    }
    progress_ << " in " << absl::StrFormat("%.1f", seconds) << " s";
    if (seconds > 0 && report.events_copied > 0) {
      progress_ << " ("
                << Grouped(static_cast<int64_t>(
                       static_cast<double>(report.events_copied) / seconds))
                << " events/s)";
    }
    progress_ << std::endl;
  }
  PrintNotes(report);
  return report;
}

void Migrator::PrintNotes(const MigrationReport& report) {
  const std::string prefix =
      absl::StrCat("eventstore ", options_.command, ": ");
  if (!options_.quiet) {
    std::vector<std::string> kept;
    if (report.outbox_kept > 0) {
      kept.push_back(
          Counted(report.outbox_kept, "outbox entry", "outbox entries"));
    }
    if (report.checkpoints_kept > 0) {
      kept.push_back(
          Counted(report.checkpoints_kept, "checkpoint", "checkpoints"));
    }
    if (report.dead_letters_kept > 0) {
      kept.push_back(
          Counted(report.dead_letters_kept, "dead letter", "dead letters"));
    }
    if (!kept.empty()) {
      progress_ << prefix << "skipped " << absl::StrJoin(kept, ", ")
                << " that the target holds at or ahead of the source "
                   "(published or given-up messages, later checkpoints, "
                   "retrying or resolved dead letters are never moved back)"
                << std::endl;
    }
    if (!report.projections_on_target.empty()) {
      progress_
          << prefix
          << Counted(static_cast<int64_t>(report.projections_on_target.size()),
                     "checkpoint", "checkpoints")
          << " not carried: "
          << (report.projections_on_target.size() == 1 ? "projection "
                                                       : "projections ")
          << absl::StrJoin(report.projections_on_target, ", ")
          << (report.projections_on_target.size() == 1 ? " keeps" : " keep")
          << " the target's own" << std::endl;
    }
  }
  // Warnings: printed even when quiet.
  if (report.subject_keys_left_out > 0) {
    progress_ << prefix << "warning: "
              << Counted(report.subject_keys_left_out, "subject's key",
                         "subjects' keys")
              << " not copied (no --with-keys): the target cannot decrypt "
                 "their events; forgotten subjects were carried"
              << std::endl;
  }
  if (!report.unknown_projections.empty()) {
    progress_ << prefix << "warning: --checkpoints names "
              << absl::StrJoin(report.unknown_projections, ", ")
              << ", which the source has no checkpoint of" << std::endl;
  }
  if (!report.rebuild_requests_dropped.empty()) {
    progress_ << prefix << "warning: the rebuild requested for "
              << absl::StrJoin(report.rebuild_requests_dropped, ", ")
              << " was not carried (a request asks the source's runners); "
                 "request it again on the target with `eventstore "
                 "checkpoints URL rebuild PROJECTION --operator NAME`"
              << std::endl;
  }
  if (!report.rebuilt_projections.empty()) {
    progress_ << prefix << "warning: "
              << Counted(
                     static_cast<int64_t>(report.rebuilt_projections.size()),
                     "checkpoint", "checkpoints")
              << " not carried: "
              << (report.rebuilt_projections.size() == 1 ? "projection "
                                                         : "projections ")
              << absl::StrJoin(report.rebuilt_projections, ", ")
              << " will rebuild from the start on the target; use "
                 "--checkpoints=all if their read models live outside the "
                 "store's database (or were copied)"
              << std::endl;
  }
}

absl::Status Migrator::CopyLifecycle(MigrationSource& source,
                                     EventStore& target,
                                     MigrationReport& report) {
  EventImporter& importer = target.importer();
  ES_RETURN_IF_ERROR(source.StreamRows(
      [&](absl::Span<const StreamRowRecord> page) -> absl::Status {
        ES_ASSIGN_OR_RETURN(PutCounts counts, importer.PutStreamRows(page));
        report.stream_rows += counts.added + counts.updated;
        report.stream_rows_kept += counts.kept;
        return absl::OkStatus();
      }));
  return source.SubjectKeys(
      options_.with_keys,
      [&](const std::vector<SubjectKeyRecord>& page) -> absl::Status {
        // A forgotten subject must stay forgotten on the target: a target
        // without a key table is refused rather than given the events.
        ES_ASSIGN_OR_RETURN(int64_t changed, target.subject_keys().Put(page));
        (void)changed;
        report.subject_keys += static_cast<int64_t>(page.size());
        for (const SubjectKeyRecord& r : page) {
          if (r.forgotten()) ++report.forgotten_subjects;
        }
        return absl::OkStatus();
      },
      report.subject_keys_left_out);
}

absl::Status Migrator::CopyCheckpoints(MigrationSource& source,
                                       EventStore& target,
                                       const std::string& migration_id,
                                       MigrationReport& report) {
  EventImporter& importer = target.importer();
  ES_ASSIGN_OR_RETURN(std::vector<Checkpoint> checkpoints,
                      source.Checkpoints());
  for (const std::string& name : options_.checkpoints.names) {
    const bool found =
        std::any_of(checkpoints.begin(), checkpoints.end(),
                    [&](const Checkpoint& c) { return c.projection == name; });
    if (!found) report.unknown_projections.push_back(name);
  }
  std::vector<Checkpoint> carried;
  for (Checkpoint& c : checkpoints) {
    if (!options_.checkpoints.Includes(c.projection)) {
      ES_ASSIGN_OR_RETURN(std::optional<Checkpoint> own,
                          target.checkpoints().Get(c.projection));
      (own.has_value() ? report.projections_on_target
                       : report.rebuilt_projections)
          .push_back(c.projection);
      continue;
    }
    if (!c.position.IsStart()) {
      ES_ASSIGN_OR_RETURN(c.position,
                          importer.TranslatePosition(migration_id, c.position));
    }
    if (c.rebuild_requested_at.has_value()) {
      // Dropped on purpose (see migrator.h); the report says so.
      report.rebuild_requests_dropped.push_back(absl::StrCat(
          c.projection, " (requested by ", c.rebuild_requested_by, ")"));
      c.rebuild_requested_at.reset();
      c.rebuild_requested_by.clear();
    }
    carried.push_back(std::move(c));
  }
  ES_ASSIGN_OR_RETURN(PutCounts counts, importer.PutCheckpoints(carried));
  report.checkpoints = counts.added + counts.updated;
  report.checkpoints_kept = counts.kept;
  return absl::OkStatus();
}

absl::Status Migrator::CopyRest(MigrationSource& source, EventStore& target,
                                const std::string& migration_id,
                                bool keep_outbox_ids, MigrationReport& report) {
  EventImporter& importer = target.importer();
  ES_RETURN_IF_ERROR(CopyCheckpoints(source, target, migration_id, report));
  ES_RETURN_IF_ERROR(source.DeadLetters(
      [&](absl::Span<const DeadLetter> page) -> absl::Status {
        std::vector<DeadLetter> rows(page.begin(), page.end());
        for (DeadLetter& d : rows) {
          if (d.position.IsStart()) continue;
          ES_ASSIGN_OR_RETURN(
              d.position, importer.TranslatePosition(migration_id, d.position));
        }
        ES_ASSIGN_OR_RETURN(PutCounts counts, importer.PutDeadLetters(rows));
        report.dead_letters += counts.added + counts.updated;
        report.dead_letters_kept += counts.kept;
        return absl::OkStatus();
      }));
  ES_RETURN_IF_ERROR(
      source.Outbox([&](absl::Span<const OutboxEntry> page) -> absl::Status {
        ES_ASSIGN_OR_RETURN(PutCounts counts,
                            importer.PutOutboxEntries(page, keep_outbox_ids));
        report.outbox_entries += counts.added + counts.updated;
        report.outbox_kept += counts.kept;
        return absl::OkStatus();
      }));
  return source.Snapshots([&](absl::Span<const Snapshot> page) -> absl::Status {
    report.snapshots += static_cast<int64_t>(page.size());
    return importer.PutSnapshots(page);
  });
}

// --- VerifyCopy
// ----------------------------------------------------------------

absl::StatusOr<bool> VerifyCopy(EventStore& source, EventStore& target,
                                std::ostream& out, int max_reported) {
  ES_ASSIGN_OR_RETURN(auto source_streams, DigestLog(source));
  ES_ASSIGN_OR_RETURN(auto target_streams, DigestLog(target));
  int64_t differences = 0;
  auto report = [&](const std::string& line) {
    if (differences < max_reported) out << line << "\n";
    ++differences;
  };
  auto describe = [](const StreamDigest& d) {
    return absl::StrCat(d.events, " events, checksum ",
                        absl::StrFormat("%016x", d.checksum));
  };
  auto s = source_streams.begin();
  auto t = target_streams.begin();
  while (s != source_streams.end() || t != target_streams.end()) {
    if (t == target_streams.end() ||
        (s != source_streams.end() && s->first < t->first)) {
      report(absl::StrCat("stream '", s->first, "': only in the source (",
                          describe(s->second), ")"));
      ++s;
    } else if (s == source_streams.end() || t->first < s->first) {
      report(absl::StrCat("stream '", t->first, "': only in the target (",
                          describe(t->second), ")"));
      ++t;
    } else {
      if (s->second.events != t->second.events ||
          s->second.checksum != t->second.checksum) {
        report(absl::StrCat("stream '", s->first, "': source ",
                            describe(s->second), "; target ",
                            describe(t->second)));
      }
      ++s;
      ++t;
    }
  }
  // The streams table decides what reads show and which appends are
  // refused: the rows must match too.
  ES_ASSIGN_OR_RETURN(auto source_rows, AllStreamRows(source));
  ES_ASSIGN_OR_RETURN(auto target_rows, AllStreamRows(target));
  auto sr = source_rows.begin();
  auto tr = target_rows.begin();
  while (sr != source_rows.end() || tr != target_rows.end()) {
    if (tr == target_rows.end() ||
        (sr != source_rows.end() && sr->first < tr->first)) {
      report(absl::StrCat("stream '", sr->first,
                          "': stream row only in the source (",
                          DescribeRow(sr->second), ")"));
      ++sr;
    } else if (sr == source_rows.end() || tr->first < sr->first) {
      report(absl::StrCat("stream '", tr->first,
                          "': stream row only in the target (",
                          DescribeRow(tr->second), ")"));
      ++tr;
    } else {
      if (!SameRow(sr->second, tr->second)) {
        report(absl::StrCat("stream '", sr->first, "': source row ",
                            DescribeRow(sr->second), "; target row ",
                            DescribeRow(tr->second)));
      }
      ++sr;
      ++tr;
    }
  }
  // A subject forgotten in the source must be forgotten in the target.
  ES_ASSIGN_OR_RETURN(std::vector<std::string> forgotten,
                      ForgottenSubjects(source));
  if (!forgotten.empty()) {
    ES_ASSIGN_OR_RETURN(std::vector<std::string> target_forgotten,
                        ForgottenSubjects(target));
    for (const std::string& subject : forgotten) {
      if (!std::binary_search(target_forgotten.begin(), target_forgotten.end(),
                              subject)) {
        report(absl::StrCat("subject '", subject,
                            "': forgotten in the source but not in the "
                            "target"));
      }
    }
  }
  if (differences > max_reported) {
    out << "... and "
        << Counted(differences - max_reported, "more stream differs",
                   "more streams differ")
        << "\n";
  }
  int64_t events = 0;
  for (const auto& [stream, digest] : source_streams) events += digest.events;
  if (differences == 0) {
    out << "verified: "
        << Counted(static_cast<int64_t>(source_streams.size()), "stream",
                   "streams")
        << ", " << Counted(events, "event", "events");
    if (!source_rows.empty()) {
      out << ", "
          << Counted(static_cast<int64_t>(source_rows.size()), "stream row",
                     "stream rows");
    }
    if (!forgotten.empty()) {
      out << ", "
          << Counted(static_cast<int64_t>(forgotten.size()),
                     "forgotten subject", "forgotten subjects");
    }
    out << ", identical on both sides\n";
  } else {
    out << "verify: " << Grouped(differences) << " of "
        << Counted(static_cast<int64_t>(
                       std::max(source_streams.size(), target_streams.size())),
                   "stream", "streams")
        << (differences == 1 ? " differs" : " differ") << "\n";
  }
  out << std::flush;
  return differences == 0;
}

}  // namespace eventstore::tools
