#include "bench/scale_store.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "eventstore/bench/v1/bench.pb.h"
#include "eventstore/status_macros.h"
#include "eventstore/v1/metadata.pb.h"

namespace eventstore::bench {
namespace {

// Pads `field` so that `message` serializes to about kScalePayloadBytes.
template <typename Message>
void Pad(Message& message, std::string* field) {
  const int64_t size = static_cast<int64_t>(message.ByteSizeLong());
  if (size < kScalePayloadBytes) {
    field->append(static_cast<size_t>(kScalePayloadBytes - size), '.');
  }
}

// Event k of batch b, n = b * kScaleBatchEvents + k.
EventData ScaleEvent(int64_t b, int64_t k, const std::string& tenant) {
  const int64_t n = b * kScaleBatchEvents + k;
  const std::string order_id = absl::StrFormat("order-%09d", n % 1000000000);
  eventstore::v1::EventMetadata metadata;
  metadata.set_tenant_id(tenant);
  if (k == kScaleBatchEvents - 1) {
    v1::OrderShipped shipped;
    shipped.set_order_id(order_id);
    shipped.set_carrier("carrier-" + std::to_string(n % 7));
    shipped.set_tracking_number(absl::StrCat("TRK", n * 7919));
    Pad(shipped, shipped.mutable_tracking_number());
    return EventData::From(shipped, std::move(metadata));
  }
  if (k % 4 == 1) {
    v1::PaymentReceived payment;
    payment.set_order_id(order_id);
    payment.set_amount_cents(1000 + (n * 13) % 90000);
    payment.set_method(absl::StrCat("card ", n % 10000, " "));
    Pad(payment, payment.mutable_method());
    return EventData::From(payment, std::move(metadata));
  }
  v1::OrderPlaced order;
  order.set_order_id(order_id);
  order.set_customer_id(
      absl::StrFormat("customer-%08d", (n * 7919) % 100000000));
  v1::LineItem* item = order.add_items();
  item->set_sku(absl::StrFormat("SKU-%07d", (n * 31) % 10000000));
  item->set_quantity(1 + static_cast<int>(n % 5));
  item->set_unit_price_cents(1000 + (n * 13) % 90000);
  order.set_total_cents(item->quantity() * item->unit_price_cents());
  order.set_currency("EUR");
  order.set_placed_at_micros(1700000000000000 + n * 1000);
  order.set_shipping_address(absl::StrCat(1 + n % 250, " Rue "));
  Pad(order, order.mutable_shipping_address());
  return EventData::From(order, std::move(metadata));
}

ExpectedVersion ExpectedFor(int64_t version) {
  return version == 0 ? ExpectedVersion::NoStream()
                      : ExpectedVersion::Exactly(version);
}

}  // namespace

std::string ScaleStreamName(int64_t i) {
  const int64_t c = i % 100;
  const char* category = c == 0    ? kScaleRarePrefix
                         : c >= 90 ? "customer-"
                                   : "order-";
  return absl::StrCat(category, i);
}

std::vector<EventData> ScaleBatchEvents(int64_t b) {
  const int64_t stream = b % kScaleStreams;
  const std::string tenant = absl::StrCat("tenant-", (stream + 37) % 100);
  std::vector<EventData> events;
  events.reserve(kScaleBatchEvents);
  for (int64_t k = 0; k < kScaleBatchEvents; ++k) {
    events.push_back(ScaleEvent(b, k, tenant));
  }
  return events;
}

absl::StatusOr<std::unique_ptr<ScaleStore>> ScaleStore::Fill(
    std::unique_ptr<ScaleDatabase> db, int64_t events, int64_t chunk_events,
    const std::string& label, std::ostream* progress) {
  std::unique_ptr<ScaleStore> s(new ScaleStore(std::move(db)));
  const int64_t batches = events / kScaleBatchEvents;
  const int64_t chunk_batches =
      std::max<int64_t>(1, chunk_events / kScaleBatchEvents);
  s->batch_ends_.reserve(static_cast<size_t>(batches));
  FillReport::Chunk chunk;
  using Clock = std::chrono::steady_clock;
  for (int64_t b = 0; b < batches; ++b) {
    Batch batch = s->NextBatch();
    const Clock::time_point start = Clock::now();
    ES_RETURN_IF_ERROR(s->AppendBatch(batch));
    chunk.seconds +=
        std::chrono::duration<double>(Clock::now() - start).count();
    chunk.events += kScaleBatchEvents;
    if ((b + 1) % chunk_batches == 0 || b + 1 == batches) {
      if (progress != nullptr) {
        *progress << absl::StrFormat("S1 %s: events %d..%d: %.0f events/s",
                                     label, chunk.first_event,
                                     chunk.first_event + chunk.events,
                                     chunk.events / chunk.seconds)
                  << std::endl;
      }
      s->fill_.chunks.push_back(chunk);
      s->fill_.seconds += chunk.seconds;
      chunk = FillReport::Chunk{s->events_, 0, 0};
    }
  }
  s->filled_batches_ = batches;
  s->fill_.events = s->events_;
  ES_ASSIGN_OR_RETURN(s->fill_.bytes, s->db_->Bytes());
  return s;
}

Position ScaleStore::BeforeBatch(int64_t b) const {
  return b == 0 ? Position::Start() : batch_ends_[static_cast<size_t>(b - 1)];
}

absl::Status ScaleStore::AppendToStream(int64_t i,
                                        const std::vector<EventData>& events) {
  int64_t& version = versions_[static_cast<size_t>(i)];
  absl::StatusOr<AppendResult> result =
      store().Append(ScaleStreamName(i), ExpectedFor(version), events);
  if (!result.ok()) {
    return absl::Status(result.status().code(),
                        absl::StrCat("append to ", ScaleStreamName(i), ": ",
                                     result.status().message()));
  }
  version = result->next_expected_version;
  events_ += static_cast<int64_t>(events.size());
  if (filled_batches_ == 0) batch_ends_.push_back(result->last_position);
  return absl::OkStatus();
}

ScaleStore::Batch ScaleStore::NextBatch() {
  const int64_t b = next_batch_++;
  return Batch{b % kScaleStreams, ScaleBatchEvents(b)};
}

absl::Status ScaleStore::AppendBatch(const Batch& batch) {
  if (batch.stream_index == streams()) versions_.push_back(0);
  return AppendToStream(batch.stream_index, batch.events);
}

}  // namespace eventstore::bench
