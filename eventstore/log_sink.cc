#include "eventstore/log_sink.h"

namespace eventstore {
namespace {

class DroppingLogSink final : public LogSink {
 public:
  void Log(LogLevel level, std::string_view component,
           std::string_view message) override {}
};

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "error";
}

LogSink& NullLogSink() {
  static DroppingLogSink* const sink = new DroppingLogSink();
  return *sink;
}

}  // namespace eventstore
