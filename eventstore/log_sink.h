// LogSink: where the library's own log messages go.
//
// The library logs nothing by itself. Its background work (projection
// retries, lease gained or lost, failover mode changes, dead-lettering,
// reconnects) reports to a LogSink the application supplies, which forwards
// to the application's logger. Without one, the library uses NullLogSink(),
// which drops everything.
//
//   class StderrSink final : public eventstore::LogSink {
//    public:
//     void Log(eventstore::LogLevel level, std::string_view component,
//              std::string_view message) override {
//       std::cerr << eventstore::LogLevelName(level) << " " << component
//                 << ": " << message << "\n";
//     }
//   };
//
// Contract for implementations: Log may be called from any thread,
// concurrently (background threads included), must be thread-safe, should
// return quickly and must not throw. Its arguments are valid only during the
// call. The library never puts a password or other secret in a message
// (URLs are masked first).

#ifndef EVENTSTORE_LOG_SINK_H_
#define EVENTSTORE_LOG_SINK_H_

#include <string_view>

namespace eventstore {

enum class LogLevel {
  kDebug,    // detail for diagnosing the library itself
  kInfo,     // expected state changes: a lease gained, a mode back to normal
  kWarning,  // something failed and will be retried: a handler, a connection
  kError,    // something was given up: an event dead-lettered, a message
             // abandoned, a replay parked
};

// "debug", "info", "warning", "error".
std::string_view LogLevelName(LogLevel level);

class LogSink {
 public:
  virtual ~LogSink() = default;

  // One message. `component` names what logs: "projection_runner",
  // "outbox_publisher", "failover", "postgres_pool". `message` is one line
  // without a trailing newline, naming the object concerned (projection,
  // stream, event id).
  virtual void Log(LogLevel level, std::string_view component,
                   std::string_view message) = 0;
};

// A sink that drops every message; lives for the whole program.
LogSink& NullLogSink();

}  // namespace eventstore

#endif  // EVENTSTORE_LOG_SINK_H_
