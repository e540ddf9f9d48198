// ThreadSanitizer suppressions built into every test executable, so that
// they apply whatever TSAN_OPTIONS the caller sets. Without TSan, nothing
// calls this function.
//
// Debian's Abseil is built without TSan instrumentation, so synchronisation
// inside it (call_once, SpinLock) is invisible to TSan; eventstore/internal/
// mutex.h works around the same problem for absl::Mutex. The first
// absl::BitGen of each thread (Uuid::Generate's thread_local one) is seeded
// from Abseil's shared entropy pool, and TSan reports the pool's lazy
// initialisation as a race between the first threads that use it.
// Seeding the generator from std::random_device instead would make this
// suppression unnecessary.

extern "C" const char* __tsan_default_suppressions() {
  return "race:libabsl_random_internal_pool_urbg.so\n";
}
