#include "bench/bench_display.h"

#include <unistd.h>

#include <iostream>
#include <memory>
#include <string_view>

namespace eventstore::bench {
namespace {

// The value of the last --name=value in argv, or `otherwise`.
std::string_view Flag(int argc, char** argv, std::string_view name,
                      std::string_view otherwise) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.size() > name.size() + 3 && arg.substr(0, 2) == "--" &&
        arg.substr(2, name.size()) == name && arg[name.size() + 2] == '=') {
      otherwise = arg.substr(name.size() + 3);
    }
  }
  return otherwise;
}

}  // namespace

BenchDisplay MakeBenchDisplay(int argc, char** argv) {
  BenchDisplay display;
  if (Flag(argc, argv, "benchmark_format", "console") == "json") {
    display.reporter = std::make_unique<benchmark::JSONReporter>();
    display.table_out = &std::cerr;
    return display;
  }
  const std::string_view color = Flag(argc, argv, "benchmark_color", "auto");
  const bool use_color =
      color == "auto" ? isatty(STDOUT_FILENO) != 0
                      : (color == "true" || color == "yes" || color == "1");
  const std::string_view tabular =
      Flag(argc, argv, "benchmark_counters_tabular", "false");
  int options = benchmark::ConsoleReporter::OO_None;
  if (use_color) options |= benchmark::ConsoleReporter::OO_Color;
  if (tabular == "true" || tabular == "yes" || tabular == "1") {
    options |= benchmark::ConsoleReporter::OO_Tabular;
  }
  display.reporter = std::make_unique<benchmark::ConsoleReporter>(
      static_cast<benchmark::ConsoleReporter::OutputOptions>(options));
  display.table_out = &std::cout;
  return display;
}

}  // namespace eventstore::bench
