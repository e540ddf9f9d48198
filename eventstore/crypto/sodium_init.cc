#include "eventstore/crypto/sodium_init.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

namespace eventstore::crypto::internal {

void EnsureSodium() {
  static const bool initialised = [] {
    if (sodium_init() < 0) {
      std::fputs("eventstore: libsodium failed to initialise\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)initialised;
}

}  // namespace eventstore::crypto::internal
