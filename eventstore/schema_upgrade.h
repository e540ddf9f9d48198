// SchemaUpgrade: what an explicit schema upgrade did
// (SqliteEventStore::UpgradeSchema, PostgresEventStore::UpgradeSchema,
// `eventstore upgrade URL`).
//
//   absl::StatusOr<eventstore::SchemaUpgrade> upgrade =
//       eventstore::SqliteEventStore::UpgradeSchema(options);
//   if (upgrade.ok() && upgrade->upgraded()) { ... }

#ifndef EVENTSTORE_SCHEMA_UPGRADE_H_
#define EVENTSTORE_SCHEMA_UPGRADE_H_

namespace eventstore {

struct SchemaUpgrade {
  // The store's schema version before the upgrade, and after it (the
  // version the code writes).
  int from_version = 0;
  int to_version = 0;

  // False when the schema was current already and nothing was written.
  bool upgraded() const { return from_version != to_version; }
};

}  // namespace eventstore

#endif  // EVENTSTORE_SCHEMA_UPGRADE_H_
