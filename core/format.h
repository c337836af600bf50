// A number as text with a fixed count of decimals, for logs, tables and pages: fixed(93.25, 1) == "93.2"
// (printf's rounding, to even on an exact tie of the binary value). One rule, so that a figure reads the same
// in the log, the report and the search page.
#pragma once
#include <cstdio>
#include <string>

namespace fn {

inline std::string fixed(double v, int decimals) {
  char b[352];  // DBL_MAX with no decimals is 309 digits
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

}  // namespace fn
