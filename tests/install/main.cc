// Appends one event to an in-memory store, reads it back and projects it,
// through the installed headers and libraries only. Prints "shop: ok" and
// exits 0, or prints the failure and exits 1.

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/sqlite/sqlite_event_store.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/open_event_store.h"
#include "eventstore/status_macros.h"
#include "eventstore/type_registry.h"
#include "projections/projection.h"
#include "projections/projection_runner.h"
#include "shop/v1/orders.pb.h"

namespace {

absl::Status Check(bool condition, const char* what) {
  if (condition) return absl::OkStatus();
  return absl::InternalError(what);
}

// Sums the placed orders (eventstore::projections).
class OrderTotal : public eventstore::Projection {
 public:
  std::string name() const override { return "order-total"; }
  absl::Status Handle(const eventstore::RecordedEvent& event) override {
    ES_ASSIGN_OR_RETURN(shop::v1::OrderPlaced placed,
                        event.As<shop::v1::OrderPlaced>());
    total_cents_ += placed.total_cents();
    return absl::OkStatus();
  }
  int64_t total_cents() const { return total_cents_; }

 private:
  int64_t total_cents_ = 0;
};

absl::Status Run() {
  // Through the URL front door (eventstore::eventstore), with options any
  // backend takes ...
  auto registry = std::make_shared<eventstore::TypeRegistry>();
  registry->Register<shop::v1::OrderPlaced>();
  eventstore::OpenOptions open_options;
  open_options.type_registry = registry;
  ES_ASSIGN_OR_RETURN(
      std::unique_ptr<eventstore::EventStore> store,
      eventstore::OpenEventStore("sqlite::memory:", open_options));
  shop::v1::OrderPlaced placed;
  placed.set_order_id("o-1");
  placed.set_total_cents(2500);
  std::vector<eventstore::EventData> events = {
      eventstore::EventData::From(placed)};
  ES_ASSIGN_OR_RETURN(
      eventstore::AppendResult appended,
      store->Append("order-o-1", eventstore::ExpectedVersion::NoStream(),
                    events));
  ES_RETURN_IF_ERROR(Check(appended.next_expected_version == 1, "version"));

  ES_ASSIGN_OR_RETURN(std::vector<eventstore::RecordedEvent> read,
                      store->ReadStream("order-o-1"));
  ES_RETURN_IF_ERROR(Check(read.size() == 1, "one event read back"));
  ES_ASSIGN_OR_RETURN(shop::v1::OrderPlaced back,
                      registry->Decode<shop::v1::OrderPlaced>(read[0]));
  ES_RETURN_IF_ERROR(Check(back.order_id() == "o-1", "payload"));

  absl::StatusOr<eventstore::AppendResult> retry = store->Append(
      "order-o-1", eventstore::ExpectedVersion::NoStream(), events);
  ES_RETURN_IF_ERROR(Check(retry.ok() && *retry == appended,
                           "an exact retry returns the original result"));

  // ... a projection (eventstore::projections) ...
  OrderTotal total;
  ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::ProjectionRunner> runner,
                      eventstore::ProjectionRunner::Create(*store, total));
  ES_ASSIGN_OR_RETURN(eventstore::ProjectionRunResult projected,
                      runner->RunOnce());
  ES_RETURN_IF_ERROR(Check(projected.handled == 1, "one event projected"));
  ES_RETURN_IF_ERROR(Check(total.total_cents() == 2500, "projected total"));

  // ... and the SQLite backend's own header (eventstore::sqlite).
  ES_ASSIGN_OR_RETURN(
      eventstore::SqliteOptions options,
      eventstore::SqliteOptions::FromUrl("sqlite::memory:?synchronous=normal"));
  ES_ASSIGN_OR_RETURN(std::unique_ptr<eventstore::EventStore> direct,
                      eventstore::SqliteEventStore::Open(options));
  ES_ASSIGN_OR_RETURN(int64_t version, direct->StreamVersion("order-o-1"));
  ES_RETURN_IF_ERROR(Check(version == 0, "a separate in-memory database"));
  return absl::OkStatus();
}

}  // namespace

int main() {
  absl::Status status = Run();
  if (!status.ok()) {
    std::cerr << "shop: " << status << "\n";
    return 1;
  }
  std::cout << "shop: ok\n";
  return 0;
}
