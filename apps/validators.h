// Checks on command-line values shared by the subcommands, with messages in words.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <string>

namespace fn::apps {

// CLI11's PositiveNumber prints DBL_MAX in full; this says it in words.
inline const CLI::Validator& positive() {
  static const CLI::Validator v(
      [](std::string& in) -> std::string {
        char* end = nullptr;
        const double x = std::strtod(in.c_str(), &end);
        return end != in.c_str() && *end == 0 && x > 0 ? "" : "must be a positive number, got '" + in + "'";
      },
      "POSITIVE");
  return v;
}

}  // namespace fn::apps
