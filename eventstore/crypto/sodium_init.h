// EnsureSodium: libsodium's one-time initialisation, for every file of
// eventstore/crypto/ before its first libsodium call.

#ifndef EVENTSTORE_CRYPTO_SODIUM_INIT_H_
#define EVENTSTORE_CRYPTO_SODIUM_INIT_H_

namespace eventstore::crypto::internal {

// Calls sodium_init() once per process (thread-safe). Aborts when libsodium
// cannot initialise (no source of randomness): nothing here may run
// without one.
void EnsureSodium();

}  // namespace eventstore::crypto::internal

#endif  // EVENTSTORE_CRYPTO_SODIUM_INIT_H_
