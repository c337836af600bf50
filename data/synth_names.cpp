// parse_name_list(): the compiled-in name lists' records (the text itself: <build>/generated/synth_names_text.cpp).
#include "data/synth_names.h"

#include <sstream>

#include "core/error.h"

namespace fn::data::synth {

std::vector<NamedType> parse_name_list(const char* text, const char* what) {
  std::istringstream in(text);
  std::string line;
  size_t count = 0;
  std::vector<NamedType> out;
  for (int no = 1; std::getline(in, line); ++no) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string t; words >> t;) w.push_back(t);
    if (no == 1) count = std::stoul(line);
    if (no <= 2 || w.empty()) continue;  // the count, then the column names
    FN_EXPECT(w.size() >= 2, what, ":", no, ": expected '<name> <type>'");
    NamedType r{w[0], std::stoi(w.back())};
    for (size_t i = 1; i + 1 < w.size(); ++i) r.name += " " + w[i];
    out.push_back(std::move(r));
  }
  FN_EXPECT(out.size() == count, what, ": the header says ", count, " records but the text has ", out.size());
  return out;
}

}  // namespace fn::data::synth
