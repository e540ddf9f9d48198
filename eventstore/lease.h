// Lease: the right to be the one active worker under a name, for example
// the one runner of a projection among several processes.
//
//   ES_ASSIGN_OR_RETURN(std::unique_ptr<Lease> lease,
//                       store->TryAcquireLease("projection:order-totals"));
//   if (lease == nullptr) { /* another worker holds it: wait and try again */ }
//   while (lease->Valid()) { ... work ... }
//
// PostgreSQL: a session advisory lock on a connection the lease keeps open;
// when the holding process dies, its connection closes and the server frees
// the lock, so another process takes over. SQLite: an exclusive lock on a
// file beside the database (for ":memory:", a name held within the
// process). Destroying the lease releases it.

#ifndef EVENTSTORE_LEASE_H_
#define EVENTSTORE_LEASE_H_

namespace eventstore {

class Lease {
 public:
  virtual ~Lease() = default;
  // False once the lease is known to be lost (its connection broke); the
  // holder must stop working and try to acquire it again.
  virtual bool Valid() = 0;
};

}  // namespace eventstore

#endif  // EVENTSTORE_LEASE_H_
