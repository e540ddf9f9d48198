// quickstart: the first program to run against eventstore.
//
// It opens a store, records the life of one order as events in a stream of
// its own, shows what an optimistic-concurrency conflict looks like and how
// to recover from it, retries an append the way a client does after a lost
// connection, then reads the stream and the global log back.
//
//   ./quickstart                      # EVENTSTORE_URL, else sqlite:events.db
//   EVENTSTORE_URL=sqlite::memory: ./quickstart
//   EVENTSTORE_URL=postgresql://user@host/db?schema=shop ./quickstart
//
// Every run uses a new order id, so running it again appends a new stream to
// the same database; the last step lists the orders of every run so far.

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "eventstore/errors.h"
#include "eventstore/event_data.h"
#include "eventstore/event_store.h"
#include "eventstore/expected_version.h"
#include "eventstore/open_event_store.h"
#include "eventstore/recorded_event.h"
#include "eventstore/status_macros.h"
#include "eventstore/uuid.h"
#include "shop/v1/orders.pb.h"

namespace {

using eventstore::AppendResult;
using eventstore::EventData;
using eventstore::EventStore;
using eventstore::ExpectedVersion;
using eventstore::RecordedEvent;

// The URL up to its query, with any user and password hidden: the query and
// the user part of a PostgreSQL URL may hold a password.
std::string WithoutSecrets(std::string url) {
  url = url.substr(0, url.find('?'));
  const size_t authority = url.find("://");
  if (authority == std::string::npos) return url;
  const size_t path = url.find('/', authority + 3);
  const size_t at = url.rfind('@', path);
  if (at == std::string::npos || at < authority) return url;
  return url.substr(0, authority + 3) + "***" + url.substr(at);
}

std::string Money(int64_t cents) {
  return absl::StrFormat("$%d.%02d", cents / 100, cents % 100);
}

EventData Placed(const std::string& order_id, const std::string& customer) {
  shop::v1::OrderPlaced placed;
  placed.set_order_id(order_id);
  placed.set_customer(customer);
  // Metadata travels beside the payload; ReadAll can filter on tenant_id.
  eventstore::v1::EventMetadata metadata;
  metadata.set_actor("web-shop");
  metadata.set_correlation_id("checkout-" + order_id);
  return EventData::From(placed, metadata);
}

EventData Item(const std::string& sku, int quantity, int64_t unit_cents) {
  shop::v1::ItemAdded item;
  item.set_sku(sku);
  item.set_quantity(quantity);
  item.set_unit_price_cents(unit_cents);
  return EventData::From(item);
}

EventData Shipped(const std::string& carrier, const std::string& tracking) {
  shop::v1::OrderShipped shipped;
  shipped.set_carrier(carrier);
  shipped.set_tracking_number(tracking);
  return EventData::From(shipped);
}

// One sentence for one recorded event of an order stream.
absl::StatusOr<std::string> Describe(const RecordedEvent& event) {
  const std::string when =
      absl::FormatTime("%H:%M:%S", event.recorded_at, absl::LocalTimeZone());
  const std::string where =
      absl::StrFormat("  version %d, position %s, at %s: ", event.version,
                      event.position.ToString(), when);
  if (event.type == shop::v1::OrderPlaced::descriptor()->full_name()) {
    ES_ASSIGN_OR_RETURN(shop::v1::OrderPlaced placed,
                        event.As<shop::v1::OrderPlaced>());
    return absl::StrFormat("%s%s placed order %s (via %s).", where,
                           placed.customer(), placed.order_id(),
                           event.metadata.actor());
  }
  if (event.type == shop::v1::ItemAdded::descriptor()->full_name()) {
    ES_ASSIGN_OR_RETURN(shop::v1::ItemAdded item,
                        event.As<shop::v1::ItemAdded>());
    return absl::StrFormat("%sadded %d x %s at %s each.", where,
                           item.quantity(), item.sku(),
                           Money(item.unit_price_cents()));
  }
  if (event.type == shop::v1::OrderShipped::descriptor()->full_name()) {
    ES_ASSIGN_OR_RETURN(shop::v1::OrderShipped shipped,
                        event.As<shop::v1::OrderShipped>());
    return absl::StrFormat("%sthe order shipped with %s, tracking number %s.",
                           where, shipped.carrier(), shipped.tracking_number());
  }
  return absl::StrFormat("%san event of type %s this program does not know.",
                         where, event.type);
}

absl::Status Run() {
  // 1. Open the store: EVENTSTORE_URL when set, else sqlite:events.db in the
  //    working directory (created, with its schema, on first use).
  const char* env = std::getenv("EVENTSTORE_URL");
  const std::string url =
      env != nullptr && env[0] != '\0' ? env : eventstore::kDefaultUrl;
  ES_ASSIGN_OR_RETURN(std::unique_ptr<EventStore> store,
                      eventstore::OpenEventStore());
  std::cout << "Opened the store at " << WithoutSecrets(url) << ".\n\n";

  // A new order id per run (the random tail of a fresh UUID), so that a
  // second run appends to a new stream instead of finding this one taken.
  const std::string order_id =
      eventstore::Uuid::Generate().ToString().substr(24);
  const std::string stream = "order-" + order_id;

  // 2. Start the stream. NoStream(): the append fails if the stream exists.
  std::vector<EventData> placed = {Placed(order_id, "Ada")};
  ES_ASSIGN_OR_RETURN(
      AppendResult r1,
      store->Append(stream, ExpectedVersion::NoStream(), placed));
  std::cout << "Ada placed order " << order_id << ": stream '" << stream
            << "' now exists at version " << r1.next_expected_version
            << " (global position " << r1.first_position << ").\n";

  // 3. Append two events at once, expecting exactly the version we know of.
  //    A batch is atomic: both events are stored, or neither.
  std::vector<EventData> items = {Item("book-ddia", 1, 4250),
                                  Item("mug-lambda", 2, 1199)};
  ES_ASSIGN_OR_RETURN(
      AppendResult r2,
      store->Append(stream, ExpectedVersion::Exactly(r1.next_expected_version),
                    items));
  std::cout << "Two items were added in one atomic append: the stream is at "
               "version "
            << r2.next_expected_version << " (positions " << r2.first_position
            << " to " << r2.last_position << ").\n\n";

  // 4. A conflict, on purpose. A second clerk loaded the order when it was
  //    at version 1 and now adds an item. The stream has moved on, so the
  //    store refuses the append with kAborted instead of letting the clerk
  //    decide on stale state. The status says what the version actually is.
  std::vector<EventData> late = {Item("pen-blue", 3, 250)};
  absl::StatusOr<AppendResult> stale = store->Append(
      stream, ExpectedVersion::Exactly(r1.next_expected_version), late);
  if (stale.ok()) {
    return absl::InternalError("the stale append was expected to fail");
  }
  // GetWrongExpectedVersion() reads the details the kAborted status carries;
  // it is nullopt for any other error (IsWrongExpectedVersion() is the
  // yes/no form of the same test).
  std::optional<eventstore::WrongExpectedVersionInfo> conflict =
      eventstore::GetWrongExpectedVersion(stale.status());
  if (!conflict.has_value()) return stale.status();  // a real error
  std::cout << "A second clerk tried to add pens expecting version "
            << conflict->expected << ", and the store refused with "
            << absl::StatusCodeToString(stale.status().code()) << ":\n  "
            << stale.status().message() << "\n"
            << "The stream is actually at version " << conflict->actual
            << ". The clerk re-reads the order, sees the new items, and "
               "retries at that version.\n";
  ES_ASSIGN_OR_RETURN(
      AppendResult r3,
      store->Append(stream, ExpectedVersion::Exactly(conflict->actual), late));
  std::cout << "The retry succeeded: the stream is at version "
            << r3.next_expected_version << ".\n\n";

  // 5. Ship, then retry the same append as a client would after a lost
  //    connection. EventData::From() gave the event its id, so the store
  //    recognises the retry: it returns the original result and writes
  //    nothing, even though the expected version no longer holds.
  std::vector<EventData> shipped = {Shipped("DHL", "JD0146000033" + order_id)};
  ES_ASSIGN_OR_RETURN(
      AppendResult r4,
      store->Append(stream, ExpectedVersion::Exactly(r3.next_expected_version),
                    shipped));
  ES_ASSIGN_OR_RETURN(
      AppendResult retry,
      store->Append(stream, ExpectedVersion::Exactly(r3.next_expected_version),
                    shipped));
  std::cout << "The order shipped (version " << r4.next_expected_version
            << "). Sending that append again with the same event id "
            << (retry == r4 ? "returned the original result"
                            : "returned a DIFFERENT result (unexpected)")
            << " and stored nothing twice.\n\n";

  // 6. Read the stream back, in version order, decoding each payload.
  ES_ASSIGN_OR_RETURN(std::vector<RecordedEvent> events,
                      store->ReadStream(stream));
  std::cout << "Reading stream '" << stream << "' back gives " << events.size()
            << " events:\n";
  int64_t total_cents = 0;
  for (const RecordedEvent& event : events) {
    ES_ASSIGN_OR_RETURN(std::string sentence, Describe(event));
    std::cout << sentence << "\n";
    if (event.type == shop::v1::ItemAdded::descriptor()->full_name()) {
      ES_ASSIGN_OR_RETURN(shop::v1::ItemAdded item,
                          event.As<shop::v1::ItemAdded>());
      total_cents += item.quantity() * item.unit_price_cents();
    }
  }
  std::cout << "The order totals " << Money(total_cents) << ".\n\n";

  // 7. Read the global log: every stream, in commit order, one page at a
  //    time. The filter keeps only OrderShipped events of "order-" streams,
  //    so this lists the shipments of every run against this database.
  eventstore::ReadAllOptions options;
  options.max_count = 100;
  options.filter.stream_prefix = "order-";
  options.filter.event_types = {
      shop::v1::OrderShipped::descriptor()->full_name()};
  std::vector<RecordedEvent> shipments;
  while (true) {
    ES_ASSIGN_OR_RETURN(eventstore::ReadAllPage page, store->ReadAll(options));
    for (RecordedEvent& event : page.events) {
      shipments.push_back(std::move(event));
    }
    if (page.end_of_log) break;
    options.from_position = page.next_position;  // resume after this page
  }
  std::cout << "The global log holds " << shipments.size()
            << " shipped order(s) in this database";
  constexpr size_t kShown = 3;
  if (shipments.size() > kShown) std::cout << "; the latest " << kShown;
  std::cout << ":\n";
  for (size_t i = shipments.size() > kShown ? shipments.size() - kShown : 0;
       i < shipments.size(); ++i) {
    const RecordedEvent& event = shipments[i];
    ES_ASSIGN_OR_RETURN(shop::v1::OrderShipped s,
                        event.As<shop::v1::OrderShipped>());
    std::cout << "  " << event.stream << " shipped with " << s.carrier()
              << " (position " << event.position << ")"
              << (event.stream == stream ? ", the one from this run" : "")
              << ".\n";
  }
  return absl::OkStatus();
}

}  // namespace

int main() {
  absl::Status status = Run();
  if (!status.ok()) {
    std::cerr << "quickstart: " << status << "\n";
    return 1;
  }
  return 0;
}
