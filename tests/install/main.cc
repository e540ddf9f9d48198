// Appends one event to an in-memory store and reads it back, through the
// installed headers and libraries only. Prints "install consumer: ok" and
// exits 0, or prints the failure and exits 1.

#include <iostream>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/status_macros.h"
#include "greeting/v1/greeting.pb.h"

namespace {

absl::Status Check(bool condition, const char* what) {
  if (condition) return absl::OkStatus();
  return absl::InternalError(what);
}

absl::Status Run() {
  // Through the URL front door (eventstore::eventstore) ...
  ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::EventStore> store,
                      eventstore::OpenEventStore("sqlite::memory:"));
  greeting::v1::Greeted greeted;
  greeted.set_name("installed eventstore");
  std::vector<eventstore::EventData> events = {
      eventstore::EventData::From(greeted)};
  ES_ASSIGN_OR_RETURN(
      eventstore::AppendResult appended,
      store->Append("greeting-1", eventstore::ExpectedVersion::NoStream(),
                    events));
  ES_RETURN_IF_ERROR(Check(appended.next_expected_version == 1, "version"));

  ES_ASSIGN_OR_RETURN(std::vector<eventstore::RecordedEvent> read,
                      store->ReadStream("greeting-1"));
  ES_RETURN_IF_ERROR(Check(read.size() == 1, "one event read back"));
  ES_ASSIGN_OR_RETURN(greeting::v1::Greeted back,
                      read[0].As<greeting::v1::Greeted>());
  ES_RETURN_IF_ERROR(Check(back.name() == greeted.name(), "payload"));

  absl::StatusOr<eventstore::AppendResult> retry = store->Append(
      "greeting-1", eventstore::ExpectedVersion::NoStream(), events);
  ES_RETURN_IF_ERROR(Check(retry.ok() && *retry == appended,
                           "an exact retry returns the original result"));

  // ... and the SQLite backend's own header (eventstore::sqlite).
  ES_ASSIGN_OR_RETURN(
      eventstore::SqliteOptions options,
      eventstore::SqliteOptions::FromUrl("sqlite::memory:?synchronous=normal"));
  ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::EventStore> direct,
                      eventstore::SqliteEventStore::Open(options));
  ES_ASSIGN_OR_RETURN(int64_t version, direct->StreamVersion("greeting-1"));
  ES_RETURN_IF_ERROR(Check(version == 0, "a separate in-memory database"));
  return absl::OkStatus();
}

}  // namespace

int main() {
  absl::Status status = Run();
  if (!status.ok()) {
    std::cerr << "install consumer: " << status << "\n";
    return 1;
  }
  std::cout << "install consumer: ok\n";
  return 0;
}
