// Filling stores for the CLI's copy tests (migrate, export, import): many
// interleaved streams, and a row in each of the other tables.
//
//   test::FillStore(*source, 50, 40, 10);
//   test::AddOtherRows(*source, 777);

#ifndef EVENTSTORE_TESTS_TOOLS_FILL_STORE_H_
#define EVENTSTORE_TESTS_TOOLS_FILL_STORE_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "eventstore/checkpoint_store.h"
#include "eventstore/dead_letter_store.h"
#include "eventstore/event_store.h"
#include "eventstore/outbox_store.h"
#include "eventstore/snapshot_store.h"
#include "eventstore/test/v1/events.pb.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace eventstore::test {

// Appends `events_per_stream` events to each of `streams` streams
// "order-<i>", in rounds of `per_append` events per stream so that the
// streams interleave in the global log. Events carry metadata.
inline void FillStore(EventStore& store, int streams, int events_per_stream,
                      int per_append) {
  for (int done = 0; done < events_per_stream; done += per_append) {
    for (int s = 0; s < streams; ++s) {
      std::vector<EventData> batch;
      for (int i = done; i < done + per_append && i < events_per_stream; ++i) {
        test::v1::OrderPlaced placed;
        placed.set_order_id(absl::StrCat("order-", s, "/", i));
        eventstore::v1::EventMetadata meta;
        meta.set_correlation_id(absl::StrCat("c", s, "-", i));
        meta.set_tenant_id(s % 3 == 0 ? "acme" : "");
        (*meta.mutable_properties())["i"] = absl::StrCat(i);
        batch.push_back(EventData::From(placed, meta));
      }
      ASSERT_OK(store.Append(absl::StrCat("order-", s), ExpectedVersion::Any(),
                             batch));
    }
  }
}

// A checkpoint at the `n`th event (1-based) of the log, a dead letter, an
// outbox message and a snapshot.
inline void AddOtherRows(EventStore& store, int n) {
  ReadAllOptions options;
  options.max_count = n;
  absl::StatusOr<ReadAllPage> page = store.ReadAll(options);
  ASSERT_OK(page);
  ASSERT_EQ(static_cast<int>(page->events.size()), n);
  const RecordedEvent& at = page->events.back();
  ASSERT_OK(store.checkpoints().Save("totals", at.position, n));
  ASSERT_OK(store.dead_letters().Add("totals", at, "handler failed"));
  OutboxMessage m;
  m.destination = "billing";
  m.key = at.stream;
  m.payload = "invoice";
  m.headers["h"] = "v";
  ASSERT_OK(store.outbox().Enqueue({&m, 1}));
  Snapshot s;
  s.stream = at.stream;
  s.version = at.version;
  s.type = "eventstore.test.v1.OrderState";
  s.state = "state";
  s.schema_version = 1;
  s.taken_at = absl::FromUnixMicros(1700000000000000);
  ASSERT_OK(store.snapshots().Save(s));
}

}  // namespace eventstore::test

#endif  // EVENTSTORE_TESTS_TOOLS_FILL_STORE_H_
